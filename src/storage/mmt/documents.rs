//! `mmt_document_views`: short-lived preview links, by the SHA-256 of their secret.

use chrono::NaiveDateTime;
use sqlx::MySqlPool;

use crate::storage::{
    StorageError,
    vault::{Field, Keyring, Vault},
};

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
    #[sqlx(skip)]
    pub content: String,
    sealed_content: Vec<u8>,
}

impl PageText {
    pub fn new(page: i32, method: &str, confidence: Option<f64>, content: String) -> Self {
        Self { page, method: method.into(), confidence, content, sealed_content: Vec::new() }
    }
}

/// Replaces the document's extracted text and its blind index terms with `pages`, in one
/// transaction.
pub async fn replace_text(
    pool: &MySqlPool,
    vault: &Vault,
    document_id: i64,
    pages: &[PageText],
) -> Result<(), StorageError> {
    let keys = vault.keys().await?;
    let mut tx = pool.begin().await.map_err(StorageError::from_sqlx)?;
    for table in ["mmt_document_text", "mmt_document_terms"] {
        sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM {table} WHERE document_id = ?")))
            .bind(document_id)
            .execute(&mut *tx)
            .await
            .map_err(StorageError::from_sqlx)?;
    }
    insert_terms(&mut tx, &keys, document_id, pages).await?;
    for p in pages {
        sqlx::query(
            "INSERT INTO mmt_document_text (document_id, page, method, confidence, content, created_at) \
             VALUES (?, ?, ?, ?, ?, UTC_TIMESTAMP(3))",
        )
        .bind(document_id)
        .bind(p.page)
        .bind(&p.method)
        .bind(p.confidence)
        .bind(keys.seal(Field::PageText, &p.content))
        .execute(&mut *tx)
        .await
        .map_err(StorageError::from_sqlx)?;
    }
    tx.commit().await.map_err(StorageError::from_sqlx)
}

async fn insert_terms(
    conn: &mut sqlx::MySqlConnection,
    keys: &Keyring,
    document_id: i64,
    pages: &[PageText],
) -> Result<(), StorageError> {
    let all: String = pages.iter().map(|p| p.content.as_str()).collect::<Vec<_>>().join("\n");
    for terms in keys.terms(&all).chunks(1000) {
        let mut q = sqlx::QueryBuilder::<sqlx::MySql>::new(
            "INSERT IGNORE INTO mmt_document_terms (document_id, term) ",
        );
        q.push_values(terms, |mut row, term| {
            row.push_bind(document_id).push_bind(&term[..]);
        });
        q.build().execute(&mut *conn).await.map_err(StorageError::from_sqlx)?;
    }
    Ok(())
}

/// Documents whose text was extracted before the blind index existed.
pub async fn unindexed(pool: &MySqlPool) -> Result<Vec<i64>, StorageError> {
    sqlx::query_scalar(
        "SELECT DISTINCT t.document_id FROM mmt_document_text t \
         WHERE NOT EXISTS (SELECT 1 FROM mmt_document_terms m WHERE m.document_id = t.document_id)",
    )
    .fetch_all(pool)
    .await
    .map_err(StorageError::from_sqlx)
}

/// Writes a document's blind index terms from its stored text.
pub async fn index(pool: &MySqlPool, vault: &Vault, document_id: i64) -> Result<(), StorageError> {
    let pages = text(pool, vault, document_id).await?;
    let keys = vault.keys().await?;
    let mut conn = pool.acquire().await.map_err(StorageError::from_sqlx)?;
    insert_terms(&mut conn, &keys, document_id, &pages).await
}

pub async fn text(pool: &MySqlPool, vault: &Vault, document_id: i64) -> Result<Vec<PageText>, StorageError> {
    let mut pages: Vec<PageText> = sqlx::query_as(
        "SELECT page, method, confidence, content AS sealed_content FROM mmt_document_text \
         WHERE document_id = ? ORDER BY page",
    )
    .bind(document_id)
    .fetch_all(pool)
    .await
    .map_err(StorageError::from_sqlx)?;
    vault
        .with_keys(|keys| {
            pages.iter_mut().try_for_each(|p| {
                p.content = keys.open(Field::PageText, &p.sealed_content)?;
                Ok(())
            })
        })
        .await?;
    Ok(pages)
}

/// Those of `ids` whose extracted text has every word of `query` (a word, or a beginning of
/// four or more letters of one; case and accents as typed are folded to lower case), found
/// through the blind index.
pub async fn containing(
    pool: &MySqlPool,
    vault: &Vault,
    ids: &[i64],
    query: &str,
) -> Result<Vec<i64>, StorageError> {
    let terms = vault.keys().await?.query_terms(query);
    if ids.is_empty() || terms.is_empty() {
        return Ok(Vec::new());
    }
    let mut q = sqlx::QueryBuilder::<sqlx::MySql>::new(
        "SELECT document_id FROM mmt_document_terms WHERE document_id IN (",
    );
    let mut list = q.separated(", ");
    for id in ids {
        list.push_bind(id);
    }
    q.push(") AND term IN (");
    let mut list = q.separated(", ");
    for term in &terms {
        list.push_bind(&term[..]);
    }
    q.push(") GROUP BY document_id HAVING COUNT(*) = ").push_bind(terms.len() as i64);
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
