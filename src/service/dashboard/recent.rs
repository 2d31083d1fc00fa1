//! The "recently viewed" list, fed by the sidecar's audited patient reads. Reads running together
//! share one upsert (group commit); each still waits for its own, so the next dashboard shows it.

use crate::{
    app::AppState,
    domain::{patient::Pid, user::Caller},
    service::{group_commit::GroupCommit, wall_clock_now},
    storage::mmt::dashboard::recent::{self, Viewed},
};

pub fn writer() -> GroupCommit<Viewed> {
    GroupCommit::new("recently viewed patients", |pool, views| {
        Box::pin(async move { recent::touch(&pool, &views).await })
    })
}

/// Notes that the caller read this patient. Best effort: the read already succeeded and was
/// audited, so a failure here is logged (no PHI) and the read goes on.
pub async fn viewed(state: &AppState, caller: &Caller, pid: Pid) {
    if caller.is_guest() {
        return;
    }
    let view = Viewed { user_id: caller.user_id.0, pid: pid.0, at: wall_clock_now() };
    if let Err(err) = state.dashboard.recent.submit(&state.pool, view).await {
        tracing::warn!(error = %err, "could not update the recently viewed patients");
    }
}
