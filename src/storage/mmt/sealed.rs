//! The sealed columns of the `mmt_` tables, read and written generically for a key rotation.

use sqlx::{MySqlPool, Row};

use crate::storage::{
    StorageError,
    vault::{self, Field},
};

/// A value that the current data key did not seal, with its row's key.
pub struct Stale {
    pub key: Vec<Vec<u8>>,
    pub value: Vec<u8>,
}

/// Up to `limit` values of `field` not sealed by data key `current`: sealed by an older key, or
/// text from before sealing.
pub async fn stale(
    pool: &MySqlPool,
    field: Field,
    current: u32,
    limit: u32,
) -> Result<Vec<Stale>, StorageError> {
    let keys: Vec<String> = field.key_columns().iter().map(|k| format!("CAST({k} AS BINARY)")).collect();
    let (table, column) = (field.table(), field.column());
    let sql = format!(
        "SELECT {}, {column} FROM {table} WHERE {column} IS NOT NULL AND {column} <> '' AND LEFT({column}, 6) <> ? LIMIT ?",
        keys.join(", ")
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(&vault::prefix(current)[..])
        .bind(limit)
        .fetch_all(pool)
        .await
        .map_err(StorageError::from_sqlx)?;
    let width = keys.len();
    rows.iter()
        .map(|row| {
            let key = (0..width).map(|i| row.try_get::<Vec<u8>, _>(i)).collect::<Result<_, _>>()?;
            Ok(Stale { key, value: row.try_get(width)? })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(StorageError::from_sqlx)
}

/// Replaces the value only while it is still `stale.value`, so an edit made meanwhile wins;
/// false when it had changed.
pub async fn replace(
    pool: &MySqlPool,
    field: Field,
    stale: &Stale,
    sealed: &[u8],
) -> Result<bool, StorageError> {
    let matches: Vec<String> = field.key_columns().iter().map(|k| format!("{k} = ?")).collect();
    let (table, column) = (field.table(), field.column());
    let sql = format!("UPDATE {table} SET {column} = ? WHERE {} AND {column} = ?", matches.join(" AND "));
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(sealed);
    for k in &stale.key {
        q = q.bind(k);
    }
    let done = q.bind(&stale.value).execute(pool).await.map_err(StorageError::from_sqlx)?;
    Ok(done.rows_affected() == 1)
}
