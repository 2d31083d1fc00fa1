//! Billing on OpenEMR's tables: fee-sheet charges compared with what `addBilling` writes, the
//! fee sheet's checksum, OpenEMR's coding and pricing permissions.

use poem::http::StatusCode;
use serde_json::{Value, json};

use crate::{
    chart::{FRONT, GARCIA, NURSE, PID, field_errors, row},
    patients::{Api, send},
    transcriptions::encounter_for,
};

const ACCOUNTANT: (&str, &str) = ("acctbrown", "Billing-Brown-7");

/// OpenEMR 8's `FeeSheet::visitChecksum`, run as OpenEMR runs it.
async fn openemr_checksum(api: &Api, pid: i64, encounter: i64) -> u32 {
    let sql = format!(
        "SELECT CAST((SELECT COALESCE(BIT_XOR(CRC32(CONCAT_WS(',', id, code, modifier, units, fee, authorized, \
         provider_id, ndc_info, justify, billed))), 0) FROM billing WHERE pid = {pid} AND encounter = {encounter} \
         AND activity = 1) ^ (SELECT COALESCE(BIT_XOR(CRC32(CONCAT_WS(',', sale_id, inventory_id, prescription_id, \
         quantity, fee, sale_date, billed))), 0) FROM drug_sales WHERE pid = {pid} AND encounter = {encounter}) ^ \
         (SELECT COALESCE(BIT_XOR(CRC32(CONCAT_WS(',', id, date, provider_id, supervisor_id, last_level_billed, \
         last_level_closed))), 0) FROM form_encounter WHERE pid = {pid} AND encounter = {encounter}) AS SIGNED)"
    );
    u32::try_from(api.db.scalar(&sql).await).unwrap()
}

async fn add(api: &Api, encounter: i64, body: Value) -> Value {
    let (status, out) = api.call("POST", &format!("/api/encounters/{encounter}/charges/"), Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{out}");
    out
}

/// A visit of drgarcia's with a diagnosis on it, ready for charges.
async fn coded_visit(api: &Api) -> i64 {
    let encounter = encounter_for(api, PID).await;
    add(api, encounter, json!({"code_type": "ICD10", "code": "e11.9"})).await;
    encounter
}

/// `BillingUtilities::addBilling($encounter, 'CPT4', '99213', $text, $pid, '1', $provider, '25',
/// 2, 100.00, '', 'ICD10|E11.9:', 0, '', 'standard')` as the fee sheet calls it for a physician.
#[tokio::test]
async fn a_charge_is_the_row_the_fee_sheet_writes_priced_at_the_patients_level() {
    let api = Api::as_user(GARCIA).await;
    let encounter = coded_visit(&api).await;
    let out = add(
        &api,
        encounter,
        json!({"code_type": "CPT4", "code": "99213", "modifiers": ["25"], "units": 2, "justify": ["E11.9"]}),
    )
    .await;
    assert_eq!(out["fee"], "100.00");
    assert_eq!(out["price"], "50.00");
    assert_eq!(out["status"], "open");
    let got = row(
        &api,
        &format!(
            "SELECT code_type, code, code_text, CAST(pid AS CHAR), CAST(provider_id AS CHAR), CAST(user AS CHAR), \
             groupname, CAST(authorized AS CHAR), CAST(billed AS CHAR), CAST(activity AS CHAR), modifier, \
             CAST(units AS CHAR), CAST(fee AS CHAR), justify, ndc_info, notecodes, pricelevel, revenue_code, \
             CAST(bill_process AS CHAR), CAST(payer_id AS CHAR) FROM billing WHERE id = {}",
            out["id"]
        ),
    )
    .await;
    let expected = [
        Some("CPT4"),
        Some("99213"),
        Some("Office visit, established patient, low complexity"),
        Some("9"),
        Some("2"),
        Some("2"),
        Some("Default"),
        Some("1"),
        Some("0"),
        Some("1"),
        Some("25"),
        Some("2"),
        Some("100.00"),
        Some("ICD10|E11.9:"),
        Some(""),
        Some(""),
        Some("standard"),
        Some(""),
        Some("0"),
        None,
    ];
    assert_eq!(got, expected.map(|v| v.map(str::to_string)));
    let diagnosis = row(
        &api,
        &format!(
            "SELECT code, code_text, CAST(fee AS CHAR), justify FROM billing \
             WHERE encounter = {encounter} AND code_type = 'ICD10'"
        ),
    )
    .await;
    assert_eq!(
        diagnosis,
        [Some("E11.9"), Some("Type 2 diabetes mellitus without complications"), Some("0.00"), Some("")]
            .map(|v| v.map(str::to_string))
    );
    sqlx::query("UPDATE patient_data SET pricelevel = 'discount' WHERE pid = ?")
        .bind(PID)
        .execute(&api.db.pool)
        .await
        .unwrap();
    let discounted =
        add(&api, encounter, json!({"code_type": "CPT4", "code": "99213", "justify": ["E11.9"]})).await;
    assert_eq!(
        (discounted["price"].as_str(), discounted["price_level"].as_str()),
        (Some("40.00"), Some("discount"))
    );
    let audits = api
        .db
        .scalar(&format!(
            "SELECT COUNT(*) FROM log WHERE patient_id = {PID} AND category = 'Billing' AND event = 'patient-record-insert'"
        ))
        .await;
    assert_eq!(audits, 3);
}

#[tokio::test]
async fn every_change_moves_openemrs_checksum_and_a_stale_if_match_writes_nothing() {
    let api = Api::as_user(GARCIA).await;
    let encounter = coded_visit(&api).await;
    let (status, sheet) = api.get(&format!("/api/encounters/{encounter}/charges/")).await;
    assert_eq!(status, StatusCode::OK);
    let read = openemr_checksum(&api, PID, encounter).await;
    assert_eq!(sheet["checksum"].as_u64(), Some(u64::from(read)), "the ETag is the fee sheet's own checksum");
    let tag = format!("\"{read}\"");
    let created = send(
        &api.db,
        &[],
        Some(&api.token),
        poem::http::Method::POST,
        &format!("/api/encounters/{encounter}/charges/"),
        Some(json!({"code_type": "CPT4", "code": "36415", "justify": ["E11.9"]})),
    )
    .await;
    assert_eq!(created.0, StatusCode::CREATED, "{}", created.1);
    let after = openemr_checksum(&api, PID, encounter).await;
    assert_ne!(after, read, "a fee sheet opened before this change refuses its save");
    let client = api.db.client();
    let stale = client
        .post(format!("/api/encounters/{encounter}/charges/"))
        .header("authorization", format!("Bearer {}", api.token))
        .header("if-match", tag)
        .body_json(&json!({"code_type": "CPT4", "code": "90471", "justify": ["E11.9"]}))
        .send()
        .await;
    assert_eq!(stale.0.status(), StatusCode::PRECONDITION_FAILED);
    assert_eq!(
        api.db
            .scalar(&format!("SELECT COUNT(*) FROM billing WHERE encounter = {encounter} AND code = '90471'"))
            .await,
        0
    );
    let fresh = client
        .post(format!("/api/encounters/{encounter}/charges/"))
        .header("authorization", format!("Bearer {}", api.token))
        .header("if-match", format!("\"{after}\""))
        .body_json(&json!({"code_type": "CPT4", "code": "90471", "justify": ["E11.9"]}))
        .send()
        .await;
    assert_eq!(fresh.0.status(), StatusCode::CREATED);
    let etag = fresh.0.headers().get("etag").unwrap().to_str().unwrap().to_string();
    assert_eq!(etag, format!("\"{}\"", openemr_checksum(&api, PID, encounter).await));
}

#[tokio::test]
async fn billed_lines_are_locked_and_a_deleted_line_stays_inactive() {
    let api = Api::as_user(GARCIA).await;
    // Fixture encounter 3 is drgarcia's, coded and billed.
    let billed = api.db.scalar("SELECT id FROM billing WHERE encounter = 3 AND code = '99213'").await;
    let (status, body) =
        api.call("PATCH", &format!("/api/charges/{billed}/"), Some(json!({"units": 3}))).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (status, _) = api.call("DELETE", &format!("/api/charges/{billed}/"), None).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let encounter = coded_visit(&api).await;
    let line =
        add(&api, encounter, json!({"code_type": "CPT4", "code": "99214", "justify": ["E11.9"]})).await;
    let id = line["id"].as_i64().unwrap();
    let (status, changed) =
        api.call("PATCH", &format!("/api/charges/{id}/"), Some(json!({"units": 2}))).await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(changed["fee"], "220.00");
    let (status, _) = api.call("DELETE", &format!("/api/charges/{id}/"), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(api.db.scalar(&format!("SELECT activity FROM billing WHERE id = {id}")).await, 0);
    let (_, sheet) = api.get(&format!("/api/encounters/{encounter}/charges/")).await;
    assert_eq!(sheet["items"].as_array().unwrap().len(), 1, "only the diagnosis is left");
    let (status, _) = api.call("PATCH", &format!("/api/charges/{id}/"), Some(json!({"units": 1}))).await;
    assert_eq!(status, StatusCode::CONFLICT);
}

#[tokio::test]
async fn bad_lines_name_every_field_and_write_nothing() {
    let api = Api::as_user(GARCIA).await;
    let encounter = coded_visit(&api).await;
    let (status, body) = api
        .call(
            "POST",
            &format!("/api/encounters/{encounter}/charges/"),
            Some(json!({"code_type": "CPT4", "code": "99999", "modifiers": ["255"], "units": 0,
                        "price": "10.005", "justify": ["I10"]})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let mut fields = field_errors(&body);
    fields.sort();
    assert_eq!(fields, ["code", "modifiers[0]", "price", "units"]);
    let (status, body) = api
        .call(
            "POST",
            &format!("/api/encounters/{encounter}/charges/"),
            Some(json!({"code_type": "CPT4", "code": "99213", "justify": ["I10"]})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(field_errors(&body), ["justify[0]"], "I10 is not a diagnosis on this visit");
    let (status, body) = api
        .call(
            "POST",
            &format!("/api/encounters/{encounter}/charges/"),
            Some(json!({"code_type": "LOINC", "code": "1"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(field_errors(&body), ["code_type"]);
    assert_eq!(
        api.db.scalar(&format!("SELECT COUNT(*) FROM billing WHERE encounter = {encounter}")).await,
        1
    );
}

#[tokio::test]
async fn coding_and_prices_follow_openemrs_acl() {
    let garcia = Api::as_user(GARCIA).await;
    let encounter = coded_visit(&garcia).await;
    let path = format!("/api/encounters/{encounter}/charges/");
    for user in [FRONT, NURSE] {
        let (token, _) = crate::auth::tokens(&garcia.db, user).await;
        let (status, _) = send(&garcia.db, &[], Some(&token), poem::http::Method::GET, &path, None).await;
        assert_eq!(
            status,
            StatusCode::FORBIDDEN,
            "{} codes neither their own nor others' visits here",
            user.0
        );
    }
    let (token, _) = crate::auth::tokens(&garcia.db, ACCOUNTANT).await;
    let body = json!({"code_type": "CPT4", "code": "99213", "price": "35.00", "justify": ["E11.9"]});
    let (status, out) =
        send(&garcia.db, &[], Some(&token), poem::http::Method::POST, &path, Some(body.clone())).await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "accounting codes any visit (coding_a) and prices (acct|bill): {out}"
    );
    assert_eq!(out["fee"], "35.00");
    // Without acct|disc (OpenEMR's pricesAuthorized), a physician charges the fee schedule only.
    sqlx::query("DELETE FROM gacl_aco_map WHERE acl_id = 14 AND section_value = 'acct'")
        .execute(&garcia.db.pool)
        .await
        .unwrap();
    let (status, denied) = garcia.call("POST", &path, Some(body)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{denied}");
    assert!(denied["detail"].as_str().unwrap().contains("acct|disc"), "{denied}");
    add(&garcia, encounter, json!({"code_type": "CPT4", "code": "99213", "justify": ["E11.9"]})).await;
}
