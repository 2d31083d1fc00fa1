use mmt_sidecar::{
    domain::{
        acl::{AclLevel, Aco},
        user::{Caller, SignInMethod},
    },
    service::{acl::AclError, permission, sign_in},
    storage::openemr::users,
};
use poem::http::StatusCode;
use serde_json::Value;

use crate::helpers::TestDb;

async fn caller(db: &TestDb, username: &str) -> Caller {
    let record = users::by_username(&db.pool, username).await.unwrap().unwrap();
    sign_in::caller_from(record, SignInMethod::Password, None)
}

#[tokio::test]
async fn front_office_is_denied_clinical_notes_and_the_denial_is_audited() {
    let db = TestDb::migrated().await;
    let state = db.state();
    let front_desk = caller(&db, "fdmiller").await;
    let denied = permission::require(&state, &front_desk, Aco::ENCOUNTERS_NOTES, AclLevel::Write).await;
    let Err(err @ AclError::Denied { .. }) = denied else {
        panic!("front office must not write clinical notes")
    };
    assert_eq!(err.to_string(), "requires OpenEMR permission encounters|notes (write)");
    permission::require(&state, &front_desk, Aco::PATIENTS_DEMO, AclLevel::Write).await.unwrap();

    let (event, success, comments): (String, bool, String) = sqlx::query_as(
        "SELECT event, success <> 0, CAST(FROM_BASE64(comments) AS CHAR) FROM log WHERE user = 'fdmiller'",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(event, "security-administration-select");
    assert!(!success);
    assert!(comments.contains("encounters|notes"), "{comments}");
}

#[tokio::test]
async fn clinicians_may_write_their_own_notes_only() {
    let db = TestDb::migrated().await;
    let state = db.state();
    let nurse = caller(&db, "nkim").await;
    permission::require(&state, &nurse, Aco::ENCOUNTERS_NOTES, AclLevel::Write).await.unwrap();
    assert!(permission::require(&state, &nurse, Aco::ENCOUNTERS_NOTES_A, AclLevel::View).await.is_err());
}

#[tokio::test]
async fn guests_hold_no_openemr_permission() {
    let db = TestDb::migrated().await;
    let client = db.client_with(&[("MMT_GUEST_LOGIN", "true")]);
    let health: Value = client.get("/api/health/").send().await.json().await.value().deserialize();
    assert_eq!(health["guest_login"], true);
    let resp = client.post("/api/auth/guest/").send().await;
    resp.assert_status_is_ok();
    let body: Value = resp.json().await.value().deserialize();
    let access = body["access_token"].as_str().unwrap();
    let me = client.get("/api/auth/user/").header("authorization", format!("Bearer {access}")).send().await;
    me.assert_status_is_ok();
    let me: Value = me.json().await.value().deserialize();
    assert_eq!(me["sign_in_method"], "guest");
    assert_eq!(me["permissions"], serde_json::json!([]));

    let state = db.state_with(&[("MMT_GUEST_LOGIN", "true")]);
    let guest = sign_in::caller_for_access_token(&state, access).await.unwrap();
    assert!(permission::require(&state, &guest, Aco::PATIENTS_DEMO, AclLevel::View).await.is_err());

    let off =
        db.client().get("/api/auth/user/").header("authorization", format!("Bearer {access}")).send().await;
    off.assert_status(StatusCode::UNAUTHORIZED);
}
