use chrono::NaiveDateTime;
use poem::web::Data;
use poem_openapi::{ApiResponse, Enum, Object, OpenApi, param::Path, param::Query, payload::Json};

use crate::{
    app::AppState,
    domain::messaging::{
        message::{Mailbox, MessageInput},
        thread,
    },
    http::{ApiTags, auth::Auth, problem::ApiError},
    service::messaging::messages::{self, ListQuery, Thread},
    storage::{mmt::messaging::receipts::Receipt, openemr::messaging::pnotes::Summary},
};

/// One entry of a thread, parsed from OpenEMR's `pnotes.body`.
#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
pub struct Entry {
    /// To the minute, as OpenEMR stamps entries.
    pub at: Option<NaiveDateTime>,
    pub author: Option<String>,
    pub recipient: Option<String>,
    pub text: String,
}

#[derive(Object)]
pub struct ReadReceipt {
    pub user: String,
    pub read_at: NaiveDateTime,
}

/// A message thread (one OpenEMR `pnotes` row: one recipient).
#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
pub struct Message {
    pub id: i64,
    /// The patient it is about; absent for none.
    pub pid: Option<i64>,
    /// Who started the thread (`pnotes.user`).
    pub from: String,
    /// Who it waits on now (`pnotes.assigned_to`).
    pub to: String,
    /// A value of OpenEMR's `note_type` list.
    pub title: String,
    /// A value of OpenEMR's `message_status` list.
    pub status: String,
    /// False once Done: it has left OpenEMR's inbox.
    pub active: bool,
    /// When it was delivered to its recipient (created).
    pub delivered_at: Option<NaiveDateTime>,
    /// When its current recipient first opened it since it was last assigned to them.
    pub read_at: Option<NaiveDateTime>,
    pub updated_at: Option<NaiveDateTime>,
    /// The conversation (single message only).
    pub entries: Option<Vec<Entry>>,
    /// Every read receipt (single message only).
    pub receipts: Option<Vec<ReadReceipt>>,
}

impl Message {
    fn summary(s: Summary, receipts: &[Receipt]) -> Self {
        let read_at = receipts
            .iter()
            .find(|r| r.pnote_id == s.id && Some(r.username.as_str()) == s.assigned_to.as_deref())
            .map(|r| r.read_at);
        Self {
            id: s.id,
            pid: s.pid.filter(|p| *p > 0),
            from: s.user.unwrap_or_default(),
            to: s.assigned_to.unwrap_or_default(),
            title: s.title.unwrap_or_default(),
            status: s.message_status,
            active: s.activity == Some(1),
            delivered_at: s.date,
            read_at,
            updated_at: s.update_date,
            entries: None,
            receipts: None,
        }
    }

    fn thread(t: Thread) -> Self {
        let entries = thread::parse(t.pnote.body.as_deref().unwrap_or(""))
            .into_iter()
            .map(|e| Entry { at: e.at, author: e.author, recipient: e.recipient, text: e.text })
            .collect();
        let receipts =
            t.receipts.iter().map(|r| ReadReceipt { user: r.username.clone(), read_at: r.read_at }).collect();
        Self {
            entries: Some(entries),
            receipts: Some(receipts),
            ..Self::summary(t.pnote.summary, &t.receipts)
        }
    }
}

/// A new message: one thread per recipient.
#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct MessageBody {
    /// OpenEMR usernames of the recipients.
    #[oai(validator(max_items = 50))]
    pub to: Vec<String>,
    /// The patient it is about; absent for none.
    pub pid: Option<i64>,
    /// A value of OpenEMR's `note_type` list; default Unassigned.
    pub title: Option<String>,
    pub text: Option<String>,
    /// A value of OpenEMR's `message_status` list; default New.
    pub status: Option<String>,
}

#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct ReplyBody {
    pub text: Option<String>,
    /// Username to assign the thread to; defaults to the other party.
    pub to: Option<String>,
    /// Default New: the thread is new for its recipient.
    pub status: Option<String>,
}

#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct MessageChange {
    pub status: Option<String>,
    /// Reassign (forward) the thread to this username.
    pub assigned_to: Option<String>,
}

#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
pub struct MessagePage {
    pub items: Vec<Message>,
    pub page_size: u32,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Object)]
pub struct MessageBatch {
    /// One thread per recipient, in the order given.
    pub items: Vec<Message>,
}

#[derive(Enum, Clone, Copy, PartialEq, Eq, Debug)]
#[oai(rename_all = "lowercase")]
pub enum MailboxParam {
    Inbox,
    Sent,
    All,
}

#[derive(ApiResponse)]
pub enum PageResponse {
    #[oai(status = 200)]
    Ok(Json<MessagePage>),
}

#[derive(ApiResponse)]
pub enum MessageResponse {
    #[oai(status = 200)]
    Ok(Json<Message>),
}

#[derive(ApiResponse)]
pub enum Sent {
    /// Sent: one OpenEMR `pnotes` row per recipient.
    #[oai(status = 201)]
    Created(Json<MessageBatch>, #[oai(header = "Location")] String),
}

#[derive(ApiResponse)]
pub enum Deleted {
    #[oai(status = 204)]
    Deleted,
}

const MAX_PAGE_SIZE: u32 = 100;

#[derive(Default)]
pub struct MessagesApi;

#[OpenApi(prefix_path = "/messages", tag = "ApiTags::Messages")]
impl MessagesApi {
    /// The caller's messages, newest first: `box=inbox` (default; without `status`, OpenEMR's
    /// active inbox), `sent` or `all`.
    ///
    /// Administrators (`admin|super`) may name another `user`. Threads about a patient are listed
    /// only with OpenEMR `patients|notes`.
    #[oai(path = "/", method = "get", operation_id = "messages_list")]
    #[allow(clippy::too_many_arguments)]
    async fn list(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        #[oai(name = "box")] mailbox: Query<Option<MailboxParam>>,
        /// A value of OpenEMR's `message_status` list.
        status: Query<Option<String>>,
        /// Only threads about this pid.
        patient: Query<Option<i64>>,
        /// Another user's mailbox (administrators).
        user: Query<Option<String>>,
        cursor: Query<Option<String>>,
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))] page_size: Query<Option<u32>>,
    ) -> Result<PageResponse, ApiError> {
        let page_size = page_size.0.unwrap_or(25).min(MAX_PAGE_SIZE);
        let before = crate::http::paging::cursor_before(cursor.0.as_deref())?;
        let mailbox = match mailbox.0.unwrap_or(MailboxParam::Inbox) {
            MailboxParam::Inbox => Mailbox::Inbox,
            MailboxParam::Sent => Mailbox::Sent,
            MailboxParam::All => Mailbox::All,
        };
        let query =
            ListQuery { mailbox, user: user.0, status: status.0, pid: patient.0, before, limit: page_size };
        let found = messages::list(&state, &auth.0, query).await?;
        let full_page = found.rows.len() == page_size as usize;
        let next_cursor = crate::http::paging::next_cursor(found.rows.last().map(|r| r.id), full_page);
        let items = found.rows.into_iter().map(|r| Message::summary(r, &found.receipts)).collect();
        Ok(PageResponse::Ok(Json(MessagePage { items, page_size, next_cursor })))
    }

    /// Send a message as OpenEMR's Messages screen does (`addPnote`, one row per recipient). The
    /// sender is always the caller. A message about a patient needs `patients|notes` (addonly).
    #[oai(path = "/", method = "post", operation_id = "messages_create")]
    async fn create(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        body: Json<MessageBody>,
    ) -> Result<Sent, ApiError> {
        let b = body.0;
        let input = MessageInput { to: b.to, pid: b.pid, title: b.title, text: b.text, status: b.status };
        let threads = messages::create(&state, &auth.0, input).await?;
        let items: Vec<Message> = threads.into_iter().map(Message::thread).collect();
        let location = items.first().map(|m| format!("/api/messages/{}/", m.id)).unwrap_or_default();
        Ok(Sent::Created(Json(MessageBatch { items }), location))
    }

    /// One thread with its entries and receipts. The recipient's first open stores a read receipt
    /// and turns status New into Read. Someone else's thread is 404.
    #[oai(path = "/:id/", method = "get", operation_id = "messages_get")]
    async fn get(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        id: Path<i64>,
    ) -> Result<MessageResponse, ApiError> {
        let thread = messages::read(&state, &auth.0, id.0).await?;
        Ok(MessageResponse::Ok(Json(Message::thread(thread))))
    }

    /// Reply as OpenEMR's `updatePnote` does: the entry is appended to the thread, which is
    /// assigned to `to` (default: the other party). Concurrent replies are all kept.
    #[oai(path = "/:id/reply/", method = "post", operation_id = "messages_reply")]
    async fn reply(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        id: Path<i64>,
        body: Json<ReplyBody>,
    ) -> Result<MessageResponse, ApiError> {
        let b = body.0;
        let thread = messages::reply(&state, &auth.0, id.0, b.to, b.text, b.status).await?;
        Ok(MessageResponse::Ok(Json(Message::thread(thread))))
    }

    /// Change the status and/or reassign (forward) the thread.
    #[oai(path = "/:id/", method = "patch", operation_id = "messages_update")]
    async fn update(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        id: Path<i64>,
        body: Json<MessageChange>,
    ) -> Result<MessageResponse, ApiError> {
        let b = body.0;
        let thread = messages::update(&state, &auth.0, id.0, b.status, b.assigned_to).await?;
        Ok(MessageResponse::Ok(Json(Message::thread(thread))))
    }

    /// Delete as OpenEMR's `deletePnote` does (`deleted=1`): only its recipient, or anyone who
    /// sees it once it is Done (409 otherwise).
    #[oai(path = "/:id/", method = "delete", operation_id = "messages_delete")]
    async fn delete(&self, state: Data<&AppState>, auth: Auth, id: Path<i64>) -> Result<Deleted, ApiError> {
        messages::delete(&state, &auth.0, id.0).await?;
        Ok(Deleted::Deleted)
    }
}
