use std::time::Duration;

use serde_json::Value;

use crate::helpers::{OwnMariaDb, RunningServer, TestDb};

#[tokio::test]
async fn healthy_demo_database_reports_version_and_migrations() {
    let db = TestDb::migrated().await;
    let resp = db.client().get("/api/health/").send().await;
    resp.assert_status_is_ok();
    let anonymous: Value = resp.json().await.value().deserialize();
    assert_eq!(anonymous["state"], "ok");
    assert!(anonymous.get("openemr_version").is_none(), "the version is for administrators: {anonymous}");
    let (token, _) = crate::auth::tokens(&db, crate::auth::ADMIN).await;
    let resp =
        db.client().get("/api/health/").header("authorization", format!("Bearer {token}")).send().await;
    resp.assert_status_is_ok();
    let body: Value = resp.json().await.value().deserialize();
    assert_eq!(body["state"], "ok");
    assert_eq!(body["database_reachable"], true);
    assert_eq!(body["openemr_database_revision"], 541);
    assert!(body["openemr_version"].as_str().unwrap().starts_with("8.2.0-dev"));
    assert!(body["migrations"].as_str().unwrap().starts_with("up to date"));
    assert_eq!(body["problems"], serde_json::json!([]));
}

#[tokio::test]
async fn pending_migrations_make_health_503_with_the_reason() {
    let db = TestDb::openemr().await;
    let resp = db.client().get("/api/health/").send().await;
    resp.assert_status(poem::http::StatusCode::SERVICE_UNAVAILABLE);
    resp.assert_content_type("application/problem+json");
    let body: Value = resp.json().await.value().deserialize();
    assert_eq!(body["status"], 503);
    assert_eq!(body["state"], "unavailable");
    let detail = body["detail"].as_str().unwrap();
    assert!(detail.contains("problem(s)") && !detail.contains("mmt-sidecar migrate"), "anonymous: {body}");
}

#[tokio::test]
async fn an_uninstalled_openemr_version_row_is_unhealthy() {
    let db = TestDb::migrated().await;
    sqlx::query("UPDATE version SET v_major = 0, v_minor = 0, v_patch = 0, v_database = 0")
        .execute(&db.pool)
        .await
        .unwrap();
    let (token, _) = crate::auth::tokens(&db, crate::auth::ADMIN).await;
    let resp =
        db.client().get("/api/health/").header("authorization", format!("Bearer {token}")).send().await;
    resp.assert_status(poem::http::StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = resp.json().await.value().deserialize();
    assert!(body["detail"].as_str().unwrap().contains("never installed"), "{body}");
    let anonymous: Value = db.client().get("/api/health/").send().await.json().await.value().deserialize();
    assert!(!anonymous["detail"].as_str().unwrap().contains("never installed"), "{anonymous}");
}

async fn health_of(client: &reqwest::Client, server: &RunningServer) -> (u16, Value) {
    let resp = client.get(server.url("/api/health/")).send().await.unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

#[tokio::test]
async fn database_outage_gives_503_and_recovery_gives_200_without_restart() {
    let own = OwnMariaDb::start();
    own.load("openemr");
    let state = TestDb::state_for(&own.url("openemr"));
    mmt_sidecar::storage::mmt::migrations::run(&state.pool).await.unwrap();
    let server = RunningServer::start(state).await;
    let client = reqwest::Client::new();

    let (status, _) = health_of(&client, &server).await;
    assert_eq!(status, 200);

    own.stop();
    let started = std::time::Instant::now();
    let (status, body) = loop {
        // Health answers from a check that runs every second, so the outage shows at the next one.
        let (status, body) = health_of(&client, &server).await;
        if status != 200 || started.elapsed() > Duration::from_secs(10) {
            break (status, body);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["database_reachable"], false);
    assert!(!body["detail"].as_str().unwrap().is_empty());
    assert!(started.elapsed() < Duration::from_secs(10), "an outage must be reported promptly");

    own.restart();
    let mut recovered = false;
    for _ in 0..40 {
        if health_of(&client, &server).await.0 == 200 {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(recovered, "health must return to 200 once the database is back");
}

/// Health answers from the background check: a database that hangs (a table the check reads is
/// locked) delays no health request, and the check that times out on it turns health to 503.
#[tokio::test]
async fn health_never_waits_on_a_hanging_database_and_reports_it_once_checks_stall() {
    let db = TestDb::migrated().await;
    let server = RunningServer::start(db.state()).await;
    let client = reqwest::Client::new();
    assert_eq!(health_of(&client, &server).await.0, 200);
    let mut locker = db.pool.acquire().await.unwrap();
    sqlx::query("LOCK TABLES mmt_schema_migrations WRITE").execute(&mut *locker).await.unwrap();

    let started = std::time::Instant::now();
    let mut slowest = Duration::ZERO;
    let stalled = loop {
        let asked = std::time::Instant::now();
        let (status, body) = health_of(&client, &server).await;
        slowest = slowest.max(asked.elapsed());
        if status == 503 {
            break body;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "still healthy after 20 s: {body}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    sqlx::query("UNLOCK TABLES").execute(&mut *locker).await.unwrap();
    assert!(slowest < Duration::from_secs(1), "a health request waited {slowest:?} on the database");
    assert!(started.elapsed() < Duration::from_secs(8), "a hanging database shows within a check or two");
    assert_eq!(stalled["database_reachable"], false, "{stalled}");
    assert!(stalled["checked_ms_ago"].as_u64().unwrap() < 3_000, "{stalled}");
    assert!(stalled["detail"].as_str().unwrap().contains("problem"), "{stalled}");
}

/// Until this replica's in-memory patient index is built, searches go to the database and health
/// says so; the first search (with the tests' zero staleness) builds it, and health says that.
#[tokio::test]
async fn health_tells_where_patient_searches_are_answered() {
    let db = TestDb::migrated().await;
    let (token, _) = crate::auth::tokens(&db, crate::auth::ADMIN).await;
    let client = db.client();
    let before: Value = client.get("/api/health/").send().await.json().await.value().deserialize();
    assert_eq!(before["patient_search"], "database (in-memory index building)");
    client
        .get("/api/patients/?search=a")
        .header("authorization", format!("Bearer {token}"))
        .send()
        .await
        .assert_status_is_ok();
    let after: Value = client.get("/api/health/").send().await.json().await.value().deserialize();
    assert_eq!(after["patient_search"], "memory");
}
