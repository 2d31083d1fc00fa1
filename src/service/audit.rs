//! Audit rows in OpenEMR's own `log` table, so sidecar activity shows in OpenEMR's audit viewer.
//! Sign-in events are best effort (a failure is logged, the sign-in outcome stands); PHI access
//! goes through `record`, which fails the request if the row cannot be written.
//!
//! Rows that are not part of a caller's own transaction (reads, above all) are written by
//! `group_commit`: one transaction and one flush for many requests instead of one each. Each
//! request waits for the commit of its own rows, so nothing is served unaudited; a batch that fails
//! fails exactly the requests whose rows it held.

use sqlx::MySqlPool;

use crate::{
    app::AppState,
    domain::{audit::AuditEntry, user::Caller},
    service::group_commit::GroupCommit,
    storage::{StorageError, openemr::audit_log},
};

/// This replica's audit writer.
pub struct AuditWriter(GroupCommit<AuditEntry>);

impl Default for AuditWriter {
    fn default() -> Self {
        Self(GroupCommit::new("audit rows", |pool, entries| Box::pin(write_batch(pool, entries))))
    }
}

pub async fn record(state: &AppState, entry: &AuditEntry) -> Result<(), StorageError> {
    state.audit.0.submit(&state.pool, entry.clone()).await
}

async fn write_batch(pool: MySqlPool, entries: Vec<AuditEntry>) -> Result<(), StorageError> {
    let mut tx = pool.begin().await.map_err(StorageError::from_sqlx)?;
    audit_log::insert(&mut tx, &entries).await?;
    tx.commit().await.map_err(StorageError::from_sqlx)
}

async fn best_effort(state: &AppState, entry: AuditEntry) {
    if let Err(err) = record(state, &entry).await {
        tracing::error!(error = %err, event = %entry.event, "could not write an audit row");
    }
}

fn entry(event: &str, category: &str, user: &str, group: &str, success: bool, comments: &str) -> AuditEntry {
    AuditEntry {
        event: event.into(),
        category: category.into(),
        user: user.into(),
        groupname: group.into(),
        comments: comments.into(),
        patient_id: None,
        success,
    }
}

/// OpenEMR's own login rows: event and category `login`, comments `success: <ip>` or
/// `failure: <ip>. <reason>`.
pub async fn sign_in(state: &AppState, username: &str, group: &str, success: bool, comments: &str) {
    best_effort(state, entry("login", "login", username, group, success, comments)).await;
}

pub async fn logout(state: &AppState, caller: &Caller, comments: &str) {
    best_effort(state, entry("logout", "logout", &caller.username, &caller.auth_group, true, comments)).await;
}

/// A refresh or a detected token reuse, attributed to the token's owner.
pub async fn token_event(state: &AppState, username: &str, success: bool, comments: &str) {
    best_effort(state, entry("login", "login", username, "", success, comments)).await;
}

/// A change to a user's own security settings, as OpenEMR's `security-administration` events.
pub async fn security_event(state: &AppState, username: &str, comments: &str) {
    best_effort(state, entry("security-administration-update", "Security", username, "", true, comments))
        .await;
}

/// A refused attempt by someone outside (a forged or replayed webhook), as a failed security event.
pub async fn security_failure(state: &AppState, actor: &str, comments: &str) {
    best_effort(state, entry("security-administration-insert", "Security", actor, "", false, comments)).await;
}

pub async fn permission_denied(state: &AppState, caller: &Caller, pid: Option<i64>, comments: &str) {
    let mut denial = entry(
        "security-administration-select",
        "Security",
        &caller.username,
        &caller.auth_group,
        false,
        comments,
    );
    denial.patient_id = pid;
    best_effort(state, denial).await;
}
