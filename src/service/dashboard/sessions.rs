//! Signed-in devices: each sidecar sign-in (a token family) with where and when it was used;
//! signing one out; and a refresh that only an active device gets, so an idle one expires.

use chrono::{DateTime, NaiveDateTime, Utc};
use uuid::Uuid;

use super::{DashboardError, Result, signed_in};
use crate::{
    app::AppState,
    domain::{
        token::{TokenKind, digest_of},
        user::Caller,
    },
    service::{
        audit,
        sign_in::{self, Issued},
    },
    storage::{
        StorageError,
        mmt::{dashboard::sessions, tokens},
        openemr::users,
    },
};

/// Longest User-Agent kept (the column's length).
const MAX_USER_AGENT_CHARS: usize = 255;
/// A client clock this far ahead still counts as "now".
const CLOCK_SKEW_SECS: i64 = 300;

pub struct Device {
    pub id: Uuid,
    pub method: String,
    pub signed_in_at: NaiveDateTime,
    pub last_used_at: NaiveDateTime,
    pub address: String,
    pub user_agent: Option<String>,
    pub current: bool,
}

/// The caller's live sign-ins, the one this request came with marked `current`.
pub async fn list(state: &AppState, caller: &Caller) -> Result<Vec<Device>> {
    signed_in(caller)?;
    let rows = sessions::live(&state.pool, caller.user_id, sign_in::now()).await?;
    Ok(rows
        .into_iter()
        .filter_map(|r| {
            let family: [u8; 16] = r.family_id.try_into().ok()?;
            Some(Device {
                id: Uuid::from_bytes(family),
                method: r.session_source,
                signed_in_at: r.signed_in_at,
                last_used_at: r.last_used_at,
                address: r.client_address,
                user_agent: r.user_agent,
                current: caller.token_family == Some(family),
            })
        })
        .collect())
}

/// Signs one of the caller's devices out; another user's (or an unknown) id is not found.
pub async fn sign_out(state: &AppState, caller: &Caller, id: &str) -> Result<()> {
    signed_in(caller)?;
    let not_found = || DashboardError::NotFound(format!("no signed-in device {id}"));
    let family = Uuid::parse_str(id).map_err(|_| not_found())?.into_bytes();
    if !sessions::revoke(&state.pool, caller.user_id, &family, sign_in::now()).await? {
        return Err(not_found());
    }
    audit::logout(state, caller, &format!("mmt-sidecar sign-out of device {}", Uuid::from_bytes(family)))
        .await;
    Ok(())
}

/// Labels a new sign-in with the client's User-Agent, if it sent one.
pub async fn label(state: &AppState, issued: &Issued, user_agent: Option<&str>) -> Result<()> {
    let (Some(family), Some(agent)) = (issued.caller.token_family, user_agent) else { return Ok(()) };
    let agent: String = agent.chars().filter(|c| !c.is_control()).take(MAX_USER_AGENT_CHARS).collect();
    Ok(sessions::label(&state.pool, &family, &agent).await?)
}

/// Refreshes as `/auth/refresh/` does, but only for a client active within the idle timeout;
/// an idle report ends the device's sign-in so its tokens stop working.
pub async fn refresh_if_active(
    state: &AppState,
    presented: &str,
    address: &str,
    last_activity_at: DateTime<Utc>,
) -> Result<Issued> {
    let idle_for = (Utc::now() - last_activity_at).num_seconds();
    if idle_for < -CLOCK_SKEW_SECS {
        let mut issues = crate::domain::validation::Issues::default();
        issues.add("last_activity_at", "is in the future; send the time of the user's last activity");
        return Err(issues.into());
    }
    let timeout = state.config.auth.idle_timeout.as_secs();
    if idle_for <= timeout as i64 {
        return Ok(sign_in::refresh(state, presented, address).await?);
    }
    end_idle(state, presented, address).await?;
    Err(DashboardError::Idle(timeout))
}

async fn end_idle(state: &AppState, presented: &str, address: &str) -> Result<()> {
    let digest = digest_of(TokenKind::Refresh, presented).ok_or(sign_in::AuthError::InvalidToken)?;
    let mut tx = state.pool.begin().await.map_err(StorageError::from_sqlx)?;
    let now = sign_in::now();
    let found = tokens::lock_refresh(&mut tx, &digest, now).await?;
    let Some(found) = found.filter(|f| !f.revoked && !f.expired) else {
        return Err(sign_in::AuthError::InvalidToken.into());
    };
    tokens::revoke_family(&mut tx, &found.family, now).await?;
    tx.commit().await.map_err(StorageError::from_sqlx)?;
    let owner =
        users::by_id(&state.pool, found.user_id).await?.map_or_else(|| "guest".into(), |r| r.username);
    let comment = format!("failure: {address}. idle device signed out");
    audit::token_event(state, &owner, false, &comment).await;
    Ok(())
}
