use poem::http::StatusCode;
use serde_json::{Value, json};

use super::{FRONT, GARCIA, NURSE, PID, audits, field_errors, row};
use crate::{patients::Api, transcriptions::encounter_for};

async fn add(api: &Api, list: &str, body: Value) -> Value {
    let (status, out) = api.call("POST", &format!("/api/patients/{PID}/{list}/"), Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{out}");
    out
}

fn strings(v: &[&str]) -> Vec<Option<String>> {
    v.iter().map(|s| Some(s.to_string())).collect()
}

/// interface/patient_file/summary/add_edit_issue.php → PatientIssuesService::createIssue,
/// setListTouch and linkIssueToEncounter, for the same input.
#[tokio::test]
async fn a_problem_is_the_row_openemrs_issue_screen_writes_with_a_correct_date() {
    let api = Api::as_user(GARCIA).await;
    let encounter = encounter_for(&api, PID).await;
    let out = add(
        &api,
        "problems",
        json!({"title": "Type 2 diabetes mellitus", "begdate": "2024-03-01", "codes": ["ICD10:E11.9", "SNOMED-CT:44054006"],
               "comments": "diet controlled", "occurrence": "4", "outcome": "3", "encounter": encounter}),
    )
    .await;
    let id = out["id"].as_i64().unwrap();
    // Columns: type begdate enddate returndate erx_uploaded pid title comments diagnosis occurrence
    // classification reinjury_id referredby injury_grade outcome destination reaction verification
    // severity_al list_option_id subtype activity user groupname, uuid registered, date = now.
    let got = row(
        &api,
        &format!(
            "SELECT type, CAST(begdate AS CHAR), enddate, returndate, erx_uploaded, CAST(pid AS CHAR), title, comments, \
             diagnosis, CAST(occurrence AS CHAR), CAST(classification AS CHAR), CAST(reinjury_id AS CHAR), referredby, \
             injury_grade, CAST(outcome AS CHAR), destination, reaction, verification, severity_al, list_option_id, \
             subtype, CAST(activity AS CHAR), user, groupname, \
             (SELECT table_name FROM uuid_registry r WHERE r.uuid = l.uuid), \
             CAST(ABS(TIMESTAMPDIFF(SECOND, date, NOW())) < 120 AS CHAR) FROM lists l WHERE id = {id}"
        ),
    )
    .await;
    let mut want = strings(&["medical_problem", "2024-03-01 00:00:00"]);
    want.extend([None, None]);
    want.extend(strings(&[
        "0",
        &PID.to_string(),
        "Type 2 diabetes mellitus",
        "diet controlled",
        "ICD10:E11.9;SNOMED-CT:44054006",
        "4",
        "0",
        "0",
        "",
        "",
        "3",
        "",
        "",
        "",
    ]));
    want.extend([None, None]);
    want.extend(strings(&["", "1", "drgarcia", "Default", "lists", "1"]));
    assert_eq!(got, want);
    // issue_encounter: pid list_id encounter resolved created_by updated_by, uuid registered
    let link = row(
        &api,
        &format!(
            "SELECT CAST(pid AS CHAR), CAST(list_id AS CHAR), CAST(encounter AS CHAR), CAST(resolved AS CHAR), \
             CAST(created_by AS CHAR), CAST(updated_by AS CHAR), \
             (SELECT table_name FROM uuid_registry r WHERE r.uuid = i.uuid) FROM issue_encounter i WHERE list_id = {id}"
        ),
    )
    .await;
    let garcia_id = api.db.scalar("SELECT id FROM users WHERE username = 'drgarcia'").await.to_string();
    assert_eq!(
        link,
        strings(&[
            &PID.to_string(),
            &id.to_string(),
            &encounter.to_string(),
            "0",
            &garcia_id,
            &garcia_id,
            "issue_encounter"
        ])
    );
    let touched = format!("SELECT COUNT(*) FROM lists_touch WHERE pid = {PID} AND type = 'medical_problem'");
    assert_eq!(api.db.scalar(&touched).await, 1);
    assert_eq!(audits(&api, "patient-record-insert", "Problem List").await, 1);
    assert_eq!(out["codes"], json!(["ICD10:E11.9", "SNOMED-CT:44054006"]));
    assert_eq!(out["encounters"], json!([encounter]));
    assert_eq!(out["active"], true);
}

#[tokio::test]
async fn a_medication_gets_its_lists_medication_row_as_openemr_writes_it() {
    let api = Api::as_user(GARCIA).await;
    let out = add(
        &api,
        "medications",
        json!({"title": "lisinopril 10 MG Oral Tablet", "codes": ["RXCUI:314076"], "begdate": "2025-01-02",
               "dosage_instructions": "1 tablet by mouth daily", "usage_category": "community", "request_intent": "order"}),
    )
    .await;
    let id = out["id"].as_i64().unwrap();
    // Columns: list_id drug_dosage_instructions usage_category usage_category_title request_intent
    // request_intent_title medication_adherence_information_source medication_adherence
    // medication_adherence_date_asserted prescription_id is_primary_record reporting_source_record_id
    let got = row(
        &api,
        &format!(
            "SELECT CAST(list_id AS CHAR), drug_dosage_instructions, usage_category, usage_category_title, request_intent, \
             request_intent_title, medication_adherence_information_source, medication_adherence, \
             CAST(medication_adherence_date_asserted AS CHAR), CAST(prescription_id AS CHAR), \
             CAST(is_primary_record AS CHAR), CAST(reporting_source_record_id AS CHAR) FROM lists_medication WHERE list_id = {id}"
        ),
    )
    .await;
    let mut want = strings(&[
        &id.to_string(),
        "1 tablet by mouth daily",
        "community",
        "Home/Community",
        "order",
        "Order",
    ]);
    want.extend([None, None, None, None, Some("1".into()), None]);
    assert_eq!(got, want);
    let diagnosis = row(&api, &format!("SELECT diagnosis, type FROM lists WHERE id = {id}")).await;
    assert_eq!(diagnosis, strings(&["RXCUI:314076", "medication"]));
    assert_eq!(audits(&api, "patient-record-insert", "Medication").await, 1);
    // Without options the titles are empty, as MedicationPatientIssueService leaves them.
    let bare = add(&api, "medications", json!({"title": "vitamin D3"})).await["id"].as_i64().unwrap();
    let titles = row(
        &api,
        &format!(
            "SELECT usage_category, usage_category_title, request_intent, request_intent_title \
             FROM lists_medication WHERE list_id = {bare}"
        ),
    )
    .await;
    assert_eq!(titles, vec![None, Some(String::new()), None, Some(String::new())]);
}

#[tokio::test]
async fn allergy_lists_are_checked_against_openemrs_lists_naming_the_allowed_values() {
    let api = Api::as_user(GARCIA).await;
    let out = add(
        &api,
        "allergies",
        json!({"title": "Penicillin", "codes": ["RXCUI:7980"], "severity": "severe", "reaction": "hives",
               "verification": "confirmed"}),
    )
    .await;
    assert_eq!((out["severity"].as_str(), out["reaction"].as_str()), (Some("severe"), Some("hives")));
    let stored =
        row(&api, &format!("SELECT severity_al, reaction, verification FROM lists WHERE id = {}", out["id"]))
            .await;
    assert_eq!(stored, strings(&["severe", "hives", "confirmed"]));
    assert_eq!(audits(&api, "patient-record-insert", "Allergy").await, 1);
    let before = api.db.scalar("SELECT COUNT(*) FROM lists").await;
    let path = format!("/api/patients/{PID}/allergies/");
    let (status, out) = api
        .call("POST", &path, Some(json!({"title": "Latex", "severity": "awful", "reaction": "sneezing"})))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(field_errors(&out), ["severity", "reaction"]);
    let message = out["errors"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("mild, mild_to_moderate, moderate") && message.contains("severity_ccda"),
        "{message}"
    );
    for (list, body, field) in [
        ("problems", json!({"title": "Asthma", "severity": "mild"}), "severity"),
        ("problems", json!({"title": "Asthma", "codes": ["RXCUI:7980"]}), "codes[0]"),
        ("problems", json!({"codes": ["ICD10:J45"]}), "title"),
        ("problems", json!({"title": "Asthma", "begdate": "2025-02-30"}), "begdate"),
        ("problems", json!({"title": "Asthma", "begdate": "2025-02-03", "enddate": "2025-01-01"}), "enddate"),
        ("problems", json!({"title": "Asthma", "outcome": "9"}), "outcome"),
        ("allergies", json!({"title": "Latex", "dosage_instructions": "none"}), "dosage_instructions"),
        ("medications", json!({"title": "x"}), "title"),
        ("medications", json!({"title": "aspirin", "request_intent": "wish"}), "request_intent"),
    ] {
        let (status, out) =
            api.call("POST", &format!("/api/patients/{PID}/{list}/"), Some(body.clone())).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {out}");
        assert_eq!(field_errors(&out), [field], "{body}");
    }
    assert_eq!(api.db.scalar("SELECT COUNT(*) FROM lists").await, before, "nothing half-written");
}

#[tokio::test]
async fn issues_are_ended_and_reactivated_never_deleted() {
    let api = Api::as_user(GARCIA).await;
    let id =
        add(&api, "problems", json!({"title": "Acute bronchitis", "codes": ["ICD10:J20.9"]})).await["id"]
            .as_i64()
            .unwrap();
    let path = format!("/api/issues/{id}/");
    let (status, ended) = api
        .call("PATCH", &path, Some(json!({"status": "ended", "enddate": "2025-06-01", "outcome": "1"})))
        .await;
    assert_eq!(status, StatusCode::OK, "{ended}");
    assert_eq!((ended["active"].as_bool(), ended["outcome"].as_i64()), (Some(false), Some(1)));
    let stored = row(
        &api,
        &format!("SELECT CAST(enddate AS CHAR), CAST(activity AS CHAR) FROM lists WHERE id = {id}"),
    )
    .await;
    assert_eq!(stored, strings(&["2025-06-01 00:00:00", "1"]));
    let (_, listed) = api.get(&format!("/api/patients/{PID}/problems/")).await;
    let mine = listed["items"].as_array().unwrap().iter().find(|i| i["id"].as_i64() == Some(id)).unwrap();
    assert_eq!(mine["active"], false);
    let (status, active) = api.call("PATCH", &path, Some(json!({"status": "active"}))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!((active["active"].as_bool(), active.get("enddate")), (Some(true), None));
    assert_eq!(active["codes"], json!(["ICD10:J20.9"]), "unsent fields are kept");
    let (status, now_ended) = api.call("PATCH", &path, Some(json!({"status": "ended"}))).await;
    assert_eq!((status, now_ended["active"].as_bool()), (StatusCode::OK, Some(false)), "ends now by default");
    let (status, out) = api.call("PATCH", &path, Some(json!({"status": "deleted"}))).await;
    assert_eq!((status, field_errors(&out)), (StatusCode::UNPROCESSABLE_ENTITY, vec!["status".to_string()]));
    assert_eq!(api.call("DELETE", &path, None).await.0, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(api.db.scalar(&format!("SELECT COUNT(*) FROM lists WHERE id = {id}")).await, 1);
    assert_eq!(audits(&api, "patient-record-update", "Problem List").await, 3);
}

#[tokio::test]
async fn the_lists_need_patients_med() {
    let garcia = Api::as_user(GARCIA).await;
    let id = add(&garcia, "problems", json!({"title": "Hypertension", "codes": ["ICD10:I10"]})).await["id"]
        .as_i64()
        .unwrap();
    let front = garcia.as_other(FRONT).await;
    for path in ["problems", "allergies", "medications"] {
        let (status, _) = front.get(&format!("/api/patients/{PID}/{path}/")).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "front office has no patients|med: {path}");
    }
    assert_eq!(front.get(&format!("/api/issues/{id}/")).await.0, StatusCode::FORBIDDEN);
    let (status, _) =
        front.call("POST", &format!("/api/patients/{PID}/problems/"), Some(json!({"title": "Gout"}))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) =
        front.call("PATCH", &format!("/api/issues/{id}/"), Some(json!({"status": "ended"}))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let denied = "SELECT COUNT(*) FROM log WHERE success = 0 AND user = 'fdoconnor'";
    assert!(garcia.db.scalar(denied).await >= 6, "each refusal is audited");
    let nurse = garcia.as_other(NURSE).await;
    assert_eq!(
        nurse.get(&format!("/api/issues/{id}/")).await.0,
        StatusCode::OK,
        "clinicians hold patients|med"
    );
    assert_eq!(garcia.get("/api/issues/999999/").await.0, StatusCode::NOT_FOUND);
    assert_eq!(garcia.get("/api/patients/999999/problems/").await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_chart_summary_returns_every_list_of_a_patient_in_one_request() {
    let api = Api::as_user(GARCIA).await;
    add(&api, "allergies", json!({"title": "Peanut", "codes": ["SNOMED-CT:91935009"]})).await;
    let problem = add(&api, "problems", json!({"title": "Hypertension", "codes": ["ICD10:I10"]})).await;
    add(&api, "medications", json!({"title": "amlodipine 5 MG Oral Tablet", "codes": ["RXCUI:197361"]}))
        .await;
    let (status, chart) = api.get(&format!("/api/patients/{PID}/chart/")).await;
    assert_eq!(status, StatusCode::OK, "{chart}");
    for (list, kind) in
        [("allergies", "allergy"), ("problems", "medical_problem"), ("medications", "medication")]
    {
        let items = chart[list].as_array().unwrap();
        assert!(!items.is_empty() && items.iter().all(|i| i["type"] == kind), "{list}: {chart}");
        let (_, alone) = api.get(&format!("/api/patients/{PID}/{list}/")).await;
        assert_eq!(alone["items"], chart[list], "{list} matches its own list");
    }
    assert!(chart["problems"].as_array().unwrap().iter().any(|p| p["id"] == problem["id"]));
    for category in ["Allergy", "Problem List", "Medication"] {
        assert!(audits(&api, "patient-record-select", category).await >= 2, "{category}");
    }
    let front = api.as_other(FRONT).await;
    assert_eq!(front.get(&format!("/api/patients/{PID}/chart/")).await.0, StatusCode::FORBIDDEN);
}
