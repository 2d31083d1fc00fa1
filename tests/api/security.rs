//! Walks the served spec: every operation except health answers 401 when called without
//! credentials, and every protected operation declares the sidecar's security schemes.

use poem::http::Method;
use serde_json::{Map, Value, json};

use crate::helpers::TestDb;

/// A body with every required property filled, so the request reaches authentication.
fn sample(schema: &Value, schemas: &Map<String, Value>) -> Value {
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
        Some("array") => json!([]),
        _ => json!("x"),
    }
}

#[tokio::test]
async fn every_operation_but_health_answers_401_without_credentials() {
    let db = TestDb::migrated().await;
    let client = db.client();
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
            let resp = request.send().await;
            let expected = if id == "auth_guest" { 404 } else { 401 };
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
