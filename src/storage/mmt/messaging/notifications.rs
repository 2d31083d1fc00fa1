//! `mmt_notifications`: what each user has been told, and whether they have seen it.

use chrono::NaiveDateTime;
use sqlx::{MySql, MySqlConnection, MySqlPool, QueryBuilder};

use crate::storage::StorageError;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct NotificationRow {
    pub id: u64,
    pub kind: String,
    pub message_id: Option<i64>,
    pub subject: String,
    pub subject_id: Option<String>,
    pub actor: String,
    pub created_at: NaiveDateTime,
    pub read_at: Option<NaiveDateTime>,
}

const COLUMNS: &str = "id, kind, message_id, subject, subject_id, actor, created_at, read_at";

pub struct NewNotification<'a> {
    pub user_id: i64,
    pub kind: &'a str,
    pub message_id: Option<i64>,
    pub subject: &'a str,
    pub subject_id: &'a str,
    pub actor: &'a str,
    pub at: NaiveDateTime,
}

pub async fn insert(conn: &mut MySqlConnection, n: &NewNotification<'_>) -> Result<u64, StorageError> {
    let done = sqlx::query(
        "INSERT INTO mmt_notifications (user_id, kind, message_id, subject, subject_id, actor, created_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(n.user_id)
    .bind(n.kind)
    .bind(n.message_id)
    .bind(n.subject)
    .bind(n.subject_id)
    .bind(n.actor)
    .bind(n.at)
    .execute(conn)
    .await
    .map_err(StorageError::from_sqlx)?;
    Ok(done.last_insert_id())
}

/// A user's notifications, newest first, below `before` when given.
pub async fn list(
    pool: &MySqlPool,
    user_id: i64,
    unread_only: bool,
    before: Option<u64>,
    limit: u32,
) -> Result<Vec<NotificationRow>, StorageError> {
    let mut q: QueryBuilder<MySql> =
        QueryBuilder::new(format!("SELECT {COLUMNS} FROM mmt_notifications WHERE user_id = "));
    q.push_bind(user_id);
    if unread_only {
        q.push(" AND read_at IS NULL");
    }
    if let Some(before) = before {
        q.push(" AND id < ").push_bind(before);
    }
    q.push(" ORDER BY id DESC LIMIT ").push_bind(limit);
    q.build_query_as().fetch_all(pool).await.map_err(StorageError::from_sqlx)
}

/// Marks one of the user's notifications read (the first time only); `None` if it is not theirs.
pub async fn mark_read(
    pool: &MySqlPool,
    user_id: i64,
    id: u64,
    at: NaiveDateTime,
) -> Result<Option<NotificationRow>, StorageError> {
    sqlx::query("UPDATE mmt_notifications SET read_at = COALESCE(read_at, ?) WHERE id = ? AND user_id = ?")
        .bind(at)
        .bind(id)
        .bind(user_id)
        .execute(pool)
        .await
        .map_err(StorageError::from_sqlx)?;
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM mmt_notifications WHERE id = ? AND user_id = ?"
    )))
    .bind(id)
    .bind(user_id)
    .fetch_optional(pool)
    .await
    .map_err(StorageError::from_sqlx)
}
