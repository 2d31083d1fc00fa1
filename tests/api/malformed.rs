//! Walks the served spec with malformed input: every operation answers a path or query parameter
//! of the wrong type, and a JSON body with a mistyped field, with a 422 naming the parameter or
//! field by its API name, and unparseable JSON with a 400 naming the body.

use poem::http::{Method, StatusCode};
use serde_json::{Map, Value, json};

use crate::{
    patients::{Api, send},
    security::sample,
};

struct Operation<'a> {
    method: Method,
    path: &'a str,
    id: &'a str,
    params: Vec<&'a Value>,
    body: Option<Value>,
}

fn operations(spec: &Value) -> Vec<Operation<'_>> {
    let mut ops = Vec::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            ops.push(Operation {
                method: Method::from_bytes(method.to_uppercase().as_bytes()).unwrap(),
                path,
                id: op["operationId"].as_str().unwrap(),
                params: op["parameters"].as_array().map(|p| p.iter().collect()).unwrap_or_default(),
                body: op["requestBody"]["content"]["application/json; charset=utf-8"]["schema"]
                    .as_object()
                    .map(|s| Value::Object(s.clone())),
            });
        }
    }
    ops
}

/// The operation's URL with `bad` as the value of parameter `name` and valid values elsewhere.
fn url(op: &Operation<'_>, schemas: &Map<String, Value>, name: &str, bad: &str) -> String {
    let mut path = op.path.to_string();
    let mut query = Vec::new();
    for p in &op.params {
        let pname = p["name"].as_str().unwrap();
        let value = if pname == name {
            bad.to_string()
        } else {
            match sample(&p["schema"], schemas) {
                Value::String(s) => s,
                other => other.to_string(),
            }
        };
        match p["in"].as_str() {
            Some("path") => path = path.replace(&format!("{{{pname}}}"), &value),
            Some("query") if pname == name || p["required"] == true => query.push(format!("{pname}={value}")),
            _ => {}
        }
    }
    if query.is_empty() { format!("/api{path}") } else { format!("/api{path}?{}", query.join("&")) }
}

fn object_schema<'a>(schema: &'a Value, schemas: &'a Map<String, Value>) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(r) => &schemas[r.trim_start_matches("#/components/schemas/")],
        None => schema,
    }
}

fn named(body: &Value, field: &str) -> bool {
    body["errors"].as_array().is_some_and(|errors| errors.iter().any(|e| e["field"] == field))
}

#[tokio::test]
async fn every_operation_names_each_malformed_parameter_and_body_field() {
    let api = Api::admin().await;
    let spec: Value = serde_json::from_str(mmt_sidecar::http::docs::spec()).unwrap();
    let schemas = spec["components"]["schemas"].as_object().cloned().unwrap_or_default();
    let (mut params_checked, mut bodies_checked) = (0, 0);
    for op in operations(&spec) {
        // Signing out would end the token every later request carries.
        if op.id.starts_with("auth_logout") {
            continue;
        }
        for p in &op.params {
            let name = p["name"].as_str().unwrap();
            if p["schema"]["type"] != "integer" || !matches!(p["in"].as_str(), Some("path" | "query")) {
                continue;
            }
            let target = url(&op, &schemas, name, "abc");
            let (status, body) = send(&api.db, &[], Some(&api.token), op.method.clone(), &target, None).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{} {target}: {body}", op.id);
            assert_eq!(
                body["errors"][0],
                json!({"field": name, "message": "must be an integer"}),
                "{}",
                op.id
            );
            params_checked += 1;
        }
        let Some(schema) = &op.body else { continue };
        let object = object_schema(schema, &schemas);
        let Some(props) = object["properties"].as_object() else { continue };
        let Some((field, wrong)) = props.iter().find_map(|(k, v)| match v["type"].as_str() {
            Some("string") if v["format"].is_null() => Some((k, json!(12345))),
            Some("integer") => Some((k, json!("twelve"))),
            _ => None,
        }) else {
            continue;
        };
        let target = url(&op, &schemas, "", "");
        let mut body = sample(schema, &schemas);
        body[field] = wrong;
        let (status, problem) =
            send(&api.db, &[], Some(&api.token), op.method.clone(), &target, Some(body.clone())).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{} {body}: {problem}", op.id);
        assert!(named(&problem, field), "{} does not name {field}: {problem}", op.id);
        let (status, problem) = raw(&api, &op, &target, "{\"unfinished\":").await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{}: {problem}", op.id);
        assert!(named(&problem, "body"), "{}: {problem}", op.id);
        bodies_checked += 1;
    }
    assert!(
        params_checked > 60 && bodies_checked > 30,
        "{params_checked} parameters, {bodies_checked} bodies"
    );
}

async fn raw(api: &Api, op: &Operation<'_>, target: &str, body: &'static str) -> (StatusCode, Value) {
    let client = api.db.client();
    let resp = client
        .request(op.method.clone(), target)
        .header("authorization", format!("Bearer {}", api.token))
        .content_type("application/json")
        .body(body)
        .send()
        .await;
    let status = resp.0.status();
    (status, serde_json::from_str(&resp.0.into_body().into_string().await.unwrap()).unwrap_or(Value::Null))
}

#[tokio::test]
async fn the_newcomers_cases_name_their_fields() {
    let api = Api::admin().await;
    let login = |body: Value| send(&api.db, &[], None, Method::POST, "/api/auth/login/", Some(body));
    let (status, body) = login(json!({"username": "admin"})).await;
    assert_eq!(
        (status, &body["errors"]),
        (StatusCode::UNPROCESSABLE_ENTITY, &json!([{"field": "password", "message": "is required"}]))
    );
    let (status, body) = login(json!({"username": 123, "password": true})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(named(&body, "username") && named(&body, "password"), "{body}");
    let (status, body) = api.get("/api/patients/abc/").await;
    assert_eq!(
        (status, &body["errors"]),
        (StatusCode::UNPROCESSABLE_ENTITY, &json!([{"field": "pid", "message": "must be an integer"}]))
    );
    let (status, body) = api.get("/api/patients/?page_size=-1").await;
    assert_eq!(
        (status, &body["errors"][0]["field"]),
        (StatusCode::UNPROCESSABLE_ENTITY, &json!("page_size")),
        "{body}"
    );
    let (status, body) =
        send(&api.db, &[], None, Method::POST, "/api/patients/", Some(json!({"first_name": 5}))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "credentials are checked before the body: {body}");
}
