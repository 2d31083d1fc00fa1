//! Facilities created and changed as OpenEMR's facility editor does.

use poem::http::StatusCode;
use serde_json::{Value, json};

use crate::patients::Api;

const GARCIA: (&str, &str) = ("drgarcia", "Physician-Garcia-2");
const MILLER: (&str, &str) = ("fdmiller", "Front-Miller-5");

fn harbour() -> Value {
    json!({"name": "Harbour Street Clinic", "phone": "(217) 555-0170", "street": "8 Harbour Street",
        "city": "Springfield", "state": "IL", "postal_code": "62702", "npi": "1234567893", "tax_id": "36-1234567",
        "tax_id_type": "EI", "pos_code": 11, "billing_location": false, "color": "#1a7f37"})
}

#[tokio::test]
async fn a_created_facility_is_the_row_openemrs_editor_writes_with_a_registered_uuid() {
    let api = Api::admin().await;
    let (status, created) = api.call("POST", "/api/openemr/facilities/", Some(harbour())).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_i64().unwrap();
    let row: (String, String, String, i8, i8, i8, i8, String) = sqlx::query_as(
        "SELECT name, facility_npi, federal_ein, pos_code, billing_location, service_location, \
         primary_business_entity, color FROM facility WHERE id = ?",
    )
    .bind(id)
    .fetch_one(&api.db.pool)
    .await
    .unwrap();
    assert_eq!(
        row,
        (
            "Harbour Street Clinic".into(),
            "1234567893".into(),
            "36-1234567".into(),
            11,
            0,
            1,
            0,
            "#1a7f37".into()
        )
    );
    let uuid = created["uuid"].as_str().unwrap();
    let registered = api
        .db
        .scalar(&format!(
            "SELECT COUNT(*) FROM uuid_registry r JOIN facility f ON f.uuid = r.uuid \
             WHERE r.table_name = 'facility' AND r.table_id = 'id' AND f.id = {id}"
        ))
        .await;
    assert_eq!(registered, 1, "uuid {uuid} is in uuid_registry as OpenEMR's UuidRegistry writes it");
    let (status, org) = api.get(&format!("/fhir/r4/Organization/{uuid}")).await;
    assert_eq!((status, org["name"].as_str()), (StatusCode::OK, Some("Harbour Street Clinic")), "{org}");
    let audited = api
        .db
        .scalar(&format!(
            "SELECT COUNT(*) FROM log WHERE event = 'security-administration-insert' AND category = 'Security' \
             AND user = 'admin' AND FROM_BASE64(comments) LIKE '%facility {id} added%'"
        ))
        .await;
    assert_eq!(audited, 1);
    let (_, listed) = api.get("/api/openemr/facilities/").await;
    assert!(listed.as_array().unwrap().iter().any(|f| f["id"] == id), "{listed}");
}

#[tokio::test]
async fn a_rename_reaches_the_users_who_work_there_and_other_fields_stay() {
    let api = Api::admin().await;
    let (status, changed) = api
        .call("PATCH", "/api/openemr/facilities/4/", Some(json!({"name": "Oak Park Family Clinic"})))
        .await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(
        (changed["name"].as_str(), changed["city"].as_str()),
        (Some("Oak Park Family Clinic"), Some("Chatham"))
    );
    let copies = api
        .db
        .scalar("SELECT COUNT(*) FROM users WHERE facility_id = 4 AND facility = 'Oak Park Family Clinic'")
        .await;
    let users = api.db.scalar("SELECT COUNT(*) FROM users WHERE facility_id = 4").await;
    assert!(users > 0);
    assert_eq!(copies, users, "every user at facility 4 carries the new name");
    let (status, retired) =
        api.call("PATCH", "/api/openemr/facilities/4/", Some(json!({"active": false}))).await;
    assert_eq!((status, &retired["active"]), (StatusCode::OK, &json!(false)));
    assert_eq!(api.db.scalar("SELECT inactive FROM facility WHERE id = 4").await, 1);
}

#[tokio::test]
async fn a_replacement_saves_the_whole_facility_as_the_editor_does() {
    let api = Api::admin().await;
    let (status, body) =
        api.call("PUT", "/api/openemr/facilities/4/", Some(json!({"phone": "555-0100"}))).await;
    assert_eq!((status, &body["errors"][0]["field"]), (StatusCode::UNPROCESSABLE_ENTITY, &json!("name")));
    let whole = json!({"name": "Oak Park Family Clinic", "city": "Chatham", "pos_code": 22, "billing_location": true});
    let (status, replaced) = api.call("PUT", "/api/openemr/facilities/4/", Some(whole)).await;
    assert_eq!(status, StatusCode::OK, "{replaced}");
    let row: (String, String, String, i8, i8, i8, i8) = sqlx::query_as(
        "SELECT name, city, COALESCE(phone, ''), pos_code, billing_location, service_location, inactive          FROM facility WHERE id = 4",
    )
    .fetch_one(&api.db.pool)
    .await
    .unwrap();
    assert_eq!(row, ("Oak Park Family Clinic".into(), "Chatham".into(), String::new(), 22, 1, 0, 0));
    let copies = api
        .db
        .scalar("SELECT COUNT(*) FROM users WHERE facility_id = 4 AND facility <> 'Oak Park Family Clinic'")
        .await;
    assert_eq!(copies, 0, "the new name reaches the users who work there");
    let (status, _) = api.call("PUT", "/api/openemr/facilities/999/", Some(json!({"name": "Nowhere"}))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn only_administrators_of_the_practice_change_facilities_and_refusals_are_audited() {
    let api = Api::as_user(MILLER).await;
    let (status, body) = api.call("POST", "/api/openemr/facilities/", Some(harbour())).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, _) = api.call("PATCH", "/api/openemr/facilities/3/", Some(json!({"name": "Mine"}))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        api.db.scalar("SELECT COUNT(*) FROM facility WHERE name IN ('Harbour Street Clinic', 'Mine')").await,
        0
    );
    let denied = api
        .db
        .scalar("SELECT COUNT(*) FROM log WHERE user = 'fdmiller' AND success = 0 AND event = 'security-administration-select'")
        .await;
    assert_eq!(denied, 2);
    let (status, one) = api.get("/api/openemr/facilities/3/").await;
    assert_eq!(
        (status, one["name"].as_str()),
        (StatusCode::OK, Some("Riverside Family Health")),
        "reading is for all"
    );
    let garcia = Api::as_user(GARCIA).await;
    let (status, _) =
        garcia.call("PATCH", "/api/openemr/facilities/3/", Some(json!({"color": "#000000"}))).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "a physician holds neither admin|super nor admin|practice");
}

#[tokio::test]
async fn bad_fields_are_named_and_nothing_is_written() {
    let api = Api::admin().await;
    let before = api.db.scalar("SELECT COUNT(*) FROM facility").await;
    let bad = json!({"npi": "1234567890", "postal_code": "123456789012", "pos_code": 100, "color": "red",
        "email": "nobody", "state": "x".repeat(51)});
    let (status, body) = api.call("POST", "/api/openemr/facilities/", Some(bad)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let mut fields: Vec<&str> =
        body["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    fields.sort_unstable();
    assert_eq!(fields, ["color", "email", "name", "npi", "pos_code", "postal_code", "state"]);
    let (status, body) = api.call("PATCH", "/api/openemr/facilities/3/", Some(json!({"name": "X"}))).await;
    assert_eq!((status, &body["errors"][0]["field"]), (StatusCode::UNPROCESSABLE_ENTITY, &json!("name")));
    let (status, _) =
        api.call("PATCH", "/api/openemr/facilities/999/", Some(json!({"name": "Nowhere"}))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(api.db.scalar("SELECT COUNT(*) FROM facility").await, before);
    assert_eq!(api.db.scalar_text("SELECT name FROM facility WHERE id = 3").await, "Riverside Family Health");
}

#[tokio::test]
async fn there_is_never_a_second_primary_business_entity_even_under_racing_requests() {
    let api = Api::admin().await;
    let (status, body) =
        api.call("PATCH", "/api/openemr/facilities/4/", Some(json!({"primary_business_entity": true}))).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("facility 3"), "{body}");
    let (status, _) = api
        .call("PATCH", "/api/openemr/facilities/3/", Some(json!({"primary_business_entity": false})))
        .await;
    assert_eq!(status, StatusCode::OK);
    let primary = Some(json!({"primary_business_entity": true}));
    let (a, b) = tokio::join!(
        api.call("PATCH", "/api/openemr/facilities/4/", primary.clone()),
        api.call("PATCH", "/api/openemr/facilities/5/", primary.clone())
    );
    let mut statuses = [a.0, b.0];
    statuses.sort();
    assert_eq!(statuses, [StatusCode::OK, StatusCode::CONFLICT], "{} / {}", a.1, b.1);
    assert_eq!(api.db.scalar("SELECT COUNT(*) FROM facility WHERE primary_business_entity = 1").await, 1);
}
