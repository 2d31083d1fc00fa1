use chrono::{DateTime, Utc};
use poem::{http::StatusCode, web::Data};
use poem_openapi::{
    ApiRequest, ApiResponse, Enum, Object, OpenApi,
    param::{Path, Query},
    payload::{Binary, Json, PlainText},
};

use crate::{
    app::AppState,
    domain::hl7_import::MessageState,
    http::{ApiTags, auth::Auth, paging, problem::ApiError},
    service::hl7_import::{self as service, Hl7Error},
    storage::mmt::hl7_messages::MessageRow,
};

/// The media type of HL7 v2 messages in ER7 (pipe) encoding.
pub const HL7_V2: &str = "application/hl7-v2";

impl From<Hl7Error> for ApiError {
    fn from(err: Hl7Error) -> Self {
        match err {
            Hl7Error::NotHl7(_) => Self::new(StatusCode::BAD_REQUEST, err.to_string()),
            Hl7Error::NotFound(_) => Self::new(StatusCode::NOT_FOUND, err.to_string()),
            Hl7Error::Invalid(issues) => issues.into(),
            Hl7Error::Conflict(_) => Self::new(StatusCode::CONFLICT, err.to_string()),
            Hl7Error::Forbidden(_) => Self::new(StatusCode::FORBIDDEN, err.to_string()),
            Hl7Error::Unavailable(_) => Self::new(StatusCode::SERVICE_UNAVAILABLE, err.to_string()),
            Hl7Error::Acl(inner) => inner.into(),
            Hl7Error::Storage(inner) => inner.into(),
        }
    }
}

/// One HL7 v2 message (ER7), or a batch of them; segments end with CR, LF or CRLF.
#[derive(ApiRequest)]
pub enum Hl7Body {
    #[oai(content_type = "application/hl7-v2")]
    Hl7(Binary<Vec<u8>>),
    Text(PlainText<String>),
}

#[derive(ApiResponse)]
pub enum Acknowledged {
    /// One `ACK` per message received, in order. As in HL7 over HTTP, the ACK is the answer:
    /// `MSA-1 = AA` taken (filed, or queued for a person to say which patient it is about), `AE`
    /// not taken as it stands (an order that is not there, a value OpenEMR refuses), `AR` never
    /// (an unsupported type, a value too long for its column); MSA-3 and ERR say why.
    #[oai(status = 200, content_type = "application/hl7-v2")]
    Ok(PlainText<String>),
}

#[derive(Enum, Clone, Copy, PartialEq, Eq, Debug)]
#[oai(rename = "Hl7MessageState", rename_all = "lowercase")]
pub enum State {
    /// Received, its filing not finished (the database failed); the sender's resend files it.
    Received,
    Filed,
    /// Waiting for a person to say which patient it is about.
    Queued,
    /// Answered `AE`.
    Error,
    /// Answered `AR`.
    Rejected,
}

impl From<MessageState> for State {
    fn from(s: MessageState) -> Self {
        match s {
            MessageState::Received => Self::Received,
            MessageState::Filed => Self::Filed,
            MessageState::Queued => Self::Queued,
            MessageState::Error => Self::Error,
            MessageState::Rejected => Self::Rejected,
        }
    }
}

impl From<State> for MessageState {
    fn from(s: State) -> Self {
        match s {
            State::Received => Self::Received,
            State::Filed => Self::Filed,
            State::Queued => Self::Queued,
            State::Error => Self::Error,
            State::Rejected => Self::Rejected,
        }
    }
}

/// A received HL7 message. Times are UTC.
#[derive(Object)]
#[oai(rename = "Hl7Message")]
pub struct Message {
    pub id: u64,
    /// MSH-3.
    pub sending_application: String,
    /// MSH-4.
    pub sending_facility: String,
    /// MSH-10.
    pub control_id: String,
    /// MSH-9 as `CODE^TRIGGER`.
    pub message_type: String,
    pub state: State,
    /// What the sender was answered (MSA-1), empty while `received`.
    pub ack_code: String,
    pub ack_text: String,
    /// The patient it was filed for.
    pub pid: Option<i64>,
    /// For a queued message: the patients it may be about.
    pub candidates: Vec<i64>,
    /// The OpenEMR rows it became.
    pub filed: String,
    pub received_by: i64,
    pub received_at: DateTime<Utc>,
    /// Who chose the patient of a queued message.
    pub resolved_by: Option<i64>,
    pub updated_at: DateTime<Utc>,
    /// The message as received (only when one message is read).
    pub text: Option<String>,
}

fn view(r: MessageRow, text: Option<String>) -> Result<Message, ApiError> {
    let state = MessageState::parse(&r.state).ok_or_else(|| {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "this message's state is not one this version knows")
    })?;
    Ok(Message {
        id: r.id,
        sending_application: r.sending_application,
        sending_facility: r.sending_facility,
        control_id: r.control_id,
        message_type: r.message_type,
        state: state.into(),
        ack_code: r.ack_code,
        ack_text: r.ack_text,
        pid: r.pid,
        candidates: r.candidates.split(',').filter_map(|p| p.parse().ok()).collect(),
        filed: r.filed,
        received_by: r.received_by,
        received_at: r.received_at.and_utc(),
        resolved_by: r.resolved_by,
        updated_at: r.updated_at.and_utc(),
        text,
    })
}

#[derive(Object)]
#[oai(rename = "Hl7MessagePage")]
pub struct Page {
    pub items: Vec<Message>,
    pub page_size: u32,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Object)]
#[oai(rename = "Hl7Resolution")]
pub struct Resolution {
    /// The patient the message is about; absent or null to register PID as a new patient.
    pub pid: Option<i64>,
}

#[derive(ApiResponse)]
pub enum One {
    #[oai(status = 200)]
    Ok(Json<Message>),
}

#[derive(ApiResponse)]
pub enum Listed {
    #[oai(status = 200)]
    Ok(Json<Page>),
}

#[derive(Default)]
pub struct Hl7Api;

#[OpenApi(prefix_path = "/hl7", tag = "ApiTags::Hl7")]
impl Hl7Api {
    /// Receive HL7 v2 messages.
    ///
    /// `ORU^R01` lab results are filed into OpenEMR's procedure tables as
    /// `receive_hl7_results` files them: under the OpenEMR order ORC-2/OBR-2 names (PID must agree
    /// with its patient), or, without one, under an order made for the lab's number in the
    /// patient's latest encounter of 30 days; `ED` results become documents (category global
    /// `lab_results_category_name`). `MDM^T02/T04/T08` becomes a document (`TX` lines as text, or
    /// one `ED` file; category global `gbl_mdm_category_name`) and an inbox message to the
    /// provider of PV1-8 or PV1-52. `ADT^A04` registers a patient and `ADT^A08` updates one. The
    /// patient of a message without an order is matched from PID as `match_patient` does; none or
    /// several matches queue the message for a person (`POST /hl7/messages/{id}/resolve/`), and the
    /// sender is answered `AA`. Values too long for OpenEMR's columns, unsupported types and bad
    /// dates are answered `AR` naming the field. A resend (same MSH-3, MSH-4, MSH-10 and text) is
    /// answered as the first time and filed once; another message under a used control id is `AR`.
    /// Needs OpenEMR `patients|lab` (ORU), `patients|docs` (MDM) or `patients|demo` (ADT) at
    /// `addonly`. A body that is not HL7 v2 at all is a 400 problem.
    #[oai(path = "/", method = "post", operation_id = "hl7_receive")]
    async fn receive(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        body: Hl7Body,
    ) -> Result<Acknowledged, ApiError> {
        let text = match body {
            Hl7Body::Text(text) => text.0,
            Hl7Body::Hl7(bytes) => String::from_utf8(bytes.0)
                .map_err(|_| ApiError::new(StatusCode::BAD_REQUEST, "the HL7 message is not UTF-8"))?,
        };
        Ok(Acknowledged::Ok(PlainText(service::receive(&state, &auth.0, &text).await?)))
    }

    /// Received HL7 messages, newest first.
    ///
    /// Only the kinds the caller may receive (see `hl7_receive`); `state=queued` lists those
    /// waiting for a person. Recorded in OpenEMR's audit log.
    #[oai(path = "/messages/", method = "get", operation_id = "hl7_messages_list")]
    async fn list(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        #[oai(name = "state")] filter: Query<Option<State>>,
        cursor: Query<Option<String>>,
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))] page_size: Query<Option<u32>>,
    ) -> Result<Listed, ApiError> {
        let page_size = page_size.0.unwrap_or(25).min(100);
        let before = paging::cursor_before(cursor.0.as_deref())?.map(|id| id.max(0) as u64);
        let page = service::list(&state, &auth.0, filter.0.map(Into::into), before, page_size).await?;
        let next_cursor = paging::next_cursor(page.more_before.map(|id| id as i64), true);
        let items = page.rows.into_iter().map(|r| view(r, None)).collect::<Result<_, _>>()?;
        Ok(Listed::Ok(Json(Page { items, page_size, next_cursor })))
    }

    /// A received HL7 message, with its text as received.
    ///
    /// Recorded in OpenEMR's audit log.
    #[oai(path = "/messages/:id/", method = "get", operation_id = "hl7_messages_get")]
    async fn get(&self, state: Data<&AppState>, auth: Auth, id: Path<u64>) -> Result<One, ApiError> {
        let (row, text) = service::get(&state, &auth.0, id.0).await?;
        Ok(One::Ok(Json(view(row, Some(text))?)))
    }

    /// File a queued message for the patient a person chose.
    ///
    /// `pid` names the patient; without it, PID is registered as a new patient (OpenEMR's
    /// required demographics apply). Only a `queued` message is resolved (409 otherwise); a value
    /// OpenEMR refuses is a 422 and the message stays queued.
    #[oai(path = "/messages/:id/resolve/", method = "post", operation_id = "hl7_messages_resolve")]
    async fn resolve(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        id: Path<u64>,
        body: Json<Resolution>,
    ) -> Result<One, ApiError> {
        let row = service::resolve(&state, &auth.0, id.0, body.0.pid).await?;
        Ok(One::Ok(Json(view(row, None)?)))
    }
}
