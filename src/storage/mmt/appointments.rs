//! `mmt_appointment_holds` and `mmt_appointment_requests`.

use chrono::NaiveDateTime;
use sqlx::MySqlConnection;

use crate::storage::StorageError;

/// Holds the booking until at least `until` (a checkout keeps its slot while it is open).
pub async fn hold(
    conn: &mut MySqlConnection,
    eid: u32,
    until: NaiveDateTime,
    held_by: i64,
    now: NaiveDateTime,
) -> Result<(), StorageError> {
    sqlx::query(
        "INSERT INTO mmt_appointment_holds (pc_eid, expires_at, held_by, created_at) VALUES (?, ?, ?, ?) \
         ON DUPLICATE KEY UPDATE expires_at = GREATEST(expires_at, VALUES(expires_at))",
    )
    .bind(eid)
    .bind(until)
    .bind(held_by)
    .bind(now)
    .execute(conn)
    .await
    .map_err(StorageError::from_sqlx)?;
    Ok(())
}

pub async fn hold_expiry(
    conn: &mut MySqlConnection,
    eid: u32,
) -> Result<Option<NaiveDateTime>, StorageError> {
    sqlx::query_scalar("SELECT expires_at FROM mmt_appointment_holds WHERE pc_eid = ?")
        .bind(eid)
        .fetch_optional(conn)
        .await
        .map_err(StorageError::from_sqlx)
}

/// Whether a hold was released now (false: another replica or request released it first).
pub async fn release(conn: &mut MySqlConnection, eid: u32) -> Result<bool, StorageError> {
    let done = sqlx::query("DELETE FROM mmt_appointment_holds WHERE pc_eid = ?")
        .bind(eid)
        .execute(conn)
        .await
        .map_err(StorageError::from_sqlx)?;
    Ok(done.rows_affected() == 1)
}

pub async fn expired(
    conn: &mut MySqlConnection,
    now: NaiveDateTime,
    limit: u32,
) -> Result<Vec<u32>, StorageError> {
    sqlx::query_scalar(
        "SELECT pc_eid FROM mmt_appointment_holds WHERE expires_at <= ? ORDER BY expires_at LIMIT ?",
    )
    .bind(now)
    .bind(limit)
    .fetch_all(conn)
    .await
    .map_err(StorageError::from_sqlx)
}

pub struct Request {
    pub request_hash: Vec<u8>,
    pub pc_eid: u32,
}

pub async fn request(
    conn: &mut MySqlConnection,
    user_id: i64,
    key: &str,
) -> Result<Option<Request>, StorageError> {
    let row: Option<(Vec<u8>, u32)> = sqlx::query_as(
        "SELECT request_hash, pc_eid FROM mmt_appointment_requests WHERE user_id = ? AND idempotency_key = ?",
    )
    .bind(user_id)
    .bind(key)
    .fetch_optional(conn)
    .await
    .map_err(StorageError::from_sqlx)?;
    Ok(row.map(|(request_hash, pc_eid)| Request { request_hash, pc_eid }))
}

pub async fn remember(
    conn: &mut MySqlConnection,
    user_id: i64,
    key: &str,
    hash: &[u8; 32],
    eid: u32,
    now: NaiveDateTime,
) -> Result<(), StorageError> {
    sqlx::query(
        "INSERT INTO mmt_appointment_requests (user_id, idempotency_key, request_hash, pc_eid, created_at) \
         VALUES (?, ?, ?, ?, ?)",
    )
    .bind(user_id)
    .bind(key)
    .bind(&hash[..])
    .bind(eid)
    .bind(now)
    .execute(conn)
    .await
    .map_err(StorageError::from_sqlx)?;
    Ok(())
}
