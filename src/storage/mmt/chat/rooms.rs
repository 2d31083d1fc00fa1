//! `mmt_chat_rooms` and `mmt_chat_members`.

use chrono::NaiveDateTime;
use sqlx::{MySqlConnection, MySqlPool};

use crate::storage::{
    StorageError,
    vault::{Field, Vault},
};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RoomRow {
    pub id: u64,
    pub pid: Option<i64>,
    pub appointment_id: Option<u32>,
    #[sqlx(skip)]
    pub title: String,
    pub created_by: i64,
    pub created_at: NaiveDateTime,
    /// 0 while the room has no message.
    pub last_message_id: u64,
    sealed_title: Vec<u8>,
}

impl RoomRow {
    /// The patient the room is about, if any.
    pub fn patient(&self) -> Option<i64> {
        self.pid.filter(|p| *p > 0)
    }
}

/// One of the caller's rooms, as their room list shows it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MyRoomRow {
    #[sqlx(flatten)]
    pub room: RoomRow,
    pub read_up_to: u64,
    /// Messages after the read marker written by others.
    pub unread: i64,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MemberRow {
    pub user_id: i64,
    pub username: String,
    pub read_up_to: u64,
    pub read_at: Option<NaiveDateTime>,
}

const ROOM: &str = "r.id, r.pid, r.appointment_id, r.title AS sealed_title, r.created_by, r.created_at, \
    CAST(COALESCE((SELECT MAX(m.id) FROM mmt_chat_messages m WHERE m.room_id = r.id), 0) AS UNSIGNED) \
    AS last_message_id";

pub struct NewRoomRow<'a> {
    pub pid: Option<i64>,
    pub appointment_id: Option<u32>,
    pub title: &'a str,
    pub created_by: i64,
    pub at: NaiveDateTime,
}

pub async fn insert(
    conn: &mut MySqlConnection,
    vault: &Vault,
    room: &NewRoomRow<'_>,
) -> Result<u64, StorageError> {
    let title = vault.keys().await?.seal(Field::RoomTitle, room.title);
    let done = sqlx::query(
        "INSERT INTO mmt_chat_rooms (pid, appointment_id, title, created_by, created_at) VALUES (?, ?, ?, ?, ?)",
    )
    .bind(room.pid)
    .bind(room.appointment_id)
    .bind(title)
    .bind(room.created_by)
    .bind(room.at)
    .execute(conn)
    .await
    .map_err(StorageError::from_sqlx)?;
    Ok(done.last_insert_id())
}

pub async fn get(
    conn: &mut MySqlConnection,
    vault: &Vault,
    id: u64,
) -> Result<Option<RoomRow>, StorageError> {
    let mut room: Option<RoomRow> =
        sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {ROOM} FROM mmt_chat_rooms r WHERE r.id = ?")))
            .bind(id)
            .fetch_optional(conn)
            .await
            .map_err(StorageError::from_sqlx)?;
    opened(vault, room.iter_mut()).await?;
    Ok(room)
}

async fn opened(vault: &Vault, rooms: impl Iterator<Item = &mut RoomRow>) -> Result<(), StorageError> {
    let mut rooms: Vec<&mut RoomRow> = rooms.collect();
    vault
        .with_keys(|keys| {
            rooms.iter_mut().try_for_each(|r| {
                r.title = keys.open(Field::RoomTitle, &r.sealed_title)?;
                Ok(())
            })
        })
        .await
}

/// Takes the room's row lock until the transaction ends: messages of one room are written one at
/// a time, so their ids commit in order and a client catching up after an id misses none.
pub async fn lock(conn: &mut MySqlConnection, id: u64) -> Result<bool, StorageError> {
    let found: Option<u64> = sqlx::query_scalar("SELECT id FROM mmt_chat_rooms WHERE id = ? FOR UPDATE")
        .bind(id)
        .fetch_optional(conn)
        .await
        .map_err(StorageError::from_sqlx)?;
    Ok(found.is_some())
}

/// The user's rooms, most recently created first, below `before` when given.
pub async fn of_member(
    pool: &MySqlPool,
    vault: &Vault,
    user_id: i64,
    before: Option<u64>,
    limit: u32,
) -> Result<Vec<MyRoomRow>, StorageError> {
    let mut rows: Vec<MyRoomRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {ROOM}, me.read_up_to, \
           (SELECT COUNT(*) FROM mmt_chat_messages u WHERE u.room_id = r.id AND u.id > me.read_up_to \
              AND u.author_id <> me.user_id) AS unread \
         FROM mmt_chat_members me JOIN mmt_chat_rooms r ON r.id = me.room_id \
         WHERE me.user_id = ? AND r.id < ? ORDER BY r.id DESC LIMIT ?"
    )))
    .bind(user_id)
    .bind(before.unwrap_or(u64::MAX))
    .bind(limit)
    .fetch_all(pool)
    .await
    .map_err(StorageError::from_sqlx)?;
    opened(vault, rows.iter_mut().map(|r| &mut r.room)).await?;
    Ok(rows)
}

/// The room's members in the order they joined, read on the caller's connection (inside a
/// transaction that holds the room lock, the list cannot change underneath).
pub async fn members(conn: &mut MySqlConnection, room: u64) -> Result<Vec<MemberRow>, StorageError> {
    sqlx::query_as(
        "SELECT user_id, username, read_up_to, read_at FROM mmt_chat_members WHERE room_id = ? \
         ORDER BY added_at, user_id",
    )
    .bind(room)
    .fetch_all(conn)
    .await
    .map_err(StorageError::from_sqlx)
}

/// Adds a member; false when they already were one.
pub async fn add_member(
    conn: &mut MySqlConnection,
    room: u64,
    (user_id, username): (i64, &str),
    added_by: i64,
    at: NaiveDateTime,
) -> Result<bool, StorageError> {
    let done = sqlx::query(
        "INSERT IGNORE INTO mmt_chat_members (room_id, user_id, username, added_by, added_at) VALUES (?, ?, ?, ?, ?)",
    )
    .bind(room)
    .bind(user_id)
    .bind(username)
    .bind(added_by)
    .bind(at)
    .execute(conn)
    .await
    .map_err(StorageError::from_sqlx)?;
    Ok(done.rows_affected() == 1)
}

/// Removes a member; false when they were none.
pub async fn remove_member(
    conn: &mut MySqlConnection,
    room: u64,
    user_id: i64,
) -> Result<bool, StorageError> {
    let done = sqlx::query("DELETE FROM mmt_chat_members WHERE room_id = ? AND user_id = ?")
        .bind(room)
        .bind(user_id)
        .execute(conn)
        .await
        .map_err(StorageError::from_sqlx)?;
    Ok(done.rows_affected() == 1)
}

/// Moves a member's read marker forward to `up_to` (never back); false when it was there already.
pub async fn mark_read(
    conn: &mut MySqlConnection,
    room: u64,
    user_id: i64,
    up_to: u64,
    at: NaiveDateTime,
) -> Result<bool, StorageError> {
    let done = sqlx::query(
        "UPDATE mmt_chat_members SET read_up_to = ?, read_at = ? WHERE room_id = ? AND user_id = ? AND read_up_to < ?",
    )
    .bind(up_to)
    .bind(at)
    .bind(room)
    .bind(user_id)
    .bind(up_to)
    .execute(conn)
    .await
    .map_err(StorageError::from_sqlx)?;
    Ok(done.rows_affected() == 1)
}

/// Records a typing indicator unless the member sent one after `since`; true when recorded.
pub async fn typing(
    conn: &mut MySqlConnection,
    room: u64,
    user_id: i64,
    at: NaiveDateTime,
    since: NaiveDateTime,
) -> Result<bool, StorageError> {
    let done = sqlx::query(
        "UPDATE mmt_chat_members SET typing_at = ? WHERE room_id = ? AND user_id = ? \
         AND (typing_at IS NULL OR typing_at <= ?)",
    )
    .bind(at)
    .bind(room)
    .bind(user_id)
    .bind(since)
    .execute(conn)
    .await
    .map_err(StorageError::from_sqlx)?;
    Ok(done.rows_affected() == 1)
}
