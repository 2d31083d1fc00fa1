//! Periodic clean-up of the sidecar's own short-lived rows. A refresh token's row is kept a day past
//! its expiry, so reuse of a spent token is still recognised while it could matter.

use std::time::Duration;

use chrono::Utc;

use crate::{
    app::AppState,
    storage::{
        StorageError,
        mmt::{login_failures, tokens},
    },
};

const EVERY: Duration = Duration::from_secs(600);

pub async fn sweep(state: &AppState) -> Result<(u64, u64), StorageError> {
    let now = Utc::now().naive_utc();
    let window =
        chrono::Duration::from_std(state.config.auth.failure_window).unwrap_or(chrono::Duration::hours(1));
    let lapsed = tokens::revoke_lapsed_credentials(&state.pool, now).await?;
    if lapsed > 0 {
        tracing::info!(tokens = lapsed, "revoked sign-ins OpenEMR no longer allows");
    }
    let tokens = tokens::purge_expired(&state.pool, now - chrono::Duration::days(1)).await?;
    let failures = login_failures::purge_before(&state.pool, now - window).await?;
    Ok((tokens, failures))
}

pub async fn run(state: AppState) {
    loop {
        match sweep(&state).await {
            Ok((tokens, failures)) if tokens + failures > 0 => {
                tracing::info!(tokens, failures, "purged expired sign-in rows");
            }
            Ok(_) => {}
            Err(err) => tracing::warn!(error = %err, "housekeeping failed; will retry"),
        }
        tokio::time::sleep(EVERY).await;
    }
}
