//! A PHP session table written by a PDO session handler. Read by primary key only, never written or
//! locked: PHP holds its own row locks while a request runs. Names come from `SessionTableConfig`,
//! which admits only plain identifiers, so quoting them in backticks is enough.

use sqlx::MySqlPool;

use crate::{config::SessionTableConfig, domain::compatibility::LiveColumn, storage::StorageError};

#[derive(Debug, sqlx::FromRow)]
pub struct SessionRow {
    /// `None` when the data column is NULL.
    pub length: Option<i64>,
    /// `None` when longer than the cap the caller gave, so an oversized row is never transferred.
    pub data: Option<Vec<u8>>,
    /// Unix seconds of the last write.
    pub time: i64,
    pub lifetime: i64,
}

pub async fn by_id(
    pool: &MySqlPool,
    table: &SessionTableConfig,
    session_id: &str,
    max_len: usize,
) -> Result<Option<SessionRow>, StorageError> {
    let data = quoted(&table.data_column);
    // CAST: the handler may declare the integers unsigned.
    let sql = format!(
        "SELECT LENGTH({data}) AS length, CASE WHEN LENGTH({data}) <= ? THEN {data} END AS data, \
         COALESCE(CAST({} AS SIGNED), 0) AS time, COALESCE(CAST({} AS SIGNED), 0) AS lifetime \
         FROM {} WHERE {} = ?",
        quoted(&table.time_column),
        quoted(&table.lifetime_column),
        qualified(table),
        quoted(&table.id_column),
    );
    sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(max_len as u64)
        .bind(session_id)
        .fetch_optional(pool)
        .await
        .map_err(StorageError::from_sqlx)
}

/// The table's columns as information_schema describes them, under the configured table name.
pub async fn columns(pool: &MySqlPool, table: &SessionTableConfig) -> Result<Vec<LiveColumn>, StorageError> {
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT CAST(COLUMN_NAME AS CHAR), CAST(COLUMN_TYPE AS CHAR) FROM information_schema.COLUMNS \
         WHERE TABLE_SCHEMA = COALESCE(?, DATABASE()) AND TABLE_NAME = ?",
    )
    .bind(table.schema.as_deref())
    .bind(&table.table)
    .fetch_all(pool)
    .await
    .map_err(StorageError::from_sqlx)?;
    let name = table.qualified_name();
    Ok(rows
        .into_iter()
        .map(|(column, column_type)| LiveColumn { table: name.clone(), column, column_type })
        .collect())
}

fn qualified(table: &SessionTableConfig) -> String {
    match &table.schema {
        Some(schema) => format!("{}.{}", quoted(schema), quoted(&table.table)),
        None => quoted(&table.table),
    }
}

fn quoted(identifier: &str) -> String {
    format!("`{identifier}`")
}
