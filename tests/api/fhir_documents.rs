//! FHIR DocumentReference and Binary: filed clinical notes (text inline) and patient documents
//! (bytes in a Binary), under the rights the rest of the API asks for, not OpenEMR's
//! `admin|super`; and clinical notes written through FHIR as the transcription filing writes them.

use base64::{Engine, engine::general_purpose::STANDARD as BASE64};
use poem::http::StatusCode;
use serde_json::{Value, json};

use crate::{
    chart::{FRONT, GARCIA, PID},
    documents::{Docs, FHIR_EXPORT, MEDICAL_RECORD, Reply, pdf},
};

struct Notes {
    docs: Docs,
    token: String,
    patient: String,
    encounter: String,
    number: i64,
}

impl Notes {
    async fn new() -> Self {
        let docs = Docs::new().await;
        let token = docs.token(GARCIA).await;
        let db = &docs.db;
        let number = db.scalar(&format!("SELECT MAX(encounter) FROM form_encounter WHERE pid = {PID}")).await;
        let uuid = |sql: String| async move {
            let bytes: Vec<u8> =
                sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).fetch_one(&db.pool).await.unwrap();
            uuid::Uuid::from_slice(&bytes).unwrap().to_string()
        };
        let patient = uuid(format!("SELECT uuid FROM patient_data WHERE pid = {PID}")).await;
        let encounter = uuid(format!("SELECT uuid FROM form_encounter WHERE encounter = {number}")).await;
        Self { docs, token, patient, encounter, number }
    }

    async fn send(&self, token: &str, method: &str, path: &str, body: Option<Value>, accept: &str) -> Reply {
        let env = self.docs.env();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let client = self.docs.db.client_with(&env);
        let method = poem::http::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = client
            .request(method, format!("/fhir/r4{path}"))
            .header("host", "ehr.example")
            .header("accept", accept)
            .header("authorization", format!("Bearer {token}"));
        if let Some(body) = body {
            req = req.header("content-type", "application/fhir+json").body(body.to_string());
        }
        let resp = req.send().await;
        let status = resp.0.status();
        let headers = resp.0.headers().clone();
        let body = resp.0.into_body().into_vec().await.unwrap();
        Reply { status, headers, body }
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        let reply = self.send(&self.token, "GET", path, None, "application/fhir+json").await;
        (reply.status, reply.json())
    }

    async fn post(&self, body: Value) -> (StatusCode, Value) {
        let reply =
            self.send(&self.token, "POST", "/DocumentReference", Some(body), "application/fhir+json").await;
        (reply.status, reply.json())
    }

    fn note(&self, text: &str) -> Value {
        json!({
            "resourceType": "DocumentReference",
            "status": "current",
            "type": {"coding": [{"system": "http://loinc.org", "code": "34746-8"}]},
            "subject": {"reference": format!("Patient/{}", self.patient)},
            "content": [{"attachment": {"contentType": "text/plain; charset=utf-8", "data": BASE64.encode(text)}}],
            "context": {"encounter": [{"reference": format!("Encounter/{}", self.encounter)}]}
        })
    }

    async fn count(&self, sql: &str) -> i64 {
        self.docs.db.scalar(sql).await
    }

    async fn ids(&self, query: &str) -> Vec<String> {
        let (status, bundle) = self.get(&format!("/DocumentReference?patient={}{query}", self.patient)).await;
        assert_eq!(status, StatusCode::OK, "{bundle}");
        let entries = bundle["entry"].as_array().map_or(0, Vec::len);
        assert_eq!(bundle["total"].as_u64(), Some(entries as u64));
        bundle["entry"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| e["resource"]["id"].as_str().unwrap().into())
            .collect()
    }
}

fn text_of(reference: &Value) -> String {
    let data = reference["content"][0]["attachment"]["data"].as_str().unwrap();
    String::from_utf8(BASE64.decode(data).unwrap()).unwrap()
}

/// A note posted through FHIR lands in the encounter's Clinical Notes form, as OpenEMR writes
/// it, by the signed-in user; it reads back as the DocumentReference OpenEMR's FHIR API makes
/// of it, by a clinician who is not `admin|super`.
#[tokio::test]
async fn a_note_written_through_fhir_is_filed_into_the_visit_and_read_back() {
    let notes = Notes::new().await;
    let text = "Nurse note: dressing changed, wound clean.\nSeen with Ms. Núñez.";
    let (status, created) = notes.post(notes.note(text)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    assert_eq!(text_of(&created), text);
    assert_eq!(created["type"]["coding"][0]["code"], "34746-8");
    assert_eq!(created["category"][0]["coding"][0]["code"], "clinical-note");
    assert_eq!(created["status"], "current");
    assert_eq!(created["subject"]["reference"], format!("Patient/{}", notes.patient));
    assert_eq!(created["context"]["encounter"][0]["reference"], format!("Encounter/{}", notes.encounter));
    let stored = notes
        .docs
        .text(&format!(
            "SELECT n.code, n.codetext, n.clinical_notes_type, n.user, n.description, CAST(n.activity AS CHAR), \
             CAST(f.formdir AS CHAR), n.encounter FROM form_clinical_notes n \
             JOIN forms f ON f.form_id = n.form_id AND f.formdir = 'clinical_notes' \
             WHERE n.uuid = UNHEX(REPLACE('{id}', '-', ''))"
        ))
        .await;
    let expected = [
        "LOINC:34746-8",
        "Nurse Note",
        "nurse_note",
        "drgarcia",
        text,
        "1",
        "clinical_notes",
        &notes.number.to_string(),
    ];
    assert_eq!(stored, expected.map(|v| Some(v.to_string())));
    let registered = notes
        .count(&format!(
            "SELECT COUNT(*) FROM uuid_registry WHERE table_name = 'form_clinical_notes' \
             AND uuid = UNHEX(REPLACE('{id}', '-', ''))"
        ))
        .await;
    assert_eq!(registered, 1, "the uuid is registered as OpenEMR registers it");
    assert_eq!(
        notes
            .count(&format!(
                "SELECT COUNT(*) FROM log WHERE patient_id = {PID} AND event = 'patient-record-insert' \
                 AND category = 'Clinical Note'"
            ))
            .await,
        1
    );

    let (status, read) = notes.get(&format!("/DocumentReference/{id}")).await;
    assert_eq!(status, StatusCode::OK, "{read}");
    assert_eq!(read, created);
    assert!(notes.ids("&category=clinical-note").await.contains(&id));
    assert!(notes.ids("&type=http://loinc.org|34746-8").await.contains(&id));
    assert!(!notes.ids("&type=11506-3").await.contains(&id));
    assert!(!notes.ids("&date=lt2000-01-01").await.contains(&id));
}

#[tokio::test]
async fn a_bad_note_is_refused_naming_its_element_and_nothing_is_written() {
    let notes = Notes::new().await;
    let other = notes.count(&format!("SELECT MIN(encounter) FROM form_encounter WHERE pid <> {PID}")).await;
    let other: Vec<u8> = sqlx::query_scalar("SELECT uuid FROM form_encounter WHERE encounter = ?")
        .bind(other)
        .fetch_one(&notes.docs.db.pool)
        .await
        .unwrap();
    let good = notes.note("text");
    let mut cases = Vec::new();
    let mut elsewhere = good.clone();
    elsewhere["context"]["encounter"][0]["reference"] =
        format!("Encounter/{}", uuid::Uuid::from_slice(&other).unwrap()).into();
    cases.push((elsewhere, "context.encounter"));
    let mut no_visit = good.clone();
    no_visit.as_object_mut().unwrap().remove("context");
    cases.push((no_visit, "context.encounter"));
    let mut snomed = good.clone();
    snomed["type"]["coding"][0]["system"] = "http://snomed.info/sct".into();
    cases.push((snomed, "type"));
    let mut unlisted = good.clone();
    unlisted["type"]["coding"][0]["code"] = "00000-0".into();
    cases.push((unlisted, "type"));
    let mut empty = good.clone();
    empty["content"][0]["attachment"]["data"] = BASE64.encode("  \n").into();
    cases.push((empty, "content[0].attachment.data"));
    let mut not_base64 = good.clone();
    not_base64["content"][0]["attachment"]["data"] = "%%%".into();
    cases.push((not_base64, "content[0].attachment.data"));
    let mut huge = good.clone();
    huge["content"][0]["attachment"]["data"] = BASE64.encode("x".repeat(70_000)).into();
    cases.push((huge, "content[0].attachment.data"));
    let mut control = good.clone();
    control["content"][0]["attachment"]["data"] = BASE64.encode("dose\u{7} 5 mg").into();
    cases.push((control, "content[0].attachment.data"));
    let mut html = good.clone();
    html["content"][0]["attachment"]["contentType"] = "text/html".into();
    cases.push((html, "content[0].attachment.contentType"));
    let mut nobody = good.clone();
    nobody["subject"]["reference"] = format!("Patient/{}", uuid::Uuid::new_v4()).into();
    cases.push((nobody, "subject"));
    let mut two = good;
    two["content"] = json!([two["content"][0], two["content"][0]]);
    cases.push((two, "content"));
    let before = notes.count("SELECT COUNT(*) FROM form_clinical_notes").await;
    for (body, element) in cases {
        let (status, outcome) = notes.post(body).await;
        assert_eq!(
            (status, outcome["issue"][0]["expression"][0].as_str()),
            (StatusCode::BAD_REQUEST, Some(element)),
            "{outcome}"
        );
    }
    assert_eq!(notes.count("SELECT COUNT(*) FROM form_clinical_notes").await, before);
    let front = notes.docs.token(FRONT).await;
    let reply = notes.send(&front, "POST", "/DocumentReference", Some(notes.note("x")), "*/*").await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "front desk staff write no clinical notes");
    assert_eq!(notes.count("SELECT COUNT(*) FROM form_clinical_notes").await, before);
}

/// Notes posted at once into a visit that has no Clinical Notes form yet share one form, as
/// OpenEMR keeps one per encounter; none is lost.
#[tokio::test]
async fn notes_posted_at_once_share_the_visits_one_form() {
    let notes = Notes::new().await;
    let number = notes.number;
    let forms = format!(
        "SELECT COUNT(*) FROM forms WHERE formdir = 'clinical_notes' AND encounter = {number} AND deleted = 0"
    );
    assert_eq!(notes.count(&forms).await, 0);
    let posts = (0..6).map(|i| notes.post(notes.note(&format!("note {i}"))));
    for (status, body) in futures_util::future::join_all(posts).await {
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    assert_eq!(notes.count(&forms).await, 1);
    let filed =
        format!("SELECT COUNT(DISTINCT form_id) FROM form_clinical_notes WHERE encounter = '{number}'");
    assert_eq!(notes.count(&filed).await, 1);
    assert_eq!(
        notes.count(&format!("SELECT COUNT(*) FROM form_clinical_notes WHERE encounter = '{number}'")).await,
        6
    );
}

/// A patient document is a DocumentReference whose attachment points at a Binary holding its
/// bytes, decrypted and checked; documents in categories the caller may not open are left out
/// of searches and refused on reading.
#[tokio::test]
async fn a_patient_document_is_a_document_reference_with_its_bytes_in_a_binary() {
    let notes = Notes::new().await;
    let bytes = pdf("lab report");
    let shown = notes.docs.uploaded(&notes.token, MEDICAL_RECORD, "labs.pdf", bytes.clone()).await;
    let admin = notes.docs.token(crate::auth::ADMIN).await;
    let hidden = notes.docs.uploaded(&admin, FHIR_EXPORT, "export.pdf", pdf("export")).await;
    let uuid_of = |id: i64| {
        let db = &notes.docs.db;
        async move {
            let bytes: Vec<u8> = sqlx::query_scalar("SELECT uuid FROM documents WHERE id = ?")
                .bind(id)
                .fetch_one(&db.pool)
                .await
                .unwrap();
            uuid::Uuid::from_slice(&bytes).unwrap().to_string()
        }
    };
    let (shown, hidden) = (uuid_of(shown).await, uuid_of(hidden).await);
    let found = notes.ids("").await;
    assert!(found.contains(&shown) && !found.contains(&hidden), "{found:?}");
    assert_eq!(notes.ids("&category=Medical%20Record").await, std::slice::from_ref(&shown));
    assert!(!notes.ids("&category=clinical-note").await.contains(&shown));

    let (status, reference) = notes.get(&format!("/DocumentReference/{shown}")).await;
    assert_eq!(status, StatusCode::OK, "{reference}");
    let attachment = &reference["content"][0]["attachment"];
    assert_eq!(attachment["contentType"], "application/pdf");
    assert_eq!(attachment["title"], "labs.pdf");
    let url = attachment["url"].as_str().unwrap();
    assert_eq!(url, format!("http://ehr.example/fhir/r4/Binary/{shown}"));
    let path = url.strip_prefix("http://ehr.example/fhir/r4").unwrap();
    let raw = notes.send(&notes.token, "GET", path, None, "*/*").await;
    assert_eq!(
        (raw.status, raw.headers["content-type"].to_str().unwrap()),
        (StatusCode::OK, "application/pdf")
    );
    assert_eq!(raw.body, bytes);
    let (status, binary) = notes.get(path).await;
    assert_eq!((status, binary["resourceType"].as_str()), (StatusCode::OK, Some("Binary")));
    assert_eq!(BASE64.decode(binary["data"].as_str().unwrap()).unwrap(), bytes);

    for path in [format!("/DocumentReference/{hidden}"), format!("/Binary/{hidden}")] {
        let (status, outcome) = notes.get(&path).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}: {outcome}");
    }
    let unknown = uuid::Uuid::new_v4();
    for path in [format!("/DocumentReference/{unknown}"), format!("/Binary/{unknown}")] {
        assert_eq!(notes.get(&path).await.0, StatusCode::NOT_FOUND, "{path}");
    }
}
