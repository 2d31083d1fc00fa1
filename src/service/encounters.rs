//! Encounters: listed and read within the caller's OpenEMR scope (`encounters|notes_a` for any,
//! `encounters|notes` for their own), created exactly as OpenEMR's new-encounter screen does.

use serde_json::json;

use crate::{
    app::AppState,
    domain::{
        acl::{AclLevel, Aco},
        audit::AuditEntry,
        encounter::{NewEncounter, NewEncounterInput},
        patient::Pid,
        user::Caller,
        validation::Issues,
        webhook::ChangeEvent,
    },
    service::{
        acl::AclError,
        audit, permission,
        webhooks::{self, Change},
    },
    storage::{
        StorageError,
        openemr::{
            audit_log,
            encounters::{self, EncounterRow, Scope},
            facilities, patients, providers, sequences,
        },
    },
};

#[derive(Debug, thiserror::Error)]
pub enum EncounterError {
    #[error("no encounter number {0}")]
    NotFound(i64),
    #[error("no encounter with this id")]
    UnknownUuid,
    #[error("no patient with pid {0}")]
    PatientNotFound(Pid),
    #[error("invalid encounter")]
    Invalid(Issues),
    #[error(transparent)]
    Acl(#[from] AclError),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl From<Issues> for EncounterError {
    fn from(issues: Issues) -> Self {
        Self::Invalid(issues)
    }
}

/// What the caller may see: every provider's encounters with `encounters|notes_a`, else their
/// own (`encounters|notes`); and only the sensitivities their `sensitivities|*` grants allow.
pub(crate) async fn scope(state: &AppState, caller: &Caller, level: AclLevel) -> Result<Scope, AclError> {
    let permissions = state.acl.permissions(&caller.username).await?;
    let any_provider = !caller.is_guest() && permissions.allows(Aco::ENCOUNTERS_NOTES_A, level);
    if !any_provider {
        permission::require(state, caller, Aco::ENCOUNTERS_NOTES, level).await?;
    }
    let sensitivities = [Aco::SENSITIVITIES_NORMAL, Aco::SENSITIVITIES_HIGH]
        .into_iter()
        .filter(|aco| permissions.allows(*aco, AclLevel::View))
        .map(|aco| aco.value)
        .collect();
    Ok(Scope { only_provider: (!any_provider).then_some(caller.user_id.0), sensitivities })
}

fn entry(caller: &Caller, event: &str, pid: Pid, comments: String) -> AuditEntry {
    AuditEntry::phi(caller, event, "Encounter Form", Some(pid.0), comments)
}

pub struct EncounterPage {
    pub rows: Vec<EncounterRow>,
    pub total: i64,
}

pub async fn list_for_patient(
    state: &AppState,
    caller: &Caller,
    pid: Pid,
    limit: u32,
    offset: u64,
) -> Result<EncounterPage, EncounterError> {
    let scope = scope(state, caller, AclLevel::View).await?;
    permission::reach(state, caller, pid.0).await?;
    if patients::get(&state.pool, pid).await?.is_none() {
        return Err(EncounterError::PatientNotFound(pid));
    }
    let total = encounters::count_for_patient(&state.pool, pid, &scope).await?;
    let rows = encounters::list_for_patient(&state.pool, pid, &scope, limit, offset).await?;
    let numbers = rows.iter().map(|r| r.encounter.to_string()).collect::<Vec<_>>().join(",");
    let comments = format!("mmt-sidecar listed encounters of pid {pid}: [{numbers}]");
    audit::record(state, &entry(caller, "patient-record-select", pid, comments)).await?;
    Ok(EncounterPage { rows, total })
}

pub async fn get(state: &AppState, caller: &Caller, number: i64) -> Result<EncounterRow, EncounterError> {
    let row = encounters::get(&state.pool, number).await?.ok_or(EncounterError::NotFound(number))?;
    require_access(state, caller, &row, AclLevel::View).await?;
    let comments = format!("mmt-sidecar read encounter {number}");
    audit::record(state, &entry(caller, "patient-record-select", Pid(row.pid), comments)).await?;
    Ok(row)
}

/// The encounter OpenEMR's FHIR API knows by `uuid`.
pub async fn get_by_uuid(
    state: &AppState,
    caller: &Caller,
    uuid: &[u8; 16],
) -> Result<EncounterRow, EncounterError> {
    let number = encounters::number_by_uuid(&state.pool, uuid).await?.ok_or(EncounterError::UnknownUuid)?;
    get(state, caller, number).await
}

/// May the caller see this encounter at `level`? Its provider's scope (`encounters|notes` for
/// their own, `encounters|notes_a` for anyone's) and its sensitivity. Reads check it, and so does
/// every write that targets an encounter (transcriptions tied to it, notes filed into it), on top
/// of that write's own permission.
pub async fn require_access(
    state: &AppState,
    caller: &Caller,
    row: &EncounterRow,
    level: AclLevel,
) -> Result<(), AclError> {
    let scope = scope(state, caller, level).await?;
    if scope.only_provider.is_some_and(|me| i64::from(row.provider_id.unwrap_or_default()) != me) {
        permission::require_on(state, caller, Aco::ENCOUNTERS_NOTES_A, level, row.pid).await?;
    }
    if let Some(sensitivity) = row.sensitivity.as_deref().filter(|s| !s.is_empty()) {
        permission::require_on(state, caller, Aco::for_sensitivity(sensitivity), AclLevel::View, row.pid)
            .await?;
    }
    Ok(())
}

/// Checks every reference against OpenEMR's own tables, naming each bad field.
async fn check_references(state: &AppState, e: &NewEncounter) -> Result<(), EncounterError> {
    let mut issues = Issues::default();
    if patients::get(&state.pool, e.pid).await?.is_none() {
        issues.add("pid", format!("no patient with pid {}", e.pid));
    }
    for (field, id) in [("facility_id", e.facility_id), ("billing_facility_id", e.billing_facility_id)] {
        match facilities::get(&state.pool, id).await? {
            Some(f) if !f.inactive => {}
            Some(_) => issues.add(field, format!("facility {id} is inactive")),
            None => issues.add(field, format!("no facility {id}")),
        }
    }
    if providers::get(&state.pool, e.provider_id).await?.is_none() {
        issues.add("provider_id", format!("user {} is not an active, authorized provider", e.provider_id));
    }
    if !encounters::category_exists(&state.pool, e.pc_catid).await? {
        issues.add("pc_catid", format!("no visit category {}", e.pc_catid));
    }
    if !encounters::class_code_exists(&state.pool, &e.class_code).await? {
        issues.add("class_code", format!("{} is not in OpenEMR's _ActEncounterCode list", e.class_code));
    }
    Ok(issues.into_result(())?)
}

pub async fn create(
    state: &AppState,
    caller: &Caller,
    input: NewEncounterInput,
) -> Result<EncounterRow, EncounterError> {
    let encounter = input.validate(caller.user_id.0, super::wall_clock_now())?;
    let aco = if encounter.provider_id == caller.user_id.0 {
        Aco::ENCOUNTERS_NOTES
    } else {
        Aco::ENCOUNTERS_NOTES_A
    };
    permission::require_on(state, caller, aco, AclLevel::Addonly, encounter.pid.0).await?;
    check_references(state, &encounter).await?;
    let mut conn = state.pool.acquire().await.map_err(StorageError::from_sqlx)?;
    let number = sequences::next_id(&mut conn).await?;
    let mut tx = sqlx::Connection::begin(&mut *conn).await.map_err(StorageError::from_sqlx)?;
    encounters::insert(&mut tx, number, &encounter, caller).await?;
    let comments = format!("mmt-sidecar created encounter {number}");
    audit_log::record(&mut tx, &entry(caller, "patient-record-insert", encounter.pid, comments)).await?;
    let row = encounters::get_in(&mut tx, number).await?.ok_or(EncounterError::NotFound(number))?;
    let change = Change {
        event: ChangeEvent::EncounterCreated,
        pid: Some(encounter.pid.0),
        data: json!({ "encounter": number }),
    };
    let event = webhooks::record(&mut tx, change).await?;
    tx.commit().await.map_err(StorageError::from_sqlx)?;
    webhooks::committed(state, event);
    Ok(row)
}
