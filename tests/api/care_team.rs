//! Care teams (`care_teams` + `care_team_member`), each write compared with what OpenEMR 8.2's
//! care team card (`CareTeamService::saveCareTeam`) writes for the same input.

use poem::http::StatusCode;
use serde_json::{Value, json};

use crate::{
    chart::{FRONT, GARCIA, NURSE, OKAFOR, field_errors, row},
    patients::Api,
};

/// A demo patient without a care team (the demo teams are pids 1 to 3).
const PID: i64 = 9;
const NKIM_ID: i64 = 4;
const OKAFOR_ID: i64 = 3;
const GARCIA_ID: i64 = 2;

fn members(pid: i64) -> String {
    format!("/api/patients/{pid}/care-team/members/")
}

async fn add(api: &Api, pid: i64, body: Value) -> (StatusCode, Value) {
    api.call("POST", &members(pid), Some(body)).await
}

async fn audits(api: &Api, pid: i64, event: &str) -> i64 {
    api.db
        .scalar(&format!(
            "SELECT COUNT(*) FROM log WHERE patient_id = {pid} AND event = '{event}' \
             AND category = 'Patient Demographics' AND log_from = 'mmt-sidecar'"
        ))
        .await
}

/// Another user signed in on the same database.
async fn as_other(api: &Api, user: (&str, &str)) -> Api {
    let (token, _) = crate::auth::tokens(&api.db, user).await;
    Api { db: api.db.clone_handle(), token }
}

fn strings(v: &[&str]) -> Vec<Option<String>> {
    v.iter().map(|s| Some(s.to_string())).collect()
}

#[tokio::test]
async fn the_demo_teams_read_as_the_care_team_card_shows_them() {
    let api = Api::as_user(GARCIA).await;
    let (status, body) = api.get("/api/patients/2/care-team/").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let team = &body["team"];
    assert_eq!(
        (team["id"].as_i64(), team["name"].as_str(), team["status"].as_str()),
        (Some(2), Some("Care Team"), Some("active"))
    );
    assert_eq!(team["uuid"].as_str().map(str::len), Some(36), "{team}");
    // drgarcia was removed (inactive), so only nkim is listed.
    let listed = team["members"].as_array().unwrap();
    assert_eq!(listed.len(), 1, "{team}");
    let nkim = &listed[0];
    assert_eq!(nkim["user_id"], NKIM_ID);
    assert_eq!(nkim["username"], "nkim");
    assert_eq!(nkim["name"], "Min-jun Kim");
    assert_eq!((nkim["role"].as_str(), nkim["role_title"].as_str()), (Some("nurse"), Some("Nurse")));
    assert_eq!(nkim["status"], "active");
    assert_eq!(nkim["provider_since"], "2023-02-06");
    assert_eq!(nkim["created_by"], OKAFOR_ID);

    let (_, all) = api.get("/api/patients/2/care-team/?include_inactive=true").await;
    let statuses: Vec<_> =
        all["team"]["members"].as_array().unwrap().iter().map(|m| m["status"].clone()).collect();
    assert_eq!(statuses, [json!("active"), json!("inactive")]);

    let (status, none) = api.get(&format!("/api/patients/{PID}/care-team/")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(none, json!({"pid": PID}));
    assert_eq!(audits(&api, 2, "patient-record-select").await, 2);
    assert_eq!(audits(&api, PID, "patient-record-select").await, 1);

    let (status, _) = api.get("/api/patients/99999/care-team/").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// A first member makes the team as the card does; adding again updates the user's row; PATCH
/// edits; DELETE marks the row inactive and keeps it.
#[tokio::test]
async fn add_patch_and_remove_write_the_rows_openemr_writes() {
    let api = Api::as_user(GARCIA).await;
    let (status, out) = add(
        &api,
        PID,
        json!({"user_id": NKIM_ID, "role": " nurse ", "provider_since": "2024-05-01", "note": "  "}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{out}");
    let member = out["id"].as_i64().unwrap();
    let team = out["care_team_id"].as_i64().unwrap();
    // care_teams: pid team_name status created_by updated_by note, uuid registered, date_created now
    let got = row(
        &api,
        &format!(
            "SELECT CAST(pid AS CHAR), team_name, status, CAST(created_by AS CHAR), CAST(updated_by AS CHAR), note, \
             (SELECT CONCAT(table_name, '.', table_id) FROM uuid_registry r WHERE r.uuid = t.uuid), \
             CAST(ABS(TIMESTAMPDIFF(SECOND, date_created, NOW())) < 120 AS CHAR) FROM care_teams t WHERE id = {team}"
        ),
    )
    .await;
    let mut want = strings(&[&PID.to_string(), "Care Team", "active", &GARCIA_ID.to_string()]);
    want.extend([None, None]);
    want.extend(strings(&["care_teams.id", "1"]));
    assert_eq!(got, want);
    // care_team_member: care_team_id user_id contact_id role facility_id provider_since status note
    // created_by updated_by
    let member_row = format!(
        "SELECT CAST(care_team_id AS CHAR), CAST(user_id AS CHAR), CAST(contact_id AS CHAR), role, \
         CAST(facility_id AS CHAR), CAST(provider_since AS CHAR), status, note, CAST(created_by AS CHAR), \
         CAST(updated_by AS CHAR) FROM care_team_member WHERE id = {member}"
    );
    let mut want = strings(&[&team.to_string(), &NKIM_ID.to_string()]);
    want.push(None);
    want.extend(strings(&["nurse"]));
    want.push(None);
    want.extend(strings(&["2024-05-01", "active", "", &GARCIA_ID.to_string()]));
    want.push(None);
    assert_eq!(row(&api, &member_row).await, want);
    assert_eq!(audits(&api, PID, "patient-record-insert").await, 2, "the team and the member");

    // The same user again: their row is written over (200), no second row, no second team.
    let (status, again) =
        add(&api, PID, json!({"user_id": NKIM_ID, "role": "case_manager", "note": "weekly calls"})).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["id"], member);
    assert_eq!(again["role_title"], "Case Manager");
    assert_eq!(again["updated_by"], GARCIA_ID);
    let counts = format!(
        "SELECT COUNT(*) FROM care_team_member m JOIN care_teams t ON t.id = m.care_team_id WHERE t.pid = {PID}"
    );
    assert_eq!(api.db.scalar(&counts).await, 1);
    assert_eq!(api.db.scalar(&format!("SELECT COUNT(*) FROM care_teams WHERE pid = {PID}")).await, 1);

    let path = format!("{}{member}/", members(PID));
    let (status, patched) =
        api.call("PATCH", &path, Some(json!({"status": "suspended", "provider_since": ""}))).await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(
        (patched["status"].as_str(), patched["note"].as_str()),
        (Some("suspended"), Some("weekly calls"))
    );
    assert_eq!(patched["provider_since"], Value::Null);
    assert_eq!(patched["role"], "case_manager");

    let okafor = as_other(&api, OKAFOR).await;
    let (status, _) = okafor.call("DELETE", &path, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let removed = row(
        &api,
        &format!(
            "SELECT status, CAST(updated_by AS CHAR), CAST(ABS(TIMESTAMPDIFF(SECOND, date_updated, NOW())) < 120 AS CHAR) \
             FROM care_team_member WHERE id = {member}"
        ),
    )
    .await;
    assert_eq!(removed, strings(&["inactive", &OKAFOR_ID.to_string(), "1"]));
    let (_, shown) = api.get(&format!("/api/patients/{PID}/care-team/")).await;
    assert_eq!(shown["team"]["members"], json!([]));
    // Three updates: the second add, the PATCH and the removal.
    assert_eq!(audits(&api, PID, "patient-record-update").await, 3);

    // Adding the removed member again brings the row back.
    let (status, back) = add(&api, PID, json!({"user_id": NKIM_ID, "role": "nurse"})).await;
    assert_eq!(
        (status, back["id"].as_i64(), back["status"].as_str()),
        (StatusCode::OK, Some(member), Some("active"))
    );

    // The team's name and status.
    let (status, renamed) = api
        .call("PATCH", &format!("/api/patients/{PID}/care-team/"), Some(json!({"name": "Diabetes team"})))
        .await;
    assert_eq!(status, StatusCode::OK, "{renamed}");
    let team_row = row(
        &api,
        &format!("SELECT team_name, status, CAST(updated_by AS CHAR) FROM care_teams WHERE id = {team}"),
    )
    .await;
    assert_eq!(team_row, strings(&["Diabetes team", "active", &GARCIA_ID.to_string()]));
}

#[tokio::test]
async fn invalid_members_get_422s_naming_the_field_and_other_patients_members_404() {
    let api = Api::as_user(GARCIA).await;
    let (status, body) = add(&api, PID, json!({"user_id": NKIM_ID, "role": "surgeon"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(field_errors(&body), ["role"]);
    // drweber (8) is inactive; 424242 does not exist.
    for user in [8, 424242] {
        let (status, body) = add(&api, PID, json!({"user_id": user, "role": "nurse"})).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(field_errors(&body), ["user_id"]);
    }
    let (status, body) = add(
        &api,
        PID,
        json!({"user_id": NKIM_ID, "role": "nurse", "status": "paused", "provider_since": "2999-01-01",
               "note": "x".repeat(65_536)}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(field_errors(&body), ["status", "provider_since", "note"]);
    assert_eq!(api.db.scalar(&format!("SELECT COUNT(*) FROM care_teams WHERE pid = {PID}")).await, 0);

    // Member 4 is drokafor on pid 3's team: not a member of pid 1's.
    let (status, _) = api.call("PATCH", &format!("{}4/", members(1)), Some(json!({"note": "x"}))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = api.call("DELETE", &format!("{}4/", members(1)), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        api.db.scalar("SELECT COUNT(*) FROM care_team_member WHERE id = 4 AND status = 'active'").await,
        1
    );
    let (status, _) = add(&api, 99999, json!({"user_id": NKIM_ID, "role": "nurse"})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// Clinicians hold `patients|demo` addonly: they read the team but cannot change it; front
/// office holds write, as for demographics.
#[tokio::test]
async fn changing_a_team_needs_demographics_write() {
    let nurse = Api::as_user(NURSE).await;
    let (status, _) = nurse.get("/api/patients/1/care-team/").await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = add(&nurse, 1, json!({"user_id": OKAFOR_ID, "role": "specialist"})).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, _) = nurse.call("DELETE", &format!("{}1/", members(1)), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let denied = "SELECT COUNT(*) FROM log WHERE patient_id = 1 AND event = 'security-administration-select' AND success = 0";
    assert_eq!(nurse.db.scalar(denied).await, 2);
    assert_eq!(nurse.db.scalar("SELECT COUNT(*) FROM care_team_member WHERE care_team_id = 1").await, 1);

    let front = as_other(&nurse, FRONT).await;
    let (status, body) = add(&front, 1, json!({"user_id": OKAFOR_ID, "role": "specialist"})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

#[tokio::test]
async fn concurrent_first_members_make_one_team() {
    let api = Api::admin().await;
    // Every active user: admin, drgarcia, drokafor, nkim, fdmiller, fdoconnor, acctbrown, emergency.
    let users = [1, 2, 3, 4, 5, 6, 7, 9];
    let calls =
        users.iter().map(|u| add(&api, PID, json!({"user_id": u, "role": "healthcare_professional"})));
    for (status, body) in futures_util::future::join_all(calls).await {
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    assert_eq!(api.db.scalar(&format!("SELECT COUNT(*) FROM care_teams WHERE pid = {PID}")).await, 1);
    let members = format!(
        "SELECT COUNT(DISTINCT m.user_id) FROM care_team_member m JOIN care_teams t ON t.id = m.care_team_id \
         WHERE t.pid = {PID}"
    );
    assert_eq!(api.db.scalar(&members).await, 8);
    assert_eq!(api.db.scalar("SELECT COUNT(*) FROM uuid_registry WHERE table_name = 'care_teams'").await, 4);
    assert_eq!(audits(&api, PID, "patient-record-insert").await, 9, "one team, eight members");
    let (_, body) = api.get(&format!("/api/patients/{PID}/care-team/")).await;
    assert_eq!(body["team"]["members"].as_array().unwrap().len(), 8);
}
