//! The one permission check every endpoint makes. Guests hold no OpenEMR permission, and every
//! denial is written to OpenEMR's audit log. An operation on one patient's record also passes the
//! assigned-patient policy (`patient_access`).

use crate::{
    app::AppState,
    domain::{
        acl::{AclLevel, Aco},
        user::Caller,
    },
    service::{acl::AclError, audit},
};

pub async fn require(state: &AppState, caller: &Caller, aco: Aco, level: AclLevel) -> Result<(), AclError> {
    check(state, caller, aco, level, None).await
}

/// As [`require`], for an operation on one patient's record: the caller must also reach the
/// patient under the assigned-patient policy, and a denial row names the patient.
pub async fn require_on(
    state: &AppState,
    caller: &Caller,
    aco: Aco,
    level: AclLevel,
    pid: i64,
) -> Result<(), AclError> {
    check(state, caller, aco, level, Some(pid)).await
}

/// The assigned-patient half of [`require_on`], for operations whose ACL check is made otherwise
/// (a scope that widens with the caller's grants).
pub async fn reach(state: &AppState, caller: &Caller, pid: i64) -> Result<(), AclError> {
    let result = super::patient_access::require(state, caller, pid).await;
    audited(state, caller, Some(pid), result).await
}

async fn check(
    state: &AppState,
    caller: &Caller,
    aco: Aco,
    level: AclLevel,
    pid: Option<i64>,
) -> Result<(), AclError> {
    let result = if caller.is_guest() {
        Err(AclError::Denied { aco, level })
    } else {
        match (state.acl.require(&caller.username, aco, level).await, pid) {
            (Ok(()), Some(pid)) => super::patient_access::require(state, caller, pid).await,
            (result, _) => result,
        }
    };
    audited(state, caller, pid, result).await
}

async fn audited(
    state: &AppState,
    caller: &Caller,
    pid: Option<i64>,
    result: Result<(), AclError>,
) -> Result<(), AclError> {
    if let Err(denied @ (AclError::Denied { .. } | AclError::OutOfPanel { .. })) = &result {
        audit::permission_denied(state, caller, pid, &format!("denied: {denied}")).await;
    }
    result
}
