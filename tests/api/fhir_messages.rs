//! FHIR Communication over OpenEMR's messages (`pnotes`): sent as OpenEMR's Messages screen
//! sends them, read under the messaging API's rules, paged by cursor.

use std::collections::HashSet;

use poem::http::StatusCode;
use serde_json::{Value, json};

use crate::{
    auth::tokens,
    chart::{GARCIA, NURSE, OKAFOR},
    helpers::TestDb,
};

struct Mail {
    db: TestDb,
    garcia: String,
}

impl Mail {
    async fn new() -> Self {
        let db = TestDb::migrated().await;
        let garcia = tokens(&db, GARCIA).await.0;
        Self { db, garcia }
    }

    async fn send(&self, token: &str, method: &str, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let method = poem::http::Method::from_bytes(method.as_bytes()).unwrap();
        let client = self.db.client();
        let mut req = client
            .request(method, format!("/fhir/r4{path}"))
            .header("host", "ehr.example")
            .header("authorization", format!("Bearer {token}"));
        if let Some(body) = body {
            req = req.header("content-type", "application/fhir+json").body(body.to_string());
        }
        let resp = req.send().await;
        let status = resp.0.status();
        (status, serde_json::from_str(&resp.0.into_body().into_string().await.unwrap()).unwrap())
    }

    async fn uuid(&self, sql: &str) -> String {
        let bytes: Vec<u8> =
            sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_string())).fetch_one(&self.db.pool).await.unwrap();
        uuid::Uuid::from_slice(&bytes).unwrap().to_string()
    }

    async fn message(&self, to: &str, pid: i64, text: &str) -> Value {
        let user = self.uuid(&format!("SELECT uuid FROM users WHERE username = '{to}'")).await;
        let patient = self.uuid(&format!("SELECT uuid FROM patient_data WHERE pid = {pid}")).await;
        json!({
            "resourceType": "Communication",
            "status": "in-progress",
            "category": [{"text": "Lab Results"}],
            "subject": {"reference": format!("Patient/{patient}")},
            "recipient": [{"reference": format!("Practitioner/{user}")}],
            "payload": [{"contentString": text}]
        })
    }
}

/// A message posted as a Communication is the `pnotes` row OpenEMR's Messages screen writes,
/// in the recipient's inbox as OpenEMR queries it; the recipient's read is their receipt, and
/// no one else learns the message exists.
#[tokio::test]
async fn a_message_sent_through_fhir_is_in_openemrs_inbox_and_read_back_with_its_receipt() {
    let mail = Mail::new().await;
    let (status, sent) = mail
        .send(
            &mail.garcia,
            "POST",
            "/Communication",
            Some(mail.message("nkim", 1, "K+ is 5.9, please recheck.").await),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{sent}");
    let id: i64 = sent["id"].as_str().unwrap().parse().unwrap();
    let inbox: Vec<(i64, String, String, String, i64, String)> = sqlx::query_as(
        "SELECT id, user, title, message_status, pid, body FROM pnotes \
         WHERE assigned_to = 'nkim' AND deleted != 1 AND activity = 1 AND message_status != 'Done'",
    )
    .fetch_all(&mail.db.pool)
    .await
    .unwrap();
    let (_, user, title, status_db, pid, body) =
        inbox.into_iter().find(|r| r.0 == id).expect("in nkim's inbox");
    assert_eq!(
        (user.as_str(), title.as_str(), status_db.as_str(), pid),
        ("drgarcia", "Lab Results", "New", 1)
    );
    assert!(body.ends_with("(drgarcia to nkim) K+ is 5.9, please recheck."), "{body}");
    assert_eq!(sent["payload"][0]["contentString"], body.trim_start());
    assert_eq!(sent["sender"]["display"], "drgarcia");
    assert_eq!(sent["status"], "in-progress");
    assert!(sent.get("received").is_none());

    let nurse = tokens(&mail.db, NURSE).await.0;
    let (status, read) = mail.send(&nurse, "GET", &format!("/Communication/{id}"), None).await;
    assert_eq!(status, StatusCode::OK, "{read}");
    assert!(read["received"].is_string(), "the recipient's read is their receipt: {read}");
    let now: String = sqlx::query_scalar("SELECT message_status FROM pnotes WHERE id = ?")
        .bind(id)
        .fetch_one(&mail.db.pool)
        .await
        .unwrap();
    assert_eq!(now, "Read");
    let okafor = tokens(&mail.db, OKAFOR).await.0;
    let (status, _) = mail.send(&okafor, "GET", &format!("/Communication/{id}"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "a third user is not told the message exists");
    let audited = mail
        .db
        .scalar("SELECT COUNT(*) FROM log WHERE category = 'Clinical Mail' AND event = 'patient-record-insert' AND patient_id = 1")
        .await;
    assert_eq!(audited, 1);
}

#[tokio::test]
async fn a_bad_message_is_refused_naming_its_element_and_nothing_is_sent() {
    let mail = Mail::new().await;
    let good = mail.message("nkim", 1, "text").await;
    let mut cases = Vec::new();
    let mut two = good.clone();
    two["recipient"] = json!([good["recipient"][0], good["recipient"][0]]);
    cases.push((two, "recipient"));
    let mut stranger = good.clone();
    stranger["recipient"][0]["reference"] = format!("Practitioner/{}", uuid::Uuid::new_v4()).into();
    cases.push((stranger, "recipient"));
    let mut kind = good.clone();
    kind["category"][0]["text"] = "Gossip".into();
    cases.push((kind, "category"));
    let mut silent = good.clone();
    silent["payload"] = json!([{"contentString": "  "}]);
    cases.push((silent, "payload"));
    let mut nobody = good.clone();
    nobody["subject"]["reference"] = format!("Patient/{}", uuid::Uuid::new_v4()).into();
    cases.push((nobody, "subject"));
    let mut draft = good;
    draft["status"] = "preparation".into();
    cases.push((draft, "status"));
    let before = mail.db.scalar("SELECT COUNT(*) FROM pnotes").await;
    for (body, element) in cases {
        let (status, outcome) = mail.send(&mail.garcia, "POST", "/Communication", Some(body)).await;
        assert_eq!(
            (status, outcome["issue"][0]["expression"][0].as_str()),
            (StatusCode::BAD_REQUEST, Some(element)),
            "{outcome}"
        );
    }
    assert_eq!(mail.db.scalar("SELECT COUNT(*) FROM pnotes").await, before);
}

/// A mailbox search pages by cursor to its end, every thread once, newest first.
#[tokio::test]
async fn a_mailbox_search_pages_through_every_thread_once() {
    let mail = Mail::new().await;
    for i in 0..5 {
        let (status, body) = mail
            .send(
                &mail.garcia,
                "POST",
                "/Communication",
                Some(mail.message("nkim", 1 + i % 2, &format!("m{i}")).await),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let mine = mail.db.scalar("SELECT COUNT(*) FROM pnotes WHERE deleted != 1 AND (user = 'drgarcia' OR assigned_to = 'drgarcia')").await;
    let (mut seen, mut path) = (Vec::new(), "/Communication?_count=2".to_string());
    loop {
        let (status, bundle) = mail.send(&mail.garcia, "GET", &path, None).await;
        assert_eq!(status, StatusCode::OK, "{bundle}");
        for entry in bundle["entry"].as_array().into_iter().flatten() {
            seen.push(entry["resource"]["id"].as_str().unwrap().parse::<i64>().unwrap());
        }
        match bundle["link"].as_array().unwrap().iter().find(|l| l["relation"] == "next") {
            Some(next) => {
                path =
                    next["url"].as_str().unwrap().strip_prefix("http://ehr.example/fhir/r4").unwrap().into()
            }
            None => break,
        }
    }
    assert_eq!(seen.len() as i64, mine);
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), seen.len(), "each thread once");
    assert!(seen.windows(2).all(|w| w[0] > w[1]), "newest first: {seen:?}");
    let patient = mail.uuid("SELECT uuid FROM patient_data WHERE pid = 2").await;
    let (_, about) =
        mail.send(&mail.garcia, "GET", &format!("/Communication?patient={patient}&_count=100"), None).await;
    let subjects: HashSet<&str> = about["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["resource"]["subject"]["reference"].as_str().unwrap())
        .collect();
    assert_eq!(subjects, HashSet::from([format!("Patient/{patient}").as_str()]));
}
