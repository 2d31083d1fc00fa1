//! Signing in and out: OpenEMR credentials, sidecar tokens, refresh rotation and revocation.

use chrono::{NaiveDateTime, Utc};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::{
    app::AppState,
    domain::{
        lockout::{ExpiryPolicy, LockState, LockoutPolicy},
        throttle::ThrottlePolicy,
        token::{NewToken, TokenKind, digest_of, new_family},
        user::{Caller, SignInMethod, UserId},
    },
    service::{
        audit,
        credentials::VerifierBusy,
        mfa::{self, MfaError},
    },
    storage::{
        StorageError,
        mmt::{
            login_failures::{self, Scope},
            tokens::{self, LiveToken, TokenRow},
        },
        openemr::{
            globals, login_counters,
            users::{self, UserRecord},
        },
    },
};

/// A password sign-in, with the second factor's code when the user has one.
pub struct LoginAttempt {
    pub username: String,
    pub password: String,
    pub totp_code: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("the username or password is incorrect, or the account is inactive")]
    InvalidCredentials,
    /// Told only after a failed attempt, as OpenEMR's audit log tells it; the answer is a 401 like
    /// any other failure so lockout does not reveal which accounts exist.
    #[error("the username or password is incorrect, or the account is inactive (account locked)")]
    Locked,
    #[error(
        "the password has expired under OpenEMR's password policy; sign in to OpenEMR to change it, then sign in here"
    )]
    PasswordExpired,
    #[error(transparent)]
    SecondFactor(#[from] MfaError),
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
    let credential = Some(credential_digest(&record.password_hash));
    // Who `storage::openemr::providers` lists as a provider.
    let provider = record.authorized && record.active && !record.username.is_empty();
    Caller {
        user_id: UserId(record.id),
        username: record.username,
        first_name: record.fname.unwrap_or_default(),
        last_name: record.lname.unwrap_or_default(),
        auth_group: record.auth_group.unwrap_or_else(|| "Default".into()),
        facility_id: record.facility_id,
        facility: record.facility,
        provider,
        method,
        token_family: family,
        credential,
    }
}

/// Binds a sign-in to the password hash it was made with, without storing the hash.
fn credential_digest(password_hash: &str) -> [u8; 32] {
    Sha256::digest(password_hash.as_bytes()).into()
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
        provider: false,
        method: SignInMethod::Guest,
        token_family: family,
        credential: None,
    }
}

/// The attempts this sign-in reserved in the sidecar's throttle; withdrawn unless it failed.
struct Reservation(Vec<u64>);

/// Counts the attempt before verifying anything, so parallel guesses see each other: at most the
/// configured number of failures per user-and-address (and per address) is ever verified.
async fn reserve_attempt(state: &AppState, username: &str, address: &str) -> Result<Reservation, AuthError> {
    let cfg = &state.config.auth;
    let window = chrono::Duration::from_std(cfg.failure_window).unwrap_or(chrono::Duration::minutes(15));
    let now = now();
    let pair = subject(&format!("{}\u{0}{address}", username.to_lowercase()));
    let scopes = [
        (Scope::UserAddress, pair, cfg.max_failures_per_user_address),
        (Scope::Address, subject(address), cfg.max_failures_per_address),
    ];
    let mut reservation = Reservation(Vec::with_capacity(scopes.len()));
    let mut wait = None;
    for (scope, subject, max_failures) in scopes {
        reservation.0.push(login_failures::reserve(&state.pool, scope, &subject, now).await?);
        let (attempts, oldest) = login_failures::recent(&state.pool, scope, &subject, now - window).await?;
        let policy = ThrottlePolicy { max_failures, window };
        // This attempt is among those counted: the ones before it decide.
        wait = wait.max(policy.retry_after(attempts - 1, oldest, now));
    }
    if let Some(retry) = wait {
        login_failures::release(&state.pool, &reservation.0).await?;
        return Err(AuthError::Throttled(retry));
    }
    Ok(reservation)
}

/// What OpenEMR's globals say about lockout and expiry, with OpenEMR's code defaults.
async fn account_policies(state: &AppState) -> Result<(LockoutPolicy, ExpiryPolicy), AuthError> {
    let found = globals::values(
        &state.pool,
        &[
            "password_max_failed_logins",
            "time_reset_password_max_failed_logins",
            "password_expiration_days",
            "password_grace_time",
        ],
    )
    .await?;
    let number = |name: &str, default: i64| {
        found.get(name).map(|v| v.trim().parse::<i64>().unwrap_or(0)).unwrap_or(default).max(0)
    };
    let lockout = LockoutPolicy {
        max_failures: number("password_max_failed_logins", 20),
        reset_after_secs: number("time_reset_password_max_failed_logins", 3600),
    };
    let expiry = ExpiryPolicy {
        days: number("password_expiration_days", 180) as u64,
        grace_days: number("password_grace_time", 30) as u64,
    };
    Ok((lockout, expiry))
}

/// Signs in with OpenEMR credentials, applying OpenEMR's own rules in OpenEMR's order: account
/// usable, not locked (a locked account fails even with the right password, and the attempt
/// counts), password, not expired, then the second factor when the user has one. Every failure
/// takes at least the configured floor, whatever its cause.
pub async fn login(state: &AppState, attempt: LoginAttempt, address: &str) -> Result<Issued, AuthError> {
    let started = tokio::time::Instant::now();
    let result = try_login(state, &attempt, address).await;
    if let Err(err) = &result {
        let reason = err.to_string();
        audit::sign_in(state, &attempt.username, "", false, &format!("failure: {address}. {reason}")).await;
        if !matches!(err, AuthError::Storage(_) | AuthError::Busy) {
            tokio::time::sleep_until(started + state.config.auth.failure_floor).await;
        }
    }
    result
}

async fn try_login(state: &AppState, attempt: &LoginAttempt, address: &str) -> Result<Issued, AuthError> {
    let username = attempt.username.as_str();
    let reservation = reserve_attempt(state, username, address).await?;
    let (lockout, expiry) = account_policies(state).await?;
    let record = users::by_username(&state.pool, username).await?;
    let usable = record.filter(|r| r.active && r.auth_group.is_some() && !r.password_hash.is_empty());
    let counters = match &usable {
        Some(_) => login_counters::read(&state.pool, username).await?,
        None => None,
    };
    let locked = counters.as_ref().map(|c| lockout.state(c.login_fail_counter, c.seconds_since_failure));
    if locked == Some(LockState::ResetThenOpen) {
        login_counters::reset(&state.pool, username).await?;
    }
    let hash = match (&usable, locked) {
        (Some(r), Some(LockState::Open | LockState::ResetThenOpen) | None) => Some(r.password_hash.clone()),
        _ => globals::value(&state.pool, "hidden_auth_dummy_hash").await?,
    };
    let verified = state.verifier.verify(attempt.password.clone(), hash).await?;
    let Some(record) = usable else {
        return Err(AuthError::InvalidCredentials);
    };
    if locked == Some(LockState::Locked) || !verified {
        login_counters::record_failure(&state.pool, username, lockout.reset_after_secs).await?;
        return Err(if locked == Some(LockState::Locked) {
            AuthError::Locked
        } else {
            AuthError::InvalidCredentials
        });
    }
    let today = super::wall_clock_now().date();
    if expiry.is_expired(counters.and_then(|c| c.last_password_change), today) {
        return Err(AuthError::PasswordExpired);
    }
    login_counters::reset(&state.pool, username).await?;
    let second = mfa::second_factor(state, &record, attempt.totp_code.as_deref()).await;
    if !matches!(second, Err(MfaError::Invalid)) {
        // The password was right: this attempt is no failure (a wrong code is).
        login_failures::release(&state.pool, &reservation.0).await?;
    }
    second?;
    let issued = issue(state, caller_from(record, SignInMethod::Password, None), address).await?;
    audit::sign_in(state, username, &issued.caller.auth_group, true, &format!("success: {address}")).await;
    Ok(issued)
}

/// The signed-in user's OpenEMR account (guests have none).
pub async fn current_user(state: &AppState, caller: &Caller) -> Result<UserRecord, AuthError> {
    if caller.is_guest() {
        return Err(AuthError::InvalidCredentials);
    }
    users::by_id(&state.pool, caller.user_id).await?.filter(|r| r.active).ok_or(AuthError::InvalidToken)
}

/// Confirms a signed-in user's password again before a security change (as OpenEMR asks before
/// registering a second factor); throttled like a sign-in.
pub async fn reauthenticate(
    state: &AppState,
    caller: &Caller,
    password: String,
    address: &str,
) -> Result<UserRecord, AuthError> {
    let reservation = reserve_attempt(state, &caller.username, address).await?;
    let record = users::by_id(&state.pool, caller.user_id)
        .await?
        .filter(|r| r.active && !caller.is_guest())
        .ok_or(AuthError::InvalidCredentials)?;
    if !state.verifier.verify(password, Some(record.password_hash.clone())).await? {
        audit::sign_in(state, &caller.username, "", false, &format!("failure: {address}. re-authentication"))
            .await;
        return Err(AuthError::InvalidCredentials);
    }
    login_failures::release(&state.pool, &reservation.0).await?;
    Ok(record)
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
            credential: caller.credential,
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
    let caller = match still_allowed(state, found.user_id, found.method, found.credential, None).await? {
        Ok(caller) => caller,
        Err(lapse) => {
            // Release the token row first: revoking updates it.
            tx.rollback().await.map_err(StorageError::from_sqlx)?;
            return Err(revoke(state, lapse).await);
        }
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
    let now = now();
    let (live, holder) = match users::by_access_token(&state.pool, &digest, now).await? {
        Some(h) => {
            let user_id = UserId(h.user.id);
            let live = LiveToken::from_columns(
                user_id,
                h.family_id,
                &h.session_source,
                h.credential_digest,
                h.last_used_at,
            )
            .ok_or(AuthError::InvalidToken)?;
            (live, Some(h.user))
        }
        None => (tokens::live_access(&state.pool, &digest, now).await?.ok_or(AuthError::InvalidToken)?, None),
    };
    // At most one write a minute per token, so the device list knows when each was last used;
    // off the request's path, and best effort: it is no reason to refuse the request.
    let stale_before = now - chrono::Duration::minutes(1);
    if live.last_used_at.is_some_and(|at| at < stale_before) {
        let pool = state.pool.clone();
        tokio::spawn(async move {
            if let Err(err) = tokens::touch(&pool, &digest, now, stale_before).await {
                tracing::warn!(error = %err, "could not record a token's last use");
            }
        });
    }
    let judged = match holder {
        Some(record) if live.method != SignInMethod::Guest => {
            judge(Some(record), live.user_id, live.method, live.credential, Some(live.family))
        }
        _ => still_allowed(state, live.user_id, live.method, live.credential, Some(live.family)).await?,
    };
    match judged {
        Ok(caller) => Ok(caller),
        Err(lapse) => Err(revoke(state, lapse).await),
    }
}

/// Why a live sign-in no longer stands, and so which tokens to revoke.
enum Lapse {
    /// Inactive, or in no group: every sign-in of the user.
    Account(UserId),
    /// The password changed: every sign-in made with the old one.
    Credential(UserId, [u8; 32]),
}

/// The caller behind a live sign-in, if OpenEMR would still let the user in: active, in a group,
/// and with the password the sign-in was made with.
async fn still_allowed(
    state: &AppState,
    user_id: UserId,
    method: SignInMethod,
    credential: Option<[u8; 32]>,
    family: Option<[u8; 16]>,
) -> Result<Result<Caller, Option<Lapse>>, AuthError> {
    if method == SignInMethod::Guest {
        return Ok(if state.config.auth.guest_login { Ok(guest_caller(family)) } else { Err(None) });
    }
    let record = users::by_id(&state.pool, user_id).await?;
    Ok(judge(record, user_id, method, credential, family))
}

/// Whether the user's row still lets this sign-in stand.
fn judge(
    record: Option<UserRecord>,
    user_id: UserId,
    method: SignInMethod,
    credential: Option<[u8; 32]>,
    family: Option<[u8; 16]>,
) -> Result<Caller, Option<Lapse>> {
    let Some(record) = record.filter(|r| r.active && r.auth_group.is_some()) else {
        return Err(Some(Lapse::Account(user_id)));
    };
    let current = credential_digest(&record.password_hash);
    match credential {
        Some(bound) if bool::from(bound.ct_eq(&current)) => Ok(caller_from(record, method, family)),
        Some(bound) => Err(Some(Lapse::Credential(user_id, bound))),
        None => Err(None),
    }
}

/// Revokes lapsed sign-ins there and then, so reactivating the account or restoring the password
/// does not revive them. Must not run while the caller holds a token row lock.
async fn revoke(state: &AppState, lapse: Option<Lapse>) -> AuthError {
    let revoked = match lapse {
        Some(Lapse::Account(user)) => tokens::revoke_user(&state.pool, user, now()).await,
        Some(Lapse::Credential(user, bound)) => {
            tokens::revoke_credential(&state.pool, user, &bound, now()).await
        }
        None => return AuthError::InvalidToken,
    };
    match revoked {
        Ok(_) => AuthError::InvalidToken,
        Err(e) => e.into(),
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
