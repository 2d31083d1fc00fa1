//! `mmt_chat_messages`: a room's history; ids are server-assigned and are the paging cursor.

use chrono::NaiveDateTime;
use sqlx::{MySql, MySqlConnection, MySqlPool, QueryBuilder};

use crate::storage::{
    StorageError,
    vault::{Field, Vault},
};

#[derive(Debug, Clone)]
pub struct MessageRow {
    pub id: u64,
    pub room_id: u64,
    pub author_id: i64,
    pub author: String,
    pub text: String,
    /// UTC.
    pub created_at: NaiveDateTime,
}

/// A message as stored: its text sealed.
#[derive(sqlx::FromRow)]
struct Stored {
    id: u64,
    room_id: u64,
    author_id: i64,
    author: String,
    text: Vec<u8>,
    created_at: NaiveDateTime,
}

pub struct NewMessageRow<'a> {
    pub room_id: u64,
    pub author_id: i64,
    pub author: &'a str,
    pub text: &'a str,
    pub at: NaiveDateTime,
}

pub async fn insert(
    conn: &mut MySqlConnection,
    vault: &Vault,
    m: &NewMessageRow<'_>,
) -> Result<u64, StorageError> {
    let text = vault.keys().await?.seal(Field::ChatText, m.text);
    let done = sqlx::query(
        "INSERT INTO mmt_chat_messages (room_id, author_id, author, text, created_at) VALUES (?, ?, ?, ?, ?)",
    )
    .bind(m.room_id)
    .bind(m.author_id)
    .bind(m.author)
    .bind(text)
    .bind(m.at)
    .execute(conn)
    .await
    .map_err(StorageError::from_sqlx)?;
    Ok(done.last_insert_id())
}

/// A page of a room's history, oldest first: the first `limit` after `after` when it is given
/// (catching up), else the last `limit` before `before` (or the newest, scrolling back).
pub async fn page(
    pool: &MySqlPool,
    vault: &Vault,
    room: u64,
    before: Option<u64>,
    after: Option<u64>,
    limit: u32,
) -> Result<Vec<MessageRow>, StorageError> {
    let mut q: QueryBuilder<MySql> = QueryBuilder::new(
        "SELECT id, room_id, author_id, author, text, created_at FROM mmt_chat_messages WHERE room_id = ",
    );
    q.push_bind(room);
    if let Some(before) = before {
        q.push(" AND id < ").push_bind(before);
    }
    if let Some(after) = after {
        q.push(" AND id > ").push_bind(after);
    }
    q.push(if after.is_some() { " ORDER BY id LIMIT " } else { " ORDER BY id DESC LIMIT " }).push_bind(limit);
    let mut rows: Vec<Stored> = q.build_query_as().fetch_all(pool).await.map_err(StorageError::from_sqlx)?;
    if after.is_none() {
        rows.reverse();
    }
    let sealed: Vec<&[u8]> = rows.iter().map(|m| &m.text[..]).collect();
    let texts = vault.open_all(Field::ChatText, &sealed).await?;
    Ok(rows
        .into_iter()
        .zip(texts)
        .map(|(m, text)| MessageRow {
            id: m.id,
            room_id: m.room_id,
            author_id: m.author_id,
            author: m.author,
            text,
            created_at: m.created_at,
        })
        .collect())
}

/// The room's newest message id, 0 when it has none, on the caller's connection.
pub async fn last_id(conn: &mut MySqlConnection, room: u64) -> Result<u64, StorageError> {
    let id: Option<u64> = sqlx::query_scalar("SELECT MAX(id) FROM mmt_chat_messages WHERE room_id = ?")
        .bind(room)
        .fetch_one(conn)
        .await
        .map_err(StorageError::from_sqlx)?;
    Ok(id.unwrap_or(0))
}

/// How many messages the author posted since `since`, and when the oldest of them was: what the
/// rate limit needs, counted in the shared table so it holds across replicas.
pub async fn posted_since(
    conn: &mut MySqlConnection,
    author_id: i64,
    since: NaiveDateTime,
) -> Result<(i64, Option<NaiveDateTime>), StorageError> {
    sqlx::query_as(
        "SELECT COUNT(*), MIN(created_at) FROM mmt_chat_messages WHERE author_id = ? AND created_at > ?",
    )
    .bind(author_id)
    .bind(since)
    .fetch_one(conn)
    .await
    .map_err(StorageError::from_sqlx)
}
