use sqlx::MySqlConnection;

use crate::storage::StorageError;

/// ADOdb's GenID('sequences'), as OpenEMR's generate_id(): one counter for encounter numbers,
/// document ids and more. Run in autocommit so the row lock is held for one statement only.
pub async fn next_id(conn: &mut MySqlConnection) -> Result<i64, StorageError> {
    sqlx::query("UPDATE sequences SET id = LAST_INSERT_ID(id + 1)")
        .execute(&mut *conn)
        .await
        .map_err(StorageError::from_sqlx)?;
    let id: u64 = sqlx::query_scalar("SELECT LAST_INSERT_ID()")
        .fetch_one(conn)
        .await
        .map_err(StorageError::from_sqlx)?;
    Ok(id as i64)
}
