//! The sidecar's own second-factor state: TOTP steps already used and enrolments awaiting their
//! first code.

use sqlx::{MySqlConnection, MySqlPool};

use crate::storage::StorageError;

/// The sidecar's record of the newest TOTP step used; true if `step` is newer (and now recorded).
pub async fn consume_step(pool: &MySqlPool, user_id: i64, step: i64) -> Result<bool, StorageError> {
    sqlx::query("INSERT IGNORE INTO mmt_mfa_totp_steps (user_id, last_step) VALUES (?, -1)")
        .bind(user_id)
        .execute(pool)
        .await
        .map_err(StorageError::from_sqlx)?;
    let done = sqlx::query("UPDATE mmt_mfa_totp_steps SET last_step = ? WHERE user_id = ? AND last_step < ?")
        .bind(step)
        .bind(user_id)
        .bind(step)
        .execute(pool)
        .await
        .map_err(StorageError::from_sqlx)?;
    Ok(done.rows_affected() == 1)
}

pub async fn save_enrolment(
    pool: &MySqlPool,
    user_id: i64,
    secret: &str,
    expires_at: chrono::NaiveDateTime,
) -> Result<(), StorageError> {
    sqlx::query("REPLACE INTO mmt_mfa_enrolments (user_id, secret, expires_at) VALUES (?, ?, ?)")
        .bind(user_id)
        .bind(secret)
        .bind(expires_at)
        .execute(pool)
        .await
        .map_err(StorageError::from_sqlx)?;
    Ok(())
}

pub async fn pending_enrolment(
    conn: &mut MySqlConnection,
    user_id: i64,
    now: chrono::NaiveDateTime,
) -> Result<Option<String>, StorageError> {
    sqlx::query_scalar(
        "SELECT secret FROM mmt_mfa_enrolments WHERE user_id = ? AND expires_at > ? FOR UPDATE",
    )
    .bind(user_id)
    .bind(now)
    .fetch_optional(conn)
    .await
    .map_err(StorageError::from_sqlx)
}

pub async fn delete_enrolment(conn: &mut MySqlConnection, user_id: i64) -> Result<(), StorageError> {
    sqlx::query("DELETE FROM mmt_mfa_enrolments WHERE user_id = ?")
        .bind(user_id)
        .execute(conn)
        .await
        .map_err(StorageError::from_sqlx)?;
    Ok(())
}
