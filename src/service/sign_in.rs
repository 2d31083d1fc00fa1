//! Signing in and out: OpenEMR credentials, sidecar tokens, refresh rotation and revocation.

use chrono::{NaiveDateTime, Utc};
use sha2::{Digest, Sha256};

use crate::{
    app::AppState,
    domain::{
        throttle::ThrottlePolicy,
        token::{NewToken, TokenKind, digest_of, new_family},
        user::{Caller, SignInMethod, UserId},
    },
    service::{audit, credentials::VerifierBusy},
    storage::{
        StorageError,
        mmt::{
            login_failures::{self, Scope},
            tokens::{self, TokenRow},
        },
        openemr::{
            globals,
            users::{self, UserRecord},
        },
    },
};

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("the username or password is incorrect, or the account is inactive")]
    InvalidCredentials,
    #[error("too many failed sign-ins; try again in {0} seconds")]
    Throttled(u64),
    #[error("the sign-in service is busy; try again shortly")]
    Busy,
    #[error("the token is invalid, expired or revoked")]
    InvalidToken,
    #[error("this refresh token was already used; every token of its sign-in has been revoked")]
    RefreshReused,
    #[error("the OpenEMR session was not accepted: {0}")]
    SessionRejected(String),
    #[error("guest access is not enabled on this server")]
    GuestDisabled,
    #[error("OpenEMR's session store (Redis) is unavailable; retry shortly")]
    SessionStoreUnavailable,
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl From<VerifierBusy> for AuthError {
    fn from(_: VerifierBusy) -> Self {
        Self::Busy
    }
}

/// A token pair handed to a client once.
pub struct Issued {
    pub access_token: String,
    pub refresh_token: String,
    pub access_expires_in: u64,
    pub refresh_expires_in: u64,
    pub caller: Caller,
}

pub fn now() -> NaiveDateTime {
    Utc::now().naive_utc()
}

fn subject(value: &str) -> [u8; 32] {
    Sha256::digest(value.as_bytes()).into()
}

pub fn caller_from(record: UserRecord, method: SignInMethod, family: Option<[u8; 16]>) -> Caller {
    Caller {
        user_id: UserId(record.id),
        username: record.username,
        first_name: record.fname.unwrap_or_default(),
        last_name: record.lname.unwrap_or_default(),
        auth_group: record.auth_group.unwrap_or_else(|| "Default".into()),
        facility_id: record.facility_id,
        facility: record.facility,
        method,
        token_family: family,
    }
}

fn guest_caller(family: Option<[u8; 16]>) -> Caller {
    Caller {
        user_id: UserId(0),
        username: "guest".into(),
        first_name: "Guest".into(),
        last_name: String::new(),
        auth_group: String::new(),
        facility_id: 0,
        facility: None,
        method: SignInMethod::Guest,
        token_family: family,
    }
}

async fn throttled(state: &AppState, username: &str, address: &str) -> Result<Option<u64>, AuthError> {
    let cfg = &state.config.auth;
    let window = chrono::Duration::from_std(cfg.failure_window).unwrap_or(chrono::Duration::minutes(15));
    let now = now();
    let checks = [
        (Scope::User, subject(&username.to_lowercase()), cfg.max_failures_per_user),
        (Scope::Address, subject(address), cfg.max_failures_per_address),
    ];
    let mut wait = None;
    for (scope, subject, max_failures) in checks {
        let (failures, oldest) = login_failures::recent(&state.pool, scope, &subject, now - window).await?;
        let policy = ThrottlePolicy { max_failures, window };
        wait = wait.max(policy.retry_after(failures, oldest, now));
    }
    Ok(wait)
}

pub async fn login(
    state: &AppState,
    username: &str,
    password: String,
    address: &str,
) -> Result<Issued, AuthError> {
    if let Some(retry) = throttled(state, username, address).await? {
        audit::sign_in(state, username, "", false, &format!("failure: {address}. throttled")).await;
        return Err(AuthError::Throttled(retry));
    }
    let record = users::by_username(&state.pool, username).await?;
    let usable =
        record.as_ref().filter(|r| r.active && r.auth_group.is_some() && !r.password_hash.is_empty());
    let hash = match usable {
        Some(r) => Some(r.password_hash.clone()),
        None => globals::value(&state.pool, "hidden_auth_dummy_hash").await?,
    };
    let verified = state.verifier.verify(password, hash).await? && usable.is_some();
    match record {
        Some(record) if verified => {
            login_failures::clear(&state.pool, Scope::User, &subject(&username.to_lowercase())).await?;
            let issued = issue(state, caller_from(record, SignInMethod::Password, None), address).await?;
            audit::sign_in(state, username, &issued.caller.auth_group, true, &format!("success: {address}"))
                .await;
            Ok(issued)
        }
        _ => {
            let at = now();
            login_failures::record(&state.pool, Scope::User, &subject(&username.to_lowercase()), at).await?;
            login_failures::record(&state.pool, Scope::Address, &subject(address), at).await?;
            audit::sign_in(state, username, "", false, &format!("failure: {address}. invalid credentials"))
                .await;
            Err(AuthError::InvalidCredentials)
        }
    }
}

/// Issues a new token pair in a new family for an already authenticated caller.
pub async fn issue(state: &AppState, caller: Caller, address: &str) -> Result<Issued, AuthError> {
    let mut tx = state.pool.begin().await.map_err(StorageError::from_sqlx)?;
    let issued = issue_in(&mut tx, state, caller, new_family(), address).await?;
    tx.commit().await.map_err(StorageError::from_sqlx)?;
    Ok(issued)
}

async fn issue_in(
    conn: &mut sqlx::MySqlConnection,
    state: &AppState,
    mut caller: Caller,
    family: [u8; 16],
    address: &str,
) -> Result<Issued, AuthError> {
    let cfg = &state.config.auth;
    let issued_at = now();
    let access = NewToken::generate(TokenKind::Access);
    let refresh = NewToken::generate(TokenKind::Refresh);
    for (token, kind, ttl) in
        [(&access, TokenKind::Access, cfg.access_ttl), (&refresh, TokenKind::Refresh, cfg.refresh_ttl)]
    {
        let row = TokenRow {
            digest: token.digest,
            kind,
            family,
            user_id: caller.user_id,
            method: caller.method,
            issued_at,
            expires_at: issued_at + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::minutes(15)),
            client_address: address,
        };
        tokens::insert(conn, &row).await?;
    }
    caller.token_family = Some(family);
    Ok(Issued {
        access_token: access.secret,
        refresh_token: refresh.secret,
        access_expires_in: cfg.access_ttl.as_secs(),
        refresh_expires_in: cfg.refresh_ttl.as_secs(),
        caller,
    })
}

/// Rotates a refresh token. Presenting a spent one means it was copied: the whole family goes.
pub async fn refresh(state: &AppState, presented: &str, address: &str) -> Result<Issued, AuthError> {
    let digest = digest_of(TokenKind::Refresh, presented).ok_or(AuthError::InvalidToken)?;
    let mut tx = state.pool.begin().await.map_err(StorageError::from_sqlx)?;
    let now = now();
    let Some(found) = tokens::lock_refresh(&mut tx, &digest, now).await? else {
        return Err(AuthError::InvalidToken);
    };
    if found.spent {
        tokens::revoke_family(&mut tx, &found.family, now).await?;
        tx.commit().await.map_err(StorageError::from_sqlx)?;
        let owner =
            users::by_id(&state.pool, found.user_id).await?.map_or_else(|| "guest".into(), |r| r.username);
        audit::token_event(
            state,
            &owner,
            false,
            &format!("failure: {address}. refresh token reused; sign-in revoked"),
        )
        .await;
        return Err(AuthError::RefreshReused);
    }
    if found.revoked || found.expired {
        return Err(AuthError::InvalidToken);
    }
    let caller = match found.method {
        SignInMethod::Guest if state.config.auth.guest_login => guest_caller(None),
        SignInMethod::Guest => return Err(AuthError::InvalidToken),
        method => match users::by_id(&state.pool, found.user_id).await? {
            Some(record) if record.active => caller_from(record, method, None),
            _ => return Err(AuthError::InvalidToken),
        },
    };
    tokens::mark_spent(&mut tx, &digest, now).await?;
    let issued = issue_in(&mut tx, state, caller, found.family, address).await?;
    tx.commit().await.map_err(StorageError::from_sqlx)?;
    audit::token_event(state, &issued.caller.username, true, &format!("success: {address}. token refresh"))
        .await;
    Ok(issued)
}

/// The caller behind an access token, if the token is live and the OpenEMR account still active.
pub async fn caller_for_access_token(state: &AppState, presented: &str) -> Result<Caller, AuthError> {
    let digest = digest_of(TokenKind::Access, presented).ok_or(AuthError::InvalidToken)?;
    let (user_id, family, method) =
        tokens::live_access(&state.pool, &digest, now()).await?.ok_or(AuthError::InvalidToken)?;
    match method {
        SignInMethod::Guest if state.config.auth.guest_login => Ok(guest_caller(Some(family))),
        SignInMethod::Guest => Err(AuthError::InvalidToken),
        method => match users::by_id(&state.pool, user_id).await? {
            Some(record) if record.active => Ok(caller_from(record, method, Some(family))),
            _ => Err(AuthError::InvalidToken),
        },
    }
}

pub async fn guest(state: &AppState, address: &str) -> Result<Issued, AuthError> {
    if !state.config.auth.guest_login {
        return Err(AuthError::GuestDisabled);
    }
    issue(state, guest_caller(None), address).await
}

/// Ends this device's sign-in: every token of the caller's family.
pub async fn logout(state: &AppState, caller: &Caller) -> Result<(), AuthError> {
    if let Some(family) = caller.token_family {
        let mut conn = state.pool.acquire().await.map_err(StorageError::from_sqlx)?;
        tokens::revoke_family(&mut conn, &family, now()).await?;
    }
    audit::logout(state, caller, "mmt-sidecar sign-out (this device)").await;
    Ok(())
}

/// Ends every sign-in of the caller on every device and replica.
pub async fn logout_all(state: &AppState, caller: &Caller) -> Result<(), AuthError> {
    if caller.is_guest() {
        return logout(state, caller).await;
    }
    tokens::revoke_user(&state.pool, caller.user_id, now()).await?;
    audit::logout(state, caller, "mmt-sidecar sign-out (every device)").await;
    Ok(())
}
