//! What members do in a room: read its history, post, mark what they have read, show they are
//! typing, and file a patient room's transcript to the chart.

use chrono::Local;

use super::{ChatError, Result, as_member, deliver, entry, locked, now, publish};
use crate::{
    app::AppState,
    domain::{
        acl::AclLevel,
        chat::{self, MessageNews, TranscriptLine},
        messaging::{
            message::MessageInput,
            notification::{NotificationKind, Subject},
        },
        user::Caller,
        validation::Issues,
    },
    service::{
        audit,
        messaging::{
            messages::{self, Thread},
            notifications,
        },
    },
    storage::{
        StorageError,
        mmt::chat::{
            messages::{self as store, MessageRow, NewMessageRow},
            rooms::{self, MemberRow},
        },
        openemr::audit_log,
    },
};

/// A transcript reads the history in pages of this many messages.
const TRANSCRIPT_PAGE: u32 = 500;
/// The note type a transcript is filed under unless the caller names another.
const TRANSCRIPT_TITLE: &str = "Chart Note";

/// A page of history, oldest first (see [`store::page`]).
pub async fn history(
    state: &AppState,
    caller: &Caller,
    id: u64,
    before: Option<u64>,
    after: Option<u64>,
    limit: u32,
) -> Result<Vec<MessageRow>> {
    let room = as_member(state, caller, id, AclLevel::View).await?;
    let rows = store::page(&state.pool, &state.vault, id, before, after, limit).await?;
    let comments = format!("mmt-sidecar read {} chat messages of room {id}", rows.len());
    audit::record(state, &entry(caller, &room.row, "patient-record-select", comments)).await?;
    Ok(rows)
}

/// Posts a message: stored with a server id and time, delivered live to every member who may see
/// it (the author's other devices too), and a notification for members it starts an unread run
/// for. The author has read their own message.
pub async fn post(state: &AppState, caller: &Caller, id: u64, text: &str) -> Result<MessageRow> {
    let text = chat::message_text(text)?;
    let mut tx = state.pool.begin().await.map_err(StorageError::from_sqlx)?;
    let room = locked(&mut tx, state, caller, id, AclLevel::Addonly).await?;
    let at = now();
    let limit = chat::rate_limit();
    let (recent, oldest) = store::posted_since(&mut tx, caller.user_id.0, at - limit.window).await?;
    if let Some(wait) = limit.retry_after(recent, oldest, at) {
        return Err(ChatError::RateLimited(wait));
    }
    let previous_last = store::last_id(&mut tx, id).await?;
    let row =
        NewMessageRow { room_id: id, author_id: caller.user_id.0, author: &caller.username, text: &text, at };
    let message_id = store::insert(&mut tx, &state.vault, &row).await?;
    rooms::mark_read(&mut tx, id, caller.user_id.0, message_id, at).await?;
    let comments = format!("mmt-sidecar posted chat message {message_id} in room {id}");
    audit_log::record(&mut tx, &entry(caller, &room.row, "patient-record-insert", comments)).await?;
    let news = MessageNews {
        room: room.id(),
        id: message_id,
        author: &caller.username,
        text: &text,
        at: at.and_utc(),
    };
    let mut written = deliver(&mut tx, state, &room, None, |to| news.event(to)).await?;
    for member in room.members.iter().filter(|m| m.user_id != caller.user_id.0) {
        if chat::starts_unread_run(member.read_up_to, previous_last)
            && super::may_see(state, &room, member).await?
        {
            let (kind, subject) = (NotificationKind::ChatMessage, Subject::ChatRoom(id));
            written.push(
                notifications::notify(&mut tx, member.user_id, kind, &subject, &caller.username).await?,
            );
        }
    }
    tx.commit().await.map_err(StorageError::from_sqlx)?;
    publish(state, written);
    Ok(MessageRow {
        id: message_id,
        room_id: id,
        author_id: caller.user_id.0,
        author: caller.username.clone(),
        text,
        created_at: at,
    })
}

/// Moves the caller's read marker up to message `up_to` and tells the room; a marker never moves
/// back.
pub async fn mark_read(state: &AppState, caller: &Caller, id: u64, up_to: u64) -> Result<MemberRow> {
    let mut tx = state.pool.begin().await.map_err(StorageError::from_sqlx)?;
    let room = locked(&mut tx, state, caller, id, AclLevel::View).await?;
    let last = store::last_id(&mut tx, id).await?;
    if up_to > last {
        let mut issues = Issues::default();
        issues.add("up_to", format!("room {id} has no message {up_to}; its newest is {last}"));
        return Err(issues.into());
    }
    let mut written = Vec::new();
    if rooms::mark_read(&mut tx, id, caller.user_id.0, up_to, now()).await? {
        written = deliver(&mut tx, state, &room, None, |to| {
            chat::read_event(room.id(), &caller.username, up_to, to)
        })
        .await?;
    }
    let me = rooms::members(&mut tx, id).await?.into_iter().find(|m| m.user_id == caller.user_id.0);
    tx.commit().await.map_err(StorageError::from_sqlx)?;
    publish(state, written);
    me.ok_or(ChatError::NotMember(id))
}

/// Tells the other members the caller is typing, at most once per [`chat::typing_every`].
pub async fn typing(state: &AppState, caller: &Caller, id: u64) -> Result<()> {
    let room = as_member(state, caller, id, AclLevel::Addonly).await?;
    let at = now();
    let mut tx = state.pool.begin().await.map_err(StorageError::from_sqlx)?;
    let mut written = Vec::new();
    if rooms::typing(&mut tx, id, caller.user_id.0, at, at - chat::typing_every()).await? {
        written = deliver(&mut tx, state, &room, Some(caller.user_id), |to| {
            chat::typing_event(room.id(), &caller.username, to)
        })
        .await?;
    }
    tx.commit().await.map_err(StorageError::from_sqlx)?;
    publish(state, written);
    Ok(())
}

/// Files the whole conversation of a patient room to the chart as an OpenEMR message (`pnotes`)
/// about the patient, written by the messaging service exactly as its messages are: to `to`
/// (default: the caller), under note type `title` (default Chart Note).
pub async fn file_transcript(
    state: &AppState,
    caller: &Caller,
    id: u64,
    to: Vec<String>,
    title: Option<String>,
) -> Result<Vec<Thread>> {
    let room = as_member(state, caller, id, AclLevel::Addonly).await?;
    let Some(pid) = room.row.patient() else {
        return Err(ChatError::Conflict(format!(
            "chat room {id} is about no patient, so its transcript has no chart to go to"
        )));
    };
    let mut all = Vec::new();
    loop {
        let after = all.last().map_or(0, |m: &MessageRow| m.id);
        let page = store::page(&state.pool, &state.vault, id, None, Some(after), TRANSCRIPT_PAGE).await?;
        let full = page.len() == TRANSCRIPT_PAGE as usize;
        all.extend(page);
        if !full {
            break;
        }
    }
    if all.is_empty() {
        return Err(ChatError::Conflict(format!("chat room {id} has no messages to file")));
    }
    let comments = format!("mmt-sidecar read {} chat messages of room {id} for a transcript", all.len());
    audit::record(state, &entry(caller, &room.row, "patient-record-select", comments)).await?;
    let lines: Vec<TranscriptLine<'_>> = all
        .iter()
        .map(|m| TranscriptLine {
            at: m.created_at.and_utc().with_timezone(&Local).naive_local(),
            author: &m.author,
            text: &m.text,
        })
        .collect();
    let text = chat::transcript(room.id(), &room.row.title, &lines);
    let to = if to.is_empty() { vec![caller.username.clone()] } else { to };
    let input = MessageInput {
        to,
        pid: Some(pid),
        title: Some(title.unwrap_or_else(|| TRANSCRIPT_TITLE.into())),
        text: Some(text),
        status: None,
    };
    Ok(messages::create(state, caller, input).await?)
}
