//! Messages over OpenEMR's `pnotes`, checked against how library/pnotes.inc.php (`addPnote`,
//! `updatePnote`, `deletePnote`, `getPnotesByUser`) writes and reads them.

use poem::http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::patients::{Api, send};

const GARCIA: (&str, &str) = ("drgarcia", "Physician-Garcia-2");
const NURSE: (&str, &str) = ("nkim", "Clinician-Kim-4");
const OKAFOR: (&str, &str) = ("drokafor", "Physician-Okafor-3");
const FRONT: (&str, &str) = ("fdmiller", "Front-Miller-5");

async fn send_message(api: &Api, body: Value) -> Vec<i64> {
    let (status, out) = api.call("POST", "/api/messages/", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{out}");
    out["items"].as_array().unwrap().iter().map(|m| m["id"].as_i64().unwrap()).collect()
}

async fn garcia_to_nurse(api: &Api, text: &str) -> i64 {
    send_message(api, json!({"to": ["nkim"], "pid": 3, "title": "Lab Results", "text": text})).await[0]
}

async fn body_of(api: &Api, id: i64) -> String {
    sqlx::query_scalar("SELECT body FROM pnotes WHERE id = ?").bind(id).fetch_one(&api.db.pool).await.unwrap()
}

/// `date('Y-m-d H:i') . ' (' . user . ' to ' . assignee . ') ' . text`
fn is_entry(line: &str, header: &str, text: &str) -> bool {
    chrono::NaiveDateTime::parse_from_str(&line[..16], "%Y-%m-%d %H:%M").is_ok()
        && line[16..] == format!(" ({header}) {text}")
}

/// `getPnotesByUser('1', 'no', $user)`'s SQL, as OpenEMR's Messages inbox runs it.
async fn openemr_inbox(api: &Api, user: &str) -> Vec<(i64, String, Option<String>, String)> {
    sqlx::query_as(
        "SELECT pnotes.id, pnotes.user, \
           IF(pnotes.pid = 0 OR pnotes.user != pnotes.pid,users.fname,patient_data.fname) as users_fname, \
           pnotes.message_status \
         FROM ((pnotes LEFT JOIN users ON pnotes.user = users.username) \
         LEFT JOIN patient_data ON pnotes.pid = patient_data.pid) WHERE  pnotes.message_status != 'Done' AND pnotes.activity = 1 AND \
         pnotes.deleted != '1' AND (pnotes.assigned_to LIKE ? )",
    )
    .bind(user)
    .fetch_all(&api.db.pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn add_pnote_rows_one_per_recipient_show_in_openemr_get_pnotes_by_user_inbox() {
    let garcia = Api::as_user(GARCIA).await;
    let ids = send_message(
        &garcia,
        json!({"to": ["nkim", "drokafor"], "pid": 3, "title": "Lab Results", "text": "Please call about the A1c."}),
    )
    .await;
    assert_eq!(ids.len(), 2);
    for (id, to) in ids.iter().zip(["nkim", "drokafor"]) {
        let inbox = openemr_inbox(&garcia, to).await;
        let row = inbox.iter().find(|r| r.0 == *id).expect("in the recipient's OpenEMR inbox");
        assert_eq!((row.1.as_str(), row.2.as_deref(), row.3.as_str()), ("drgarcia", Some("Elena"), "New"));
        let written: (i64, String, String, i8, i8, String, String, i8, i64, bool) = sqlx::query_as(
            "SELECT pid, user, groupname, authorized, activity, title, assigned_to, deleted, update_by, \
             update_date IS NOT NULL AND date IS NOT NULL FROM pnotes WHERE id = ?",
        )
        .bind(id)
        .fetch_one(&garcia.db.pool)
        .await
        .unwrap();
        let garcia_id = garcia.db.scalar("SELECT id FROM users WHERE username = 'drgarcia'").await;
        assert_eq!(
            written,
            (
                3,
                "drgarcia".into(),
                "Default".into(),
                1,
                1,
                "Lab Results".into(),
                to.into(),
                0,
                garcia_id,
                true
            )
        );
        assert!(is_entry(
            &body_of(&garcia, *id).await,
            &format!("drgarcia to {to}"),
            "Please call about the A1c."
        ));
    }
    assert!(openemr_inbox(&garcia, "drgarcia").await.iter().all(|r| !ids.contains(&r.0)));
    let audited = garcia
        .db
        .scalar("SELECT COUNT(*) FROM log WHERE category = 'Clinical Mail' AND event = 'patient-record-insert' AND patient_id = 3")
        .await;
    assert_eq!(audited, 2);
    let (status, sent) = garcia.get("/api/messages/?box=sent").await;
    assert_eq!(status, StatusCode::OK, "{sent}");
    let listed: Vec<i64> =
        sent["items"].as_array().unwrap().iter().map(|m| m["id"].as_i64().unwrap()).collect();
    assert_eq!(listed[..2], [ids[1], ids[0]], "newest first, before the demo thread drgarcia sent");
    assert_eq!(sent["items"][0]["to"], "drokafor");
    assert!(sent["items"][0]["delivered_at"].is_string());
    assert!(sent["items"][0].get("read_at").is_none());
}

#[tokio::test]
async fn reply_appends_update_pnote_entry_and_reassigns_to_the_other_party() {
    let garcia = Api::as_user(GARCIA).await;
    let nurse = garcia.as_other(NURSE).await;
    let id = garcia_to_nurse(&garcia, "Please call the patient.").await;
    let before = body_of(&garcia, id).await;
    let (status, thread) = nurse
        .call(
            "POST",
            &format!("/api/messages/{id}/reply/"),
            Some(json!({"text": "Called.\nBooked Tuesday."})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{thread}");
    let after = body_of(&garcia, id).await;
    let appended = after.strip_prefix(&format!("{before}\n")).expect("the old body is kept and a line added");
    assert!(is_entry(appended, "nkim to drgarcia", "Called.\nBooked Tuesday."), "{appended}");
    assert_eq!((thread["to"].as_str(), thread["status"].as_str()), (Some("drgarcia"), Some("New")));
    let entries = thread["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(
        (entries[1]["author"].as_str(), entries[1]["recipient"].as_str()),
        (Some("nkim"), Some("drgarcia"))
    );
    assert_eq!(entries[1]["text"], "Called.\nBooked Tuesday.");
    assert!(openemr_inbox(&garcia, "drgarcia").await.iter().any(|r| r.0 == id));
}

#[tokio::test]
async fn concurrent_replies_are_all_kept() {
    let garcia = Api::as_user(GARCIA).await;
    let admin = garcia.as_other(crate::auth::ADMIN).await;
    let id = garcia_to_nurse(&garcia, "Start.").await;
    let replies = (0..16).map(|i| {
        let api = if i % 2 == 0 { &garcia } else { &admin };
        async move {
            let (status, body) = api
                .call(
                    "POST",
                    &format!("/api/messages/{id}/reply/"),
                    Some(json!({"text": format!("reply {i}"), "to": "nkim"})),
                )
                .await;
            assert_eq!(status, StatusCode::OK, "{body}");
        }
    });
    futures_util::future::join_all(replies).await;
    let body = body_of(&garcia, id).await;
    assert_eq!(body.lines().count(), 17, "{body}");
    for i in 0..16 {
        assert!(
            body.contains(&format!(") reply {i}\n")) || body.ends_with(&format!(") reply {i}")),
            "reply {i} lost"
        );
    }
}

#[tokio::test]
async fn first_open_by_the_recipient_stores_one_receipt_and_turns_new_into_read() {
    let garcia = Api::as_user(GARCIA).await;
    let nurse = garcia.as_other(NURSE).await;
    let id = garcia_to_nurse(&garcia, "Read me.").await;
    let (_, seen_by_sender) = garcia.get(&format!("/api/messages/{id}/")).await;
    assert_eq!(seen_by_sender["status"], "New", "the sender's open is no receipt");
    assert_eq!(seen_by_sender["receipts"], json!([]));
    let (status, first) = nurse.get(&format!("/api/messages/{id}/")).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(first["status"], "Read");
    let read_at = first["read_at"].as_str().unwrap().to_string();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    nurse.call("PATCH", &format!("/api/messages/{id}/"), Some(json!({"status": "New"}))).await;
    let (_, second) = nurse.get(&format!("/api/messages/{id}/")).await;
    assert_eq!(second["status"], "New", "only the first open marks it Read");
    assert_eq!(second["read_at"], read_at.as_str());
    let stored =
        garcia.db.scalar(&format!("SELECT COUNT(*) FROM mmt_message_receipts WHERE pnote_id = {id}")).await;
    assert_eq!(stored, 1);
    let (_, sent) = garcia.get("/api/messages/?box=sent").await;
    assert_eq!(sent["items"][0]["read_at"], read_at.as_str(), "the sender sees the recipient's receipt");
}

#[tokio::test]
async fn another_users_message_is_404_for_every_operation() {
    let garcia = Api::as_user(GARCIA).await;
    let okafor = garcia.as_other(OKAFOR).await;
    let id = garcia_to_nurse(&garcia, "Private.").await;
    for (method, path, body) in [
        ("GET", format!("/api/messages/{id}/"), None),
        ("POST", format!("/api/messages/{id}/reply/"), Some(json!({"text": "hi"}))),
        ("PATCH", format!("/api/messages/{id}/"), Some(json!({"status": "Done"}))),
        ("DELETE", format!("/api/messages/{id}/"), None),
    ] {
        let (status, problem) = okafor.call(method, &path, body.clone()).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {problem}");
        let (missing, _) = okafor.call(method, &format!("/api/messages/{}/", id + 1000), body).await;
        assert!(matches!(missing, StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED));
    }
    let (_, inbox) = okafor.get("/api/messages/?box=all").await;
    assert!(inbox["items"].as_array().unwrap().iter().all(|m| m["id"] != id));
    let (status, _) = okafor.get("/api/messages/?user=nkim").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let admin = garcia.as_other(crate::auth::ADMIN).await;
    let (status, _) = admin.get(&format!("/api/messages/{id}/")).await;
    assert_eq!(status, StatusCode::OK, "administrators see every mailbox");
    assert_eq!(body_of(&garcia, id).await.lines().count(), 1, "nothing was appended");
}

#[tokio::test]
async fn a_row_written_by_openemr_php_parses_into_thread_entries() {
    let garcia = Api::as_user(GARCIA).await;
    // addPnote, then updatePnote twice (a multi-line reply and a forward with no text), then
    // updatePnotePatient's "(patient set by ...)" line, as the PHP concatenates them.
    let body = "2025-06-01 08:15 (nkim to drgarcia) Patient asks for a refill.\n\
                2025-06-01 09:02 (drgarcia to nkim) Approved.\nSend to the usual pharmacy.\n\
                2025-06-01 09:10 (nkim to drgarcia) \n\
                2025-06-01 09:11 (patient set by nkim)";
    let id: u64 = sqlx::query(
        "INSERT INTO pnotes (date, body, pid, user, groupname, authorized, activity, title, assigned_to, message_status, update_by, update_date) \
         VALUES ('2025-06-01 08:15:00', ?, 5, 'nkim', 'Default', 0, 1, 'Pharmacy', 'drgarcia', 'New', 4, NOW())",
    )
    .bind(body)
    .execute(&garcia.db.pool)
    .await
    .unwrap()
    .last_insert_id();
    let (status, thread) = garcia.get(&format!("/api/messages/{id}/")).await;
    assert_eq!(status, StatusCode::OK, "{thread}");
    let entries = thread["entries"].as_array().unwrap();
    let got: Vec<(&str, Option<&str>, &str, &str)> = entries
        .iter()
        .map(|e| {
            (
                e["author"].as_str().unwrap(),
                e["recipient"].as_str(),
                e["text"].as_str().unwrap(),
                e["at"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("nkim", Some("drgarcia"), "Patient asks for a refill.", "2025-06-01T08:15:00"),
            ("drgarcia", Some("nkim"), "Approved.\nSend to the usual pharmacy.", "2025-06-01T09:02:00"),
            ("nkim", Some("drgarcia"), "", "2025-06-01T09:10:00"),
            ("patient set by nkim", None, "", "2025-06-01T09:11:00"),
        ]
    );
    assert_eq!(
        (thread["from"].as_str(), thread["pid"].as_i64(), thread["status"].as_str()),
        (Some("nkim"), Some(5), Some("Read"))
    );
}

#[tokio::test]
async fn invalid_messages_are_422_naming_each_field() {
    let garcia = Api::as_user(GARCIA).await;
    let cases = [
        (json!({"to": ["nkim"], "text": "   "}), "text", "required"),
        (json!({"to": ["nkim", "nobody"], "text": "hi"}), "to[1]", "nobody is not an active OpenEMR user"),
        (json!({"to": ["drweber"], "text": "hi"}), "to[0]", "not an active"),
        (json!({"to": ["nkim"], "text": "hi", "title": "x".repeat(256)}), "title", "at most 255"),
        (json!({"to": ["nkim"], "text": "hi", "title": "Gossip"}), "title", "Lab Results"),
        (json!({"to": ["nkim"], "text": "hi", "status": "Urgent"}), "status", "Forwarded"),
        (json!({"to": [], "text": "hi"}), "to", "at least one"),
        (json!({"to": ["nkim"], "text": "hi", "pid": 999999}), "pid", "no patient"),
        (json!({"to": ["nkim"], "text": "😀".repeat(16_400)}), "text", "bytes"),
    ];
    for (body, field, says) in cases {
        let large = [("MMT_MAX_BODY_BYTES", "200000")];
        let (status, problem) =
            send(&garcia.db, &large, Some(&garcia.token), Method::POST, "/api/messages/", Some(body)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
        let error = problem["errors"].as_array().unwrap().iter().find(|e| e["field"] == field);
        assert!(error.is_some_and(|e| e["message"].as_str().unwrap().contains(says)), "{field}: {problem}");
    }
    let sent_before = garcia.db.scalar("SELECT COUNT(*) FROM pnotes WHERE user = 'drgarcia'").await;
    let id = garcia_to_nurse(&garcia, "ok").await;
    let (status, problem) =
        garcia.call("POST", &format!("/api/messages/{id}/reply/"), Some(json!({"text": ""}))).await;
    assert_eq!(
        (status, problem["errors"][0]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("text"))
    );
    let (status, _) =
        garcia.call("PATCH", &format!("/api/messages/{id}/"), Some(json!({"status": "Lost"}))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        garcia.db.scalar("SELECT COUNT(*) FROM pnotes WHERE user = 'drgarcia'").await,
        sent_before + 1
    );
}

#[tokio::test]
async fn delete_follows_openemr_delete_pnote_rules() {
    let garcia = Api::as_user(GARCIA).await;
    let nurse = garcia.as_other(NURSE).await;
    let id = garcia_to_nurse(&garcia, "Delete me.").await;
    let (status, _) = garcia.call("DELETE", &format!("/api/messages/{id}/"), None).await;
    assert_eq!(status, StatusCode::CONFLICT, "the sender may not delete a thread waiting on someone else");
    let (status, _) = nurse.call("DELETE", &format!("/api/messages/{id}/"), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        garcia.db.scalar(&format!("SELECT deleted FROM pnotes WHERE id = {id}")).await,
        1,
        "soft delete only"
    );
    let (status, _) = garcia.get(&format!("/api/messages/{id}/")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let done = garcia_to_nurse(&garcia, "Done soon.").await;
    let (_, patched) =
        nurse.call("PATCH", &format!("/api/messages/{done}/"), Some(json!({"status": "Done"}))).await;
    assert_eq!((patched["status"].as_str(), patched["active"].as_bool()), (Some("Done"), Some(false)));
    let (status, _) = garcia.call("DELETE", &format!("/api/messages/{done}/"), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "anyone on a Done thread may delete it");
}

#[tokio::test]
async fn patient_threads_need_patients_notes_and_mailboxes_page_by_cursor() {
    let front = Api::as_user(FRONT).await;
    let (status, _) =
        front.call("POST", "/api/messages/", Some(json!({"to": ["nkim"], "pid": 3, "text": "hi"}))).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "front office holds no patients|notes");
    for i in 0..5 {
        send_message(&front, json!({"to": ["drgarcia"], "text": format!("note {i}")})).await;
    }
    let garcia = front.as_other(GARCIA).await;
    let (_, inbox) = garcia.get("/api/messages/?box=inbox&page_size=4").await;
    let first: Vec<i64> =
        inbox["items"].as_array().unwrap().iter().map(|m| m["id"].as_i64().unwrap()).collect();
    assert_eq!(first.len(), 4);
    let cursor = inbox["next_cursor"].as_str().unwrap();
    let (_, rest) = garcia.get(&format!("/api/messages/?box=inbox&page_size=4&cursor={cursor}")).await;
    let second: Vec<i64> =
        rest["items"].as_array().unwrap().iter().map(|m| m["id"].as_i64().unwrap()).collect();
    assert!(first.windows(2).all(|w| w[0] > w[1]) && second.iter().all(|id| *id < first[3]));
    assert!(rest.get("next_cursor").is_none());
    assert_eq!(first.len() + second.len(), 7, "five new and the two active demo threads");
    let (_, front_all) = front.get("/api/messages/?box=all").await;
    assert!(front_all["items"].as_array().unwrap().iter().all(|m| m.get("pid").is_none()));
    let (_, about_patient) = garcia.get("/api/messages/?box=all&patient=1").await;
    assert_eq!(about_patient["items"].as_array().unwrap().len(), 1);
    let (status, _) = front.get("/api/messages/?patient=1").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = garcia.get("/api/messages/?status=Lost").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn a_new_message_notifies_its_recipient_alone_live_and_in_their_list() {
    let garcia = Api::as_user(GARCIA).await;
    let nurse = garcia.as_other(NURSE).await;
    let okafor = garcia.as_other(OKAFOR).await;
    let state = garcia.db.state();
    let mut live = state.events.subscribe();
    let client = poem::test::TestClient::new(crate::helpers::documented_app(state.clone()));
    let resp = client
        .post("/api/messages/")
        .header("authorization", format!("Bearer {}", garcia.token))
        .body_json(&json!({"to": ["nkim"], "text": "Ping."}))
        .send()
        .await;
    resp.assert_status(StatusCode::CREATED);
    let event = tokio::time::timeout(std::time::Duration::from_secs(5), live.recv()).await.unwrap().unwrap();
    let nurse_id = garcia.db.scalar("SELECT id FROM users WHERE username = 'nkim'").await;
    assert_eq!((event.topic.as_str(), event.kind.as_str()), ("notification", "message.received"));
    assert_eq!(event.recipient.map(|u| u.0), Some(nurse_id));
    let (_, mine) = nurse.get("/api/notifications/?unread=true").await;
    let items = mine["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{mine}");
    assert_eq!(
        (items[0]["kind"].as_str(), items[0]["by"].as_str()),
        (Some("message.received"), Some("drgarcia"))
    );
    assert_eq!(items[0]["id"], event.data["id"]);
    assert_eq!(items[0]["message_id"], event.data["message_id"]);
    let id = items[0]["id"].as_u64().unwrap();
    let (_, theirs) = okafor.get("/api/notifications/").await;
    assert_eq!(theirs["items"], json!([]));
    let (status, _) = okafor.call("POST", &format!("/api/notifications/{id}/read/"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "another user's notification does not exist for them");
    let (status, read) = nurse.call("POST", &format!("/api/notifications/{id}/read/"), None).await;
    assert_eq!(status, StatusCode::OK, "{read}");
    let (_, again) = nurse.call("POST", &format!("/api/notifications/{id}/read/"), None).await;
    assert_eq!(again["read_at"], read["read_at"]);
    let (_, unread) = nurse.get("/api/notifications/?unread=true").await;
    assert_eq!(unread["items"], json!([]));
}

#[tokio::test]
async fn forwarding_appends_update_pnote_line_and_moves_the_thread_to_the_new_inbox() {
    let garcia = Api::as_user(GARCIA).await;
    let nurse = garcia.as_other(NURSE).await;
    let id = garcia_to_nurse(&garcia, "Who handles this?").await;
    nurse.get(&format!("/api/messages/{id}/")).await;
    let before = body_of(&garcia, id).await;
    let (status, thread) = nurse
        .call(
            "PATCH",
            &format!("/api/messages/{id}/"),
            Some(json!({"assigned_to": "drokafor", "status": "Forwarded"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{thread}");
    let line = body_of(&garcia, id).await.strip_prefix(&format!("{before}\n")).unwrap().to_string();
    assert!(is_entry(&line, "nkim to drokafor", ""), "updatePnote with no text: {line:?}");
    assert_eq!((thread["to"].as_str(), thread["status"].as_str()), (Some("drokafor"), Some("Forwarded")));
    assert!(thread.get("read_at").is_none(), "the new recipient has not opened it");
    assert!(openemr_inbox(&garcia, "drokafor").await.iter().any(|r| r.0 == id));
    assert!(openemr_inbox(&garcia, "nkim").await.iter().all(|r| r.0 != id));
    let (status, _) = nurse.get(&format!("/api/messages/{id}/")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "as checkPnotesNoteId: no longer the sender's or recipient's");
    let admin = garcia.as_other(crate::auth::ADMIN).await;
    let (_, okafors) = admin.get("/api/messages/?user=drokafor").await;
    assert!(
        okafors["items"].as_array().unwrap().iter().any(|m| m["id"] == id),
        "administrators list any inbox"
    );
}
