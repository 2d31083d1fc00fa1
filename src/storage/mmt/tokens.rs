use chrono::NaiveDateTime;
use sqlx::{MySqlConnection, MySqlPool};

use crate::{
    domain::{
        token::TokenKind,
        user::{SignInMethod, UserId},
    },
    storage::StorageError,
};

pub struct TokenRow<'a> {
    pub digest: [u8; 32],
    pub kind: TokenKind,
    pub family: [u8; 16],
    pub user_id: UserId,
    pub method: SignInMethod,
    pub issued_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    pub client_address: &'a str,
    pub credential: Option<[u8; 32]>,
}

pub async fn insert(conn: &mut MySqlConnection, row: &TokenRow<'_>) -> Result<(), StorageError> {
    sqlx::query(
        "INSERT INTO mmt_auth_tokens (token_hash, kind, family_id, user_id, session_source, issued_at, \
         expires_at, client_address, credential_digest, last_used_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&row.digest[..])
    .bind(row.kind.as_str())
    .bind(&row.family[..])
    .bind(row.user_id.0)
    .bind(row.method.as_str())
    .bind(row.issued_at)
    .bind(row.expires_at)
    .bind(row.client_address)
    .bind(row.credential.as_ref().map(|d| &d[..]))
    .bind(row.issued_at)
    .execute(conn)
    .await
    .map_err(StorageError::from_sqlx)?;
    Ok(())
}

/// What a live token says about its sign-in.
pub struct LiveToken {
    pub user_id: UserId,
    pub family: [u8; 16],
    pub method: SignInMethod,
    pub credential: Option<[u8; 32]>,
    /// When the token was last recorded as used (see [`touch`]); its issue time at first.
    pub last_used_at: Option<NaiveDateTime>,
}

/// A live access token: not revoked, not expired.
pub async fn live_access(
    pool: &MySqlPool,
    digest: &[u8; 32],
    now: NaiveDateTime,
) -> Result<Option<LiveToken>, StorageError> {
    type Row = (i64, Vec<u8>, String, Option<Vec<u8>>, Option<NaiveDateTime>);
    let row: Option<Row> = sqlx::query_as(
        "SELECT user_id, family_id, session_source, credential_digest, last_used_at FROM mmt_auth_tokens \
         WHERE token_hash = ? AND kind = 'access' AND revoked_at IS NULL AND expires_at > ?",
    )
    .bind(&digest[..])
    .bind(now)
    .fetch_optional(pool)
    .await
    .map_err(StorageError::from_sqlx)?;
    Ok(row.and_then(|(user, family, method, credential, last_used_at)| {
        LiveToken::from_columns(UserId(user), family, &method, credential, last_used_at)
    }))
}

impl LiveToken {
    /// From `mmt_auth_tokens` columns; `None` for a malformed row.
    pub fn from_columns(
        user_id: UserId,
        family: Vec<u8>,
        method: &str,
        credential: Option<Vec<u8>>,
        last_used_at: Option<NaiveDateTime>,
    ) -> Option<Self> {
        Some(Self {
            user_id,
            family: family.try_into().ok()?,
            method: SignInMethod::parse(method)?,
            credential: credential.and_then(|c| c.try_into().ok()),
            last_used_at,
        })
    }
}

/// Records that an access token was used now (for the list of signed-in devices), unless that
/// was recorded since `stale_before`: of concurrent requests, one writes.
pub async fn touch(
    pool: &MySqlPool,
    digest: &[u8; 32],
    now: NaiveDateTime,
    stale_before: NaiveDateTime,
) -> Result<(), StorageError> {
    sqlx::query("UPDATE mmt_auth_tokens SET last_used_at = ? WHERE token_hash = ? AND last_used_at < ?")
        .bind(now)
        .bind(&digest[..])
        .bind(stale_before)
        .execute(pool)
        .await
        .map_err(StorageError::from_sqlx)?;
    Ok(())
}

pub struct RefreshState {
    pub family: [u8; 16],
    pub user_id: UserId,
    pub method: SignInMethod,
    pub credential: Option<[u8; 32]>,
    pub spent: bool,
    pub revoked: bool,
    pub expired: bool,
}

/// Locks the refresh token's row for the rest of the transaction, so two concurrent refreshes
/// with one token cannot both succeed.
pub async fn lock_refresh(
    conn: &mut MySqlConnection,
    digest: &[u8; 32],
    now: NaiveDateTime,
) -> Result<Option<RefreshState>, StorageError> {
    type Row = (Vec<u8>, i64, String, Option<Vec<u8>>, bool, bool, bool);
    let row: Option<Row> = sqlx::query_as(
        "SELECT family_id, user_id, session_source, credential_digest, spent_at IS NOT NULL, \
         revoked_at IS NOT NULL, expires_at <= ? \
         FROM mmt_auth_tokens WHERE token_hash = ? AND kind = 'refresh' FOR UPDATE",
    )
    .bind(now)
    .bind(&digest[..])
    .fetch_optional(conn)
    .await
    .map_err(StorageError::from_sqlx)?;
    Ok(row.and_then(|(family, user, method, credential, spent, revoked, expired)| {
        Some(RefreshState {
            family: family.try_into().ok()?,
            user_id: UserId(user),
            method: SignInMethod::parse(&method)?,
            credential: credential.and_then(|c| c.try_into().ok()),
            spent,
            revoked,
            expired,
        })
    }))
}

pub async fn mark_spent(
    conn: &mut MySqlConnection,
    digest: &[u8; 32],
    now: NaiveDateTime,
) -> Result<(), StorageError> {
    sqlx::query("UPDATE mmt_auth_tokens SET spent_at = ? WHERE token_hash = ?")
        .bind(now)
        .bind(&digest[..])
        .execute(conn)
        .await
        .map_err(StorageError::from_sqlx)?;
    Ok(())
}

pub async fn revoke_family(
    conn: &mut MySqlConnection,
    family: &[u8; 16],
    now: NaiveDateTime,
) -> Result<u64, StorageError> {
    let done =
        sqlx::query("UPDATE mmt_auth_tokens SET revoked_at = ? WHERE family_id = ? AND revoked_at IS NULL")
            .bind(now)
            .bind(&family[..])
            .execute(conn)
            .await
            .map_err(StorageError::from_sqlx)?;
    Ok(done.rows_affected())
}

pub async fn revoke_user(pool: &MySqlPool, user: UserId, now: NaiveDateTime) -> Result<u64, StorageError> {
    let done =
        sqlx::query("UPDATE mmt_auth_tokens SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL")
            .bind(now)
            .bind(user.0)
            .execute(pool)
            .await
            .map_err(StorageError::from_sqlx)?;
    Ok(done.rows_affected())
}

/// Ends every sign-in the user made with this credential (a password since changed).
pub async fn revoke_credential(
    pool: &MySqlPool,
    user: UserId,
    credential: &[u8; 32],
    now: NaiveDateTime,
) -> Result<u64, StorageError> {
    let done = sqlx::query(
        "UPDATE mmt_auth_tokens SET revoked_at = ? WHERE user_id = ? AND credential_digest = ? AND revoked_at IS NULL",
    )
    .bind(now)
    .bind(user.0)
    .bind(&credential[..])
    .execute(pool)
    .await
    .map_err(StorageError::from_sqlx)?;
    Ok(done.rows_affected())
}

/// Ends the sign-ins OpenEMR would no longer allow: of users who are inactive or in no group, and
/// those made with a password that has since changed. Run periodically, so a token is dead for good
/// even if the account is reactivated before the token is next used.
pub async fn revoke_lapsed_credentials(pool: &MySqlPool, now: NaiveDateTime) -> Result<u64, StorageError> {
    let done = sqlx::query(
        "UPDATE mmt_auth_tokens t \
         LEFT JOIN users u ON u.id = t.user_id \
         LEFT JOIN users_secure us ON us.id = u.id AND BINARY us.username = u.username \
         SET t.revoked_at = ? \
         WHERE t.revoked_at IS NULL AND t.expires_at > ? AND t.credential_digest IS NOT NULL \
         AND (u.id IS NULL OR u.active = 0 OR us.id IS NULL \
              OR UNHEX(SHA2(us.password, 256)) <> t.credential_digest \
              OR NOT EXISTS (SELECT 1 FROM `groups` g WHERE BINARY g.user = u.username))",
    )
    .bind(now)
    .bind(now)
    .execute(pool)
    .await
    .map_err(StorageError::from_sqlx)?;
    Ok(done.rows_affected())
}

/// Expired rows are no longer needed to detect reuse once the whole family has expired.
pub async fn purge_expired(pool: &MySqlPool, before: NaiveDateTime) -> Result<u64, StorageError> {
    let done = sqlx::query("DELETE FROM mmt_auth_tokens WHERE expires_at < ? LIMIT 10000")
        .bind(before)
        .execute(pool)
        .await
        .map_err(StorageError::from_sqlx)?;
    Ok(done.rows_affected())
}
