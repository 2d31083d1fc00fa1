use serde_json::Value;

use crate::helpers::TestDb;

async fn spec() -> Value {
    let db = TestDb::empty().await;
    let resp = db.client().get("/api/openapi.json").send().await;
    resp.assert_status_is_ok();
    resp.json().await.value().deserialize()
}

#[tokio::test]
async fn spec_describes_health_with_both_outcomes() {
    let spec = spec().await;
    assert_eq!(spec["openapi"], "3.0.0");
    assert_eq!(spec["info"]["title"], "mmt-sidecar");
    assert_eq!(spec["servers"][0]["url"], "/api");
    let health = &spec["paths"]["/health"]["get"];
    assert_eq!(health["operationId"], "health");
    assert!(health["responses"]["200"]["content"]["application/json; charset=utf-8"].is_object());
    assert!(health["responses"]["503"]["content"]["application/problem+json"].is_object());
}

/// Every error response of every operation is problem+json with RFC 9457's members.
#[tokio::test]
async fn every_error_response_is_a_problem_document() {
    let spec = spec().await;
    let schemas = &spec["components"]["schemas"];
    let mut checked = 0;
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            for (code, response) in op["responses"].as_object().unwrap() {
                if !code.starts_with('4') && !code.starts_with('5') {
                    continue;
                }
                let content = response["content"].as_object().unwrap();
                assert_eq!(
                    content.keys().collect::<Vec<_>>(),
                    ["application/problem+json"],
                    "{method} {path} {code}"
                );
                let reference = content["application/problem+json"]["schema"]["$ref"].as_str().unwrap();
                let schema = &schemas[reference.trim_start_matches("#/components/schemas/")];
                for field in ["type", "title", "status", "detail"] {
                    assert!(schema["properties"][field].is_object(), "{reference} lacks {field}");
                }
                checked += 1;
            }
        }
    }
    assert!(checked > 0);
}

#[tokio::test]
async fn cli_openapi_prints_the_served_spec() {
    let out = std::process::Command::new(crate::helpers::binary()).arg("openapi").output().unwrap();
    assert!(out.status.success());
    let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(printed, spec().await);
}

#[tokio::test]
async fn explorer_is_served_from_the_binary_and_needs_no_network() {
    let db = TestDb::empty().await;
    for (explorer, operation) in [("/api/docs/", "\"/health\""), ("/fhir/r4/docs", "\"/metadata\"")] {
        let resp = db.client().get(explorer).send().await;
        resp.assert_status_is_ok();
        resp.assert_content_type("text/html; charset=utf-8");
        let html = resp.0.into_body().into_string().await.unwrap();
        assert!(html.contains("SwaggerUIBundle"), "Swagger UI script is embedded");
        assert!(html.contains(operation), "{explorer} embeds its spec");
        for external in ["<script src=\"http", "<link href=\"http", "<link rel=\"stylesheet\" href=\"http"] {
            assert!(!html.contains(external), "explorer must not load {external}...");
        }
    }
}

/// The spec is the API's contract with generated clients, so a change to it must be made on
/// purpose: compare with the committed snapshot and, after a deliberate change, rewrite it with
/// `MMT_UPDATE_SPEC_SNAPSHOT=1 scripts/test.sh --test api spec_matches` and review the diff.
#[test]
fn spec_matches_the_committed_snapshot() {
    assert_snapshot("tests/snapshots/openapi.json", mmt_sidecar::http::docs::spec());
}

#[test]
fn fhir_spec_matches_the_committed_snapshot() {
    assert_snapshot("tests/snapshots/fhir-openapi.json", mmt_sidecar::http::docs::fhir_spec());
}

fn assert_snapshot(relative: &str, spec: &str) {
    let path = crate::helpers::repo_path(relative);
    let current: Value = serde_json::from_str(spec).unwrap();
    let pretty = serde_json::to_string_pretty(&current).unwrap() + "\n";
    if std::env::var("MMT_UPDATE_SPEC_SNAPSHOT").is_ok() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &pretty).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == pretty,
        "the OpenAPI spec changed: review the change, then run \
         MMT_UPDATE_SPEC_SNAPSHOT=1 scripts/test.sh --test api spec_matches and commit {}",
        path.display()
    );
}
