//! Per-user notifications: stored in the change's transaction and pushed live on topic
//! `notification` to that user alone once it commits. They carry ids and usernames only.

use serde_json::json;
use sqlx::MySqlConnection;

use crate::{
    app::AppState,
    domain::{
        event::{Event, Kind, NewEvent, Topic},
        user::{Caller, UserId},
    },
    service::{events, messaging::messages::MessageError, wall_clock_now},
    storage::{
        StorageError,
        mmt::messaging::notifications::{self, NewNotification, NotificationRow},
    },
};

/// Stores a notification for `user_id` and writes its live event; publish the event after commit.
pub async fn notify(
    conn: &mut MySqlConnection,
    user_id: i64,
    kind: &str,
    message_id: i64,
    actor: &str,
) -> Result<Event, StorageError> {
    let new = NewNotification { user_id, kind, message_id: Some(message_id), actor, at: wall_clock_now() };
    let id = notifications::insert(conn, &new).await?;
    let event = NewEvent {
        topic: Topic::parse("notification").expect("a valid topic"),
        kind: Kind::parse(kind).expect("notification kinds are valid names"),
        recipient: Some(UserId(user_id)),
        data: json!({ "id": id, "message_id": message_id, "by": actor }),
    };
    events::write(conn, event).await
}

fn own(caller: &Caller) -> Result<i64, MessageError> {
    if caller.is_guest() { Err(MessageError::Guest) } else { Ok(caller.user_id.0) }
}

pub async fn list(
    state: &AppState,
    caller: &Caller,
    unread_only: bool,
    before: Option<u64>,
    limit: u32,
) -> Result<Vec<NotificationRow>, MessageError> {
    Ok(notifications::list(&state.pool, own(caller)?, unread_only, before, limit).await?)
}

/// Someone else's notification is 404, as if it did not exist.
pub async fn mark_read(state: &AppState, caller: &Caller, id: u64) -> Result<NotificationRow, MessageError> {
    notifications::mark_read(&state.pool, own(caller)?, id, wall_clock_now())
        .await?
        .ok_or(MessageError::NoNotification(id))
}
