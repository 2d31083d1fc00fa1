use chrono::{DateTime, NaiveDateTime, Utc};
use poem::web::Data;
use poem_openapi::{
    ApiResponse, Object, OpenApi,
    param::{Path, Query},
    payload::Json,
};

use crate::{
    app::AppState,
    domain::chat::RoomInput,
    http::{ApiTags, auth::Auth, problem::ApiError},
    service::chat::{Room, conversation, rooms},
    storage::mmt::chat::{
        messages::MessageRow,
        rooms::{MemberRow, MyRoomRow, RoomRow},
    },
};

/// A member and how far they have read.
#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
pub struct ChatMember {
    pub user_id: i64,
    pub username: String,
    /// The id of the last message they have read (0: none).
    pub read_up_to: u64,
    pub read_at: Option<NaiveDateTime>,
}

impl From<&MemberRow> for ChatMember {
    fn from(m: &MemberRow) -> Self {
        Self {
            user_id: m.user_id,
            username: m.username.clone(),
            read_up_to: m.read_up_to,
            read_at: m.read_at,
        }
    }
}

/// A chat room about a patient or an appointment. Its live events are on topic `chat:<id>`.
#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
pub struct ChatRoom {
    pub id: u64,
    /// The patient it is about.
    pub pid: Option<i64>,
    /// The appointment (`pc_eid`) it is about.
    pub appointment_id: Option<u32>,
    pub title: String,
    /// OpenEMR `users.id` of who opened it.
    pub created_by: i64,
    /// UTC.
    pub created_at: NaiveDateTime,
    /// The newest message's id (0: none yet).
    pub last_message_id: u64,
    /// The caller's read marker (room lists).
    pub read_up_to: Option<u64>,
    /// Messages by others after the caller's read marker (room lists).
    pub unread: Option<i64>,
    /// The members (single room).
    pub members: Option<Vec<ChatMember>>,
}

impl ChatRoom {
    fn row(r: RoomRow) -> Self {
        Self {
            id: r.id,
            pid: r.patient(),
            appointment_id: r.appointment_id,
            title: r.title,
            created_by: r.created_by,
            created_at: r.created_at,
            last_message_id: r.last_message_id,
            read_up_to: None,
            unread: None,
            members: None,
        }
    }

    fn room(room: Room) -> Self {
        let members = room.members.iter().map(ChatMember::from).collect();
        Self { members: Some(members), ..Self::row(room.row) }
    }

    fn mine(r: MyRoomRow) -> Self {
        Self { read_up_to: Some(r.read_up_to), unread: Some(r.unread), ..Self::row(r.room) }
    }
}

#[derive(Object)]
pub struct ChatMessage {
    /// Server-assigned; orders the room's history and is its cursor.
    pub id: u64,
    pub room: u64,
    /// OpenEMR username of the author.
    pub author: String,
    pub text: String,
    pub at: DateTime<Utc>,
}

impl From<MessageRow> for ChatMessage {
    fn from(m: MessageRow) -> Self {
        Self { id: m.id, room: m.room_id, author: m.author, text: m.text, at: m.created_at.and_utc() }
    }
}

#[derive(Object)]
pub struct ChatRoomPage {
    pub items: Vec<ChatRoom>,
    /// More rooms may follow: pass `next_before` as `before` for the next page.
    pub more: bool,
    /// Where the next page starts. Not always the last item's id: rooms the caller may no longer
    /// see (a patient outside their panel, say) are left out of a page.
    #[oai(skip_serializing_if_is_none)]
    pub next_before: Option<u64>,
}

#[derive(Object)]
pub struct ChatMessagePage {
    /// Oldest first.
    pub items: Vec<ChatMessage>,
    /// More messages lie beyond this page: before the first item when scrolling back (`before`
    /// or neither given), after the last when catching up (`after`).
    pub more: bool,
}

#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct ChatRoomBody {
    /// The patient the room is about; give this or `appointment_id`.
    pub pid: Option<i64>,
    /// The appointment (`pc_eid`) the room is about: a consultation, about its patient if any.
    pub appointment_id: Option<i64>,
    pub title: Option<String>,
    /// OpenEMR usernames to invite besides the caller.
    #[oai(default, validator(max_items = 50))]
    pub members: Vec<String>,
}

#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct ChatMembersBody {
    /// OpenEMR usernames to add.
    #[oai(validator(max_items = 50))]
    pub users: Vec<String>,
}

#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct ChatPostBody {
    /// At most 4000 characters (413 beyond).
    pub text: String,
}

#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct ChatReadBody {
    /// The id of the last message read.
    pub up_to: u64,
}

#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct ChatTranscriptBody {
    /// OpenEMR usernames whose Messages inbox receives the transcript; default the caller.
    #[oai(default, validator(max_items = 50))]
    pub to: Vec<String>,
    /// A value of OpenEMR's `note_type` list; default Chart Note.
    pub title: Option<String>,
}

#[derive(Object)]
pub struct ChatTranscriptFiled {
    /// The OpenEMR messages (`pnotes` ids) written, one per recipient; read them at
    /// `/api/messages/{id}/`.
    pub message_ids: Vec<i64>,
}

#[derive(ApiResponse)]
pub enum RoomCreated {
    #[oai(status = 201)]
    Created(Json<ChatRoom>, #[oai(header = "Location")] String),
}

#[derive(ApiResponse)]
pub enum RoomResponse {
    #[oai(status = 200)]
    Ok(Json<ChatRoom>),
}

#[derive(ApiResponse)]
pub enum RoomList {
    #[oai(status = 200)]
    Ok(Json<ChatRoomPage>),
}

#[derive(ApiResponse)]
pub enum MessageList {
    #[oai(status = 200)]
    Ok(Json<ChatMessagePage>),
}

#[derive(ApiResponse)]
pub enum Posted {
    #[oai(status = 201)]
    Created(Json<ChatMessage>),
}

#[derive(ApiResponse)]
pub enum MarkerResponse {
    #[oai(status = 200)]
    Ok(Json<ChatMember>),
}

#[derive(ApiResponse)]
pub enum Done {
    #[oai(status = 204)]
    Done,
}

#[derive(ApiResponse)]
pub enum Filed {
    #[oai(status = 201)]
    Created(Json<ChatTranscriptFiled>, #[oai(header = "Location")] String),
}

const DEFAULT_LIMIT: u32 = 50;

#[derive(Default)]
pub struct ChatApi;

#[OpenApi(prefix_path = "/chat/rooms", tag = "ApiTags::Chat")]
impl ChatApi {
    /// Open a room about a patient (`pid`) or an appointment (`appointment_id`), with the caller
    /// and `members` in it. A patient room needs `patients|notes` (addonly) and members who hold
    /// `patients|notes`; an appointment room needs `patients|appt`. Members are told live
    /// (`chat.member.added`).
    #[oai(path = "/", method = "post", operation_id = "chat_rooms_create")]
    async fn create(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        body: Json<ChatRoomBody>,
    ) -> Result<RoomCreated, ApiError> {
        let b = body.0;
        let input =
            RoomInput { pid: b.pid, appointment_id: b.appointment_id, title: b.title, members: b.members };
        let room = rooms::create(&state, &auth.0, input).await?;
        let location = format!("/api/chat/rooms/{}/", room.row.id);
        Ok(RoomCreated::Created(Json(ChatRoom::room(room)), location))
    }

    /// The caller's rooms, newest first, with their read marker and unread count.
    #[oai(path = "/", method = "get", operation_id = "chat_rooms_list")]
    async fn list(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        /// Rooms with ids below this one (the last id of the previous page).
        before: Query<Option<u64>>,
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))] limit: Query<Option<u32>>,
    ) -> Result<RoomList, ApiError> {
        let limit = limit.0.unwrap_or(DEFAULT_LIMIT);
        let page = rooms::mine(&state, &auth.0, before.0, limit).await?;
        Ok(RoomList::Ok(Json(ChatRoomPage {
            items: page.rows.into_iter().map(ChatRoom::mine).collect(),
            more: page.more_before.is_some(),
            next_before: page.more_before,
        })))
    }

    /// A room with its members and their read markers. For anyone but a member (or an
    /// administrator) it is 403 whether it exists or not.
    #[oai(path = "/:id/", method = "get", operation_id = "chat_rooms_get")]
    async fn get(&self, state: Data<&AppState>, auth: Auth, id: Path<u64>) -> Result<RoomResponse, ApiError> {
        Ok(RoomResponse::Ok(Json(ChatRoom::room(rooms::get(&state, &auth.0, id.0).await?))))
    }

    /// Add members (a member or an administrator may).
    #[oai(path = "/:id/members/", method = "post", operation_id = "chat_members_add")]
    async fn add_members(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        id: Path<u64>,
        body: Json<ChatMembersBody>,
    ) -> Result<RoomResponse, ApiError> {
        let room = rooms::add_members(&state, &auth.0, id.0, &body.0.users).await?;
        Ok(RoomResponse::Ok(Json(ChatRoom::room(room))))
    }

    /// Remove a member: anyone may leave; the room's creator or an administrator may remove others.
    #[oai(path = "/:id/members/:username/", method = "delete", operation_id = "chat_members_remove")]
    async fn remove_member(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        id: Path<u64>,
        username: Path<String>,
    ) -> Result<Done, ApiError> {
        rooms::remove_member(&state, &auth.0, id.0, &username.0).await?;
        Ok(Done::Done)
    }

    /// History, oldest first. `after`: the messages after that id (catching up after being
    /// offline: pass the last id seen, and again with the last id of each full page). Otherwise
    /// the newest messages, or those before `before` (scrolling back).
    #[oai(path = "/:id/messages/", method = "get", operation_id = "chat_messages_list")]
    async fn messages(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        id: Path<u64>,
        before: Query<Option<u64>>,
        after: Query<Option<u64>>,
        #[oai(validator(minimum(value = "1"), maximum(value = "200")))] limit: Query<Option<u32>>,
    ) -> Result<MessageList, ApiError> {
        let limit = limit.0.unwrap_or(DEFAULT_LIMIT);
        let rows = conversation::history(&state, &auth.0, id.0, before.0, after.0, limit).await?;
        let more = rows.len() == limit as usize;
        Ok(MessageList::Ok(Json(ChatMessagePage {
            items: rows.into_iter().map(ChatMessage::from).collect(),
            more,
        })))
    }

    /// Post a message. Members receive it live (`chat.message` on topic `chat:<id>`, with its
    /// text); one who had read everything before it also gets a notification. At most 4000
    /// characters (413) and 20 messages per 10 s per user (429).
    #[oai(path = "/:id/messages/", method = "post", operation_id = "chat_messages_post")]
    async fn post(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        id: Path<u64>,
        body: Json<ChatPostBody>,
    ) -> Result<Posted, ApiError> {
        let row = conversation::post(&state, &auth.0, id.0, &body.0.text).await?;
        Ok(Posted::Created(Json(row.into())))
    }

    /// Set the caller's read marker ("read up to message N"; it never moves back). Members get
    /// `chat.read` live.
    #[oai(path = "/:id/read/", method = "post", operation_id = "chat_read")]
    async fn read(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        id: Path<u64>,
        body: Json<ChatReadBody>,
    ) -> Result<MarkerResponse, ApiError> {
        let me = conversation::mark_read(&state, &auth.0, id.0, body.0.up_to).await?;
        Ok(MarkerResponse::Ok(Json(ChatMember::from(&me))))
    }

    /// Tell the other members the caller is typing (`chat.typing`); sent on at most every 3 s.
    #[oai(path = "/:id/typing/", method = "post", operation_id = "chat_typing")]
    async fn typing(&self, state: Data<&AppState>, auth: Auth, id: Path<u64>) -> Result<Done, ApiError> {
        conversation::typing(&state, &auth.0, id.0).await?;
        Ok(Done::Done)
    }

    /// File a patient room's whole conversation to the chart: an OpenEMR message (`pnotes`) about
    /// the patient, written as `POST /api/messages/` writes one, so it shows in OpenEMR's
    /// Messages screen and the patient's notes. Needs `patients|notes` (addonly).
    #[oai(path = "/:id/transcript/", method = "post", operation_id = "chat_transcript")]
    async fn transcript(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        id: Path<u64>,
        body: Json<ChatTranscriptBody>,
    ) -> Result<Filed, ApiError> {
        let b = body.0;
        let threads = conversation::file_transcript(&state, &auth.0, id.0, b.to, b.title).await?;
        let message_ids: Vec<i64> = threads.iter().map(|t| t.pnote.summary.id).collect();
        let location = message_ids.first().map(|id| format!("/api/messages/{id}/")).unwrap_or_default();
        Ok(Filed::Created(Json(ChatTranscriptFiled { message_ids }), location))
    }
}
