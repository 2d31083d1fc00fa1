//! OpenEMR's audit log, written as 8.x `LogTablesSink::record` writes it, so OpenEMR's log viewer
//! shows the sidecar's rows and its tamper report verifies their checksums.

use base64::{Engine, engine::general_purpose::STANDARD as BASE64};
use sha3::{Digest, Sha3_512};
use sqlx::{Connection, MySqlConnection};

use crate::{domain::audit::AuditEntry, storage::StorageError};

/// Tells the sidecar's rows apart from OpenEMR's own (`'open-emr'`); `log_from` is varchar(20).
pub const LOG_FROM: &str = "mmt-sidecar";

/// A `log` row's thirteen written columns, in the order OpenEMR concatenates them for the checksum.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct LogRow {
    pub date: String,
    pub event: String,
    pub category: String,
    pub user: String,
    pub groupname: String,
    pub comments: String,
    pub user_notes: String,
    pub patient_id: Option<i64>,
    pub success: bool,
    pub crt_user: String,
    pub log_from: String,
    pub menu_item_id: Option<i64>,
    pub ccda_doc_id: Option<i64>,
}

impl LogRow {
    /// `date` is local wall-clock `%Y-%m-%d %H:%M:%S`, as PHP's `date()` writes it.
    pub fn new(entry: &AuditEntry, date: String) -> Self {
        Self {
            date,
            event: entry.event.clone(),
            category: entry.category.clone(),
            user: entry.user.clone(),
            groupname: entry.groupname.clone(),
            comments: BASE64.encode(&entry.comments),
            user_notes: String::new(),
            patient_id: entry.patient_id,
            success: entry.success,
            crt_user: String::new(),
            log_from: LOG_FROM.to_string(),
            menu_item_id: None,
            ccda_doc_id: None,
        }
    }
}

/// sha3-512 hex of PHP's `implode('', $row)`: NULL becomes '', integers decimal.
pub fn checksum(row: &LogRow) -> String {
    let int = |v: Option<i64>| v.map(|v| v.to_string()).unwrap_or_default();
    let joined = [
        row.date.as_str(),
        &row.event,
        &row.category,
        &row.user,
        &row.groupname,
        &row.comments,
        &row.user_notes,
        &int(row.patient_id),
        if row.success { "1" } else { "0" },
        &row.crt_user,
        &row.log_from,
        &int(row.menu_item_id),
        &int(row.ccda_doc_id),
    ]
    .concat();
    hex::encode(Sha3_512::digest(joined.as_bytes()))
}

/// Writes the `log` row and its `log_comment_encrypt` checksum row atomically, returning `log.id`.
/// Pass `&mut tx` to make the audit commit or roll back with the caller's own writes (it nests as
/// a savepoint); pass `&mut pool.acquire().await?` for reads and sign-ins.
pub async fn record(conn: &mut MySqlConnection, entry: &AuditEntry) -> Result<u64, StorageError> {
    let mut tx = conn.begin().await.map_err(StorageError::from_sqlx)?;
    let ids = insert(&mut tx, std::slice::from_ref(entry)).await?;
    tx.commit().await.map_err(StorageError::from_sqlx)?;
    Ok(ids[0])
}

/// Writes every entry's `log` row and then all their checksum rows in one statement, on the
/// caller's connection: run it inside a transaction, which makes the rows visible together.
pub async fn insert(conn: &mut MySqlConnection, entries: &[AuditEntry]) -> Result<Vec<u64>, StorageError> {
    let date = chrono::Local::now().format("%Y-%m-%d %H:%M:%S").to_string();
    let mut written = Vec::with_capacity(entries.len());
    for entry in entries {
        let row = LogRow::new(entry, date.clone());
        let id = insert_log(conn, &row).await?;
        written.push((id, checksum(&row)));
    }
    if written.is_empty() {
        return Ok(Vec::new());
    }
    let mut q = sqlx::QueryBuilder::new(
        "INSERT INTO log_comment_encrypt (log_id, encrypt, checksum, checksum_api, version) ",
    );
    q.push_values(&written, |mut b, (id, sum)| {
        b.push_bind(*id).push("'No'").push_bind(sum).push("''").push("4");
    });
    q.build().execute(&mut *conn).await.map_err(StorageError::from_sqlx)?;
    Ok(written.into_iter().map(|(id, _)| id).collect())
}

async fn insert_log(conn: &mut MySqlConnection, row: &LogRow) -> Result<u64, StorageError> {
    Ok(sqlx::query(
        "INSERT INTO log (date, event, category, user, groupname, comments, user_notes, patient_id, \
         success, crt_user, log_from, menu_item_id, ccda_doc_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&row.date)
    .bind(&row.event)
    .bind(&row.category)
    .bind(&row.user)
    .bind(&row.groupname)
    .bind(&row.comments)
    .bind(&row.user_notes)
    .bind(row.patient_id)
    .bind(row.success)
    .bind(&row.crt_user)
    .bind(&row.log_from)
    .bind(row.menu_item_id)
    .bind(row.ccda_doc_id)
    .execute(conn)
    .await
    .map_err(StorageError::from_sqlx)?
    .last_insert_id())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> AuditEntry {
        AuditEntry {
            event: "view".into(),
            category: "view".into(),
            user: "drgarcia".into(),
            groupname: "Default".into(),
            comments: "patient chart é".into(),
            patient_id: Some(42),
            success: true,
        }
    }

    #[test]
    fn comments_are_base64_and_the_sidecar_is_named() {
        let row = LogRow::new(&entry(), "2026-03-01 14:05:09".into());
        assert_eq!(row.comments, "cGF0aWVudCBjaGFydCDDqQ==");
        assert_eq!(row.log_from, "mmt-sidecar");
        assert_eq!(row.crt_user, "");
    }

    #[test]
    fn checksum_matches_an_independent_sha3_512() {
        let row = LogRow::new(&entry(), "2026-03-01 14:05:09".into());
        assert_eq!(
            checksum(&row),
            "bb044e6242bb3facd80c415199a5b37755791a4ac63a36f6f160f22f7dfca81a\
             181bca0148ae6b96784fb331e458d0a3c5b536897ca0be598943d7bb256664b7"
        );
    }

    #[test]
    fn checksum_writes_null_as_empty_and_failure_as_zero() {
        let failed = AuditEntry {
            event: "login".into(),
            category: "login".into(),
            user: "nobody".into(),
            groupname: String::new(),
            comments: String::new(),
            patient_id: None,
            success: false,
        };
        let row = LogRow::new(&failed, "2026-03-01 14:05:09".into());
        assert_eq!(
            checksum(&row),
            "3e3284f640d3227837cd0dc1b40dbb7dc5ed1e2d7d7973083bf4cce2e7589a33\
             3c55d3726606f084c47d1ad7c926c4dbe6f4fef213105de70bae50b1c99a6f7c"
        );
    }
}
