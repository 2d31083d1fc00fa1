//! Live updates: Server-Sent Events at `/api/events/` and a WebSocket at `/api/ws/` (a plain poem
//! route: OpenAPI cannot describe an upgrade). Both resume from an event id and end soon after the
//! sign-in they were opened with does.

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use futures_util::{SinkExt, StreamExt, stream::BoxStream};
use poem::{
    FromRequest, IntoResponse, Request, Response,
    web::{
        Data,
        sse::Event as SseEvent,
        websocket::{CloseCode, Message, WebSocket, WebSocketConfig, WebSocketStream},
    },
};
use poem_openapi::{
    Object, OpenApi,
    param::{Header, Query},
    payload::EventStream,
    types::ToJSON,
};
use serde::Deserialize;
use tokio::time::{Instant, Interval, interval_at};

use crate::{
    app::AppState,
    domain::{
        event::{Event, TopicFilter},
        validation::Issues,
    },
    http::{
        ApiTags,
        auth::{Auth, Credential, require_origin},
        problem::ApiError,
    },
    service::{
        chat::{self, conversation},
        events::{self, Subscription},
    },
};

/// An SSE comment or a WebSocket ping this often keeps proxies from closing an idle connection.
const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// How often an open stream checks that its sign-in still stands.
const RECHECK_EVERY: Duration = Duration::from_secs(60);
/// A WebSocket client that does not take a frame within this is dropped.
const SEND_TIMEOUT: Duration = Duration::from_secs(30);
/// Client messages are a few ids and topic names, or one chat message (4000 characters of up to
/// 4 bytes each).
const MAX_CLIENT_MESSAGE: usize = 20 * 1024;

/// One live update.
#[derive(Object, Debug)]
pub struct EventView {
    /// Increases from event to event; resume from the last one received.
    pub id: u64,
    /// `job`, `notification`, `transcription`, `chat:<room>`, …
    pub topic: String,
    /// What happened, e.g. `job.progress`.
    pub kind: String,
    /// Ids and small state, never PHI beyond ids; except `chat.message`, which carries the
    /// message's text to the room's members.
    pub data: serde_json::Value,
    pub at: DateTime<Utc>,
}

impl From<&Event> for EventView {
    fn from(e: &Event) -> Self {
        Self {
            id: e.id,
            topic: e.topic.as_str().into(),
            kind: e.kind.as_str().into(),
            data: e.data.clone(),
            at: e.at,
        }
    }
}

#[derive(Default)]
pub struct EventsApi;

#[OpenApi(tag = "ApiTags::Events")]
impl EventsApi {
    /// Live updates (Server-Sent Events).
    ///
    /// The caller's events as they happen: progress of the jobs they queued, their notifications,
    /// and the topics later capabilities add. Each message has `id:` (the event id), `event:` (its
    /// kind, e.g. `job.progress`) and `data:` (the event as JSON); a comment line every 15 s keeps
    /// the connection open through proxies. Events reach every replica's clients.
    ///
    /// To resume after a disconnect, send the last id received as `Last-Event-ID` (a browser's
    /// EventSource does so by itself) or as `after`: what was written since (kept for
    /// `MMT_EVENT_RETENTION_SECS`) comes first, in order, then live events. Credentials go in the
    /// Authorization header or a cookie, never in the query string. They are checked again every
    /// minute, and the stream ends soon after its sign-in does (expiry, sign-out, password
    /// change): reconnect with a fresh token and `Last-Event-ID`.
    ///
    /// The same events are available over a WebSocket at `GET /api/ws/`, with the same
    /// credentials (a cookie-authenticated upgrade must come from this server's own pages). The
    /// server sends JSON text frames `{"id", "topic", "kind", "data", "at"}` and pings; the client
    /// may send `{"resume_after": <id>}` (what came after that id is sent next) and
    /// `{"topics": ["job", "chat"]}` (only these from now on; `[]` for all) and
    /// `{"chat": {"room": <id>, "text": "…"}}` (posts to a chat room as `POST
    /// /api/chat/rooms/{id}/messages/` does, answered with `{"chat": {"room", "id"}}`). A message
    /// the server cannot use is answered with `{"error": "…"}` (and `"problem"`, the problem
    /// document the REST operation would have answered with).
    #[oai(path = "/events/", method = "get", operation_id = "events")]
    async fn events(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        req: &Request,
        /// The last event id received; EventSource sends it when it reconnects. Wins over `after`.
        #[oai(name = "Last-Event-ID")]
        last_event_id: Header<Option<u64>>,
        /// The last event id received, for clients that cannot set headers.
        after: Query<Option<u64>>,
        /// Comma-separated topics (`job,notification`); a family (`chat`) selects each of its
        /// instances (`chat:42`). All topics when absent. Naming a chat room (`chat:42`) joins
        /// it: only its members may (403 otherwise, whether it exists or not).
        topics: Query<Option<String>>,
    ) -> Result<EventStream<BoxStream<'static, EventView>>, ApiError> {
        let topics = topic_filter(topics.0.as_deref().unwrap_or_default())?;
        chat::rooms::join(&state, &auth.0, &topics).await?;
        let credential = Credential::of(&state, req)?;
        let subscription = events::subscribe(&state, auth.0, last_event_id.0.or(after.0), topics).await?;
        let feed = Feed::new(state.clone(), credential, subscription);
        let stream = futures_util::stream::unfold(feed, |mut feed| async move {
            let event = feed.next().await?;
            Some((EventView::from(&*event), feed))
        });
        Ok(EventStream::new(stream.boxed()).keep_alive(KEEP_ALIVE).to_event(|view| {
            SseEvent::message(view.to_json_string()).id(view.id.to_string()).event_type(view.kind.clone())
        }))
    }
}

fn topic_filter(names: &str) -> Result<TopicFilter, ApiError> {
    TopicFilter::parse(names.split(',').filter(|n| !n.trim().is_empty())).map_err(|err| {
        let mut issues = Issues::default();
        issues.add("topics", err.to_string());
        issues.into()
    })
}

/// `GET /api/ws/`: the WebSocket twin of `/api/events/`, authenticated exactly as `Auth` does.
#[poem::handler]
pub async fn websocket(req: &Request, state: Data<&AppState>) -> poem::Result<Response> {
    let credential = Credential::of(&state, req)?;
    if credential.is_cookie() {
        require_origin(&state, req)?;
    }
    let caller = credential.caller(&state).await?;
    let upgrade = WebSocket::from_request_without_body(req).await?;
    let subscription =
        events::subscribe(&state, caller, None, TopicFilter::default()).await.map_err(ApiError::from)?;
    let feed = Feed::new(state.clone(), credential, subscription);
    let limits = WebSocketConfig::default()
        .max_message_size(Some(MAX_CLIENT_MESSAGE))
        .max_frame_size(Some(MAX_CLIENT_MESSAGE));
    Ok(upgrade.config(limits).on_upgrade(move |socket| converse(socket, feed)).into_response())
}

/// A subscription that ends when the server shuts down, when reading missed events fails, or
/// when the sign-in it was opened with no longer stands.
struct Feed {
    state: AppState,
    credential: Credential,
    subscription: Subscription,
    recheck: Interval,
}

impl Feed {
    fn new(state: AppState, credential: Credential, subscription: Subscription) -> Self {
        let recheck = interval_at(Instant::now() + RECHECK_EVERY, RECHECK_EVERY);
        Self { state, credential, subscription, recheck }
    }

    /// Posts a chat message as the stream's user, whose sign-in is checked again first. A refusal
    /// carries the problem document the REST operation would answer with.
    async fn post(&self, chat: ChatSend) -> Result<serde_json::Value, serde_json::Value> {
        let caller = match self.credential.caller(&self.state).await {
            Ok(caller) => caller,
            Err(err) => return Err(refusal(err).await),
        };
        match conversation::post(&self.state, &caller, chat.room, &chat.text).await {
            Ok(m) => Ok(serde_json::json!({ "chat": { "room": m.room_id, "id": m.id } })),
            Err(err) => Err(refusal(err.into()).await),
        }
    }

    /// Chat rooms named among the topics are joined: only their members may subscribe.
    async fn join(&self, topics: &TopicFilter) -> Result<(), serde_json::Value> {
        if topics.instances("chat").next().is_none() {
            return Ok(());
        }
        let caller = match self.credential.caller(&self.state).await {
            Ok(caller) => caller,
            Err(err) => return Err(refusal(err).await),
        };
        match chat::rooms::join(&self.state, &caller, topics).await {
            Ok(()) => Ok(()),
            Err(err) => Err(refusal(err.into()).await),
        }
    }

    /// Cancel-safe, like [`Subscription::next`].
    async fn next(&mut self) -> Option<Arc<Event>> {
        loop {
            tokio::select! {
                next = self.subscription.next() => {
                    return next
                        .map_err(|err| tracing::warn!(error = %err, "live updates: cannot read missed events; closing the stream"))
                        .ok()
                        .flatten();
                }
                _ = self.recheck.tick() => {
                    // Only a refusal ends the stream; a database hiccup does not.
                    if let Err(ApiError::Unauthorized(_)) = self.credential.caller(&self.state).await {
                        return None;
                    }
                }
            }
        }
    }
}

/// What a WebSocket client may send.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClientMessage {
    resume_after: Option<u64>,
    topics: Option<Vec<String>>,
    chat: Option<ChatSend>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChatSend {
    room: u64,
    text: String,
}

async fn converse(socket: WebSocketStream, mut feed: Feed) {
    let (mut outgoing, mut incoming) = socket.split();
    let mut ping = interval_at(Instant::now() + KEEP_ALIVE, KEEP_ALIVE);
    let mut awaiting_pong = false;
    loop {
        let frame = tokio::select! {
            event = feed.next() => match event {
                Some(event) => Message::text(EventView::from(&*event).to_json_string()),
                None => Message::close_with(CloseCode::Away, "the stream ended; reconnect and resume"),
            },
            message = incoming.next() => match message {
                Some(Ok(Message::Text(text))) => match apply(&mut feed, &text).await {
                    Ok(None) => continue,
                    Ok(Some(reply)) => Message::text(reply.to_string()),
                    Err(error) => Message::text(error.to_string()),
                },
                Some(Ok(Message::Pong(_))) => {
                    awaiting_pong = false;
                    continue;
                }
                Some(Ok(Message::Close(_)) | Err(_)) | None => return,
                Some(Ok(_)) => continue,
            },
            _ = ping.tick() => {
                if awaiting_pong {
                    return;
                }
                awaiting_pong = true;
                Message::ping(Vec::new())
            }
        };
        let closing = frame.is_close();
        let sent = tokio::time::timeout(SEND_TIMEOUT, outgoing.send(frame)).await;
        if closing || !matches!(sent, Ok(Ok(()))) {
            return;
        }
    }
}

/// Applies a client message; what to answer, if anything.
async fn apply(feed: &mut Feed, text: &str) -> Result<Option<serde_json::Value>, serde_json::Value> {
    let error = |error: String| serde_json::json!({ "error": error });
    let message: ClientMessage = serde_json::from_str(text).map_err(|_| {
        error(
            "expected {\"resume_after\": <event id>}, {\"topics\": [\"job\", …]} or {\"chat\": {\"room\": <id>, \"text\": \"…\"}}"
                .into(),
        )
    })?;
    if let Some(topics) = message.topics {
        let filter =
            TopicFilter::parse(topics.iter().map(String::as_str)).map_err(|e| error(e.to_string()))?;
        feed.join(&filter).await?;
        feed.subscription.set_topics(filter);
    }
    if let Some(id) = message.resume_after {
        feed.subscription.resume_after(id);
    }
    match message.chat {
        Some(chat) => feed.post(chat).await.map(Some),
        None => Ok(None),
    }
}

/// What a WebSocket client is told when the server refuses a message: the problem document the
/// REST operation would have answered with, and its `detail` as `error`.
async fn refusal(err: ApiError) -> serde_json::Value {
    let problem: serde_json::Value = err.into_response().into_body().into_json().await.unwrap_or_default();
    serde_json::json!({ "error": problem["detail"], "problem": problem })
}
