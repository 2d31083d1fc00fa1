//! The signed-in user's OpenEMR `users` row: read it, and change what OpenEMR's own screens let
//! them change (see `domain::dashboard::profile`), audited as OpenEMR audits `users` changes
//! (`security-administration-update`, category `Security`).

use super::{DashboardError, Result, signed_in};
use crate::{
    app::AppState,
    domain::{
        acl::AclLevel,
        audit::AuditEntry,
        dashboard::profile::{self as rules, Field},
        user::Caller,
        validation::Issues,
    },
    service::audit,
    storage::{
        StorageError,
        openemr::{
            audit_log,
            dashboard::profile::{self as store, ProfileRow},
        },
    },
};

pub struct Profile {
    pub row: ProfileRow,
    /// The fields the caller may change.
    pub editable: Vec<Field>,
}

async fn editable(state: &AppState, caller: &Caller) -> Result<Vec<Field>> {
    let permissions = state.acl.permissions(&caller.username).await?;
    Ok(Field::ALL.into_iter().filter(|f| permissions.allows(f.grant(), AclLevel::Write)).collect())
}

fn gone() -> DashboardError {
    DashboardError::NotFound("your OpenEMR user record no longer exists".into())
}

pub async fn get(state: &AppState, caller: &Caller) -> Result<Profile> {
    signed_in(caller)?;
    let row = store::get(&state.pool, caller.user_id).await?.ok_or_else(gone)?;
    Ok(Profile { row, editable: editable(state, caller).await? })
}

/// Changes the requested fields of the caller's own row in one transaction. A field the caller's
/// OpenEMR permissions do not let them change refuses the whole request (403, naming it).
pub async fn update(state: &AppState, caller: &Caller, requested: Vec<(Field, String)>) -> Result<Profile> {
    signed_in(caller)?;
    if requested.is_empty() {
        let mut issues = Issues::default();
        issues.add("body", "name at least one field to change");
        return Err(issues.into());
    }
    let changes = rules::validate(requested)?;
    let allowed = editable(state, caller).await?;
    let refused: Vec<&str> =
        changes.iter().filter(|(f, _)| !allowed.contains(f)).map(|(f, _)| f.name()).collect();
    if !refused.is_empty() {
        let detail = format!(
            "OpenEMR lets you change {} only with admin|users (Administration > Users) or, for email and \
             phone numbers, admin|practice (the address book); users otherwise change only their \
             password, second factor and settings",
            refused.join(", ")
        );
        audit::permission_denied(
            state,
            caller,
            None,
            &format!("denied: profile change of {}", refused.join(", ")),
        )
        .await;
        return Err(DashboardError::NotAllowed(detail));
    }
    let mut tx = state.pool.begin().await.map_err(StorageError::from_sqlx)?;
    let before = store::lock(&mut tx, caller.user_id).await?.ok_or_else(gone)?;
    let changed: Vec<(Field, String)> =
        changes.into_iter().filter(|(f, v)| before.value(*f) != Some(v.as_str())).collect();
    if !changed.is_empty() {
        store::update(&mut tx, caller.user_id, &changed).await?;
        let columns = changed.iter().map(|(f, _)| f.column()).collect::<Vec<_>>().join(", ");
        let comments = format!("mmt-sidecar: user {} changed own users row: {columns}", caller.user_id.0);
        let entry = AuditEntry::phi(caller, "security-administration-update", "Security", None, comments);
        audit_log::record(&mut tx, &entry).await?;
    }
    tx.commit().await.map_err(StorageError::from_sqlx)?;
    get(state, caller).await
}
