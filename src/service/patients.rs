//! Patients: search, read, create and update, as OpenEMR's own screens would, with the caller's
//! OpenEMR permissions checked and every PHI access written to OpenEMR's audit log.

use serde_json::json;

use crate::{
    app::AppState,
    domain::{
        acl::{AclLevel, Aco},
        audit::AuditEntry,
        event::Event,
        patient::{Demographics, DemographicsInput, Pid},
        user::Caller,
        validation::Issues,
        webhook::ChangeEvent,
    },
    service::{
        acl::AclError,
        audit, patient_index, permission,
        webhooks::{self, Change},
    },
    storage::{
        StorageError, advisory_lock,
        mmt::{
            patient_index::{self as index, Filters, Page},
            transcriptions,
        },
        openemr::{
            audit_log,
            patients::{self, PatientRow},
            providers,
        },
    },
};

#[derive(Debug, thiserror::Error)]
pub enum PatientError {
    #[error("no patient with pid {0}")]
    NotFound(Pid),
    #[error("no patient with this id")]
    UnknownUuid,
    #[error("invalid patient data")]
    Invalid(Issues),
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Acl(#[from] AclError),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl From<Issues> for PatientError {
    fn from(issues: Issues) -> Self {
        Self::Invalid(issues)
    }
}

pub struct SearchResult {
    pub rows: Vec<PatientRow>,
    pub total: i64,
    pub last_key: Option<index::After>,
}

fn phi_entry(caller: &Caller, event: &str, patient: Option<Pid>, comments: String) -> AuditEntry {
    AuditEntry::phi(caller, event, "Patient Demographics", patient.map(|p| p.0), comments)
}

pub async fn search(
    state: &AppState,
    caller: &Caller,
    mut filters: Filters,
    assigned_to_me: bool,
    page: &Page,
) -> Result<SearchResult, PatientError> {
    permission::require(state, caller, Aco::PATIENTS_DEMO, AclLevel::View).await?;
    let own = assigned_to_me.then(|| super::patient_access::assigned_to(caller));
    for reach in super::patient_access::list_filter(state, caller).await?.into_iter().chain(own) {
        filters.panels.push(super::patient_access::panel(state, &reach).await?);
    }
    state.patient_index.ready_for_search(state).await?;
    let (total, hits) = match state.patient_index.search_in_memory(&filters, page) {
        Some(found) => found,
        None => {
            (index::total(&state.pool, &filters).await?, index::search(&state.pool, &filters, page).await?)
        }
    };
    let pids: Vec<i64> = hits.iter().map(|(pid, _)| *pid).collect();
    let rows = patients::get_many(&state.pool, &pids).await?;
    let listed = pids.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
    // One row per search, naming every patient it disclosed.
    let comments = format!("mmt-sidecar patient search: {} of {total} shown; pids [{listed}]", pids.len());
    audit::record(state, &phi_entry(caller, "patient-record-select", None, comments)).await?;
    Ok(SearchResult { rows, total, last_key: hits.into_iter().last().map(|(_, key)| key) })
}

pub async fn get(state: &AppState, caller: &Caller, pid: Pid) -> Result<PatientRow, PatientError> {
    permission::require_on(state, caller, Aco::PATIENTS_DEMO, AclLevel::View, pid.0).await?;
    let row = patients::get(&state.pool, pid).await?.ok_or(PatientError::NotFound(pid))?;
    let entry = phi_entry(
        caller,
        "patient-record-select",
        Some(pid),
        format!("mmt-sidecar read demographics of pid {pid}"),
    );
    audit::record(state, &entry).await?;
    super::dashboard::recent::viewed(state, caller, pid).await;
    Ok(row)
}

/// The uuid OpenEMR's FHIR API knows the patient by, once OpenEMR has given one.
pub async fn uuid_of(state: &AppState, pid: Pid) -> Result<Option<[u8; 16]>, PatientError> {
    Ok(patients::uuid_by_pid(&state.pool, pid).await?)
}

/// The pid of the patient OpenEMR's FHIR API knows by `uuid`.
pub async fn pid_of(state: &AppState, uuid: &[u8; 16]) -> Result<Option<Pid>, PatientError> {
    Ok(patients::pid_by_uuid(&state.pool, uuid).await?)
}

/// The patient OpenEMR's FHIR API knows by `uuid`; unknown ids are not found, as unknown pids are.
pub async fn get_by_uuid(
    state: &AppState,
    caller: &Caller,
    uuid: &[u8; 16],
) -> Result<PatientRow, PatientError> {
    match pid_of(state, uuid).await? {
        Some(pid) => get(state, caller, pid).await,
        None => {
            permission::require(state, caller, Aco::PATIENTS_DEMO, AclLevel::View).await?;
            Err(PatientError::UnknownUuid)
        }
    }
}

async fn validated(
    state: &AppState,
    input: DemographicsInput,
    creating: bool,
) -> Result<Demographics, PatientError> {
    let sexes = patients::sexes(&state.pool).await?;
    let demographics = input.validate(creating, super::wall_clock_now().date(), &sexes)?;
    if let Some(id) = demographics.provider_id
        && providers::get(&state.pool, id).await?.is_none()
    {
        let mut issues = Issues::default();
        issues.add("provider_id", format!("user {id} is not an active, authorized provider"));
        return Err(issues.into());
    }
    Ok(demographics)
}

const INSERT_ATTEMPTS: usize = 8;

/// OpenEMR allocates pid as MAX(pid)+1 with only the UNIQUE key as a guard. Sidecar replicas
/// serialise their creates with an advisory lock; a race with OpenEMR's own screens still ends in
/// a duplicate key, and the create is retried with the next pid.
pub async fn create(
    state: &AppState,
    caller: &Caller,
    input: DemographicsInput,
) -> Result<PatientRow, PatientError> {
    // OpenEMR's `addonly` exists for exactly this: registering without editing existing charts.
    permission::require(state, caller, Aco::PATIENTS_DEMO, AclLevel::Addonly).await?;
    let demographics = validated(state, input, true).await?;
    let mut held =
        advisory_lock::Held::take(&state.pool, "mmt_patient_create", advisory_lock::WRITE_WAIT_SECS).await?;
    let mut result: Result<(PatientRow, Event), PatientError> =
        Err(PatientError::Conflict("too many patients were being created at once; retry".into()));
    for _ in 0..INSERT_ATTEMPTS {
        result = try_create(held.conn(), caller, &demographics).await;
        if !matches!(&result, Err(PatientError::Storage(e)) if e.is_retryable_conflict()) {
            break;
        }
    }
    held.release().await?;
    let (row, change) = result?;
    state.patient_index.remember(&row).await;
    webhooks::committed(state, change);
    Ok(row)
}

async fn try_create(
    conn: &mut sqlx::MySqlConnection,
    caller: &Caller,
    d: &Demographics,
) -> Result<(PatientRow, Event), PatientError> {
    let mut tx = sqlx::Connection::begin(conn).await.map_err(StorageError::from_sqlx)?;
    if let Some(pubpid) = &d.pubpid
        && patients::pubpid_taken(&mut tx, pubpid, None).await?
    {
        return Err(pubpid_conflict(pubpid));
    }
    let above = transcriptions::max_pid(&mut tx).await?;
    let pid = patients::insert(&mut tx, d, caller.user_id, super::wall_clock_now(), above).await?;
    let written = finish_write(&mut tx, caller, pid, ChangeEvent::PatientCreated).await?;
    tx.commit().await.map_err(StorageError::from_sqlx)?;
    Ok(written)
}

fn pubpid_conflict(pubpid: &str) -> PatientError {
    let mut issues = Issues::default();
    issues.add("pubpid", format!("{pubpid} is already another patient's chart number"));
    PatientError::Invalid(issues)
}

/// Re-reads the written row inside the transaction, indexes it, audits the write and records the
/// change event, so all of them commit or none do. Hand the event to `webhooks::committed` after.
async fn finish_write(
    tx: &mut sqlx::MySqlConnection,
    caller: &Caller,
    pid: Pid,
    change: ChangeEvent,
) -> Result<(PatientRow, Event), PatientError> {
    let (event, verb) = match change {
        ChangeEvent::PatientCreated => ("patient-record-insert", "created"),
        _ => ("patient-record-update", "updated"),
    };
    let row = patients::get_in(tx, pid).await?.ok_or(PatientError::NotFound(pid))?;
    index::upsert(tx, &[patient_index::entry(&row)]).await?;
    let entry = phi_entry(caller, event, Some(pid), format!("mmt-sidecar {verb} demographics of pid {pid}"));
    audit_log::record(tx, &entry).await?;
    let recorded = webhooks::record(tx, Change { event: change, pid: Some(pid.0), data: json!({}) }).await?;
    Ok((row, recorded))
}

pub async fn update(
    state: &AppState,
    caller: &Caller,
    pid: Pid,
    input: DemographicsInput,
) -> Result<PatientRow, PatientError> {
    permission::require_on(state, caller, Aco::PATIENTS_DEMO, AclLevel::Write, pid.0).await?;
    let demographics = validated(state, input, false).await?;
    let mut tx = state.pool.begin().await.map_err(StorageError::from_sqlx)?;
    if let Some(pubpid) = &demographics.pubpid
        && patients::pubpid_taken(&mut tx, pubpid, Some(pid)).await?
    {
        return Err(pubpid_conflict(pubpid));
    }
    if !patients::update(&mut tx, pid, &demographics, caller.user_id, super::wall_clock_now()).await? {
        return Err(PatientError::NotFound(pid));
    }
    let (row, change) = finish_write(&mut tx, caller, pid, ChangeEvent::PatientUpdated).await?;
    tx.commit().await.map_err(StorageError::from_sqlx)?;
    state.patient_index.remember(&row).await;
    webhooks::committed(state, change);
    Ok(row)
}

/// Deletes only an empty chart: OpenEMR keeps charts with clinical history.
pub async fn delete(state: &AppState, caller: &Caller, pid: Pid) -> Result<(), PatientError> {
    permission::require_on(state, caller, Aco::ADMIN_SUPER, AclLevel::Write, pid.0).await?;
    let mut tx = state.pool.begin().await.map_err(StorageError::from_sqlx)?;
    if patients::has_clinical_history(&mut tx, pid).await? {
        return Err(PatientError::Conflict(format!(
            "pid {pid} has encounters or forms; OpenEMR keeps such charts, so the sidecar will not delete it"
        )));
    }
    let notes = transcriptions::count_for_pid(&mut tx, pid.0).await?;
    if notes > 0 {
        return Err(PatientError::Conflict(format!(
            "pid {pid} has {notes} transcription(s) in the sidecar; they would be orphaned, so the chart is kept"
        )));
    }
    if !patients::delete(&mut tx, pid).await? {
        return Err(PatientError::NotFound(pid));
    }
    index::remove(&mut tx, pid.0).await?;
    let entry = phi_entry(
        caller,
        "patient-record-delete",
        Some(pid),
        format!("mmt-sidecar deleted empty chart pid {pid}"),
    );
    audit_log::record(&mut tx, &entry).await?;
    tx.commit().await.map_err(StorageError::from_sqlx)?;
    state.patient_index.forget(pid.0).await;
    Ok(())
}
