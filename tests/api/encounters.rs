use std::collections::HashSet;

use poem::http::StatusCode;
use serde_json::{Value, json};

use crate::patients::Api;

/// A patient with encounters by more than one provider, from the demo data.
async fn shared_patient(api: &Api) -> i64 {
    api.db.scalar( "SELECT pid FROM form_encounter GROUP BY pid HAVING COUNT(DISTINCT provider_id) > 1 ORDER BY pid LIMIT 1")
        .await
}

#[tokio::test]
async fn a_patients_encounters_are_listed_newest_first_with_a_total() {
    let api = Api::admin().await;
    let pid = shared_patient(&api).await;
    let expected = api.db.scalar(&format!("SELECT COUNT(*) FROM form_encounter WHERE pid = {pid}")).await;
    let (status, body) = api.get(&format!("/api/patients/{pid}/encounters/")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["total"], expected);
    let dates: Vec<&str> =
        body["items"].as_array().unwrap().iter().map(|e| e["date"].as_str().unwrap()).collect();
    assert!(dates.windows(2).all(|w| w[0] >= w[1]), "{dates:?}");
    let (_, same) = api.get(&format!("/api/encounters/?patient={pid}")).await;
    assert_eq!(same["items"], body["items"]);
    let (status, body) = api.get("/api/encounters/").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["errors"][0]["field"], "patient");
    let (status, _) = api.get("/api/patients/999999/encounters/").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn encounters_notes_sees_only_ones_own_encounters() {
    let api = Api::as_user(("drokafor", "Physician-Okafor-3")).await;
    sqlx::query("DELETE FROM gacl_aco_map WHERE section_value = 'encounters' AND value = 'notes_a'")
        .execute(&api.db.pool)
        .await
        .unwrap();
    let me = api.db.scalar("SELECT id FROM users WHERE username = 'drokafor'").await;
    let pid = api.db.scalar(
        &format!(
            "SELECT pid FROM form_encounter GROUP BY pid HAVING SUM(provider_id = {me}) > 0 AND SUM(provider_id <> {me}) > 0 \
             ORDER BY pid LIMIT 1"
        ),
    )
    .await;
    let (status, body) = api.get(&format!("/api/patients/{pid}/encounters/?page_size=100")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mine = api
        .db
        .scalar(&format!("SELECT COUNT(*) FROM form_encounter WHERE pid = {pid} AND provider_id = {me}"))
        .await;
    assert_eq!(body["total"], mine);
    assert!(body["items"].as_array().unwrap().iter().all(|e| e["provider_id"] == me));
    let theirs = api
        .db
        .scalar(&format!(
            "SELECT encounter FROM form_encounter WHERE pid = {pid} AND provider_id <> {me} LIMIT 1"
        ))
        .await;
    let (status, _) = api.get(&format!("/api/encounters/{theirs}/")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn front_office_cannot_read_encounters() {
    let api = Api::as_user(("fdoconnor", "Front-OConnor-6")).await;
    let (status, body) = api.get("/api/patients/1/encounters/").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
}

/// Reference: EncounterService::insertEncounter and interface/forms/newpatient/save.php.
#[tokio::test]
async fn a_created_encounter_is_written_as_openemr_writes_it() {
    let api = Api::admin().await;
    let provider = api.db.scalar("SELECT id FROM users WHERE username = 'drgarcia'").await;
    let seq_before = api.db.scalar("SELECT CAST(id AS SIGNED) FROM sequences").await;
    let (status, created) = api
        .call(
            "POST",
            "/api/encounters/",
            Some(json!({"pid": 5, "facility_id": 4, "provider_id": provider, "reason": "Follow-up: cough", "date": "2026-11-20T09:15"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let number = created["encounter"].as_i64().unwrap();
    assert_eq!(number, seq_before + 1, "numbered from sequences");
    assert_eq!(api.db.scalar("SELECT CAST(id AS SIGNED) FROM sequences").await, number);

    let fe: (i64, String, String, i64, i64, i64, String, String, i64, String) = sqlx::query_as(
        "SELECT fe.id, fe.facility, CAST(fe.date AS CHAR), fe.facility_id, fe.billing_facility, fe.provider_id, fe.class_code, \
         fe.sensitivity, fe.pc_catid, CAST(fe.pos_code = f.pos_code AS CHAR) FROM form_encounter fe JOIN facility f ON f.id = fe.facility_id \
         WHERE fe.encounter = ?",
    )
    .bind(number)
    .fetch_one(&api.db.pool)
    .await
    .unwrap();
    let facility_name: String =
        sqlx::query_scalar("SELECT name FROM facility WHERE id = 4").fetch_one(&api.db.pool).await.unwrap();
    assert_eq!(fe.1, facility_name, "facility name is copied, as save.php does");
    assert_eq!(fe.2, "2026-11-20 09:15:00");
    assert_eq!((fe.3, fe.4, fe.5), (4, 4, provider));
    assert_eq!((fe.6.as_str(), fe.7.as_str(), fe.8, fe.9.as_str()), ("AMB", "normal", 5, "1"));

    let form: (String, i64, i64, String, String, i64, i64, String) = sqlx::query_as(
        "SELECT form_name, form_id, pid, user, groupname, authorized, deleted, formdir FROM forms WHERE encounter = ?",
    )
    .bind(number)
    .fetch_one(&api.db.pool)
    .await
    .unwrap();
    assert_eq!(
        form,
        (
            "New Patient Encounter".into(),
            fe.0,
            5,
            "admin".into(),
            "Default".into(),
            1,
            0,
            "newpatient".into()
        )
    );
    let registered: String = sqlx::query_scalar(
        "SELECT r.table_name FROM uuid_registry r JOIN form_encounter fe ON fe.uuid = r.uuid WHERE fe.encounter = ?",
    )
    .bind(number)
    .fetch_one(&api.db.pool)
    .await
    .unwrap();
    assert_eq!(registered, "form_encounter");
    let audited = api.db.scalar( "SELECT COUNT(*) FROM log WHERE event = 'patient-record-insert' AND category = 'Encounter Form' AND patient_id = 5").await;
    assert_eq!(audited, 1);
}

#[tokio::test]
async fn concurrent_creates_never_reuse_an_encounter_number() {
    let api = Api::admin().await;
    let calls = (0..20)
        .map(|i| api.call("POST", "/api/encounters/", Some(json!({"pid": 1 + i % 5, "facility_id": 3}))));
    let results = futures_util::future::join_all(calls).await;
    let numbers: HashSet<i64> = results
        .iter()
        .map(|(status, body)| {
            assert_eq!(*status, StatusCode::CREATED, "{body}");
            body["encounter"].as_i64().unwrap()
        })
        .collect();
    assert_eq!(numbers.len(), 20);
    assert_eq!(
        api.db.scalar("SELECT CAST(id AS SIGNED) FROM sequences").await,
        *numbers.iter().max().unwrap()
    );
    assert_eq!(api.db.scalar("SELECT COUNT(*) - COUNT(DISTINCT encounter) FROM form_encounter").await, 0);
    let forms = api
        .db
        .scalar(&format!(
            "SELECT COUNT(*) FROM forms WHERE formdir = 'newpatient' AND encounter IN ({})",
            numbers.iter().map(i64::to_string).collect::<Vec<_>>().join(",")
        ))
        .await;
    assert_eq!(forms, 20);
}

#[tokio::test]
async fn invalid_references_get_a_422_naming_each_field() {
    let api = Api::admin().await;
    let before = api.db.scalar("SELECT COUNT(*) FROM form_encounter").await;
    let (status, body) = api
        .call(
            "POST",
            "/api/encounters/",
            Some(json!({"pid": 999999, "facility_id": 77, "provider_id": 4242, "category_id": 999, "class_code": "XYZ"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let fields: HashSet<&str> =
        body["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!(
        fields,
        HashSet::from(["pid", "facility_id", "billing_facility_id", "provider_id", "pc_catid", "class_code"])
    );
    let (status, body) =
        api.call("POST", "/api/encounters/", Some(json!({"pid": 1, "facility_id": 3, "date": "soon"}))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["errors"][0]["field"], "date");
    assert_eq!(api.db.scalar("SELECT COUNT(*) FROM form_encounter").await, before, "nothing written");
}

#[tokio::test]
async fn a_clinician_may_open_their_own_encounter_but_not_anothers() {
    let api = Api::as_user(("nkim", "Clinician-Kim-4")).await;
    let (status, body) =
        api.call("POST", "/api/encounters/", Some(json!({"pid": 2, "facility_id": 3}))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "a nurse is not an authorized provider: {body}");
    let garcia = api.db.scalar("SELECT id FROM users WHERE username = 'drgarcia'").await;
    let (status, _) = api
        .call("POST", "/api/encounters/", Some(json!({"pid": 2, "facility_id": 3, "provider_id": garcia})))
        .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "opening another provider's encounter needs encounters|notes_a"
    );
}

#[tokio::test]
async fn facilities_and_providers_come_from_openemr() {
    let api = Api::admin().await;
    let (status, facilities) = api.get("/api/openemr/facilities/").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        facilities.as_array().unwrap().len() as i64,
        api.db.scalar("SELECT COUNT(*) FROM facility").await
    );
    let (_, providers) = api.get("/api/openemr/providers/").await;
    let expected = api
        .db
        .scalar("SELECT COUNT(*) FROM users WHERE authorized = 1 AND active = 1 AND username <> ''")
        .await;
    assert_eq!(providers.as_array().unwrap().len() as i64, expected);
    let garcia: &Value = providers.as_array().unwrap().iter().find(|p| p["username"] == "drgarcia").unwrap();
    assert!(garcia["specialty"].as_str().is_some_and(|s| !s.is_empty()));
    assert!(
        providers.as_array().unwrap().iter().all(|p| p["username"] != "drweber"),
        "inactive users are not offered"
    );
}

/// OpenEMR shows an encounter with a sensitivity only to holders of `sensitivities|<value>`.
#[tokio::test]
async fn high_sensitivity_encounters_need_sensitivities_high() {
    let api = Api::as_user(("drokafor", "Physician-Okafor-3")).await;
    let pid = shared_patient(&api).await;
    let (secret, visible_before) = {
        let (_, body) = api.get(&format!("/api/patients/{pid}/encounters/?page_size=100")).await;
        (body["items"][0]["encounter"].as_i64().unwrap(), body["total"].as_i64().unwrap())
    };
    sqlx::query("UPDATE form_encounter SET sensitivity = 'high' WHERE encounter = ?")
        .bind(secret)
        .execute(&api.db.pool)
        .await
        .unwrap();
    let (status, _) = api.get(&format!("/api/encounters/{secret}/")).await;
    assert_eq!(status, StatusCode::OK, "physicians hold sensitivities|high");

    sqlx::query("DELETE FROM gacl_aco_map WHERE section_value = 'sensitivities' AND value = 'high'")
        .execute(&api.db.pool)
        .await
        .unwrap();
    // Every test request builds a fresh app, so no cached permissions hide the ACL change.
    let (status, body) = api.get(&format!("/api/encounters/{secret}/")).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("sensitivities|high"));
    let (_, list) = api.get(&format!("/api/patients/{pid}/encounters/?page_size=100")).await;
    assert_eq!(list["total"].as_i64().unwrap(), visible_before - 1);
    assert!(list["items"].as_array().unwrap().iter().all(|e| e["encounter"] != secret));
}
