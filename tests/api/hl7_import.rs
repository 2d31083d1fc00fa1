//! HL7 v2 in: ORU results into the procedure tables, MDM into documents and the inbox, ADT into
//! patient_data; acknowledged, kept sealed, deduplicated, and queued when the patient is unclear.

use poem::http::StatusCode;
use serde_json::{Value, json};

use crate::{documents::Docs, helpers::TestDb, patients::Api};

const GARCIA: (&str, &str) = ("drgarcia", "Physician-Garcia-2");
const FRONT: (&str, &str) = ("fdoconnor", "Front-OConnor-6");

/// José Muñoz (pid 1 of the fixtures), with the placer number `{placer}`.
const ORU: &str = "MSH|^~\\&|LAB|ACME LAB|MMT|CLINIC|20261201101500-0500||ORU^R01^ORU_R01|{control}|P|2.5.1\r\
PID|1||EXT-1^^^^MR||Muñoz^José^J||19821203|M\r\
ORC|RE|{placer}|F-77\r\
OBR|1|{placer}|F-77|24323-8^Comprehensive metabolic panel^LN|||{collected}-0500|||||||||1345674224^García^Elena||||||20261201101000-0500|||F\r\
NTE|1||Fasting\r\
OBX|1|NM|2823-3^Potassium^LN||5.9|mmol/L|3.5-5.1|H|||F\r\
OBX|2|NM|2951-2^Sodium^LN||139|mmol/L|135-145|N|||F\r\
OBX|3|TX|8251-1^Comment^LN||Hemolysed\\.br\\Recollect advised||||||F";

fn oru(control: &str, placer: &str, collected: &str) -> String {
    ORU.replace("{control}", control).replace("{placer}", placer).replace("{collected}", collected)
}

async fn send(api: &Api, body: &str) -> (StatusCode, String) {
    send_with(&api.db, &api.token, &[], body).await
}

async fn send_with(db: &TestDb, token: &str, env: &[(&str, &str)], body: &str) -> (StatusCode, String) {
    let resp = db
        .client_with(env)
        .post("/api/hl7/")
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/hl7-v2")
        .body(body.to_string())
        .send()
        .await;
    let status = resp.0.status();
    (status, resp.0.into_body().into_string().await.unwrap())
}

/// MSA-1 and MSA-3 of an ACK, and MSA-2 (the control id it answers).
fn msa(ack: &str) -> (String, String, String) {
    let parsed = hl7_parser::Message::parse(ack).unwrap_or_else(|e| panic!("not an ACK ({e}): {ack}"));
    let field = |n: usize| {
        parsed
            .segment("MSA")
            .and_then(|s| s.field(n))
            .map(|f| parsed.separators.decode(f.raw_value()).to_string())
    };
    (field(1).unwrap_or_default(), field(3).unwrap_or_default(), field(2).unwrap_or_default())
}

async fn placed_order(db: &TestDb, pid: i64) -> i64 {
    let done = sqlx::query(
        "INSERT INTO procedure_order (provider_id, patient_id, encounter_id, date_ordered, order_status) \
         VALUES (2, ?, 0, NOW(), 'pending')",
    )
    .bind(pid)
    .execute(&db.pool)
    .await
    .unwrap();
    let id = done.last_insert_id() as i64;
    sqlx::query(
        "INSERT INTO procedure_order_code (procedure_order_id, procedure_order_seq, procedure_code, procedure_name) \
         VALUES (?, 1, '24323-8', 'Comprehensive metabolic panel')",
    )
    .bind(id)
    .execute(&db.pool)
    .await
    .unwrap();
    id
}

async fn message_row(api: &Api, control: &str) -> (String, Option<i64>, Vec<u8>) {
    sqlx::query_as("SELECT state, pid, raw FROM mmt_hl7_messages WHERE control_id = ?")
        .bind(control)
        .fetch_one(&api.db.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn results_for_an_openemr_order_are_filed_under_it_and_a_resend_is_answered_without_filing_again() {
    let api = Api::as_user(GARCIA).await;
    let order = placed_order(&api.db, 1).await;
    let message = oru("M-100", &order.to_string(), "20261130083000");
    let (status, ack) = send(&api, &message).await;
    assert_eq!(status, StatusCode::OK, "{ack}");
    let (code, text, answered) = msa(&ack);
    assert_eq!((code.as_str(), answered.as_str()), ("AA", "M-100"), "{text}");

    let (report, seq, status, tz, review, uuid): (i64, i32, String, String, String, Option<Vec<u8>>) =
        sqlx::query_as(
            "SELECT procedure_report_id, procedure_order_seq, report_status, date_collected_tz, review_status, uuid \
             FROM procedure_report WHERE procedure_order_id = ?",
        )
        .bind(order)
        .fetch_one(&api.db.pool)
        .await
        .unwrap();
    assert_eq!((seq, status.as_str(), tz.as_str(), review.as_str()), (1, "final", "-0500", "received"));
    let registered = api
        .db
        .scalar(&format!(
            "SELECT COUNT(*) FROM uuid_registry WHERE table_name = 'procedure_report' AND uuid = X'{}'",
            hex::encode(uuid.unwrap())
        ))
        .await;
    assert_eq!(registered, 1, "the report's uuid is in OpenEMR's registry");
    let results: Vec<(String, String, String, String, String)> = sqlx::query_as(
        "SELECT result_data_type, result_code, result, abnormal, comments FROM procedure_result \
         WHERE procedure_report_id = ? ORDER BY procedure_result_id",
    )
    .bind(report)
    .fetch_all(&api.db.pool)
    .await
    .unwrap();
    assert_eq!(results.len(), 3);
    assert_eq!(results[0], ("N".into(), "2823-3".into(), "5.9".into(), "high".into(), "\n".into()));
    assert_eq!(results[1].3, "no");
    assert_eq!((results[2].0.as_str(), results[2].2.as_str()), ("L", "Hemolysed"));
    assert_eq!(results[2].4, "\nRecollect advised\n");
    let audited = api
        .db
        .scalar(
            "SELECT COUNT(*) FROM log WHERE event = 'patient-record-insert' AND category = 'Lab Result' \
             AND patient_id = 1 AND user = 'drgarcia'",
        )
        .await;
    assert_eq!(audited, 1);

    let (state, pid, raw) = message_row(&api, "M-100").await;
    assert_eq!((state.as_str(), pid), ("filed", Some(1)));
    assert!(!String::from_utf8_lossy(&raw).contains("Potassium"), "the kept message is sealed");

    let (status, again) = send(&api, &message).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(msa(&again).0, "AA");
    assert_eq!(msa(&again).1, text, "a resend is answered as the first time");
    let reports = api
        .db
        .scalar(&format!("SELECT COUNT(*) FROM procedure_report WHERE procedure_order_id = {order}"))
        .await;
    assert_eq!(reports, 1, "a resend files nothing again");
}

#[tokio::test]
async fn parallel_resends_of_one_message_file_it_once() {
    let api = Api::as_user(GARCIA).await;
    let order = placed_order(&api.db, 1).await;
    let message = oru("M-PAR", &order.to_string(), "20261130083000");
    let sends = (0..6).map(|_| send(&api, &message));
    for (status, ack) in futures_util::future::join_all(sends).await {
        assert_eq!((status, msa(&ack).0.as_str()), (StatusCode::OK, "AA"), "{ack}");
    }
    let reports = api
        .db
        .scalar(&format!("SELECT COUNT(*) FROM procedure_report WHERE procedure_order_id = {order}"))
        .await;
    assert_eq!(reports, 1);
    assert_eq!(api.db.scalar("SELECT COUNT(*) FROM mmt_hl7_messages WHERE control_id = 'M-PAR'").await, 1);
}

/// Results-only orders are found or made under a gap lock of `procedure_order`'s patient index;
/// filings racing for it take turns rather than deadlock each other out of their retries.
#[tokio::test]
async fn parallel_results_without_orders_are_all_filed() {
    let api = Api::as_user(GARCIA).await;
    let sends: Vec<String> = (0..8)
        .map(|i| oru(&format!("M-RO-{i}"), "", "20261130083000").replace("F-77", &format!("F-RO-{i}")))
        .collect();
    for (status, ack) in futures_util::future::join_all(sends.iter().map(|m| send(&api, m))).await {
        assert_eq!((status, msa(&ack).0.as_str()), (StatusCode::OK, "AA"), "{ack}");
    }
    let orders = api.db.scalar("SELECT COUNT(*) FROM procedure_order WHERE control_id LIKE 'F-RO-%'").await;
    assert_eq!(orders, 8);
}

#[tokio::test]
async fn results_without_an_order_make_one_in_the_patients_latest_encounter() {
    let api = Api::as_user(GARCIA).await;
    let (encounter, at): (i64, chrono::NaiveDateTime) =
        sqlx::query_as("SELECT encounter, date FROM form_encounter WHERE pid = 1 ORDER BY date DESC LIMIT 1")
            .fetch_one(&api.db.pool)
            .await
            .unwrap();
    let collected = (at + chrono::Duration::hours(2)).format("%Y%m%d%H%M%S").to_string();
    let (status, ack) = send(&api, &oru("M-200", "", &collected)).await;
    assert_eq!((status, msa(&ack).0.as_str()), (StatusCode::OK, "AA"), "{ack}");
    let (order, order_encounter, provider, control, status): (i64, i64, i64, String, String) = sqlx::query_as(
        "SELECT procedure_order_id, encounter_id, provider_id, control_id, order_status FROM procedure_order \
         WHERE patient_id = 1",
    )
    .fetch_one(&api.db.pool)
    .await
    .unwrap();
    assert_eq!(
        (order_encounter, provider, control.as_str(), status.as_str()),
        (encounter, 2, "F-77", "complete")
    );
    let source = api
        .db
        .scalar_text(&format!(
            "SELECT procedure_source FROM procedure_order_code WHERE procedure_order_id = {order}"
        ))
        .await;
    assert_eq!(source, "2", "a test the lab added");
    let listed = api
        .db
        .scalar(&format!(
            "SELECT COUNT(*) FROM forms WHERE formdir = 'procedure_order' AND form_id = {order} \
             AND encounter = {encounter} AND form_name = 'Auto Result-{order}' AND pid = 1"
        ))
        .await;
    assert_eq!(listed, 1, "the order shows in its encounter");

    let (status, ack) = send(&api, &oru("M-201", "", &collected)).await;
    assert_eq!((status, msa(&ack).0.as_str()), (StatusCode::OK, "AA"));
    assert_eq!(
        api.db.scalar("SELECT COUNT(*) FROM procedure_order WHERE patient_id = 1").await,
        1,
        "later results for the lab's number join its order"
    );
    assert_eq!(
        api.db
            .scalar(&format!("SELECT COUNT(*) FROM procedure_report WHERE procedure_order_id = {order}"))
            .await,
        2
    );
}

#[tokio::test]
async fn a_message_whose_patient_is_unclear_waits_until_a_person_chooses() {
    let api = Api::as_user(GARCIA).await;
    let unknown =
        oru("M-300", "", "20261130083000").replace("Muñoz^José^J||19821203", "Nobody^Known||19990101");
    let (status, ack) = send(&api, &unknown).await;
    let (code, text, _) = msa(&ack);
    assert_eq!((status, code.as_str()), (StatusCode::OK, "AA"), "{ack}");
    assert!(text.contains("queued"), "{text}");
    assert_eq!(api.db.scalar("SELECT COUNT(*) FROM procedure_report").await, 0);

    let (status, page) = api.call("GET", "/api/hl7/messages/?state=queued", None).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let queued = &page["items"][0];
    assert_eq!((queued["control_id"].as_str(), queued["state"].as_str()), (Some("M-300"), Some("queued")));
    let id = queued["id"].as_u64().unwrap();
    let (status, one) = api.call("GET", &format!("/api/hl7/messages/{id}/"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(one["text"].as_str().unwrap().contains("PID|1||EXT-1"), "{one}");

    let (status, problem) =
        api.call("POST", &format!("/api/hl7/messages/{id}/resolve/"), Some(json!({"pid": 999999}))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    let path = format!("/api/hl7/messages/{id}/resolve/");
    let (first, second) = tokio::join!(
        api.call("POST", &path, Some(json!({"pid": 2}))),
        api.call("POST", &path, Some(json!({"pid": 3})))
    );
    let mut answers = [first.0, second.0];
    answers.sort();
    assert_eq!(answers, [StatusCode::OK, StatusCode::CONFLICT], "two people resolving at once: one files it");
    let resolved = if first.0 == StatusCode::OK { first.1 } else { second.1 };
    let chosen = resolved["pid"].as_i64().unwrap();
    assert_eq!(resolved["state"].as_str(), Some("filed"));
    assert_eq!(resolved["resolved_by"].as_i64(), Some(2));
    let filed = api
        .db
        .scalar(
            "SELECT COUNT(*) FROM procedure_report r JOIN procedure_order o USING (procedure_order_id) \
             WHERE o.patient_id IN (2, 3)",
        )
        .await;
    assert_eq!(filed, 1);
    assert_eq!(
        api.db.scalar(&format!("SELECT COUNT(*) FROM procedure_order WHERE patient_id = {chosen}")).await,
        1
    );
    let (status, _) =
        api.call("POST", &format!("/api/hl7/messages/{id}/resolve/"), Some(json!({"pid": 2}))).await;
    assert_eq!(status, StatusCode::CONFLICT, "a filed message is not filed again");
}

#[tokio::test]
async fn an_order_of_another_patient_or_none_at_all_is_answered_ae() {
    let api = Api::as_user(GARCIA).await;
    let others = placed_order(&api.db, 2).await;
    let (status, ack) = send(&api, &oru("M-400", &others.to_string(), "20261130083000")).await;
    let (code, text, _) = msa(&ack);
    assert_eq!((status, code.as_str()), (StatusCode::OK, "AE"), "{ack}");
    assert!(text.contains("another patient"), "{text}");
    let (_, ack) = send(&api, &oru("M-401", "987654", "20261130083000")).await;
    assert_eq!(msa(&ack).0, "AE");
    assert!(msa(&ack).1.contains("987654"), "{ack}");
    assert_eq!(api.db.scalar("SELECT COUNT(*) FROM procedure_report").await, 0);
    assert_eq!(message_row(&api, "M-400").await.0, "error");
}

#[tokio::test]
async fn bad_messages_are_refused_naming_the_field_and_a_reused_control_id_is_rejected() {
    let api = Api::as_user(GARCIA).await;
    let long_units =
        oru("M-500", "", "20261130083000").replace("mmol/L|3.5-5.1", &format!("{}|3.5-5.1", "u".repeat(40)));
    let (status, ack) = send(&api, &long_units).await;
    let (code, text, _) = msa(&ack);
    assert_eq!((status, code.as_str()), (StatusCode::OK, "AR"), "{ack}");
    assert!(text.contains("OBX-6") && ack.contains("procedure_result.units"), "{ack}");
    assert_eq!(message_row(&api, "M-500").await.0, "rejected");

    let other = oru("M-500", "", "20261129083000");
    let (_, ack) = send(&api, &other).await;
    assert_eq!(msa(&ack).0, "AR");
    assert!(msa(&ack).1.contains("already used"), "{ack}");

    let (status, problem) = send(&api, "hello, this is not HL7").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
    let problem: Value = serde_json::from_str(&problem).unwrap();
    assert!(problem["detail"].as_str().unwrap().contains("MSH"), "{problem}");
}

#[tokio::test]
async fn an_mdm_becomes_a_text_document_and_an_inbox_message_to_its_provider() {
    let docs = Docs::new().await;
    let token = docs.token(GARCIA).await;
    let env = docs.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mdm = "MSH|^~\\&|DICT|HOSP|||20261201||MDM^T02|D-1|P|2.5.1\r\
PID|1||1||Muñoz^José||19821203|M\r\
PV1|1|O||||||1345674224^García^Elena\r\
TXA|1|CN|TX|20261201093000||||||||Discharge summary\r\
OBX|1|TX|||Seen for chest pain\r\
OBX|2|TX|||Plan \\T\\ follow-up";
    let (status, ack) = send_with(&docs.db, &token, &env, mdm).await;
    assert_eq!((status, msa(&ack).0.as_str()), (StatusCode::OK, "AA"), "{ack}");
    let (doc, name, mimetype, category): (i64, String, String, i64) = sqlx::query_as(
        "SELECT d.id, d.name, d.mimetype, c.category_id FROM documents d \
         JOIN categories_to_documents c ON c.document_id = d.id WHERE d.foreign_id = 1 ORDER BY d.id DESC LIMIT 1",
    )
    .fetch_one(&docs.db.pool)
    .await
    .unwrap();
    assert_eq!(
        (name.as_str(), mimetype.as_str(), category),
        ("Discharge summary_20261201093000.txt", "text/plain", 2)
    );
    let resp = docs
        .db
        .client_with(&env)
        .get(format!("/api/documents/{doc}/content"))
        .header("authorization", format!("Bearer {token}"))
        .send()
        .await;
    assert_eq!(resp.0.status(), StatusCode::OK);
    assert_eq!(resp.0.into_body().into_string().await.unwrap(), "Seen for chest pain\nPlan & follow-up");
    let (title, body): (String, String) = sqlx::query_as(
        "SELECT title, body FROM pnotes WHERE assigned_to = 'drgarcia' AND pid = 1 ORDER BY id DESC LIMIT 1",
    )
    .fetch_one(&docs.db.pool)
    .await
    .unwrap();
    assert_eq!(title, "New Document");
    assert!(body.contains(&format!("New scanned document {doc}")), "{body}");
}

#[tokio::test]
async fn adt_registers_a_new_patient_then_updates_them_and_front_office_cannot_send_results() {
    let api = Api::as_user(FRONT).await;
    let a04 = "MSH|^~\\&|REG|HOSP|||20261201||ADT^A04|A-1|P|2.5.1\r\
EVN|A04|20261201\r\
PID|1||CHART-900^^^^MR~555-12-3456^^^^SS||Lindqvist^Astrid^M||19910415|F|||12 Harbor Rd^^Duluth^MN^55802||(218) 555-0199";
    let (status, ack) = send(&api, a04).await;
    assert_eq!((status, msa(&ack).0.as_str()), (StatusCode::OK, "AA"), "{ack}");
    let (pid, sex, dob, city): (i64, String, chrono::NaiveDate, String) =
        sqlx::query_as("SELECT pid, sex, DOB, city FROM patient_data WHERE pubpid = 'CHART-900'")
            .fetch_one(&api.db.pool)
            .await
            .unwrap();
    assert_eq!((sex.as_str(), dob.to_string().as_str(), city.as_str()), ("Female", "1991-04-15", "Duluth"));

    let a08 = a04
        .replace("A04|A-1", "A08|A-2")
        .replace("ADT^A04", "ADT^A08")
        .replace("(218) 555-0199", "(218) 555-0142");
    let (status, ack) = send(&api, &a08).await;
    assert_eq!((status, msa(&ack).0.as_str()), (StatusCode::OK, "AA"), "{ack}");
    let phone = api.db.scalar_text(&format!("SELECT phone_home FROM patient_data WHERE pid = {pid}")).await;
    assert_eq!(phone, "(218) 555-0142");
    assert_eq!(api.db.scalar("SELECT COUNT(*) FROM patient_data WHERE lname = 'Lindqvist'").await, 1);

    let twin =
        json!({"first_name": "Astrid", "last_name": "Lindqvist", "dob": "1991-04-15", "sex": "Female"});
    let (status, created) = api.call("POST", "/api/patients/", Some(twin)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let a08_again = a08.replace("A08|A-2", "A08|A-3").replace("(218) 555-0142", "(218) 555-0177");
    let (_, ack) = send(&api, &a08_again).await;
    let (code, text, _) = msa(&ack);
    assert_eq!(code, "AA", "{ack}");
    assert!(text.contains("more than one patient"), "an ambiguous ADT waits for a person: {text}");
    let (state, candidates): (String, String) =
        sqlx::query_as("SELECT state, candidates FROM mmt_hl7_messages WHERE control_id = 'A-3'")
            .fetch_one(&api.db.pool)
            .await
            .unwrap();
    assert_eq!((state.as_str(), candidates), ("queued", format!("{pid},{}", created["pid"])));
    assert_eq!(
        api.db.scalar("SELECT COUNT(*) FROM patient_data WHERE phone_home = '(218) 555-0177'").await,
        0
    );

    let (status, _) = send(&api, &oru("M-600", "", "20261130083000")).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "front office holds no patients|lab");
    let (status, page) = api.call("GET", "/api/hl7/messages/", None).await;
    assert_eq!(status, StatusCode::OK);
    let types: Vec<&str> =
        page["items"].as_array().unwrap().iter().filter_map(|m| m["message_type"].as_str()).collect();
    assert_eq!(types, vec!["ADT^A08", "ADT^A08", "ADT^A04"], "only the kinds the caller may receive");
}

#[tokio::test]
async fn an_encapsulated_pdf_result_is_filed_as_a_lab_report_document_linked_from_its_result() {
    use base64::Engine;
    let docs = Docs::new().await;
    let token = docs.token(GARCIA).await;
    let env = docs.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let pdf = crate::documents::pdf("CMP report");
    let encoded = base64::engine::general_purpose::STANDARD.encode(&pdf);
    let with_pdf = |control: &str, placer: &str| {
        oru(control, placer, "20261130083000").replace(
            "OBX|3|TX|8251-1^Comment^LN||Hemolysed\\.br\\Recollect advised||||||F",
            &format!("OBX|3|ED|11502-2^Laboratory report^LN||^AP^PDF^Base64^{encoded}||||||F"),
        )
    };
    let (status, ack) = send_with(&docs.db, &token, &env, &with_pdf("M-700", "")).await;
    assert_eq!((status, msa(&ack).0.as_str()), (StatusCode::OK, "AA"), "{ack}");
    let (document, data_type): (i64, String) = sqlx::query_as(
        "SELECT document_id, result_data_type FROM procedure_result WHERE result_code = '11502-2'",
    )
    .fetch_one(&docs.db.pool)
    .await
    .unwrap();
    assert_eq!(data_type, "E");
    let (mimetype, category): (String, i64) = sqlx::query_as(
        "SELECT d.mimetype, c.category_id FROM documents d JOIN categories_to_documents c ON c.document_id = d.id \
         WHERE d.id = ? AND d.foreign_id = 1",
    )
    .bind(document)
    .fetch_one(&docs.db.pool)
    .await
    .unwrap();
    assert_eq!((mimetype.as_str(), category), ("application/pdf", 2));
    let resp = docs
        .db
        .client_with(&env)
        .get(format!("/api/documents/{document}/content"))
        .header("authorization", format!("Bearer {token}"))
        .send()
        .await;
    assert_eq!(resp.0.into_body().into_vec().await.unwrap(), pdf, "the PDF reads back byte for byte");

    let (own, others) = (placed_order(&docs.db, 1).await, placed_order(&docs.db, 2).await);
    let second = format!(
        "\rOBR|2|{others}|F-78|2345-7^Glucose^LN|||20261130083000-0500\rOBX|1|NM|2345-7^Glucose^LN||99|mg/dL"
    );
    let (_, ack) = send_with(&docs.db, &token, &env, &(with_pdf("M-701", &own.to_string()) + &second)).await;
    assert_eq!(msa(&ack).0, "AE", "{ack}");
    assert!(msa(&ack).1.contains(&others.to_string()), "{ack}");
    let live = docs
        .db
        .scalar("SELECT COUNT(*) FROM documents WHERE deleted = 0 AND mimetype = 'application/pdf'")
        .await;
    assert_eq!(live, 1, "the PDF of results that were not filed is taken back");
    let reports = docs
        .db
        .scalar(&format!("SELECT COUNT(*) FROM procedure_report WHERE procedure_order_id = {own}"))
        .await;
    assert_eq!(reports, 0, "no report of the message is filed");

    // Labcorp's ZEF segment carries the report as a bare Base64 PDF; OpenEMR files it as an E result.
    let zef = oru("M-702", "", "20261130083000").replace("F-77", "F-ZEF") + &format!("\rZEF|1|{encoded}");
    let (status, ack) = send_with(&docs.db, &token, &env, &zef).await;
    assert_eq!((status, msa(&ack).0.as_str()), (StatusCode::OK, "AA"), "{ack}");
    let zef_pdf: String = sqlx::query_scalar(
        "SELECT d.mimetype FROM procedure_result r JOIN procedure_report p ON p.procedure_report_id = r.procedure_report_id \
         JOIN procedure_order o ON o.procedure_order_id = p.procedure_order_id JOIN documents d ON d.id = r.document_id \
         WHERE o.control_id = 'F-ZEF' AND r.result_data_type = 'E'",
    )
    .fetch_one(&docs.db.pool)
    .await
    .unwrap();
    assert_eq!(zef_pdf, "application/pdf");
}

/// Reads until `count` MLLP blocks have arrived (or the peer closes), returning their messages.
async fn read_blocks(stream: &mut tokio::net::TcpStream, count: usize) -> Vec<String> {
    use tokio::io::AsyncReadExt;
    let (mut received, mut blocks) = (Vec::new(), Vec::new());
    let mut chunk = [0u8; 4096];
    while blocks.len() < count {
        while let Some((message, used)) = mmt_sidecar::domain::hl7::next_block(&received) {
            blocks.extend(message.map(|m| String::from_utf8(m.to_vec()).unwrap()));
            received.drain(..used);
        }
        if blocks.len() == count {
            break;
        }
        match stream.read(&mut chunk).await {
            Ok(n) if n > 0 => received.extend_from_slice(&chunk[..n]),
            _ => break,
        }
    }
    blocks
}

#[tokio::test]
async fn messages_over_mllp_are_received_as_the_configured_user_and_only_from_allowed_peers() {
    use mmt_sidecar::domain::hl7::framed;
    use tokio::io::AsyncWriteExt;
    let db = TestDb::migrated().await;
    let order = placed_order(&db, 1).await;
    let listen = [("MMT_HL7_LISTEN_ADDR", "127.0.0.1:2575"), ("MMT_HL7_LISTEN_USER", "drgarcia")];
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(mmt_sidecar::mllp::serve(db.state_with(&listen), listener));

    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let first = framed(&oru("L-1", &order.to_string(), "20261130083000"));
    stream.write_all(&first[..40]).await.unwrap();
    stream.flush().await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let mut rest = first[40..].to_vec();
    rest.extend(framed("this is not HL7"));
    stream.write_all(&rest).await.unwrap();
    let acks = read_blocks(&mut stream, 2).await;
    assert_eq!(acks.len(), 2, "{acks:?}");
    assert_eq!(msa(&acks[0]).0, "AA", "{}", acks[0]);
    assert_eq!((msa(&acks[0]).2.as_str()), "L-1");
    assert_eq!(msa(&acks[1]).0, "AR", "{}", acks[1]);
    let received_by = db.scalar("SELECT received_by FROM mmt_hl7_messages WHERE control_id = 'L-1'").await;
    assert_eq!(received_by, 2, "received as MMT_HL7_LISTEN_USER");
    assert_eq!(
        db.scalar(&format!("SELECT COUNT(*) FROM procedure_report WHERE procedure_order_id = {order}")).await,
        1
    );
    server.abort();

    let elsewhere = [listen[0], listen[1], ("MMT_HL7_LISTEN_ALLOW", "10.0.0.0/8")];
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(mmt_sidecar::mllp::serve(db.state_with(&elsewhere), listener));
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let _ = stream.write_all(&framed(&oru("L-2", &order.to_string(), "20261130083000"))).await;
    assert!(
        read_blocks(&mut stream, 1).await.is_empty(),
        "a peer outside MMT_HL7_LISTEN_ALLOW gets no answer"
    );
    assert_eq!(db.scalar("SELECT COUNT(*) FROM mmt_hl7_messages WHERE control_id = 'L-2'").await, 0);
    server.abort();
}

#[tokio::test]
async fn hl7_import_receives_files_and_a_watched_folder_files_them_away() {
    let db = TestDb::migrated().await;
    let order = placed_order(&db, 1).await;
    let dir = std::env::temp_dir().join(format!("mmt-hl7-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("a.hl7"), oru("C-1", &order.to_string(), "20261130083000")).unwrap();
    let too_long =
        oru("C-2", "", "20261130083000").replace("mmol/L|3.5-5.1", &format!("{}|3.5-5.1", "u".repeat(40)));
    std::fs::write(dir.join("b.hl7"), too_long).unwrap();
    let out = db.run_binary(&["hl7-import", "--user", "drgarcia", dir.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "one message was refused: {stdout}");
    assert!(stdout.contains("MSA|AA|C-1") && stdout.contains("MSA|AR|C-2"), "{stdout}");
    assert_eq!(
        db.scalar(&format!("SELECT COUNT(*) FROM procedure_report WHERE procedure_order_id = {order}")).await,
        1
    );

    let watched = dir.join("inbox");
    std::fs::create_dir_all(&watched).unwrap();
    let mut child = std::process::Command::new(crate::helpers::binary())
        .args(["hl7-import", "--user", "drgarcia", "--watch", "1", watched.to_str().unwrap()])
        .env_clear()
        .envs(db.env())
        .spawn()
        .unwrap();
    std::fs::write(watched.join("c.hl7"), oru("C-3", &order.to_string(), "20261130083000")).unwrap();
    let done = watched.join("done").join("c.hl7.ack");
    for _ in 0..100 {
        if done.exists() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    child.kill().unwrap();
    let _ = child.wait();
    let ack = std::fs::read_to_string(&done).expect("the answered file's ACKs are kept beside it");
    assert_eq!(msa(&ack).0, "AA", "{ack}");
    assert!(watched.join("done").join("c.hl7").exists() && !watched.join("c.hl7").exists());
    assert_eq!(
        db.scalar(&format!("SELECT COUNT(*) FROM procedure_report WHERE procedure_order_id = {order}")).await,
        2
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn under_the_assigned_patient_policy_the_list_leaves_out_other_panels_messages_and_still_pages_past_them()
 {
    let api = Api::as_user(GARCIA).await;
    for control in ["M-600", "M-601"] {
        let (status, ack) = send(&api, &oru(control, "", "20261130083000")).await;
        assert_eq!((status, msa(&ack).0.as_str()), (StatusCode::OK, "AA"), "{ack}");
    }
    let inside = api.db.scalar("SELECT MIN(pid) FROM patient_data WHERE providerID = 2").await;
    let outside = api
        .db
        .scalar(
            "SELECT MIN(p.pid) FROM patient_data p WHERE p.providerID = 3 \
             AND NOT EXISTS (SELECT 1 FROM form_encounter e WHERE e.pid = p.pid AND e.provider_id = 2) \
             AND NOT EXISTS (SELECT 1 FROM openemr_postcalendar_events a WHERE a.pc_pid = p.pid AND a.pc_aid = '2')",
        )
        .await;
    for (control, pid) in [("M-600", inside), ("M-601", outside)] {
        sqlx::query("UPDATE mmt_hl7_messages SET pid = ? WHERE control_id = ?")
            .bind(pid)
            .bind(control)
            .execute(&api.db.pool)
            .await
            .unwrap();
    }
    let assigned = [("MMT_PATIENT_ACCESS", "assigned")];
    let list = async |path: &str| {
        Box::pin(crate::patients::send(
            &api.db,
            &assigned,
            Some(&api.token),
            poem::http::Method::GET,
            path,
            None,
        ))
        .await
    };

    let (status, first) = list("/api/hl7/messages/?page_size=1").await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(first["items"], json!([]), "the newest message is another panel's patient's record");
    let cursor = first["next_cursor"].as_str().expect("a page of hidden rows still says more may follow");
    let (status, second) = list(&format!("/api/hl7/messages/?page_size=1&cursor={cursor}")).await;
    assert_eq!(status, StatusCode::OK, "{second}");
    assert_eq!(second["items"][0]["control_id"].as_str(), Some("M-600"), "{second}");

    let (status, all) = api.call("GET", "/api/hl7/messages/", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(all["items"].as_array().map(Vec::len), Some(2), "without the policy both are listed: {all}");
}
