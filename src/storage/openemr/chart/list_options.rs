use sqlx::MySqlPool;

use crate::storage::StorageError;

/// One active option of an OpenEMR list.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ListOption {
    pub option_id: String,
    pub title: String,
    pub codes: String,
}

/// A list's active options in OpenEMR's display order.
pub async fn active(pool: &MySqlPool, list_id: &str) -> Result<Vec<ListOption>, StorageError> {
    sqlx::query_as(
        "SELECT option_id, title, codes FROM list_options WHERE list_id = ? AND activity = 1 ORDER BY seq, option_id",
    )
    .bind(list_id)
    .fetch_all(pool)
    .await
    .map_err(StorageError::from_sqlx)
}
