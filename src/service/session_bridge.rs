//! Single sign-on from an OpenEMR browser session: the `OpenEMR` cookie names a PHP session file;
//! the session is accepted only under the checks OpenEMR itself applies on every request.

use std::time::SystemTime;

use subtle::ConstantTimeEq;

use crate::{
    app::AppState,
    domain::user::{Caller, SignInMethod},
    php::session::{self, OpenEmrSession},
    service::sign_in::{AuthError, caller_from},
    storage::openemr::{globals, session_tracker, users},
};

/// OpenEMR's default for the `timeout` global, in seconds.
const DEFAULT_TIMEOUT_SECS: i64 = 7200;

fn rejected(reason: &str) -> AuthError {
    AuthError::SessionRejected(reason.to_string())
}

pub async fn caller_for_session(state: &AppState, session_id: &str) -> Result<Caller, AuthError> {
    if !session::is_valid_session_id(session_id) {
        return Err(rejected("the session id is malformed"));
    }
    let dir = state
        .config
        .auth
        .session_dir
        .as_ref()
        .ok_or_else(|| rejected("the session bridge is not configured"))?;
    let (raw, modified) = read_session_file(&dir.join(format!("sess_{session_id}"))).await?;
    let php_session = session::decode(&raw).map_err(|e| rejected(&e.to_string()))?;

    let record = users::by_id(&state.pool, crate::domain::user::UserId(php_session.auth_user_id))
        .await?
        .filter(|r| r.active && r.username == php_session.auth_user)
        .ok_or_else(|| rejected("the session's user is unknown or inactive"))?;
    let same_password: bool = record.password_hash.as_bytes().ct_eq(php_session.auth_pass.as_bytes()).into();
    if !same_password {
        return Err(rejected("the password changed since this session signed in"));
    }
    let timeout = globals::value(&state.pool, "timeout")
        .await?
        .and_then(|v| v.parse::<i64>().ok())
        .filter(|t| *t > 0)
        .unwrap_or(DEFAULT_TIMEOUT_SECS);
    if idle_seconds(state, &php_session, modified).await? > timeout {
        return Err(rejected("the session is idle past OpenEMR's timeout"));
    }
    Ok(caller_from(record, SignInMethod::OpenEmrSession, None))
}

/// OpenEMR 7+ tracks activity in `session_tracker`; a session that names a tracker row that is
/// gone has expired. Older sessions fall back to the file's and Symfony's last-use times.
async fn idle_seconds(state: &AppState, s: &OpenEmrSession, modified: SystemTime) -> Result<i64, AuthError> {
    if let Some(uuid) = &s.session_database_uuid {
        return Ok(session_tracker::idle_seconds(&state.pool, uuid).await?.unwrap_or(i64::MAX));
    }
    let now = SystemTime::now();
    let file_idle = now.duration_since(modified).map_or(0, |d| d.as_secs() as i64);
    let unix_now = now.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
    let meta_idle = s.last_used.map_or(0, |u| unix_now - u);
    Ok(file_idle.max(meta_idle))
}

async fn read_session_file(path: &std::path::Path) -> Result<(Vec<u8>, SystemTime), AuthError> {
    let meta = tokio::fs::metadata(path).await.map_err(|_| rejected("no such OpenEMR session"))?;
    if meta.len() > session::MAX_LEN as u64 {
        return Err(rejected("the session file is too large"));
    }
    let modified = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
    let raw = tokio::fs::read(path).await.map_err(|_| rejected("the session file could not be read"))?;
    Ok((raw, modified))
}
