//! E-mailing a prescription: delivered by the job to the real SMTP server scripts/test.sh starts
//! (aiosmtpd with tests/smtp/policy.py), read back from its Maildir.

use std::{
    path::PathBuf,
    time::{Duration, Instant},
};

use mmt_sidecar::{
    app::{self, AppState},
    service::jobs::{Tasks, Workers},
};
use poem::{http::StatusCode, test::TestClient};
use serde_json::{Value, json};

use super::{FRONT, GARCIA, PID, field_errors};
use crate::{helpers::TestDb, patients::Api};

const FROM: &str = "rx@harbour-clinic.example";

fn smtp_url() -> String {
    std::env::var("MMT_TEST_SMTP_URL")
        .expect("MMT_TEST_SMTP_URL is not set: run the tests with scripts/test.sh")
}

fn maildir() -> PathBuf {
    std::env::var("MMT_TEST_MAILDIR")
        .expect("MMT_TEST_MAILDIR is not set: run the tests with scripts/test.sh")
        .into()
}

/// Quick job polling and backoff so a retried send takes well under a second.
fn settings(smtp: &str) -> Vec<(&'static str, String)> {
    vec![
        ("SMTP_URL", smtp.to_string()),
        ("MMT_JOB_POLL_MS", "20".into()),
        ("MMT_JOB_BACKOFF_MS", "100".into()),
        ("MMT_JOB_BACKOFF_MAX_SECS", "1".into()),
    ]
}

/// A clinician's API with e-mail on, and job workers to send.
struct Mail {
    api: Api,
    state: AppState,
    workers: Option<Tasks>,
}

impl Mail {
    async fn new(user: (&str, &str), smtp: &str) -> Self {
        let api = Api::as_user(user).await;
        set_global(&api.db, "practice_return_email_path", FROM).await;
        let vars = settings(smtp);
        let extra: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let state = api.db.state_with(&extra);
        Self { api, state, workers: None }
    }

    fn start_workers(&mut self) {
        self.workers = Some(Workers::new(self.state.clone()).spawn(2));
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let client = TestClient::new(app::build_app(self.state.clone()));
        let method = poem::http::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req =
            client.request(method, path).header("authorization", format!("Bearer {}", self.api.token));
        if let Some(body) = body {
            req = req.body_json(&body);
        }
        let resp = req.send().await;
        let status = resp.0.status();
        let bytes = resp.0.into_body().into_vec().await.unwrap();
        (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    async fn prescribe(&self) -> i64 {
        let body = json!({"drug": "Lisinopril", "size": "10", "unit": "mg", "dosage": "1", "form": "tablet",
                          "route": "1", "interval": "Daily", "quantity": "30", "refills": 2,
                          "start_date": "2026-11-02"});
        let (status, out) =
            self.call("POST", &format!("/api/patients/{PID}/prescriptions/"), Some(body)).await;
        assert_eq!(status, StatusCode::CREATED, "{out}");
        out["id"].as_i64().unwrap()
    }

    async fn send(&self, id: i64, body: Value) -> (StatusCode, Value) {
        self.call("POST", &format!("/api/prescriptions/{id}/send/"), Some(body)).await
    }

    /// Polls the send until `done` holds (the workers settle it).
    async fn wait(&self, rx: i64, send_id: u64, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let (status, list) = self.call("GET", &format!("/api/prescriptions/{rx}/sends/"), None).await;
            assert_eq!(status, StatusCode::OK, "{list}");
            let send =
                list["items"].as_array().unwrap().iter().find(|s| s["id"] == send_id).cloned().unwrap();
            if done(&send) {
                return send;
            }
            assert!(Instant::now() < deadline, "send not settled after 20 s: {send}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn stop(mut self) {
        if let Some(workers) = self.workers.take() {
            workers.shutdown(Duration::from_secs(5)).await;
        }
    }
}

async fn set_global(db: &TestDb, name: &str, value: &str) {
    sqlx::query("REPLACE INTO globals (gl_name, gl_index, gl_value) VALUES (?, 0, ?)")
        .bind(name)
        .bind(value)
        .execute(&db.pool)
        .await
        .unwrap();
}

fn unique(local: &str) -> String {
    format!("{local}-{}@pharmacy.example", uuid::Uuid::new_v4().simple())
}

/// The message the SMTP server stored with this Message-ID.
fn received(message_id: &str) -> Vec<u8> {
    let new = maildir().join("new");
    for entry in std::fs::read_dir(&new).unwrap() {
        let raw = std::fs::read(entry.unwrap().path()).unwrap();
        let mail = mailparse::parse_mail(&raw).unwrap();
        if mail
            .headers
            .iter()
            .any(|h| h.get_key().eq_ignore_ascii_case("Message-ID") && h.get_value() == message_id)
        {
            return raw;
        }
    }
    panic!("no message {message_id} in {}", new.display());
}

async fn audit_comments(db: &TestDb, like: &str) -> Vec<(String, i64)> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT user, CAST(success AS SIGNED) FROM log WHERE event = 'order-select' AND category = 'Medication' \
         AND patient_id = {PID} AND FROM_BASE64(comments) LIKE '%{like}%' ORDER BY id"
    )))
    .fetch_all(&db.pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn an_emailed_prescription_arrives_with_its_pdf_and_is_recorded_and_audited() {
    let mut mail = Mail::new(GARCIA, &smtp_url()).await;
    set_global(&mail.api.db, "openemr_name", "Harbour Clinic").await;
    let rx = mail.prescribe().await;
    let to = unique("scripts");
    let (status, queued) = mail.send(rx, json!({ "to": to })).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{queued}");
    assert_eq!((queued["state"].as_str(), queued["to"].as_str()), (Some("queued"), Some(to.as_str())));
    assert!(queued["job_id"].is_string());
    mail.start_workers();
    let send = mail.wait(rx, queued["id"].as_u64().unwrap(), |s| s["state"] != "queued").await;
    assert_eq!((send["state"].as_str(), send["attempts"].as_i64()), (Some("sent"), Some(1)), "{send}");
    assert!(send["sent_at"].is_string());

    let raw = received(send["message_id"].as_str().unwrap());
    let message = mailparse::parse_mail(&raw).unwrap();
    let header = |name: &str| {
        message.headers.iter().find(|h| h.get_key().eq_ignore_ascii_case(name)).unwrap().get_value()
    };
    assert_eq!(header("From"), FROM);
    assert_eq!(header("To"), to);
    assert_eq!(header("Subject"), "Harbour Clinic Prescription");
    assert_eq!(message.subparts.len(), 2, "a text part and the PDF");
    let patient: (String, String) = sqlx::query_as("SELECT fname, lname FROM patient_data WHERE pid = ?")
        .bind(PID)
        .fetch_one(&mail.api.db.pool)
        .await
        .unwrap();
    assert_eq!(
        message.subparts[0].get_body().unwrap().trim(),
        format!("Harbour Clinic Prescription attached to this email. Patient {} {}", patient.0, patient.1)
    );
    let attachment = &message.subparts[1];
    assert_eq!(attachment.ctype.mimetype, "application/pdf");
    let disposition = attachment.get_content_disposition();
    let name = disposition.params.get("filename").unwrap();
    assert!(name.starts_with("Prescription-") && name.ends_with(".pdf") && name.len() == 36, "{name}");
    let text = super::pdf_to_text(&attachment.get_body_raw().unwrap());
    assert!(text.contains("Lisinopril") && text.contains(&patient.1), "{text}");

    let queued_audit =
        audit_comments(&mail.api.db, &format!("queued e-mail % of prescription {rx} to {to}")).await;
    assert_eq!(queued_audit, vec![("drgarcia".to_string(), 1)]);
    let sent_audit =
        audit_comments(&mail.api.db, &format!("e-mailed prescription {rx} as PDF to {to}")).await;
    assert_eq!(sent_audit, vec![("drgarcia".to_string(), 1)], "the disclosure, under the user who asked");
    mail.stop().await;
}

#[tokio::test]
async fn without_an_address_the_pharmacy_on_file_gets_it_and_a_repeat_joins_the_queued_send() {
    let mut mail = Mail::new(GARCIA, &smtp_url()).await;
    let (rx, pharmacy): (i64, String) = sqlx::query_as(
        "SELECT p.id, ph.email FROM prescriptions p JOIN pharmacies ph ON ph.id = p.pharmacy_id \
         WHERE p.patient_id = ? ORDER BY p.id LIMIT 1",
    )
    .bind(PID)
    .fetch_one(&mail.api.db.pool)
    .await
    .expect("the demo data gives the patient a prescription naming a pharmacy");
    let (first, second) = tokio::join!(mail.send(rx, json!({})), mail.send(rx, json!({})));
    let mut statuses = [first.0, second.0];
    statuses.sort();
    assert_eq!(statuses, [StatusCode::OK, StatusCode::ACCEPTED], "{} {}", first.1, second.1);
    assert_eq!(first.1["id"], second.1["id"], "one send queued for both requests");
    assert_eq!(first.1["to"].as_str(), Some(pharmacy.as_str()));

    mail.start_workers();
    let send = mail.wait(rx, first.1["id"].as_u64().unwrap(), |s| s["state"] != "queued").await;
    assert_eq!(send["state"], "sent", "{send}");
    let message = received(send["message_id"].as_str().unwrap());
    assert!(String::from_utf8_lossy(&message).contains(&format!("X-RcptTo: {pharmacy}")));
    let sends = mail
        .api
        .db
        .scalar(&format!("SELECT COUNT(*) FROM mmt_prescription_sends WHERE prescription_id = {rx}"))
        .await;
    assert_eq!(sends, 1);
    mail.stop().await;
}

#[tokio::test]
async fn a_refused_recipient_fails_the_send_at_once_and_the_failure_is_audited() {
    let mut mail = Mail::new(GARCIA, &smtp_url()).await;
    let rx = mail.prescribe().await;
    let to = unique("refuse");
    let (status, queued) = mail.send(rx, json!({ "to": to })).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{queued}");
    mail.start_workers();
    let send = mail.wait(rx, queued["id"].as_u64().unwrap(), |s| s["state"] != "queued").await;
    assert_eq!((send["state"].as_str(), send["attempts"].as_i64()), (Some("failed"), Some(1)), "{send}");
    let error = send["error"].as_str().unwrap();
    assert!(error.contains("refused") && error.contains("550") && !error.contains(&to), "{error}");
    let sql = format!(
        "SELECT COUNT(*) FROM mmt_jobs j JOIN mmt_prescription_sends s ON s.job_id = j.id \
         WHERE s.id = {} AND j.state = 'failed'",
        send["id"]
    );
    assert_eq!(mail.api.db.scalar(&sql).await, 1, "the job fails too, without further attempts");
    let audit = audit_comments(&mail.api.db, &format!("could not e-mail prescription {rx}")).await;
    assert_eq!(audit, vec![("drgarcia".to_string(), 0)]);
    let (_, page) = mail.call("GET", "/api/notifications/", None).await;
    let told = &page["items"][0];
    assert_eq!(
        (told["kind"].as_str(), told["subject"].as_str()),
        (Some("job.failed"), Some("job")),
        "{page}"
    );
    assert_eq!(told["subject_id"], send["job_id"]);
    mail.stop().await;
}

#[tokio::test]
async fn a_greylisted_send_is_retried_and_delivered() {
    let mut mail = Mail::new(GARCIA, &smtp_url()).await;
    let rx = mail.prescribe().await;
    let (status, queued) = mail.send(rx, json!({ "to": unique("greylist") })).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{queued}");
    mail.start_workers();
    let send = mail.wait(rx, queued["id"].as_u64().unwrap(), |s| s["state"] != "queued").await;
    assert_eq!((send["state"].as_str(), send["attempts"].as_i64()), (Some("sent"), Some(2)), "{send}");
    received(send["message_id"].as_str().unwrap());
    mail.stop().await;
}

#[tokio::test]
async fn an_unreachable_mail_server_keeps_the_send_queued_for_retries() {
    let closed = format!("smtp://127.0.0.1:{}", crate::helpers::free_port());
    let mut mail = Mail::new(GARCIA, &closed).await;
    let rx = mail.prescribe().await;
    let (_, queued) = mail.send(rx, json!({ "to": unique("later") })).await;
    mail.start_workers();
    let send = mail.wait(rx, queued["id"].as_u64().unwrap(), |s| s["attempts"].as_i64() >= Some(2)).await;
    assert_eq!(send["state"], "queued", "{send}");
    assert!(send["error"].as_str().unwrap().contains("could not hand the message"), "{send}");
    mail.stop().await;
}

#[tokio::test]
async fn sends_are_refused_with_reasons() {
    let mail = Mail::new(GARCIA, &smtp_url()).await;
    let rx = mail.prescribe().await;
    for bad in ["pharmacy", "A <a@b.example>", "a@b.example\r\nBcc: c@d.example"] {
        let (status, body) = mail.send(rx, json!({ "to": bad })).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad:?}: {body}");
        assert_eq!(field_errors(&body), ["to"]);
    }
    let (status, body) = mail.send(rx, json!({})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "a new prescription names no pharmacy: {body}");
    assert!(body.to_string().contains("give `to`"), "{body}");
    let (status, _) = mail.send(999_999, json!({ "to": unique("x") })).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    set_global(&mail.api.db, "rx_send_email", "0").await;
    let (status, body) = mail.send(rx, json!({ "to": unique("x") })).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("rx_send_email"), "{body}");

    let front = Mail::new(FRONT, &smtp_url()).await;
    let demo_rx =
        front.api.db.scalar(&format!("SELECT MIN(id) FROM prescriptions WHERE patient_id = {PID}")).await;
    let (status, _) = front.send(demo_rx, json!({ "to": unique("x") })).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "front office holds no patients|rx");

    let api = Api::as_user(GARCIA).await;
    let path = format!("/api/prescriptions/{demo_rx}/send/");
    let (status, body) = api.call("POST", &path, Some(json!({ "to": unique("x") }))).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "no SMTP_URL: {body}");
    assert_eq!(mail.api.db.scalar("SELECT COUNT(*) FROM mmt_prescription_sends").await, 0, "nothing queued");
}
