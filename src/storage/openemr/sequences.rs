use sqlx::MySqlConnection;

use crate::storage::StorageError;

/// ADOdb's GenID('sequences'), as OpenEMR's generate_id(): one counter for encounter numbers,
/// document ids and more. Run in autocommit so the row lock is held for one statement only.
pub async fn next_id(conn: &mut MySqlConnection) -> Result<i64, StorageError> {
    gen_id(conn, "UPDATE sequences SET id = LAST_INSERT_ID(id + 1)").await
}

/// phpGACL's GenID('gacl_aro_seq') for a new ARO (a user in the ACL).
pub async fn next_aro_id(conn: &mut MySqlConnection) -> Result<i64, StorageError> {
    gen_id(conn, "UPDATE gacl_aro_seq SET id = LAST_INSERT_ID(id + 1)").await
}

async fn gen_id(conn: &mut MySqlConnection, bump: &'static str) -> Result<i64, StorageError> {
    sqlx::query(bump).execute(&mut *conn).await.map_err(StorageError::from_sqlx)?;
    let id: u64 = sqlx::query_scalar("SELECT LAST_INSERT_ID()")
        .fetch_one(conn)
        .await
        .map_err(StorageError::from_sqlx)?;
    Ok(id as i64)
}
