//! A filed transcription as an HL7 v2.5.1 `MDM^T02`, read back with `hl7-parser`.

use poem::http::StatusCode;
use serde_json::json;

use crate::{
    patients::Api,
    transcriptions::{encounter_for, new_transcription},
};

const GARCIA: (&str, &str) = ("drgarcia", "Physician-Garcia-2");
const FRONT: (&str, &str) = ("fdoconnor", "Front-OConnor-6");

async fn message(api: &Api, id: &str) -> (StatusCode, String, String) {
    let resp = api
        .db
        .client()
        .get(format!("/api/transcriptions/{id}/hl7"))
        .header("authorization", format!("Bearer {}", api.token))
        .send()
        .await;
    let status = resp.0.status();
    let content_type = resp.0.content_type().unwrap_or_default().to_string();
    (status, content_type, resp.0.into_body().into_string().await.unwrap())
}

#[tokio::test]
async fn a_filed_note_is_an_mdm_t02_whose_text_survives_hl7_escaping() {
    let api = Api::as_user(GARCIA).await;
    let encounter = encounter_for(&api, 1).await;
    let mut body = new_transcription(1, Some(encounter));
    body["segments"] = json!([
        {"seq": 0, "start_ms": 0, "end_ms": 1000, "text": "K+ 5.9 | recheck ^ soon & call ~ family \\ today"},
        {"seq": 1, "start_ms": 1000, "end_ms": 2000, "text": "Plan: repeat BMP in 1 week."}
    ]);
    let (status, created) = api.call("POST", "/api/transcriptions/", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    let (status, problem, _) = message(&api, &id).await;
    assert_eq!(status, StatusCode::CONFLICT, "a draft has no document to send: {problem}");
    for action in ["submit", "approve", "integrate_with_openemr"] {
        let (status, body) = api.call("POST", &format!("/api/transcriptions/{id}/{action}/"), None).await;
        assert_eq!(status, StatusCode::OK, "{action}: {body}");
    }
    let (status, content_type, text) = message(&api, &id).await;
    assert_eq!((status, content_type.as_str()), (StatusCode::OK, "application/hl7-v2"), "{text}");

    let parsed = hl7_parser::Message::parse(&text).expect("a structurally valid HL7 v2 message");
    let field = |segment: &str, n: usize| {
        parsed
            .segment(segment)
            .and_then(|s| s.field(n))
            .map(|f| parsed.separators.decode(f.raw_value()).to_string())
    };
    assert_eq!(parsed.query("MSH.9").map(|f| f.raw_value()), Some("MDM^T02^MDM_T02"));
    assert_eq!(field("MSH", 12).as_deref(), Some("2.5.1"));
    let (pubpid, lname): (String, String) =
        sqlx::query_as("SELECT pubpid, lname FROM patient_data WHERE pid = 1")
            .fetch_one(&api.db.pool)
            .await
            .unwrap();
    assert_eq!(parsed.query("PID.3.1").map(|c| c.raw_value().to_string()), Some(pubpid));
    assert_eq!(
        parsed.query("PID.5.1").map(|c| parsed.separators.decode(c.raw_value()).to_string()),
        Some(lname)
    );
    assert_eq!(field("PV1", 19), Some(encounter.to_string()));
    let uuid: Vec<u8> = sqlx::query_scalar(
        "SELECT n.uuid FROM form_clinical_notes n JOIN mmt_transcriptions t ON t.filed_note_id = n.id WHERE t.id = UNHEX(REPLACE(?, '-', ''))",
    )
    .bind(&id)
    .fetch_one(&api.db.pool)
    .await
    .unwrap();
    assert_eq!(field("TXA", 12), Some(uuid::Uuid::from_slice(&uuid).unwrap().to_string()));
    assert_eq!(parsed.query("TXA.2.1").map(|c| c.raw_value()), Some("11506-3"));
    let lines: Vec<String> = parsed
        .segments()
        .filter(|s| s.name == "OBX")
        .map(|s| parsed.separators.decode(s.field(5).unwrap().raw_value()).to_string())
        .collect();
    assert_eq!(lines, ["K+ 5.9 | recheck ^ soon & call ~ family \\ today", "Plan: repeat BMP in 1 week."]);
    let audited = api
        .db
        .scalar("SELECT COUNT(*) FROM log WHERE patient_id = 1 AND category = 'Clinical Note' AND FROM_BASE64(comments) LIKE '%MDM^T02%'")
        .await;
    assert_eq!(audited, 1);

    let front = api.as_other(FRONT).await;
    assert_eq!(message(&front, &id).await.0, StatusCode::FORBIDDEN);
}

/// An MLLP receiver started by scripts/test.sh (python-hl7's server, tests/mllp/listener.py).
fn receiver() -> (String, std::path::PathBuf) {
    let addr = std::env::var("MMT_TEST_MLLP_ADDR")
        .expect("MMT_TEST_MLLP_ADDR is not set: run the tests with scripts/test.sh");
    let dir = std::env::var("MMT_TEST_MLLP_DIR")
        .expect("MMT_TEST_MLLP_DIR is not set: run the tests with scripts/test.sh");
    (addr, dir.into())
}

fn drop_folder() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("mmt-hl7-drop-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Files a transcription whose text is `text` through a server that sends filed notes, with job
/// workers running; returns the hl7.send job once it has settled.
async fn filed_and_sent(
    text: &str,
    drop: &std::path::Path,
) -> (Api, (String, u32, Option<String>, Option<String>)) {
    let (addr, _) = receiver();
    let api = Api::as_user(GARCIA).await;
    let drop = drop.to_str().unwrap().to_string();
    let settings = [
        ("MMT_HL7_MLLP_ADDR", addr.as_str()),
        ("MMT_HL7_DROP_DIR", drop.as_str()),
        ("MMT_JOB_POLL_MS", "20"),
        ("MMT_JOB_BACKOFF_MS", "100"),
        ("MMT_JOB_BACKOFF_MAX_SECS", "1"),
    ];
    let state = api.db.state_with(&settings);
    let workers = mmt_sidecar::service::jobs::Workers::new(state.clone()).spawn(1);
    let encounter = encounter_for(&api, 1).await;
    let mut body = new_transcription(1, Some(encounter));
    body["segments"] = json!([{"seq": 0, "start_ms": 0, "end_ms": 1000, "text": text}]);
    let client = poem::test::TestClient::new(mmt_sidecar::app::build_app(state));
    let call = |path: String, body: Option<serde_json::Value>| {
        let req = client.post(path).header("authorization", format!("Bearer {}", api.token));
        async move {
            let resp = match body {
                Some(b) => req.body_json(&b).send().await,
                None => req.send().await,
            };
            assert!(resp.0.status().is_success(), "{}", resp.0.status());
            resp.json().await.value().deserialize::<serde_json::Value>()
        }
    };
    let id = call("/api/transcriptions/".into(), Some(body)).await["id"].as_str().unwrap().to_string();
    for action in ["submit", "approve", "integrate_with_openemr"] {
        call(format!("/api/transcriptions/{id}/{action}/"), None).await;
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let job = loop {
        let job: Option<(String, u32, Option<String>, Option<String>)> = sqlx::query_as(
            "SELECT state, attempts, result, error FROM mmt_jobs WHERE kind = 'hl7.send' AND state IN ('succeeded', 'failed')",
        )
        .fetch_optional(&api.db.pool)
        .await
        .unwrap();
        if let Some(job) = job {
            break job;
        }
        assert!(std::time::Instant::now() < deadline, "the hl7.send job did not settle in 20 s");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    workers.shutdown(std::time::Duration::from_secs(5)).await;
    (api, job)
}

/// A filed note goes to the configured receiver as a job: sent again after the receiver's `AE`
/// (the same message, same control id) until its `AA`, and written to the drop folder.
#[tokio::test]
async fn filing_sends_the_note_over_mllp_until_the_receiver_accepts_it() {
    let drop = drop_folder();
    let (api, (state, attempts, result, _)) = filed_and_sent("BUSY-ONCE: wound healing well.", &drop).await;
    assert_eq!((state.as_str(), attempts), ("succeeded", 2), "AE first, then AA");
    let result: serde_json::Value = serde_json::from_str(&result.unwrap()).unwrap();
    assert_eq!(result["ack"], "AA");
    let control_id = result["control_id"].as_str().unwrap();
    let received = std::fs::read_to_string(receiver().1.join(format!("{control_id}.hl7"))).unwrap();
    assert!(
        received.contains("OBX|1|TX|11506-3^Progress Note^LN||BUSY-ONCE: wound healing well."),
        "{received}"
    );
    let dropped = std::fs::read_to_string(drop.join(format!("{control_id}.hl7"))).unwrap();
    assert!(dropped.starts_with("MSH|") && dropped.contains(&format!("|{control_id}|P|2.5.1")));
    std::fs::remove_dir_all(&drop).ok();
    let audited = api
        .db
        .scalar("SELECT COUNT(*) FROM log WHERE user = 'mmt-sidecar' AND FROM_BASE64(comments) LIKE '%as HL7 MDM^T02%'")
        .await;
    assert_eq!(audited, 1);
}

#[tokio::test]
async fn a_receivers_rejection_fails_the_send_at_once_and_says_why() {
    let drop = drop_folder();
    let (_, (state, attempts, _, error)) = filed_and_sent("REJECT-ME please", &drop).await;
    std::fs::remove_dir_all(&drop).ok();
    assert_eq!((state.as_str(), attempts), ("failed", 1));
    assert!(error.unwrap().contains("AR"));
}
