//! FHIR bulk export (Bulk Data Access 1.0: `Patient/$export`, `Group/{id}/$export`) as the
//! `fhir.export` job. Patients are read in pid order, a batch at a time, and each resource type
//! goes to its own NDJSON file, sealed on disk like audio (`storage::audio`) and removed when the
//! export expires. Each exported patient gets an audit row naming the user who asked for it.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    io,
    path::PathBuf,
};

use chrono::{NaiveDateTime, Utc};
use poem_openapi::types::ToJSON;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::{
    app::AppState,
    domain::{
        acl::{AclLevel, Aco},
        audit::AuditEntry,
        chart::issues::IssueType,
        fhir_export::{ExportType, changed_since},
        job::{JobId, JobKind, JobState},
        user::Caller,
    },
    fhir::{
        self,
        encounter::encounter_of,
        issues::{allergy_of, condition_of},
        medication,
        model::Reference,
        observation::observations,
        patient::patient_of,
    },
    service::{
        acl::AclError,
        audit,
        chart::vitals,
        jobs::{self, JobContext, JobError, JobFailure, JobOutcome, NewJob},
        permission,
    },
    storage::{
        StorageError, advisory_lock,
        audio::{AudioFiles, StoredAudio},
        mmt::jobs::JobRow,
        openemr::{
            audit_log,
            chart::{issues, prescriptions, vitals as vitals_store},
            encounters, patients,
            providers::{self, GroupRow},
        },
    },
};

/// Patients read per batch.
const BATCH: u32 = 500;
/// Bytes of NDJSON gathered before they are sealed and written.
const FLUSH_BYTES: usize = 1 << 20;
const CATEGORY: &str = "FHIR Export";

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("{0}")]
    NotFound(String),
    #[error("export {0} has expired and its files were removed")]
    Expired(JobId),
    #[error("the export's files could not be read or written: {0}")]
    Files(#[from] io::Error),
    #[error(transparent)]
    Acl(#[from] AclError),
    #[error(transparent)]
    Job(#[from] JobError),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// What a kick-off asks for.
pub struct ExportRequest {
    /// A Group's id; every patient when `None`.
    pub group: Option<[u8; 16]>,
    pub types: Vec<ExportType>,
    pub since: Option<NaiveDateTime>,
    /// The kick-off URL, echoed in the manifest.
    pub request: String,
}

/// The job's payload: ids and parameters, no PHI.
#[derive(Serialize, Deserialize)]
struct Payload {
    types: Vec<String>,
    since: Option<NaiveDateTime>,
    provider: Option<i64>,
    request: String,
    transaction_time: String,
    user: String,
    group: String,
}

/// One NDJSON file of a finished export, as the manifest lists it.
#[derive(Serialize, Deserialize)]
pub struct Output {
    #[serde(rename = "type")]
    pub kind: String,
    pub count: u64,
}

pub enum ExportStatus {
    InProgress { percent: u8, message: String },
    Complete { transaction_time: String, request: String, output: Vec<Output> },
    Failed(String),
}

/// Starts an export for an OpenEMR administrator (`admin|super`, as OpenEMR's bulk export).
pub async fn kick_off(
    state: &AppState,
    caller: &Caller,
    request: ExportRequest,
) -> Result<JobId, ExportError> {
    permission::require(state, caller, Aco::ADMIN_SUPER, AclLevel::Write).await?;
    let provider = match request.group {
        Some(uuid) => {
            let group = providers::groups(&state.pool, Some(&uuid)).await?.into_iter().next();
            Some(group.ok_or_else(no_group)?.provider_id)
        }
        None => None,
    };
    let payload = Payload {
        types: request.types.iter().map(|t| t.as_str().to_string()).collect(),
        since: request.since,
        provider,
        request: request.request,
        transaction_time: Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        user: caller.username.clone(),
        group: caller.auth_group.clone(),
    };
    let payload = serde_json::to_value(payload).map_err(|e| StorageError::Unavailable(e.to_string()))?;
    Ok(jobs::submit(state, NewJob::new(JobKind::FhirExport, payload).queued_by(caller)).await?)
}

/// A provider group and its members' uuids.
pub struct ProviderGroup {
    pub row: GroupRow,
    pub members: Vec<Vec<u8>>,
}

/// OpenEMR's provider groups, which bulk exports take by id, for OpenEMR administrators: every
/// provider with an NPI, with the patients whose provider they are. Users without a Group id get
/// one first, as OpenEMR's GroupService gives them. Audited as one read listing no patient.
pub async fn groups(
    state: &AppState,
    caller: &Caller,
    uuid: Option<[u8; 16]>,
) -> Result<Vec<ProviderGroup>, ExportError> {
    permission::require(state, caller, Aco::ADMIN_SUPER, AclLevel::Write).await?;
    let mut held =
        advisory_lock::Held::take(&state.pool, providers::GROUP_LOCK, advisory_lock::WRITE_WAIT_SECS).await?;
    let added = create_group_ids(held.conn()).await;
    held.release().await?;
    added?;
    let rows = providers::groups(&state.pool, uuid.as_ref()).await?;
    if uuid.is_some() && rows.is_empty() {
        return Err(no_group());
    }
    let mut groups = Vec::with_capacity(rows.len());
    for row in rows {
        let members = patients::uuids_of_provider(&state.pool, row.provider_id).await?;
        groups.push(ProviderGroup { row, members });
    }
    let comments = format!("mmt-sidecar read {} FHIR provider groups", groups.len());
    audit::record(state, &AuditEntry::phi(caller, "patient-record-select", CATEGORY, None, comments)).await?;
    Ok(groups)
}

async fn create_group_ids(conn: &mut sqlx::MySqlConnection) -> Result<(), StorageError> {
    let mut tx = sqlx::Connection::begin(conn).await.map_err(StorageError::from_sqlx)?;
    providers::create_missing_group_ids(&mut tx).await?;
    tx.commit().await.map_err(StorageError::from_sqlx)
}

pub fn no_group() -> ExportError {
    ExportError::NotFound("no Group with this id".into())
}

/// An export as the user who started it (or an administrator) may follow it.
pub async fn status(state: &AppState, caller: &Caller, id: JobId) -> Result<ExportStatus, ExportError> {
    let row = export_job(state, caller, id).await?;
    Ok(match row.state() {
        JobState::Queued | JobState::Running => {
            ExportStatus::InProgress { percent: row.progress, message: row.progress_message }
        }
        JobState::Failed => ExportStatus::Failed(row.error.unwrap_or_default()),
        JobState::Cancelled => return Err(not_found()),
        JobState::Succeeded => {
            expiry_check(state, &row, id)?;
            if !tokio::fs::try_exists(dir(state, id)).await? {
                return Err(ExportError::NotFound(format!("export {id} was deleted")));
            }
            let payload = payload_of(&row.payload)?;
            let output = row
                .result
                .as_deref()
                .and_then(|r| serde_json::from_str::<Vec<Output>>(r).ok())
                .unwrap_or_default();
            ExportStatus::Complete {
                transaction_time: payload.transaction_time,
                request: payload.request,
                output,
            }
        }
    })
}

/// One finished file, opened to be streamed; its download is audited.
pub async fn file(
    state: &AppState,
    caller: &Caller,
    id: JobId,
    kind: ExportType,
) -> Result<StoredAudio, ExportError> {
    let row = export_job(state, caller, id).await?;
    if row.state() != JobState::Succeeded {
        return Err(ExportError::NotFound(format!("export {id} has not finished")));
    }
    expiry_check(state, &row, id)?;
    let stored = files(state, id).open(kind.as_str()).await.map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => ExportError::NotFound(format!("export {id} has no {kind:?} file")),
        _ => ExportError::Files(e),
    })?;
    let comments = format!("mmt-sidecar FHIR bulk export {id}: {} file downloaded", kind.as_str());
    audit::record(state, &AuditEntry::phi(caller, "patient-record-select", CATEGORY, None, comments)).await?;
    Ok(stored)
}

/// Cancels a running export and removes its files.
pub async fn delete(state: &AppState, caller: &Caller, id: JobId) -> Result<(), ExportError> {
    let row = export_job(state, caller, id).await?;
    if matches!(row.state(), JobState::Queued | JobState::Running) {
        jobs::cancel(state, caller, id).await?;
    }
    remove_files(state, id).await?;
    Ok(())
}

/// Removes the files of exports older than the configured lifetime, but not of one still being
/// written (it holds `.part` files); run by housekeeping.
pub async fn remove_expired(state: &AppState) -> io::Result<u64> {
    let ttl = state.config.fhir_export.ttl;
    let mut dir = match tokio::fs::read_dir(&state.config.fhir_export.dir).await {
        Ok(dir) => dir,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut removed = 0;
    while let Some(entry) = dir.next_entry().await? {
        let modified = entry.metadata().await?.modified()?;
        if modified.elapsed().is_ok_and(|age| age > ttl) && !writing(&entry.path()).await? {
            tokio::fs::remove_dir_all(entry.path()).await?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// Job `fhir.export`: every batch of patients to the NDJSON files; the result lists the files.
pub async fn run(ctx: JobContext) -> JobOutcome {
    let payload: Payload = serde_json::from_value(ctx.payload().clone())
        .map_err(|e| JobFailure::Permanent(format!("malformed export payload: {e}")))?;
    let types: BTreeSet<ExportType> = payload.types.iter().filter_map(|t| ExportType::parse(t)).collect();
    let state = ctx.state();
    let id = ctx.id();
    remove_files(state, id).await.map_err(transient)?;
    tokio::fs::create_dir_all(dir(state, id)).await.map_err(transient)?;
    let mut export = Export::new(state, id, &payload, types).await?;
    let total = patients::count_for(&state.pool, payload.provider).await?.max(1);
    let (mut after, mut done) = (0, 0);
    loop {
        if ctx.cancelled().await? {
            remove_files(state, id).await.map_err(transient)?;
            return Err(JobFailure::Cancelled);
        }
        let pids = patients::pids_after(&state.pool, after, BATCH, payload.provider).await?;
        let Some(last) = pids.last() else { break };
        after = *last;
        export.batch(&pids).await?;
        done += pids.len() as i64;
        let percent = u8::try_from((done * 99 / total).min(99)).unwrap_or(99);
        ctx.progress(percent, &format!("{done} of {total} patients")).await?;
    }
    let output = export.finish().await?;
    Ok(Some(json!(output)))
}

/// The files being written, each with its sealed length, resources and unwritten lines.
struct Export<'a> {
    state: &'a AppState,
    files: AudioFiles<'a>,
    since: Option<NaiveDateTime>,
    author: (String, String),
    job: JobId,
    requesters: HashMap<i64, Reference>,
    open: BTreeMap<ExportType, (u64, u64, Vec<u8>)>,
}

impl<'a> Export<'a> {
    async fn new(
        state: &'a AppState,
        job: JobId,
        payload: &Payload,
        types: BTreeSet<ExportType>,
    ) -> Result<Self, JobFailure> {
        let requesters = match types.contains(&ExportType::MedicationRequest) {
            true => medication::requesters(&providers::list(&state.pool).await?),
            false => HashMap::new(),
        };
        Ok(Self {
            state,
            files: files(state, job),
            since: payload.since,
            author: (payload.user.clone(), payload.group.clone()),
            job,
            requesters,
            open: types.into_iter().map(|t| (t, (0, 0, Vec::new()))).collect(),
        })
    }

    fn wants(&self, kind: ExportType) -> bool {
        self.open.contains_key(&kind)
    }

    /// One batch of patients: their resources of each type, then an audit row for each patient
    /// any of them is about.
    async fn batch(&mut self, pids: &[i64]) -> Result<(), JobFailure> {
        let pool = &self.state.pool;
        let rows = patients::get_many(pool, pids).await?;
        let subjects: HashMap<i64, Reference> =
            rows.iter().map(|r| (r.pid, fhir::patient_reference(r.uuid.as_deref()))).collect();
        let subject = |pid: i64| subjects.get(&pid).cloned().unwrap_or_else(|| fhir::patient_reference(None));
        let mut exported = BTreeSet::new();
        let since = self.since;
        if self.wants(ExportType::Patient) {
            for row in rows.iter().filter(|r| changed_since(r.last_updated.or(r.date), since)) {
                let pid = row.pid;
                if let Some(patient) = patient_of(row.clone()) {
                    self.add(ExportType::Patient, &patient, pid, &mut exported);
                }
            }
        }
        if self.wants(ExportType::Encounter) {
            for row in encounters::for_patients(pool, pids).await? {
                let pid = row.pid;
                if let Some(encounter) = encounter_of(row, subject(pid)) {
                    self.add(ExportType::Encounter, &encounter, pid, &mut exported);
                }
            }
        }
        let kinds: Vec<IssueType> = [
            (ExportType::Condition, IssueType::Problem),
            (ExportType::AllergyIntolerance, IssueType::Allergy),
        ]
        .into_iter()
        .filter(|(t, _)| self.wants(*t))
        .map(|(_, k)| k)
        .collect();
        for row in issues::for_patients(pool, pids, &kinds).await? {
            if !changed_since(Some(row.modifydate), since) {
                continue;
            }
            let pid = row.pid.unwrap_or_default();
            let reference = subject(pid);
            match row.kind.as_deref().and_then(IssueType::from_db) {
                Some(IssueType::Allergy) => allergy_of(row, &reference)
                    .map(|r| self.add(ExportType::AllergyIntolerance, &r, pid, &mut exported)),
                _ => condition_of(row, &reference)
                    .map(|r| self.add(ExportType::Condition, &r, pid, &mut exported)),
            };
        }
        if self.wants(ExportType::MedicationRequest) {
            for row in prescriptions::for_patients(pool, pids).await? {
                let pid = row.patient_id.unwrap_or_default();
                if changed_since(row.date_modified, since)
                    && let Some(request) = medication::request_of(row, &subject(pid), &self.requesters)
                {
                    self.add(ExportType::MedicationRequest, &request, pid, &mut exported);
                }
            }
        }
        if self.wants(ExportType::Observation) {
            let forms = vitals_store::for_patients(pool, pids).await?;
            let ids = vitals::observation_ids(self.state, &forms).await.map_err(transient)?;
            for row in forms.iter().filter(|r| changed_since(Some(r.last_updated), since)) {
                for (observation, _) in observations(row, ids.get(&row.id), &subject(row.pid)) {
                    self.add(ExportType::Observation, &observation, row.pid, &mut exported);
                }
            }
        }
        self.flush(FLUSH_BYTES).await?;
        self.audit(&exported).await
    }

    fn add(&mut self, kind: ExportType, resource: &impl ToJSON, pid: i64, exported: &mut BTreeSet<i64>) {
        let (Some(file), Some(json)) = (self.open.get_mut(&kind), resource.to_json()) else { return };
        if serde_json::to_writer(&mut file.2, &json).is_ok() {
            file.2.push(b'\n');
            file.1 += 1;
            exported.insert(pid);
        }
    }

    /// Seals and writes every file holding at least `least` bytes of lines.
    async fn flush(&mut self, least: usize) -> Result<(), JobFailure> {
        for (kind, (offset, _, lines)) in self.open.iter_mut() {
            if !lines.is_empty() && lines.len() >= least {
                self.files.write(kind.as_str(), *offset, lines).await.map_err(transient)?;
                *offset += lines.len() as u64;
                lines.clear();
            }
        }
        Ok(())
    }

    async fn audit(&self, exported: &BTreeSet<i64>) -> Result<(), JobFailure> {
        let comments = format!("mmt-sidecar FHIR bulk export {}", self.job);
        let entries: Vec<AuditEntry> = exported
            .iter()
            .map(|pid| AuditEntry {
                event: "patient-record-select".into(),
                category: CATEGORY.into(),
                user: self.author.0.clone(),
                groupname: self.author.1.clone(),
                comments: comments.clone(),
                patient_id: Some(*pid),
                success: true,
            })
            .collect();
        if entries.is_empty() {
            return Ok(());
        }
        let mut tx = self.state.pool.begin().await.map_err(StorageError::from_sqlx)?;
        audit_log::insert(&mut tx, &entries).await?;
        tx.commit().await.map_err(StorageError::from_sqlx)?;
        Ok(())
    }

    /// Writes what is left and moves each file that holds resources into place.
    async fn finish(mut self) -> Result<Vec<Output>, JobFailure> {
        self.flush(0).await?;
        let mut output = Vec::new();
        for (kind, (_, count, _)) in &self.open {
            if *count > 0 {
                self.files.complete(kind.as_str()).await.map_err(transient)?;
                output.push(Output { kind: kind.as_str().into(), count: *count });
            }
        }
        Ok(output)
    }
}

async fn writing(dir: &std::path::Path) -> io::Result<bool> {
    let mut files = tokio::fs::read_dir(dir).await?;
    while let Some(file) = files.next_entry().await? {
        if file.file_name().to_string_lossy().ends_with(".part") {
            return Ok(true);
        }
    }
    Ok(false)
}

fn transient(e: impl ToString) -> JobFailure {
    JobFailure::Transient(e.to_string())
}

pub fn not_found() -> ExportError {
    ExportError::NotFound("no export with this id".into())
}

/// The job, when it is an export the caller may follow.
async fn export_job(state: &AppState, caller: &Caller, id: JobId) -> Result<JobRow, ExportError> {
    match jobs::get(state, caller, id).await {
        Ok(row) if row.kind == JobKind::FhirExport.as_str() => Ok(row),
        Ok(_) | Err(JobError::NotFound(_)) => Err(not_found()),
        Err(e) => Err(e.into()),
    }
}

fn payload_of(text: &str) -> Result<Payload, ExportError> {
    serde_json::from_str(text).map_err(|_| not_found())
}

fn expiry_check(state: &AppState, row: &JobRow, id: JobId) -> Result<(), ExportError> {
    let ttl = chrono::Duration::from_std(state.config.fhir_export.ttl).unwrap_or(chrono::Duration::hours(1));
    match row.finished_at {
        Some(at) if at + ttl < Utc::now().naive_utc() => Err(ExportError::Expired(id)),
        _ => Ok(()),
    }
}

fn dir(state: &AppState, id: JobId) -> PathBuf {
    state.config.fhir_export.dir.join(id.to_string())
}

fn files(state: &AppState, id: JobId) -> AudioFiles<'_> {
    AudioFiles::new(&dir(state, id), &state.vault).with_extension("ndjson")
}

async fn remove_files(state: &AppState, id: JobId) -> io::Result<()> {
    match tokio::fs::remove_dir_all(dir(state, id)).await {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}
