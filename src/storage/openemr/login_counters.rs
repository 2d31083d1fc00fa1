//! OpenEMR's per-user failed sign-in counters in `users_secure`, updated with the statements
//! AuthUtils runs, so OpenEMR's lockout and its Users screen see the sidecar's failures too.

use chrono::NaiveDate;
use sqlx::MySqlPool;

use crate::storage::StorageError;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Counters {
    pub login_fail_counter: i64,
    /// Seconds since `last_login_fail` by the database clock, as OpenEMR measures it.
    pub seconds_since_failure: Option<i64>,
    pub last_password_change: Option<NaiveDate>,
}

pub async fn read(pool: &MySqlPool, username: &str) -> Result<Option<Counters>, StorageError> {
    sqlx::query_as(
        "SELECT CAST(COALESCE(login_fail_counter, 0) AS SIGNED) AS login_fail_counter, \
         CAST(TIMESTAMPDIFF(SECOND, last_login_fail, NOW()) AS SIGNED) AS seconds_since_failure, \
         DATE(last_update_password) AS last_password_change \
         FROM users_secure WHERE BINARY username = ?",
    )
    .bind(username)
    .fetch_optional(pool)
    .await
    .map_err(StorageError::from_sqlx)
}

/// One failure: the counter restarts at 1 when the previous failure is older than the reset
/// window. MariaDB applies SET assignments left to right, so `last_login_fail` is moved last.
pub async fn record_failure(
    pool: &MySqlPool,
    username: &str,
    reset_after_secs: i64,
) -> Result<(), StorageError> {
    sqlx::query(
        "UPDATE users_secure SET total_login_fail_counter = COALESCE(total_login_fail_counter, 0) + 1, \
         auto_block_emailed = IF(? > 0 AND TIMESTAMPDIFF(SECOND, last_login_fail, NOW()) > ?, 0, auto_block_emailed), \
         login_fail_counter = IF(? > 0 AND TIMESTAMPDIFF(SECOND, last_login_fail, NOW()) > ?, 1, \
                                 COALESCE(login_fail_counter, 0) + 1), \
         last_login_fail = NOW() WHERE BINARY username = ?",
    )
    .bind(reset_after_secs)
    .bind(reset_after_secs)
    .bind(reset_after_secs)
    .bind(reset_after_secs)
    .bind(username)
    .execute(pool)
    .await
    .map_err(StorageError::from_sqlx)?;
    Ok(())
}

/// After a successful sign-in, or when a lock's window has passed.
pub async fn reset(pool: &MySqlPool, username: &str) -> Result<(), StorageError> {
    sqlx::query(
        "UPDATE users_secure SET login_fail_counter = 0, last_login_fail = NULL, auto_block_emailed = 0 \
         WHERE BINARY username = ?",
    )
    .bind(username)
    .execute(pool)
    .await
    .map_err(StorageError::from_sqlx)?;
    Ok(())
}
