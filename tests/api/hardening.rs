//! The hardening pass: OpenEMR's second factor (TOTP and CryptoGen interop), tokens that end with
//! the OpenEMR account, OpenEMR's lockout and expiry, the sign-in throttle under a race, filings in
//! parallel, sensitive encounters, byte limits, audit rows and revoked permissions.

use std::{
    collections::HashSet,
    path::PathBuf,
    time::{Duration, Instant},
};

use base64::{Engine, engine::general_purpose::STANDARD};
use futures_util::future::join_all;
use mmt_sidecar::php::crypto_gen::{self, KeyPair};
use poem::http::{Method, StatusCode};
use serde_json::{Value, json};
use totp_rs::{Builder, Secret, Totp};

use crate::{
    auth::tokens,
    helpers::TestDb,
    patients::{Api, send},
    transcriptions::{encounter_for, new_transcription},
};

const GARCIA: (&str, &str) = ("drgarcia", "Physician-Garcia-2");
const NURSE: (&str, &str) = ("nkim", "Clinician-Kim-4");
const OKAFOR: (&str, &str) = ("drokafor", "Physician-Okafor-3");
const FRONT: (&str, &str) = ("fdoconnor", "Front-OConnor-6");
/// `users.id` of drgarcia, drokafor and nkim in the demo data.
const GARCIA_ID: i64 = 2;
const OKAFOR_ID: i64 = 3;
const NURSE_ID: i64 = 4;

// ---------------------------------------------------------------------------------------------
// Shared helpers

/// `tests/vectors/cryptogen.json`, written by `scripts/gen-cryptogen-vectors.php` with PHP's openssl.
fn vectors() -> Value {
    serde_json::from_str(include_str!("../vectors/cryptogen.json")).unwrap()
}

fn vector(path: &[&str]) -> String {
    let mut v = vectors();
    for key in path {
        v = v[*key].take();
    }
    v.as_str().unwrap_or_else(|| panic!("cryptogen.json has no string at {path:?}")).to_string()
}

fn database_key(label: &str) -> [u8; 32] {
    STANDARD.decode(vector(&["database_keys", label])).unwrap().try_into().unwrap()
}

/// The drive keys the vectors' key files wrap (0x03 x 32 and 0x04 x 32).
fn drive_keys() -> KeyPair {
    KeyPair { aes: [3; 32], hmac: [4; 32] }
}

/// An OpenEMR site folder with the vectors' drive key files, and the vectors' database keys in
/// `keys`; the folder is removed when this is dropped.
struct OpenEmrKeys {
    site_dir: PathBuf,
}

impl OpenEmrKeys {
    async fn install(db: &TestDb) -> Self {
        let site_dir = std::env::temp_dir().join(format!("mmt-site-{}", uuid::Uuid::new_v4().simple()));
        let methods = site_dir.join("documents/logs_and_misc/methods");
        std::fs::create_dir_all(&methods).unwrap();
        for label in ["sevena", "sevenb"] {
            std::fs::write(methods.join(label), vector(&["drive_key_files", label])).unwrap();
            sqlx::query("INSERT INTO `keys` (name, value) VALUES (?, ?) ON DUPLICATE KEY UPDATE value = VALUES(value)")
                .bind(label)
                .bind(vector(&["database_keys", label]))
                .execute(&db.pool)
                .await
                .unwrap();
        }
        Self { site_dir }
    }

    fn dir(&self) -> &str {
        self.site_dir.to_str().unwrap()
    }
}

impl Drop for OpenEmrKeys {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.site_dir);
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

fn totp_for(secret_base32: &str) -> Totp {
    Builder::new()
        .with_secret(Secret::try_from_base32(secret_base32).unwrap())
        .with_account_name("x")
        .build()
        .unwrap()
}

/// An authenticator app that never shows the server a step it has already accepted: the server
/// refuses any step at or before the last one used, so each code is for the current step, or the
/// one after the last code shown (still inside the server's one-step window).
struct Authenticator {
    totp: Totp,
    last_step: Option<u64>,
}

impl Authenticator {
    fn new(secret_base32: &str) -> Self {
        Self { totp: totp_for(secret_base32), last_step: None }
    }

    async fn fresh_code(&mut self) -> String {
        loop {
            let current = unix_now() / 30;
            let step = match self.last_step {
                Some(last) if last >= current => last + 1,
                _ => current,
            };
            if step <= current + 1 {
                self.last_step = Some(step);
                return self.totp.generate(step * 30).to_string();
            }
            let next = (current + 1) * 30;
            tokio::time::sleep(Duration::from_secs(next.saturating_sub(unix_now()) + 1)).await;
        }
    }

    /// A well-formed code that matches no step anywhere near now.
    fn wrong_code(&self) -> String {
        let current = unix_now() / 30;
        let near: HashSet<String> =
            (current - 3..=current + 3).map(|s| self.totp.generate(s * 30).to_string()).collect();
        ["123456", "000000", "999999", "314159"].into_iter().find(|c| !near.contains(*c)).unwrap().to_string()
    }
}

/// One request through a client built with `env` (settings as if set in the environment).
async fn login_with(db: &TestDb, env: &[(&str, &str)], body: Value) -> (StatusCode, Value) {
    send(db, env, None, Method::POST, "/api/auth/login/", Some(body)).await
}

async fn sign_in(db: &TestDb, env: &[(&str, &str)], (user, password): (&str, &str)) -> (StatusCode, Value) {
    login_with(db, env, json!({"username": user, "password": password})).await
}

async fn me(db: &TestDb, access: &str) -> StatusCode {
    send(db, &[], Some(access), Method::GET, "/api/auth/user/", None).await.0
}

async fn refresh(db: &TestDb, refresh_token: &str) -> StatusCode {
    send(db, &[], None, Method::POST, "/api/auth/refresh/", Some(json!({"refresh_token": refresh_token})))
        .await
        .0
}

async fn fail_counter(db: &TestDb, user: &str) -> i64 {
    db.scalar(&format!(
        "SELECT CAST(COALESCE(login_fail_counter, 0) AS SIGNED) FROM users_secure WHERE username = '{user}'"
    ))
    .await
}

async fn set_global(db: &TestDb, name: &str, value: &str) {
    sqlx::query(
        "INSERT INTO globals (gl_name, gl_index, gl_value) VALUES (?, 0, ?) ON DUPLICATE KEY UPDATE gl_value = VALUES(gl_value)",
    )
    .bind(name)
    .bind(value)
    .execute(&db.pool)
    .await
    .unwrap();
}

async fn exec(db: &TestDb, sql: &str) {
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string())).execute(&db.pool).await.unwrap();
}

async fn create(api: &Api, body: &Value) -> String {
    let (status, created) = api.call("POST", "/api/transcriptions/", Some(body.clone())).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    created["id"].as_str().unwrap().to_string()
}

async fn act(api: &Api, id: &str, action: &str) -> (StatusCode, Value) {
    api.call("POST", &format!("/api/transcriptions/{id}/{action}/"), None).await
}

/// A transcription made, submitted and approved by `api`'s user.
async fn approved(api: &Api, pid: i64, encounter: i64) -> String {
    let id = create(api, &new_transcription(pid, Some(encounter))).await;
    for action in ["submit", "approve"] {
        let (status, body) = act(api, &id, action).await;
        assert_eq!(status, StatusCode::OK, "{action}: {body}");
    }
    id
}

fn fields(problem: &Value) -> HashSet<String> {
    problem["errors"]
        .as_array()
        .map(|errors| errors.iter().filter_map(|e| e["field"].as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// 1. MFA / TOTP and CryptoGen interop

#[tokio::test]
async fn cryptogen_reads_what_openemrs_php_wrote() {
    let database = KeyPair { aes: database_key("sevena"), hmac: database_key("sevenb") };
    assert_eq!(
        (database.aes, database.hmac),
        ([1; 32], [2; 32]),
        "the keys table holds base64 of the raw keys"
    );
    for (label, expected) in [("sevena", [3u8; 32]), ("sevenb", [4u8; 32])] {
        let file = vector(&["drive_key_files", label]);
        assert_eq!(crypto_gen::version_of(&file), Some(7));
        assert_eq!(crypto_gen::decrypt(&file, &database).unwrap(), expected, "drive key file {label}");
    }
    let var1 = vector(&["totp_var1"]);
    assert_eq!(crypto_gen::decrypt(&var1, &drive_keys()).unwrap(), vector(&["totp_secret"]).as_bytes());
    assert!(
        crypto_gen::decrypt(&var1, &database).is_err(),
        "var1 is under the drive keys, not the database keys"
    );

    let ours = crypto_gen::encrypt(b"JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", &drive_keys());
    assert!(ours.starts_with("007") && ours.len() == var1.len(), "{ours}");
    assert_ne!(ours, var1, "a fresh random IV each time");
    assert_eq!(crypto_gen::decrypt(&ours, &drive_keys()).unwrap(), b"JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP");
}

#[tokio::test]
async fn the_test_authenticator_matches_phps_rfc_6238_codes() {
    let totp = totp_for(&vector(&["totp_secret"]));
    let codes = vectors()["totp_codes"].as_array().unwrap().clone();
    assert_eq!(codes.len(), 3);
    for c in codes {
        let time = c["time"].as_u64().unwrap();
        assert_eq!(totp.generate(time).to_string(), c["code"].as_str().unwrap(), "t={time}");
    }
    assert_eq!(totp.generate(1_699_999_970).to_string(), "797823");
    assert_eq!(totp.generate(1_700_000_000).to_string(), "406058");
    assert_eq!(totp.generate(1_700_000_030).to_string(), "661763");
}

#[tokio::test]
async fn a_totp_user_needs_a_fresh_single_use_code_to_sign_in() {
    let db = TestDb::migrated().await;
    let keys = OpenEmrKeys::install(&db).await;
    sqlx::query(
        "INSERT INTO login_mfa_registrations (user_id, name, method, var1, var2) VALUES (?, 'App Based 2FA', 'TOTP', ?, '')",
    )
    .bind(GARCIA_ID)
    .bind(vector(&["totp_var1"]))
    .execute(&db.pool)
    .await
    .unwrap();
    let env = [("OPENEMR_SITE_DIR", keys.dir())];
    let mut app = Authenticator::new(&vector(&["totp_secret"]));
    let with_code = |code: &str| json!({"username": GARCIA.0, "password": GARCIA.1, "totp_code": code});

    let (status, body) = sign_in(&db, &env, GARCIA).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["type"], "urn:mmt-sidecar:problem:mfa-required", "{body}");
    assert_eq!(body["mfa_required"], json!(["TOTP"]), "{body}");
    assert!(body.get("access_token").is_none());

    let code = app.fresh_code().await;
    let (status, body) = login_with(&db, &env, with_code(&code)).await;
    assert_eq!(status, StatusCode::OK, "the current code signs in: {body}");
    assert!(body["access_token"].as_str().is_some_and(|t| !t.is_empty()), "{body}");

    let (status, body) = login_with(&db, &env, with_code(&code)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "a code works once: {body}");
    assert!(body.get("access_token").is_none());

    let (status, body) = login_with(&db, &env, with_code(&app.wrong_code())).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "a wrong code: {body}");

    let (status, body) = login_with(&db, &env, with_code(&app.fresh_code().await)).await;
    assert_eq!(status, StatusCode::OK, "the next step's code still works: {body}");
}

#[tokio::test]
async fn a_security_key_user_is_sent_to_openemr_and_the_bridge() {
    let db = TestDb::migrated().await;
    sqlx::query(
        "INSERT INTO login_mfa_registrations (user_id, name, method, var1, var2) VALUES (?, 'YubiKey', 'U2F', '{}', '')",
    )
    .bind(OKAFOR_ID)
    .execute(&db.pool)
    .await
    .unwrap();
    let (status, body) = sign_in(&db, &[], OKAFOR).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("/api/auth/bridge/"), "{body}");
    assert!(body.get("access_token").is_none());
    let (status, body) =
        login_with(&db, &[], json!({"username": OKAFOR.0, "password": OKAFOR.1, "totp_code": "123456"}))
            .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "a code does not stand in for the key: {body}");
}

#[tokio::test]
async fn enrolment_registers_totp_as_openemr_does_and_removal_needs_password_and_code() {
    let db = TestDb::migrated().await;
    let keys = OpenEmrKeys::install(&db).await;
    let env = [("OPENEMR_SITE_DIR", keys.dir())];
    let (access, _) = tokens(&db, NURSE).await;
    let call = |method: Method, path: &'static str, body: Value| {
        let (db, access) = (&db, access.clone());
        async move { send(db, &env, Some(&access), method, path, Some(body)).await }
    };
    let registrations = || {
        let db = &db;
        async move {
            db.scalar(&format!("SELECT COUNT(*) FROM login_mfa_registrations WHERE user_id = {NURSE_ID}"))
                .await
        }
    };

    let (status, body) =
        call(Method::POST, "/api/auth/mfa/totp/", json!({"password": "not-my-password"})).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");

    let (status, started) = call(Method::POST, "/api/auth/mfa/totp/", json!({"password": NURSE.1})).await;
    assert_eq!(status, StatusCode::CREATED, "{started}");
    let uri = started["otpauth_uri"].as_str().unwrap();
    assert!(uri.starts_with("otpauth://totp/") && uri.contains("issuer=OpenEMR"), "{uri}");
    let secret = started["secret"].as_str().unwrap().to_string();
    assert!(Secret::try_from_base32(&secret).is_ok(), "the secret is base32: {secret}");
    assert!(uri.contains(&secret), "{uri}");
    assert!(started["qr_svg"].as_str().unwrap().contains("<svg"));
    assert!(started["expires_in"].as_u64().is_some_and(|s| s > 0), "{started}");
    assert_eq!(registrations().await, 0, "nothing is registered before a first code");

    let mut app = Authenticator::new(&secret);
    let (status, body) =
        call(Method::POST, "/api/auth/mfa/totp/verify/", json!({"code": app.wrong_code()})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(fields(&body).contains("code"), "{body}");
    assert_eq!(registrations().await, 0);

    let (status, body) =
        call(Method::POST, "/api/auth/mfa/totp/verify/", json!({"code": app.fresh_code().await})).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let row: (String, String, String, String) =
        sqlx::query_as("SELECT name, method, var1, var2 FROM login_mfa_registrations WHERE user_id = ?")
            .bind(NURSE_ID)
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert_eq!((row.0.as_str(), row.1.as_str(), row.3.as_str()), ("App Based 2FA", "TOTP", ""));
    assert!(row.2.starts_with("007"), "var1 is CryptoGen 007: {}", row.2);
    assert_eq!(
        crypto_gen::decrypt(&row.2, &drive_keys()).unwrap(),
        secret.as_bytes(),
        "var1 is the secret under OpenEMR's drive keys"
    );

    let (status, body) = sign_in(&db, &env, NURSE).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["mfa_required"], json!(["TOTP"]), "{body}");

    let (status, body) = call(
        Method::DELETE,
        "/api/auth/mfa/totp/",
        json!({"password": NURSE.1, "code": app.fresh_code().await}),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(registrations().await, 0, "the registration is gone");
    let (status, body) = sign_in(&db, &env, NURSE).await;
    assert_eq!(status, StatusCode::OK, "the password alone works again: {body}");
}

// ---------------------------------------------------------------------------------------------
// 2. Parallel filings

#[tokio::test]
async fn parallel_filings_into_different_encounters_get_one_form_each() {
    let api = Api::as_user(GARCIA).await;
    let mut encounters = Vec::new();
    let mut ids = Vec::new();
    for pid in 1..=8 {
        let encounter = encounter_for(&api, pid).await;
        ids.push(approved(&api, pid, encounter).await);
        encounters.push(encounter);
    }
    let paths: Vec<String> =
        ids.iter().map(|id| format!("/api/transcriptions/{id}/integrate_with_openemr/")).collect();
    let results = join_all(paths.iter().map(|path| api.call("POST", path, None))).await;
    for (status, body) in &results {
        assert_eq!(*status, StatusCode::OK, "{body}");
        assert_eq!(body["status"], "filed");
    }
    let list = encounters.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
    let forms = api
        .db
        .scalar(&format!(
            "SELECT COUNT(*) FROM forms WHERE formdir = 'clinical_notes' AND encounter IN ({list})"
        ))
        .await;
    let distinct = api
        .db
        .scalar(&format!(
            "SELECT COUNT(DISTINCT form_id) FROM forms WHERE formdir = 'clinical_notes' AND encounter IN ({list})"
        ))
        .await;
    assert_eq!((forms, distinct), (8, 8), "one Clinical Notes form per encounter, none sharing a form_id");
    let mismatched = api
        .db
        .scalar(&format!(
            "SELECT COUNT(*) FROM form_clinical_notes n LEFT JOIN forms f ON f.formdir = 'clinical_notes' \
             AND f.form_id = n.form_id AND f.encounter = CAST(n.encounter AS SIGNED) \
             WHERE CAST(n.encounter AS SIGNED) IN ({list}) AND f.id IS NULL"
        ))
        .await;
    assert_eq!(mismatched, 0, "each note sits under its own encounter's form");
}

#[tokio::test]
async fn parallel_filings_into_one_encounter_share_one_form() {
    let api = Api::as_user(GARCIA).await;
    let encounter = encounter_for(&api, 13).await;
    let mut ids = Vec::new();
    for _ in 0..6 {
        ids.push(approved(&api, 13, encounter).await);
    }
    let paths: Vec<String> =
        ids.iter().map(|id| format!("/api/transcriptions/{id}/integrate_with_openemr/")).collect();
    let results = join_all(paths.iter().map(|path| api.call("POST", path, None))).await;
    assert!(results.iter().all(|(s, _)| *s == StatusCode::OK), "{results:?}");
    let forms = api
        .db
        .scalar(&format!(
            "SELECT COUNT(*) FROM forms WHERE formdir = 'clinical_notes' AND encounter = {encounter}"
        ))
        .await;
    assert_eq!(forms, 1, "exactly one Clinical Notes form for the encounter");
    let form_id = api
        .db
        .scalar(&format!(
            "SELECT form_id FROM forms WHERE formdir = 'clinical_notes' AND encounter = {encounter}"
        ))
        .await;
    let notes = api
        .db
        .scalar(&format!(
            "SELECT COUNT(*) FROM form_clinical_notes WHERE encounter = '{encounter}' AND form_id = {form_id}"
        ))
        .await;
    let all_notes = api
        .db
        .scalar(&format!("SELECT COUNT(*) FROM form_clinical_notes WHERE encounter = '{encounter}'"))
        .await;
    assert_eq!((notes, all_notes), (6, 6), "six notes, all under that form");
    let filed_form_ids: HashSet<i64> =
        results.iter().map(|(_, b)| b["filed"]["form_id"].as_i64().unwrap()).collect();
    assert_eq!(filed_form_ids, HashSet::from([form_id]));
}

// ---------------------------------------------------------------------------------------------
// 3. Tokens end with the OpenEMR account

#[tokio::test]
async fn a_password_changed_in_openemr_ends_existing_tokens() {
    let db = TestDb::migrated().await;
    let (access, refresh_token) = tokens(&db, NURSE).await;
    assert_eq!(me(&db, &access).await, StatusCode::OK);
    let old: String = sqlx::query_scalar("SELECT password FROM users_secure WHERE username = 'nkim'")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    let other: String = sqlx::query_scalar("SELECT password FROM users_secure WHERE username = 'admin'")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_ne!(old, other);
    sqlx::query("UPDATE users_secure SET password = ? WHERE username = 'nkim'")
        .bind(&other)
        .execute(&db.pool)
        .await
        .unwrap();
    let started = Instant::now();
    let status = refresh(&db, &refresh_token).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "refresh dies with the password (answered after {:?})",
        started.elapsed()
    );
    assert_eq!(me(&db, &access).await, StatusCode::UNAUTHORIZED, "and so does the access token");
    sqlx::query("UPDATE users_secure SET password = ? WHERE username = 'nkim'")
        .bind(&old)
        .execute(&db.pool)
        .await
        .unwrap();
    assert_eq!(me(&db, &access).await, StatusCode::UNAUTHORIZED, "putting the old hash back revives nothing");
}

#[tokio::test]
async fn leaving_every_openemr_group_ends_existing_tokens() {
    let db = TestDb::migrated().await;
    let (access, refresh_token) = tokens(&db, NURSE).await;
    let (_, other_refresh) = tokens(&db, NURSE).await;
    assert_eq!(me(&db, &access).await, StatusCode::OK);
    exec(&db, "DELETE FROM `groups` WHERE user = 'nkim'").await;
    assert_eq!(
        refresh(&db, &other_refresh).await,
        StatusCode::UNAUTHORIZED,
        "a refresh as the first request after the change"
    );
    assert_eq!(me(&db, &access).await, StatusCode::UNAUTHORIZED);
    assert_eq!(refresh(&db, &refresh_token).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_deactivated_account_stays_signed_out_after_reactivation() {
    let db = TestDb::migrated().await;
    let (access, refresh_token) = tokens(&db, NURSE).await;
    assert_eq!(me(&db, &access).await, StatusCode::OK);
    exec(&db, "UPDATE users SET active = 0 WHERE username = 'nkim'").await;
    assert_eq!(me(&db, &access).await, StatusCode::UNAUTHORIZED);
    exec(&db, "UPDATE users SET active = 1 WHERE username = 'nkim'").await;
    assert_eq!(me(&db, &access).await, StatusCode::UNAUTHORIZED, "the old access token stays dead");
    assert_eq!(refresh(&db, &refresh_token).await, StatusCode::UNAUTHORIZED, "and the old refresh token");
    let (status, body) = sign_in(&db, &[], NURSE).await;
    assert_eq!(status, StatusCode::OK, "the reactivated account signs in afresh: {body}");
}

/// Deactivated and reactivated with no request in between: the periodic sweep ends the sign-in.
#[tokio::test]
async fn the_housekeeping_sweep_ends_sign_ins_of_a_briefly_deactivated_account() {
    let db = TestDb::migrated().await;
    let (access, _) = tokens(&db, NURSE).await;
    let (admin, _) = tokens(&db, crate::auth::ADMIN).await;
    exec(&db, "UPDATE users SET active = 0 WHERE username = 'nkim'").await;
    mmt_sidecar::service::housekeeping::sweep(&db.state()).await.unwrap();
    exec(&db, "UPDATE users SET active = 1 WHERE username = 'nkim'").await;
    assert_eq!(me(&db, &access).await, StatusCode::UNAUTHORIZED);
    assert_eq!(me(&db, &admin).await, StatusCode::OK, "other users' sign-ins are untouched");
}

// ---------------------------------------------------------------------------------------------
// 4. OpenEMR's lockout and password expiry

/// Enough sidecar throttle headroom that only OpenEMR's own rules decide.
const RELAXED_THROTTLE: [(&str, &str); 3] = [
    ("MMT_LOGIN_MAX_FAILURES_PER_USER_ADDRESS", "100"),
    ("MMT_LOGIN_MAX_FAILURES_PER_ADDRESS", "100"),
    ("MMT_LOGIN_FAILURE_FLOOR_MS", "1"),
];

#[tokio::test]
async fn openemr_lockout_refuses_the_right_password_until_its_window_passes() {
    let db = TestDb::migrated().await;
    set_global(&db, "password_max_failed_logins", "3").await;
    let env = RELAXED_THROTTLE;
    assert_eq!(fail_counter(&db, "nkim").await, 0);
    for i in 1..=3 {
        let (status, body) = sign_in(&db, &env, (NURSE.0, "wrong-password")).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
        assert_eq!(fail_counter(&db, "nkim").await, i, "each failure counts in OpenEMR");
    }
    let (status, body) = sign_in(&db, &env, NURSE).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "locked: even the right password fails: {body}");
    assert!(body.get("access_token").is_none());
    assert!(fail_counter(&db, "nkim").await >= 4, "the attempt on a locked account counts too");

    exec(&db, "UPDATE users_secure SET last_login_fail = NOW() - INTERVAL 2 HOUR WHERE username = 'nkim'")
        .await;
    let (status, body) = sign_in(&db, &env, NURSE).await;
    assert_eq!(status, StatusCode::OK, "after the reset window the right password works: {body}");
    assert_eq!(fail_counter(&db, "nkim").await, 0);
}

#[tokio::test]
async fn a_right_password_resets_openemrs_failure_counter() {
    let db = TestDb::migrated().await;
    set_global(&db, "password_max_failed_logins", "3").await;
    exec(
        &db,
        "UPDATE users_secure SET login_fail_counter = 2, last_login_fail = NOW() WHERE username = 'nkim'",
    )
    .await;
    let (status, body) = sign_in(&db, &RELAXED_THROTTLE, NURSE).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(fail_counter(&db, "nkim").await, 0);
}

#[tokio::test]
async fn an_expired_password_is_refused_with_a_reason() {
    let db = TestDb::migrated().await;
    set_global(&db, "password_expiration_days", "30").await;
    set_global(&db, "password_grace_time", "5").await;
    exec(
        &db,
        "UPDATE users_secure SET last_update_password = NOW() - INTERVAL 10 DAY WHERE username = 'nkim'",
    )
    .await;
    let (status, body) = sign_in(&db, &RELAXED_THROTTLE, NURSE).await;
    assert_eq!(status, StatusCode::OK, "a recent password is fine: {body}");
    exec(
        &db,
        "UPDATE users_secure SET last_update_password = NOW() - INTERVAL 100 DAY WHERE username = 'nkim'",
    )
    .await;
    let (status, body) = sign_in(&db, &RELAXED_THROTTLE, NURSE).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("expired"), "{body}");
    assert!(body.get("access_token").is_none());
}

// ---------------------------------------------------------------------------------------------
// 5. The throttle under a race

#[tokio::test]
async fn racing_guesses_verify_at_most_the_throttle_limit() {
    let db = TestDb::migrated().await;
    let before = fail_counter(&db, "nkim").await;
    let client = db.client();
    let attempts = (0..41).map(|i| {
        let password = if i == 20 { NURSE.1.to_string() } else { format!("wrong-{i}") };
        let req =
            client.post("/api/auth/login/").body_json(&json!({"username": NURSE.0, "password": password}));
        async move {
            let resp = req.send().await;
            let status = resp.0.status();
            let text = resp.0.into_body().into_string().await.unwrap();
            (i, status, serde_json::from_str::<Value>(&text).unwrap_or(Value::Null))
        }
    });
    let answers = join_all(attempts).await;
    let mut incorrect = 0;
    for (i, status, body) in &answers {
        match *status {
            StatusCode::UNAUTHORIZED => {
                assert!(body["detail"].as_str().unwrap_or_default().contains("incorrect"), "{body}");
                incorrect += 1;
            }
            StatusCode::TOO_MANY_REQUESTS => {}
            StatusCode::OK => assert_eq!(*i, 20, "only the right password can succeed"),
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert!(incorrect <= 5, "{incorrect} guesses were verified; the limit is 5 per user and address");
    let risen = fail_counter(&db, "nkim").await - before;
    assert!(risen <= 5, "OpenEMR's counter rose by {risen}");
}

// ---------------------------------------------------------------------------------------------
// 6. Four-byte UTF-8 in patient names

#[tokio::test]
async fn an_emoji_named_patient_is_stored_and_search_keeps_working() {
    let api = Api::admin().await;
    let name = "\u{1F600}".repeat(20);
    let (status, created) = api
        .call(
            "POST",
            "/api/patients/",
            Some(json!({"first_name": name, "last_name": name, "dob": "1990-05-06", "sex": "Female"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let pid = created["pid"].as_i64().unwrap();
    let (status, got) = api.get(&format!("/api/patients/{pid}/")).await;
    assert_eq!(status, StatusCode::OK, "{got}");
    assert_eq!(
        (got["first_name"].as_str(), got["last_name"].as_str()),
        (Some(name.as_str()), Some(name.as_str()))
    );

    exec(
        &api.db,
        "INSERT INTO patient_data (pid, pubpid, fname, lname, DOB, sex, date, regdate) \
         SELECT MAX(pid) + 1, 'T-SQL-1', 'Quillon', 'Zyzzyvant', '1980-01-02', 'Male', NOW(), NOW() FROM patient_data",
    )
    .await;
    let sql_pid = api.db.scalar("SELECT pid FROM patient_data WHERE pubpid = 'T-SQL-1'").await;
    let (status, found) = api.get("/api/patients/?search=zyzzyvant&page_size=100").await;
    assert_eq!(status, StatusCode::OK, "{found}");
    let pids: Vec<i64> =
        found["items"].as_array().unwrap().iter().map(|p| p["pid"].as_i64().unwrap()).collect();
    assert_eq!(pids, vec![sql_pid], "a patient added in OpenEMR after the emoji patient is found");
}

// ---------------------------------------------------------------------------------------------
// 7. Sensitive encounters

#[tokio::test]
async fn a_high_sensitivity_encounter_is_closed_to_users_without_that_sensitivity() {
    let garcia = Api::as_user(GARCIA).await;
    let encounter = encounter_for(&garcia, 12).await;
    // nkim is the encounter's provider, so encounters|notes alone lets them write and file into it.
    exec(
        &garcia.db,
        &format!("UPDATE form_encounter SET provider_id = {NURSE_ID} WHERE encounter = {encounter}"),
    )
    .await;
    let nurse = garcia.as_other(NURSE).await;
    let first = approved(&garcia, 12, encounter).await;
    let control = create(&nurse, &new_transcription(12, Some(encounter))).await;
    assert!(!control.is_empty(), "nkim can write into their own encounter while it is not sensitive");

    exec(
        &garcia.db,
        &format!("UPDATE form_encounter SET sensitivity = 'high' WHERE encounter = {encounter}"),
    )
    .await;
    let before = garcia.db.scalar("SELECT COUNT(*) FROM mmt_transcriptions").await;
    let (status, body) =
        nurse.call("POST", "/api/transcriptions/", Some(new_transcription(12, Some(encounter)))).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(garcia.db.scalar("SELECT COUNT(*) FROM mmt_transcriptions").await, before);

    let (status, body) = act(&nurse, &first, "integrate_with_openemr").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let notes = format!("SELECT COUNT(*) FROM form_clinical_notes WHERE encounter = '{encounter}'");
    assert_eq!(garcia.db.scalar(&notes).await, 0, "nothing was filed");
    let (_, still) = garcia.get(&format!("/api/transcriptions/{first}/")).await;
    assert_eq!(still["status"], "approved");

    exec(&garcia.db, &format!("UPDATE form_encounter SET sensitivity = NULL WHERE encounter = {encounter}"))
        .await;
    let (status, body) = act(&nurse, &first, "integrate_with_openemr").await;
    assert_eq!(status, StatusCode::OK, "the same filing works once the encounter is not sensitive: {body}");
    assert_eq!(garcia.db.scalar(&notes).await, 1);
}

// ---------------------------------------------------------------------------------------------
// 9. Byte limits

#[tokio::test]
async fn overlong_text_is_a_422_naming_the_field_and_writes_nothing() {
    let api = Api::as_user(GARCIA).await;
    let big_bodies = [("MMT_MAX_BODY_BYTES", "1048576")];
    let id = create(&api, &new_transcription(14, None)).await;
    let path = format!("/api/transcriptions/{id}/");
    let (_, before) = api.get(&path).await;
    let version = before["version"].as_u64().unwrap();

    let client = api.db.client_with(&big_bodies);
    let resp = client
        .request(Method::PATCH, &path)
        .header("authorization", format!("Bearer {}", api.token))
        .header("if-match", format!("\"{version}\""))
        .body_json(&json!({"text": "a".repeat(70_000), "reason": "too long"}))
        .send()
        .await;
    let status = resp.0.status();
    let body: Value =
        serde_json::from_str(&resp.0.into_body().into_string().await.unwrap()).unwrap_or(Value::Null);
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(fields(&body).contains("text"), "{body}");

    let mut segments = new_transcription(14, None)["segments"].clone();
    segments[0]["text"] = json!("\u{1F600}".repeat(20_000));
    let (status, body) = send(
        &api.db,
        &big_bodies,
        Some(&api.token),
        Method::PUT,
        &format!("{path}segments/"),
        Some(json!({"segments": segments.clone()})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(fields(&body).contains("segments[0].text"), "{body}");

    let mut fresh = new_transcription(14, None);
    fresh["segments"] = segments;
    let rows = api.db.scalar("SELECT COUNT(*) FROM mmt_transcriptions").await;
    let (status, body) =
        send(&api.db, &big_bodies, Some(&api.token), Method::POST, "/api/transcriptions/", Some(fresh)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(fields(&body).contains("segments[0].text"), "{body}");

    let (_, after) = api.get(&path).await;
    assert_eq!(after["version"], before["version"], "nothing half-written");
    assert_eq!(after["text"], before["text"]);
    assert_eq!(after["segments"], before["segments"]);
    let (_, revisions) = api.get(&format!("{path}revisions/")).await;
    assert_eq!(revisions.as_array().unwrap().len(), 1, "{revisions}");
    assert_eq!(api.db.scalar("SELECT COUNT(*) FROM mmt_transcriptions").await, rows);
    let longest =
        api.db.scalar("SELECT COALESCE(MAX(LENGTH(text)), 0) FROM mmt_transcription_segments").await;
    assert!(longest < 1000, "no oversized segment was stored ({longest} bytes)");
}

// ---------------------------------------------------------------------------------------------
// 12. Failed sign-ins take a floor of time

#[tokio::test]
async fn failed_sign_ins_take_at_least_the_configured_floor() {
    let db = TestDb::migrated().await;
    let env = [("MMT_LOGIN_FAILURE_FLOOR_MS", "300")];
    for (user, password) in [("no-such-user", "whatever-1"), ("nkim", "wrong-password")] {
        let started = Instant::now();
        let (status, body) = sign_in(&db, &env, (user, password)).await;
        let took = started.elapsed();
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{user}: {body}");
        assert!(took >= Duration::from_millis(300), "{user}: the 401 came after {took:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// 13. Audit rows

async fn select_rows(db: &TestDb, pid: i64) -> i64 {
    db.scalar(&format!(
        "SELECT COUNT(*) FROM log WHERE event = 'patient-record-select' AND patient_id = {pid}"
    ))
    .await
}

#[tokio::test]
async fn resent_creates_and_repeated_filings_are_audited_as_reads() {
    let api = Api::as_user(GARCIA).await;
    let body = new_transcription(15, None);
    create(&api, &body).await;
    let before = select_rows(&api.db, 15).await;
    let (status, resent) = api.call("POST", "/api/transcriptions/", Some(body)).await;
    assert_eq!(status, StatusCode::OK, "{resent}");
    assert_eq!(select_rows(&api.db, 15).await, before + 1, "the resent create discloses the note again");

    let encounter = encounter_for(&api, 16).await;
    let id = approved(&api, 16, encounter).await;
    assert_eq!(act(&api, &id, "integrate_with_openemr").await.0, StatusCode::OK);
    let before = select_rows(&api.db, 16).await;
    let (status, body) = act(&api, &id, "integrate_with_openemr").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        select_rows(&api.db, 16).await,
        before + 1,
        "the repeated filing returns the note, and is logged"
    );
}

#[tokio::test]
async fn a_listing_by_patient_is_audited_against_that_patient() {
    let api = Api::as_user(GARCIA).await;
    create(&api, &new_transcription(17, None)).await;
    let listed = |pid: i64| {
        format!(
            "SELECT COUNT(*) FROM log WHERE event = 'patient-record-select' AND patient_id = {pid} \
             AND CAST(FROM_BASE64(comments) AS CHAR) LIKE '%pids [{pid}]%'"
        )
    };
    assert_eq!(api.db.scalar(&listed(17)).await, 0);
    let (status, body) = api.get("/api/transcriptions/?patient=17").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["items"].as_array().unwrap().len(), 1, "{body}");
    assert_eq!(api.db.scalar(&listed(17)).await, 1);
}

#[tokio::test]
async fn a_refused_transcription_read_is_audited_as_a_failure_for_the_patient() {
    let api = Api::as_user(GARCIA).await;
    let id = create(&api, &new_transcription(18, None)).await;
    let front = api.as_other(FRONT).await;
    let denied = "SELECT COUNT(*) FROM log WHERE success = 0 AND user = 'fdoconnor' AND patient_id = 18";
    assert_eq!(api.db.scalar(denied).await, 0);
    let (status, body) = front.get(&format!("/api/transcriptions/{id}/")).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(api.db.scalar(denied).await >= 1, "the 403 is in OpenEMR's log with the patient");
}

// ---------------------------------------------------------------------------------------------
// 14. A revoked permission applies to the author's own transcription

async fn patch_text(api: &Api, path: &str, version: u64, text: &str) -> StatusCode {
    let client = api.db.client();
    let resp = client
        .request(Method::PATCH, path)
        .header("authorization", format!("Bearer {}", api.token))
        .header("if-match", format!("\"{version}\""))
        .body_json(&json!({"text": text}))
        .send()
        .await;
    resp.0.status()
}

#[tokio::test]
async fn an_author_who_loses_encounters_notes_can_no_longer_read_or_edit_their_note() {
    let garcia = Api::as_user(GARCIA).await;
    let nurse = garcia.as_other(NURSE).await;
    let id = create(&nurse, &new_transcription(19, None)).await;
    let path = format!("/api/transcriptions/{id}/");
    let edit = |version: u64, text: &'static str| patch_text(&nurse, &path, version, text);
    let (status, got) = nurse.get(&path).await;
    assert_eq!(status, StatusCode::OK, "{got}");
    let version = got["version"].as_u64().unwrap();
    assert_eq!(edit(version, "Allowed edit.").await, StatusCode::OK, "the author may edit while permitted");

    exec(
        &garcia.db,
        "DELETE FROM gacl_groups_aro_map WHERE aro_id = (SELECT id FROM gacl_aro WHERE section_value = 'users' AND value = 'nkim')",
    )
    .await;
    // Every call builds a fresh app (and ACL cache), as a restarted or other replica would be.
    let (status, body) = nurse.get(&path).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(edit(version + 1, "Forbidden edit.").await, StatusCode::FORBIDDEN);
    let (_, stored) = garcia.get(&path).await;
    assert_eq!(stored["text"], "Allowed edit.", "the refused edit changed nothing");
}
