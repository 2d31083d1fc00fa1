//! `mmt_prescription_sends`: each request to e-mail a prescription and what became of it.

use chrono::NaiveDateTime;
use sqlx::{MySqlConnection, MySqlPool};

use crate::storage::StorageError;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SendRow {
    pub id: u64,
    pub prescription_id: i32,
    pub pid: i64,
    pub recipient: String,
    pub requested_by: i64,
    pub requested_name: String,
    pub requested_group: String,
    pub job_id: Vec<u8>,
    pub state: String,
    pub attempts: i32,
    pub message_id: Option<String>,
    pub error: Option<String>,
    pub requested_at: NaiveDateTime,
    pub sent_at: Option<NaiveDateTime>,
}

const COLUMNS: &str = "id, prescription_id, pid, recipient, requested_by, requested_name, requested_group, job_id, \
                       state, attempts, message_id, error, requested_at, sent_at";

pub struct NewSend<'a> {
    pub prescription_id: i64,
    pub pid: i64,
    pub recipient: &'a str,
    pub requested_by: i64,
    pub requested_name: &'a str,
    pub requested_group: &'a str,
    pub job_id: [u8; 16],
    pub requested_at: NaiveDateTime,
}

pub async fn insert(conn: &mut MySqlConnection, s: &NewSend<'_>) -> Result<u64, StorageError> {
    let done = sqlx::query(
        "INSERT INTO mmt_prescription_sends (prescription_id, pid, recipient, requested_by, requested_name, \
         requested_group, job_id, state, requested_at) VALUES (?, ?, ?, ?, ?, ?, ?, 'queued', ?)",
    )
    .bind(s.prescription_id)
    .bind(s.pid)
    .bind(s.recipient)
    .bind(s.requested_by)
    .bind(s.requested_name)
    .bind(s.requested_group)
    .bind(&s.job_id[..])
    .bind(s.requested_at)
    .execute(conn)
    .await
    .map_err(StorageError::from_sqlx)?;
    Ok(done.last_insert_id())
}

/// The queued send of this prescription to this address.
pub async fn queued_to(
    conn: &mut MySqlConnection,
    prescription_id: i64,
    recipient: &str,
) -> Result<Option<SendRow>, StorageError> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM mmt_prescription_sends WHERE prescription_id = ? AND recipient = ? \
         AND state = 'queued' ORDER BY id LIMIT 1"
    )))
    .bind(prescription_id)
    .bind(recipient)
    .fetch_optional(conn)
    .await
    .map_err(StorageError::from_sqlx)
}

pub async fn get(pool: &MySqlPool, id: u64) -> Result<Option<SendRow>, StorageError> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM mmt_prescription_sends WHERE id = ?")))
        .bind(id)
        .fetch_optional(pool)
        .await
        .map_err(StorageError::from_sqlx)
}

/// Newest first.
pub async fn for_prescription(pool: &MySqlPool, prescription_id: i64) -> Result<Vec<SendRow>, StorageError> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM mmt_prescription_sends WHERE prescription_id = ? ORDER BY id DESC LIMIT 200"
    )))
    .bind(prescription_id)
    .fetch_all(pool)
    .await
    .map_err(StorageError::from_sqlx)
}

pub struct Outcome<'a> {
    pub state: &'a str,
    pub message_id: Option<&'a str>,
    pub error: Option<&'a str>,
    pub sent_at: Option<NaiveDateTime>,
}

/// Records one attempt, only while the send is still queued; false when it was settled already.
pub async fn record_attempt(pool: &MySqlPool, id: u64, o: &Outcome<'_>) -> Result<bool, StorageError> {
    let done = sqlx::query(
        "UPDATE mmt_prescription_sends SET state = ?, attempts = attempts + 1, message_id = ?, error = ?, \
         sent_at = ? WHERE id = ? AND state = 'queued'",
    )
    .bind(o.state)
    .bind(o.message_id)
    .bind(o.error)
    .bind(o.sent_at)
    .bind(id)
    .execute(pool)
    .await
    .map_err(StorageError::from_sqlx)?;
    Ok(done.rows_affected() == 1)
}

pub async fn by_job(pool: &MySqlPool, job_id: &[u8; 16]) -> Result<Option<SendRow>, StorageError> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM mmt_prescription_sends WHERE job_id = ?"
    )))
    .bind(&job_id[..])
    .fetch_optional(pool)
    .await
    .map_err(StorageError::from_sqlx)
}
