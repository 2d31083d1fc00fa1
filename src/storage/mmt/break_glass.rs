//! `mmt_break_glass`: each time a clinician reached a chart outside their panel, why, and until when.

use chrono::NaiveDateTime;
use sqlx::MySqlConnection;

use crate::storage::StorageError;

pub struct Grant<'a> {
    pub pid: i64,
    pub user_id: i64,
    pub reason: &'a str,
    pub granted_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
}

pub async fn insert(conn: &mut MySqlConnection, g: &Grant<'_>) -> Result<u64, StorageError> {
    let done = sqlx::query(
        "INSERT INTO mmt_break_glass (pid, user_id, reason, granted_at, expires_at) VALUES (?, ?, ?, ?, ?)",
    )
    .bind(g.pid)
    .bind(g.user_id)
    .bind(g.reason)
    .bind(g.granted_at)
    .bind(g.expires_at)
    .execute(conn)
    .await
    .map_err(StorageError::from_sqlx)?;
    Ok(done.last_insert_id())
}
