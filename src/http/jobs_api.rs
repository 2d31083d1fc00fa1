use chrono::{DateTime, NaiveDateTime, Utc};
use poem::{http::StatusCode, web::Data};
use poem_openapi::{ApiResponse, Enum, Object, OpenApi, param::Path, payload::Json};

use crate::{
    app::AppState,
    domain::job::{CancelOutcome, JobId, JobKind, JobState},
    http::{ApiTags, auth::Auth, problem::ApiError},
    service::jobs as service,
    storage::mmt::jobs::JobRow,
};

/// What a job does:
///
/// - `housekeeping`: scheduled every 10 minutes, run by one replica per period; revokes sign-ins
///   OpenEMR no longer allows and purges expired tokens, old sign-in failures and jobs finished
///   over 7 days ago. Result: `{"tokens": n, "login_failures": n, "jobs": n}` purged. Up to 3
///   attempts.
/// - `webhook.deliver`: delivers one change event to one webhook endpoint (see the Webhooks
///   operations); anything but a 2xx is retried with exponential backoff, up to 36 attempts (about
///   a day). Result: `{"delivery_id": n, "status": 200}`.
/// - `appointment.sweep`: scheduled every minute, run by one replica per period; cancels (`x`)
///   pending holds past their expiry and, with `MMT_MARK_NO_SHOWS`, marks appointments of the last
///   7 days that ended without an arrival as no-shows (`?`). Result: `{"holds_expired": n,
///   "no_shows": n}`. Up to 3 attempts.
/// - `prescription.send`: e-mails one prescription's PDF (`POST /api/prescriptions/{id}/send/`);
///   an unreachable or busy mail server (4xx) is retried with backoff, up to 10 attempts; a 5xx
///   refusal fails at once. Result: `{"send_id": n, "state": "sent"}`.
/// - `product.import`: imports a supplier's product workbook (`POST /api/products/imports/`); a
///   workbook that does not fit the supplier's layout fails at once. Result:
///   `{"import_id": n, "report": {...}}`, the report also at `GET /api/products/imports/{id}/`.
/// - `key.rotate`: queued by `mmt-sidecar rotate-key`; seals again under the newest data key every
///   sealed value and audio file an older key sealed, and indexes document text extracted before
///   the blind index. Result: `{"key": n, "resealed": {"table.column": n, ..., "audio_files": n,
///   "documents_indexed": n}}`. Up to 3 attempts.
/// - `hl7.send`: queued when a transcription is filed while `MMT_HL7_MLLP_ADDR` or
///   `MMT_HL7_DROP_DIR` is set; sends the note as `MDM^T02` over MLLP (the receiver's ACK decides:
///   `AA` done, `AE` or no answer retried with backoff up to 10 attempts, `AR` fails at once)
///   and/or writes it to the drop folder. Result: `{"control_id": "...", "ack": "AA"}`.
/// - `fhir.export`: a FHIR bulk export (`GET /fhir/r4/Patient/$export`); follow it at its
///   `$export-status` URL. Result: `[{"type": "Patient", "count": n}, ...]`. Up to 3 attempts.
#[derive(Enum, Clone, Copy, PartialEq, Eq, Debug)]
#[oai(rename = "JobKind")]
pub enum Kind {
    #[oai(rename = "housekeeping")]
    Housekeeping,
    #[oai(rename = "webhook.deliver")]
    WebhookDeliver,
    #[oai(rename = "appointment.sweep")]
    AppointmentSweep,
    #[oai(rename = "prescription.send")]
    PrescriptionSend,
    #[oai(rename = "document.ocr")]
    DocumentOcr,
    #[oai(rename = "product.import")]
    ProductImport,
    #[oai(rename = "key.rotate")]
    KeyRotation,
    #[oai(rename = "hl7.send")]
    Hl7Send,
    #[oai(rename = "fhir.export")]
    FhirExport,
}

impl From<JobKind> for Kind {
    fn from(k: JobKind) -> Self {
        match k {
            JobKind::Housekeeping => Self::Housekeeping,
            JobKind::WebhookDeliver => Self::WebhookDeliver,
            JobKind::AppointmentSweep => Self::AppointmentSweep,
            JobKind::PrescriptionSend => Self::PrescriptionSend,
            JobKind::DocumentOcr => Self::DocumentOcr,
            JobKind::ProductImport => Self::ProductImport,
            JobKind::KeyRotation => Self::KeyRotation,
            JobKind::Hl7Send => Self::Hl7Send,
            JobKind::FhirExport => Self::FhirExport,
        }
    }
}

/// `queued` (waiting for a worker, or for its next attempt) → `running` → `succeeded`, `failed`
/// or `cancelled`.
#[derive(Enum, Clone, Copy, PartialEq, Eq, Debug)]
#[oai(rename = "JobState", rename_all = "snake_case")]
pub enum State {
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

impl From<JobState> for State {
    fn from(s: JobState) -> Self {
        match s {
            JobState::Queued => Self::Queued,
            JobState::Running => Self::Running,
            JobState::Succeeded => Self::Succeeded,
            JobState::Failed => Self::Failed,
            JobState::Cancelled => Self::Cancelled,
        }
    }
}

/// A background job. Times are UTC.
#[derive(Object)]
pub struct Job {
    pub id: String,
    pub kind: Kind,
    pub state: State,
    /// 0-100.
    pub progress: u8,
    /// What the job is doing now, in a few words.
    pub progress_message: String,
    /// Attempts started so far.
    pub attempts: u32,
    pub max_attempts: u32,
    /// A cancel was asked for while the job ran; it ends `cancelled` once its handler stops.
    pub cancel_requested: bool,
    /// What a succeeded job produced; its shape depends on the kind.
    pub result: Option<serde_json::Value>,
    /// Why the last attempt failed.
    pub error: Option<String>,
    /// While queued: when the next attempt may start.
    pub run_at: DateTime<Utc>,
    /// OpenEMR user id of who queued it; none for scheduled jobs.
    pub queued_by: Option<i64>,
    /// The OpenEMR patient (pid) the job concerns.
    pub patient_id: Option<i64>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

fn utc(at: NaiveDateTime) -> DateTime<Utc> {
    at.and_utc()
}

fn view(r: JobRow) -> Result<Job, ApiError> {
    let kind = JobKind::parse(&r.kind).ok_or_else(|| {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "this job's kind is not one this version knows")
    })?;
    Ok(Job {
        id: JobId::from_bytes(&r.id).map(|i| i.to_string()).unwrap_or_default(),
        kind: kind.into(),
        state: r.state().into(),
        progress: r.progress,
        progress_message: r.progress_message,
        attempts: r.attempts,
        max_attempts: r.max_attempts,
        cancel_requested: r.cancel_requested,
        result: r.result.and_then(|text| serde_json::from_str(&text).ok()),
        error: r.error,
        run_at: utc(r.run_at),
        queued_by: r.queued_by,
        patient_id: r.patient_id,
        created_at: utc(r.created_at),
        updated_at: utc(r.updated_at),
        finished_at: r.finished_at.map(utc),
    })
}

fn parse_id(raw: &str) -> Result<JobId, ApiError> {
    JobId::parse(raw)
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("{raw} is not a job id (a UUID)")))
}

#[derive(ApiResponse)]
pub enum One {
    #[oai(status = 200)]
    Ok(Json<Job>),
}

#[derive(ApiResponse)]
pub enum Cancelled {
    /// The job had not started and is now cancelled.
    #[oai(status = 200)]
    Cancelled(Json<Job>),
    /// The job is running: its handler has been asked to stop and will end it `cancelled` (or
    /// finish first). Poll the job to see which.
    #[oai(status = 202)]
    Requested(Json<Job>),
}

#[derive(Default)]
pub struct JobsApi;

#[OpenApi(prefix_path = "/jobs", tag = "ApiTags::Jobs")]
impl JobsApi {
    /// A background job: its state, progress and result.
    ///
    /// For the user who queued it, or an OpenEMR administrator (`admin|super`). Reading a job
    /// that concerns a patient is recorded in OpenEMR's audit log. Kinds: `housekeeping`
    /// (scheduled clean-up of expired sign-in rows and old jobs), `webhook.deliver` (one
    /// webhook delivery) and `appointment.sweep` (lapsed holds, no-shows); see the `JobKind` schema.
    #[oai(path = "/:id/", method = "get", operation_id = "jobs_get")]
    async fn get(&self, state: Data<&AppState>, auth: Auth, id: Path<String>) -> Result<One, ApiError> {
        let row = service::get(&state, &auth.0, parse_id(&id.0)?).await?;
        Ok(One::Ok(Json(view(row)?)))
    }

    /// Cancel a job.
    ///
    /// A queued job is cancelled at once (200); a running one is asked to stop (202), and its
    /// handler ends it `cancelled` at its next check. A finished job cannot be cancelled (409).
    /// For the user who queued it, or an OpenEMR administrator (`admin|super`).
    #[oai(path = "/:id/cancel/", method = "post", operation_id = "jobs_cancel")]
    async fn cancel(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        id: Path<String>,
    ) -> Result<Cancelled, ApiError> {
        let (row, outcome) = service::cancel(&state, &auth.0, parse_id(&id.0)?).await?;
        let job = Json(view(row)?);
        Ok(match outcome {
            CancelOutcome::Cancelled => Cancelled::Cancelled(job),
            CancelOutcome::Requested => Cancelled::Requested(job),
        })
    }
}
