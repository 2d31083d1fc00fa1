//! `mmt_message_receipts`: when each recipient first opened a thread.

use chrono::NaiveDateTime;
use sqlx::{MySql, MySqlConnection, MySqlPool, QueryBuilder};

use crate::storage::StorageError;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Receipt {
    pub pnote_id: i64,
    pub username: String,
    pub read_at: NaiveDateTime,
}

/// Stores the receipt unless the reader has one; true when this was the first open.
pub async fn record(
    conn: &mut MySqlConnection,
    pnote_id: i64,
    user_id: i64,
    username: &str,
    at: NaiveDateTime,
) -> Result<bool, StorageError> {
    let done = sqlx::query(
        "INSERT IGNORE INTO mmt_message_receipts (pnote_id, user_id, username, read_at) VALUES (?, ?, ?, ?)",
    )
    .bind(pnote_id)
    .bind(user_id)
    .bind(username)
    .bind(at)
    .execute(conn)
    .await
    .map_err(StorageError::from_sqlx)?;
    Ok(done.rows_affected() == 1)
}

/// Forgets `username`'s receipt: the thread waits on them again.
pub async fn clear(conn: &mut MySqlConnection, pnote_id: i64, username: &str) -> Result<(), StorageError> {
    sqlx::query("DELETE FROM mmt_message_receipts WHERE pnote_id = ? AND username = ?")
        .bind(pnote_id)
        .bind(username)
        .execute(conn)
        .await
        .map_err(StorageError::from_sqlx)
        .map(|_| ())
}

/// Every receipt of these threads.
pub async fn for_threads(pool: &MySqlPool, ids: &[i64]) -> Result<Vec<Receipt>, StorageError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut q: QueryBuilder<MySql> =
        QueryBuilder::new("SELECT pnote_id, username, read_at FROM mmt_message_receipts WHERE pnote_id IN (");
    let mut list = q.separated(", ");
    for id in ids {
        list.push_bind(id);
    }
    q.push(") ORDER BY read_at");
    q.build_query_as().fetch_all(pool).await.map_err(StorageError::from_sqlx)
}
