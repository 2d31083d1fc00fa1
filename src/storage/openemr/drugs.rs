//! OpenEMR's drug inventory (`drugs`), which prescriptions can point at.

use sqlx::MySqlPool;

use crate::storage::StorageError;

/// The name of an active inventory drug.
pub async fn active_name(pool: &MySqlPool, drug_id: i32) -> Result<Option<String>, StorageError> {
    sqlx::query_scalar("SELECT name FROM drugs WHERE drug_id = ? AND active = 1")
        .bind(drug_id)
        .fetch_optional(pool)
        .await
        .map_err(StorageError::from_sqlx)
}
