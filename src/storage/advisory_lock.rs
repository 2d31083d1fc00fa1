//! MariaDB advisory locks (GET_LOCK), which serialise work across sidecar replicas without
//! touching any table. Names are scoped to the current database, since one server may host
//! several OpenEMR sites.

use sqlx::MySqlConnection;

use crate::storage::StorageError;

pub async fn acquire(conn: &mut MySqlConnection, name: &str, wait_secs: i64) -> Result<(), StorageError> {
    let got: Option<i64> = sqlx::query_scalar("SELECT GET_LOCK(CONCAT(?, ':', DATABASE()), ?)")
        .bind(name)
        .bind(wait_secs)
        .fetch_one(&mut *conn)
        .await
        .map_err(StorageError::from_sqlx)?;
    if got == Some(1) {
        Ok(())
    } else {
        Err(StorageError::Unavailable(format!(
            "another replica held the `{name}` lock for over {wait_secs} s"
        )))
    }
}

pub async fn release(conn: &mut MySqlConnection, name: &str) -> Result<(), StorageError> {
    sqlx::query("SELECT RELEASE_LOCK(CONCAT(?, ':', DATABASE()))")
        .bind(name)
        .execute(conn)
        .await
        .map_err(StorageError::from_sqlx)?;
    Ok(())
}
