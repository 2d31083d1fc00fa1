use sqlx::MySqlPool;

use crate::storage::StorageError;

/// A global's value; OpenEMR stores only values changed from its code defaults, so callers
/// supply the default.
pub async fn value(pool: &MySqlPool, name: &str) -> Result<Option<String>, StorageError> {
    sqlx::query_scalar("SELECT gl_value FROM globals WHERE gl_name = ? AND gl_index = 0")
        .bind(name)
        .fetch_optional(pool)
        .await
        .map_err(StorageError::from_sqlx)
}
