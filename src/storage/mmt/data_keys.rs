//! `mmt_data_keys`: the wrapped data keys of encryption at rest (`storage::vault`).

use chrono::NaiveDateTime;
use sqlx::{MySqlConnection, MySqlPool};

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

/// How many values each data key still seals in one sealed column.
pub async fn usage(pool: &MySqlPool, table: &str, column: &str) -> Result<Vec<(u32, i64)>, StorageError> {
    // 0xFF 0x01 then the key id, big-endian; anything else is text from before sealing (key 0).
    let sql = format!(
        "SELECT CAST(IF(LEFT({column}, 2) = X'FF01', CONV(HEX(SUBSTRING({column}, 3, 4)), 16, 10), 0) AS UNSIGNED) AS k, \
         COUNT(*) FROM {table} WHERE {column} IS NOT NULL AND {column} <> '' GROUP BY k"
    );
    sqlx::query_as(sqlx::AssertSqlSafe(sql)).fetch_all(pool).await.map_err(StorageError::from_sqlx)
}
