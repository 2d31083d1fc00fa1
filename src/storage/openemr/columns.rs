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

pub type Query<'q> = sqlx::query::Query<'q, sqlx::MySql, sqlx::mysql::MySqlArguments>;

/// `INSERT INTO table (fixed…, columns…) VALUES (…)`: the fixed values bound by `first`, then
/// one column per item, named by `column` and bound by `bind`. Returns the new row's id.
pub async fn insert_row<'q, T>(
    conn: &mut sqlx::MySqlConnection,
    table: &str,
    fixed: &[&str],
    first: impl FnOnce(Query<'q>) -> Query<'q>,
    items: &'q [T],
    column: fn(&T) -> &'static str,
    bind: fn(Query<'q>, &'q T) -> Query<'q>,
) -> Result<i64, StorageError> {
    let columns: Vec<&str> = fixed.iter().copied().chain(items.iter().map(column)).collect();
    let placeholders = vec!["?"; columns.len()].join(", ");
    let sql = format!("INSERT INTO {table} ({}) VALUES ({placeholders})", columns.join(", "));
    let query = items.iter().fold(first(sqlx::query(sqlx::AssertSqlSafe(sql))), bind);
    let done = query.execute(conn).await.map_err(StorageError::from_sqlx)?;
    Ok(i64::try_from(done.last_insert_id()).unwrap_or_default())
}

/// `UPDATE table SET column = ?, … WHERE id = ?`, one column per item.
pub async fn update_row<'q, T>(
    conn: &mut sqlx::MySqlConnection,
    table: &str,
    id: i64,
    items: &'q [T],
    column: fn(&T) -> &'static str,
    bind: fn(Query<'q>, &'q T) -> Query<'q>,
) -> Result<(), StorageError> {
    let set: Vec<String> = items.iter().map(|item| format!("{} = ?", column(item))).collect();
    let sql = format!("UPDATE {table} SET {} WHERE id = ?", set.join(", "));
    let query = items.iter().fold(sqlx::query(sqlx::AssertSqlSafe(sql)), bind);
    query.bind(id).execute(conn).await.map_err(StorageError::from_sqlx)?;
    Ok(())
}
