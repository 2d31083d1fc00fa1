//! The one permission check every endpoint makes. Guests hold no OpenEMR permission, and every
//! denial is written to OpenEMR's audit log.

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

/// As [`require`], for an operation on one patient's record: a denial row names the patient.
pub async fn require_on(
    state: &AppState,
    caller: &Caller,
    aco: Aco,
    level: AclLevel,
    pid: i64,
) -> Result<(), AclError> {
    check(state, caller, aco, level, Some(pid)).await
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
        state.acl.require(&caller.username, aco, level).await
    };
    if let Err(denied @ AclError::Denied { .. }) = &result {
        audit::permission_denied(state, caller, pid, &format!("denied: {denied}")).await;
    }
    result
}
