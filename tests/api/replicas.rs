//! Three real `mmt-sidecar serve` processes on one database behave as one service: migrations
//! applied once, tokens and their revocation, the sign-in throttle and transcription filing are
//! all kept in the shared database, never in one process's memory.

use std::{
    collections::HashSet,
    io::Read,
    net::SocketAddr,
    process::{Child, ExitStatus},
    sync::{Arc, Mutex},
    time::Duration,
};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestDb, spawn_binary};

/// A running `mmt-sidecar serve` process, killed when dropped. Its stderr is drained continuously
/// (an unread pipe would fill and block the process) and kept for assertions.
pub struct Sidecar {
    child: Child,
    pub addr: SocketAddr,
    log: Arc<Mutex<Vec<u8>>>,
}

impl Sidecar {
    pub async fn start(env: Vec<(&'static str, String)>) -> Self {
        let (mut child, addr) = spawn_binary(env).await;
        let mut pipe = child.stderr.take().expect("spawn_binary pipes stderr");
        let log = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            while let Ok(n) = pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        Self { child, addr, log }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn log(&self) -> String {
        String::from_utf8_lossy(&self.log.lock().unwrap()).into_owned()
    }

    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    pub fn terminate(&self) {
        let pid = self.child.id().to_string();
        assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    }

    /// Waits up to `limit` for the process to exit by itself.
    pub async fn exit_status(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = tokio::time::Instant::now() + limit;
        while tokio::time::Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        None
    }
}

impl Drop for Sidecar {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Environment for one replica; every replica gets the same database.
pub fn replica_env(db: &TestDb, extra: &[(&'static str, &str)]) -> Vec<(&'static str, String)> {
    let mut env = db.env();
    env.push(("MMT_COOKIE_SECURE", "false".into()));
    env.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
    env
}

/// An HTTP call to one replica: (status, body as JSON or Null, Retry-After).
pub async fn call(
    http: &reqwest::Client,
    replica: &Sidecar,
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value, Option<String>) {
    let mut req = http.request(method, replica.url(path));
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    if let Some(body) = body {
        req = req.json(&body);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let retry = resp.headers().get("retry-after").map(|v| v.to_str().unwrap().to_string());
    let text = resp.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null), retry)
}

async fn login(http: &reqwest::Client, replica: &Sidecar, user: &str, password: &str) -> (StatusCode, Value) {
    let body = json!({"username": user, "password": password});
    let (status, body, _) =
        call(http, replica, reqwest::Method::POST, "/api/auth/login/", None, Some(body)).await;
    (status, body)
}

async fn me(http: &reqwest::Client, replica: &Sidecar, access: &str) -> StatusCode {
    call(http, replica, reqwest::Method::GET, "/api/auth/user/", Some(access), None).await.0
}

async fn refresh(http: &reqwest::Client, replica: &Sidecar, refresh_token: &str) -> (StatusCode, Value) {
    let body = json!({"refresh_token": refresh_token});
    let (status, body, _) =
        call(http, replica, reqwest::Method::POST, "/api/auth/refresh/", None, Some(body)).await;
    (status, body)
}

fn pair(body: &Value) -> (String, String) {
    (body["access_token"].as_str().unwrap().into(), body["refresh_token"].as_str().unwrap().into())
}

/// `serve --migrate` started on three replicas at once applies each migration exactly once.
async fn migrations_are_applied_once(db: &TestDb, replicas: &[Sidecar]) {
    let rows: Vec<(i64, bool)> = sqlx::query_as("SELECT version, success FROM mmt_schema_migrations")
        .fetch_all(&db.pool)
        .await
        .unwrap();
    let embedded = mmt_sidecar::storage::mmt::migrations::MIGRATOR.iter().count();
    assert_eq!(rows.len(), embedded, "{rows:?}");
    assert!(rows.iter().all(|(_, ok)| *ok), "{rows:?}");
    let http = reqwest::Client::new();
    for replica in replicas {
        let (status, body, _) = call(&http, replica, reqwest::Method::GET, "/api/health/", None, None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(body["migrations"].as_str().unwrap().starts_with("up to date"), "{body}");
    }
}

/// A token issued by one replica works on the others, and revocation on one is seen at once by all.
async fn tokens_and_revocation_are_shared(http: &reqwest::Client, [a, b, c]: &[Sidecar; 3]) {
    let (status, body) = login(http, a, "admin", "Sidecar-Admin-1").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (access, _) = pair(&body);
    for replica in [a, b, c] {
        assert_eq!(me(http, replica, &access).await, StatusCode::OK);
    }
    let (status, _, _) = call(http, b, reqwest::Method::POST, "/api/auth/logout/", Some(&access), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(me(http, a, &access).await, StatusCode::UNAUTHORIZED, "logout on B ends the token on A");
    assert_eq!(me(http, c, &access).await, StatusCode::UNAUTHORIZED, "logout on B ends the token on C");

    let (_, body) = login(http, a, "admin", "Sidecar-Admin-1").await;
    let (_, first_refresh) = pair(&body);
    let (status, rotated) = refresh(http, c, &first_refresh).await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    let (new_access, new_refresh) = pair(&rotated);
    assert_eq!(me(http, b, &new_access).await, StatusCode::OK);
    let (status, body) = refresh(http, a, &first_refresh).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "reusing C's spent refresh token on A: {body}");
    assert!(body["detail"].as_str().unwrap().contains("already used"), "{body}");
    for replica in [a, b, c] {
        assert_eq!(me(http, replica, &new_access).await, StatusCode::UNAUTHORIZED, "the family is revoked");
    }
    assert_eq!(refresh(http, b, &new_refresh).await.0, StatusCode::UNAUTHORIZED);
}

/// Failed sign-ins spread over the replicas count against one per-user limit (5 by default).
async fn failed_sign_ins_count_together(http: &reqwest::Client, replicas: &[Sidecar; 3]) {
    for replica in replicas.iter().cycle().take(5) {
        assert_eq!(login(http, replica, "acctbrown", "not-it").await.0, StatusCode::UNAUTHORIZED);
    }
    for replica in replicas {
        let body = json!({"username": "acctbrown", "password": "Billing-Brown-7"});
        let (status, problem, retry) =
            call(http, replica, reqwest::Method::POST, "/api/auth/login/", None, Some(body)).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{problem}");
        let retry: u64 = retry.expect("Retry-After").parse().unwrap();
        assert!((1..=900).contains(&retry), "{retry}");
        assert_eq!(problem["status"], 429);
    }
    assert_eq!(login(http, &replicas[1], "admin", "Sidecar-Admin-1").await.0, StatusCode::OK);
}

/// One approved transcription filed concurrently through every replica files exactly one note.
async fn concurrent_filing_files_one_note(db: &TestDb, http: &reqwest::Client, [a, b, c]: &[Sidecar; 3]) {
    use reqwest::Method;
    let (status, body) = login(http, b, "drgarcia", "Physician-Garcia-2").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (token, _) = pair(&body);
    let token = Some(token.as_str());
    let (status, encounter, _) =
        call(http, a, Method::POST, "/api/encounters/", token, Some(json!({"pid": 7, "facility_id": 3})))
            .await;
    assert_eq!(status, StatusCode::CREATED, "{encounter}");
    let encounter = encounter["encounter"].as_i64().unwrap();
    let id = uuid::Uuid::new_v4().to_string();
    let draft = json!({
        "id": id, "pid": 7, "encounter": encounter, "title": "Replicated",
        "segments": [{"seq": 0, "start_ms": 0, "end_ms": 1000, "text": "One note, three replicas."}]
    });
    let (status, body, _) = call(http, b, Method::POST, "/api/transcriptions/", token, Some(draft)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    for (replica, action) in [(c, "submit"), (a, "approve")] {
        let path = format!("/api/transcriptions/{id}/{action}/");
        let (status, body, _) = call(http, replica, Method::POST, &path, token, None).await;
        assert_eq!(status, StatusCode::OK, "{action}: {body}");
    }

    let path = format!("/api/transcriptions/{id}/integrate_with_openemr/");
    let calls = [a, b, c].into_iter().flat_map(|r| (0..10).map(move |_| r));
    let results = futures_util::future::join_all(
        calls.map(|replica| call(http, replica, Method::POST, &path, token, None)),
    )
    .await;
    let note_ids: HashSet<i64> = results
        .iter()
        .map(|(status, body, _)| {
            assert_eq!(*status, StatusCode::OK, "{body}");
            assert_eq!(body["status"], "filed");
            body["filed"]["note_id"].as_i64().unwrap()
        })
        .collect();
    assert_eq!(note_ids.len(), 1, "every call reports the same note");
    let notes =
        db.scalar(&format!("SELECT COUNT(*) FROM form_clinical_notes WHERE encounter = '{encounter}'")).await;
    assert_eq!(notes, 1);
    let forms = db
        .scalar(&format!(
            "SELECT COUNT(*) FROM forms WHERE formdir = 'clinical_notes' AND encounter = {encounter}"
        ))
        .await;
    assert_eq!(forms, 1);
}

#[tokio::test]
async fn three_replicas_on_one_database_behave_as_one_service() {
    let db = TestDb::openemr().await;
    let env = replica_env(&db, &[("MMT_AUTO_MIGRATE", "true")]);
    let (a, b, c) =
        tokio::join!(Sidecar::start(env.clone()), Sidecar::start(env.clone()), Sidecar::start(env));
    let replicas = [a, b, c];
    let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();

    migrations_are_applied_once(&db, &replicas).await;
    tokens_and_revocation_are_shared(&http, &replicas).await;
    failed_sign_ins_count_together(&http, &replicas).await;
    concurrent_filing_files_one_note(&db, &http, &replicas).await;

    for mut replica in replicas {
        assert!(replica.is_running(), "a replica died: {}", replica.log());
        assert!(!replica.log().contains("panicked"), "{}", replica.log());
    }
}
