//! `mmt_hl7_messages`: each HL7 v2 message received, sealed, with what it was answered and what
//! it became.

use chrono::NaiveDateTime;
use sqlx::{MySqlPool, QueryBuilder};

use crate::storage::{
    StorageError,
    vault::{Field, Vault},
};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MessageRow {
    pub id: u64,
    pub sending_application: String,
    pub sending_facility: String,
    pub control_id: String,
    pub message_type: String,
    pub state: String,
    pub ack_code: String,
    pub ack_text: String,
    pub pid: Option<i64>,
    pub candidates: String,
    pub filed: String,
    pub received_by: i64,
    pub received_at: NaiveDateTime,
    pub resolved_by: Option<i64>,
    pub updated_at: NaiveDateTime,
}

const COLUMNS: &str = "id, sending_application, sending_facility, control_id, message_type, state, ack_code, \
                       ack_text, pid, candidates, filed, received_by, received_at, resolved_by, updated_at";

pub struct NewMessage<'a> {
    pub sending_application: &'a str,
    pub sending_facility: &'a str,
    pub control_id: &'a str,
    pub message_type: &'a str,
    pub raw: &'a str,
    pub received_by: i64,
    pub at: NaiveDateTime,
}

/// Keeps the message unless the sender's control id is already kept; returns the row's id.
pub async fn keep(pool: &MySqlPool, vault: &Vault, m: &NewMessage<'_>) -> Result<u64, StorageError> {
    let sealed = vault.keys().await?.seal(Field::Hl7Message, m.raw);
    sqlx::query(
        "INSERT IGNORE INTO mmt_hl7_messages (sending_application, sending_facility, control_id, message_type, raw, \
         state, received_by, received_at, updated_at) VALUES (?, ?, ?, ?, ?, 'received', ?, ?, ?)",
    )
    .bind(m.sending_application)
    .bind(m.sending_facility)
    .bind(m.control_id)
    .bind(m.message_type)
    .bind(sealed)
    .bind(m.received_by)
    .bind(m.at)
    .bind(m.at)
    .execute(pool)
    .await
    .map_err(StorageError::from_sqlx)?;
    sqlx::query_scalar(
        "SELECT id FROM mmt_hl7_messages WHERE sending_application = ? AND sending_facility = ? AND control_id = ?",
    )
    .bind(m.sending_application)
    .bind(m.sending_facility)
    .bind(m.control_id)
    .fetch_one(pool)
    .await
    .map_err(StorageError::from_sqlx)
}

pub async fn get(pool: &MySqlPool, id: u64) -> Result<Option<MessageRow>, StorageError> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM mmt_hl7_messages WHERE id = ?")))
        .bind(id)
        .fetch_optional(pool)
        .await
        .map_err(StorageError::from_sqlx)
}

/// The message as it was received.
pub async fn raw(pool: &MySqlPool, vault: &Vault, id: u64) -> Result<String, StorageError> {
    let sealed: Vec<u8> = sqlx::query_scalar("SELECT raw FROM mmt_hl7_messages WHERE id = ?")
        .bind(id)
        .fetch_one(pool)
        .await
        .map_err(StorageError::from_sqlx)?;
    Ok(vault.open_all(Field::Hl7Message, &[&sealed]).await?.remove(0))
}

/// What became of a message.
pub struct Settled<'a> {
    pub state: &'a str,
    pub ack_code: &'a str,
    pub ack_text: &'a str,
    pub pid: Option<i64>,
    pub candidates: &'a str,
    pub filed: &'a str,
    pub resolved_by: Option<i64>,
    pub at: NaiveDateTime,
}

pub async fn settle(pool: &MySqlPool, id: u64, s: &Settled<'_>) -> Result<(), StorageError> {
    sqlx::query(
        "UPDATE mmt_hl7_messages SET state = ?, ack_code = ?, ack_text = ?, pid = ?, candidates = ?, filed = ?, \
         resolved_by = COALESCE(?, resolved_by), updated_at = ? WHERE id = ?",
    )
    .bind(s.state)
    .bind(s.ack_code)
    .bind(s.ack_text)
    .bind(s.pid)
    .bind(s.candidates)
    .bind(s.filed)
    .bind(s.resolved_by)
    .bind(s.at)
    .bind(id)
    .execute(pool)
    .await
    .map_err(StorageError::from_sqlx)?;
    Ok(())
}

/// Newest first, of the given types (`CODE^` prefixes) and state, before id `before`.
pub async fn list(
    pool: &MySqlPool,
    codes: &[&str],
    state: Option<&str>,
    before: Option<u64>,
    limit: u32,
) -> Result<Vec<MessageRow>, StorageError> {
    let mut q = QueryBuilder::new(format!("SELECT {COLUMNS} FROM mmt_hl7_messages WHERE ("));
    let mut any = q.separated(" OR ");
    for code in codes {
        any.push("message_type LIKE ").push_bind_unseparated(format!("{code}^%"));
    }
    if codes.is_empty() {
        q.push("FALSE");
    }
    q.push(")");
    if let Some(state) = state {
        q.push(" AND state = ").push_bind(state);
    }
    if let Some(before) = before {
        q.push(" AND id < ").push_bind(before);
    }
    q.push(" ORDER BY id DESC LIMIT ").push_bind(limit);
    q.build_query_as().fetch_all(pool).await.map_err(StorageError::from_sqlx)
}
