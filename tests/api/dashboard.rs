//! The clinician's dashboard on the demo data, their profile over OpenEMR's `users` row, and
//! their signed-in devices.

use chrono::{Days, Local, Utc};
use poem::http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::{
    auth::tokens,
    helpers::TestDb,
    patients::{Api, send},
    transcriptions::{encounter_for, new_transcription},
};

const GARCIA: (&str, &str) = ("drgarcia", "Physician-Garcia-2");
const NURSE: (&str, &str) = ("nkim", "Clinician-Kim-4");

async fn call(
    db: &TestDb,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    send(db, &[], Some(token), method, path, body).await
}

fn pids(dashboard: &Value) -> Vec<i64> {
    dashboard["recently_viewed"].as_array().unwrap().iter().map(|p| p["pid"].as_i64().unwrap()).collect()
}

async fn dashboard(api: &Api) -> Value {
    let (status, body) = api.get("/api/dashboard/").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

#[tokio::test]
async fn the_dashboard_shows_the_callers_week_of_appointments_and_counts_equal_to_sql() {
    let garcia = Api::as_user(GARCIA).await;
    let tomorrow = Local::now().date_naive() + Days::new(1);
    let booking = json!({"pid": 1, "provider_id": 2, "facility_id": 3, "category_id": 5,
        "start": format!("{tomorrow}T10:00"), "override_availability": true});
    let (status, booked) = garcia.call("POST", "/api/appointments/", Some(booking)).await;
    assert_eq!(status, StatusCode::CREATED, "{booked}");
    // A draft and a transcription awaiting review.
    let encounter = encounter_for(&garcia, 1).await;
    for submit in [false, true] {
        let (status, created) =
            garcia.call("POST", "/api/transcriptions/", Some(new_transcription(1, Some(encounter)))).await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        if submit {
            let path = format!("/api/transcriptions/{}/submit/", created["id"].as_str().unwrap());
            let (status, body) = garcia.call("POST", &path, None).await;
            assert_eq!(status, StatusCode::OK, "{body}");
        }
    }
    // A colleague's message makes an unread message and a notification.
    let (nurse, _) = tokens(&garcia.db, NURSE).await;
    let message = json!({"to": ["drgarcia"], "text": "Room 2 is ready."});
    let (status, sent) = call(&garcia.db, &nurse, Method::POST, "/api/messages/", Some(message)).await;
    assert_eq!(status, StatusCode::CREATED, "{sent}");

    let d = dashboard(&garcia).await;
    let appointments = d["appointments"].as_array().unwrap();
    assert!(appointments.iter().any(|a| a["id"] == booked["id"]), "{d}");
    let last = Local::now().date_naive() + Days::new(7);
    for a in appointments {
        assert_eq!(a["provider_id"], 2, "only the caller's own calendar: {a}");
        let date = a["date"].as_str().unwrap();
        assert!(date >= Local::now().date_naive().to_string().as_str() && date <= last.to_string().as_str());
    }
    let db = &garcia.db;
    let counts = &d["counts"];
    assert_eq!(
        counts["my_patients"],
        db.scalar("SELECT COUNT(*) FROM patient_data WHERE providerID = 2").await
    );
    assert_eq!(
        counts["unread_messages"],
        db.scalar(
            "SELECT COUNT(*) FROM pnotes WHERE assigned_to = 'drgarcia' AND message_status = 'New' \
             AND activity = 1 AND deleted != 1"
        )
        .await
    );
    assert!(counts["unread_messages"].as_i64().unwrap() >= 1);
    assert_eq!(
        counts["draft_transcriptions"],
        db.scalar("SELECT COUNT(*) FROM mmt_transcriptions WHERE author_id = 2 AND status = 'draft'").await
    );
    assert_eq!(
        counts["pending_reviews"],
        db.scalar("SELECT COUNT(*) FROM mmt_transcriptions WHERE status = 'pending_review'").await,
        "a physician (encounters|notes_a) reviews every pending transcription"
    );
    assert_eq!(
        (counts["pending_reviews"].as_i64(), counts["draft_transcriptions"].as_i64()),
        (Some(1), Some(1))
    );
    let notification = &d["notifications"][0];
    assert_eq!(
        (notification["kind"].as_str(), notification["by"].as_str()),
        (Some("message.received"), Some("nkim"))
    );
}

#[tokio::test]
async fn recently_viewed_patients_come_from_patient_and_chart_reads_newest_first_without_repeats() {
    let garcia = Api::as_user(GARCIA).await;
    assert!(pids(&dashboard(&garcia).await).is_empty());
    for path in ["/api/patients/3/", "/api/patients/1/"] {
        let (status, body) = garcia.get(path).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    assert_eq!(pids(&dashboard(&garcia).await), [1, 3]);
    let (status, body) = garcia.get("/api/patients/3/allergies/").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let d = dashboard(&garcia).await;
    assert_eq!(pids(&d), [3, 1], "a chart read moves the patient up, once");
    assert!(d["recently_viewed"][0]["last_name"].is_string());
    let audited = garcia
        .db
        .scalar(
            "SELECT COUNT(*) FROM log WHERE event = 'patient-record-select' AND user = 'drgarcia' \
             AND FROM_BASE64(comments) LIKE '%dashboard: recently viewed patients, pids [3,1]%'",
        )
        .await;
    assert_eq!(audited, 1, "the dashboard's PHI read is audited, naming the patients");
    // Another user's list is their own.
    let (nurse, _) = tokens(&garcia.db, NURSE).await;
    let (_, theirs) = call(&garcia.db, &nurse, Method::GET, "/api/dashboard/", None).await;
    assert_eq!(pids(&theirs), Vec::<i64>::new());
}

#[tokio::test]
async fn recently_viewed_keeps_only_the_newest_twenty() {
    let garcia = Api::as_user(GARCIA).await;
    let all: Vec<i64> = sqlx::query_scalar("SELECT pid FROM patient_data ORDER BY pid LIMIT 22")
        .fetch_all(&garcia.db.pool)
        .await
        .unwrap();
    for pid in &all {
        let (status, body) = garcia.get(&format!("/api/patients/{pid}/")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let newest: Vec<i64> = all.iter().rev().take(20).copied().collect();
    assert_eq!(pids(&dashboard(&garcia).await), newest);
    assert_eq!(garcia.db.scalar("SELECT COUNT(*) FROM mmt_recent_patients WHERE user_id = 2").await, 20);
}

/// Reads arriving together share one write of the list; each is on it when its read answers.
#[tokio::test]
async fn patients_read_at_once_are_all_on_the_list() {
    let garcia = Api::as_user(GARCIA).await;
    let client = garcia.db.client();
    let reads = (1..=12).map(|pid| {
        client
            .get(format!("/api/patients/{pid}/"))
            .header("authorization", format!("Bearer {}", garcia.token))
            .send()
    });
    for resp in futures_util::future::join_all(reads).await {
        resp.assert_status_is_ok();
    }
    let mut listed = pids(&dashboard(&garcia).await);
    listed.sort_unstable();
    assert_eq!(listed, (1..=12).collect::<Vec<i64>>());
}

#[tokio::test]
async fn guests_have_no_dashboard() {
    let db = TestDb::migrated().await;
    let env = [("MMT_GUEST_LOGIN", "true")];
    let (status, guest) = send(&db, &env, None, Method::POST, "/api/auth/guest/", None).await;
    assert_eq!(status, StatusCode::OK, "{guest}");
    let token = guest["access_token"].as_str().unwrap();
    let (status, _) = send(&db, &env, Some(token), Method::GET, "/api/dashboard/", None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

async fn login_from(db: &TestDb, (user, password): (&str, &str), agent: &str) -> Value {
    let resp = db
        .client()
        .post("/api/auth/login/")
        .header("user-agent", agent)
        .body_json(&json!({"username": user, "password": password}))
        .send()
        .await;
    assert_eq!(resp.0.status(), StatusCode::OK);
    resp.json().await.value().deserialize()
}

fn token(login: &Value, kind: &str) -> String {
    login[kind].as_str().unwrap().to_string()
}

async fn devices(db: &TestDb, access: &str) -> Vec<Value> {
    let (status, body) = call(db, access, Method::GET, "/api/auth/sessions/", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["items"].as_array().unwrap().clone()
}

#[tokio::test]
async fn signed_in_devices_are_listed_and_one_can_be_signed_out() {
    let db = TestDb::migrated().await;
    let laptop = login_from(&db, GARCIA, "Laptop/1.0").await;
    let phone = login_from(&db, GARCIA, "Phone/2.0").await;
    let listed = devices(&db, &token(&laptop, "access_token")).await;
    assert_eq!(listed.len(), 2, "{listed:?}");
    let current: Vec<&Value> = listed.iter().filter(|d| d["current"] == true).collect();
    assert_eq!(current.len(), 1);
    assert_eq!(current[0]["client"], "Laptop/1.0");
    let other = listed.iter().find(|d| d["client"] == "Phone/2.0").unwrap();
    assert!(other["address"].is_string() && other["last_used_at"].is_string());

    let path = format!("/api/auth/sessions/{}/", other["id"].as_str().unwrap());
    let (status, _) = call(&db, &token(&laptop, "access_token"), Method::DELETE, &path, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = call(&db, &token(&phone, "access_token"), Method::GET, "/api/auth/user/", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "the signed-out device's token no longer works");
    let refresh = json!({"refresh_token": token(&phone, "refresh_token")});
    let (status, _) = send(&db, &[], None, Method::POST, "/api/auth/refresh/", Some(refresh)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(devices(&db, &token(&laptop, "access_token")).await.len(), 1);
    let (status, _) = call(&db, &token(&laptop, "access_token"), Method::GET, "/api/auth/user/", None).await;
    assert_eq!(status, StatusCode::OK, "this device stays signed in");
    let audited =
        db.scalar("SELECT COUNT(*) FROM log WHERE event = 'logout' AND FROM_BASE64(comments) LIKE '%sign-out of device%'").await;
    assert_eq!(audited, 1);
}

#[tokio::test]
async fn another_users_device_is_not_found_and_stays_signed_in() {
    let db = TestDb::migrated().await;
    let (garcia, _) = tokens(&db, GARCIA).await;
    let (nurse, _) = tokens(&db, NURSE).await;
    let theirs = devices(&db, &nurse).await[0]["id"].as_str().unwrap().to_string();
    for id in [theirs.as_str(), "not-a-device", "00000000-0000-0000-0000-000000000000"] {
        let (status, body) =
            call(&db, &garcia, Method::DELETE, &format!("/api/auth/sessions/{id}/"), None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{id}: {body}");
    }
    let (status, _) = call(&db, &nurse, Method::GET, "/api/auth/user/", None).await;
    assert_eq!(status, StatusCode::OK);
}

async fn refresh_if_active(
    db: &TestDb,
    env: &[(&str, &str)],
    refresh: &str,
    idle_secs: i64,
) -> (StatusCode, Value) {
    let at = (Utc::now() - chrono::Duration::seconds(idle_secs)).to_rfc3339();
    let body = json!({"refresh_token": refresh, "last_activity_at": at});
    send(db, env, None, Method::POST, "/api/auth/refresh-if-active/", Some(body)).await
}

#[tokio::test]
async fn refresh_if_active_rotates_for_an_active_device_and_signs_an_idle_one_out() {
    let db = TestDb::migrated().await;
    let (_, refresh) = tokens(&db, GARCIA).await;
    let (status, active) = refresh_if_active(&db, &[], &refresh, 30).await;
    assert_eq!(status, StatusCode::OK, "{active}");
    let (refresh, access) = (token(&active, "refresh_token"), token(&active, "access_token"));

    let short = [("MMT_IDLE_TIMEOUT_SECS", "60")];
    let (status, idle) = refresh_if_active(&db, &short, &refresh, 120).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{idle}");
    assert_eq!(idle["type"], "urn:mmt-sidecar:problem:idle");
    assert!(idle["detail"].as_str().unwrap().contains("idle for longer than 60 seconds"), "{idle}");
    let (status, _) = call(&db, &access, Method::GET, "/api/auth/user/", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "an idle device is signed out");
    let (status, _) = refresh_if_active(&db, &[], &refresh, 0).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "its refresh token is revoked too");
}

#[tokio::test]
async fn refresh_if_active_refuses_a_last_activity_in_the_future() {
    let db = TestDb::migrated().await;
    let (_, refresh) = tokens(&db, GARCIA).await;
    let (status, body) = refresh_if_active(&db, &[], &refresh, -3600).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["errors"][0]["field"], "last_activity_at");
}

async fn user_row(
    db: &TestDb,
    username: &str,
) -> (String, Option<String>, Option<String>, Option<String>, String) {
    sqlx::query_as(
        "SELECT CAST(username AS CHAR), fname, specialty, email, taxonomy FROM users WHERE username = ?",
    )
    .bind(username)
    .fetch_one(&db.pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_user_without_openemrs_user_administration_may_change_nothing_of_their_record() {
    let nurse = Api::as_user(NURSE).await;
    let (status, profile) = nurse.get("/api/auth/profile/").await;
    assert_eq!(status, StatusCode::OK, "{profile}");
    assert_eq!(profile["username"], "nkim");
    assert_eq!(profile["editable"], json!([]));
    let before = user_row(&nurse.db, "nkim").await;
    let (status, body) =
        nurse.call("PATCH", "/api/auth/profile/", Some(json!({"specialty": "Cardiology"}))).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("specialty"), "{body}");
    assert_eq!(user_row(&nurse.db, "nkim").await, before);
}

#[tokio::test]
async fn an_administrator_changes_allowed_fields_of_their_own_record_audited_as_openemr_audits_users() {
    let admin = Api::admin().await;
    let (status, profile) = admin.get("/api/auth/profile/").await;
    assert_eq!(status, StatusCode::OK, "{profile}");
    assert!(profile["editable"].as_array().unwrap().iter().any(|f| f == "npi"), "{profile}");
    let change = json!({"fname": " Ada ", "specialty": "Informatics", "email": "ada@example.org", "npi": "1234567893"});
    let (status, updated) = admin.call("PATCH", "/api/auth/profile/", Some(change)).await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!((updated["fname"].as_str(), updated["npi"].as_str()), (Some("Ada"), Some("1234567893")));
    let row = user_row(&admin.db, "admin").await;
    assert_eq!(
        (row.1.as_deref(), row.2.as_deref(), row.3.as_deref()),
        (Some("Ada"), Some("Informatics"), Some("ada@example.org"))
    );
    let audited = admin
        .db
        .scalar(
            "SELECT COUNT(*) FROM log WHERE event = 'security-administration-update' AND category = 'Security' \
             AND user = 'admin' AND FROM_BASE64(comments) LIKE '%fname, specialty, npi, email%'",
        )
        .await;
    assert_eq!(audited, 1);

    // Fields that are not the user's to change here do not exist in the request.
    for forged in [json!({"username": "root"}), json!({"active": 0}), json!({"facility_id": 1})] {
        let (status, body) = admin.call("PATCH", "/api/auth/profile/", Some(forged.clone())).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{forged}: {body}");
        assert_eq!(body["errors"][0]["message"], "is not a field of this request", "{forged}: {body}");
    }
    assert_eq!(user_row(&admin.db, "admin").await.0, "admin");
    // Column limits and required names, every bad field named.
    let bad = json!({"fname": "", "npi": "1".repeat(16), "taxonomy": "x".repeat(31), "email": "nope"});
    let (status, body) = admin.call("PATCH", "/api/auth/profile/", Some(bad)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let named: Vec<&str> =
        body["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!(named, ["fname", "npi", "taxonomy", "email"]);
    assert_eq!(user_row(&admin.db, "admin").await, row, "nothing changed");
}
