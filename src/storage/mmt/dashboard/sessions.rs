//! Signed-in devices as `mmt_auth_tokens` holds them: one token family per sign-in.

use chrono::NaiveDateTime;
use sqlx::MySqlPool;

use crate::{domain::user::UserId, storage::StorageError};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DeviceRow {
    pub family_id: Vec<u8>,
    pub session_source: String,
    pub signed_in_at: NaiveDateTime,
    pub last_used_at: NaiveDateTime,
    pub client_address: String,
    pub user_agent: Option<String>,
}

/// The user's sign-ins that still hold a live token, most recently used first. Address and user
/// agent are the latest ones the family recorded.
pub async fn live(
    pool: &MySqlPool,
    user: UserId,
    now: NaiveDateTime,
) -> Result<Vec<DeviceRow>, StorageError> {
    sqlx::query_as(
        "SELECT t.family_id, MIN(t.session_source) AS session_source, MIN(t.issued_at) AS signed_in_at, \
           GREATEST(MAX(t.issued_at), COALESCE(MAX(t.last_used_at), MAX(t.issued_at))) AS last_used_at, \
           SUBSTRING_INDEX(GROUP_CONCAT(t.client_address ORDER BY t.id DESC SEPARATOR '\\n'), '\\n', 1) AS client_address, \
           SUBSTRING_INDEX(GROUP_CONCAT(t.user_agent ORDER BY t.id DESC SEPARATOR '\\n'), '\\n', 1) AS user_agent \
         FROM mmt_auth_tokens t \
         WHERE t.user_id = ? AND t.family_id IN \
           (SELECT family_id FROM mmt_auth_tokens WHERE user_id = ? AND revoked_at IS NULL AND spent_at IS NULL \
            AND expires_at > ?) \
         GROUP BY t.family_id ORDER BY last_used_at DESC, signed_in_at DESC",
    )
    .bind(user.0)
    .bind(user.0)
    .bind(now)
    .fetch_all(pool)
    .await
    .map_err(StorageError::from_sqlx)
}

/// Labels a new sign-in with the client's User-Agent.
pub async fn label(pool: &MySqlPool, family: &[u8; 16], user_agent: &str) -> Result<(), StorageError> {
    sqlx::query("UPDATE mmt_auth_tokens SET user_agent = ? WHERE family_id = ? AND user_agent IS NULL")
        .bind(user_agent)
        .bind(&family[..])
        .execute(pool)
        .await
        .map_err(StorageError::from_sqlx)?;
    Ok(())
}

/// Revokes one of the user's live sign-ins; false if the user has no such live sign-in.
pub async fn revoke(
    pool: &MySqlPool,
    user: UserId,
    family: &[u8; 16],
    now: NaiveDateTime,
) -> Result<bool, StorageError> {
    let done = sqlx::query(
        "UPDATE mmt_auth_tokens SET revoked_at = ? WHERE user_id = ? AND family_id = ? AND revoked_at IS NULL",
    )
    .bind(now)
    .bind(user.0)
    .bind(&family[..])
    .execute(pool)
    .await
    .map_err(StorageError::from_sqlx)?;
    Ok(done.rows_affected() > 0)
}
