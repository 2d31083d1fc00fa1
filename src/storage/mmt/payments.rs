//! `mmt_payments`: idempotency keys, receipt rows and voids of patient payments.

use chrono::NaiveDateTime;
use rust_decimal::Decimal;
use sqlx::MySqlConnection;

use crate::storage::StorageError;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PaymentRecord {
    pub session_id: u32,
    pub pid: i64,
    pub encounter: i32,
    pub kind: String,
    pub refund_of: Option<u32>,
    pub receipt_id: Option<i64>,
    pub posted_by: Option<i64>,
    pub request_hash: Option<Vec<u8>>,
    pub voided_at: Option<NaiveDateTime>,
    pub voided_by: Option<i64>,
    pub void_reason: Option<String>,
}

const SELECT: &str = "SELECT session_id, pid, encounter, kind, refund_of, receipt_id, posted_by, request_hash, voided_at, \
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
    pub refund_of: Option<i64>,
    pub receipt_id: Option<i64>,
    pub posted_by: Option<i64>,
    pub key: Option<&'a str>,
    pub request_hash: Option<&'a [u8]>,
    pub now: NaiveDateTime,
}

pub async fn insert(conn: &mut MySqlConnection, r: &NewRecord<'_>) -> Result<(), StorageError> {
    sqlx::query(
        "INSERT INTO mmt_payments (session_id, pid, encounter, kind, refund_of, receipt_id, posted_by, \
         idempotency_key, request_hash, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(r.session_id)
    .bind(r.pid)
    .bind(r.encounter)
    .bind(r.kind)
    .bind(r.refund_of)
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

/// The live (unvoided) refunds of a payment, oldest first.
pub async fn refunds_of(conn: &mut MySqlConnection, session_id: i64) -> Result<Vec<u32>, StorageError> {
    sqlx::query_scalar(
        "SELECT session_id FROM mmt_payments WHERE refund_of = ? AND voided_at IS NULL ORDER BY session_id",
    )
    .bind(session_id)
    .fetch_all(conn)
    .await
    .map_err(StorageError::from_sqlx)
}

/// What the live refunds of a payment have given back (their `ar_session.pay_total` is negative).
pub async fn refunded(conn: &mut MySqlConnection, session_id: i64) -> Result<Decimal, StorageError> {
    sqlx::query_scalar(
        "SELECT COALESCE(-SUM(s.pay_total), 0) FROM mmt_payments p JOIN ar_session s ON s.session_id = p.session_id \
         WHERE p.refund_of = ? AND p.voided_at IS NULL",
    )
    .bind(session_id)
    .fetch_one(conn)
    .await
    .map_err(StorageError::from_sqlx)
}
