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

/// `mmt_document_text`: one page of extracted text.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PageText {
    pub page: i32,
    pub method: String,
    pub confidence: Option<f64>,
    pub content: String,
}

/// Replaces the document's extracted text with `pages`, in one transaction.
pub async fn replace_text(
    pool: &MySqlPool,
    document_id: i64,
    pages: &[PageText],
) -> Result<(), StorageError> {
    let mut tx = pool.begin().await.map_err(StorageError::from_sqlx)?;
    sqlx::query("DELETE FROM mmt_document_text WHERE document_id = ?")
        .bind(document_id)
        .execute(&mut *tx)
        .await
        .map_err(StorageError::from_sqlx)?;
    for p in pages {
        sqlx::query(
            "INSERT INTO mmt_document_text (document_id, page, method, confidence, content, created_at) \
             VALUES (?, ?, ?, ?, ?, UTC_TIMESTAMP(3))",
        )
        .bind(document_id)
        .bind(p.page)
        .bind(&p.method)
        .bind(p.confidence)
        .bind(&p.content)
        .execute(&mut *tx)
        .await
        .map_err(StorageError::from_sqlx)?;
    }
    tx.commit().await.map_err(StorageError::from_sqlx)
}

pub async fn text(pool: &MySqlPool, document_id: i64) -> Result<Vec<PageText>, StorageError> {
    sqlx::query_as(
        "SELECT page, method, confidence, content FROM mmt_document_text WHERE document_id = ? ORDER BY page",
    )
    .bind(document_id)
    .fetch_all(pool)
    .await
    .map_err(StorageError::from_sqlx)
}

/// Those of `ids` whose extracted text contains `term` (compared as the column's collation does,
/// so without regard to case).
pub async fn containing(pool: &MySqlPool, ids: &[i64], term: &str) -> Result<Vec<i64>, StorageError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut q = sqlx::QueryBuilder::<sqlx::MySql>::new(
        "SELECT DISTINCT document_id FROM mmt_document_text WHERE content LIKE ",
    );
    q.push_bind(format!("%{}%", super::patient_index::escape_like(term))).push(" AND document_id IN (");
    let mut list = q.separated(", ");
    for id in ids {
        list.push_bind(id);
    }
    q.push(")");
    q.build_query_scalar().fetch_all(pool).await.map_err(StorageError::from_sqlx)
}

/// A document attached to a transcription (`mmt_transcription_documents`).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Attached {
    pub document_id: i64,
    pub attached_by: i64,
    pub attached_at: NaiveDateTime,
}

/// Attaches the document; false when it already was.
pub async fn attach(
    pool: &MySqlPool,
    transcription: &[u8; 16],
    document_id: i64,
    by: i64,
    at: NaiveDateTime,
) -> Result<bool, StorageError> {
    let done = sqlx::query(
        "INSERT IGNORE INTO mmt_transcription_documents (transcription_id, document_id, attached_by, attached_at) \
         VALUES (?, ?, ?, ?)",
    )
    .bind(&transcription[..])
    .bind(document_id)
    .bind(by)
    .bind(at)
    .execute(pool)
    .await
    .map_err(StorageError::from_sqlx)?;
    Ok(done.rows_affected() == 1)
}

/// Detaches the document; false when it was not attached.
pub async fn detach(
    pool: &MySqlPool,
    transcription: &[u8; 16],
    document_id: i64,
) -> Result<bool, StorageError> {
    let done =
        sqlx::query("DELETE FROM mmt_transcription_documents WHERE transcription_id = ? AND document_id = ?")
            .bind(&transcription[..])
            .bind(document_id)
            .execute(pool)
            .await
            .map_err(StorageError::from_sqlx)?;
    Ok(done.rows_affected() == 1)
}

/// What is attached to the transcription, in the order it was attached.
pub async fn attached(pool: &MySqlPool, transcription: &[u8; 16]) -> Result<Vec<Attached>, StorageError> {
    sqlx::query_as(
        "SELECT CAST(document_id AS SIGNED) AS document_id, attached_by, attached_at FROM mmt_transcription_documents \
         WHERE transcription_id = ? ORDER BY attached_at, document_id",
    )
    .bind(&transcription[..])
    .fetch_all(pool)
    .await
    .map_err(StorageError::from_sqlx)
}
