use sqlx::MySqlPool;

use crate::{domain::user::UserId, storage::StorageError};

/// A staff account as login and session checks need it: `users` joined to `users_secure` the
/// way OpenEMR joins them (same id, byte-equal username), with the auth group from `groups`.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UserRecord {
    pub id: i64,
    pub username: String,
    pub fname: Option<String>,
    pub lname: Option<String>,
    pub active: bool,
    pub authorized: bool,
    pub facility_id: i64,
    pub facility: Option<String>,
    pub password_hash: String,
    pub auth_group: Option<String>,
}

const SELECT_USER: &str = "SELECT u.id, CAST(u.username AS CHAR) AS username, u.fname, u.lname, \
     u.active <> 0 AS active, COALESCE(u.authorized, 0) <> 0 AS authorized, u.facility_id, f.name AS facility, us.password AS password_hash, \
     (SELECT g.name FROM `groups` g WHERE BINARY g.user = u.username ORDER BY g.id LIMIT 1) AS auth_group \
     FROM users u \
     JOIN users_secure us ON us.id = u.id AND BINARY us.username = u.username \
     LEFT JOIN facility f ON f.id = u.facility_id";

pub async fn by_username(pool: &MySqlPool, username: &str) -> Result<Option<UserRecord>, StorageError> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("{SELECT_USER} WHERE BINARY u.username = ?")))
        .bind(username)
        .fetch_optional(pool)
        .await
        .map_err(StorageError::from_sqlx)
}

pub async fn by_id(pool: &MySqlPool, id: UserId) -> Result<Option<UserRecord>, StorageError> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("{SELECT_USER} WHERE u.id = ?")))
        .bind(id.0)
        .fetch_optional(pool)
        .await
        .map_err(StorageError::from_sqlx)
}
