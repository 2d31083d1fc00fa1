//! Work that outlives a request, one mechanism for every kind: a job is a row in `mmt_jobs`;
//! workers on any replica claim due jobs (each claim taken by exactly one worker) and run the
//! handler registered for the job's kind; a scheduler on every replica enqueues periodic jobs,
//! once per period across all of them.

use std::{collections::HashMap, future::Future, sync::Arc, time::Duration};

use futures_util::future::BoxFuture;
use serde_json::Value;
use sqlx::MySqlConnection;
use tokio::{sync::watch, task::JoinHandle};

use crate::{
    app::AppState,
    domain::{
        acl::{AclLevel, Aco},
        audit::AuditEntry,
        job::{self, Backoff, CancelOutcome, IllegalJobTransition, JobAction, JobId, JobKind, JobState},
        messaging::notification::{NotificationKind, Subject},
        user::{Caller, UserId},
    },
    service::{acl::AclError, audit, events, housekeeping, messaging::notifications, permission, webhooks},
    storage::{
        StorageError,
        mmt::jobs::{self as store, JobRow, NewJobRow},
        openemr::audit_log,
    },
};

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("no job {0}")]
    NotFound(JobId),
    #[error(transparent)]
    Illegal(#[from] IllegalJobTransition),
    #[error(transparent)]
    Acl(#[from] AclError),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl From<sqlx::Error> for JobError {
    fn from(e: sqlx::Error) -> Self {
        Self::Storage(StorageError::from_sqlx(e))
    }
}

/// A job to enqueue. The payload names what to work on (ids), never PHI itself.
pub struct NewJob {
    pub kind: JobKind,
    pub payload: Value,
    pub queued_by: Option<UserId>,
    pub patient_id: Option<i64>,
}

impl NewJob {
    pub fn new(kind: JobKind, payload: Value) -> Self {
        Self { kind, payload, queued_by: None, patient_id: None }
    }

    /// The caller may then follow and cancel it.
    pub fn queued_by(mut self, caller: &Caller) -> Self {
        self.queued_by = Some(caller.user_id);
        self
    }

    /// Reading the job then counts as a disclosure about this patient.
    pub fn for_patient(mut self, pid: i64) -> Self {
        self.patient_id = Some(pid);
        self
    }
}

/// Adds a job within the caller's transaction, so it exists only if the work that needs it
/// commits. Call [`wake`] after the commit so a worker of this process starts at once.
pub async fn enqueue(conn: &mut MySqlConnection, job: NewJob) -> Result<JobId, StorageError> {
    let id = JobId::generate();
    let row = NewJobRow {
        id: id.0,
        kind: job.kind.as_str(),
        payload: &job.payload.to_string(),
        max_attempts: job.kind.max_attempts(),
        queued_by: job.queued_by.map(|u| u.0),
        patient_id: job.patient_id,
    };
    store::insert(conn, &row).await?;
    Ok(id)
}

/// Wakes one idle worker of this process; the others find new jobs at their next poll.
pub fn wake(state: &AppState) {
    state.job_wake.notify_one();
}

/// Enqueues a job on its own and wakes a worker.
pub async fn submit(state: &AppState, job: NewJob) -> Result<JobId, StorageError> {
    let mut conn = state.pool.acquire().await.map_err(StorageError::from_sqlx)?;
    let id = enqueue(&mut conn, job).await?;
    wake(state);
    Ok(id)
}

/// The user who queued a job may follow and cancel it; anyone else must be an administrator.
async fn require_access(state: &AppState, caller: &Caller, row: &JobRow) -> Result<(), AclError> {
    if !caller.is_guest() && row.queued_by == Some(caller.user_id.0) {
        return Ok(());
    }
    match row.patient_id {
        Some(pid) => permission::require_on(state, caller, Aco::ADMIN_SUPER, AclLevel::Write, pid).await,
        None => permission::require(state, caller, Aco::ADMIN_SUPER, AclLevel::Write).await,
    }
}

fn audit_entry(caller: &Caller, event: &str, row: &JobRow, verb: &str) -> Option<AuditEntry> {
    let id = JobId::from_bytes(&row.id)?;
    let comments = format!("mmt-sidecar {verb} {} job {id}", row.kind);
    row.patient_id.map(|pid| AuditEntry::phi(caller, event, "Background Job", Some(pid), comments))
}

/// A job as its owner or an administrator may see it; one about a patient is audited as a read.
pub async fn get(state: &AppState, caller: &Caller, id: JobId) -> Result<JobRow, JobError> {
    let row = store::get(&state.pool, &id.0).await?.ok_or(JobError::NotFound(id))?;
    require_access(state, caller, &row).await?;
    if let Some(entry) = audit_entry(caller, "patient-record-select", &row, "read") {
        audit::record(state, &entry).await?;
    }
    Ok(row)
}

/// Tries of a cancel that lost a deadlock to the workers claiming and finishing jobs (they lock
/// the state index, then the row; a cancel locks the row first).
const CANCEL_ATTEMPTS: u32 = 3;

/// Cancels a queued job at once, or asks a running one's handler to stop.
pub async fn cancel(
    state: &AppState,
    caller: &Caller,
    id: JobId,
) -> Result<(JobRow, CancelOutcome), JobError> {
    let mut attempt = 1;
    loop {
        match cancel_once(state, caller, id).await {
            Err(JobError::Storage(e)) if e.is_deadlock() && attempt < CANCEL_ATTEMPTS => attempt += 1,
            done => return done,
        }
    }
}

async fn cancel_once(
    state: &AppState,
    caller: &Caller,
    id: JobId,
) -> Result<(JobRow, CancelOutcome), JobError> {
    let mut tx = state.pool.begin().await?;
    let row = store::lock(&mut tx, &id.0).await?.ok_or(JobError::NotFound(id))?;
    require_access(state, caller, &row).await?;
    let outcome = job::request_cancel(row.state())?;
    match outcome {
        CancelOutcome::Cancelled => store::cancel_queued(&mut tx, &row.id).await?,
        CancelOutcome::Requested => store::request_cancel(&mut tx, &row.id).await?,
    }
    if let Some(entry) = audit_entry(caller, "patient-record-update", &row, "cancelled") {
        audit_log::record(&mut tx, &entry).await?;
    }
    tx.commit().await?;
    let row = store::get(&state.pool, &id.0).await?.ok_or(JobError::NotFound(id))?;
    Ok((row, outcome))
}

/// Why an attempt did not succeed. Messages are stored and shown to the job's owner: name the
/// error's class and the ids involved, never PHI.
#[derive(Debug, thiserror::Error)]
pub enum JobFailure {
    /// Worth another attempt later (a dependency was down), while attempts remain.
    #[error("{0}")]
    Transient(String),
    /// Another attempt would fail the same way (a malformed payload); the job fails at once.
    #[error("{0}")]
    Permanent(String),
    /// The handler saw a cancel request and stopped.
    #[error("cancelled on request")]
    Cancelled,
}

impl From<StorageError> for JobFailure {
    fn from(err: StorageError) -> Self {
        Self::Transient(err.to_string())
    }
}

/// What a handler returns: an optional result (JSON, kept on the job) or why it failed.
pub type JobOutcome = Result<Option<Value>, JobFailure>;

type Handler = Arc<dyn Fn(JobContext) -> BoxFuture<'static, JobOutcome> + Send + Sync>;

/// What a handler gets: the service state, the job, and ways to report progress and notice a
/// cancel request.
pub struct JobContext {
    state: AppState,
    job: JobRow,
    payload: Value,
    owner: [u8; 16],
}

impl JobContext {
    pub fn state(&self) -> &AppState {
        &self.state
    }

    pub fn id(&self) -> JobId {
        JobId::from_bytes(&self.job.id).expect("job ids are 16 bytes")
    }

    pub fn payload(&self) -> &Value {
        &self.payload
    }

    /// 1 on the first attempt.
    pub fn attempt(&self) -> u32 {
        self.job.attempts
    }

    pub fn queued_by(&self) -> Option<i64> {
        self.job.queued_by
    }

    pub fn patient_id(&self) -> Option<i64> {
        self.job.patient_id
    }

    /// Records progress (0-100 and a short message without PHI) on the job and tells the user who
    /// queued it live.
    pub async fn progress(&self, percent: u8, message: &str) -> Result<(), StorageError> {
        let (percent, message) = job::progress(percent, message);
        if store::set_progress(&self.state.pool, &self.job.id, &self.owner, percent, &message).await? {
            let id = self.id().to_string();
            events::job_progress(&self.state, &id, self.job.queued_by, percent, &message).await;
        }
        Ok(())
    }

    /// Whether a cancel was asked for; a handler checks between steps and returns
    /// [`JobFailure::Cancelled`].
    pub async fn cancelled(&self) -> Result<bool, StorageError> {
        store::cancel_requested(&self.state.pool, &self.job.id).await
    }
}

/// This process's workers and the handler of each kind they run.
pub struct Workers {
    state: AppState,
    handlers: HashMap<JobKind, Handler>,
}

impl Workers {
    /// Workers with every handler the sidecar has.
    pub fn new(state: AppState) -> Self {
        Self { state, handlers: HashMap::new() }
            .with_handler(JobKind::Housekeeping, housekeeping::job)
            .with_handler(JobKind::WebhookDeliver, webhooks::deliver)
            .with_handler(JobKind::AppointmentSweep, crate::service::scheduling::holds::job)
            .with_handler(JobKind::PrescriptionSend, crate::service::chart::prescription_send::job)
            .with_handler(JobKind::DocumentOcr, crate::service::documents::ocr::job)
            .with_handler(JobKind::ProductImport, crate::service::catalogue::imports::job)
            .with_handler(JobKind::KeyRotation, crate::service::key_rotation::job)
            .with_handler(JobKind::Hl7Send, crate::service::hl7::send)
            .with_handler(JobKind::FhirExport, crate::service::fhir_export::run)
    }

    /// Registers (or replaces) the handler of `kind`.
    pub fn with_handler<F, Fut>(mut self, kind: JobKind, handler: F) -> Self
    where
        F: Fn(JobContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = JobOutcome> + Send + 'static,
    {
        self.handlers.insert(kind, Arc::new(move |ctx| Box::pin(handler(ctx))));
        self
    }

    pub fn spawn(self, count: usize) -> Tasks {
        let workers = Arc::new(self);
        Tasks::spawn(count, |stop| work(workers.clone(), stop))
    }

    /// Runs one claimed job to its end, unless its lease is lost to another worker on the way.
    async fn run(&self, claim: Claim) {
        let Claim { job, owner } = claim;
        let handler = JobKind::parse(&job.kind).and_then(|kind| self.handlers.get(&kind)).cloned();
        let outcome = match handler {
            Some(handler) => {
                let payload = serde_json::from_str(&job.payload).unwrap_or(Value::Null);
                let ctx = JobContext { state: self.state.clone(), job: job.clone(), payload, owner };
                match self.supervise(handler(ctx), &job, &owner).await {
                    Some(outcome) => outcome,
                    None => return,
                }
            }
            None => {
                Err(JobFailure::Permanent(format!("no handler for job kind `{}` on this replica", job.kind)))
            }
        };
        if let Err(err) = self.settle(&job, &owner, outcome).await {
            tracing::warn!(error = %err, kind = %job.kind, "could not record a job's outcome; it runs again");
        }
    }

    /// Runs the handler on a task of its own (a panic fails the attempt, not the worker) and renews
    /// the lease meanwhile. `None` when the lease was lost: another worker owns the job now.
    async fn supervise(
        &self,
        run: BoxFuture<'static, JobOutcome>,
        job: &JobRow,
        owner: &[u8; 16],
    ) -> Option<JobOutcome> {
        let lease = self.state.config.jobs.lease;
        let mut handler = AbortOnDrop(tokio::spawn(run));
        let mut renew = tokio::time::interval(lease / 3);
        renew.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        renew.tick().await;
        loop {
            tokio::select! {
                joined = &mut handler.0 => {
                    return Some(joined.unwrap_or_else(|e| {
                        Err(JobFailure::Permanent(if e.is_panic() { "the handler panicked" } else { "the handler was stopped" }.into()))
                    }));
                }
                _ = renew.tick() => match store::heartbeat(&self.state.pool, &job.id, owner, lease).await {
                    Ok(true) => {}
                    Ok(false) => {
                        tracing::warn!(kind = %job.kind, "lost a job's lease to another worker; stopping its handler");
                        return None;
                    }
                    Err(err) => tracing::warn!(error = %err, "could not renew a job's lease"),
                },
            }
        }
    }

    async fn settle(&self, job: &JobRow, owner: &[u8; 16], outcome: JobOutcome) -> Result<(), JobError> {
        let config = &self.state.config.jobs;
        let (action, result, error) = match outcome {
            Ok(result) => (JobAction::Succeed, result.map(|v| v.to_string()), None),
            Err(JobFailure::Cancelled) => (JobAction::Cancel, None, None),
            Err(JobFailure::Transient(e)) if job::has_attempts_left(job.attempts, job.max_attempts) => {
                (JobAction::Retry, None, Some(job::error_text(&e)))
            }
            Err(JobFailure::Transient(e) | JobFailure::Permanent(e)) => {
                (JobAction::Fail, None, Some(job::error_text(&e)))
            }
        };
        let pool = &self.state.pool;
        let to = job::transition(job.state(), action)?;
        let settled = match to {
            JobState::Queued => {
                let backoff = Backoff { base: config.backoff_base, cap: config.backoff_cap };
                let error = error.unwrap_or_default();
                store::requeue(pool, &job.id, owner, backoff.delay(job.attempts), &error).await?
            }
            to => store::finish(pool, &job.id, owner, to, result.as_deref(), error.as_deref()).await?,
        };
        if settled
            && to == JobState::Failed
            && let (Some(user), Some(id)) = (job.queued_by, JobId::from_bytes(&job.id))
        {
            let subject = Subject::Job(id.to_string());
            notifications::notify_now(
                &self.state,
                user,
                NotificationKind::JobFailed,
                &subject,
                "mmt-sidecar",
            )
            .await;
        }
        if !settled {
            tracing::warn!(kind = %job.kind, "a job's lease lapsed before it finished; another worker has it");
        }
        Ok(())
    }
}

struct AbortOnDrop<T>(JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

struct Claim {
    job: JobRow,
    owner: [u8; 16],
}

/// Takes a job for this worker in one short transaction: with `lapsed`, first a running job whose
/// worker died; otherwise (or failing that) the queued job due longest ago.
async fn claim(state: &AppState, lapsed: bool) -> Result<Option<Claim>, JobError> {
    let mut conn = state.pool.acquire().await?;
    loop {
        let mut tx = store::begin_claim(&mut conn).await?;
        let found = if lapsed { store::lock_lapsed(&mut tx).await? } else { None };
        let found = match found {
            Some(job) => Some(job),
            None => store::lock_due(&mut tx).await?,
        };
        let Some(mut job) = found else {
            tx.rollback().await?;
            return Ok(None);
        };
        if !job::has_attempts_left(job.attempts, job.max_attempts) {
            // Its worker died during the last attempt allowed, perhaps killed by the job itself.
            job::transition(job.state(), JobAction::Fail)?;
            let error = "the worker running its last attempt stopped before the attempt ended";
            store::fail_lapsed(&mut tx, &job.id, error).await?;
            tx.commit().await?;
            continue;
        }
        let running = job::transition(job.state(), JobAction::Claim)?;
        let owner = *uuid::Uuid::new_v4().as_bytes();
        if !store::mark_running(&mut tx, &job.id, &owner, state.config.jobs.lease).await? {
            tx.rollback().await?;
            return Ok(None);
        }
        tx.commit().await?;
        job.state = running.as_str().into();
        job.attempts += 1;
        return Ok(Some(Claim { job, owner }));
    }
}

/// Told to stop, or the [`Tasks`] that could tell it is gone.
fn stopped(stop: &watch::Receiver<bool>) -> bool {
    *stop.borrow() || stop.has_changed().is_err()
}

async fn work(workers: Arc<Workers>, mut stop: watch::Receiver<bool>) {
    let state = &workers.state;
    let poll = state.config.jobs.poll;
    // Lapsed leases are rare and looking for them costs about a third of a busy queue's
    // throughput, so each worker looks once per poll interval rather than at every claim.
    let mut lapsed_looked_at = None::<tokio::time::Instant>;
    while !stopped(&stop) {
        let lapsed = lapsed_looked_at.is_none_or(|at| at.elapsed() >= poll);
        if lapsed {
            lapsed_looked_at = Some(tokio::time::Instant::now());
        }
        match claim(state, lapsed).await {
            Ok(Some(claim)) => {
                workers.run(claim).await;
                continue;
            }
            Ok(None) => {}
            Err(err) => tracing::warn!(error = %err, "could not claim a job; will retry"),
        }
        tokio::select! {
            _ = state.job_wake.notified() => {}
            _ = tokio::time::sleep(poll) => {}
            changed = stop.changed() => if changed.is_err() { break },
        }
    }
}

/// A job enqueued every `every`, once per period across all replicas.
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    pub kind: JobKind,
    pub every: Duration,
}

/// What the sidecar runs on a timer.
pub fn schedules() -> Vec<Schedule> {
    vec![
        Schedule { kind: JobKind::Housekeeping, every: housekeeping::EVERY },
        Schedule { kind: JobKind::AppointmentSweep, every: crate::service::scheduling::holds::EVERY },
    ]
}

/// The scheduler of this replica; any number of replicas may run one.
pub fn spawn_scheduler(state: AppState, schedules: Vec<Schedule>) -> Tasks {
    Tasks::spawn(1, |stop| schedule(state.clone(), schedules.clone(), stop))
}

async fn schedule(state: AppState, schedules: Vec<Schedule>, mut stop: watch::Receiver<bool>) {
    let mut registered = false;
    while !stopped(&stop) {
        if !registered {
            registered = register(&state, &schedules)
                .await
                .map_err(|err| tracing::warn!(error = %err, "could not register job schedules; will retry"))
                .is_ok();
        }
        if registered {
            for s in &schedules {
                if let Err(err) = enqueue_if_due(&state, s).await {
                    tracing::warn!(error = %err, kind = %s.kind, "could not run a job schedule; will retry");
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(state.config.jobs.poll) => {}
            changed = stop.changed() => if changed.is_err() { break },
        }
    }
}

async fn register(state: &AppState, schedules: &[Schedule]) -> Result<(), StorageError> {
    for s in schedules {
        store::register_schedule(&state.pool, s.kind.as_str(), s.every).await?;
    }
    Ok(())
}

/// The period and its job commit together, so a replica that dies in between loses neither.
async fn enqueue_if_due(state: &AppState, s: &Schedule) -> Result<(), StorageError> {
    let mut tx = state.pool.begin().await.map_err(StorageError::from_sqlx)?;
    if !store::claim_period(&mut tx, s.kind.as_str()).await? {
        return Ok(());
    }
    enqueue(&mut tx, NewJob::new(s.kind, Value::Object(Default::default()))).await?;
    tx.commit().await.map_err(StorageError::from_sqlx)?;
    wake(state);
    Ok(())
}

/// This process's workers (`MMT_WORKERS`) and scheduler; nothing when that is 0.
pub fn start(state: &AppState) -> Tasks {
    match state.config.jobs.workers {
        0 => Tasks::default(),
        count => Workers::new(state.clone()).spawn(count).and(spawn_scheduler(state.clone(), schedules())),
    }
}

/// Background tasks that stop together. Dropping this stops them claiming new work.
#[derive(Default)]
pub struct Tasks {
    stops: Vec<watch::Sender<bool>>,
    tasks: Vec<JoinHandle<()>>,
}

impl Tasks {
    fn spawn<F>(count: usize, task: impl Fn(watch::Receiver<bool>) -> F) -> Self
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let (stop, stopped) = watch::channel(false);
        let tasks = (0..count).map(|_| tokio::spawn(task(stopped.clone()))).collect();
        Self { stops: vec![stop], tasks }
    }

    pub fn and(mut self, other: Tasks) -> Self {
        self.stops.extend(other.stops);
        self.tasks.extend(other.tasks);
        self
    }

    /// Stops claiming and scheduling; jobs in progress go on.
    pub fn stop(&self) {
        for stop in &self.stops {
            let _ = stop.send(true);
        }
    }

    /// Stops, and gives jobs in progress `grace` to end; one that does not is abandoned, and
    /// another worker takes it up once its lease lapses.
    pub async fn shutdown(mut self, grace: Duration) {
        self.stop();
        let all = futures_util::future::join_all(self.tasks.iter_mut());
        if tokio::time::timeout(grace, all).await.is_err() {
            self.abort();
        }
    }

    /// Stops at once, as if the process died: jobs in progress are left for their leases to lapse.
    pub fn abort(self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}
