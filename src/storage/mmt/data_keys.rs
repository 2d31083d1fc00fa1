//! `mmt_data_keys`: the wrapped data keys of encryption at rest (`storage::vault`).

use chrono::NaiveDateTime;
use sqlx::MySqlConnection;

use crate::storage::StorageError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Seals values; the newest one seals new values.
    Data,
    /// Keys the blind index of searchable text.
    Index,
}

impl Purpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Data => "data",
            Self::Index => "index",
        }
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct KeyRow {
    pub id: u32,
    pub purpose: String,
    pub wrapped: Vec<u8>,
    pub master_id: Vec<u8>,
}

/// Oldest first, so the last data key is the current one.
pub async fn all(conn: &mut MySqlConnection) -> Result<Vec<KeyRow>, StorageError> {
    sqlx::query_as(
        "SELECT id, CAST(purpose AS CHAR) AS purpose, wrapped, master_id FROM mmt_data_keys ORDER BY id",
    )
    .fetch_all(conn)
    .await
    .map_err(StorageError::from_sqlx)
}

pub async fn insert(
    conn: &mut MySqlConnection,
    purpose: Purpose,
    wrapped: &[u8],
    master_id: &[u8],
    at: NaiveDateTime,
) -> Result<u32, StorageError> {
    let done = sqlx::query(
        "INSERT INTO mmt_data_keys (purpose, wrapped, master_id, created_at) VALUES (?, ?, ?, ?)",
    )
    .bind(purpose.as_str())
    .bind(wrapped)
    .bind(master_id)
    .bind(at)
    .execute(conn)
    .await
    .map_err(StorageError::from_sqlx)?;
    u32::try_from(done.last_insert_id()).map_err(|_| StorageError::Sealed("data key ids ran out"))
}

/// Rewraps one key under another master key.
pub async fn rewrap(
    conn: &mut MySqlConnection,
    id: u32,
    wrapped: &[u8],
    master_id: &[u8],
) -> Result<(), StorageError> {
    sqlx::query("UPDATE mmt_data_keys SET wrapped = ?, master_id = ? WHERE id = ?")
        .bind(wrapped)
        .bind(master_id)
        .bind(id)
        .execute(conn)
        .await
        .map_err(StorageError::from_sqlx)?;
    Ok(())
}
