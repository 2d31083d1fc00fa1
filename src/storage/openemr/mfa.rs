//! OpenEMR's second factors (`login_mfa_registrations`) and the keys that protect their secrets:
//! the `keys` table and the site's key files under `documents/logs_and_misc/methods/`.

use std::path::Path;

use base64::{Engine, engine::general_purpose::STANDARD};
use sqlx::{MySqlConnection, MySqlPool};

use crate::storage::StorageError;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Registration {
    pub name: String,
    pub method: String,
    pub var1: String,
}

pub async fn registrations(pool: &MySqlPool, user_id: i64) -> Result<Vec<Registration>, StorageError> {
    sqlx::query_as("SELECT name, method, var1 FROM login_mfa_registrations WHERE user_id = ? ORDER BY name")
        .bind(user_id)
        .fetch_all(pool)
        .await
        .map_err(StorageError::from_sqlx)
}

/// As `interface/usergroup/mfa_totp.php` registers an authenticator app.
pub async fn insert_totp(conn: &mut MySqlConnection, user_id: i64, var1: &str) -> Result<(), StorageError> {
    sqlx::query(
        "INSERT INTO login_mfa_registrations (user_id, method, name, var1, var2) \
         VALUES (?, 'TOTP', 'App Based 2FA', ?, '')",
    )
    .bind(user_id)
    .bind(var1)
    .execute(conn)
    .await
    .map_err(StorageError::from_sqlx)?;
    Ok(())
}

pub async fn delete_totp(conn: &mut MySqlConnection, user_id: i64) -> Result<u64, StorageError> {
    let done = sqlx::query("DELETE FROM login_mfa_registrations WHERE user_id = ? AND method = 'TOTP'")
        .bind(user_id)
        .execute(conn)
        .await
        .map_err(StorageError::from_sqlx)?;
    Ok(done.rows_affected())
}

/// What OpenEMR's login screen records after a correct code.
pub async fn record_challenge(pool: &MySqlPool, user_id: i64) -> Result<(), StorageError> {
    sqlx::query("UPDATE users_secure SET last_challenge_response = NOW() WHERE id = ?")
        .bind(user_id)
        .execute(pool)
        .await
        .map_err(StorageError::from_sqlx)?;
    Ok(())
}

/// A database key (`keys.value` is the base64 of 32 random bytes).
pub async fn database_key(pool: &MySqlPool, label: &str) -> Result<Option<[u8; 32]>, StorageError> {
    let value: Option<String> = sqlx::query_scalar("SELECT value FROM `keys` WHERE name = ?")
        .bind(label)
        .fetch_optional(pool)
        .await
        .map_err(StorageError::from_sqlx)?;
    Ok(value.and_then(|v| STANDARD.decode(v.trim()).ok()).and_then(|raw| raw.try_into().ok()))
}

/// A drive key file's content (itself encrypted with the database keys), if the file exists.
pub async fn drive_key_file(site_dir: &Path, label: &str) -> std::io::Result<Option<String>> {
    let path = site_dir.join("documents/logs_and_misc/methods").join(label);
    match tokio::fs::read_to_string(path).await {
        Ok(content) => Ok(Some(content.trim().to_string())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}
