//! Walks the served spec: every operation except health answers 401 when called without
//! credentials, and every protected operation declares the sidecar's security schemes.

use poem::http::Method;
use serde_json::{Map, Value, json};

use crate::helpers::TestDb;

/// A body with every required property filled, so the request reaches authentication.
pub(crate) fn sample(schema: &Value, schemas: &Map<String, Value>) -> Value {
    if let Some(reference) = schema["$ref"].as_str() {
        return sample(&schemas[reference.trim_start_matches("#/components/schemas/")], schemas);
    }
    match schema["type"].as_str() {
        Some("object") => {
            let props = schema["properties"].as_object().cloned().unwrap_or_default();
            Value::Object(props.iter().map(|(k, v)| (k.clone(), sample(v, schemas))).collect())
        }
        Some("integer") | Some("number") => json!(1),
        Some("boolean") => json!(false),
        Some("string") if schema["format"] == "date-time" => json!("2026-01-01T00:00:00Z"),
        Some("array") => json!([]),
        _ => json!("x"),
    }
}

#[tokio::test]
async fn every_operation_but_health_answers_401_without_credentials() {
    let db = TestDb::migrated().await;
    let client = db.client_with(&[("STRIPE_WEBHOOK_SECRET", "whsec_walk")]);
    let spec: Value = client.get("/api/openapi.json").send().await.json().await.value().deserialize();
    let schemas = spec["components"]["schemas"].as_object().cloned().unwrap_or_default();
    let mut checked = Vec::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let id = op["operationId"].as_str().unwrap();
            if id == "health" {
                assert!(op.get("security").is_none(), "health needs no credentials");
                continue;
            }
            let concrete: Vec<&str> =
                path.split('/').map(|seg| if seg.starts_with('{') { "1" } else { seg }).collect();
            let url = format!("/api{}", concrete.join("/"));
            let mut request =
                client.request(Method::from_bytes(method.to_uppercase().as_bytes()).unwrap(), &url);
            if let Some(schema) =
                op["requestBody"]["content"]["application/json; charset=utf-8"]["schema"].as_object()
            {
                request = request.body_json(&sample(&Value::Object(schema.clone()), &schemas));
            }
            if id == "stripe_webhook" {
                request = request.content_type("application/json").body(r#"{"id":"evt_1"}"#);
            }
            let resp = request.send().await;
            // A preview link carries its own credential; an unknown one is simply not found.
            // Stripe's webhook is signed instead: unsigned, it is a bad request.
            let expected = match id {
                "auth_guest" | "document_view" => 404,
                "stripe_webhook" => 400,
                _ => 401,
            };
            assert_eq!(resp.0.status().as_u16(), expected, "{method} {path} ({id})");
            resp.assert_content_type("application/problem+json");
            checked.push(id.to_string());
        }
    }
    for must in ["auth_login", "auth_refresh", "auth_user", "auth_logout", "auth_logout_all", "auth_bridge"] {
        assert!(checked.iter().any(|c| c == must), "{must} was not walked");
    }
}

#[tokio::test]
async fn protected_operations_declare_bearer_cookie_and_openemr_session_schemes() {
    let db = TestDb::empty().await;
    let spec: Value = db.client().get("/api/openapi.json").send().await.json().await.value().deserialize();
    let schemes = &spec["components"]["securitySchemes"];
    assert_eq!(schemes["BearerAuth"]["scheme"], "bearer");
    assert_eq!(schemes["AccessCookie"]["in"], "cookie");
    assert_eq!(schemes["OpenEmrSession"]["name"], "OpenEMR");
    let user = &spec["paths"]["/auth/user"]["get"]["security"];
    for scheme in ["BearerAuth", "AccessCookie", "OpenEmrSession"] {
        assert!(user.as_array().unwrap().iter().any(|s| s.get(scheme).is_some()), "{scheme}: {user}");
    }
}

mod hardening {
    use poem::http::StatusCode;
    use serde_json::{Value, json};

    use crate::{auth, helpers::TestDb, patients::Api};

    fn patient(last: &str) -> Value {
        json!({"first_name": "Ines", "last_name": last, "dob": "1980-01-02", "sex": "Female"})
    }

    #[tokio::test]
    async fn cookie_authenticated_changes_need_a_matching_origin_and_phi_is_never_cached() {
        let db = TestDb::migrated().await;
        let (access, _) = auth::tokens(&db, auth::ADMIN).await;
        let client = db.client();
        let post = |origin: Option<&'static str>| {
            let mut req = client
                .post("/api/patients/")
                .header("cookie", format!("mmt_access={access}"))
                .header("host", "emr.example.org")
                .body_json(&patient("Origin"));
            if let Some(o) = origin {
                req = req.header("origin", o);
            }
            req.send()
        };
        post(None).await.assert_status(StatusCode::FORBIDDEN);
        post(Some("https://evil.example")).await.assert_status(StatusCode::FORBIDDEN);
        post(Some("https://emr.example.org")).await.assert_status(StatusCode::CREATED);
        let read =
            client.get("/api/patients/3/").header("cookie", format!("mmt_access={access}")).send().await;
        read.assert_status_is_ok();
        read.assert_header("cache-control", "no-store");
        let bearer = client
            .post("/api/patients/")
            .header("authorization", format!("Bearer {access}"))
            .body_json(&patient("Bearer"))
            .send()
            .await;
        bearer.assert_status(StatusCode::CREATED);
    }

    #[tokio::test]
    async fn guests_cannot_list_providers_and_provider_ids_are_checked() {
        let db = TestDb::migrated().await;
        let client = db.client_with(&[("MMT_GUEST_LOGIN", "true")]);
        let guest: Value = client.post("/api/auth/guest/").send().await.json().await.value().deserialize();
        let token = guest["access_token"].as_str().unwrap().to_string();
        let resp = client
            .get("/api/openemr/providers/")
            .header("authorization", format!("Bearer {token}"))
            .send()
            .await;
        resp.assert_status(StatusCode::FORBIDDEN);

        let api = Api::admin().await;
        for provider in [json!(4_294_967_297_i64), json!(6), json!(999)] {
            let mut body = patient("Provider");
            body["provider_id"] = provider.clone();
            let (status, problem) = api.call("POST", "/api/patients/", Some(body)).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{provider}: {problem}");
            assert_eq!(problem["errors"][0]["field"], "provider_id", "{problem}");
        }
    }

    #[tokio::test]
    async fn a_chart_with_transcriptions_is_not_deleted_and_its_pid_is_never_reused() {
        let db = TestDb::migrated().await;
        let (token, _) = auth::tokens(&db, auth::ADMIN).await;
        let client = db.client_with(&[("MMT_ALLOW_PATIENT_DELETE", "true")]);
        let call = |method: poem::http::Method, path: String, body: Option<Value>| {
            let mut req = client.request(method, path).header("authorization", format!("Bearer {token}"));
            if let Some(b) = body {
                req = req.body_json(&b);
            }
            req.send()
        };
        let created: Value =
            call(poem::http::Method::POST, "/api/patients/".into(), Some(patient("Deleted")))
                .await
                .json()
                .await
                .value()
                .deserialize();
        let pid = created["pid"].as_i64().unwrap();
        let note = json!({"id": uuid::Uuid::new_v4().to_string(), "pid": pid, "text": "Dictated."});
        call(poem::http::Method::POST, "/api/transcriptions/".into(), Some(note))
            .await
            .assert_status(StatusCode::CREATED);
        let refused = call(poem::http::Method::DELETE, format!("/api/patients/{pid}/"), None).await;
        refused.assert_status(StatusCode::CONFLICT);
        assert_eq!(db.scalar(&format!("SELECT COUNT(*) FROM patient_data WHERE pid = {pid}")).await, 1);

        // Sidecar data pointing past every chart (a chart deleted in OpenEMR itself, say).
        sqlx::query("UPDATE mmt_transcriptions SET pid = 5000").execute(&db.pool).await.unwrap();
        let next: Value = call(poem::http::Method::POST, "/api/patients/".into(), Some(patient("Next")))
            .await
            .json()
            .await
            .value()
            .deserialize();
        assert_eq!(next["pid"], 5001, "{next}");
    }

    #[tokio::test]
    async fn wrong_passwords_from_one_address_do_not_lock_the_account_out_elsewhere() {
        let db = TestDb::migrated().await;
        let server =
            crate::helpers::RunningServer::start(db.state_with(&[("MMT_LOGIN_FAILURE_FLOOR_MS", "0")])).await;
        let from = |ip: [u8; 4]| {
            reqwest::Client::builder().local_address(std::net::IpAddr::from(ip)).build().unwrap()
        };
        let login = |client: reqwest::Client, password: &'static str| {
            let url = server.url("/api/auth/login/");
            async move {
                client
                    .post(url)
                    .json(&json!({"username": "admin", "password": password}))
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            }
        };
        let attacker = from([127, 0, 0, 2]);
        for _ in 0..5 {
            assert_eq!(login(attacker.clone(), "guess").await, 401);
        }
        assert_eq!(
            login(attacker.clone(), "Sidecar-Admin-1").await,
            429,
            "this address is throttled for admin"
        );
        assert_eq!(login(from([127, 0, 0, 3]), "Sidecar-Admin-1").await, 200, "the clinic's address is not");
    }

    #[tokio::test]
    async fn version_and_state_are_not_revealed_before_the_permission_check() {
        let api = Api::as_user(("drgarcia", "Physician-Garcia-2")).await;
        let id = uuid::Uuid::new_v4().to_string();
        let (status, _) = api
            .call("POST", "/api/transcriptions/", Some(json!({"id": id, "pid": 3, "text": "Note."})))
            .await;
        assert_eq!(status, StatusCode::CREATED);
        let (front, _) = auth::tokens(&api.db, ("fdoconnor", "Front-OConnor-6")).await;
        let client = api.db.client();
        let stale = client
            .patch(format!("/api/transcriptions/{id}/"))
            .header("authorization", format!("Bearer {front}"))
            .header("if-match", "\"99\"")
            .body_json(&json!({"title": "x"}))
            .send()
            .await;
        stale.assert_status(StatusCode::FORBIDDEN);
        let missing = client
            .patch(format!("/api/transcriptions/{id}/"))
            .header("authorization", format!("Bearer {front}"))
            .body_json(&json!({"title": "x"}))
            .send()
            .await;
        missing.assert_status(StatusCode::FORBIDDEN);
        let approve = client
            .post(format!("/api/transcriptions/{id}/approve/"))
            .header("authorization", format!("Bearer {front}"))
            .send()
            .await;
        approve.assert_status(StatusCode::FORBIDDEN);
    }

    #[tokio::test]
    async fn database_errors_name_their_class_but_never_the_values() {
        let db = TestDb::migrated().await;
        let err =
            sqlx::query("INSERT INTO patient_data (id, pid, fname, lname) VALUES (1, 1, 'Secret-Name', 'X')")
                .execute(&db.pool)
                .await
                .unwrap_err();
        assert!(err.to_string().contains("Duplicate"), "MariaDB's own message quotes the row: {err}");
        let ours = mmt_sidecar::storage::StorageError::from_sqlx(err).to_string();
        assert!(ours.contains("1062") && !ours.contains("Secret") && !ours.contains("'1'"), "{ours}");
    }
}
