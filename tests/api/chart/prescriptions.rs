use poem::http::StatusCode;
use serde_json::{Value, json};

use super::{FRONT, GARCIA, NURSE, PID, field_errors, row};
use crate::patients::Api;

async fn prescribe(api: &Api, body: Value) -> Value {
    let (status, out) = api.call("POST", &format!("/api/patients/{PID}/prescriptions/"), Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{out}");
    out
}

fn lisinopril() -> Value {
    json!({"drug": "Lisinopril", "rxnorm_drugcode": "314076", "size": "10", "unit": "mg", "dosage": "1",
           "form": "tablet", "route": "1", "interval": "Daily", "quantity": "30", "refills": 5, "per_refill": 30,
           "substitution_allowed": true, "medication": true, "note": "take in the morning",
           "start_date": "2025-06-02"})
}

async fn audits(api: &Api, event: &str) -> i64 {
    super::audits(api, event, "Medication").await
}

async fn user_id(api: &Api, username: &str) -> String {
    api.db.scalar(&format!("SELECT id FROM users WHERE username = '{username}'")).await.to_string()
}

fn strings(v: &[&str]) -> Vec<Option<String>> {
    v.iter().map(|s| Some(s.to_string())).collect()
}

/// C_Prescription::edit_action_process → Prescription::persist() (GenID id, the *_title columns
/// from list_options) and set_medication/gen_lists_medication, for the same input.
#[tokio::test]
async fn a_prescription_is_the_row_openemrs_prescription_screen_writes() {
    let api = Api::as_user(GARCIA).await;
    let out = prescribe(&api, lisinopril()).await;
    let id = out["id"].as_i64().unwrap();
    assert_eq!(
        api.db.scalar("SELECT CAST(id AS SIGNED) FROM sequences").await,
        id,
        "the id is the GenID value"
    );
    let garcia = user_id(&api, "drgarcia").await;
    // Columns: patient_id provider_id start_date drug drug_id rxnorm_drugcode form dosage quantity size
    // unit route interval substitute refills per_refill medication note active erx_source erx_uploaded
    // txDate usage_category usage_category_title request_intent request_intent_title created_by
    // updated_by, uuid registered, date_added = date_modified = now.
    let got = row(
        &api,
        &format!(
            "SELECT CAST(patient_id AS CHAR), CAST(provider_id AS CHAR), CAST(start_date AS CHAR), drug, \
             CAST(drug_id AS CHAR), rxnorm_drugcode, CAST(form AS CHAR), dosage, quantity, size, CAST(unit AS CHAR), \
             route, CAST(`interval` AS CHAR), CAST(substitute AS CHAR), CAST(refills AS CHAR), CAST(per_refill AS CHAR), \
             CAST(medication AS CHAR), note, CAST(active AS CHAR), CAST(erx_source AS CHAR), CAST(erx_uploaded AS CHAR), \
             CAST(txDate AS CHAR), usage_category, usage_category_title, request_intent, request_intent_title, \
             CAST(created_by AS CHAR), CAST(updated_by AS CHAR), \
             (SELECT table_name FROM uuid_registry r WHERE r.uuid = p.uuid), \
             CAST(date_added = date_modified AND ABS(TIMESTAMPDIFF(SECOND, date_added, NOW())) < 120 AS CHAR) \
             FROM prescriptions p WHERE id = {id}"
        ),
    )
    .await;
    let pid = PID.to_string();
    let want = strings(&[
        &pid,
        &garcia,
        "2025-06-02",
        "Lisinopril",
        "0",
        "314076",
        "2",
        "1",
        "30",
        "10",
        "1",
        "1",
        "9",
        "1",
        "5",
        "30",
        "1",
        "take in the morning",
        "1",
        "0",
        "0",
        "2025-06-02",
        "outpatient",
        "Outpatient",
        "order",
        "Order",
        &garcia,
        &garcia,
        "prescriptions",
        "1",
    ]);
    assert_eq!(got, want);
    // set_medication's lists row: type activity pid user groupname title begdate (today);
    // gen_lists_medication: drug_dosage_instructions; 8.x pairs it by prescription_id.
    let listed = row(
        &api,
        &format!(
            "SELECT l.type, CAST(l.activity AS CHAR), CAST(l.pid AS CHAR), l.user, l.groupname, l.title, \
             CAST(DATE(l.begdate) = CURDATE() AS CHAR), m.drug_dosage_instructions, CAST(m.prescription_id AS CHAR), \
             m.usage_category_title, m.request_intent_title \
             FROM lists l JOIN lists_medication m ON m.list_id = l.id WHERE m.prescription_id = {id}"
        ),
    )
    .await;
    let want = strings(&[
        "medication",
        "1",
        &pid,
        "drgarcia",
        "Default",
        "Lisinopril",
        "1",
        "10mg\t\t1 in tablet Daily",
        &id.to_string(),
        "Outpatient",
        "Order",
    ]);
    assert_eq!(listed, want);
    assert_eq!(audits(&api, "order-insert").await, 1);
    assert_eq!(out["active"], true);
    assert_eq!(out["form"], "2");
    let (status, list) = api.get(&format!("/api/patients/{PID}/prescriptions/")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(list["items"].as_array().unwrap().iter().any(|p| p["id"] == id));
    assert!(audits(&api, "order-select").await >= 1);
}

/// Ids come from OpenEMR's one GenID counter, so OpenEMR's own users of `sequences` (encounters,
/// documents, its prescription screen) never get a number a sidecar prescription holds.
#[tokio::test]
async fn concurrent_creates_get_distinct_ids_that_never_collide_with_openemrs_genid() {
    let api = Api::as_user(GARCIA).await;
    let creates = (0..16).map(|i| {
        let api = &api;
        async move {
            let mut body = lisinopril();
            body["drug"] = json!(format!("Drug {i}"));
            body["medication"] = json!(false);
            prescribe(api, body).await["id"].as_i64().unwrap()
        }
    });
    // OpenEMR's PHP takes its ids on connections of its own, not from the sidecar's pool.
    let raw = (0..16).map(|_| async {
        let mut conn = <sqlx::MySqlConnection as sqlx::Connection>::connect(&api.db.url).await.unwrap();
        sqlx::query("UPDATE sequences SET id = LAST_INSERT_ID(id + 1)").execute(&mut conn).await.unwrap();
        let id: u64 = sqlx::query_scalar("SELECT LAST_INSERT_ID()").fetch_one(&mut conn).await.unwrap();
        id as i64
    });
    let (ours, theirs) =
        tokio::join!(futures_util::future::join_all(creates), futures_util::future::join_all(raw));
    let mut all: Vec<i64> = ours.iter().chain(&theirs).copied().collect();
    all.sort_unstable();
    all.dedup();
    assert_eq!(all.len(), 32, "ours {ours:?} theirs {theirs:?}");
    let stored = api.db.scalar("SELECT COUNT(*) FROM prescriptions WHERE drug LIKE 'Drug %'").await;
    assert_eq!(stored, 16);
}

#[tokio::test]
async fn a_replayed_client_key_returns_the_same_prescription_and_a_changed_body_is_refused() {
    let api = Api::as_user(GARCIA).await;
    let mut body = lisinopril();
    body["external_id"] = json!("rx-client-0001");
    let first = prescribe(&api, body.clone()).await;
    let path = format!("/api/patients/{PID}/prescriptions/");
    let (status, again) = api.call("POST", &path, Some(body.clone())).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["id"], first["id"]);
    assert_eq!(again["external_id"], "rx-client-0001");
    body["quantity"] = json!("60");
    let (status, refused) = api.call("POST", &path, Some(body)).await;
    assert_eq!(status, StatusCode::CONFLICT, "{refused}");
    let count = "SELECT COUNT(*) FROM prescriptions WHERE external_id = 'rx-client-0001'";
    assert_eq!(api.db.scalar(count).await, 1);
}

#[tokio::test]
async fn list_values_are_codes_or_titles_and_unknown_ones_name_the_allowed() {
    let api = Api::as_user(GARCIA).await;
    let before = api.db.scalar("SELECT COUNT(*) FROM prescriptions").await;
    let mut body = lisinopril();
    body["form"] = json!("syrup");
    body["interval"] = json!("every blue moon");
    body["drug"] = json!("x".repeat(151));
    let (status, out) = api.call("POST", &format!("/api/patients/{PID}/prescriptions/"), Some(body)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{out}");
    let fields = field_errors(&out);
    assert!(
        fields.contains(&"form".into())
            && fields.contains(&"interval".into())
            && fields.contains(&"drug".into())
    );
    let text = out.to_string();
    assert!(text.contains("2 (tablet)") && text.contains("9 (Daily)"), "{text}");
    assert_eq!(api.db.scalar("SELECT COUNT(*) FROM prescriptions").await, before);
    let mut by_title = lisinopril();
    by_title["route"] = json!("by mouth");
    assert_eq!(prescribe(&api, by_title).await["route"], "bymouth");
}

/// The edit screen with "Currently Active" unticked stores -1 (C_Prescription), stamps
/// date_modified and updated_by; set_medication with medication=0 deactivates the list entry.
#[tokio::test]
async fn discontinuing_stores_what_the_prescription_screen_stores() {
    let api = Api::as_user(GARCIA).await;
    let id = prescribe(&api, lisinopril()).await["id"].as_i64().unwrap();
    sqlx::query(
        "UPDATE prescriptions SET date_modified = '2025-01-01 00:00:00', updated_by = 0 WHERE id = ?",
    )
    .bind(id)
    .execute(&api.db.pool)
    .await
    .unwrap();
    let (status, out) = api
        .call(
            "PATCH",
            &format!("/api/prescriptions/{id}/"),
            Some(json!({"active": false, "medication": false})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{out}");
    assert_eq!(out["active"], false);
    // Columns: active medication updated_by date_modified (now); the lists row's activity.
    let got = row(
        &api,
        &format!(
            "SELECT CAST(active AS CHAR), CAST(medication AS CHAR), CAST(updated_by AS CHAR), \
             CAST(ABS(TIMESTAMPDIFF(SECOND, date_modified, NOW())) < 120 AS CHAR), \
             (SELECT CAST(l.activity AS CHAR) FROM lists l JOIN lists_medication m ON m.list_id = l.id \
              WHERE m.prescription_id = p.id) FROM prescriptions p WHERE id = {id}"
        ),
    )
    .await;
    assert_eq!(got, strings(&["-1", "0", &user_id(&api, "drgarcia").await, "1", "0"]));
    assert_eq!(audits(&api, "order-update").await, 1);
}

async fn pdf_text(api: &Api, path: &str) -> String {
    super::fetched_pdf_text(&api.db, &api.token, path).await
}

#[tokio::test]
async fn the_pdf_prints_the_drug_the_patient_and_the_prescriber_and_is_audited() {
    let api = Api::as_user(GARCIA).await;
    let mut body = lisinopril();
    body["australian"] =
        json!({"prescriber_number": "1234567", "medicare_number": "2123456701", "pbs": true});
    let id = prescribe(&api, body).await["id"].as_i64().unwrap();
    let second = prescribe(&api, json!({"drug": "Amoxicillin", "dosage": "1", "quantity": "21"})).await;
    let patient =
        row(&api, &format!("SELECT fname, lname, pubpid FROM patient_data WHERE pid = {PID}")).await;
    let prescriber = row(&api, "SELECT fname, lname FROM users WHERE username = 'drgarcia'").await;
    let text = pdf_text(&api, &format!("/api/prescriptions/{id}/pdf")).await;
    for want in [&patient[0], &patient[1], &prescriber[1]] {
        assert!(text.contains(want.as_deref().unwrap()), "{want:?} missing in:\n{text}");
    }
    for want in [
        "Lisinopril",
        "10 mg",
        "tablet",
        "Per Oris",
        "Daily",
        "Quantity: 30",
        "substitution allowed",
        "take in the morning",
        "Prescriber No.: 1234567",
        "Medicare No.: 2123456701",
        "PBS prescription",
        "DEA: ___",
        "Signature",
        "2025-06-02",
    ] {
        assert!(text.contains(want), "{want} missing in:\n{text}");
    }
    let mrn = format!("{:0>10}", patient[2].as_deref().unwrap());
    assert!(text.contains(&mrn), "MRN {mrn} missing");
    let both =
        pdf_text(&api, &format!("/api/patients/{PID}/prescriptions/pdf?ids={id},{}", second["id"])).await;
    assert!(both.contains("Lisinopril") && both.contains("Amoxicillin"), "{both}");
    sqlx::query("UPDATE patient_data SET fname = 'Zoë', mname = 'Łucja 李' WHERE pid = ?")
        .bind(PID)
        .execute(&api.db.pool)
        .await
        .unwrap();
    let accented = pdf_text(&api, &format!("/api/prescriptions/{id}/pdf")).await;
    assert!(accented.contains("Zoë") && accented.contains("Lisinopril"), "{accented}");
    let disclosed = "SELECT COUNT(*) FROM log WHERE event = 'order-select' AND category = 'Medication'";
    assert!(api.db.scalar(disclosed).await >= 3);
    let (status, _) = api.get(&format!("/api/patients/{}/prescriptions/pdf?ids={id}", PID + 1)).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "another patient's prescription is not printed under this one");
}

#[tokio::test]
async fn front_office_is_refused_prescriptions_and_a_clinician_may_add_but_not_change() {
    let front = Api::as_user(FRONT).await;
    let before = front.db.scalar("SELECT COUNT(*) FROM prescriptions").await;
    let path = format!("/api/patients/{PID}/prescriptions/");
    assert_eq!(front.get(&path).await.0, StatusCode::FORBIDDEN);
    assert_eq!(front.call("POST", &path, Some(lisinopril())).await.0, StatusCode::FORBIDDEN);
    assert_eq!(front.db.scalar("SELECT COUNT(*) FROM prescriptions").await, before);
    let nurse = Api::as_user(NURSE).await;
    let id = prescribe(&nurse, lisinopril()).await["id"].as_i64().unwrap();
    let (status, _) =
        nurse.call("PATCH", &format!("/api/prescriptions/{id}/"), Some(json!({"active": false}))).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "addonly may add, not change");
}
