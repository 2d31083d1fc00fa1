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
