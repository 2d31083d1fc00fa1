//! Faults around the real binary: the database stopped and restarted under load, a connection
//! killed in the middle of a write transaction, SIGTERM with requests still in flight.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU8, Ordering},
    },
    time::{Duration, Instant},
};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::{Connection, MySqlConnection};

use crate::{
    helpers::{OwnMariaDb, TestDb, binary},
    replicas::{Sidecar, replica_env},
};

/// What one HTTP call got back, and how long it took.
#[derive(Debug)]
struct Outcome {
    status: StatusCode,
    content_type: String,
    body: Value,
    elapsed: Duration,
}

fn http() -> reqwest::Client {
    // Far above any answer the service should give; only a hang comes near it.
    reqwest::Client::builder().timeout(Duration::from_secs(60)).build().unwrap()
}

async fn request(
    http: &reqwest::Client,
    base: &str,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> Outcome {
    let started = Instant::now();
    let mut req = http.request(method, format!("{base}{path}")).bearer_auth(token);
    if let Some(body) = body {
        req = req.json(&body);
    }
    let resp = req.send().await.unwrap_or_else(|e| panic!("{path}: no HTTP answer: {e}"));
    let status = resp.status();
    let content_type =
        resp.headers().get("content-type").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    let text = resp.text().await.unwrap_or_else(|e| panic!("{path}: the body was cut off: {e}"));
    Outcome {
        status,
        content_type,
        body: serde_json::from_str(&text).unwrap_or(Value::Null),
        elapsed: started.elapsed(),
    }
}

async fn sign_in(http: &reqwest::Client, base: &str, user: &str, password: &str) -> String {
    let resp = http
        .post(format!("{base}/api/auth/login/"))
        .json(&json!({"username": user, "password": password}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_string()
}

fn assert_503_problem(outcome: &Outcome) {
    assert_eq!(outcome.status, StatusCode::SERVICE_UNAVAILABLE, "{outcome:?}");
    assert_eq!(outcome.content_type, "application/problem+json", "{outcome:?}");
    assert_eq!(outcome.body["status"], 503, "{outcome:?}");
}

fn assert_healthy_process(sidecar: &mut Sidecar) {
    assert!(sidecar.is_running(), "the process exited: {}", sidecar.log());
    assert!(!sidecar.log().contains("panicked"), "{}", sidecar.log());
}

// The phases of the outage test, as seen by each request when it starts and ends.
const UP: u8 = 0;
const STOPPING: u8 = 1;
const DOWN: u8 = 2;
const RESTARTING: u8 = 3;
const RESTARTED: u8 = 4;

/// The database stopped under load: every answer is a 200 (before the stop) or a 503 problem, none
/// takes more than a few seconds, the process survives, and once the database is back the same
/// requests succeed again without restarting it.
#[tokio::test]
async fn database_stopped_under_load_gives_prompt_503s_and_recovers_without_restart() {
    let own = OwnMariaDb::start();
    own.load("openemr");
    let url = own.url("openemr");
    let migrated = std::process::Command::new(binary())
        .arg("migrate")
        .env_clear()
        .env("DATABASE_URL", &url)
        .env("MMT_MASTER_KEY", crate::helpers::TEST_MASTER_KEY)
        .output()
        .unwrap();
    assert!(migrated.status.success(), "{}", String::from_utf8_lossy(&migrated.stderr));
    let mut sidecar = Sidecar::start(vec![
        ("DATABASE_URL", url),
        ("LOG_FORMAT", "json".into()),
        ("MMT_MASTER_KEY", crate::helpers::TEST_MASTER_KEY.into()),
    ])
    .await;
    let base = sidecar.url("");
    let http = http();
    let token = sign_in(&http, &base, "admin", "Sidecar-Admin-1").await;

    let phase = Arc::new(AtomicU8::new(UP));
    let done = Arc::new(AtomicBool::new(false));
    let outcomes = Arc::new(Mutex::new(Vec::<(u8, u8, Outcome)>::new()));
    let workers: Vec<_> = (1..=6)
        .map(|pid| {
            let (http, base, token) = (http.clone(), base.clone(), token.clone());
            let (phase, done, outcomes) = (phase.clone(), done.clone(), outcomes.clone());
            tokio::spawn(async move {
                while !done.load(Ordering::SeqCst) {
                    let at_start = phase.load(Ordering::SeqCst);
                    let path = format!("/api/patients/{pid}/");
                    let outcome = request(&http, &base, Method::GET, &path, &token, None).await;
                    outcomes.lock().unwrap().push((at_start, phase.load(Ordering::SeqCst), outcome));
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            })
        })
        .collect();

    let own = Arc::new(own);
    tokio::time::sleep(Duration::from_secs(1)).await;
    phase.store(STOPPING, Ordering::SeqCst);
    let stopping = own.clone();
    tokio::task::spawn_blocking(move || stopping.stop()).await.unwrap();
    phase.store(DOWN, Ordering::SeqCst);
    // A 503 may take up to the pool's acquire timeout (3 s): long enough for several per worker.
    tokio::time::sleep(Duration::from_secs(8)).await;
    phase.store(RESTARTING, Ordering::SeqCst);
    let restarting = own.clone();
    tokio::task::spawn_blocking(move || restarting.restart()).await.unwrap();
    phase.store(RESTARTED, Ordering::SeqCst);

    // Recovered when every worker's latest answer is a 200 again.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let recovered = {
            let all = outcomes.lock().unwrap();
            let after: Vec<_> = all.iter().filter(|(start, _, _)| *start == RESTARTED).collect();
            after.len() >= 12 && after.iter().rev().take(6).all(|(_, _, o)| o.status == StatusCode::OK)
        };
        if recovered {
            break;
        }
        assert!(Instant::now() < deadline, "the service did not recover after the database restarted");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    done.store(true, Ordering::SeqCst);
    for worker in workers {
        worker.await.unwrap();
    }

    let outcomes = std::mem::take(&mut *outcomes.lock().unwrap());
    for (start, end, outcome) in &outcomes {
        assert!(outcome.elapsed < Duration::from_secs(10), "a request hung ({start}->{end}): {outcome:?}");
        if outcome.status != StatusCode::OK {
            assert_503_problem(outcome);
        }
        if *end == UP {
            assert_eq!(outcome.status, StatusCode::OK, "before the stop: {outcome:?}");
        }
    }
    let down: Vec<_> = outcomes.iter().filter(|(s, e, _)| *s == DOWN && *e == DOWN).collect();
    assert!(down.len() >= 6, "requests were made while the database was down: {}", down.len());
    assert!(down.iter().all(|(_, _, o)| o.status == StatusCode::SERVICE_UNAVAILABLE), "{down:?}");

    let paths: Vec<String> = (1..=6).map(|pid| format!("/api/patients/{pid}/")).collect();
    let again = futures_util::future::join_all(
        paths.iter().map(|path| request(&http, &base, Method::GET, path, &token, None)),
    )
    .await;
    assert!(again.iter().all(|o| o.status == StatusCode::OK), "{again:?}");
    assert_healthy_process(&mut sidecar);
}

/// A demo database, the binary on it and a physician's token.
struct Fixture {
    db: TestDb,
    sidecar: Sidecar,
    http: reqwest::Client,
    token: String,
}

impl Fixture {
    async fn new() -> Self {
        let db = TestDb::migrated().await;
        let sidecar = Sidecar::start(replica_env(&db, &[])).await;
        let http = http();
        let token = sign_in(&http, &sidecar.url(""), "drgarcia", "Physician-Garcia-2").await;
        Self { db, sidecar, http, token }
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Outcome {
        request(&self.http, &self.sidecar.url(""), method, path, &self.token, body).await
    }

    /// Sends the request in the background, so the test can interfere while it runs.
    fn spawn_call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> tokio::task::JoinHandle<Outcome> {
        let (http, base, token, path) =
            (self.http.clone(), self.sidecar.url(""), self.token.clone(), path.to_string());
        tokio::spawn(async move { request(&http, &base, method, &path, &token, body).await })
    }

    /// `LOCK TABLES …` on a connection of the test's own; the lock lasts until `UNLOCK TABLES`.
    async fn lock(&self, tables: &str) -> MySqlConnection {
        let mut conn = MySqlConnection::connect(&self.db.url).await.unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("LOCK TABLES {tables}"))).execute(&mut conn).await.unwrap();
        conn
    }

    /// Connection ids of this database's statements (other than the test's own) matching `pattern`.
    async fn statements(&self, pattern: &str) -> Vec<i64> {
        sqlx::query_scalar(
            "SELECT ID FROM information_schema.PROCESSLIST \
             WHERE DB = ? AND ID <> CONNECTION_ID() AND INFO LIKE ? ORDER BY ID",
        )
        .bind(&self.db.name)
        .bind(pattern)
        .fetch_all(&self.db.pool)
        .await
        .unwrap()
    }

    /// Waits until at least `n` statements matching `pattern` are running (blocked).
    async fn blocked(&self, pattern: &str, n: usize) -> Vec<i64> {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let ids = self.statements(pattern).await;
            if ids.len() >= n {
                return ids;
            }
            assert!(Instant::now() < deadline, "no blocked `{pattern}` statement appeared");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// KILLs the connection and waits until the server has rolled it back and let it go.
    async fn kill(&self, id: i64) {
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("KILL CONNECTION {id}")))
            .execute(&self.db.pool)
            .await
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let alive: i64 =
                sqlx::query_scalar("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = ?")
                    .bind(id)
                    .fetch_one(&self.db.pool)
                    .await
                    .unwrap();
            if alive == 0 {
                return;
            }
            assert!(Instant::now() < deadline, "connection {id} outlived its KILL");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn counts(&self, tables: &[&str]) -> Vec<(String, i64)> {
        let mut counts = Vec::new();
        for table in tables {
            let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
                .fetch_one(&self.db.pool)
                .await
                .unwrap();
            counts.push((table.to_string(), n));
        }
        counts
    }

    /// With `locker` holding a table that `call`'s transaction writes midway, KILLs the sidecar's
    /// connection once its statement matching `pattern` blocks, frees the table, and returns the
    /// answer, which must come promptly.
    async fn kill_midway(
        &self,
        mut locker: MySqlConnection,
        pattern: &str,
        call: tokio::task::JoinHandle<Outcome>,
    ) -> Outcome {
        let ids = self.blocked(pattern, 1).await;
        assert_eq!(ids.len(), 1, "{ids:?}");
        self.kill(ids[0]).await;
        let killed = Instant::now();
        sqlx::raw_sql("UNLOCK TABLES").execute(&mut locker).await.unwrap();
        locker.close().await.unwrap();
        let outcome = call.await.unwrap();
        assert!(killed.elapsed() < Duration::from_secs(10), "no prompt answer after the KILL: {outcome:?}");
        outcome
    }
}

const ENCOUNTER_TABLES: [&str; 4] = ["form_encounter", "forms", "uuid_registry", "log"];

#[tokio::test]
async fn a_connection_killed_while_creating_an_encounter_leaves_nothing_behind() {
    let mut fx = Fixture::new().await;
    let before = fx.counts(&ENCOUNTER_TABLES).await;
    let body = json!({"pid": 1, "facility_id": 3});
    // Locked before the call starts: uuid_registry and form_encounter are written, `forms` blocks.
    let locker = fx.lock("forms READ").await;
    let call = fx.spawn_call(Method::POST, "/api/encounters/", Some(body.clone()));
    let outcome = fx.kill_midway(locker, "INSERT INTO forms %", call).await;
    assert_503_problem(&outcome);
    assert_eq!(fx.counts(&ENCOUNTER_TABLES).await, before, "no half-written encounter");

    let retry = fx.call(Method::POST, "/api/encounters/", Some(body)).await;
    assert_eq!(retry.status, StatusCode::CREATED, "{retry:?}");
    assert_healthy_process(&mut fx.sidecar);
}

const TRANSCRIPTION_TABLES: [&str; 4] =
    ["mmt_transcriptions", "mmt_transcription_segments", "mmt_transcription_revisions", "log"];

fn draft(pid: i64, encounter: Option<i64>) -> Value {
    json!({
        "id": uuid::Uuid::new_v4().to_string(),
        "pid": pid,
        "encounter": encounter,
        "title": "Interrupted",
        "segments": [{"seq": 0, "start_ms": 0, "end_ms": 1500, "text": "Killed mid-transaction."}]
    })
}

#[tokio::test]
async fn a_connection_killed_while_creating_a_transcription_leaves_nothing_behind() {
    let mut fx = Fixture::new().await;
    let before = fx.counts(&TRANSCRIPTION_TABLES).await;
    let body = draft(2, None);
    // The transaction writes the transcription, its segments and first revision, then the audit row.
    let locker = fx.lock("log READ").await;
    let call = fx.spawn_call(Method::POST, "/api/transcriptions/", Some(body.clone()));
    let outcome = fx.kill_midway(locker, "INSERT INTO log (%", call).await;
    assert_503_problem(&outcome);
    assert_eq!(fx.counts(&TRANSCRIPTION_TABLES).await, before, "no half-written transcription");

    let retry = fx.call(Method::POST, "/api/transcriptions/", Some(body)).await;
    assert_eq!(retry.status, StatusCode::CREATED, "the id is still free: {retry:?}");
    assert_healthy_process(&mut fx.sidecar);
}

const FILING_TABLES: [&str; 4] = ["forms", "form_clinical_notes", "uuid_registry", "log"];

#[tokio::test]
async fn a_connection_killed_while_filing_leaves_the_transcription_approved_and_the_chart_unchanged() {
    let mut fx = Fixture::new().await;
    let created = fx.call(Method::POST, "/api/encounters/", Some(json!({"pid": 3, "facility_id": 3}))).await;
    assert_eq!(created.status, StatusCode::CREATED, "{created:?}");
    let encounter = created.body["encounter"].as_i64().unwrap();
    let body = draft(3, Some(encounter));
    let id = body["id"].as_str().unwrap().to_string();
    assert_eq!(fx.call(Method::POST, "/api/transcriptions/", Some(body)).await.status, StatusCode::CREATED);
    for action in ["submit", "approve"] {
        let done = fx.call(Method::POST, &format!("/api/transcriptions/{id}/{action}/"), None).await;
        assert_eq!(done.status, StatusCode::OK, "{done:?}");
    }
    let before = fx.counts(&FILING_TABLES).await;
    // Filing adds the encounter's Clinical Notes `forms` row and a uuid, then the note itself.
    let locker = fx.lock("form_clinical_notes READ").await;
    let path = format!("/api/transcriptions/{id}/integrate_with_openemr/");
    let call = fx.spawn_call(Method::POST, &path, None);
    let outcome = fx.kill_midway(locker, "INSERT INTO form_clinical_notes %", call).await;
    assert_503_problem(&outcome);
    assert_eq!(fx.counts(&FILING_TABLES).await, before, "nothing was filed");
    let still = fx.call(Method::GET, &format!("/api/transcriptions/{id}/"), None).await;
    assert_eq!(still.body["status"], "approved", "{still:?}");

    let filed = fx.call(Method::POST, &path, None).await;
    assert_eq!(filed.status, StatusCode::OK, "filing again works: {filed:?}");
    assert_eq!(filed.body["status"], "filed");
    let notes: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM form_clinical_notes WHERE encounter = ?")
        .bind(encounter.to_string())
        .fetch_one(&fx.db.pool)
        .await
        .unwrap();
    assert_eq!(notes, 1);
    assert_healthy_process(&mut fx.sidecar);
}

/// SIGTERM while several real API requests wait on the database: they all complete with full
/// answers once it frees up, and the process then exits 0.
#[tokio::test]
async fn sigterm_lets_requests_waiting_on_the_database_complete() {
    let mut fx = Fixture::new().await;
    let mut locker = fx.lock("patient_data WRITE").await;
    let mut calls: Vec<_> =
        (1..=3).map(|pid| fx.spawn_call(Method::GET, &format!("/api/patients/{pid}/"), None)).collect();
    calls.extend((4..=5).map(|pid| {
        fx.spawn_call(Method::POST, "/api/encounters/", Some(json!({"pid": pid, "facility_id": 3})))
    }));
    fx.blocked("%FROM patient_data WHERE pid =%", 5).await;

    fx.sidecar.terminate();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(fx.sidecar.is_running(), "the process waits for its in-flight requests");
    sqlx::raw_sql("UNLOCK TABLES").execute(&mut locker).await.unwrap();

    let outcomes = futures_util::future::join_all(calls).await;
    for (i, outcome) in outcomes.into_iter().enumerate() {
        let outcome = outcome.unwrap();
        if i < 3 {
            assert_eq!(outcome.status, StatusCode::OK, "{outcome:?}");
            assert_eq!(outcome.body["pid"], i as i64 + 1, "{outcome:?}");
        } else {
            assert_eq!(outcome.status, StatusCode::CREATED, "{outcome:?}");
            assert!(outcome.body["encounter"].as_i64().is_some(), "{outcome:?}");
        }
    }
    let status = fx.sidecar.exit_status(Duration::from_secs(10)).await.expect("the process exits");
    assert!(status.success(), "exit status {status:?}: {}", fx.sidecar.log());
    assert!(fx.sidecar.log().contains("finishing in-flight requests"));
    assert!(!fx.sidecar.log().contains("panicked"));
}
