use sqlx::{
    MySqlPool,
    migrate::{MigrateError, Migrator},
};

use crate::{
    domain::migration_state::{AppliedMigration, MigrationState},
    storage::StorageError,
    storage::advisory_lock,
};

/// Embedded from `mmt_migrations/`; `sqlx.toml` names the bookkeeping table `mmt_schema_migrations`.
pub static MIGRATOR: Migrator = sqlx::migrate!();

/// Applies pending migrations under an advisory lock, so replicas starting together apply each
/// migration once. sqlx's own lock asks for `GET_LOCK(name, -1)`, which MariaDB answers with NULL
/// at once instead of waiting, so it does not serialise anything there.
pub async fn run(pool: &MySqlPool) -> Result<(), MigrateError> {
    let as_migrate_error = |e: StorageError| MigrateError::Execute(sqlx::Error::Protocol(e.to_string()));
    let mut held =
        advisory_lock::Held::take(pool, "mmt_migrate", LOCK_WAIT_SECS).await.map_err(as_migrate_error)?;
    let result = MIGRATOR.run(held.conn()).await;
    let released = held.release().await;
    result?;
    released.map_err(as_migrate_error)
}

const LOCK_WAIT_SECS: i64 = 600;

pub async fn state(pool: &MySqlPool) -> Result<MigrationState, StorageError> {
    let table_exists: Option<i64> = sqlx::query_scalar(
        "SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?",
    )
    .bind(MIGRATOR.table_name.as_ref())
    .fetch_optional(pool)
    .await
    .map_err(StorageError::from_sqlx)?;
    let applied = if table_exists.is_some() {
        // The table name is the compile-time constant from sqlx.toml, never input.
        let sql = format!("SELECT version, success, checksum FROM {} ORDER BY version", MIGRATOR.table_name);
        let rows: Vec<(i64, bool, Vec<u8>)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .fetch_all(pool)
            .await
            .map_err(StorageError::from_sqlx)?;
        rows.into_iter()
            .map(|(version, success, checksum)| AppliedMigration { version, success, checksum })
            .collect()
    } else {
        Vec::new()
    };
    Ok(MigrationState::compare(
        MIGRATOR
            .iter()
            .filter(|m| m.migration_type.is_up_migration())
            .map(|m| (m.version, m.checksum.to_vec())),
        applied,
    ))
}
