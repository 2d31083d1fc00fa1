//! `mmt_events`: live-update events, kept for a while so reconnecting clients can resume.

use chrono::{DateTime, NaiveDateTime, Utc};
use sqlx::{MySqlConnection, MySqlPool};

use crate::{
    domain::{
        event::{Event, Kind, NewEvent, Topic},
        user::UserId,
    },
    storage::StorageError,
};

/// Writes the event, on the caller's connection so it can be part of their transaction; returns
/// its id.
pub async fn insert(
    conn: &mut MySqlConnection,
    event: &NewEvent,
    at: DateTime<Utc>,
) -> Result<u64, StorageError> {
    let done = sqlx::query(
        "INSERT INTO mmt_events (topic, kind, recipient_user_id, data, created_at) VALUES (?, ?, ?, ?, ?)",
    )
    .bind(event.topic.as_str())
    .bind(event.kind.as_str())
    .bind(event.recipient.map(|u| u.0))
    .bind(event.data.to_string())
    .bind(at.naive_utc())
    .execute(conn)
    .await
    .map_err(StorageError::from_sqlx)?;
    Ok(done.last_insert_id())
}

type Row = (u64, String, String, Option<i64>, String, NaiveDateTime);

/// Up to `limit` events after `after_id`, oldest first, that are addressed to `recipient` or to
/// every user.
pub async fn since(
    pool: &MySqlPool,
    after_id: u64,
    recipient: UserId,
    limit: u32,
) -> Result<Vec<Event>, StorageError> {
    // MySQL's JSON type does not decode as text; MariaDB's is text already.
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT id, topic, kind, recipient_user_id, CAST(data AS CHAR), created_at FROM mmt_events \
         WHERE id > ? AND (recipient_user_id = ? OR recipient_user_id IS NULL) ORDER BY id LIMIT ?",
    )
    .bind(after_id)
    .bind(recipient.0)
    .bind(limit)
    .fetch_all(pool)
    .await
    .map_err(StorageError::from_sqlx)?;
    rows.into_iter().map(event_from).collect()
}

/// One event by id, whoever it was for.
pub async fn get(pool: &MySqlPool, id: u64) -> Result<Option<Event>, StorageError> {
    let row: Option<Row> = sqlx::query_as(
        "SELECT id, topic, kind, recipient_user_id, CAST(data AS CHAR), created_at FROM mmt_events WHERE id = ?",
    )
    .bind(id)
    .fetch_optional(pool)
    .await
    .map_err(StorageError::from_sqlx)?;
    row.map(event_from).transpose()
}

fn event_from((id, topic, kind, recipient, data, at): Row) -> Result<Event, StorageError> {
    let corrupt =
        |what: &str| StorageError::Database(sqlx::Error::Decode(format!("mmt_events.{what}").into()));
    Ok(Event {
        id,
        topic: Topic::parse(&topic).map_err(|_| corrupt("topic"))?,
        kind: Kind::parse(&kind).map_err(|_| corrupt("kind"))?,
        recipient: recipient.map(UserId),
        data: serde_json::from_str(&data).map_err(|_| corrupt("data"))?,
        at: at.and_utc(),
    })
}

/// The newest event's id, 0 when there is none: where a client that asks for nothing old starts.
pub async fn latest_id(pool: &MySqlPool) -> Result<u64, StorageError> {
    let id: Option<u64> = sqlx::query_scalar("SELECT MAX(id) FROM mmt_events")
        .fetch_one(pool)
        .await
        .map_err(StorageError::from_sqlx)?;
    Ok(id.unwrap_or(0))
}

/// Deletes the events written before `before`, in batches so each statement holds locks briefly.
pub async fn purge_before(pool: &MySqlPool, before: DateTime<Utc>) -> Result<u64, StorageError> {
    const BATCH: u64 = 10_000;
    let mut purged = 0;
    loop {
        let done = sqlx::query("DELETE FROM mmt_events WHERE created_at < ? LIMIT 10000")
            .bind(before.naive_utc())
            .execute(pool)
            .await
            .map_err(StorageError::from_sqlx)?;
        purged += done.rows_affected();
        if done.rows_affected() < BATCH {
            return Ok(purged);
        }
    }
}
