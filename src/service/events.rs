//! Live updates. An event is written to `mmt_events` first, so a client that reconnects, to any
//! replica, gets what it missed since the last id it saw; then it is fanned out: to this replica's
//! subscribers directly and, with `MMT_REDIS_URL`, to the other replicas through Redis pub/sub on a
//! channel named after the database (several sites may share one Redis). Whatever a replica may
//! have missed (Redis down, a subscriber too slow) its subscribers read back from `mmt_events`.

use std::{
    collections::VecDeque,
    sync::{
        Arc, OnceLock,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use chrono::{SubsecRound, Utc};
use futures_util::{FutureExt, StreamExt};
use redis::{
    AsyncCommands,
    aio::{ConnectionManager, ConnectionManagerConfig},
};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use sqlx::{MySqlConnection, MySqlPool};
use tokio::sync::{
    broadcast::{self, error::RecvError},
    mpsc, watch,
};
use uuid::Uuid;

use crate::{
    app::AppState,
    config::Config,
    domain::{
        event::{Delivered, Event, NewEvent, TopicFilter, may_receive},
        patient_access::AssignedRule,
        user::{Caller, UserId},
    },
    service::patient_access,
    storage::{StorageError, mmt::events as store},
};

/// Events a subscriber may fall behind by before it reads the rest back from `mmt_events`.
const LOCAL_BUFFER: usize = 1024;
/// Events waiting for Redis; beyond this they are dropped (other replicas catch up from the table).
const OUTBOX: usize = 10_000;
const REPLAY_PAGE: u32 = 500;
/// A dead Redis must not hold a publisher, and a silent one is noticed within this of a ping.
const REDIS_TIMEOUT: Duration = Duration::from_secs(2);
const PING_EVERY: Duration = Duration::from_secs(15);
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(10);

/// This replica's end of live updates: the local broadcast every subscription listens to, and
/// the Redis link to the other replicas when one is configured.
pub struct EventHub {
    local: broadcast::Sender<Arc<Event>>,
    /// Announces that events after the carried id (`None`: since each subscription began) may have
    /// been missed: sent whenever the Redis subscription is (re)established.
    resync: watch::Sender<Option<u64>>,
    closed: watch::Sender<bool>,
    redis: Option<RedisLink>,
}

struct RedisLink {
    client: redis::Client,
    channel: String,
    /// Marks this replica's own messages, which it has delivered locally already.
    origin: Uuid,
    /// Started on first use, so a hub can be built outside a runtime and costs nothing unused.
    outbox: OnceLock<mpsc::Sender<String>>,
    /// Set while the outbox is full, so that is logged once rather than for every event.
    congested: AtomicBool,
}

/// What travels through Redis.
#[derive(Serialize, Deserialize)]
struct Envelope<E> {
    origin: Uuid,
    event: E,
}

impl EventHub {
    pub fn new(config: &Config) -> Self {
        let database = config.connect_options().ok().and_then(|o| o.get_database().map(str::to_string));
        let redis = config.events.redis_url.as_ref().and_then(|url| {
            let client = redis::Client::open(url.expose_secret())
                .map_err(|err| tracing::error!(error = %err, "MMT_REDIS_URL is unusable; live updates stay on this replica"))
                .ok()?;
            Some(RedisLink {
                client,
                channel: format!("mmt-sidecar:events:{}", database.unwrap_or_default()),
                origin: Uuid::new_v4(),
                outbox: OnceLock::new(),
                congested: AtomicBool::new(false),
            })
        });
        Self {
            local: broadcast::channel(LOCAL_BUFFER).0,
            resync: watch::channel(None).0,
            closed: watch::channel(false).0,
            redis,
        }
    }

    /// For health: whether events reach clients connected to other replicas.
    pub fn mode(&self) -> &'static str {
        if self.redis.is_some() { "multi-replica (Redis)" } else { "single-replica" }
    }

    /// Every event fanned out from now on, from any replica. A receiver that falls behind gets
    /// `Lagged` and should read the rest from `mmt_events` ([`subscribe`] does).
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.start_redis();
        self.local.subscribe()
    }

    /// Ends every subscription, at shutdown: open streams would otherwise hold the drain until
    /// the grace period ends. Clients reconnect, to another replica, and resume.
    pub fn close(&self) {
        self.closed.send_replace(true);
    }

    fn fan_out(&self, event: Event) {
        let event = Arc::new(event);
        let _ = self.local.send(event.clone());
        let Some((redis, outbox)) = self.start_redis() else { return };
        let message = serde_json::to_string(&Envelope { origin: redis.origin, event: &*event })
            .expect("an event always serializes");
        match outbox.try_send(message) {
            Ok(()) => redis.congested.store(false, Ordering::Relaxed),
            Err(_) if !redis.congested.swap(true, Ordering::Relaxed) => tracing::warn!(
                "Redis is not keeping up; events skip it until it does (clients of other replicas read them back when they resume)"
            ),
            Err(_) => {}
        }
    }

    fn start_redis(&self) -> Option<(&RedisLink, &mpsc::Sender<String>)> {
        let redis = self.redis.as_ref()?;
        let outbox = redis.outbox.get_or_init(|| {
            let (tx, rx) = mpsc::channel(OUTBOX);
            tokio::spawn(publish_outbox(redis.client.clone(), redis.channel.clone(), rx));
            tokio::spawn(relay(
                redis.client.clone(),
                redis.channel.clone(),
                redis.origin,
                self.local.clone(),
                self.resync.clone(),
            ));
            tx
        });
        Some((redis, outbox))
    }
}

/// Writes an event and fans it out.
pub async fn publish(state: &AppState, event: NewEvent) -> Result<Event, StorageError> {
    let mut conn = state.pool.acquire().await.map_err(StorageError::from_sqlx)?;
    let event = write(&mut conn, event).await?;
    publish_committed(state, event.clone());
    Ok(event)
}

/// Writes an event on the caller's connection, inside their transaction; once it commits, hand
/// the event to [`publish_committed`].
pub async fn write(conn: &mut MySqlConnection, event: NewEvent) -> Result<Event, StorageError> {
    // What DATETIME(3) keeps, so the event sent live equals the one read back.
    let at = Utc::now().trunc_subsecs(3);
    let id = store::insert(conn, &event, at).await?;
    Ok(event.written(id, at))
}

/// Fans out an event written by [`write`] in a transaction that has committed.
pub fn publish_committed(state: &AppState, event: Event) {
    state.events.fan_out(event);
}

/// Tells the user who queued a job how far it has come (`message` holds no PHI). Jobs nobody
/// queued have nobody to tell. Progress is advisory, so a failure is logged, not returned.
pub async fn job_progress(state: &AppState, job_id: &str, queued_by: Option<i64>, pct: u8, message: &str) {
    let Some(user) = queued_by else { return };
    let event = NewEvent::job_progress(job_id, UserId(user), pct, message);
    if let Err(err) = publish(state, event).await {
        tracing::warn!(error = %err, job = job_id, "could not publish job progress");
    }
}

/// One client's view of live updates: first what it missed after the id it resumes from, then
/// live events, each once, filtered to what the caller may receive and asked for.
pub struct Subscription {
    pool: MySqlPool,
    caller: Caller,
    /// The assigned-patient rule the caller is held to: events about a patient they do not reach
    /// (`data.pid`) are left out, checked as each comes.
    restriction: Option<AssignedRule>,
    topics: TopicFilter,
    /// The id the client had everything up to when it (re)subscribed.
    start: u64,
    delivered: Delivered,
    live: broadcast::Receiver<Arc<Event>>,
    resync: watch::Receiver<Option<u64>>,
    closed: watch::Receiver<bool>,
    /// Where the next page of the replay begins, while one is due.
    replay_from: Option<u64>,
    backlog: VecDeque<Event>,
}

/// Subscribes `caller`; with `after` (the client's last event id) what came after it is sent first.
pub async fn subscribe(
    state: &AppState,
    caller: Caller,
    after: Option<u64>,
    topics: TopicFilter,
) -> Result<Subscription, StorageError> {
    let hub = &state.events;
    // Listening starts before the starting point is read, so no event falls between the two.
    let live = hub.subscribe();
    let resync = hub.resync.subscribe();
    let closed = hub.closed.subscribe();
    let start = match after {
        Some(id) => id,
        None => store::latest_id(&state.pool).await?,
    };
    let restriction = patient_access::restriction(state, &caller).await?;
    Ok(Subscription {
        pool: state.pool.clone(),
        caller,
        restriction,
        topics,
        start,
        delivered: Delivered::after(start),
        live,
        resync,
        closed,
        replay_from: after,
        backlog: VecDeque::new(),
    })
}

impl Subscription {
    /// The next event, or `None` once the server is shutting down. Cancel-safe: nothing changes
    /// until an awaited step completes, so it can sit in a `select!`.
    pub async fn next(&mut self) -> Result<Option<Arc<Event>>, StorageError> {
        loop {
            // Checked before it is taken, so a cancelled check leaves the event in place.
            while let Some(front) = self.backlog.front() {
                let reached = self.reaches(front).await?;
                let event = self.backlog.pop_front().expect("the event just checked");
                if reached && self.admit(&event) {
                    return Ok(Some(Arc::new(event)));
                }
            }
            if let Some(after) = self.replay_from {
                let page = store::since(&self.pool, after, self.caller.user_id, REPLAY_PAGE).await?;
                let full = page.len() == REPLAY_PAGE as usize;
                self.replay_from = page.last().map(|e| e.id).filter(|_| full);
                self.backlog.extend(page);
                continue;
            }
            tokio::select! {
                biased;
                // The guard `wait_for` returns would keep `self` borrowed; only the wake-up matters.
                () = self.closed.wait_for(|closed| *closed).map(drop) => return Ok(None),
                Ok(()) = self.resync.changed() => {
                    let from = *self.resync.borrow_and_update();
                    self.replay_from = Some(from.unwrap_or(0).max(self.start));
                }
                received = self.live.recv() => match received {
                    Ok(event) if self.needs_patient_check(&event) => self.backlog.push_back((*event).clone()),
                    Ok(event) if self.admit(&event) => return Ok(Some(event)),
                    Ok(_) => {}
                    Err(RecvError::Lagged(_)) => self.replay_from = Some(self.delivered.highest()),
                    Err(RecvError::Closed) => return Ok(None),
                },
            }
        }
    }

    /// From now on only these topics (none: all).
    pub fn set_topics(&mut self, topics: TopicFilter) {
        self.topics = topics;
    }

    /// Sends every event after `id` next, as for a client reconnecting with that last id.
    pub fn resume_after(&mut self, id: u64) {
        self.start = id;
        self.delivered = Delivered::after(id);
        self.backlog.clear();
        self.replay_from = Some(id);
    }

    /// An event about a patient, for this caller, while they are held to the assigned-patient rule.
    fn needs_patient_check(&self, event: &Event) -> bool {
        self.restriction.is_some()
            && patient_of(event).is_some()
            && may_receive(&self.caller, event)
            && self.topics.matches(&event.topic)
    }

    async fn reaches(&self, event: &Event) -> Result<bool, StorageError> {
        match (self.restriction, patient_of(event)) {
            (Some(rule), Some(pid)) if self.needs_patient_check(event) => {
                patient_access::reaches_now(&self.pool, rule, self.caller.user_id.0, pid).await
            }
            _ => Ok(true),
        }
    }

    fn admit(&mut self, event: &Event) -> bool {
        may_receive(&self.caller, event)
            && self.topics.matches(&event.topic)
            && self.delivered.first_time(event.id)
    }
}

fn patient_of(event: &Event) -> Option<i64> {
    event.data.get("pid").and_then(serde_json::Value::as_i64)
}

/// Sends this replica's events to Redis, in order, on one connection that reconnects by itself.
/// Failures are logged when they start and when they end, not per event.
async fn publish_outbox(client: redis::Client, channel: String, mut outbox: mpsc::Receiver<String>) {
    let mut connection = None;
    let mut failing = false;
    while let Some(message) = outbox.recv().await {
        match send(&client, &mut connection, &channel, message).await {
            Ok(()) if failing => {
                failing = false;
                tracing::info!("events reach Redis again");
            }
            Ok(()) => {}
            Err(err) if !failing => {
                failing = true;
                tracing::warn!(error = %err, "events do not reach Redis; clients of other replicas read them back when they resume");
            }
            Err(_) => {}
        }
    }
}

async fn send(
    client: &redis::Client,
    connection: &mut Option<ConnectionManager>,
    channel: &str,
    message: String,
) -> redis::RedisResult<()> {
    let conn = match connection {
        Some(conn) => conn,
        None => {
            let config = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(REDIS_TIMEOUT))
                .set_response_timeout(Some(REDIS_TIMEOUT))
                .set_number_of_retries(1);
            connection.insert(ConnectionManager::new_with_config(client.clone(), config).await?)
        }
    };
    conn.publish(channel, message).await
}

/// Forwards the other replicas' events from Redis to this replica's subscribers, reconnecting
/// with backoff. After each (re)subscription, subscribers read back what they may have missed.
async fn relay(
    client: redis::Client,
    channel: String,
    origin: Uuid,
    local: broadcast::Sender<Arc<Event>>,
    resync: watch::Sender<Option<u64>>,
) {
    let mut backoff = BACKOFF_MIN;
    let mut newest: Option<u64> = None;
    loop {
        match tokio::time::timeout(REDIS_TIMEOUT, subscribed(&client, &channel)).await {
            Ok(Ok((mut sink, mut messages))) => {
                backoff = BACKOFF_MIN;
                resync.send_replace(newest);
                let mut ping = tokio::time::interval(PING_EVERY);
                loop {
                    tokio::select! {
                        message = messages.next() => match message {
                            Some(message) => forward(&message, origin, &local, &mut newest),
                            None => break,
                        },
                        _ = ping.tick() => {
                            let pong = tokio::time::timeout(REDIS_TIMEOUT, sink.ping::<redis::Value>()).await;
                            if !matches!(pong, Ok(Ok(_))) {
                                break;
                            }
                        }
                    }
                }
                tracing::warn!("lost the Redis subscription for live updates; reconnecting");
            }
            Ok(Err(err)) => {
                tracing::warn!(error = %err, "cannot subscribe to Redis for live updates; retrying")
            }
            Err(_) => tracing::warn!("subscribing to Redis for live updates timed out; retrying"),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

async fn subscribed(
    client: &redis::Client,
    channel: &str,
) -> redis::RedisResult<(redis::aio::PubSubSink, redis::aio::PubSubStream)> {
    let (mut sink, messages) = client.get_async_pubsub().await?.split();
    sink.subscribe(channel).await?;
    Ok((sink, messages))
}

fn forward(
    message: &redis::Msg,
    origin: Uuid,
    local: &broadcast::Sender<Arc<Event>>,
    newest: &mut Option<u64>,
) {
    match serde_json::from_slice::<Envelope<Event>>(message.get_payload_bytes()) {
        Ok(envelope) => {
            *newest = (*newest).max(Some(envelope.event.id));
            if envelope.origin != origin {
                let _ = local.send(Arc::new(envelope.event));
            }
        }
        Err(err) => tracing::warn!(error = %err, "ignored a malformed live-update message from Redis"),
    }
}
