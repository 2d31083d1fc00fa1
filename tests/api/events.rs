//! Live updates: SSE at /api/events/ and the WebSocket at /api/ws/, on one replica and across two
//! that share the private test Redis. Every wait is bounded.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt, stream::BoxStream};
use mmt_sidecar::{
    app::AppState,
    domain::{
        event::{Event, Kind, NewEvent, Topic},
        user::UserId,
    },
    service::{events, housekeeping},
};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::{self, client::IntoClientRequest};

use crate::helpers::{RunningServer, TestDb, redis_url};

const GARCIA: (&str, &str) = ("drgarcia", "Physician-Garcia-2");
const OKAFOR: (&str, &str) = ("drokafor", "Physician-Okafor-3");
const WAIT: Duration = Duration::from_secs(10);

async fn user_id(db: &TestDb, username: &str) -> i64 {
    db.scalar(&format!("SELECT id FROM users WHERE username = '{username}'")).await
}

fn new_event(topic: &str, kind: &str, recipient: Option<i64>, data: Value) -> NewEvent {
    NewEvent {
        topic: Topic::parse(topic).unwrap(),
        kind: Kind::parse(kind).unwrap(),
        recipient: recipient.map(UserId),
        data,
    }
}

async fn publish(state: &AppState, topic: &str, recipient: Option<i64>, n: i64) -> Event {
    events::publish(state, new_event(topic, &format!("{topic}.test"), recipient, json!({ "n": n })))
        .await
        .unwrap()
}

/// One SSE message as a client sees it.
#[derive(Debug)]
pub(crate) struct Message {
    pub(crate) id: u64,
    pub(crate) kind: String,
    pub(crate) data: Value,
}

/// An open `text/event-stream` response, read message by message.
pub(crate) struct Sse {
    body: BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    buffer: String,
}

impl Sse {
    pub(crate) async fn open(
        server: &RunningServer,
        token: &str,
        last_event_id: Option<u64>,
        query: &str,
    ) -> Self {
        let mut request =
            reqwest::Client::new().get(server.url(&format!("/api/events/{query}"))).bearer_auth(token);
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id.to_string());
        }
        let resp = tokio::time::timeout(WAIT, request.send()).await.expect("SSE headers in time").unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["content-type"], "text/event-stream");
        Self { body: resp.bytes_stream().boxed(), buffer: String::new() }
    }

    /// The next message (keep-alive comments skipped), or `None` if none comes within `limit` or the
    /// stream ends.
    pub(crate) async fn next_within(&mut self, limit: Duration) -> Option<Message> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                if let Some(message) = parse(&block) {
                    return Some(message);
                }
                continue;
            }
            match tokio::time::timeout_at(deadline, self.body.next()).await {
                Ok(Some(chunk)) => self.buffer.push_str(std::str::from_utf8(&chunk.unwrap()).unwrap()),
                Ok(None) | Err(_) => return None,
            }
        }
    }

    async fn next(&mut self) -> Message {
        self.next_within(WAIT).await.expect("an event within the wait")
    }

    /// Whether the server ended the stream within `limit`.
    async fn ends_within(&mut self, limit: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            match tokio::time::timeout_at(deadline, self.body.next()).await {
                Ok(Some(Ok(_))) => {}
                Ok(Some(Err(_)) | None) => return true,
                Err(_) => return false,
            }
        }
    }
}

fn parse(block: &str) -> Option<Message> {
    let field = |name: &str| {
        block.lines().find_map(|line| line.strip_prefix(name).map(|v| v.trim_start().to_string()))
    };
    let data = field("data:")?;
    Some(Message {
        id: field("id:").unwrap().parse().unwrap(),
        kind: field("event:").unwrap(),
        data: serde_json::from_str(&data).unwrap(),
    })
}

pub(crate) type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub(crate) async fn websocket(server: &RunningServer, token: &str) -> Ws {
    let mut request = format!("ws://{}/api/ws/", server.addr).into_client_request().unwrap();
    request.headers_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
    let (ws, resp) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(request))
        .await
        .expect("WebSocket handshake in time")
        .unwrap();
    assert_eq!(resp.status(), 101);
    ws
}

/// The next text frame as JSON (pings are answered by the client library).
pub(crate) async fn frame(ws: &mut Ws) -> Value {
    loop {
        let message = tokio::time::timeout(WAIT, ws.next()).await.expect("a frame in time").unwrap().unwrap();
        if let tungstenite::Message::Text(text) = message {
            return serde_json::from_str(&text).unwrap();
        }
    }
}

pub(crate) async fn send(ws: &mut Ws, message: Value) {
    ws.send(tungstenite::Message::text(message.to_string())).await.unwrap();
}

#[tokio::test]
async fn an_event_for_one_user_reaches_them_and_nobody_else() {
    let db = TestDb::migrated().await;
    let state = db.state();
    let server = RunningServer::start(state.clone()).await;
    let garcia = user_id(&db, "drgarcia").await;
    let mut for_garcia = Sse::open(&server, &crate::auth::tokens(&db, GARCIA).await.0, None, "").await;
    let mut for_okafor = Sse::open(&server, &crate::auth::tokens(&db, OKAFOR).await.0, None, "").await;

    let private = publish(&state, "job", Some(garcia), 1).await;
    let everyone = publish(&state, "notification", None, 2).await;

    let first = for_garcia.next().await;
    assert_eq!((first.id, first.kind.as_str()), (private.id, "job.test"));
    assert_eq!(first.data["topic"], "job");
    assert_eq!(first.data["data"], json!({ "n": 1 }));
    assert_eq!(first.data["id"], private.id);
    let at = chrono::DateTime::parse_from_rfc3339(first.data["at"].as_str().unwrap()).unwrap();
    assert_eq!(at, private.at);
    assert_eq!(for_garcia.next().await.id, everyone.id);
    // Okafor's first event is the one for everyone: Garcia's never reached him.
    assert_eq!(for_okafor.next().await.id, everyone.id);
}

#[tokio::test]
async fn last_event_id_replays_exactly_the_missed_events_in_order_then_goes_live() {
    let db = TestDb::migrated().await;
    let state = db.state();
    let server = RunningServer::start(state.clone()).await;
    let (garcia, okafor) = (user_id(&db, "drgarcia").await, user_id(&db, "drokafor").await);
    let token = crate::auth::tokens(&db, GARCIA).await.0;

    let seen = publish(&state, "job", Some(garcia), 0).await;
    let mut missed = Vec::new();
    for n in 1..=3 {
        missed.push(publish(&state, "job", Some(garcia), n).await.id);
        publish(&state, "job", Some(okafor), n).await;
    }
    // Written in a caller's transaction and fanned out once it commits.
    let mut tx = db.pool.begin().await.unwrap();
    let in_tx = events::write(&mut tx, new_event("notification", "notification.created", None, json!({})))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    events::publish_committed(&state, in_tx.clone());
    missed.push(in_tx.id);

    let mut sse = Sse::open(&server, &token, Some(seen.id), "").await;
    let mut replayed = Vec::new();
    for _ in 0..missed.len() {
        replayed.push(sse.next().await.id);
    }
    assert_eq!(replayed, missed);
    let live = publish(&state, "job", Some(garcia), 4).await;
    assert_eq!(sse.next().await.id, live.id, "live after the replay, nothing twice");

    // `after` serves clients that cannot set headers; `topics` narrows the stream.
    let mut jobs_only = Sse::open(&server, &token, None, &format!("?after={}&topics=job", seen.id)).await;
    for expected in missed.iter().take(3).chain([&live.id]) {
        assert_eq!(jobs_only.next().await.id, *expected);
    }
    assert!(jobs_only.next_within(Duration::from_millis(300)).await.is_none());

    let bad = reqwest::Client::new()
        .get(server.url("/api/events/?topics=Not%20a%20topic"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 422);
}

#[tokio::test]
async fn an_event_published_on_one_replica_reaches_clients_of_another() {
    let db = TestDb::migrated().await;
    let redis = redis_url();
    let replica_a = db.state_with(&[("MMT_REDIS_URL", &redis)]);
    let replica_b = db.state_with(&[("MMT_REDIS_URL", &redis)]);
    let server_a = RunningServer::start(replica_a.clone()).await;
    let server_b = RunningServer::start(replica_b).await;
    let garcia = user_id(&db, "drgarcia").await;
    let token = crate::auth::tokens(&db, GARCIA).await.0;

    for server in [&server_a, &server_b] {
        let health: Value = reqwest::get(server.url("/api/health/")).await.unwrap().json().await.unwrap();
        assert_eq!(health["live_updates"], "multi-replica (Redis)");
    }

    let mut sse_on_b = Sse::open(&server_b, &token, None, "").await;
    let mut ws_on_b = websocket(&server_b, &token).await;
    let mut sse_on_a = Sse::open(&server_a, &token, None, "").await;

    events::job_progress(&replica_a, "0192f0c3-7c1e-7a55-9d33-2b8f6a0e4c11", Some(garcia), 40, "halfway")
        .await;

    let on_b = sse_on_b.next().await;
    assert_eq!(on_b.kind, "job.progress");
    assert_eq!(
        on_b.data["data"],
        json!({ "job_id": "0192f0c3-7c1e-7a55-9d33-2b8f6a0e4c11", "progress": 40, "message": "halfway" })
    );
    let frame = frame(&mut ws_on_b).await;
    assert_eq!(frame["id"], on_b.id);
    assert_eq!(frame["kind"], "job.progress");
    assert_eq!(sse_on_a.next().await.id, on_b.id, "the publishing replica's own clients get it once");
    assert!(sse_on_a.next_within(Duration::from_millis(500)).await.is_none());
}

#[tokio::test]
async fn a_replica_that_lost_redis_reads_back_what_it_missed() {
    let db = TestDb::migrated().await;
    let redis = redis_url();
    let replica_a = db.state_with(&[("MMT_REDIS_URL", &redis)]);
    let server_b = RunningServer::start(db.state_with(&[("MMT_REDIS_URL", &redis)])).await;
    let garcia = user_id(&db, "drgarcia").await;
    let mut sse_on_b = Sse::open(&server_b, &crate::auth::tokens(&db, GARCIA).await.0, None, "").await;
    let before = publish(&replica_a, "job", Some(garcia), 1).await;
    assert_eq!(sse_on_b.next().await.id, before.id);

    // Every subscriber connection drops (other tests' replicas recover the same way); the event
    // published at once is sent while replica B is still reconnecting.
    let mut admin = redis::Client::open(redis).unwrap().get_multiplexed_async_connection().await.unwrap();
    let killed: i64 =
        redis::cmd("CLIENT").arg("KILL").arg("TYPE").arg("pubsub").query_async(&mut admin).await.unwrap();
    assert!(killed >= 1);
    let during = publish(&replica_a, "job", Some(garcia), 2).await;
    assert_eq!(sse_on_b.next().await.id, during.id);
    let after = publish(&replica_a, "job", Some(garcia), 3).await;
    assert_eq!(sse_on_b.next().await.id, after.id, "nothing twice, and live again");
}

#[tokio::test]
async fn the_websocket_gets_events_filters_topics_and_resumes() {
    let db = TestDb::migrated().await;
    let state = db.state();
    let server = RunningServer::start(state.clone()).await;
    let garcia = user_id(&db, "drgarcia").await;
    let first = publish(&state, "job", Some(garcia), 1).await;
    let note = publish(&state, "notification", Some(garcia), 2).await;
    let mut ws = websocket(&server, &crate::auth::tokens(&db, GARCIA).await.0).await;

    let live = publish(&state, "job", Some(garcia), 3).await;
    let got = frame(&mut ws).await;
    assert_eq!(got["id"], live.id, "only what happens after connecting, unless asked");
    assert_eq!((got["topic"].as_str(), got["kind"].as_str()), (Some("job"), Some("job.test")));
    assert_eq!(got["data"], json!({ "n": 3 }));
    assert!(got["at"].is_string());

    send(&mut ws, json!({ "topics": ["notification"], "resume_after": 0 })).await;
    assert_eq!(frame(&mut ws).await["id"], note.id, "job events are filtered out");
    send(&mut ws, json!({ "topics": [], "resume_after": first.id })).await;
    assert_eq!(frame(&mut ws).await["id"], note.id);
    assert_eq!(frame(&mut ws).await["id"], live.id);

    send(&mut ws, json!({ "resume_after": "soon" })).await;
    assert!(frame(&mut ws).await["error"].as_str().unwrap().contains("resume_after"));
    send(&mut ws, json!({ "topics": ["Bad Topic"] })).await;
    assert!(frame(&mut ws).await["error"].as_str().unwrap().contains("not a topic"));
}

#[tokio::test]
async fn streams_refuse_callers_without_credentials() {
    let db = TestDb::migrated().await;
    let server = RunningServer::start(db.state()).await;
    let token = crate::auth::tokens(&db, GARCIA).await.0;
    let client = reqwest::Client::new();

    let resp = client.get(server.url("/api/events/")).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(resp.headers()["content-type"], "application/problem+json");
    let resp = client.get(server.url(&format!("/api/events/?access_token={token}"))).send().await.unwrap();
    assert_eq!(resp.status(), 401, "a token in the query string is never accepted");
    let resp = client.get(server.url("/api/events/")).bearer_auth("not-a-token").send().await.unwrap();
    assert_eq!(resp.status(), 401);

    let refused = |request| async move {
        match tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(request)).await.unwrap() {
            Err(tungstenite::Error::Http(resp)) => resp.status().as_u16(),
            other => panic!("the upgrade was not refused: {:?}", other.map(|(_, r)| r.status())),
        }
    };
    let url = format!("ws://{}/api/ws/", server.addr);
    assert_eq!(refused(url.clone().into_client_request().unwrap()).await, 401);
    let with_query_token = format!("{url}?access_token={token}").into_client_request().unwrap();
    assert_eq!(refused(with_query_token).await, 401);
    // Browsers apply no same-origin policy to WebSockets: a cookie from another site's page is refused.
    let mut cross_site = url.into_client_request().unwrap();
    cross_site.headers_mut().insert("cookie", format!("mmt_access={token}").parse().unwrap());
    cross_site.headers_mut().insert("origin", "https://evil.example".parse().unwrap());
    assert_eq!(refused(cross_site).await, 403);
}

#[tokio::test]
async fn a_browser_page_of_this_server_may_use_the_cookie() {
    let db = TestDb::migrated().await;
    let state = db.state();
    let server = RunningServer::start(state.clone()).await;
    let token = crate::auth::tokens(&db, GARCIA).await.0;
    let mut request = format!("ws://{}/api/ws/", server.addr).into_client_request().unwrap();
    request.headers_mut().insert("cookie", format!("mmt_access={token}").parse().unwrap());
    request.headers_mut().insert("origin", format!("http://{}", server.addr).parse().unwrap());
    let (mut ws, _) =
        tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(request)).await.unwrap().unwrap();
    let event = publish(&state, "notification", None, 1).await;
    assert_eq!(frame(&mut ws).await["id"], event.id);
}

#[tokio::test]
async fn without_redis_live_updates_are_single_replica() {
    let db = TestDb::migrated().await;
    let resp = db.client().get("/api/health/").send().await;
    resp.assert_status_is_ok();
    let health: Value = resp.json().await.value().deserialize();
    assert_eq!(health["live_updates"], "single-replica");
}

#[tokio::test]
async fn open_streams_end_when_the_server_shuts_down() {
    let db = TestDb::migrated().await;
    let server = RunningServer::start(db.state()).await;
    let mut sse = Sse::open(&server, &crate::auth::tokens(&db, GARCIA).await.0, None, "").await;
    drop(server);
    assert!(sse.ends_within(Duration::from_secs(3)).await, "well within the 5 s grace period");
}

#[tokio::test]
async fn the_sweep_purges_events_past_their_retention() {
    let db = TestDb::migrated().await;
    let state = db.state_with(&[("MMT_EVENT_RETENTION_SECS", "3600")]);
    let kept = publish(&state, "notification", None, 1).await;
    let old = publish(&state, "notification", None, 2).await;
    sqlx::query("UPDATE mmt_events SET created_at = created_at - INTERVAL 2 HOUR WHERE id = ?")
        .bind(old.id)
        .execute(&db.pool)
        .await
        .unwrap();
    housekeeping::sweep(&state).await.unwrap();
    let left = db.scalar("SELECT COUNT(*) FROM mmt_events").await;
    let kept_left = db.scalar(&format!("SELECT COUNT(*) FROM mmt_events WHERE id = {}", kept.id)).await;
    assert_eq!((left, kept_left), (1, 1));
}
