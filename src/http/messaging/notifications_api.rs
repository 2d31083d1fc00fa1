use chrono::NaiveDateTime;
use poem::web::Data;
use poem_openapi::{ApiResponse, Object, OpenApi, param::Path, param::Query, payload::Json};

use crate::{
    app::AppState,
    http::{ApiTags, auth::Auth, problem::ApiError},
    service::messaging::notifications,
    storage::mmt::messaging::notifications::NotificationRow,
};

/// Something the signed-in user was told (ids only; open the message for its content).
#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
pub struct Notification {
    pub id: u64,
    /// `message.received` (a message was sent or replied to you), `transcription.changes_requested`
    /// (a reviewer sent your transcription back), `appointment.booked` / `appointment.cancelled`
    /// (someone else booked or cancelled one of your appointments), `job.failed` (a job you queued
    /// failed, e.g. an e-mailed prescription), `chat.message` (a new message in a chat room whose
    /// messages you had all read), `document.text_ready` (the text of a document you sent to OCR
    /// is ready).
    pub kind: String,
    /// What it is about: `message`, `transcription`, `appointment`, `job`, `chat_room` or
    /// `document`.
    pub subject: String,
    /// The id of that record (a message id, a transcription uuid, an appointment id, a job id).
    pub subject_id: Option<String>,
    /// For `message.received`: the message.
    pub message_id: Option<i64>,
    /// Username of who caused it.
    pub by: String,
    pub created_at: NaiveDateTime,
    pub read_at: Option<NaiveDateTime>,
}

impl From<NotificationRow> for Notification {
    fn from(r: NotificationRow) -> Self {
        Self {
            id: r.id,
            kind: r.kind,
            subject: r.subject,
            subject_id: r.subject_id,
            message_id: r.message_id,
            by: r.actor,
            created_at: r.created_at,
            read_at: r.read_at,
        }
    }
}

#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
pub struct NotificationPage {
    pub items: Vec<Notification>,
    pub page_size: u32,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

#[derive(ApiResponse)]
pub enum PageResponse {
    #[oai(status = 200)]
    Ok(Json<NotificationPage>),
}

#[derive(ApiResponse)]
pub enum NotificationResponse {
    #[oai(status = 200)]
    Ok(Json<Notification>),
}

#[derive(Default)]
pub struct NotificationsApi;

#[OpenApi(prefix_path = "/notifications", tag = "ApiTags::Notifications")]
impl NotificationsApi {
    /// The caller's notifications, newest first (also pushed live on topic `notification`).
    #[oai(path = "/", method = "get", operation_id = "notifications_list")]
    async fn list(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        /// Only those not yet marked read.
        unread: Query<Option<bool>>,
        cursor: Query<Option<String>>,
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))] page_size: Query<Option<u32>>,
    ) -> Result<PageResponse, ApiError> {
        let page_size = page_size.0.unwrap_or(25);
        let before = crate::http::paging::cursor_before(cursor.0.as_deref())?.map(|id| id.max(0) as u64);
        let rows = notifications::list(&state, &auth.0, unread.0.unwrap_or(false), before, page_size).await?;
        let next_cursor = crate::http::paging::next_cursor(
            rows.last().map(|r| r.id as i64),
            rows.len() == page_size as usize,
        );
        let items = rows.into_iter().map(Notification::from).collect();
        Ok(PageResponse::Ok(Json(NotificationPage { items, page_size, next_cursor })))
    }

    /// Mark one of the caller's notifications read (the first time stands). Another user's is 404.
    #[oai(path = "/:id/read/", method = "post", operation_id = "notifications_read")]
    async fn read(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        id: Path<u64>,
    ) -> Result<NotificationResponse, ApiError> {
        let row = notifications::mark_read(&state, &auth.0, id.0).await?;
        Ok(NotificationResponse::Ok(Json(row.into())))
    }
}
