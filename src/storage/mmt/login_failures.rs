//! Sign-in attempts for throttling shared by every replica. An attempt is written *before* its
//! password is verified (a reservation), so parallel guesses count against each other; a success
//! removes its own row only, never the failures that raced it.

use chrono::NaiveDateTime;
use sqlx::MySqlPool;

use crate::storage::StorageError;

#[derive(Debug, Clone, Copy)]
pub enum Scope {
    UserAddress,
    Address,
}

impl Scope {
    fn as_str(self) -> &'static str {
        match self {
            Self::UserAddress => "user_address",
            Self::Address => "address",
        }
    }
}

/// Writes an attempt and returns its id.
pub async fn reserve(
    pool: &MySqlPool,
    scope: Scope,
    subject: &[u8; 32],
    at: NaiveDateTime,
) -> Result<u64, StorageError> {
    let done = sqlx::query("INSERT INTO mmt_login_failures (scope, subject, failed_at) VALUES (?, ?, ?)")
        .bind(scope.as_str())
        .bind(&subject[..])
        .bind(at)
        .execute(pool)
        .await
        .map_err(StorageError::from_sqlx)?;
    Ok(done.last_insert_id())
}

/// Attempts since `since` (reservations included) and the oldest of them.
pub async fn recent(
    pool: &MySqlPool,
    scope: Scope,
    subject: &[u8; 32],
    since: NaiveDateTime,
) -> Result<(i64, Option<NaiveDateTime>), StorageError> {
    sqlx::query_as("SELECT COUNT(*), MIN(failed_at) FROM mmt_login_failures WHERE scope = ? AND subject = ? AND failed_at > ?")
        .bind(scope.as_str())
        .bind(&subject[..])
        .bind(since)
        .fetch_one(pool)
        .await
        .map_err(StorageError::from_sqlx)
}

/// Withdraws these attempts (they succeeded, or were never verified).
pub async fn release(pool: &MySqlPool, ids: &[u64]) -> Result<(), StorageError> {
    for id in ids {
        sqlx::query("DELETE FROM mmt_login_failures WHERE id = ?")
            .bind(id)
            .execute(pool)
            .await
            .map_err(StorageError::from_sqlx)?;
    }
    Ok(())
}

pub async fn purge_before(pool: &MySqlPool, before: NaiveDateTime) -> Result<u64, StorageError> {
    let done = sqlx::query("DELETE FROM mmt_login_failures WHERE failed_at < ? LIMIT 10000")
        .bind(before)
        .execute(pool)
        .await
        .map_err(StorageError::from_sqlx)?;
    Ok(done.rows_affected())
}
