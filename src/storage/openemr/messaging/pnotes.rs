//! `pnotes`, written as `addPnote`, `updatePnote`, `updatePnoteMessageStatus` and `deletePnote`
//! (library/pnotes.inc.php) write it: one row per recipient, `update_date = NOW()`.

use chrono::NaiveDateTime;
use sqlx::{MySql, MySqlConnection, MySqlPool, QueryBuilder};

use crate::{domain::messaging::message::Mailbox, storage::StorageError};

/// One thread without its body, as a mailbox lists it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Summary {
    pub id: i64,
    pub date: Option<NaiveDateTime>,
    pub pid: Option<i64>,
    pub user: Option<String>,
    pub title: Option<String>,
    pub assigned_to: Option<String>,
    pub message_status: String,
    pub activity: Option<i8>,
    pub update_date: Option<NaiveDateTime>,
}

/// One thread with its body.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Pnote {
    #[sqlx(flatten)]
    pub summary: Summary,
    pub body: Option<String>,
}

impl Summary {
    pub fn pid(&self) -> i64 {
        self.pid.unwrap_or(0)
    }

    pub fn sender(&self) -> &str {
        self.user.as_deref().unwrap_or("")
    }

    pub fn recipient(&self) -> &str {
        self.assigned_to.as_deref().unwrap_or("")
    }

    /// OpenEMR's `checkPnotesNoteId`: the sender and the recipient may act on a thread.
    pub fn involves(&self, username: &str) -> bool {
        self.sender() == username || self.recipient() == username
    }
}

const SUMMARY: &str = "id, date, pid, user, title, assigned_to, message_status, activity, update_date";

/// The row `addPnote` inserts. Returns its id.
pub struct NewPnote<'a> {
    pub date: NaiveDateTime,
    pub body: &'a str,
    pub pid: i64,
    pub user: &'a str,
    pub groupname: &'a str,
    pub authorized: bool,
    pub activity: i8,
    pub title: &'a str,
    pub assigned_to: &'a str,
    pub message_status: &'a str,
    pub update_by: i64,
}

pub async fn insert(conn: &mut MySqlConnection, row: &NewPnote<'_>) -> Result<i64, StorageError> {
    let done = sqlx::query(
        "INSERT INTO pnotes (date, body, pid, user, groupname, authorized, activity, title, assigned_to, \
         message_status, update_by, update_date) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NOW())",
    )
    .bind(row.date)
    .bind(row.body)
    .bind(row.pid)
    .bind(row.user)
    .bind(row.groupname)
    .bind(i8::from(row.authorized))
    .bind(row.activity)
    .bind(row.title)
    .bind(row.assigned_to)
    .bind(row.message_status)
    .bind(row.update_by)
    .execute(conn)
    .await
    .map_err(StorageError::from_sqlx)?;
    Ok(done.last_insert_id() as i64)
}

/// A live (not deleted) thread, as `getPnoteById` reads it.
pub async fn get(pool: &MySqlPool, id: i64) -> Result<Option<Pnote>, StorageError> {
    let mut conn = pool.acquire().await.map_err(StorageError::from_sqlx)?;
    fetch(&mut conn, id, "").await
}

/// As [`get`], holding the row until the transaction ends, so no concurrent reply is lost when
/// the body is rewritten (OpenEMR's own `updatePnote` has no such guard).
pub async fn lock(conn: &mut MySqlConnection, id: i64) -> Result<Option<Pnote>, StorageError> {
    fetch(conn, id, " FOR UPDATE").await
}

async fn fetch(conn: &mut MySqlConnection, id: i64, locking: &str) -> Result<Option<Pnote>, StorageError> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {SUMMARY}, body FROM pnotes WHERE id = ? AND deleted != 1{locking}"
    )))
    .bind(id)
    .fetch_optional(conn)
    .await
    .map_err(StorageError::from_sqlx)
}

/// What `updatePnote` sets.
pub struct Rewrite<'a> {
    pub body: &'a str,
    pub activity: i8,
    pub title: &'a str,
    pub assigned_to: &'a str,
    pub update_by: i64,
    pub message_status: &'a str,
}

/// `updatePnote`'s UPDATE (with a status, and without `messages_due_date`).
pub async fn rewrite(conn: &mut MySqlConnection, id: i64, row: &Rewrite<'_>) -> Result<(), StorageError> {
    sqlx::query(
        "UPDATE pnotes SET body = ?, activity = ?, title = ?, assigned_to = ?, update_by = ?, update_date = NOW(), \
         message_status = ? WHERE id = ?",
    )
    .bind(row.body)
    .bind(row.activity)
    .bind(row.title)
    .bind(row.assigned_to)
    .bind(row.update_by)
    .bind(row.message_status)
    .bind(id)
    .execute(conn)
    .await
    .map_err(StorageError::from_sqlx)
    .map(|_| ())
}

/// `updatePnoteMessageStatus`.
pub async fn set_status(
    conn: &mut MySqlConnection,
    id: i64,
    status: &str,
    activity: i8,
    update_by: i64,
) -> Result<(), StorageError> {
    sqlx::query(
        "UPDATE pnotes SET message_status = ?, activity = ?, update_by = ?, update_date = NOW() WHERE id = ?",
    )
    .bind(status)
    .bind(activity)
    .bind(update_by)
    .bind(id)
    .execute(conn)
    .await
    .map_err(StorageError::from_sqlx)
    .map(|_| ())
}

/// `deletePnote`: a soft delete.
pub async fn delete(conn: &mut MySqlConnection, id: i64, update_by: i64) -> Result<(), StorageError> {
    sqlx::query("UPDATE pnotes SET deleted = '1', update_by = ?, update_date = NOW() WHERE id = ?")
        .bind(update_by)
        .bind(id)
        .execute(conn)
        .await
        .map_err(StorageError::from_sqlx)
        .map(|_| ())
}

pub struct Filter<'a> {
    pub mailbox: Mailbox,
    pub username: &'a str,
    pub status: Option<&'a str>,
    pub pid: Option<i64>,
    /// Without `patients|notes`, only threads about no patient are listed.
    pub patient_threads: bool,
    /// Ids below this one (the cursor).
    pub before: Option<i64>,
    pub limit: u32,
}

/// Newest first. The inbox without a status is OpenEMR's active inbox (`getPnotesByUser`).
pub async fn list(pool: &MySqlPool, f: &Filter<'_>) -> Result<Vec<Summary>, StorageError> {
    let mut q: QueryBuilder<MySql> =
        QueryBuilder::new(format!("SELECT {SUMMARY} FROM pnotes WHERE deleted != 1 AND "));
    match f.mailbox {
        Mailbox::Inbox => q.push("assigned_to = ").push_bind(f.username),
        Mailbox::Sent => q.push("user = ").push_bind(f.username),
        Mailbox::All => q
            .push("(assigned_to = ")
            .push_bind(f.username)
            .push(" OR user = ")
            .push_bind(f.username)
            .push(")"),
    };
    match f.status {
        Some(status) => q.push(" AND message_status = ").push_bind(status),
        None if f.mailbox == Mailbox::Inbox => q.push(" AND message_status != 'Done' AND activity = 1"),
        None => &mut q,
    };
    if let Some(pid) = f.pid {
        q.push(" AND pid = ").push_bind(pid);
    }
    if !f.patient_threads {
        q.push(" AND (pid IS NULL OR pid = 0)");
    }
    if let Some(before) = f.before {
        q.push(" AND id < ").push_bind(before);
    }
    q.push(" ORDER BY id DESC LIMIT ").push_bind(f.limit);
    q.build_query_as().fetch_all(pool).await.map_err(StorageError::from_sqlx)
}

/// The option ids of an OpenEMR list, in its order.
pub async fn list_options(pool: &MySqlPool, list_id: &str) -> Result<Vec<String>, StorageError> {
    sqlx::query_scalar("SELECT option_id FROM list_options WHERE list_id = ? AND activity = 1 ORDER BY seq")
        .bind(list_id)
        .fetch_all(pool)
        .await
        .map_err(StorageError::from_sqlx)
}

/// Which of `usernames` are active OpenEMR users, with their ids.
pub async fn active_users(
    pool: &MySqlPool,
    usernames: &[String],
) -> Result<Vec<(i64, String)>, StorageError> {
    if usernames.is_empty() {
        return Ok(Vec::new());
    }
    let mut q: QueryBuilder<MySql> = QueryBuilder::new(
        "SELECT id, CAST(username AS CHAR) FROM users WHERE active = 1 AND username <> '' AND BINARY username IN (",
    );
    let mut names = q.separated(", ");
    for name in usernames {
        names.push_bind(name);
    }
    q.push(")");
    q.build_query_as().fetch_all(pool).await.map_err(StorageError::from_sqlx)
}

/// `users.authorized` of the sender, which OpenEMR copies into `pnotes.authorized`.
pub async fn authorized(pool: &MySqlPool, user_id: i64) -> Result<bool, StorageError> {
    let value: Option<Option<i8>> = sqlx::query_scalar("SELECT authorized FROM users WHERE id = ?")
        .bind(user_id)
        .fetch_optional(pool)
        .await
        .map_err(StorageError::from_sqlx)?;
    Ok(value.flatten().unwrap_or(0) != 0)
}

/// The bodies of these threads, by id.
pub async fn bodies(pool: &MySqlPool, ids: &[i64]) -> Result<Vec<(i64, Option<String>)>, StorageError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut q: QueryBuilder<MySql> = QueryBuilder::new("SELECT id, body FROM pnotes WHERE id IN (");
    let mut list = q.separated(", ");
    for id in ids {
        list.push_bind(*id);
    }
    q.push(")");
    q.build_query_as().fetch_all(pool).await.map_err(StorageError::from_sqlx)
}

/// The users (active or not) with these usernames, and their uuids: who wrote or got a thread.
pub async fn user_uuids(
    pool: &MySqlPool,
    usernames: &[String],
) -> Result<Vec<(String, Option<Vec<u8>>)>, StorageError> {
    if usernames.is_empty() {
        return Ok(Vec::new());
    }
    let mut q: QueryBuilder<MySql> =
        QueryBuilder::new("SELECT CAST(username AS CHAR), uuid FROM users WHERE BINARY username IN (");
    let mut names = q.separated(", ");
    for name in usernames {
        names.push_bind(name);
    }
    q.push(")");
    q.build_query_as().fetch_all(pool).await.map_err(StorageError::from_sqlx)
}

/// The active user OpenEMR's FHIR API knows by `uuid`.
pub async fn username_of_uuid(pool: &MySqlPool, uuid: &[u8; 16]) -> Result<Option<String>, StorageError> {
    sqlx::query_scalar(
        "SELECT CAST(username AS CHAR) FROM users WHERE uuid = ? AND active = 1 AND username <> ''",
    )
    .bind(&uuid[..])
    .fetch_optional(pool)
    .await
    .map_err(StorageError::from_sqlx)
}
