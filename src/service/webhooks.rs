//! Change events for integrations. A change (patient created, note filed, …) is written as an
//! event in the transaction that makes it, together with one `webhook.deliver` job per endpoint
//! subscribed to it, so an event exists, and is delivered, exactly when its change committed.
//! Deliveries are signed (see `domain::webhook`), retried with backoff for about a day, and logged.

use std::time::Duration;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::Utc;
use serde_json::{Value, json};
use sqlx::MySqlConnection;

use crate::{
    app::AppState,
    domain::{
        acl::{AclLevel, Aco},
        audit::AuditEntry,
        event::{Event, Kind, NewEvent, Topic},
        job::{JobId, JobKind},
        user::Caller,
        validation::Issues,
        webhook::{ChangeEvent, Subscription, signature},
    },
    service::{
        acl::AclError,
        audit, events,
        jobs::{self, JobContext, JobFailure, JobOutcome, NewJob},
        permission,
    },
    storage::{
        StorageError,
        mmt::{
            events as event_store,
            webhooks::{self as store, DeliveryRow, NewWebhook, WebhookChanges, WebhookRow},
        },
        openemr::patients,
    },
};

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("no webhook {0}")]
    NotFound(u64),
    #[error("no delivery {1} of webhook {0}")]
    DeliveryNotFound(u64, u64),
    #[error("invalid webhook")]
    Invalid(Issues),
    #[error(transparent)]
    Acl(#[from] AclError),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl From<Issues> for WebhookError {
    fn from(issues: Issues) -> Self {
        Self::Invalid(issues)
    }
}

type Result<T, E = WebhookError> = std::result::Result<T, E>;

/// A change to record: what happened, to which patient, and the ids a receiver needs.
pub struct Change {
    pub event: ChangeEvent,
    pub pid: Option<i64>,
    pub data: Value,
}

/// Records a change inside the caller's transaction: the event (live clients see it too) and a
/// delivery job per subscribed endpoint. After the commit, pass the event to [`committed`].
pub async fn record(conn: &mut MySqlConnection, change: Change) -> Result<Event, StorageError> {
    let mut data = change.data;
    if let (Some(pid), Some(map)) = (change.pid, data.as_object_mut()) {
        map.insert("pid".into(), pid.into());
    }
    let new = NewEvent {
        topic: Topic::parse(change.event.topic()).expect("change topics are valid names"),
        kind: Kind::parse(change.event.as_str()).expect("change kinds are valid names"),
        recipient: None,
        data,
    };
    let event = events::write(conn, new).await?;
    let now = Utc::now().naive_utc();
    for hook in store::active(conn).await? {
        if !Subscription::stored(&hook.event_types).wants(change.event) {
            continue;
        }
        let delivery = store::insert_delivery(conn, hook.id, event.id, change.event.as_str(), now).await?;
        jobs::enqueue(conn, NewJob::new(JobKind::WebhookDeliver, json!({ "delivery_id": delivery }))).await?;
    }
    Ok(event)
}

/// Fans the committed change out to live clients and wakes this replica's workers.
pub fn committed(state: &AppState, event: Event) {
    events::publish_committed(state, event);
    jobs::wake(state);
}

pub struct WebhookInput {
    pub url: Option<String>,
    pub event_types: Option<Vec<String>>,
    pub include_phi: Option<bool>,
    pub active: Option<bool>,
    pub description: Option<String>,
}

struct Validated {
    url: String,
    event_types: String,
    include_phi: bool,
    active: bool,
    description: String,
}

fn validate(input: WebhookInput, current: Option<&WebhookRow>) -> Result<Validated> {
    let mut issues = Issues::default();
    let url = match input.url {
        Some(url) => issues.text("url", &url, 1, 2048),
        None => current.map(|c| c.url.clone()).unwrap_or_else(|| {
            issues.add("url", "is required");
            String::new()
        }),
    };
    if !url.is_empty() && reqwest::Url::parse(&url).map_or(true, |u| !matches!(u.scheme(), "https" | "http"))
    {
        issues.add("url", "must be an absolute http or https URL");
    }
    let event_types = match input.event_types {
        Some(names) => match Subscription::parse(names.iter().map(String::as_str)) {
            Ok(s) if s.is_empty() => {
                issues.add("event_types", "name at least one event, or \"*\" for all");
                String::new()
            }
            Ok(s) => s.names().join(","),
            Err(unknown) => {
                let known: Vec<&str> = ChangeEvent::ALL.iter().map(|e| e.as_str()).collect();
                issues.add(
                    "event_types",
                    format!("unknown: {}; known: {}", unknown.join(", "), known.join(", ")),
                );
                String::new()
            }
        },
        None => current.map(|c| c.event_types.clone()).unwrap_or_else(|| {
            issues.add("event_types", "is required");
            String::new()
        }),
    };
    let description = match input.description {
        Some(d) => issues.text("description", &d, 0, 255),
        None => current.map(|c| c.description.clone()).unwrap_or_default(),
    };
    issues
        .into_result(Validated {
            url,
            event_types,
            include_phi: input.include_phi.or(current.map(|c| c.include_phi)).unwrap_or(false),
            active: input.active.or(current.map(|c| c.active)).unwrap_or(true),
            description,
        })
        .map_err(Into::into)
}

/// Webhooks are an administrator's business, as OpenEMR's own integrations are.
async fn require_admin(state: &AppState, caller: &Caller) -> Result<()> {
    permission::require(state, caller, Aco::ADMIN_SUPER, AclLevel::Write).await?;
    Ok(())
}

fn new_secret() -> String {
    format!("whsec_{}", URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>()))
}

/// Registers an endpoint; its signing secret is returned this once.
pub async fn create(state: &AppState, caller: &Caller, input: WebhookInput) -> Result<WebhookRow> {
    require_admin(state, caller).await?;
    let v = validate(input, None)?;
    let secret = new_secret();
    let now = Utc::now().naive_utc();
    let id = store::insert(
        &state.pool,
        &NewWebhook {
            url: &v.url,
            secret: &secret,
            event_types: &v.event_types,
            include_phi: v.include_phi,
            description: &v.description,
            created_by: caller.user_id.0,
            now,
        },
    )
    .await?;
    audit::security_event(state, &caller.username, &format!("mmt-sidecar registered webhook {id}")).await;
    store::get(&state.pool, id).await?.ok_or(WebhookError::NotFound(id))
}

pub async fn list(state: &AppState, caller: &Caller) -> Result<Vec<WebhookRow>> {
    require_admin(state, caller).await?;
    Ok(store::list(&state.pool).await?)
}

pub async fn get(state: &AppState, caller: &Caller, id: u64) -> Result<WebhookRow> {
    require_admin(state, caller).await?;
    store::get(&state.pool, id).await?.ok_or(WebhookError::NotFound(id))
}

pub async fn update(state: &AppState, caller: &Caller, id: u64, input: WebhookInput) -> Result<WebhookRow> {
    let current = get(state, caller, id).await?;
    let v = validate(input, Some(&current))?;
    let changes = WebhookChanges {
        url: &v.url,
        event_types: &v.event_types,
        include_phi: v.include_phi,
        active: v.active,
        description: &v.description,
    };
    if !store::update(&state.pool, id, &changes, Utc::now().naive_utc()).await? {
        return Err(WebhookError::NotFound(id));
    }
    audit::security_event(state, &caller.username, &format!("mmt-sidecar changed webhook {id}")).await;
    store::get(&state.pool, id).await?.ok_or(WebhookError::NotFound(id))
}

pub async fn delete(state: &AppState, caller: &Caller, id: u64) -> Result<()> {
    require_admin(state, caller).await?;
    if !store::delete(&state.pool, id).await? {
        return Err(WebhookError::NotFound(id));
    }
    audit::security_event(state, &caller.username, &format!("mmt-sidecar removed webhook {id}")).await;
    Ok(())
}

pub async fn deliveries(state: &AppState, caller: &Caller, id: u64) -> Result<Vec<DeliveryRow>> {
    get(state, caller, id).await?;
    Ok(store::deliveries(&state.pool, id, 200).await?)
}

/// Sends a delivery again, whatever became of it, as a new job.
pub async fn redeliver(state: &AppState, caller: &Caller, id: u64, delivery_id: u64) -> Result<JobId> {
    get(state, caller, id).await?;
    let delivery = store::delivery(&state.pool, delivery_id)
        .await?
        .filter(|d| d.webhook_id == id)
        .ok_or(WebhookError::DeliveryNotFound(id, delivery_id))?;
    let mut tx = state.pool.begin().await.map_err(StorageError::from_sqlx)?;
    store::reopen(&mut tx, delivery.id).await?;
    let job = NewJob::new(JobKind::WebhookDeliver, json!({ "delivery_id": delivery.id })).queued_by(caller);
    let job_id = jobs::enqueue(&mut tx, job).await?;
    tx.commit().await.map_err(StorageError::from_sqlx)?;
    jobs::wake(state);
    Ok(job_id)
}

/// A receiver gets this long to answer.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);

/// The client for deliveries; `AppState` keeps one (see `AppState::webhook_http`).
fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(DELIVERY_TIMEOUT)
        .connect_timeout(Duration::from_secs(5))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("mmt-sidecar/", env!("CARGO_PKG_VERSION"), " webhooks"))
        .build()
        .expect("the webhook HTTP client builds")
}

/// The body a receiver gets: the event, and the resource itself only for endpoints allowed PHI.
async fn body(state: &AppState, hook: &WebhookRow, event: &Event) -> Result<Vec<u8>, StorageError> {
    let mut body = json!({
        "id": event.id,
        "type": event.kind.as_str(),
        "created_at": event.at.to_rfc3339(),
        "data": event.data,
    });
    if hook.include_phi
        && let Some(pid) = event.data.get("pid").and_then(Value::as_i64)
        && let Some(p) = patients::get(&state.pool, crate::domain::patient::Pid(pid)).await?
    {
        body["patient"] = json!({
            "pid": p.pid,
            "pubpid": p.pubpid,
            "first_name": p.fname,
            "last_name": p.lname,
            "dob": p.dob.map(|d| d.to_string()),
            "sex": p.sex,
        });
        // Each attempt discloses the demographics outside OpenEMR, so each is audited first.
        let comments =
            format!("mmt-sidecar sent demographics of pid {pid} to webhook {} (event {})", hook.id, event.id);
        let disclosure = AuditEntry::system("patient-record-select", "Patient Demographics", pid, comments);
        audit::record(state, &disclosure).await?;
    }
    Ok(serde_json::to_vec(&body).expect("JSON values serialize"))
}

/// The `webhook.deliver` job: one POST; anything but a 2xx is retried with backoff until the
/// job's attempts run out, and every attempt is logged on the delivery.
pub async fn deliver(ctx: JobContext) -> JobOutcome {
    let state = ctx.state();
    let delivery_id = ctx
        .payload()
        .get("delivery_id")
        .and_then(Value::as_u64)
        .ok_or_else(|| JobFailure::Permanent("payload names no delivery_id".into()))?;
    let delivery = store::delivery(&state.pool, delivery_id)
        .await?
        .ok_or_else(|| JobFailure::Permanent(format!("delivery {delivery_id} no longer exists")))?;
    let hook = store::get(&state.pool, delivery.webhook_id).await?.filter(|h| h.active).ok_or_else(|| {
        JobFailure::Permanent(format!("webhook {} was removed or disabled", delivery.webhook_id))
    })?;
    let event = event_store::get(&state.pool, delivery.event_id)
        .await?
        .ok_or_else(|| JobFailure::Permanent(format!("event {} has expired", delivery.event_id)))?;
    let body = body(state, &hook, &event).await?;
    let now = Utc::now();
    let sent = state
        .webhook_http
        .get_or_init(http_client)
        .post(&hook.url)
        .header("content-type", "application/json")
        .header("mmt-event-id", event.id.to_string())
        .header("mmt-event-type", event.kind.as_str())
        .header("mmt-delivery-id", delivery.id.to_string())
        .header("mmt-signature", signature(&hook.secret, now.timestamp(), &body))
        .body(body)
        .send()
        .await;
    let last = ctx.attempt() >= JobKind::WebhookDeliver.max_attempts();
    let (state_after, status, error) = match &sent {
        Ok(resp) if resp.status().is_success() => ("delivered", Some(resp.status().as_u16()), String::new()),
        Ok(resp) => (
            if last { "failed" } else { "pending" },
            Some(resp.status().as_u16()),
            format!("answered {}", resp.status()),
        ),
        Err(e) => (if last { "failed" } else { "pending" }, None, delivery_error(e)),
    };
    store::record_attempt(&state.pool, delivery.id, state_after, status, &error, now.naive_utc()).await?;
    if state_after == "delivered" {
        Ok(Some(json!({ "delivery_id": delivery.id, "status": status })))
    } else {
        Err(JobFailure::Transient(format!("webhook {}: {error}", hook.id)))
    }
}

/// What went wrong, without the URL (it may carry credentials).
fn delivery_error(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else if e.is_redirect() {
        "redirected (not followed)"
    } else {
        "request failed"
    };
    kind.to_string()
}
