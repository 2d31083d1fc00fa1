use std::collections::HashSet;

use poem::http::StatusCode;
use serde_json::{Value, json};

use crate::{auth::tokens, patients::Api};

const GARCIA: (&str, &str) = ("drgarcia", "Physician-Garcia-2");
const NURSE: (&str, &str) = ("nkim", "Clinician-Kim-4");

impl Api {
    pub(crate) async fn as_other(&self, user: (&str, &str)) -> Api {
        let (token, _) = tokens(&self.db, user).await;
        Api { db: self.db.clone_handle(), token }
    }

    async fn call_with(
        &self,
        method: &str,
        path: &str,
        if_match: Option<u32>,
        body: Option<Value>,
    ) -> (StatusCode, Value, Option<String>) {
        let client = self.db.client();
        let mut req = client
            .request(poem::http::Method::from_bytes(method.as_bytes()).unwrap(), path)
            .header("authorization", format!("Bearer {}", self.token));
        if let Some(v) = if_match {
            req = req.header("if-match", format!("\"{v}\""));
        }
        if let Some(body) = body {
            req = req.body_json(&body);
        }
        let resp = req.send().await;
        let status = resp.0.status();
        let etag = resp.0.headers().get("etag").map(|v| v.to_str().unwrap().to_string());
        let text = resp.0.into_body().into_string().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null), etag)
    }
}

pub(crate) async fn encounter_for(api: &Api, pid: i64) -> i64 {
    let (status, body) =
        api.call("POST", "/api/encounters/", Some(json!({"pid": pid, "facility_id": 3}))).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["encounter"].as_i64().unwrap()
}

pub(crate) fn new_transcription(pid: i64, encounter: Option<i64>) -> Value {
    json!({
        "id": uuid::Uuid::new_v4().to_string(),
        "pid": pid,
        "encounter": encounter,
        "title": "Follow-up visit",
        "segments": [
            {"seq": 0, "start_ms": 0, "end_ms": 4200, "speaker_label": "SPEAKER_0", "speaker_role": "clinician", "text": "How is the cough?", "confidence": 0.97},
            {"seq": 1, "start_ms": 4300, "end_ms": 9000, "speaker_label": "SPEAKER_1", "speaker_role": "patient", "text": "Better, mostly at night.", "confidence": 0.88}
        ]
    })
}

async fn create(api: &Api, body: &Value) -> (String, u32) {
    let (status, created) = api.call("POST", "/api/transcriptions/", Some(body.clone())).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    (created["id"].as_str().unwrap().to_string(), created["version"].as_u64().unwrap() as u32)
}

async fn act(api: &Api, id: &str, action: &str, body: Option<Value>) -> (StatusCode, Value) {
    api.call("POST", &format!("/api/transcriptions/{id}/{action}/"), body).await
}

#[tokio::test]
async fn the_happy_path_files_a_progress_note_into_the_encounter_as_openemr_does() {
    let api = Api::as_user(GARCIA).await;
    let encounter = encounter_for(&api, 1).await;
    let (id, _) = create(&api, &new_transcription(1, Some(encounter))).await;
    let (_, got) = api.get(&format!("/api/transcriptions/{id}/")).await;
    assert_eq!(got["status"], "draft");
    assert_eq!(got["text"], "How is the cough?\nBetter, mostly at night.");
    assert_eq!(got["segments"].as_array().unwrap().len(), 2);
    assert_eq!(got["allowed_actions"], json!(["submit", "cancel"]));
    for (action, status) in
        [("submit", "pending_review"), ("approve", "approved"), ("integrate_with_openemr", "filed")]
    {
        let (code, body) = act(&api, &id, action, None).await;
        assert_eq!(code, StatusCode::OK, "{action}: {body}");
        assert_eq!(body["status"], status);
    }
    let (_, filed) = api.get(&format!("/api/transcriptions/{id}/")).await;
    let note_id = filed["filed"]["note_id"].as_i64().unwrap();
    let form_id = filed["filed"]["form_id"].as_i64().unwrap();

    // Reference: interface/forms/clinical_notes/save.php and ClinicalNotesService.
    let note: (i64, i64, String, String, String, String, String, String, i64, String) = sqlx::query_as(
        "SELECT form_id, pid, encounter, user, groupname, code, codetext, description, activity, clinical_notes_type \
         FROM form_clinical_notes WHERE id = ?",
    )
    .bind(note_id)
    .fetch_one(&api.db.pool)
    .await
    .unwrap();
    assert_eq!(note.0, form_id);
    assert_eq!((note.1, note.2.as_str()), (1, encounter.to_string().as_str()));
    assert_eq!((note.3.as_str(), note.4.as_str()), ("drgarcia", "Default"));
    assert_eq!((note.5.as_str(), note.6.as_str()), ("LOINC:11506-3", "Progress Note"));
    assert_eq!(note.7, "How is the cough?\nBetter, mostly at night.");
    assert_eq!((note.8, note.9.as_str()), (1, "progress_note"));
    let form: (String, i64, i64, i64, String, i64) = sqlx::query_as(
        "SELECT form_name, form_id, pid, encounter, formdir, deleted FROM forms WHERE formdir = 'clinical_notes' AND encounter = ?",
    )
    .bind(encounter)
    .fetch_one(&api.db.pool)
    .await
    .unwrap();
    assert_eq!(form, ("Clinical Notes Form".into(), form_id, 1, encounter, "clinical_notes".into(), 0));
    let registered = api
        .db
        .scalar(&format!(
            "SELECT COUNT(*) FROM uuid_registry r JOIN form_clinical_notes n ON n.uuid = r.uuid \
             WHERE n.id = {note_id} AND r.table_name = 'form_clinical_notes'"
        ))
        .await;
    assert_eq!(registered, 1);

    let (id2, _) = create(&api, &new_transcription(1, Some(encounter))).await;
    for action in ["submit", "approve", "integrate_with_openemr"] {
        assert_eq!(act(&api, &id2, action, None).await.0, StatusCode::OK);
    }
    let forms = api
        .db
        .scalar(&format!(
            "SELECT COUNT(*) FROM forms WHERE formdir = 'clinical_notes' AND encounter = {encounter}"
        ))
        .await;
    assert_eq!(forms, 1, "a second note reuses the encounter's Clinical Notes form");
    assert_eq!(
        api.db.scalar(&format!("SELECT COUNT(*) FROM form_clinical_notes WHERE form_id = {form_id}")).await,
        2
    );
}

#[tokio::test]
async fn rejection_sends_the_note_back_for_another_round() {
    let api = Api::as_user(GARCIA).await;
    let (id, _) = create(&api, &new_transcription(2, None)).await;
    act(&api, &id, "submit", None).await;
    let (status, body) = act(&api, &id, "reject", Some(json!({"reason": "  "}))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "a reason is required: {body}");
    let (status, body) = act(&api, &id, "reject", Some(json!({"reason": "Add the exam findings"}))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (body["status"].as_str(), body["reject_reason"].as_str()),
        (Some("rejected"), Some("Add the exam findings"))
    );
    assert_eq!(body["allowed_actions"], json!(["reopen", "cancel"]));
    let (_, body) = act(&api, &id, "reopen", None).await;
    assert_eq!(body["status"], "draft");
    let version = body["version"].as_u64().unwrap() as u32;
    let (status, body, _) = api
        .call_with(
            "PATCH",
            &format!("/api/transcriptions/{id}/"),
            Some(version),
            Some(json!({"text": "Exam: lungs clear.", "reason": "added exam"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, body) = act(&api, &id, "submit", None).await;
    assert_eq!(body["status"], "pending_review");
    let (_, revisions) = api.get(&format!("/api/transcriptions/{id}/revisions/")).await;
    let reasons: Vec<&str> =
        revisions.as_array().unwrap().iter().map(|r| r["reason"].as_str().unwrap()).collect();
    assert_eq!(reasons, ["created", "added exam"]);
}

/// The author hears of a rejection by someone else (not of their own), on topic `notification`.
#[tokio::test]
async fn a_rejection_by_another_reviewer_notifies_the_author() {
    let api = Api::as_user(GARCIA).await;
    let (id, _) = create(&api, &new_transcription(2, None)).await;
    act(&api, &id, "submit", None).await;
    let admin = api.as_other(crate::auth::ADMIN).await;
    let (status, body) = act(&admin, &id, "reject", Some(json!({"reason": "Add the exam findings"}))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, page) = api.get("/api/notifications/").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let told: Vec<_> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n["kind"].clone(), n["subject"].clone(), n["subject_id"].clone(), n["by"].clone()))
        .collect();
    assert_eq!(
        told,
        [(json!("transcription.changes_requested"), json!("transcription"), json!(id), json!("admin"))]
    );

    act(&api, &id, "reopen", None).await;
    act(&api, &id, "submit", None).await;
    act(&api, &id, "reject", Some(json!({"reason": "Spelling"}))).await;
    let (_, page) = api.get("/api/notifications/").await;
    assert_eq!(page["items"].as_array().unwrap().len(), 1, "rejecting one's own note tells no one");
}

#[tokio::test]
async fn cancel_ends_drafts_and_rejected_notes_only() {
    let api = Api::as_user(GARCIA).await;
    let (draft, _) = create(&api, &new_transcription(3, None)).await;
    assert_eq!(act(&api, &draft, "cancel", None).await.1["status"], "cancelled");
    let (rejected, _) = create(&api, &new_transcription(3, None)).await;
    act(&api, &rejected, "submit", None).await;
    act(&api, &rejected, "reject", Some(json!({"reason": "wrong patient"}))).await;
    assert_eq!(act(&api, &rejected, "cancel", None).await.1["status"], "cancelled");
    let (pending, _) = create(&api, &new_transcription(3, None)).await;
    act(&api, &pending, "submit", None).await;
    let (status, body) = act(&api, &pending, "cancel", None).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(
        body["detail"],
        "cannot cancel a transcription that is pending_review; allowed now: approve, reject"
    );
}

#[tokio::test]
async fn illegal_transitions_are_409s_naming_the_state_and_what_is_allowed() {
    let api = Api::as_user(GARCIA).await;
    let (id, _) = create(&api, &new_transcription(4, None)).await;
    for (action, detail) in [
        ("approve", "cannot approve a transcription that is draft; allowed now: submit, cancel"),
        ("reject", "cannot reject a transcription that is draft; allowed now: submit, cancel"),
        ("reopen", "cannot reopen a transcription that is draft; allowed now: submit, cancel"),
        (
            "integrate_with_openemr",
            "cannot integrate_with_openemr a transcription that is draft; allowed now: submit, cancel",
        ),
    ] {
        let (status, body) =
            act(&api, &id, action, Some(json!({"reason": "x"})).filter(|_| action == "reject")).await;
        assert_eq!(status, StatusCode::CONFLICT, "{action}");
        assert_eq!(body["detail"], detail);
    }
    act(&api, &id, "submit", None).await;
    let (status, body, _) = api
        .call_with("PATCH", &format!("/api/transcriptions/{id}/"), Some(2), Some(json!({"title": "x"})))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "only drafts are edited: {body}");
    let (status, _) = act(&api, &id, "submit", None).await;
    assert_eq!(status, StatusCode::CONFLICT);
}

#[tokio::test]
async fn edits_need_the_current_version_in_if_match() {
    let api = Api::as_user(GARCIA).await;
    let (id, version) = create(&api, &new_transcription(5, None)).await;
    let path = format!("/api/transcriptions/{id}/");
    let (status, body, _) = api.call_with("PATCH", &path, None, Some(json!({"title": "A"}))).await;
    assert_eq!(status, StatusCode::PRECONDITION_REQUIRED, "{body}");
    let (status, _, etag) = api.call_with("PATCH", &path, Some(version), Some(json!({"title": "A"}))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(etag, Some(format!("\"{}\"", version + 1)));
    let (status, body, _) = api.call_with("PATCH", &path, Some(version), Some(json!({"title": "B"}))).await;
    assert_eq!(status, StatusCode::PRECONDITION_FAILED);
    assert!(body["detail"].as_str().unwrap().contains(&format!("now version {}", version + 1)), "{body}");
    let (_, current, etag) = api.call_with("GET", &path, None, None).await;
    assert_eq!(current["title"], "A", "the stale edit changed nothing");
    assert_eq!(etag, Some(format!("\"{}\"", version + 1)));
    let (status, body, _) = api.call_with("PUT", &path, Some(version + 1), Some(json!({"title": "C"}))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "PUT replaces and needs text: {body}");
}

/// The request's content is judged before its precondition, so a malformed edit is a 422 whatever
/// its tag; a tag this server never issued then fails the precondition like a stale one.
#[tokio::test]
async fn a_malformed_edit_is_a_422_before_its_if_match_is_judged() {
    async fn send(api: &Api, method: &str, path: &str, body: Value) -> StatusCode {
        let client = api.db.client();
        let req = client
            .request(poem::http::Method::from_bytes(method.as_bytes()).unwrap(), path)
            .header("authorization", format!("Bearer {}", api.token))
            .header("if-match", "not-a-tag")
            .body_json(&body);
        req.send().await.0.status()
    }
    let api = Api::as_user(GARCIA).await;
    let (id, _) = create(&api, &new_transcription(5, None)).await;
    let edit = format!("/api/transcriptions/{id}/");
    assert_eq!(
        send(&api, "PATCH", &edit, json!({"encounter": 999_999})).await,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(send(&api, "PATCH", &edit, json!({"title": "A"})).await, StatusCode::PRECONDITION_FAILED);
    assert_eq!(act(&api, &id, "submit", None).await.0, StatusCode::OK);
    let reject = format!("/api/transcriptions/{id}/reject/");
    assert_eq!(send(&api, "POST", &reject, json!({"reason": " "})).await, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        send(&api, "POST", &reject, json!({"reason": "Add the plan."})).await,
        StatusCode::PRECONDITION_FAILED
    );
}

#[tokio::test]
async fn creating_is_idempotent_by_the_clients_id() {
    let api = Api::as_user(GARCIA).await;
    let body = new_transcription(6, None);
    let (first_status, first) = api.call("POST", "/api/transcriptions/", Some(body.clone())).await;
    assert_eq!(first_status, StatusCode::CREATED);
    let (again_status, again) = api.call("POST", "/api/transcriptions/", Some(body.clone())).await;
    assert_eq!(again_status, StatusCode::OK);
    assert_eq!(again["id"], first["id"]);
    assert_eq!(again["created_at"], first["created_at"]);
    let mut changed = body.clone();
    changed["title"] = json!("Something else");
    let (status, problem) = api.call("POST", "/api/transcriptions/", Some(changed)).await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");

    let racing = new_transcription(6, None);
    let results = futures_util::future::join_all(
        (0..10).map(|_| api.call("POST", "/api/transcriptions/", Some(racing.clone()))),
    )
    .await;
    assert!(results.iter().all(|(s, _)| *s == StatusCode::CREATED || *s == StatusCode::OK), "{results:?}");
    assert_eq!(results.iter().filter(|(s, _)| *s == StatusCode::CREATED).count(), 1);
    let rows = api
        .db
        .scalar(&format!(
            "SELECT COUNT(*) FROM mmt_transcriptions WHERE id = UNHEX(REPLACE('{}', '-', ''))",
            racing["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(rows, 1);
}

#[tokio::test]
async fn twenty_concurrent_filings_file_exactly_one_note() {
    let api = Api::as_user(GARCIA).await;
    let encounter = encounter_for(&api, 7).await;
    let (id, _) = create(&api, &new_transcription(7, Some(encounter))).await;
    act(&api, &id, "submit", None).await;
    act(&api, &id, "approve", None).await;
    let path = format!("/api/transcriptions/{id}/integrate_with_openemr/");
    let results = futures_util::future::join_all((0..20).map(|_| api.call("POST", &path, None))).await;
    let note_ids: HashSet<i64> = results
        .iter()
        .map(|(status, body)| {
            assert_eq!(*status, StatusCode::OK, "{body}");
            body["filed"]["note_id"].as_i64().unwrap()
        })
        .collect();
    assert_eq!(note_ids.len(), 1);
    let notes = api
        .db
        .scalar(&format!("SELECT COUNT(*) FROM form_clinical_notes WHERE encounter = '{encounter}'"))
        .await;
    assert_eq!(notes, 1);
}

#[tokio::test]
async fn filing_without_a_live_encounter_is_a_409_that_writes_nothing() {
    let api = Api::as_user(GARCIA).await;
    let (unlinked, _) = create(&api, &new_transcription(8, None)).await;
    act(&api, &unlinked, "submit", None).await;
    act(&api, &unlinked, "approve", None).await;
    let before = api.db.scalar("SELECT COUNT(*) FROM form_clinical_notes").await;
    let (status, body) = act(&api, &unlinked, "integrate_with_openemr", None).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(body["detail"].as_str().unwrap().contains("no encounter"), "{body}");

    let encounter = encounter_for(&api, 8).await;
    let (linked, _) = create(&api, &new_transcription(8, Some(encounter))).await;
    act(&api, &linked, "submit", None).await;
    act(&api, &linked, "approve", None).await;
    sqlx::query("DELETE FROM form_encounter WHERE encounter = ?")
        .bind(encounter)
        .execute(&api.db.pool)
        .await
        .unwrap();
    let (status, body) = act(&api, &linked, "integrate_with_openemr", None).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(body["detail"].as_str().unwrap().contains("no longer exists"), "{body}");
    assert_eq!(api.db.scalar("SELECT COUNT(*) FROM form_clinical_notes").await, before);
    let (_, still) = api.get(&format!("/api/transcriptions/{linked}/")).await;
    assert_eq!(still["status"], "approved");
}

#[tokio::test]
async fn permissions_follow_openemr_acl() {
    let garcia = Api::as_user(GARCIA).await;
    let encounter = encounter_for(&garcia, 9).await;
    let nurse = garcia.as_other(NURSE).await;
    let (status, body) =
        nurse.call("POST", "/api/transcriptions/", Some(new_transcription(9, Some(encounter)))).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "a write into an encounter needs the right to read it: {body}");
    let (id, _) = create(&garcia, &new_transcription(9, Some(encounter))).await;
    assert_eq!(act(&garcia, &id, "submit", None).await.0, StatusCode::OK);
    let (status, body) = act(&nurse, &id, "approve", None).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "a clinician cannot approve for another provider's encounter: {body}"
    );
    assert_eq!(act(&garcia, &id, "approve", None).await.0, StatusCode::OK, "the physician (notes_a) can");

    let front = garcia.as_other(("fdoconnor", "Front-OConnor-6")).await;
    assert_eq!(front.get(&format!("/api/transcriptions/{id}/")).await.0, StatusCode::FORBIDDEN);
    assert_eq!(
        front.call("POST", "/api/transcriptions/", Some(new_transcription(9, None))).await.0,
        StatusCode::FORBIDDEN
    );
    let (_, listed) = nurse.get("/api/transcriptions/?patient=9").await;
    assert_eq!(listed["items"], serde_json::json!([]), "the nurse sees only her own notes");
    let denials = garcia
        .db
        .scalar("SELECT COUNT(*) FROM log WHERE success = 0 AND user IN ('nkim', 'fdoconnor')")
        .await;
    assert!(denials >= 3, "every denial is audited");
}

#[tokio::test]
async fn validation_names_each_bad_field() {
    let api = Api::as_user(GARCIA).await;
    let mut bad = new_transcription(999_999, Some(123_456_789));
    bad["id"] = json!("not-a-uuid");
    let (status, body) = api.call("POST", "/api/transcriptions/", Some(bad)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["errors"][0]["field"], "id");
    let mut bad = new_transcription(999_999, Some(123_456_789));
    bad["note_type"] = json!("limerick");
    bad["segments"][1]["end_ms"] = json!(10);
    bad["segments"][1]["confidence"] = json!(3.0);
    let (status, body) = api.call("POST", "/api/transcriptions/", Some(bad)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let fields: HashSet<&str> =
        body["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!(
        fields,
        HashSet::from(["segments[1].end_ms", "segments[1].confidence", "pid", "encounter", "note_type"])
    );
    assert_eq!(api.db.scalar("SELECT COUNT(*) FROM mmt_transcriptions").await, 0);
}

#[tokio::test]
async fn segments_can_be_added_and_replaced_on_a_draft() {
    let api = Api::as_user(GARCIA).await;
    let (id, _) = create(&api, &new_transcription(10, None)).await;
    let path = format!("/api/transcriptions/{id}/segments/");
    let extra = json!({"segments": [{"seq": 2, "start_ms": 9100, "end_ms": 9900, "text": "Any fever?", "speaker_role": "clinician"}]});
    let (status, body) = api.call("POST", &path, Some(extra)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["segments"].as_array().unwrap().len(), 3);
    let only =
        json!({"segments": [{"start_ms": 0, "end_ms": 100, "text": "Replaced.", "edited_by_human": true}]});
    let (_, body) = api.call("PUT", &path, Some(only)).await;
    assert_eq!(body["segments"].as_array().unwrap().len(), 1);
    assert_eq!(body["segments"][0]["edited_by_human"], true);
    assert_eq!(body["version"], 3);
}

#[tokio::test]
async fn reads_and_writes_are_in_openemrs_audit_log() {
    let api = Api::as_user(GARCIA).await;
    let (id, _) = create(&api, &new_transcription(11, None)).await;
    api.get(&format!("/api/transcriptions/{id}/")).await;
    act(&api, &id, "submit", None).await;
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT event, CAST(FROM_BASE64(comments) AS CHAR) FROM log WHERE patient_id = 11 AND category = 'Clinical Note' ORDER BY id",
    )
    .fetch_all(&api.db.pool)
    .await
    .unwrap();
    let events: Vec<&str> = rows.iter().map(|(e, _)| e.as_str()).collect();
    assert_eq!(events, ["patient-record-insert", "patient-record-select", "patient-record-update"]);
    assert!(rows.iter().all(|(_, c)| c.contains(&id)), "{rows:?}");
}
