use sqlx::MySqlPool;

use crate::storage::StorageError;

/// Seconds since OpenEMR last saw activity on the session, by the database's own clock (the
/// column is written with the server's NOW()); `None` when the row is gone.
pub async fn idle_seconds(pool: &MySqlPool, uuid: &[u8]) -> Result<Option<i64>, StorageError> {
    let idle: Option<Option<i64>> = sqlx::query_scalar(
        "SELECT TIMESTAMPDIFF(SECOND, last_updated, NOW()) FROM session_tracker WHERE uuid = ?",
    )
    .bind(uuid)
    .fetch_optional(pool)
    .await
    .map_err(StorageError::from_sqlx)?;
    Ok(idle.flatten())
}
