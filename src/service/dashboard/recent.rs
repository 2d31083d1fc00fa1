//! The "recently viewed" list, fed by the sidecar's audited patient reads.

use crate::{
    app::AppState,
    domain::{patient::Pid, user::Caller},
    service::wall_clock_now,
    storage::mmt::dashboard::recent,
};

/// Notes that the caller read this patient. Best effort: the read already succeeded and was
/// audited, so a failure here is logged (no PHI) and the read goes on.
pub async fn viewed(state: &AppState, caller: &Caller, pid: Pid) {
    if caller.is_guest() {
        return;
    }
    if let Err(err) = recent::touch(&state.pool, caller.user_id.0, pid.0, wall_clock_now()).await {
        tracing::warn!(error = %err, "could not update the recently viewed patients");
    }
}
