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

/// Up to `limit` values of `field` not sealed by data key `current` (sealed by an older key, or
/// text from before sealing), in primary key order after the row key `after`, so a pass over a
/// large table reads each row once.
pub async fn stale(
    pool: &MySqlPool,
    field: Field,
    current: u32,
    after: Option<&[Vec<u8>]>,
    limit: u32,
) -> Result<Vec<Stale>, StorageError> {
    let columns = field.key_columns();
    let keys: Vec<String> = columns.iter().map(|k| format!("CAST({k} AS BINARY)")).collect();
    let (table, column) = (field.table(), field.column());
    let mut sql = format!(
        "SELECT {}, {column} FROM {table} WHERE {column} IS NOT NULL AND {column} <> '' AND LEFT({column}, 6) <> ?",
        keys.join(", ")
    );
    if after.is_some() {
        sql.push_str(&format!(" AND ({})", after_clause(columns)));
    }
    sql.push_str(&format!(" ORDER BY {} LIMIT ?", columns.join(", ")));
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(&vault::prefix(current)[..]);
    for bound in after.map(|key| after_binds(key)).unwrap_or_default() {
        q = q.bind(bound);
    }
    let rows = q.bind(limit).fetch_all(pool).await.map_err(StorageError::from_sqlx)?;
    let width = keys.len();
    rows.iter()
        .map(|row| {
            let key = (0..width).map(|i| row.try_get::<Vec<u8>, _>(i)).collect::<Result<_, _>>()?;
            Ok(Stale { key, value: row.try_get(width)? })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(StorageError::from_sqlx)
}

/// `k1 > ?` or, for two key columns, `k1 > ? OR (k1 = ? AND k2 > ?)`: a row after the given key,
/// in a form the primary key's index serves.
fn after_clause(columns: &[&str]) -> String {
    match columns {
        [a, b] => format!("{a} > ? OR ({a} = ? AND {b} > ?)"),
        [a, ..] => format!("{a} > ?"),
        [] => "FALSE".into(),
    }
}

fn after_binds(key: &[Vec<u8>]) -> Vec<&[u8]> {
    match key {
        [a, b] => vec![a, a, b],
        [a, ..] => vec![a],
        [] => Vec::new(),
    }
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
