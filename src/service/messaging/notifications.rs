//! Per-user notifications: stored in the change's transaction and pushed live on topic
//! `notification` to that user alone once it commits. They carry ids and usernames only.

use serde_json::json;
use sqlx::MySqlConnection;

use crate::{
    app::AppState,
    domain::{
        event::{Event, Kind, NewEvent, Topic},
        messaging::notification::{NotificationKind, Subject},
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
    kind: NotificationKind,
    subject: &Subject,
    actor: &str,
) -> Result<Event, StorageError> {
    let subject_id = subject.id();
    let new = NewNotification {
        user_id,
        kind: kind.as_str(),
        message_id: subject.message_id(),
        subject: subject.kind(),
        subject_id: &subject_id,
        actor,
        at: wall_clock_now(),
    };
    let id = notifications::insert(conn, &new).await?;
    let mut data = json!({ "id": id, "subject": subject.kind(), "subject_id": subject_id, "by": actor });
    if let Some(message_id) = subject.message_id() {
        data["message_id"] = json!(message_id);
    }
    let event = NewEvent {
        topic: Topic::parse("notification").expect("a valid topic"),
        kind: Kind::parse(kind.as_str()).expect("notification kinds are valid names"),
        recipient: Some(UserId(user_id)),
        data,
    };
    events::write(conn, event).await
}

/// Notifies `user_id` on a connection of its own and publishes at once, for changes that
/// already committed. Best effort: a notification is no reason to fail the change.
pub async fn notify_now(
    state: &AppState,
    user_id: i64,
    kind: NotificationKind,
    subject: &Subject,
    actor: &str,
) {
    let told = async {
        let mut conn = state.pool.acquire().await.map_err(StorageError::from_sqlx)?;
        notify(&mut conn, user_id, kind, subject, actor).await
    };
    match told.await {
        Ok(event) => events::publish_committed(state, event),
        Err(err) => tracing::warn!(error = %err, kind = kind.as_str(), "could not store a notification"),
    }
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
