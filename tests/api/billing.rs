//! Billing on OpenEMR's tables: fee-sheet charges compared with what `addBilling` writes, the
//! fee sheet's checksum, OpenEMR's coding and pricing permissions.

use poem::http::StatusCode;
use serde_json::{Value, json};

use crate::{
    chart::{FRONT, GARCIA, NURSE, PID, fetched_pdf_text, field_errors, row},
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
            Some(json!({"code_type": "CPT4", "code": "99213", "justify": ["E11.9", "e11.9"]})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(field_errors(&body), ["justify[1]"], "a diagnosis is named once");
    let many: Vec<&str> = std::iter::repeat_n("E11.9", 30).collect();
    let (status, body) = api
        .call(
            "POST",
            &format!("/api/encounters/{encounter}/charges/"),
            Some(json!({"code_type": "CPT4", "code": "99213", "justify": many})),
        )
        .await;
    assert_eq!(
        (status, field_errors(&body)),
        (StatusCode::UNPROCESSABLE_ENTITY, vec!["justify".to_string()])
    );
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

/// A visit of drgarcia's coded with 99213 (50.00) and 36415 (12.50), and an accountant's token.
async fn billed_visit(garcia: &Api) -> (i64, String) {
    let encounter = coded_visit(garcia).await;
    for code in ["99213", "36415"] {
        add(garcia, encounter, json!({"code_type": "CPT4", "code": code, "justify": ["E11.9"]})).await;
    }
    let (token, _) = crate::auth::tokens(&garcia.db, ACCOUNTANT).await;
    (encounter, token)
}

async fn as_token(
    api: &Api,
    token: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let method = poem::http::Method::from_bytes(method.as_bytes()).unwrap();
    send(&api.db, &[], Some(token), method, path, body).await
}

async fn pay(api: &Api, token: &str, body: Value) -> Value {
    let (status, out) = as_token(api, token, "POST", "/api/payments/", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{out}");
    out
}

/// front_payment.php, "invoice balance" of 100.00 in cash on a visit dated today.
#[tokio::test]
async fn a_payment_is_posted_and_spread_as_the_front_desk_posts_it() {
    let garcia = Api::as_user(GARCIA).await;
    let (encounter, token) = billed_visit(&garcia).await;
    let out = pay(
        &garcia,
        &token,
        json!({"pid": PID, "encounter": encounter, "method": "cash", "amount": "100.00"}),
    )
    .await;
    assert_eq!((out["kind"].as_str(), out["status"].as_str()), (Some("invoice_balance"), Some("posted")));
    let id = out["id"].as_i64().unwrap();
    let session = row(
        &garcia,
        &format!(
            "SELECT CAST(payer_id AS CHAR), CAST(user_id AS CHAR), CAST(closed AS CHAR), reference, \
             CAST(pay_total AS CHAR), CAST(global_amount AS CHAR), payment_type, adjustment_code, \
             CAST(patient_id AS CHAR), payment_method, CAST(check_date = CURDATE() AS CHAR), \
             CAST(post_to_date = CURDATE() AS CHAR), description FROM ar_session WHERE session_id = {id}"
        ),
    )
    .await;
    let patient = row(
        &garcia,
        &format!("SELECT CONCAT(fname, ' ', lname, ' ', mname) FROM patient_data WHERE pid = {PID}"),
    )
    .await;
    let expected = ["0", "7", "0", "", "100.00", "0.00", "patient", "patient_payment", "9", "cash", "1", "1"];
    assert_eq!(session[..12], expected.map(|v| Some(v.to_string())));
    assert_eq!(session[12], patient[0], "described by the patient's name as the front desk does");
    // Fee lines in code order: 36415 owes 12.50, 99213 owes 50.00 and takes the excess.
    let lines: Vec<(i64, String, String, String, String)> = sqlx::query_as(
        "SELECT CAST(sequence_no AS SIGNED), code, CAST(pay_amount AS CHAR), account_code, follow_up \
         FROM ar_activity WHERE session_id = ? ORDER BY sequence_no",
    )
    .bind(id)
    .fetch_all(&garcia.db.pool)
    .await
    .unwrap();
    let strings = |v: &[(i64, &str, &str, &str, &str)]| {
        v.iter()
            .map(|(a, b, c, d, e)| (*a, b.to_string(), c.to_string(), d.to_string(), e.to_string()))
            .collect::<Vec<_>>()
    };
    assert_eq!(lines, strings(&[(1, "36415", "12.50", "PP", ""), (2, "99213", "87.50", "PP", "")]));
    let receipt = row(
        &garcia,
        &format!("SELECT user, method, CAST(amount1 AS CHAR), CAST(amount2 AS CHAR) FROM payments WHERE encounter = {encounter}"),
    )
    .await;
    assert_eq!(
        receipt,
        ["acctbrown", "cash", "100.00", "0.00"].map(|v| Some(v.to_string())),
        "today's visit is amount1"
    );
    let (status, invoice) =
        as_token(&garcia, &token, "GET", &format!("/api/invoices/{PID}-{encounter}/"), None).await;
    assert_eq!(status, StatusCode::OK, "{invoice}");
    assert_eq!(invoice["totals"]["balance"], "-37.50", "the overpayment is a credit");
}

/// The per-code balances OpenEMR's `InvoiceSummary` reads, aggregated in SQL: charges keyed by
/// code[:modifier] (or PROD:drug), payments and adjustments by the same key (Copay / Claim level
/// when they name no code).
async fn invoice_summary_sql(api: &Api, pid: i64, encounter: i64) -> Vec<(String, String)> {
    let key = "CONCAT(CASE WHEN code = '' THEN IF(account_code = 'PCP', 'Copay', 'Claim level') ELSE code END, \
               IF(modifier = '', '', CONCAT(':', modifier)))";
    let sql = format!(
        "SELECT k, CAST(SUM(amount) AS CHAR) FROM ( \
           SELECT CONCAT(IF(COALESCE(code, '') = '', 'Unknown', code), IF(COALESCE(modifier, '') = '', '', \
             CONCAT(':', modifier))) AS k, fee AS amount FROM billing \
             WHERE pid = {pid} AND encounter = {encounter} AND activity = 1 AND fee != 0.00 \
           UNION ALL SELECT CONCAT('PROD:', drug_id), fee FROM drug_sales \
             WHERE pid = {pid} AND encounter = {encounter} AND fee != 0 \
           UNION ALL SELECT {key}, -pay_amount - adj_amount FROM ar_activity \
             WHERE deleted IS NULL AND pid = {pid} AND encounter = {encounter} \
         ) summed GROUP BY k ORDER BY k"
    );
    sqlx::query_as(sqlx::AssertSqlSafe(sql)).fetch_all(&api.db.pool).await.unwrap()
}

#[tokio::test]
async fn invoice_balances_equal_openemrs_invoice_summary_to_the_cent() {
    let garcia = Api::as_user(GARCIA).await;
    let (encounter, token) = billed_visit(&garcia).await;
    add(
        &garcia,
        encounter,
        json!({"code_type": "CPT4", "code": "99213", "modifiers": ["25"], "justify": ["E11.9"]}),
    )
    .await;
    pay(
        &garcia,
        &token,
        json!({"pid": PID, "encounter": encounter, "kind": "copay", "method": "cash", "amount": 10}),
    )
    .await;
    pay(
        &garcia,
        &token,
        json!({"pid": PID, "encounter": encounter, "method": "check_payment", "amount": "33.33",
        "reference": "1042"}),
    )
    .await;
    // What OpenEMR's own screens add beside the sidecar: a product sale, an adjustment, a claim-level payment.
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "INSERT INTO drug_sales (drug_id, inventory_id, pid, encounter, sale_date, quantity, fee) \
           VALUES (7, 1, {PID}, {encounter}, CURDATE(), 1, 7.25); \
         INSERT INTO ar_activity (pid, encounter, sequence_no, code_type, code, modifier, payer_type, post_time, \
           post_user, session_id, memo, pay_amount, adj_amount, modified_time, follow_up, account_code) \
           VALUES ({PID}, {encounter}, 90, 'CPT4', '36415', '', 0, NOW(), 7, 0, 'Discount', 0, 2.05, NOW(), '', 'PA'), \
                  ({PID}, {encounter}, 91, '', '', '', 1, NOW(), 7, 0, '', 4.44, 0, NOW(), '', 'IPP');"
    )))
    .execute(&garcia.db.pool)
    .await
    .unwrap();
    let (status, invoice) =
        as_token(&garcia, &token, "GET", &format!("/api/invoices/{PID}-{encounter}/"), None).await;
    assert_eq!(status, StatusCode::OK, "{invoice}");
    let mut ours: Vec<(String, String)> = invoice["codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["code"].as_str().unwrap().to_string(), c["balance"].as_str().unwrap().to_string()))
        .collect();
    ours.sort();
    let openemr = invoice_summary_sql(&garcia, PID, encounter).await;
    assert_eq!(ours, openemr);
    let total: rust_decimal::Decimal =
        openemr.iter().map(|(_, b)| b.parse::<rust_decimal::Decimal>().unwrap()).sum();
    assert_eq!(invoice["totals"]["balance"].as_str().unwrap(), total.to_string());
    assert_eq!(invoice["status"], "open");
    let (status, list) =
        as_token(&garcia, &token, "GET", &format!("/api/invoices/?patient={PID}&status=open"), None).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let listed = list["items"].as_array().unwrap().iter().find(|i| i["encounter"] == encounter).unwrap();
    assert_eq!(listed["balance"], invoice["totals"]["balance"], "the list adds up the same");
    let (_, paid) =
        as_token(&garcia, &token, "GET", &format!("/api/invoices/?patient={PID}&status=paid"), None).await;
    assert!(paid["items"].as_array().unwrap().iter().all(|i| i["encounter"] != encounter));
    let printed = fetched_pdf_text(&garcia.db, &token, &format!("/api/invoices/{PID}-{encounter}/pdf")).await;
    let balance = invoice["totals"]["balance"].as_str().unwrap();
    for expected in [
        format!("Invoice {PID}.{encounter}"),
        "99213:25".into(),
        "check_payment 1042".into(),
        format!("Balance due: {balance}"),
    ] {
        assert!(printed.contains(&expected), "{expected} in {printed}");
    }
}

#[tokio::test]
async fn twenty_concurrent_payments_on_one_visit_lose_no_money() {
    let garcia = Api::as_user(GARCIA).await;
    let (encounter, token) = billed_visit(&garcia).await;
    let body = json!({"pid": PID, "encounter": encounter, "method": "cash", "amount": "5.00"});
    let results = futures_util::future::join_all(
        (0..20).map(|_| Box::pin(as_token(&garcia, &token, "POST", "/api/payments/", Some(body.clone())))),
    )
    .await;
    for (status, out) in &results {
        assert_eq!(*status, StatusCode::CREATED, "{out}");
    }
    let db = &garcia.db;
    let q = |sql: &str| {
        let sql = sql.replace("{e}", &encounter.to_string());
        async move { db.scalar(&sql).await }
    };
    assert_eq!(q("SELECT COUNT(*) FROM ar_session WHERE patient_id = 9 AND session_id IN (SELECT session_id FROM ar_activity WHERE encounter = {e})").await, 20);
    assert_eq!(
        q("SELECT COUNT(DISTINCT sequence_no) FROM ar_activity WHERE encounter = {e}").await,
        q("SELECT COUNT(*) FROM ar_activity WHERE encounter = {e}").await
    );
    assert_eq!(
        q("SELECT CAST(SUM(pay_amount) * 100 AS SIGNED) FROM ar_activity WHERE encounter = {e}").await,
        10000
    );
    let (_, invoice) =
        as_token(&garcia, &token, "GET", &format!("/api/invoices/{PID}-{encounter}/"), None).await;
    assert_eq!(invoice["totals"]["balance"], "-37.50");
}

#[tokio::test]
async fn an_idempotency_key_posts_once_and_refuses_a_different_payment() {
    let garcia = Api::as_user(GARCIA).await;
    let (encounter, token) = billed_visit(&garcia).await;
    let client = garcia.db.client();
    let post = |body: Value| {
        client
            .post("/api/payments/")
            .header("authorization", format!("Bearer {token}"))
            .header("idempotency-key", "front-desk-7f3a")
            .body_json(&body)
            .send()
    };
    let body = json!({"pid": PID, "encounter": encounter, "method": "credit_card", "amount": "20.00"});
    let first = post(body.clone()).await;
    assert_eq!(first.0.status(), StatusCode::CREATED);
    let first: Value = serde_json::from_str(&first.0.into_body().into_string().await.unwrap()).unwrap();
    let again = post(body).await;
    assert_eq!(again.0.status(), StatusCode::OK);
    let again: Value = serde_json::from_str(&again.0.into_body().into_string().await.unwrap()).unwrap();
    assert_eq!(again["id"], first["id"]);
    let other =
        post(json!({"pid": PID, "encounter": encounter, "method": "credit_card", "amount": "21.00"})).await;
    assert_eq!(other.0.status(), StatusCode::CONFLICT);
    assert_eq!(garcia.db.scalar("SELECT COUNT(*) FROM ar_session").await, 1);
}

#[tokio::test]
async fn a_void_reopens_the_balance_once_and_keeps_the_lines() {
    let garcia = Api::as_user(GARCIA).await;
    let (encounter, token) = billed_visit(&garcia).await;
    let out = pay(
        &garcia,
        &token,
        json!({"pid": PID, "encounter": encounter, "method": "cash", "amount": "62.50"}),
    )
    .await;
    let id = out["id"].as_i64().unwrap();
    let invoice = format!("/api/invoices/{PID}-{encounter}/");
    assert_eq!(as_token(&garcia, &token, "GET", &invoice, None).await.1["status"], "paid");
    let void = format!("/api/payments/{id}/void/");
    let (status, voided) =
        as_token(&garcia, &token, "POST", &void, Some(json!({"reason": "Card declined"}))).await;
    assert_eq!(status, StatusCode::OK, "{voided}");
    assert_eq!(
        (voided["status"].as_str(), voided["void_reason"].as_str()),
        (Some("voided"), Some("Card declined"))
    );
    let (_, reopened) = as_token(&garcia, &token, "GET", &invoice, None).await;
    assert_eq!(
        (reopened["status"].as_str(), reopened["totals"]["balance"].as_str()),
        (Some("open"), Some("62.50"))
    );
    let db = &garcia.db;
    let q = |sql: String| async move { db.scalar(&sql).await };
    assert_eq!(
        q(format!("SELECT COUNT(*) FROM ar_activity WHERE session_id = {id} AND deleted IS NOT NULL")).await,
        2
    );
    assert_eq!(q(format!("SELECT COUNT(*) FROM payments WHERE encounter = {encounter}")).await, 0);
    let (status, _) = as_token(&garcia, &token, "POST", &void, Some(json!({}))).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let audits = q(format!(
        "SELECT COUNT(*) FROM log WHERE category = 'Billing' AND FROM_BASE64(comments) LIKE '%voided payment {id}: Card declined%'"
    ))
    .await;
    assert_eq!(audits, 1);
}

/// A refund takes back from the payment's lines, last first, as negative `PP` lines with memo
/// `Pt refund`; the invoice owes again by exactly that, per code, as `InvoiceSummary` sums it.
#[tokio::test]
async fn a_refund_posts_negative_lines_that_reopen_the_invoice_and_never_exceeds_the_payment() {
    let garcia = Api::as_user(GARCIA).await;
    let (encounter, token) = billed_visit(&garcia).await;
    let paid = pay(
        &garcia,
        &token,
        json!({"pid": PID, "encounter": encounter, "method": "cash", "amount": "62.50"}),
    )
    .await;
    let id = paid["id"].as_i64().unwrap();
    let refund = format!("/api/payments/{id}/refund/");
    let (status, out) = as_token(&garcia, &token, "POST", &refund, Some(json!({"amount": "55.00"}))).await;
    assert_eq!(status, StatusCode::CREATED, "{out}");
    assert_eq!((out["amount"].as_str(), out["refund_of"].as_i64()), (Some("-55.00"), Some(id)));
    let refund_id = out["id"].as_i64().unwrap();
    let lines: Vec<(String, String, String, String)> = sqlx::query_as(
        "SELECT code, CAST(pay_amount AS CHAR), account_code, memo FROM ar_activity WHERE session_id = ? \
         ORDER BY sequence_no",
    )
    .bind(refund_id)
    .fetch_all(&garcia.db.pool)
    .await
    .unwrap();
    let expected = [("99213", "-50.00"), ("36415", "-5.00")]
        .map(|(c, a)| (c.to_string(), a.to_string(), "PP".to_string(), "Pt refund".to_string()));
    assert_eq!(lines, expected);
    let (_, invoice) =
        as_token(&garcia, &token, "GET", &format!("/api/invoices/{PID}-{encounter}/"), None).await;
    assert_eq!(invoice["totals"]["balance"], "55.00", "{invoice}");
    let summary = invoice_summary_sql(&garcia, PID, encounter).await;
    assert_eq!(summary, [("36415".to_string(), "5.00".to_string()), ("99213".into(), "50.00".into())]);
    let (status, _) = as_token(&garcia, &token, "POST", &refund, Some(json!({"amount": "7.51"}))).await;
    assert_eq!(status, StatusCode::CONFLICT, "only 7.50 is left");
    let (status, _) =
        as_token(&garcia, &token, "POST", &format!("/api/payments/{refund_id}/refund/"), Some(json!({})))
            .await;
    assert_eq!(status, StatusCode::CONFLICT, "a refund is not refunded");
    let (status, _) =
        as_token(&garcia, &token, "POST", &format!("/api/payments/{id}/void/"), Some(json!({}))).await;
    assert_eq!(status, StatusCode::CONFLICT, "a refunded payment is not voided under its refund");
    let (status, rest) = as_token(&garcia, &token, "POST", &refund, Some(json!({}))).await;
    assert_eq!(
        (status, rest["amount"].as_str()),
        (StatusCode::CREATED, Some("-7.50")),
        "the rest by default"
    );
    let (_, original) = as_token(&garcia, &token, "GET", &format!("/api/payments/{id}/"), None).await;
    assert_eq!(original["refunded"], "62.50");
    let (status, _) = as_token(&garcia, &garcia.token, "POST", &refund, Some(json!({"amount": "1"}))).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "refunds need acct|bill");
}

#[tokio::test]
async fn payments_need_acct_bill_and_name_every_bad_field() {
    let garcia = Api::as_user(GARCIA).await;
    let (encounter, token) = billed_visit(&garcia).await;
    let body = json!({"pid": PID, "encounter": encounter, "method": "cash", "amount": "5.00"});
    for user in [FRONT, NURSE] {
        let (other, _) = crate::auth::tokens(&garcia.db, user).await;
        let (status, _) = as_token(&garcia, &other, "POST", "/api/payments/", Some(body.clone())).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{} may not take payments", user.0);
        let (status, _) =
            as_token(&garcia, &other, "GET", &format!("/api/invoices/{PID}-{encounter}/"), None).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }
    let bad = json!({"pid": PID, "encounter": encounter, "kind": "pre_payment", "method": "check_payment",
                     "amount": "0.001"});
    let (status, out) = as_token(&garcia, &token, "POST", "/api/payments/", Some(bad)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{out}");
    let mut fields = field_errors(&out);
    fields.sort();
    assert_eq!(fields, ["amount", "encounter", "reference"]);
    let (status, out) = as_token(
        &garcia,
        &token,
        "POST",
        "/api/payments/",
        Some(json!({"pid": PID, "encounter": 3, "method": "barter", "amount": 5})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let mut fields = field_errors(&out);
    fields.sort();
    assert_eq!(fields, ["encounter", "method"], "encounter 3 is another patient's");
    assert_eq!(garcia.db.scalar("SELECT COUNT(*) FROM ar_session").await, 0);
    let pre = pay(&garcia, &token, json!({"pid": PID, "method": "cash", "amount": "40.00"})).await;
    assert_eq!((pre["kind"].as_str(), pre["lines"].as_array().map(Vec::len)), (Some("pre_payment"), Some(0)));
}

#[tokio::test]
async fn administrators_set_visit_prices_and_a_returning_patient_pays_the_returning_price() {
    let admin = Api::admin().await;
    let prices = json!({"rules": [
        {"patient_kind": "new", "amount": "80.00"},
        {"patient_kind": "returning", "amount": 50},
        {"category_id": 5, "patient_kind": "returning", "amount": "65.00"}
    ]});
    let (status, set) = admin.call("PUT", "/api/billing/prices/", Some(prices.clone())).await;
    assert_eq!(status, StatusCode::OK, "{set}");
    assert_eq!(set["rules"].as_array().unwrap().len(), 3);
    let (token, _) = crate::auth::tokens(&admin.db, ACCOUNTANT).await;
    let (status, _) = as_token(&admin, &token, "PUT", "/api/billing/prices/", Some(prices)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "accounting reads prices but only administrators set them");
    let (status, read) = as_token(&admin, &token, "GET", "/api/billing/prices/", None).await;
    assert_eq!((status, read["rules"][0]["amount"].as_str()), (StatusCode::OK, Some("80.00")));
    let bad = json!({"rules": [{"patient_kind": "vip", "amount": 1}, {"category_id": 99999, "patient_kind": "new",
        "amount": "1.001"}, {"category_id": 5, "patient_kind": "returning", "amount": 1},
        {"category_id": 5, "patient_kind": "returning", "amount": 2}]});
    let (status, out) = admin.call("PUT", "/api/billing/prices/", Some(bad)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{out}");
    let mut fields = field_errors(&out);
    fields.sort();
    assert_eq!(fields, ["rules[0].patient_kind", "rules[1].amount", "rules[1].category_id", "rules[3]"]);
    assert_eq!(
        admin.db.scalar("SELECT COUNT(*) FROM mmt_visit_prices").await,
        3,
        "a refused list changes nothing"
    );

    let (status, patient) = admin
        .call(
            "POST",
            "/api/patients/",
            Some(json!({"first_name": "Nova", "last_name": "Quinn", "dob": "1990-04-02",
            "sex": "Female"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{patient}");
    let pid = patient["pid"].as_i64().unwrap();
    let admin = &admin;
    let quote = |category: i64| async move {
        admin.get(&format!("/api/billing/prices/quote/?pid={pid}&category_id={category}")).await
    };
    let (status, first) = quote(5).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!((first["patient_kind"].as_str(), first["amount"].as_str()), (Some("new"), Some("80.00")));
    // A visit missed last week makes the patient a returning one.
    sqlx::query(
        "INSERT INTO openemr_postcalendar_events (pc_catid, pc_aid, pc_pid, pc_title, pc_eventDate, pc_startTime, \
         pc_endTime, pc_duration, pc_apptstatus, pc_recurrtype, pc_recurrspec, pc_location, pc_facility, \
         pc_billing_location, pc_multiple) VALUES (5, '2', ?, 'Office Visit', CURDATE() - INTERVAL 7 DAY, \
         '10:00:00', '10:15:00', 900, '?', 0, '', '', 3, 3, 0)",
    )
    .bind(pid.to_string())
    .execute(&admin.db.pool)
    .await
    .unwrap();
    let (_, returning) = quote(5).await;
    assert_eq!(
        (returning["patient_kind"].as_str(), returning["amount"].as_str()),
        (Some("returning"), Some("65.00"))
    );
    assert_eq!(returning["rule_category_id"], 5);
    let (_, elsewhere) = quote(10).await;
    assert_eq!(elsewhere["amount"], "50.00", "the practice-wide returning price");
    let quotes = format!(
        "SELECT COUNT(*) FROM log WHERE patient_id = {pid} AND category = 'Billing' AND event = 'patient-record-select'"
    );
    assert_eq!(admin.db.scalar(&quotes).await, 3, "each quote reads the chart and is audited");
}
