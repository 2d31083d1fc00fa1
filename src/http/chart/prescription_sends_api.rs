use chrono::NaiveDateTime;
use poem::web::Data;
use poem_openapi::{ApiResponse, Object, OpenApi, param::Path, payload::Json};

use crate::{
    app::AppState,
    http::{ApiTags, auth::Auth, problem::ApiError},
    service::chart::prescription_send,
    storage::mmt::prescription_sends::SendRow,
};

/// Where to send the prescription.
#[derive(Object, Default)]
#[oai(deny_unknown_fields)]
pub struct SendBody {
    /// One e-mail address. When absent: the e-mail of the pharmacy the prescription names, else
    /// of the patient's preferred pharmacy.
    pub to: Option<String>,
}

/// One request to e-mail a prescription and what became of it.
#[derive(Object)]
pub struct PrescriptionSendOut {
    pub id: u64,
    pub prescription_id: i32,
    pub to: String,
    /// `queued` (attempts continue with backoff), `sent` or `failed`.
    pub state: String,
    pub attempts: i32,
    /// The job carrying the send: follow it on `/api/events/` or at `/api/jobs/{id}/`.
    pub job_id: Option<String>,
    /// The Message-ID of the e-mail once sent.
    pub message_id: Option<String>,
    /// Why the last attempt failed (no addresses, no PHI).
    pub error: Option<String>,
    /// Username of who asked for it.
    pub requested_by: String,
    /// Local time, as OpenEMR dates.
    pub requested_at: NaiveDateTime,
    pub sent_at: Option<NaiveDateTime>,
}

impl From<SendRow> for PrescriptionSendOut {
    fn from(s: SendRow) -> Self {
        Self {
            job_id: prescription_send::job_id(&s).map(|id| id.to_string()),
            id: s.id,
            prescription_id: s.prescription_id,
            to: s.recipient,
            state: s.state,
            attempts: s.attempts,
            message_id: s.message_id,
            error: s.error,
            requested_by: s.requested_name,
            requested_at: s.requested_at,
            sent_at: s.sent_at,
        }
    }
}

#[derive(Object)]
pub struct PrescriptionSendList {
    pub items: Vec<PrescriptionSendOut>,
}

#[derive(ApiResponse)]
pub enum SendResponse {
    /// Queued; a job sends it and retries while the mail server is unavailable.
    #[oai(status = 202)]
    Queued(Json<PrescriptionSendOut>),
    /// The same prescription to the same address was already waiting: that send.
    #[oai(status = 200)]
    AlreadyQueued(Json<PrescriptionSendOut>),
}

#[derive(ApiResponse)]
pub enum SendListResponse {
    #[oai(status = 200)]
    Ok(Json<PrescriptionSendList>),
}

#[derive(Default)]
pub struct PrescriptionSendsApi;

#[OpenApi(tag = "ApiTags::Chart")]
impl PrescriptionSendsApi {
    /// E-mail the prescription's PDF, as OpenEMR's "Send" does (subject `<practice> Prescription`,
    /// the PDF attached), from `MMT_MAIL_FROM` or OpenEMR's `practice_return_email_path`. Sent by a
    /// background job with retries; recorded, and audited as a disclosure when sent. Needs
    /// `patients|rx`, OpenEMR's `rx_send_email` on, and `SMTP_URL` set (503 otherwise).
    #[oai(path = "/prescriptions/:id/send/", method = "post", operation_id = "prescriptions_send")]
    async fn send(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        id: Path<i64>,
        body: Json<SendBody>,
    ) -> Result<SendResponse, ApiError> {
        let requested = prescription_send::request(&state, &auth.0, id.0, body.0.to.as_deref()).await?;
        let out = Json(requested.send.into());
        Ok(if requested.queued { SendResponse::Queued(out) } else { SendResponse::AlreadyQueued(out) })
    }

    /// Every e-mail of the prescription, newest first.
    #[oai(path = "/prescriptions/:id/sends/", method = "get", operation_id = "prescriptions_sends")]
    async fn sends(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        id: Path<i64>,
    ) -> Result<SendListResponse, ApiError> {
        let sends = prescription_send::list(&state, &auth.0, id.0).await?;
        Ok(SendListResponse::Ok(Json(PrescriptionSendList {
            items: sends.into_iter().map(Into::into).collect(),
        })))
    }
}
