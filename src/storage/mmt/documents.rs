//! `mmt_document_views`: short-lived preview links, by the SHA-256 of their secret.

use chrono::NaiveDateTime;
use sqlx::MySqlPool;

use crate::storage::StorageError;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct View {
    pub document_id: i64,
    pub user_id: i64,
    pub credential: Vec<u8>,
}

pub struct NewView<'a> {
    pub digest: &'a [u8; 32],
    pub document_id: i64,
    pub user_id: i64,
    pub credential: &'a [u8; 32],
    pub expires_at: NaiveDateTime,
}

/// Stores a link, clearing expired ones on the way so the table stays small.
pub async fn insert(pool: &MySqlPool, v: &NewView<'_>, now: NaiveDateTime) -> Result<(), StorageError> {
    sqlx::query("DELETE FROM mmt_document_views WHERE expires_at <= ?")
        .bind(now)
        .execute(pool)
        .await
        .map_err(StorageError::from_sqlx)?;
    sqlx::query(
        "INSERT INTO mmt_document_views (token_sha256, document_id, user_id, credential, expires_at) \
         VALUES (?, ?, ?, ?, ?)",
    )
    .bind(&v.digest[..])
    .bind(v.document_id)
    .bind(v.user_id)
    .bind(&v.credential[..])
    .bind(v.expires_at)
    .execute(pool)
    .await
    .map_err(StorageError::from_sqlx)?;
    Ok(())
}

/// The link, while it has not expired.
pub async fn live(
    pool: &MySqlPool,
    digest: &[u8; 32],
    now: NaiveDateTime,
) -> Result<Option<View>, StorageError> {
    sqlx::query_as(
        "SELECT document_id, user_id, credential FROM mmt_document_views WHERE token_sha256 = ? AND expires_at > ?",
    )
    .bind(&digest[..])
    .bind(now)
    .fetch_optional(pool)
    .await
    .map_err(StorageError::from_sqlx)
}
