use std::collections::HashMap;

use sqlx::{MySqlPool, QueryBuilder};

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

/// Several globals in one query, by name; names OpenEMR stores no value for are absent.
pub async fn values(pool: &MySqlPool, names: &[&str]) -> Result<HashMap<String, String>, StorageError> {
    let mut q =
        QueryBuilder::new("SELECT gl_name, gl_value FROM globals WHERE gl_index = 0 AND gl_name IN (");
    let mut list = q.separated(", ");
    for name in names {
        list.push_bind(*name);
    }
    q.push(")");
    let rows: Vec<(String, String)> =
        q.build_query_as().fetch_all(pool).await.map_err(StorageError::from_sqlx)?;
    Ok(rows.into_iter().collect())
}
