//! Single sign-on from PHP sessions kept as rows by a PDO session handler. Every row is written by
//! PHP itself (`tests/php/write_session_row.php`), in both serialize handlers and both OpenEMR layouts.

use std::{
    io::Write,
    process::{Command, Stdio},
};

use poem::http::StatusCode;
use serde_json::{Value, json};

use crate::{
    bridge::{Bridge, SessionData, new_session_id},
    helpers::{TestDb, repo_path},
};

const SESSIONS: &str = "CREATE TABLE sessions (sess_id VARBINARY(128) NOT NULL PRIMARY KEY, \
    sess_data MEDIUMBLOB NOT NULL, sess_lifetime INTEGER UNSIGNED NOT NULL, \
    sess_time INTEGER UNSIGNED NOT NULL) COLLATE utf8mb4_bin";
const TABLE: (&str, &str) = ("OPENEMR_SESSION_TABLE", "sessions");

struct Row<'a> {
    handler: &'a str,
    layout: &'a str,
    site: &'a str,
    /// Seconds since PHP last wrote the row; the lifetime is 1440 s, PHP's default.
    age: i64,
    padding: usize,
}

const FLAT: Row = Row { handler: "php", layout: "flat", site: "default", age: 0, padding: 0 };

async fn create_sessions_table(db: &TestDb) {
    sqlx::raw_sql(SESSIONS).execute(&db.pool).await.unwrap();
}

/// A bridge whose OpenEMR database also holds the `sessions` table, and a signed-in `nkim`.
async fn bridge_with_table() -> (Bridge, SessionData) {
    let b = Bridge::new().await;
    create_sessions_table(&b.db).await;
    let mut s = b.user("nkim").await;
    s.tracker = Some(b.track(30).await);
    (b, s)
}

/// Has PHP's session machinery write `s` into `sessions` of the database at `url`; returns its id.
fn php_write(url: &str, s: &SessionData, row: &Row) -> String {
    let id = new_session_id();
    let request = json!({
        "url": url, "table": "sessions", "id": id, "handler": row.handler, "layout": row.layout,
        "age": row.age, "lifetime": 1440, "padding": row.padding,
        "session": {
            "site_id": row.site, "authUser": s.user, "authUserID": s.user_id, "authPass": s.pass,
            "authProvider": "Default",
            "session_database_uuid": hex::encode(s.tracker.expect("a tracked session")),
        },
    });
    let mut php = Command::new("php")
        .arg(repo_path("tests/php/write_session_row.php"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("php is required (Debian php-cli and php-mysql; scripts/test.sh installs them)");
    php.stdin.take().unwrap().write_all(request.to_string().as_bytes()).unwrap();
    let out = php.wait_with_output().unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && said.is_empty(), "php: {said}");
    id
}

async fn stored_data(db: &TestDb, id: &str) -> Vec<u8> {
    sqlx::query_scalar("SELECT sess_data FROM sessions WHERE sess_id = ?")
        .bind(id)
        .fetch_one(&db.pool)
        .await
        .unwrap()
}

fn detail(body: &Value) -> &str {
    body["detail"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn rows_php_wrote_sign_in_under_both_handlers_and_layouts() {
    let (b, s) = bridge_with_table().await;
    for (handler, layout, starts) in [
        ("php", "flat", "authPass|"),
        ("php", "nested", "OpenEMR|a:6:{"),
        ("php_serialize", "flat", "a:6:{s:8:\"authPass\""),
        ("php_serialize", "nested", "a:3:{s:7:\"OpenEMR\";a:6:{"),
    ] {
        let id = php_write(&b.db.url, &s, &Row { handler, layout, ..FLAT });
        let data = stored_data(&b.db, &id).await;
        assert!(
            data.starts_with(starts.as_bytes()),
            "{handler}/{layout}: {}",
            String::from_utf8_lossy(&data)
        );
        let (status, body) = b.get_user_with(&[TABLE], &id).await;
        assert_eq!(status, StatusCode::OK, "{handler}/{layout}: {body}");
        assert_eq!(
            (body["username"].as_str(), body["sign_in_method"].as_str()),
            (Some("nkim"), Some("bridge"))
        );
    }
    let health: Value =
        b.db.client_with(&[TABLE]).get("/api/health/").send().await.json().await.value().deserialize();
    assert_eq!(health["session_source"], "table");
}

#[tokio::test]
async fn expired_tampered_foreign_and_unknown_rows_are_refused() {
    let (b, s) = bridge_with_table().await;
    let refused = async |id: &str, why: &str| {
        let (status, body) = b.get_user_with(&[TABLE], id).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{why}: {body}");
        assert!(detail(&body).contains(why), "{why}: {body}");
    };
    refused(&php_write(&b.db.url, &s, &Row { age: 1441, ..FLAT }), "expired").await;
    assert_eq!(
        b.get_user_with(&[TABLE], &php_write(&b.db.url, &s, &Row { age: 1439, ..FLAT })).await.0,
        StatusCode::OK
    );

    let tampered = php_write(&b.db.url, &s, &Row { handler: "php_serialize", ..FLAT });
    sqlx::query(
        "UPDATE sessions SET sess_data = SUBSTRING(sess_data, 1, LENGTH(sess_data) - 2) WHERE sess_id = ?",
    )
    .bind(&tampered)
    .execute(&b.db.pool)
    .await
    .unwrap();
    refused(&tampered, "not PHP-serialized").await;

    refused(&php_write(&b.db.url, &s, &Row { site: "clinic", ..FLAT }), "another OpenEMR site").await;
    let nobody =
        SessionData { user: "nobody".into(), user_id: 999_999, pass: s.pass.clone(), tracker: s.tracker };
    refused(&php_write(&b.db.url, &nobody, &FLAT), "unknown or inactive").await;
    refused(&new_session_id(), "no such OpenEMR session").await;
}

#[tokio::test]
async fn an_oversized_row_is_refused_without_reading_it() {
    let (b, s) = bridge_with_table().await;
    let id = php_write(&b.db.url, &s, &Row { padding: mmt_sidecar::php::session::MAX_LEN, ..FLAT });
    let (status, body) = b.get_user_with(&[TABLE], &id).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(detail(&body).contains("too large"), "{body}");
}

#[tokio::test]
async fn a_malformed_session_id_is_refused_before_any_query() {
    let b = Bridge::new().await;
    // No such table: any query would fail with a server error, not a refusal.
    let missing = [("OPENEMR_SESSION_TABLE", "no_such_table")];
    for bad in ["short", "../../etc/passwd-and-then-some-more", "a'; DROP TABLE users; --------"] {
        let (status, body) = b.get_user_with(&missing, bad).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{bad}: {body}");
        assert!(detail(&body).contains("malformed"), "{bad}: {body}");
    }
    let (status, body) = b.get_user_with(&missing, &new_session_id()).await;
    assert!(status.is_server_error(), "a well-formed id does reach the table: {status} {body}");
}

#[tokio::test]
async fn a_table_in_another_database_is_read_there() {
    let b = Bridge::new().await;
    let other = TestDb::empty().await;
    create_sessions_table(&other).await;
    let mut s = b.user("drgarcia").await;
    s.tracker = Some(b.track(5).await);
    let id = php_write(&other.url, &s, &Row { handler: "php_serialize", layout: "nested", ..FLAT });

    let (status, body) = b.get_user_with(&[TABLE, ("OPENEMR_SESSION_DATABASE_URL", &other.url)], &id).await;
    assert_eq!(status, StatusCode::OK, "own URL: {body}");
    assert_eq!(body["username"], "drgarcia");
    let qualified = format!("{}.sessions", other.name);
    let (status, body) = b.get_user_with(&[("OPENEMR_SESSION_TABLE", &qualified)], &id).await;
    assert_eq!(status, StatusCode::OK, "database.table on OpenEMR's server: {body}");
}

fn run_with(db: &TestDb, args: &[&str], extra: &[(&str, &str)]) -> (Option<i32>, String) {
    let out = db.run_binary_with(args, extra);
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code(), said)
}

#[tokio::test]
async fn naming_two_session_sources_is_refused_at_start() {
    let db = TestDb::empty().await;
    let (code, said) = run_with(&db, &["check"], &[("OPENEMR_SESSION_DIR", "/tmp"), TABLE]);
    assert_eq!(code, Some(2), "{said}");
    assert!(
        said.contains("OPENEMR_SESSION_DIR, OPENEMR_SESSION_TABLE: name one PHP session source"),
        "{said}"
    );
}

#[tokio::test]
async fn check_reports_the_table_source_and_its_missing_columns() {
    let db = TestDb::migrated().await;
    create_sessions_table(&db).await;
    let (code, said) = run_with(&db, &["check"], &[TABLE]);
    assert_eq!(code, Some(0), "{said}");
    assert!(said.contains("session source: table") && said.contains("check: OK"), "{said}");

    sqlx::raw_sql(
        "CREATE TABLE short_sessions (sess_id VARCHAR(128) PRIMARY KEY, sess_data TEXT, sess_time DATETIME)",
    )
    .execute(&db.pool)
    .await
    .unwrap();
    let (code, said) = run_with(&db, &["check"], &[("OPENEMR_SESSION_TABLE", "short_sessions")]);
    assert_eq!(code, Some(1), "{said}");
    assert!(said.contains("column `short_sessions.sess_lifetime` is missing"), "{said}");
    assert!(
        said.contains("column `short_sessions.sess_time` is datetime, expected an integer type"),
        "{said}"
    );
    let (_, said) = run_with(&db, &["check"], &[("OPENEMR_SESSION_TABLE", "absent")]);
    assert!(said.contains("table `absent` is missing"), "{said}");
}
