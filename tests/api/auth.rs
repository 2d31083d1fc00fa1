use poem::http::StatusCode;
use serde_json::{Value, json};

use crate::helpers::TestDb;

pub const ADMIN: (&str, &str) = ("admin", "Sidecar-Admin-1");

pub async fn login(db: &TestDb, user: &str, password: &str) -> (StatusCode, Value) {
    let resp = db
        .client()
        .post("/api/auth/login/")
        .body_json(&json!({"username": user, "password": password}))
        .send()
        .await;
    let status = resp.0.status();
    (status, resp.json().await.value().deserialize())
}

pub async fn tokens(db: &TestDb, (user, password): (&str, &str)) -> (String, String) {
    let (status, body) = login(db, user, password).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    (body["access_token"].as_str().unwrap().into(), body["refresh_token"].as_str().unwrap().into())
}

async fn me(db: &TestDb, access: &str) -> (StatusCode, Value) {
    let resp =
        db.client().get("/api/auth/user/").header("authorization", format!("Bearer {access}")).send().await;
    let status = resp.0.status();
    (status, resp.json().await.value().deserialize())
}

async fn refresh(db: &TestDb, refresh_token: &str) -> (StatusCode, Value) {
    let resp = db
        .client()
        .post("/api/auth/refresh/")
        .body_json(&json!({"refresh_token": refresh_token}))
        .send()
        .await;
    let status = resp.0.status();
    (status, resp.json().await.value().deserialize())
}

#[tokio::test]
async fn every_openemr_hash_format_signs_in() {
    let db = TestDb::migrated().await;
    for (user, password, id_expected) in [
        ("admin", "Sidecar-Admin-1", true),
        ("drgarcia", "Physician-Garcia-2", true),
        ("drokafor", "Physician-Okafor-3", true),
        ("nkim", "Clinician-Kim-4", true),
        ("fdmiller", "Front-Miller-5", true),
        ("emergency", "Break-Glass-9", true),
    ] {
        let (status, body) = login(&db, user, password).await;
        assert_eq!(status, StatusCode::OK, "{user}: {body}");
        assert_eq!(body["user"]["username"], user);
        assert_eq!(body["token_type"], "Bearer");
        assert_eq!(body["user"]["id"].as_i64().is_some(), id_expected);
        assert_eq!(body["expires_in"], 900);
    }
}

#[tokio::test]
async fn unknown_user_wrong_password_and_inactive_user_get_the_same_401() {
    let db = TestDb::migrated().await;
    let mut answers = Vec::new();
    for (user, password) in
        [("nobody", "whatever-1"), ("admin", "wrong-password"), ("drweber", "Retired-Weber-8")]
    {
        let (status, body) = login(&db, user, password).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{user}");
        answers.push((body["type"].clone(), body["title"].clone(), body["detail"].clone()));
    }
    assert!(answers.windows(2).all(|w| w[0] == w[1]), "{answers:?}");
}

#[tokio::test]
async fn the_user_endpoint_describes_the_caller_and_their_openemr_permissions() {
    let db = TestDb::migrated().await;
    let (access, _) = tokens(&db, ("drgarcia", "Physician-Garcia-2")).await;
    let (status, body) = me(&db, &access).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["username"], "drgarcia");
    assert_eq!(body["sign_in_method"], "password");
    assert!(body["groups"].as_array().unwrap().iter().any(|g| g["name"] == "Physicians"), "{body}");
    let permissions = body["permissions"].as_array().unwrap();
    assert!(permissions.contains(&json!({"aco": "encounters|notes_a", "level": "write"})), "{body}");
    assert!(!permissions.iter().any(|p| p["aco"] == "admin|super"));
}

#[tokio::test]
async fn the_access_token_also_works_as_an_httponly_cookie() {
    let db = TestDb::migrated().await;
    let resp = db
        .client()
        .post("/api/auth/login/")
        .body_json(&json!({"username": ADMIN.0, "password": ADMIN.1}))
        .send()
        .await;
    resp.assert_status_is_ok();
    let set_cookie = resp.0.headers().get("set-cookie").unwrap().to_str().unwrap().to_string();
    assert!(set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Strict"), "{set_cookie}");
    let pair = set_cookie.split(';').next().unwrap().to_string();
    let resp = db.client().get("/api/auth/user/").header("cookie", pair).send().await;
    resp.assert_status_is_ok();
}

#[tokio::test]
async fn refresh_rotates_and_reuse_revokes_the_whole_sign_in() {
    let db = TestDb::migrated().await;
    let (_, first_refresh) = tokens(&db, ADMIN).await;
    let (status, rotated) = refresh(&db, &first_refresh).await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    let new_access = rotated["access_token"].as_str().unwrap();
    let new_refresh = rotated["refresh_token"].as_str().unwrap();
    assert_ne!(new_refresh, first_refresh);
    assert_eq!(me(&db, new_access).await.0, StatusCode::OK);

    let (status, body) = refresh(&db, &first_refresh).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body["detail"].as_str().unwrap().contains("already used"), "{body}");
    assert_eq!(
        me(&db, new_access).await.0,
        StatusCode::UNAUTHORIZED,
        "reuse revokes the rotated access token"
    );
    assert_eq!(refresh(&db, new_refresh).await.0, StatusCode::UNAUTHORIZED, "and the rotated refresh token");
}

#[tokio::test]
async fn logout_ends_this_device_at_once_and_leaves_others() {
    let db = TestDb::migrated().await;
    let (phone, phone_refresh) = tokens(&db, ADMIN).await;
    let (laptop, _) = tokens(&db, ADMIN).await;
    let resp =
        db.client().post("/api/auth/logout/").header("authorization", format!("Bearer {phone}")).send().await;
    resp.assert_status(StatusCode::NO_CONTENT);
    assert_eq!(me(&db, &phone).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(refresh(&db, &phone_refresh).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(me(&db, &laptop).await.0, StatusCode::OK);
}

#[tokio::test]
async fn logout_all_ends_every_device() {
    let db = TestDb::migrated().await;
    let (phone, _) = tokens(&db, ADMIN).await;
    let (laptop, laptop_refresh) = tokens(&db, ADMIN).await;
    let (other_user, _) = tokens(&db, ("nkim", "Clinician-Kim-4")).await;
    let resp = db
        .client()
        .post("/api/auth/logout-all/")
        .header("authorization", format!("Bearer {phone}"))
        .send()
        .await;
    resp.assert_status(StatusCode::NO_CONTENT);
    assert_eq!(me(&db, &phone).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(me(&db, &laptop).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(refresh(&db, &laptop_refresh).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(me(&db, &other_user).await.0, StatusCode::OK);
}

#[tokio::test]
async fn a_deactivated_account_loses_its_tokens() {
    let db = TestDb::migrated().await;
    let (access, _) = tokens(&db, ("nkim", "Clinician-Kim-4")).await;
    sqlx::query("UPDATE users SET active = 0 WHERE username = 'nkim'").execute(&db.pool).await.unwrap();
    assert_eq!(me(&db, &access).await.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn repeated_failures_are_throttled_with_retry_after() {
    let db = TestDb::migrated().await;
    for _ in 0..5 {
        assert_eq!(login(&db, "acctbrown", "not-it").await.0, StatusCode::UNAUTHORIZED);
    }
    let resp = db
        .client()
        .post("/api/auth/login/")
        .body_json(&json!({"username": "acctbrown", "password": "Billing-Brown-7"}))
        .send()
        .await;
    resp.assert_status(StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = resp.0.headers().get("retry-after").unwrap().to_str().unwrap().parse().unwrap();
    assert!((1..=900).contains(&retry), "{retry}");
    resp.assert_content_type("application/problem+json");
    assert_eq!(login(&db, ADMIN.0, ADMIN.1).await.0, StatusCode::OK, "other users are not throttled");
}

#[tokio::test]
async fn guest_access_is_off_by_default() {
    let db = TestDb::migrated().await;
    let resp = db.client().post("/api/auth/guest/").send().await;
    resp.assert_status(StatusCode::NOT_FOUND);
    let health: Value = db.client().get("/api/health/").send().await.json().await.value().deserialize();
    assert_eq!(health["guest_login"], false);
}

#[tokio::test]
async fn sign_ins_failures_refreshes_and_logouts_are_in_openemrs_audit_log() {
    let db = TestDb::migrated().await;
    let (access, refresh_token) = tokens(&db, ADMIN).await;
    login(&db, "admin", "wrong").await;
    refresh(&db, &refresh_token).await;
    db.client().post("/api/auth/logout/").header("authorization", format!("Bearer {access}")).send().await;
    let rows: Vec<(String, String, bool, String, String)> = sqlx::query_as(
        "SELECT event, user, success <> 0, CAST(FROM_BASE64(comments) AS CHAR), log_from FROM log ORDER BY id",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    let has = |event: &str, success: bool, text: &str| {
        rows.iter().any(|(e, u, s, c, from)| {
            e == event && u == "admin" && *s == success && c.contains(text) && from == "mmt-sidecar"
        })
    };
    assert!(has("login", true, "success: "), "{rows:?}");
    assert!(has("login", false, "failure: "), "{rows:?}");
    assert!(has("login", true, "token refresh"), "{rows:?}");
    assert!(has("logout", true, "this device"), "{rows:?}");
    let checksums: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM log l JOIN log_comment_encrypt c ON c.log_id = l.id WHERE LENGTH(c.checksum) = 128",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(checksums as usize, rows.len(), "every row has its checksum row");
}
