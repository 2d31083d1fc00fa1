use sqlx::MySqlPool;

use crate::{domain::compatibility::LiveColumn, storage::StorageError};

/// Every column of every table in the connected schema, as information_schema describes it.
pub async fn live_columns(pool: &MySqlPool) -> Result<Vec<LiveColumn>, StorageError> {
    let rows: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT CAST(TABLE_NAME AS CHAR), CAST(COLUMN_NAME AS CHAR), CAST(COLUMN_TYPE AS CHAR) \
         FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE()",
    )
    .fetch_all(pool)
    .await
    .map_err(StorageError::from_sqlx)?;
    Ok(rows
        .into_iter()
        .map(|(table, column, column_type)| LiveColumn { table, column, column_type })
        .collect())
}
