//! Single sign-on from OpenEMR's PHP sessions. Session files are written in PHP's own `php`
//! serialize-handler format, in OpenEMR 7's flat layout and OpenEMR 8's nested Symfony layout.

use std::path::PathBuf;

use poem::http::StatusCode;
use serde_json::Value;

use crate::helpers::{TestDb, redis_url};

fn php_string(v: &[u8]) -> Vec<u8> {
    [format!("s:{}:\"", v.len()).into_bytes(), v.to_vec(), b"\";".to_vec()].concat()
}

pub(crate) struct SessionData {
    pub(crate) user: String,
    pub(crate) user_id: i64,
    pub(crate) pass: String,
    pub(crate) tracker: Option<[u8; 16]>,
}

/// The attributes OpenEMR stores for a signed-in user, serialized as PHP would.
fn attributes(s: &SessionData) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut attrs = vec![
        (b"site_id".to_vec(), php_string(b"default")),
        (b"authUser".to_vec(), php_string(s.user.as_bytes())),
        (b"authPass".to_vec(), php_string(s.pass.as_bytes())),
        (b"authUserID".to_vec(), format!("i:{};", s.user_id).into_bytes()),
        (b"authProvider".to_vec(), php_string(b"Default")),
        (b"csrf_private_key".to_vec(), php_string(&[0xff, 0x00, b'|', b';', 0x80, 7, 9, 250])),
    ];
    if let Some(uuid) = s.tracker {
        attrs.push((b"session_database_uuid".to_vec(), php_string(&uuid)));
    }
    attrs
}

fn flat_session(s: &SessionData) -> Vec<u8> {
    attributes(s).into_iter().flat_map(|(k, v)| [k, b"|".to_vec(), v].concat()).collect()
}

fn nested_session(s: &SessionData) -> Vec<u8> {
    let attrs = attributes(s);
    let mut out = format!("OpenEMR|a:{}:{{", attrs.len()).into_bytes();
    for (k, v) in attrs {
        out.extend(php_string(&k));
        out.extend(v);
    }
    out.extend(b"}_symfony_flashes|a:0:{}_sf2_meta|a:3:{s:1:\"u\";i:");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    out.extend(format!("{now};s:1:\"c\";i:{now};s:1:\"l\";i:0;}}").into_bytes());
    out
}

pub(crate) struct Bridge {
    pub(crate) db: TestDb,
    dir: PathBuf,
}

impl Bridge {
    pub(crate) async fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("mmt-sessions-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        Self { db: TestDb::migrated().await, dir }
    }

    pub(crate) async fn user(&self, username: &str) -> SessionData {
        let (user_id, pass): (i64, String) = sqlx::query_as(
            "SELECT u.id, s.password FROM users u JOIN users_secure s ON s.id = u.id WHERE u.username = ?",
        )
        .bind(username)
        .fetch_one(&self.db.pool)
        .await
        .unwrap();
        SessionData { user: username.into(), user_id, pass, tracker: None }
    }

    pub(crate) async fn track(&self, idle_secs: i64) -> [u8; 16] {
        let uuid = *uuid::Uuid::new_v4().as_bytes();
        sqlx::query(
            "INSERT INTO session_tracker (uuid, created, last_updated, number_scripts) \
             VALUES (?, NOW() - INTERVAL ? SECOND, NOW() - INTERVAL ? SECOND, 3)",
        )
        .bind(&uuid[..])
        .bind(idle_secs)
        .bind(idle_secs)
        .execute(&self.db.pool)
        .await
        .unwrap();
        uuid
    }

    /// A live OpenEMR 7 session of `username` (tracked, active 5 s ago); returns its id.
    async fn live_session(&self, username: &str) -> String {
        let mut s = self.user(username).await;
        s.tracker = Some(self.track(5).await);
        self.write(&flat_session(&s))
    }

    fn client(&self) -> poem::test::TestClient<impl poem::Endpoint + use<>> {
        self.db.client_with(&[("OPENEMR_SESSION_DIR", self.dir.to_str().unwrap())])
    }

    fn write(&self, raw: &[u8]) -> String {
        let id = format!("{}-,{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
        std::fs::write(self.dir.join(format!("sess_{id}")), raw).unwrap();
        id
    }

    async fn get_user(&self, session_id: &str) -> (StatusCode, Value) {
        self.get_user_with(&[("OPENEMR_SESSION_DIR", self.dir.to_str().unwrap())], session_id).await
    }

    pub(crate) async fn get_user_with(
        &self,
        settings: &[(&str, &str)],
        session_id: &str,
    ) -> (StatusCode, Value) {
        let client = self.db.client_with(settings);
        let resp =
            client.get("/api/auth/user/").header("cookie", format!("OpenEMR={session_id}")).send().await;
        let status = resp.0.status();
        (status, resp.json().await.value().deserialize())
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test]
async fn an_openemr_7_flat_session_signs_the_browser_in() {
    let b = Bridge::new().await;
    let mut s = b.user("nkim").await;
    s.tracker = Some(b.track(60).await);
    let (status, body) = b.get_user(&b.write(&flat_session(&s))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["username"], "nkim");
    assert_eq!(body["sign_in_method"], "bridge");
}

#[tokio::test]
async fn an_openemr_8_nested_session_signs_the_browser_in() {
    let b = Bridge::new().await;
    let mut s = b.user("drgarcia").await;
    s.tracker = Some(b.track(10).await);
    let (status, body) = b.get_user(&b.write(&nested_session(&s))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["username"], "drgarcia");
}

#[tokio::test]
async fn the_bridge_endpoint_exchanges_a_session_for_tokens_and_audits_it() {
    let b = Bridge::new().await;
    let id = b.live_session("admin").await;
    let client = b.client();
    let forged = client.post("/api/auth/bridge/").header("cookie", format!("OpenEMR={id}")).send().await;
    forged.assert_status(StatusCode::FORBIDDEN);
    let resp = client
        .post("/api/auth/bridge/")
        .header("cookie", format!("OpenEMR={id}"))
        .header("host", "emr.example.org")
        .header("origin", "https://emr.example.org")
        .send()
        .await;
    resp.assert_status_is_ok();
    let body: Value = resp.json().await.value().deserialize();
    let access = body["access_token"].as_str().unwrap();
    let me = client.get("/api/auth/user/").header("authorization", format!("Bearer {access}")).send().await;
    me.assert_status_is_ok();
    let audited: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM log WHERE event = 'login' AND user = 'admin' AND success = 1 \
         AND CAST(FROM_BASE64(comments) AS CHAR) LIKE '%OpenEMR session bridge%'",
    )
    .fetch_one(&b.db.pool)
    .await
    .unwrap();
    assert_eq!(audited, 1);
}

/// The bridge exchanges the cookie: a bearer token sent beside it (another user's, here) neither
/// replaces it nor skips the origin check, and without the cookie the bearer alone gets nothing.
#[tokio::test]
async fn the_bridge_exchanges_the_cookie_whatever_bearer_token_comes_with_it() {
    let b = Bridge::new().await;
    let id = b.live_session("drgarcia").await;
    let client = b.client();
    let (admin, _) = crate::auth::tokens(&b.db, crate::auth::ADMIN).await;
    let bridge = |origin: bool, cookie: bool| {
        let mut req = client.post("/api/auth/bridge/").header("authorization", format!("Bearer {admin}"));
        if cookie {
            req = req.header("cookie", format!("OpenEMR={id}"));
        }
        if origin {
            req = req.header("host", "emr.example.org").header("origin", "https://emr.example.org");
        }
        req.send()
    };
    bridge(false, true).await.assert_status(StatusCode::FORBIDDEN);
    bridge(true, false).await.assert_status(StatusCode::UNAUTHORIZED);
    let resp = bridge(true, true).await;
    resp.assert_status_is_ok();
    let body: Value = resp.json().await.value().deserialize();
    assert_eq!(body["user"]["username"], "drgarcia", "{body:?}");
}

#[tokio::test]
async fn a_password_change_logs_the_bridge_out_like_openemr() {
    let b = Bridge::new().await;
    let mut s = b.user("nkim").await;
    s.tracker = Some(b.track(5).await);
    let id = b.write(&flat_session(&s));
    assert_eq!(b.get_user(&id).await.0, StatusCode::OK);
    sqlx::query("UPDATE users_secure SET password = CONCAT(password, 'x') WHERE username = 'nkim'")
        .execute(&b.db.pool)
        .await
        .unwrap();
    let (status, body) = b.get_user(&id).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body["detail"].as_str().unwrap().contains("password changed"), "{body}");
}

#[tokio::test]
async fn idle_and_expired_sessions_are_refused() {
    let b = Bridge::new().await;
    let mut s = b.user("nkim").await;
    s.tracker = Some(b.track(7201).await);
    let (status, body) = b.get_user(&b.write(&flat_session(&s))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body["detail"].as_str().unwrap().contains("idle"), "{body}");

    s.tracker = Some(*uuid::Uuid::new_v4().as_bytes());
    assert_eq!(b.get_user(&b.write(&flat_session(&s))).await.0, StatusCode::UNAUTHORIZED, "tracker row gone");
}

#[tokio::test]
async fn a_session_awaiting_its_second_factor_or_from_another_site_is_refused_and_audited() {
    let b = Bridge::new().await;
    let s = b.user("nkim").await;
    // Password checked, no session_database_uuid: how OpenEMR holds a sign-in before the second factor.
    let (status, body) = b.get_user(&b.write(&flat_session(&s))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body["detail"].as_str().unwrap().contains("second factor"), "{body}");

    let mut other_site = b.user("nkim").await;
    other_site.tracker = Some(b.track(5).await);
    let raw = flat_session(&other_site);
    let site = b"site_id|s:7:\"default\";";
    assert!(raw.starts_with(site));
    let moved = [b"site_id|s:6:\"clinic\";".to_vec(), raw[site.len()..].to_vec()].concat();
    let (status, body) = b.get_user(&b.write(&moved)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body["detail"].as_str().unwrap().contains("another OpenEMR site"), "{body}");
    let (status, _) = b
        .get_user_with(
            &[("OPENEMR_SESSION_DIR", b.dir.to_str().unwrap()), ("OPENEMR_SITE", "clinic")],
            &b.write(&moved),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "the site named by OPENEMR_SITE is accepted");

    let audited: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM log WHERE event = 'login' AND success = 0 \
         AND CAST(FROM_BASE64(comments) AS CHAR) LIKE '%session rejected%'",
    )
    .fetch_one(&b.db.pool)
    .await
    .unwrap();
    assert_eq!(audited, 2, "each rejected session is in OpenEMR's audit log");
}

#[tokio::test]
async fn tampered_sessions_are_refused() {
    let b = Bridge::new().await;
    let admin = b.user("admin").await;
    let mut forged = b.user("nkim").await;
    forged.user_id = admin.user_id;
    forged.tracker = Some(b.track(5).await);
    assert_eq!(
        b.get_user(&b.write(&flat_session(&forged))).await.0,
        StatusCode::UNAUTHORIZED,
        "id of another user"
    );

    let mut truncated = flat_session(&forged);
    truncated.truncate(truncated.len() / 2);
    assert_eq!(b.get_user(&b.write(&truncated)).await.0, StatusCode::UNAUTHORIZED, "cut-off file");

    let trap = b"note|s:30:\"authUserID|i:1;authUser|s:1:\"a\";\";".to_vec();
    assert_eq!(b.get_user(&b.write(&trap)).await.0, StatusCode::UNAUTHORIZED, "keys inside a string value");
}

#[tokio::test]
async fn inactive_users_and_malformed_session_ids_are_refused() {
    let b = Bridge::new().await;
    let mut s = b.user("drweber").await;
    s.tracker = Some(b.track(5).await);
    assert_eq!(b.get_user(&b.write(&flat_session(&s))).await.0, StatusCode::UNAUTHORIZED);
    for bad in ["../../etc/passwd", "short", "abc%2F..%2Fsecret-but-long-enough-id"] {
        let (status, body) = b.get_user(bad).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{bad}");
        assert!(body["detail"].as_str().unwrap().contains("malformed"), "{bad}: {body}");
    }
}

#[tokio::test]
async fn the_bridge_is_off_without_a_session_directory() {
    let b = Bridge::new().await;
    let mut s = b.user("admin").await;
    s.tracker = Some(b.track(5).await);
    let id = b.write(&flat_session(&s));
    let resp = b.db.client().get("/api/auth/user/").header("cookie", format!("OpenEMR={id}")).send().await;
    resp.assert_status(StatusCode::UNAUTHORIZED);
}

pub(crate) fn new_session_id() -> String {
    format!("{}-,{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple())
}

/// Stores `raw` as OpenEMR would under `<prefix><id>` and returns the id, which is unique per call.
async fn store_in_redis(prefix: &str, raw: &[u8]) -> String {
    let id = new_session_id();
    let client = redis::Client::open(redis_url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let _: () = redis::AsyncCommands::set_ex(&mut conn, format!("{prefix}{id}"), raw, 300).await.unwrap();
    id
}

#[tokio::test]
async fn sessions_in_redis_sign_in_under_either_key_prefix() {
    let b = Bridge::new().await;
    let url = redis_url();
    let mut nested = b.user("drgarcia").await;
    nested.tracker = Some(b.track(10).await);
    let id = store_in_redis("session:", &nested_session(&nested)).await;
    let (status, body) = b.get_user_with(&[("OPENEMR_SESSION_REDIS_URL", &url)], &id).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["username"], "drgarcia");

    let mut flat = b.user("nkim").await;
    flat.tracker = Some(b.track(30).await);
    let id = store_in_redis("sf_s", &flat_session(&flat)).await;
    let symfony = [("OPENEMR_SESSION_REDIS_URL", url.as_str()), ("OPENEMR_SESSION_REDIS_PREFIX", "sf_s")];
    let (status, body) = b.get_user_with(&symfony, &id).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["username"], "nkim");
}

#[tokio::test]
async fn redis_sessions_that_are_missing_oversized_or_idle_are_refused() {
    let b = Bridge::new().await;
    let url = redis_url();
    let settings = [("OPENEMR_SESSION_REDIS_URL", url.as_str())];

    let (status, body) = b.get_user_with(&settings, &new_session_id()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body["detail"].as_str().unwrap().contains("no such"), "{body}");

    let id = store_in_redis("session:", &vec![b'x'; mmt_sidecar::php::session::MAX_LEN + 1]).await;
    let (status, body) = b.get_user_with(&settings, &id).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body["detail"].as_str().unwrap().contains("too large"), "{body}");

    let mut idle = b.user("nkim").await;
    idle.tracker = Some(b.track(7201).await);
    let id = store_in_redis("session:", &flat_session(&idle)).await;
    let (status, body) = b.get_user_with(&settings, &id).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body["detail"].as_str().unwrap().contains("idle"), "{body}");
}

#[tokio::test]
async fn a_redis_that_is_down_answers_503_quickly() {
    let b = Bridge::new().await;
    let closed = format!("redis://127.0.0.1:{}/0", crate::helpers::free_port());
    let started = std::time::Instant::now();
    let (status, body) = b.get_user_with(&[("OPENEMR_SESSION_REDIS_URL", &closed)], &new_session_id()).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("Redis"), "{body}");
    assert!(started.elapsed() < std::time::Duration::from_secs(3), "took {:?}", started.elapsed());
}
