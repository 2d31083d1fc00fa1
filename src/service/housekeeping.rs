//! Periodic clean-up of the sidecar's own short-lived rows, run as the scheduled `housekeeping`
//! job. A refresh token's row is kept a day past its expiry, so reuse of a spent token is still
//! recognised while it could matter.

use std::time::Duration;

use chrono::Utc;
use serde_json::json;

use crate::{
    app::AppState,
    service::jobs::{JobContext, JobFailure, JobOutcome},
    storage::{
        StorageError,
        mmt::{events, jobs, login_failures, tokens},
    },
};

pub const EVERY: Duration = Duration::from_secs(600);

/// Finished jobs are kept this long for their owners to look at.
const FINISHED_JOBS_KEPT: Duration = Duration::from_secs(7 * 24 * 3600);

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
    let retention =
        chrono::Duration::from_std(state.config.events.retention).unwrap_or(chrono::Duration::days(1));
    let expired_events = events::purge_before(&state.pool, Utc::now() - retention).await?;
    if expired_events > 0 {
        tracing::info!(events = expired_events, "purged live-update events past their retention");
    }
    Ok((tokens, failures))
}

pub async fn job(ctx: JobContext) -> JobOutcome {
    let (tokens, failures) = sweep(ctx.state()).await?;
    let jobs = jobs::purge_finished(&ctx.state().pool, FINISHED_JOBS_KEPT).await?;
    let exports = crate::service::fhir_export::remove_expired(ctx.state())
        .await
        .map_err(|e| JobFailure::Transient(format!("expired FHIR exports could not be removed: {e}")))?;
    if tokens + failures + jobs + exports > 0 {
        tracing::info!(tokens, failures, jobs, exports, "purged expired sign-in rows, old jobs and exports");
    }
    Ok(Some(json!({ "tokens": tokens, "login_failures": failures, "jobs": jobs, "fhir_exports": exports })))
}
