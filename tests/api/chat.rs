//! Live chat: rooms over REST, messages live over the event channel's WebSocket on two replicas
//! sharing the private test Redis, read markers, catch-up, membership, limits and transcripts.
//! Every wait is bounded.

use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{Value, json};

use crate::{
    events::{Ws, frame, send, websocket},
    helpers::{RunningServer, TestDb, redis_url},
};

const GARCIA: (&str, &str) = ("drgarcia", "Physician-Garcia-2");
const OKAFOR: (&str, &str) = ("drokafor", "Physician-Okafor-3");
const NURSE: (&str, &str) = ("nkim", "Clinician-Kim-4");
const FRONT: (&str, &str) = ("fdmiller", "Front-Miller-5");
const PID: i64 = 3;

/// One signed-in user talking REST to one server.
struct User {
    http: reqwest::Client,
    server: String,
    token: String,
}

impl User {
    async fn on(server: &RunningServer, db: &TestDb, user: (&str, &str)) -> Self {
        let token = crate::auth::tokens(db, user).await.0;
        Self { http: reqwest::Client::new(), server: server.url(""), token }
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let resp = self.raw(method, path, body).await;
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    async fn raw(&self, method: &str, path: &str, body: Option<Value>) -> reqwest::Response {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self.http.request(method, format!("{}{path}", self.server)).bearer_auth(&self.token);
        if let Some(body) = body {
            req = req.json(&body);
        }
        req.send().await.unwrap()
    }

    async fn open_room(&self, body: Value) -> u64 {
        let (status, room) = self.call("POST", "/api/chat/rooms/", Some(body)).await;
        assert_eq!(status, 201, "{room}");
        room["id"].as_u64().unwrap()
    }

    async fn post(&self, room: u64, text: &str) -> u64 {
        let (status, m) = self
            .call("POST", &format!("/api/chat/rooms/{room}/messages/"), Some(json!({ "text": text })))
            .await;
        assert_eq!(status, 201, "{m}");
        m["id"].as_u64().unwrap()
    }

    async fn history(&self, room: u64, query: &str) -> (Vec<u64>, bool) {
        let (status, page) =
            self.call("GET", &format!("/api/chat/rooms/{room}/messages/?{query}"), None).await;
        assert_eq!(status, 200, "{page}");
        let ids = page["items"].as_array().unwrap().iter().map(|m| m["id"].as_u64().unwrap()).collect();
        (ids, page["more"].as_bool().unwrap())
    }
}

/// The next frame of `kind` on the room's topic, skipping other frames (acks, other events).
async fn next_of(ws: &mut Ws, kind: &str) -> Value {
    loop {
        let f = frame(ws).await;
        if f["kind"] == kind {
            return f;
        }
    }
}

/// True when no text frame arrives within `limit`.
async fn silent_for(ws: &mut Ws, limit: Duration) -> bool {
    loop {
        match tokio::time::timeout(limit, ws.next()).await {
            Err(_) => return true,
            Ok(Some(Ok(tokio_tungstenite::tungstenite::Message::Text(_)))) => return false,
            Ok(_) => {}
        }
    }
}

async fn user_id(db: &TestDb, username: &str) -> i64 {
    db.scalar(&format!("SELECT id FROM users WHERE username = '{username}'")).await
}

#[tokio::test]
async fn two_clients_on_two_replicas_chat_with_typing_and_read_markers() {
    let db = TestDb::migrated().await;
    let redis = redis_url();
    let server_a = RunningServer::start(db.state_with(&[("MMT_REDIS_URL", &redis)])).await;
    let server_b = RunningServer::start(db.state_with(&[("MMT_REDIS_URL", &redis)])).await;
    let garcia = User::on(&server_a, &db, GARCIA).await;
    let okafor = User::on(&server_b, &db, OKAFOR).await;
    let room = garcia.open_room(json!({ "pid": PID, "title": "Consult", "members": ["drokafor"] })).await;
    let topic = format!("chat:{room}");

    let mut ws_a = websocket(&server_a, &garcia.token).await;
    let mut ws_b = websocket(&server_b, &okafor.token).await;
    send(&mut ws_a, json!({ "topics": [topic] })).await;
    send(&mut ws_b, json!({ "topics": [topic] })).await;

    // Garcia posts over the WebSocket of replica A; Okafor, on replica B, gets it live.
    send(&mut ws_a, json!({ "chat": { "room": room, "text": "BP after the dose?" } })).await;
    let first = next_of(&mut ws_b, "chat.message").await;
    assert_eq!(first["topic"], topic);
    let m1 = first["data"]["id"].as_u64().unwrap();
    assert_eq!(
        (first["data"]["author"].as_str(), first["data"]["text"].as_str(), first["data"]["room"].as_u64()),
        (Some("drgarcia"), Some("BP after the dose?"), Some(room))
    );
    let mut acked = None;
    let mut echoed = None;
    while acked.is_none() || echoed.is_none() {
        let f = frame(&mut ws_a).await;
        if f["chat"]["id"].is_u64() {
            acked = f["chat"]["id"].as_u64();
        } else if f["kind"] == "chat.message" {
            echoed = f["data"]["id"].as_u64();
        }
    }
    assert_eq!((acked, echoed), (Some(m1), Some(m1)), "the sender gets an ack and its own message");

    let (_, rooms) = okafor.call("GET", "/api/chat/rooms/", None).await;
    let listed = rooms["items"].as_array().unwrap().iter().find(|r| r["id"] == room).unwrap().clone();
    assert_eq!((listed["unread"].as_i64(), listed["last_message_id"].as_u64()), (Some(1), Some(m1)));
    let notified = db
        .scalar(&format!(
            "SELECT COUNT(*) FROM mmt_notifications WHERE kind = 'chat.message' AND subject = 'chat_room' AND subject_id = '{room}' AND user_id = {}",
            user_id(&db, "drokafor").await
        ))
        .await;
    assert_eq!(notified, 1);

    // Okafor types and answers over REST on replica B; Garcia sees both on A.
    let (status, _) = okafor.call("POST", &format!("/api/chat/rooms/{room}/typing/"), None).await;
    assert_eq!(status, 204);
    assert_eq!(next_of(&mut ws_a, "chat.typing").await["data"]["user"], "drokafor");
    let m2 = okafor.post(room, "128/82, no dizziness").await;
    assert!(m2 > m1);
    assert_eq!(next_of(&mut ws_a, "chat.message").await["data"]["id"], m2);
    // Garcia had read everything (his own message), so the reply starts his unread run: one
    // notification.
    let garcia_notes = db
        .scalar(&format!(
            "SELECT COUNT(*) FROM mmt_notifications WHERE kind = 'chat.message' AND user_id = {}",
            user_id(&db, "drgarcia").await
        ))
        .await;
    assert_eq!(garcia_notes, 1);

    // Garcia's read marker reaches Okafor on the other replica live; Okafor's moved with his own
    // message, so marking an older one changes nothing and tells nobody.
    let (status, me) =
        garcia.call("POST", &format!("/api/chat/rooms/{room}/read/"), Some(json!({ "up_to": m2 }))).await;
    assert_eq!((status, me["read_up_to"].as_u64()), (200, Some(m2)));
    let read = next_of(&mut ws_b, "chat.read").await;
    assert_eq!((read["data"]["user"].as_str(), read["data"]["up_to"].as_u64()), (Some("drgarcia"), Some(m2)));
    let (status, me) =
        okafor.call("POST", &format!("/api/chat/rooms/{room}/read/"), Some(json!({ "up_to": m1 }))).await;
    assert_eq!((status, me["read_up_to"].as_u64()), (200, Some(m2)), "a marker never moves back");
    assert_eq!(next_of(&mut ws_a, "chat.read").await["data"]["user"], "drgarcia", "his other devices");
    assert!(silent_for(&mut ws_a, Duration::from_millis(300)).await);
    let (status, bad) = garcia
        .call("POST", &format!("/api/chat/rooms/{room}/read/"), Some(json!({ "up_to": m2 + 100 })))
        .await;
    assert_eq!((status, bad["errors"][0]["field"].as_str()), (422, Some("up_to")));

    let (_, detail) = garcia.call("GET", &format!("/api/chat/rooms/{room}/"), None).await;
    let markers: Vec<(String, u64)> = detail["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["username"].as_str().unwrap().into(), m["read_up_to"].as_u64().unwrap()))
        .collect();
    assert_eq!(markers, [("drgarcia".into(), m2), ("drokafor".into(), m2)]);
    let audited = db
        .scalar("SELECT COUNT(*) FROM log WHERE category = 'Clinical Mail' AND event = 'patient-record-insert' AND patient_id = 3")
        .await;
    assert_eq!(audited, 3, "the room and both messages");
}

#[tokio::test]
async fn a_reconnecting_client_catches_up_with_no_gap_or_duplicate() {
    let db = TestDb::migrated().await;
    let server = RunningServer::start(db.state()).await;
    let garcia = User::on(&server, &db, GARCIA).await;
    let okafor = User::on(&server, &db, OKAFOR).await;
    let room = garcia.open_room(json!({ "pid": PID, "members": ["drokafor"] })).await;

    let mut ws = websocket(&server, &okafor.token).await;
    send(&mut ws, json!({ "topics": ["chat"] })).await;
    let m1 = garcia.post(room, "one").await;
    let seen = next_of(&mut ws, "chat.message").await;
    assert_eq!(seen["data"]["id"], m1);
    let last_event = seen["id"].as_u64().unwrap();
    drop(ws);

    let missed =
        [garcia.post(room, "two").await, garcia.post(room, "three").await, garcia.post(room, "four").await];
    let mut ws = websocket(&server, &okafor.token).await;
    send(&mut ws, json!({ "topics": ["chat"], "resume_after": last_event })).await;
    for id in missed {
        assert_eq!(next_of(&mut ws, "chat.message").await["data"]["id"], id);
    }
    let m5 = garcia.post(room, "five").await;
    assert_eq!(next_of(&mut ws, "chat.message").await["data"]["id"], m5);
    assert!(silent_for(&mut ws, Duration::from_millis(500)).await, "nothing twice");

    // The same catch-up over REST, in pages, by message id.
    assert_eq!(
        okafor.history(room, &format!("after={m1}&limit=2")).await,
        (vec![missed[0], missed[1]], true)
    );
    assert_eq!(
        okafor.history(room, &format!("after={}&limit=2", missed[1])).await,
        (vec![missed[2], m5], true)
    );
    assert_eq!(okafor.history(room, &format!("after={m5}&limit=2")).await, (vec![], false));
    // Scrolling back from the newest.
    assert_eq!(okafor.history(room, "limit=2").await, (vec![missed[2], m5], true));
    assert_eq!(
        okafor.history(room, &format!("before={}&limit=2", missed[2])).await,
        (vec![missed[0], missed[1]], true)
    );
    assert_eq!(okafor.history(room, &format!("before={}", missed[0])).await, (vec![m1], false));
}

#[tokio::test]
async fn non_members_cannot_join_read_or_post_and_cannot_tell_whether_a_room_exists() {
    let db = TestDb::migrated().await;
    let server = RunningServer::start(db.state()).await;
    let garcia = User::on(&server, &db, GARCIA).await;
    let okafor = User::on(&server, &db, OKAFOR).await;
    let nurse = User::on(&server, &db, NURSE).await;
    let admin = User::on(&server, &db, crate::auth::ADMIN).await;
    let room = garcia.open_room(json!({ "pid": PID, "members": ["nkim"] })).await;
    let missing = room + 1000;

    let mut ws = websocket(&server, &okafor.token).await;
    for (method, path, body) in [
        ("GET", "/", None),
        ("GET", "/messages/", None),
        ("POST", "/messages/", Some(json!({ "text": "let me in" }))),
        ("POST", "/read/", Some(json!({ "up_to": 0 }))),
        ("POST", "/typing/", None),
        ("POST", "/members/", Some(json!({ "users": ["drokafor"] }))),
        ("POST", "/transcript/", Some(json!({}))),
    ] {
        let (status, existing) =
            okafor.call(method, &format!("/api/chat/rooms/{room}{path}"), body.clone()).await;
        let (other, absent) = okafor.call(method, &format!("/api/chat/rooms/{missing}{path}"), body).await;
        assert_eq!((status, other), (403, 403), "{method} {path}: {existing} {absent}");
        assert_eq!(
            existing["detail"].as_str().unwrap().replace(&room.to_string(), "N"),
            absent["detail"].as_str().unwrap().replace(&missing.to_string(), "N"),
            "the same answer whether the room exists or not"
        );
    }
    // Nor over the event channel: joining the room's topic and posting are refused, and the
    // room's messages never reach him.
    let resp = reqwest::Client::new()
        .get(server.url(&format!("/api/events/?topics=chat:{room}")))
        .bearer_auth(&okafor.token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    send(&mut ws, json!({ "topics": [format!("chat:{room}")] })).await;
    let refused = frame(&mut ws).await;
    assert_eq!(refused["problem"]["status"], 403, "{refused}");
    send(&mut ws, json!({ "chat": { "room": room, "text": "let me in" } })).await;
    let refused = frame(&mut ws).await;
    assert_eq!(refused["problem"]["status"], 403, "{refused}");
    garcia.post(room, "private").await;
    assert!(silent_for(&mut ws, Duration::from_millis(500)).await);

    // A member may not add someone who lacks patients|notes to a patient room.
    let (status, bad) = nurse
        .call("POST", &format!("/api/chat/rooms/{room}/members/"), Some(json!({ "users": ["fdmiller"] })))
        .await;
    assert_eq!((status, bad["errors"][0]["field"].as_str()), (422, Some("users[0]")), "{bad}");
    let front = User::on(&server, &db, FRONT).await;
    let (status, _) = front.call("POST", "/api/chat/rooms/", Some(json!({ "pid": PID }))).await;
    assert_eq!(status, 403, "opening a patient room needs patients|notes");

    // An administrator may see and manage the room, but reads its history only as a member.
    let (status, seen) = admin.call("GET", &format!("/api/chat/rooms/{room}/"), None).await;
    assert_eq!((status, seen["members"].as_array().map(Vec::len)), (200, Some(2)));
    assert_eq!(admin.call("GET", &format!("/api/chat/rooms/{room}/messages/"), None).await.0, 403);
    assert_eq!(admin.call("GET", &format!("/api/chat/rooms/{missing}/"), None).await.0, 404);

    // Only the creator (or an administrator) removes others; anyone may leave.
    let garcia_out = format!("/api/chat/rooms/{room}/members/drgarcia/");
    assert_eq!(nurse.call("DELETE", &garcia_out, None).await.0, 403);
    assert_eq!(
        garcia.call("DELETE", &format!("/api/chat/rooms/{room}/members/drokafor/"), None).await.0,
        404
    );
    assert_eq!(nurse.call("DELETE", &format!("/api/chat/rooms/{room}/members/nkim/"), None).await.0, 204);
    assert_eq!(nurse.call("GET", &format!("/api/chat/rooms/{room}/messages/"), None).await.0, 403);
    let (_, left) = garcia.call("GET", &format!("/api/chat/rooms/{room}/"), None).await;
    assert_eq!(left["members"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn oversized_messages_get_413_and_fast_posters_429() {
    let db = TestDb::migrated().await;
    let server = RunningServer::start(db.state()).await;
    let garcia = User::on(&server, &db, GARCIA).await;
    let room = garcia.open_room(json!({ "pid": PID })).await;
    let path = format!("/api/chat/rooms/{room}/messages/");

    let resp = garcia.raw("POST", &path, Some(json!({ "text": "a".repeat(4001) }))).await;
    assert_eq!(resp.status(), 413);
    assert_eq!(resp.headers()["content-type"], "application/problem+json");
    let (status, blank) = garcia.call("POST", &path, Some(json!({ "text": " \n " }))).await;
    assert_eq!((status, blank["errors"][0]["field"].as_str()), (422, Some("text")));
    garcia.post(room, &"a".repeat(4000)).await;

    for i in 1..20 {
        garcia.post(room, &format!("message {i}")).await;
    }
    let resp = garcia.raw("POST", &path, Some(json!({ "text": "one too many" }))).await;
    assert_eq!(resp.status(), 429);
    let wait: u64 = resp.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=10).contains(&wait), "{wait}");
    let problem: Value = resp.json().await.unwrap();
    assert_eq!(problem["status"], 429);
    assert_eq!(garcia.history(room, "limit=100").await.0.len(), 20);
}

#[tokio::test]
async fn a_transcript_is_filed_as_a_pnote_that_openemr_inbox_shows() {
    let db = TestDb::migrated().await;
    let server = RunningServer::start(db.state()).await;
    let garcia = User::on(&server, &db, GARCIA).await;
    let nurse = User::on(&server, &db, NURSE).await;
    let room = garcia.open_room(json!({ "pid": PID, "title": "Post-op check", "members": ["nkim"] })).await;
    garcia.post(room, "Wound looks clean?").await;
    nurse.post(room, "Yes, no redness.").await;

    let (status, filed) = garcia
        .call("POST", &format!("/api/chat/rooms/{room}/transcript/"), Some(json!({ "to": ["nkim"] })))
        .await;
    assert_eq!(status, 201, "{filed}");
    let id = filed["message_ids"][0].as_i64().unwrap();

    // `getPnotesByUser('1', 'no', 'nkim')`'s SQL, as OpenEMR's Messages inbox runs it.
    let inbox: Vec<(i64, String, String, String)> = sqlx::query_as(
        "SELECT pnotes.id, pnotes.user, pnotes.title, pnotes.message_status FROM ((pnotes LEFT JOIN users ON \
         pnotes.user = users.username) LEFT JOIN patient_data ON pnotes.pid = patient_data.pid) WHERE \
         pnotes.message_status != 'Done' AND pnotes.activity = 1 AND pnotes.deleted != '1' AND \
         (pnotes.assigned_to LIKE ?)",
    )
    .bind("nkim")
    .fetch_all(&db.pool)
    .await
    .unwrap();
    let row = inbox.iter().find(|r| r.0 == id).expect("in nkim's OpenEMR inbox");
    assert_eq!((row.1.as_str(), row.2.as_str(), row.3.as_str()), ("drgarcia", "Chart Note", "New"));
    let (pid, body): (i64, String) = sqlx::query_as("SELECT pid, body FROM pnotes WHERE id = ?")
        .bind(id)
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(pid, PID);
    let lines: Vec<&str> = body.lines().collect();
    assert_eq!(lines.len(), 3, "{body}");
    assert_eq!(&lines[0][16..], format!(" (drgarcia to nkim) Chat transcript (room {room}): Post-op check"));
    assert!(
        lines[1].ends_with(" drgarcia: Wound looks clean?") && lines[2].ends_with(" nkim: Yes, no redness.")
    );
    chrono::NaiveDateTime::parse_from_str(&lines[1][..16], "%Y-%m-%d %H:%M").unwrap();

    // The thread reads back through the messaging API too.
    let (status, thread) = nurse.call("GET", &format!("/api/messages/{id}/"), None).await;
    assert_eq!((status, thread["pid"].as_i64()), (200, Some(PID)));

    // A room about an appointment takes the appointment's patient.
    let eid = db
        .scalar("SELECT CAST(pc_eid AS SIGNED) FROM openemr_postcalendar_events WHERE pc_pid > 0 ORDER BY pc_eid LIMIT 1")
        .await;
    let patient = db
        .scalar(&format!(
            "SELECT CAST(pc_pid AS SIGNED) FROM openemr_postcalendar_events WHERE pc_eid = {eid}"
        ))
        .await;
    let (status, consult) = garcia
        .call("POST", "/api/chat/rooms/", Some(json!({ "appointment_id": eid, "members": ["nkim"] })))
        .await;
    assert_eq!(
        (status, consult["pid"].as_i64(), consult["appointment_id"].as_i64()),
        (201, Some(patient), Some(eid))
    );
    let (status, bad) =
        garcia.call("POST", "/api/chat/rooms/", Some(json!({ "appointment_id": 99_999_999 }))).await;
    assert_eq!((status, bad["errors"][0]["field"].as_str()), (422, Some("appointment_id")));
}

/// Rooms about patients the caller can no longer reach are left out of the list, and paging by
/// `next_before` still walks past them to the end.
#[tokio::test]
async fn the_room_list_pages_past_rooms_the_caller_may_no_longer_see() {
    let db = TestDb::migrated().await;
    let open = RunningServer::start(db.state()).await;
    let garcia = User::on(&open, &db, GARCIA).await;
    let assigned = RunningServer::start(db.state_with(&[("MMT_PATIENT_ACCESS", "assigned")])).await;
    let panel = User::on(&assigned, &db, GARCIA).await;
    let (mut inside, mut outside) = (Vec::new(), Vec::new());
    for pid in 1..=60 {
        match panel.call("GET", &format!("/api/patients/{pid}/"), None).await.0 {
            200 => inside.push(pid),
            _ => outside.push(pid),
        }
    }
    assert!(inside.len() >= 2 && outside.len() >= 3, "the demo data must hold both: {inside:?} {outside:?}");
    let first = garcia.open_room(json!({ "pid": inside[0], "members": ["nkim"] })).await;
    for pid in &outside[..3] {
        garcia.open_room(json!({ "pid": pid, "members": ["nkim"] })).await;
    }
    let last = garcia.open_room(json!({ "pid": inside[1], "members": ["nkim"] })).await;

    let mut seen = Vec::new();
    let mut query = String::from("limit=2");
    for _ in 0..10 {
        let (status, page) = panel.call("GET", &format!("/api/chat/rooms/?{query}"), None).await;
        assert_eq!(status, 200, "{page}");
        seen.extend(page["items"].as_array().unwrap().iter().map(|r| r["id"].as_u64().unwrap()));
        match page["next_before"].as_u64() {
            Some(next) => query = format!("limit=2&before={next}"),
            None => break,
        }
    }
    assert_eq!(seen, vec![last, first], "both rooms about her own patients, past the three hidden ones");
}
