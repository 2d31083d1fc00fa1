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

const USER_COLUMNS: &str = "u.id, CAST(u.username AS CHAR) AS username, u.fname, u.lname, \
     u.active <> 0 AS active, COALESCE(u.authorized, 0) <> 0 AS authorized, u.facility_id, f.name AS facility, us.password AS password_hash, \
     (SELECT g.name FROM `groups` g WHERE BINARY g.user = u.username ORDER BY g.id LIMIT 1) AS auth_group";
const USER_JOINS: &str = "JOIN users_secure us ON us.id = u.id AND BINARY us.username = u.username \
     LEFT JOIN facility f ON f.id = u.facility_id";

/// The user a live access token (not revoked, not expired) was issued to, with the token's own
/// columns, in one round trip: every authenticated request makes this check. `None` also when
/// no staff row joins (a guest's token, a removed user): [`crate::storage::mmt::tokens::live_access`] says which.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TokenHolder {
    #[sqlx(flatten)]
    pub user: UserRecord,
    pub family_id: Vec<u8>,
    pub session_source: String,
    pub credential_digest: Option<Vec<u8>>,
    pub last_used_at: Option<chrono::NaiveDateTime>,
}

pub async fn by_access_token(
    pool: &MySqlPool,
    digest: &[u8; 32],
    now: chrono::NaiveDateTime,
) -> Result<Option<TokenHolder>, StorageError> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {USER_COLUMNS}, t.family_id, t.session_source, t.credential_digest, t.last_used_at \
         FROM mmt_auth_tokens t JOIN users u ON u.id = t.user_id {USER_JOINS} \
         WHERE t.token_hash = ? AND t.kind = 'access' AND t.revoked_at IS NULL AND t.expires_at > ?"
    )))
    .bind(&digest[..])
    .bind(now)
    .fetch_optional(pool)
    .await
    .map_err(StorageError::from_sqlx)
}

pub async fn by_username(pool: &MySqlPool, username: &str) -> Result<Option<UserRecord>, StorageError> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {USER_COLUMNS} FROM users u {USER_JOINS} WHERE BINARY u.username = ?"
    )))
    .bind(username)
    .fetch_optional(pool)
    .await
    .map_err(StorageError::from_sqlx)
}

pub async fn by_id(pool: &MySqlPool, id: UserId) -> Result<Option<UserRecord>, StorageError> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {USER_COLUMNS} FROM users u {USER_JOINS} WHERE u.id = ?"
    )))
    .bind(id.0)
    .fetch_optional(pool)
    .await
    .map_err(StorageError::from_sqlx)
}

/// `match_provider`: the user with this NPI, else with this family and given name; active and
/// authorized ones first. Returns id and username.
pub async fn clinician(
    pool: &MySqlPool,
    npi: &str,
    family: &str,
    given: &str,
) -> Result<Option<(i64, String)>, StorageError> {
    sqlx::query_as(
        "SELECT id, username FROM users WHERE username IS NOT NULL AND username <> '' \
         AND ((? <> '' AND npi = ?) OR (? = '' AND lname = ? AND fname = ?)) \
         ORDER BY active DESC, authorized DESC, username, id LIMIT 1",
    )
    .bind(npi)
    .bind(npi)
    .bind(npi)
    .bind(family)
    .bind(given)
    .fetch_optional(pool)
    .await
    .map_err(StorageError::from_sqlx)
}
