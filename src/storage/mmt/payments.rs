//! `mmt_payments`: idempotency keys, receipt rows and voids of patient payments.

use chrono::NaiveDateTime;
use sqlx::MySqlConnection;

use crate::storage::StorageError;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PaymentRecord {
    pub session_id: u32,
    pub pid: i64,
    pub encounter: i32,
    pub kind: String,
    pub receipt_id: Option<i64>,
    pub posted_by: Option<i64>,
    pub request_hash: Option<Vec<u8>>,
    pub voided_at: Option<NaiveDateTime>,
    pub voided_by: Option<i64>,
    pub void_reason: Option<String>,
}

const SELECT: &str = "SELECT session_id, pid, encounter, kind, receipt_id, posted_by, request_hash, voided_at, \
     voided_by, void_reason FROM mmt_payments";

pub async fn by_key(
    conn: &mut MySqlConnection,
    user_id: i64,
    key: &str,
) -> Result<Option<PaymentRecord>, StorageError> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("{SELECT} WHERE posted_by = ? AND idempotency_key = ?")))
        .bind(user_id)
        .bind(key)
        .fetch_optional(conn)
        .await
        .map_err(StorageError::from_sqlx)
}

pub async fn get(
    conn: &mut MySqlConnection,
    session_id: i64,
    lock: bool,
) -> Result<Option<PaymentRecord>, StorageError> {
    let lock = if lock { " FOR UPDATE" } else { "" };
    sqlx::query_as(sqlx::AssertSqlSafe(format!("{SELECT} WHERE session_id = ?{lock}")))
        .bind(session_id)
        .fetch_optional(conn)
        .await
        .map_err(StorageError::from_sqlx)
}

pub struct NewRecord<'a> {
    pub session_id: i64,
    pub pid: i64,
    pub encounter: i64,
    pub kind: &'a str,
    pub receipt_id: Option<i64>,
    pub posted_by: Option<i64>,
    pub key: Option<&'a str>,
    pub request_hash: Option<&'a [u8]>,
    pub now: NaiveDateTime,
}

pub async fn insert(conn: &mut MySqlConnection, r: &NewRecord<'_>) -> Result<(), StorageError> {
    sqlx::query(
        "INSERT INTO mmt_payments (session_id, pid, encounter, kind, receipt_id, posted_by, idempotency_key, \
         request_hash, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(r.session_id)
    .bind(r.pid)
    .bind(r.encounter)
    .bind(r.kind)
    .bind(r.receipt_id)
    .bind(r.posted_by)
    .bind(r.key)
    .bind(r.request_hash)
    .bind(r.now)
    .execute(conn)
    .await
    .map_err(StorageError::from_sqlx)?;
    Ok(())
}

pub async fn void(
    conn: &mut MySqlConnection,
    session_id: i64,
    by: i64,
    reason: Option<&str>,
    now: NaiveDateTime,
) -> Result<(), StorageError> {
    sqlx::query("UPDATE mmt_payments SET voided_at = ?, voided_by = ?, void_reason = ? WHERE session_id = ?")
        .bind(now)
        .bind(by)
        .bind(reason)
        .bind(session_id)
        .execute(conn)
        .await
        .map_err(StorageError::from_sqlx)?;
    Ok(())
}
