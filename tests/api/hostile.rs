//! Hostile input: SQL metacharacters, huge numbers, deep nesting, invalid UTF-8, oversized bodies and
//! wrong media types all get a 4xx problem (never a 5xx), and leave the database as it was.

use poem::http::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::{helpers::RunningServer, patients::Api};

const METACHARACTERS: [&str; 5] = ["' OR 1=1 --", "\"; DROP TABLE patient_data; --", "%", "_", "\\"];

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect()
}

async fn send(
    api: &Api,
    method: Method,
    path: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> (StatusCode, Value) {
    let client = api.db.client();
    let mut req = client.request(method, path).header("authorization", format!("Bearer {}", api.token));
    if let Some(ct) = content_type {
        req = req.header("content-type", ct);
    }
    let resp = req.body(body).send().await;
    let status = resp.0.status();
    let content_type = resp.0.headers().get("content-type").map(|v| v.to_str().unwrap().to_string());
    let text = resp.0.into_body().into_string().await.unwrap();
    if status.is_client_error() || status.is_server_error() {
        assert_eq!(content_type.as_deref(), Some("application/problem+json"), "{path}: {text}");
    }
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn assert_client_error(what: &str, status: StatusCode, body: &Value) {
    assert!(status.is_client_error(), "{what}: {status} {body}");
    assert_eq!(body["status"], status.as_u16(), "{what}: {body}");
}

async fn patient_count(api: &Api) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM patient_data").fetch_one(&api.db.pool).await.unwrap()
}

fn valid_patient() -> Value {
    json!({"first_name": "Hostile", "last_name": "Input", "dob": "1980-01-02", "sex": "Female"})
}

#[tokio::test]
async fn sql_metacharacters_in_search_match_only_literally() {
    let api = Api::admin().await;
    let count = patient_count(&api).await;
    for meta in METACHARACTERS {
        let (status, body) = api.get(&format!("/api/patients/?page_size=100&search={}", encode(meta))).await;
        assert_eq!(status, StatusCode::OK, "{meta}: {body}");
        assert!(body["total"].as_i64().unwrap() < count, "{meta} matched every patient");
    }
    for wildcard in ["%", "_", "\\", "%%", "_%"] {
        let (_, body) = api.get(&format!("/api/patients/?search={}", encode(wildcard))).await;
        assert_eq!(body["total"], 0, "{wildcard} is not a wildcard: {body}");
    }
    assert_eq!(patient_count(&api).await, count);
}

#[tokio::test]
async fn non_ascii_email_searches_are_not_a_server_error() {
    let api = Api::admin().await;
    // Emails are searched as typed; the term column is ASCII, so this once gave a 500.
    let (status, body) = api.get(&format!("/api/patients/?search={}", encode("Á§.è°"))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["total"], 0);
}

#[tokio::test]
async fn sql_metacharacters_in_paths_and_filters_are_client_errors() {
    let api = Api::admin().await;
    for meta in METACHARACTERS {
        for path in [
            format!("/api/patients/{}/", encode(meta)),
            format!("/api/patients/{}/encounters/", encode(meta)),
            format!("/api/encounters/{}/", encode(meta)),
            format!("/api/transcriptions/{}/", encode(meta)),
            format!("/api/patients/?facility={}", encode(meta)),
            format!("/api/patients/?cursor={}", encode(meta)),
        ] {
            let (status, body) = send(&api, Method::GET, &path, None, Vec::new()).await;
            assert_client_error(&path, status, &body);
        }
    }
}

#[tokio::test]
async fn sql_metacharacters_in_bodies_are_stored_as_text() {
    let api = Api::admin().await;
    let count = patient_count(&api).await;
    let (status, body) = api
        .call(
            "POST",
            "/api/patients/",
            Some(json!({
                "first_name": "' OR 1=1 --",
                "last_name": "\"; DROP TABLE patient_data; --",
                "dob": "1980-01-02",
                "sex": "Female"
            })),
        )
        .await;
    assert!(!status.is_server_error(), "{status} {body}");
    if status.is_success() {
        let lname: String = sqlx::query_scalar("SELECT lname FROM patient_data WHERE pid = ?")
            .bind(body["pid"].as_i64().unwrap())
            .fetch_one(&api.db.pool)
            .await
            .unwrap();
        assert_eq!(lname, "\"; DROP TABLE patient_data; --");
        assert_eq!(patient_count(&api).await, count + 1);
    } else {
        assert_client_error("metacharacter names", status, &body);
        assert_eq!(patient_count(&api).await, count);
    }
    let (status, body) = api
        .call("POST", "/api/auth/login/", Some(json!({"username": "' OR 1=1 --", "password": "' OR 1=1 --"})))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
}

#[tokio::test]
async fn huge_and_negative_numbers_are_client_errors() {
    let api = Api::admin().await;
    let count = patient_count(&api).await;
    for path in [
        "/api/patients/9223372036854775808/",
        "/api/patients/-1/",
        "/api/patients/1e308/",
        "/api/patients/?page=4294967296",
        "/api/patients/?provider=9223372036854775808",
    ] {
        let (status, body) = send(&api, Method::GET, path, None, Vec::new()).await;
        assert_client_error(path, status, &body);
    }
    for body in [
        r#"{"first_name":"Hostile","last_name":"Input","dob":"1980-01-02","sex":"Female","provider_id":9223372036854775808}"#,
        r#"{"first_name":"Hostile","last_name":"Input","dob":"1980-01-02","sex":"Female","provider_id":1e308}"#,
        r#"{"first_name":"Hostile","last_name":"Input","dob":"1980-01-02","sex":"Female","provider_id":-1}"#,
    ] {
        let (status, problem) =
            send(&api, Method::POST, "/api/patients/", Some("application/json"), body.into()).await;
        assert_client_error(body, status, &problem);
    }
    for body in [r#"{"pid":9223372036854775808,"date":"2024-01-01","class_code":"AMB"}"#, r#"{"pid":1e308}"#]
    {
        let (status, problem) =
            send(&api, Method::POST, "/api/encounters/", Some("application/json"), body.into()).await;
        assert_client_error(body, status, &problem);
    }
    assert_eq!(patient_count(&api).await, count);
}

#[tokio::test]
async fn deeply_nested_json_is_a_400() {
    let api = Api::admin().await;
    let count = patient_count(&api).await;
    for body in [
        "[".repeat(10_000),
        "{\"a\":".repeat(10_000),
        format!("{}{}", "[".repeat(10_000), "]".repeat(10_000)),
    ] {
        let (status, problem) =
            send(&api, Method::POST, "/api/patients/", Some("application/json"), body.into_bytes()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
    }
    assert_eq!(patient_count(&api).await, count);
}

#[tokio::test]
async fn invalid_utf8_bodies_and_queries_are_client_errors() {
    let api = Api::admin().await;
    let count = patient_count(&api).await;
    let mut body = br#"{"first_name":""#.to_vec();
    body.extend([0xff, 0xfe, 0xc3]);
    body.extend(br#"","last_name":"Input","dob":"1980-01-02","sex":"Female"}"#);
    let (status, problem) = send(&api, Method::POST, "/api/patients/", Some("application/json"), body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
    for path in ["/api/patients/?search=%FF%FE", "/api/patients/?sex=%C3", "/api/transcriptions/?status=%80"]
    {
        let (status, problem) = send(&api, Method::GET, path, None, Vec::new()).await;
        assert_client_error(path, status, &problem);
    }
    assert_eq!(patient_count(&api).await, count);
}

async fn raw_exchange(server: &RunningServer, request: &[u8]) -> String {
    let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    String::from_utf8_lossy(&response).into_owned()
}

#[tokio::test]
async fn oversized_bodies_are_413_and_change_nothing() {
    let api = Api::admin().await;
    let count = patient_count(&api).await;
    let padded = format!(
        r#"{{"first_name":"{}","last_name":"Input","dob":"1980-01-02","sex":"Female"}}"#,
        "x".repeat(5000)
    );
    let resp = api
        .db
        .client()
        .post("/api/patients/")
        .header("authorization", format!("Bearer {}", api.token))
        .header("content-type", "application/json")
        .header("content-length", padded.len().to_string())
        .body(padded.clone())
        .send()
        .await;
    resp.assert_status(StatusCode::PAYLOAD_TOO_LARGE);
    resp.assert_content_type("application/problem+json");

    let server = RunningServer::start(api.db.state()).await;
    let (head, tail) = padded.split_at(padded.len() / 2);
    let request = format!(
        "POST /api/patients/ HTTP/1.1\r\nhost: t\r\nconnection: close\r\nauthorization: Bearer {}\r\n\
         content-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n\
         {:x}\r\n{head}\r\n{:x}\r\n{tail}\r\n0\r\n\r\n",
        api.token,
        head.len(),
        tail.len()
    );
    let response = raw_exchange(&server, request.as_bytes()).await;
    assert!(response.starts_with("HTTP/1.1 413"), "{response}");
    assert!(response.contains("application/problem+json"), "{response}");
    assert_eq!(patient_count(&api).await, count);
}

#[tokio::test]
async fn wrong_content_types_are_415() {
    let api = Api::admin().await;
    let count = patient_count(&api).await;
    let body = valid_patient().to_string().into_bytes();
    for content_type in [
        None,
        Some("text/plain"),
        Some("application/xml"),
        Some("multipart/form-data; boundary=x"),
        Some("json"),
    ] {
        let (status, problem) = send(&api, Method::POST, "/api/patients/", content_type, body.clone()).await;
        assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{content_type:?}: {problem}");
    }
    assert_eq!(patient_count(&api).await, count);
}

#[tokio::test]
async fn a_405_names_the_allowed_methods() {
    let api = Api::admin().await;
    let resp = api.db.client().request(Method::TRACE, "/api/health/").send().await;
    resp.assert_status(StatusCode::METHOD_NOT_ALLOWED);
    resp.assert_header("allow", "GET");
    let resp = api
        .db
        .client()
        .delete("/api/patients/1/")
        .header("authorization", format!("Bearer {}", api.token))
        .send()
        .await;
    resp.assert_status(StatusCode::METHOD_NOT_ALLOWED);
    resp.assert_header("allow", "GET, PATCH, PUT");
}

#[tokio::test]
async fn responses_leave_out_unknown_values_instead_of_sending_null() {
    let api = Api::admin().await;
    // The spec declares these fields optional, not nullable; a null failed response validation.
    let (status, body) = api.get("/api/patients/?page_size=100").await;
    assert_eq!(status, StatusCode::OK);
    for patient in body["items"].as_array().unwrap() {
        assert!(patient.as_object().unwrap().values().all(|v| !v.is_null()), "{patient}");
    }
    let (_, problem) = api.get("/api/patients/0/").await;
    assert!(problem.get("errors").is_none(), "{problem}");
}
