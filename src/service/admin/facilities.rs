//! Facilities created and changed as OpenEMR's facility editor does, for holders of `admin|super`
//! or `admin|practice`: one transaction per change with its audit row
//! (`security-administration-insert`/`-update`, category `Security`), a registered uuid for a
//! new facility, users' copy of a renamed facility's name renewed, and never two primary
//! business entities.

use super::{AdminError, Result};
use crate::{
    app::AppState,
    domain::{
        admin::facility::{self as rules, Field, Requested, Value},
        audit::AuditEntry,
        user::Caller,
    },
    storage::{
        StorageError,
        openemr::{
            audit_log,
            facilities::{self as store, FacilityRow},
        },
    },
};

pub async fn list(state: &AppState) -> Result<Vec<FacilityRow>> {
    Ok(store::list(&state.pool).await?)
}

pub async fn get(state: &AppState, id: i64) -> Result<FacilityRow> {
    store::get(&state.pool, id).await?.ok_or_else(|| not_found(id))
}

pub async fn create(
    state: &AppState,
    caller: &Caller,
    requested: Vec<(Field, Requested)>,
) -> Result<FacilityRow> {
    super::practice_admin(state, caller).await?;
    let values = rules::validate(requested, true)?;
    let mut tx = state.pool.begin().await.map_err(StorageError::from_sqlx)?;
    if makes_primary(&values) {
        refuse_second_primary(&mut tx, 0).await?;
    }
    let id = store::insert(&mut tx, &values).await?;
    let comments = format!("mmt-sidecar: facility {id} added: {}", columns(&values));
    audit(&mut tx, caller, "security-administration-insert", comments).await?;
    tx.commit().await.map_err(StorageError::from_sqlx)?;
    get(state, id).await
}

/// Changes the requested fields; fields left out stay as they are.
pub async fn update(
    state: &AppState,
    caller: &Caller,
    id: i64,
    requested: Vec<(Field, Requested)>,
) -> Result<FacilityRow> {
    super::practice_admin(state, caller).await?;
    change(state, caller, id, rules::validate(requested, false)?).await
}

/// Saves the whole facility as sent; fields left out are cleared.
pub async fn replace(
    state: &AppState,
    caller: &Caller,
    id: i64,
    requested: Vec<(Field, Requested)>,
) -> Result<FacilityRow> {
    super::practice_admin(state, caller).await?;
    change(state, caller, id, rules::replacement(requested)?).await
}

async fn change(
    state: &AppState,
    caller: &Caller,
    id: i64,
    values: Vec<(Field, Value)>,
) -> Result<FacilityRow> {
    let mut tx = state.pool.begin().await.map_err(StorageError::from_sqlx)?;
    // Before the row's own lock: the check's scan locks every row in id order, so two requests
    // take their turns instead of each holding one row the other needs.
    if makes_primary(&values) {
        refuse_second_primary(&mut tx, id).await?;
    }
    let before = store::lock(&mut tx, id).await?.ok_or_else(|| not_found(id))?;
    if !values.is_empty() {
        store::update(&mut tx, id, &values).await?;
        if let Some((_, Value::Text(name))) = values.iter().find(|(f, _)| *f == Field::Name)
            && before.name.as_deref() != Some(name.as_str())
        {
            store::rename_for_users(&mut tx, id, name).await?;
        }
        let comments = format!("mmt-sidecar: facility {id} changed: {}", columns(&values));
        audit(&mut tx, caller, "security-administration-update", comments).await?;
    }
    tx.commit().await.map_err(StorageError::from_sqlx)?;
    get(state, id).await
}

fn makes_primary(values: &[(Field, Value)]) -> bool {
    values.contains(&(Field::PrimaryBusinessEntity, Value::Flag(true)))
}

/// OpenEMR's editor will not mark a second facility as the primary business entity.
async fn refuse_second_primary(conn: &mut sqlx::MySqlConnection, id: i64) -> Result<()> {
    match store::other_primary(conn, id).await? {
        Some((other, name)) => Err(AdminError::Conflict(format!(
            "facility {other} ({name}) is already the primary business entity; unmark it first"
        ))),
        None => Ok(()),
    }
}

async fn audit(
    conn: &mut sqlx::MySqlConnection,
    caller: &Caller,
    event: &str,
    comments: String,
) -> Result<()> {
    let entry = AuditEntry::phi(caller, event, "Security", None, comments);
    audit_log::record(conn, &entry).await?;
    Ok(())
}

fn columns(values: &[(Field, Value)]) -> String {
    values.iter().map(|(f, _)| f.column()).collect::<Vec<_>>().join(", ")
}

fn not_found(id: i64) -> AdminError {
    AdminError::NotFound(format!("no facility {id}"))
}
