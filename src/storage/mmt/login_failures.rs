use chrono::NaiveDateTime;
use sqlx::MySqlPool;

use crate::storage::StorageError;

#[derive(Debug, Clone, Copy)]
pub enum Scope {
    User,
    Address,
}

impl Scope {
    fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Address => "address",
        }
    }
}

/// Failures since `since` and the oldest of them.
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

pub async fn record(
    pool: &MySqlPool,
    scope: Scope,
    subject: &[u8; 32],
    at: NaiveDateTime,
) -> Result<(), StorageError> {
    sqlx::query("INSERT INTO mmt_login_failures (scope, subject, failed_at) VALUES (?, ?, ?)")
        .bind(scope.as_str())
        .bind(&subject[..])
        .bind(at)
        .execute(pool)
        .await
        .map_err(StorageError::from_sqlx)?;
    Ok(())
}

pub async fn clear(pool: &MySqlPool, scope: Scope, subject: &[u8; 32]) -> Result<(), StorageError> {
    sqlx::query("DELETE FROM mmt_login_failures WHERE scope = ? AND subject = ?")
        .bind(scope.as_str())
        .bind(&subject[..])
        .execute(pool)
        .await
        .map_err(StorageError::from_sqlx)?;
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
