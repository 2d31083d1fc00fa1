use chrono::{DateTime, NaiveDateTime, Utc};
use poem::{http::StatusCode, web::Data};
use poem_openapi::{ApiResponse, Object, OpenApi, param::Path, payload::Json};

use crate::{
    app::AppState,
    http::{ApiTags, auth::Auth, problem::ApiError},
    service::webhooks::{self as service, WebhookInput},
    storage::mmt::webhooks::{DeliveryRow, WebhookRow},
};

fn utc(t: NaiveDateTime) -> DateTime<Utc> {
    t.and_utc()
}

/// A webhook endpoint. Times are UTC.
#[derive(Object)]
pub struct Webhook {
    pub id: u64,
    pub url: String,
    /// Change events delivered here.
    pub event_types: Vec<String>,
    /// Payloads carry the patient's demographics, not ids only.
    pub include_phi: bool,
    pub active: bool,
    pub description: String,
    /// OpenEMR `users.id` of the administrator who registered it.
    pub created_by: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<WebhookRow> for Webhook {
    fn from(w: WebhookRow) -> Self {
        Self {
            id: w.id,
            url: w.url,
            event_types: w.event_types.split(',').filter(|n| !n.is_empty()).map(str::to_string).collect(),
            include_phi: w.include_phi,
            active: w.active,
            description: w.description,
            created_by: w.created_by,
            created_at: utc(w.created_at),
            updated_at: utc(w.updated_at),
        }
    }
}

/// A new endpoint with its signing secret, shown this once.
#[derive(Object)]
pub struct CreatedWebhook {
    #[oai(flatten)]
    pub webhook: Webhook,
    /// Key of the `Mmt-Signature` HMAC; keep it secret. It is not shown again.
    pub secret: String,
}

#[derive(Object)]
pub struct WebhookBody {
    /// Where events are POSTed (http or https).
    #[oai(validator(max_length = 2048))]
    pub url: Option<String>,
    /// Change events to deliver, or `["*"]` for all: `patient.created`, `patient.updated`,
    /// `encounter.created`, `transcription.created`, `transcription.submitted`,
    /// `transcription.approved`, `transcription.rejected`, `transcription.reopened`,
    /// `transcription.cancelled`, `transcription.filed`, `appointment.booked`,
    /// `appointment.updated`, `appointment.cancelled`, `vitals.recorded`, `vitals.updated`,
    /// `issue.created`, `issue.updated`, `message.created` (a message's id and pid),
    /// `prescription.created`, `prescription.updated` (a prescription's id and pid).
    #[oai(validator(max_items = 32))]
    pub event_types: Option<Vec<String>>,
    /// Include the patient's demographics in payloads (default false: ids only).
    pub include_phi: Option<bool>,
    /// Pause (false) or resume (true) deliveries.
    pub active: Option<bool>,
    #[oai(validator(max_length = 255))]
    pub description: Option<String>,
}

impl From<WebhookBody> for WebhookInput {
    fn from(b: WebhookBody) -> Self {
        Self {
            url: b.url,
            event_types: b.event_types,
            include_phi: b.include_phi,
            active: b.active,
            description: b.description,
        }
    }
}

/// One event's delivery to one endpoint, with its latest attempt.
#[derive(Object)]
pub struct Delivery {
    pub id: u64,
    pub webhook_id: u64,
    /// The event's id (the same as in `GET /api/events/`).
    pub event_id: u64,
    pub event_type: String,
    /// `pending` (waiting for an attempt or retry), `delivered` or `failed` (attempts exhausted).
    pub state: String,
    pub attempts: u32,
    /// HTTP status of the last attempt.
    pub last_status: Option<i16>,
    pub last_error: String,
    pub last_attempt_at: Option<DateTime<Utc>>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

impl From<DeliveryRow> for Delivery {
    fn from(d: DeliveryRow) -> Self {
        Self {
            id: d.id,
            webhook_id: d.webhook_id,
            event_id: d.event_id,
            event_type: d.event_type,
            state: d.state,
            attempts: d.attempts,
            last_status: d.last_status,
            last_error: d.last_error,
            last_attempt_at: d.last_attempt_at.map(utc),
            delivered_at: d.delivered_at.map(utc),
            created_at: utc(d.created_at),
        }
    }
}

#[derive(Object)]
pub struct Redelivery {
    /// The `webhook.deliver` job; follow it at `/api/jobs/{job_id}/`.
    pub job_id: String,
}

#[derive(ApiResponse)]
pub enum WebhookCreated {
    #[oai(status = 201)]
    Created(Json<CreatedWebhook>),
}

#[derive(ApiResponse)]
pub enum WebhookResponse {
    #[oai(status = 200)]
    Ok(Json<Webhook>),
}

#[derive(ApiResponse)]
pub enum WebhookList {
    #[oai(status = 200)]
    Ok(Json<Vec<Webhook>>),
}

#[derive(ApiResponse)]
pub enum WebhookDeleted {
    /// Removed with its delivery log; pending deliveries are dropped.
    #[oai(status = 204)]
    Done,
}

#[derive(ApiResponse)]
pub enum DeliveryList {
    #[oai(status = 200)]
    Ok(Json<Vec<Delivery>>),
}

#[derive(ApiResponse)]
pub enum RedeliveryQueued {
    #[oai(status = 202)]
    Accepted(Json<Redelivery>),
}

impl From<service::WebhookError> for ApiError {
    fn from(err: service::WebhookError) -> Self {
        use service::WebhookError as E;
        match err {
            E::NotFound(_) | E::DeliveryNotFound(..) => Self::new(StatusCode::NOT_FOUND, err.to_string()),
            E::Invalid(issues) => issues.into(),
            E::Acl(inner) => inner.into(),
            E::Storage(inner) => inner.into(),
        }
    }
}

#[derive(Default)]
pub struct WebhooksApi;

/// Webhooks (administrators, `admin|super`). Every change event is written in the transaction of
/// its change and POSTed to each subscribed endpoint as JSON `{id, type, created_at, data}` with
/// headers `Mmt-Event-Id`, `Mmt-Event-Type`, `Mmt-Delivery-Id` and `Mmt-Signature: t=<unix>,v1=<hex>`
/// (HMAC-SHA256 with the endpoint's secret over `<t>.<body>`; verify in constant time and refuse old
/// `t`). Anything but a 2xx is retried with exponential backoff for about a day; every attempt is
/// in the delivery log. `data` holds ids only unless the endpoint has `include_phi`.
#[OpenApi(prefix_path = "/webhooks", tag = "ApiTags::Webhooks")]
impl WebhooksApi {
    /// Register a webhook endpoint.
    #[oai(path = "/", method = "post", operation_id = "webhooks_create")]
    async fn create(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        body: Json<WebhookBody>,
    ) -> Result<WebhookCreated, ApiError> {
        let row = service::create(&state, &auth.0, body.0.into()).await?;
        let secret = row.secret.clone();
        Ok(WebhookCreated::Created(Json(CreatedWebhook { webhook: row.into(), secret })))
    }

    /// List webhook endpoints (secrets are never shown again).
    #[oai(path = "/", method = "get", operation_id = "webhooks_list")]
    async fn list(&self, state: Data<&AppState>, auth: Auth) -> Result<WebhookList, ApiError> {
        let rows = service::list(&state, &auth.0).await?;
        Ok(WebhookList::Ok(Json(rows.into_iter().map(Into::into).collect())))
    }

    #[oai(path = "/:id/", method = "get", operation_id = "webhooks_get")]
    async fn get(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        id: Path<u64>,
    ) -> Result<WebhookResponse, ApiError> {
        Ok(WebhookResponse::Ok(Json(service::get(&state, &auth.0, id.0).await?.into())))
    }

    /// Change a webhook: URL, events, PHI, paused or active.
    #[oai(path = "/:id/", method = "patch", operation_id = "webhooks_update")]
    async fn update(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        id: Path<u64>,
        body: Json<WebhookBody>,
    ) -> Result<WebhookResponse, ApiError> {
        Ok(WebhookResponse::Ok(Json(service::update(&state, &auth.0, id.0, body.0.into()).await?.into())))
    }

    #[oai(path = "/:id/", method = "delete", operation_id = "webhooks_delete")]
    async fn delete(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        id: Path<u64>,
    ) -> Result<WebhookDeleted, ApiError> {
        service::delete(&state, &auth.0, id.0).await?;
        Ok(WebhookDeleted::Done)
    }

    /// The endpoint's latest 200 deliveries, newest first.
    #[oai(path = "/:id/deliveries/", method = "get", operation_id = "webhooks_deliveries")]
    async fn deliveries(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        id: Path<u64>,
    ) -> Result<DeliveryList, ApiError> {
        let rows = service::deliveries(&state, &auth.0, id.0).await?;
        Ok(DeliveryList::Ok(Json(rows.into_iter().map(Into::into).collect())))
    }

    /// Send a delivery again (whatever became of it), as a new job.
    #[oai(
        path = "/:id/deliveries/:delivery_id/redeliver/",
        method = "post",
        operation_id = "webhooks_redeliver"
    )]
    async fn redeliver(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        id: Path<u64>,
        delivery_id: Path<u64>,
    ) -> Result<RedeliveryQueued, ApiError> {
        let job = service::redeliver(&state, &auth.0, id.0, delivery_id.0).await?;
        Ok(RedeliveryQueued::Accepted(Json(Redelivery { job_id: job.to_string() })))
    }
}
