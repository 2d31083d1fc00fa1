use poem::http::StatusCode;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{RunningServer, TestDb};

fn assert_problem(body: &Value, status: u16) {
    assert_eq!(body["status"], status, "{body}");
    for field in ["type", "title", "detail", "request_id"] {
        assert!(body[field].as_str().is_some_and(|v| !v.is_empty()), "problem lacks `{field}`: {body}");
    }
    assert!(body["type"].as_str().unwrap().starts_with("urn:mmt-sidecar:problem:"));
}

#[tokio::test]
async fn unknown_route_is_a_404_problem_with_the_request_id_header() {
    let db = TestDb::empty().await;
    let resp = db.client().get("/api/no-such-thing/").send().await;
    resp.assert_status(StatusCode::NOT_FOUND);
    resp.assert_content_type("application/problem+json");
    let request_id = resp.0.headers().get("x-request-id").unwrap().to_str().unwrap().to_string();
    let body: Value = resp.json().await.value().deserialize();
    assert_problem(&body, 404);
    assert_eq!(body["request_id"], request_id);
}

#[tokio::test]
async fn wrong_method_is_a_405_problem() {
    let db = TestDb::empty().await;
    let resp = db.client().delete("/api/health/").send().await;
    resp.assert_status(StatusCode::METHOD_NOT_ALLOWED);
    resp.assert_content_type("application/problem+json");
    assert_problem(&resp.json().await.value().deserialize(), 405);
}

#[tokio::test]
async fn declared_oversized_body_is_a_413_problem() {
    let db = TestDb::empty().await;
    let resp = db
        .client()
        .post("/api/health/")
        .header("content-type", "application/json")
        .header("content-length", "5000")
        .body(vec![b' '; 5000])
        .send()
        .await;
    resp.assert_status(StatusCode::PAYLOAD_TOO_LARGE);
    let body: Value = resp.json().await.value().deserialize();
    assert_problem(&body, 413);
    assert!(body["detail"].as_str().unwrap().contains("4096-byte limit"));
}

async fn raw_exchange(server: &RunningServer, request: &[u8]) -> String {
    let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    String::from_utf8_lossy(&response).into_owned()
}

#[tokio::test]
async fn chunked_oversized_body_is_a_413_problem() {
    let db = TestDb::empty().await;
    let server = RunningServer::start(db.state()).await;
    let chunk = "x".repeat(3000);
    let request = format!(
        "POST /api/health/ HTTP/1.1\r\nhost: t\r\nconnection: close\r\ntransfer-encoding: chunked\r\n\r\n\
         {len:x}\r\n{chunk}\r\n{len:x}\r\n{chunk}\r\n0\r\n\r\n",
        len = chunk.len()
    );
    let response = raw_exchange(&server, request.as_bytes()).await;
    assert!(response.starts_with("HTTP/1.1 413"), "{response}");
    assert!(response.contains("application/problem+json"));
}

#[tokio::test]
async fn problems_carry_no_stack_traces_or_sql() {
    let db = TestDb::empty().await;
    let resp = db.client().get("/api/health/").send().await;
    resp.assert_status(StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = resp.json().await.value().deserialize();
    let text = body.to_string();
    assert!(!text.contains("src/"), "{text}");
    assert!(!text.contains("mmt:mmt"), "credentials must never appear: {text}");
}
