//! `documents`, `categories_to_documents` and `categories`, written as `Document::createDocument`
//! and `deleter.php` write them.

use chrono::{NaiveDate, NaiveDateTime};
use sqlx::{MySql, MySqlConnection, MySqlPool, QueryBuilder};

use crate::{domain::documents::category::Category, storage::StorageError};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DocumentRow {
    pub id: i64,
    pub uuid: Option<Vec<u8>>,
    pub size: Option<i64>,
    pub date: Option<NaiveDateTime>,
    pub date_expires: Option<NaiveDateTime>,
    pub url: Option<String>,
    pub mimetype: Option<String>,
    pub owner: Option<i64>,
    pub foreign_id: Option<i64>,
    pub docdate: Option<NaiveDate>,
    pub hash: Option<String>,
    pub name: Option<String>,
    pub storagemethod: i8,
    pub path_depth: Option<i8>,
    pub encounter_id: i64,
    pub encrypted: i8,
    pub deleted: i8,
}

const COLUMNS: &str = "id, uuid, size, date, date_expires, url, mimetype, owner, foreign_id, docdate, hash, \
                       name, storagemethod, path_depth, encounter_id, encrypted, deleted";

/// The row `createDocument` persists. `revision` has no default and OpenEMR leaves it to the
/// server's implicit first-timestamp rule, so it is set explicitly.
pub struct NewDocument<'a> {
    pub id: i64,
    pub uuid: [u8; 16],
    pub drive_uuid: [u8; 16],
    pub size: i64,
    pub date: NaiveDateTime,
    pub url: &'a str,
    pub mimetype: &'a str,
    pub owner: i64,
    pub pid: i64,
    pub hash: &'a str,
    pub name: &'a str,
    pub encounter_id: i64,
    pub encrypted: bool,
}

pub async fn insert(conn: &mut MySqlConnection, d: &NewDocument<'_>) -> Result<(), StorageError> {
    sqlx::query(
        "INSERT INTO documents (id, uuid, type, size, date, url, mimetype, owner, revision, foreign_id, docdate, \
         hash, list_id, name, drive_uuid, storagemethod, path_depth, encounter_id, encrypted, deleted) \
         VALUES (?, ?, 'file_url', ?, ?, ?, ?, ?, NOW(), ?, ?, ?, 0, ?, ?, 0, 1, ?, ?, 0)",
    )
    .bind(d.id)
    .bind(&d.uuid[..])
    .bind(d.size)
    .bind(d.date)
    .bind(d.url)
    .bind(d.mimetype)
    .bind(d.owner)
    .bind(d.pid)
    .bind(d.date.date())
    .bind(d.hash)
    .bind(d.name)
    .bind(&d.drive_uuid[..])
    .bind(d.encounter_id)
    .bind(i8::from(d.encrypted))
    .execute(&mut *conn)
    .await
    .map_err(StorageError::from_sqlx)?;
    Ok(())
}

pub async fn file_in(
    conn: &mut MySqlConnection,
    category_id: i64,
    document_id: i64,
) -> Result<(), StorageError> {
    sqlx::query("REPLACE INTO categories_to_documents (category_id, document_id) VALUES (?, ?)")
        .bind(category_id)
        .bind(document_id)
        .execute(conn)
        .await
        .map_err(StorageError::from_sqlx)?;
    Ok(())
}

/// A live (not deleted) document.
pub async fn get(pool: &MySqlPool, id: i64) -> Result<Option<DocumentRow>, StorageError> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM documents WHERE id = ? AND deleted = 0"
    )))
    .bind(id)
    .fetch_optional(pool)
    .await
    .map_err(StorageError::from_sqlx)
}

/// The live document OpenEMR's FHIR API knows by `uuid`.
pub async fn id_by_uuid(pool: &MySqlPool, uuid: &[u8; 16]) -> Result<Option<i64>, StorageError> {
    sqlx::query_scalar("SELECT id FROM documents WHERE uuid = ? AND deleted = 0")
        .bind(&uuid[..])
        .fetch_optional(pool)
        .await
        .map_err(StorageError::from_sqlx)
}

/// A patient's live documents, newest first; `category` includes the categories below it.
pub async fn list(
    pool: &MySqlPool,
    pid: i64,
    category: Option<i64>,
    encounter: Option<i64>,
) -> Result<Vec<DocumentRow>, StorageError> {
    let mut q = QueryBuilder::<MySql>::new(format!("SELECT {COLUMNS} FROM documents d WHERE foreign_id = "));
    q.push_bind(pid).push(" AND deleted = 0");
    if let Some(category) = category {
        q.push(
            " AND EXISTS (SELECT 1 FROM categories_to_documents cd JOIN categories c ON c.id = cd.category_id \
             JOIN categories top ON c.lft BETWEEN top.lft AND top.rght WHERE cd.document_id = d.id AND top.id = ",
        )
        .push_bind(category)
        .push(")");
    }
    if let Some(encounter) = encounter {
        q.push(" AND encounter_id = ").push_bind(encounter);
    }
    q.push(" ORDER BY date DESC, id DESC");
    q.build_query_as().fetch_all(pool).await.map_err(StorageError::from_sqlx)
}

/// `(document_id, category_id)` for each of the documents.
pub async fn categories_of(pool: &MySqlPool, ids: &[i64]) -> Result<Vec<(i64, i64)>, StorageError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut q = QueryBuilder::<MySql>::new(
        "SELECT document_id, category_id FROM categories_to_documents WHERE document_id IN (",
    );
    let mut list = q.separated(", ");
    for id in ids {
        list.push_bind(id);
    }
    q.push(") ORDER BY document_id, category_id");
    q.build_query_as().fetch_all(pool).await.map_err(StorageError::from_sqlx)
}

#[derive(sqlx::FromRow)]
struct CategoryRow {
    id: i64,
    name: String,
    parent: i64,
    lft: i64,
    rght: i64,
    aco_spec: String,
    codes: String,
}

pub async fn categories(pool: &MySqlPool) -> Result<Vec<Category>, StorageError> {
    let rows: Vec<CategoryRow> = sqlx::query_as(
        "SELECT id, COALESCE(name, '') AS name, parent, lft, rght, aco_spec, codes FROM categories ORDER BY lft, id",
    )
    .fetch_all(pool)
    .await
    .map_err(StorageError::from_sqlx)?;
    Ok(rows
        .into_iter()
        .map(|r| Category {
            id: r.id,
            name: r.name,
            parent: r.parent,
            lft: r.lft,
            rght: r.rght,
            aco_spec: r.aco_spec,
            codes: r.codes,
        })
        .collect())
}

/// The types `secure_upload` lets through (list `files_white_list`).
pub async fn allowed_types(pool: &MySqlPool) -> Result<Vec<String>, StorageError> {
    sqlx::query_scalar(
        "SELECT option_id FROM list_options WHERE list_id = 'files_white_list' AND activity = 1",
    )
    .fetch_all(pool)
    .await
    .map_err(StorageError::from_sqlx)
}

/// `deleter.php`: the row is only marked deleted and unfiled; the file stays on disk.
pub async fn soft_delete(conn: &mut MySqlConnection, id: i64) -> Result<bool, StorageError> {
    let done = sqlx::query("UPDATE documents SET deleted = 1 WHERE id = ? AND deleted = 0")
        .bind(id)
        .execute(&mut *conn)
        .await
        .map_err(StorageError::from_sqlx)?;
    for sql in [
        "DELETE FROM categories_to_documents WHERE document_id = ?",
        "DELETE FROM gprelations WHERE type1 = 1 AND id1 = ?",
    ] {
        sqlx::query(sql).bind(id).execute(&mut *conn).await.map_err(StorageError::from_sqlx)?;
    }
    Ok(done.rows_affected() == 1)
}

/// A database key as `CryptoGen::createDatabaseKey` makes it; a key another process made first wins.
pub async fn create_key(pool: &MySqlPool, label: &str, base64_value: &str) -> Result<(), StorageError> {
    sqlx::query("INSERT IGNORE INTO `keys` (name, value) VALUES (?, ?)")
        .bind(label)
        .bind(base64_value)
        .execute(pool)
        .await
        .map_err(StorageError::from_sqlx)?;
    Ok(())
}
