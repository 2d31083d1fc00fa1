use sqlx::MySqlPool;

use crate::{domain::openemr_version::OpenEmrVersion, storage::StorageError};

/// The live `version` row; the OpenEMR installer writes the real numbers into it.
pub async fn read(pool: &MySqlPool) -> Result<Option<OpenEmrVersion>, StorageError> {
    let row: Option<(i64, i64, i64, i64, String, i64, i64)> = sqlx::query_as(
        "SELECT v_major, v_minor, v_patch, v_realpatch, v_tag, v_database, v_acl FROM version LIMIT 1",
    )
    .fetch_optional(pool)
    .await
    .map_err(StorageError::from_sqlx)?;
    Ok(row.map(|(major, minor, patch, realpatch, tag, database, acl)| OpenEmrVersion {
        major,
        minor,
        patch,
        realpatch,
        tag,
        database,
        acl,
    }))
}
