//! `mmt_jobs` and `mmt_job_schedules`. Times come from the database's UTC clock, so replicas with
//! skewed clocks agree on what is due and on whose lease has lapsed. A claim's later writes all
//! name its lease owner, so a worker whose job was taken over cannot write over the new run.

use std::time::Duration;

use chrono::NaiveDateTime;
use sqlx::{Acquire, MySql, MySqlConnection, MySqlPool, Transaction};

use crate::{domain::job::JobState, storage::StorageError};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct JobRow {
    pub id: Vec<u8>,
    pub kind: String,
    pub payload: String,
    pub state: String,
    pub attempts: u32,
    pub max_attempts: u32,
    pub run_at: NaiveDateTime,
    pub cancel_requested: bool,
    pub progress: u8,
    pub progress_message: String,
    pub result: Option<String>,
    pub error: Option<String>,
    pub queued_by: Option<i64>,
    pub patient_id: Option<i64>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub finished_at: Option<NaiveDateTime>,
}

impl JobRow {
    pub fn state(&self) -> JobState {
        JobState::parse(&self.state).unwrap_or(JobState::Queued)
    }
}

const COLUMNS: &str = "id, kind, payload, CAST(state AS CHAR) AS state, attempts, max_attempts, run_at, \
     cancel_requested, progress, progress_message, result, error, queued_by, patient_id, created_at, updated_at, \
     finished_at";

pub struct NewJobRow<'a> {
    pub id: [u8; 16],
    pub kind: &'a str,
    pub payload: &'a str,
    pub max_attempts: u32,
    pub queued_by: Option<i64>,
    pub patient_id: Option<i64>,
}

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

pub async fn insert(conn: &mut MySqlConnection, job: &NewJobRow<'_>) -> Result<(), StorageError> {
    sqlx::query(
        "INSERT INTO mmt_jobs (id, kind, payload, state, max_attempts, run_at, queued_by, patient_id, created_at, \
         updated_at) VALUES (?, ?, ?, 'queued', ?, UTC_TIMESTAMP(3), ?, ?, UTC_TIMESTAMP(3), UTC_TIMESTAMP(3))",
    )
    .bind(&job.id[..])
    .bind(job.kind)
    .bind(job.payload)
    .bind(job.max_attempts)
    .bind(job.queued_by)
    .bind(job.patient_id)
    .execute(conn)
    .await
    .map(|_| ())
    .map_err(StorageError::from_sqlx)
}

pub async fn get(pool: &MySqlPool, id: &[u8; 16]) -> Result<Option<JobRow>, StorageError> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM mmt_jobs WHERE id = ?")))
        .bind(&id[..])
        .fetch_optional(pool)
        .await
        .map_err(StorageError::from_sqlx)
}

pub async fn lock(conn: &mut MySqlConnection, id: &[u8; 16]) -> Result<Option<JobRow>, StorageError> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM mmt_jobs WHERE id = ? FOR UPDATE")))
        .bind(&id[..])
        .fetch_optional(conn)
        .await
        .map_err(StorageError::from_sqlx)
}

/// READ COMMITTED, so a claim locks the row it takes and no gaps that enqueues would wait on.
pub async fn begin_claim(conn: &mut MySqlConnection) -> Result<Transaction<'_, MySql>, StorageError> {
    sqlx::query("SET TRANSACTION ISOLATION LEVEL READ COMMITTED")
        .execute(&mut *conn)
        .await
        .map_err(StorageError::from_sqlx)?;
    conn.begin().await.map_err(StorageError::from_sqlx)
}

/// A running job whose worker stopped renewing its lease (it died), or a queued job that is due.
const CLAIMABLE: &str = "((state = 'running' AND lease_expires_at < UTC_TIMESTAMP(3)) \
     OR (state = 'queued' AND run_at <= UTC_TIMESTAMP(3)))";

async fn lock_first(conn: &mut MySqlConnection, condition: &str) -> Result<Option<JobRow>, StorageError> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM mmt_jobs WHERE {condition} LIMIT 1 FOR UPDATE SKIP LOCKED"
    )))
    .fetch_optional(conn)
    .await
    .map_err(StorageError::from_sqlx)
}

/// Locks a running job whose lease lapsed, skipping those other workers are taking.
pub async fn lock_lapsed(conn: &mut MySqlConnection) -> Result<Option<JobRow>, StorageError> {
    lock_first(conn, "state = 'running' AND lease_expires_at < UTC_TIMESTAMP(3) ORDER BY lease_expires_at")
        .await
}

/// Locks the queued job due longest ago, skipping those other workers are taking.
pub async fn lock_due(conn: &mut MySqlConnection) -> Result<Option<JobRow>, StorageError> {
    lock_first(conn, "state = 'queued' AND run_at <= UTC_TIMESTAMP(3) ORDER BY run_at").await
}

/// Claims a job locked by this transaction; `false` if it is no longer claimable, which the
/// update itself checks on the newest version of the row.
pub async fn mark_running(
    conn: &mut MySqlConnection,
    id: &[u8],
    owner: &[u8; 16],
    lease: Duration,
) -> Result<bool, StorageError> {
    let done = sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE mmt_jobs SET state = 'running', attempts = attempts + 1, lease_owner = ?, \
         lease_expires_at = UTC_TIMESTAMP(3) + INTERVAL ? MICROSECOND, updated_at = UTC_TIMESTAMP(3) \
         WHERE id = ? AND {CLAIMABLE}"
    )))
    .bind(&owner[..])
    .bind(micros(lease))
    .bind(id)
    .execute(conn)
    .await
    .map_err(StorageError::from_sqlx)?;
    Ok(done.rows_affected() == 1)
}

/// Extends the lease; `false` when this claim no longer owns the job.
pub async fn heartbeat(
    pool: &MySqlPool,
    id: &[u8],
    owner: &[u8; 16],
    lease: Duration,
) -> Result<bool, StorageError> {
    let done = sqlx::query(
        "UPDATE mmt_jobs SET lease_expires_at = UTC_TIMESTAMP(3) + INTERVAL ? MICROSECOND \
         WHERE id = ? AND state = 'running' AND lease_owner = ?",
    )
    .bind(micros(lease))
    .bind(id)
    .bind(&owner[..])
    .execute(pool)
    .await
    .map_err(StorageError::from_sqlx)?;
    Ok(done.rows_affected() == 1)
}

pub async fn set_progress(
    pool: &MySqlPool,
    id: &[u8],
    owner: &[u8; 16],
    percent: u8,
    message: &str,
) -> Result<bool, StorageError> {
    let done = sqlx::query(
        "UPDATE mmt_jobs SET progress = ?, progress_message = ?, updated_at = UTC_TIMESTAMP(3) \
         WHERE id = ? AND state = 'running' AND lease_owner = ?",
    )
    .bind(percent)
    .bind(message)
    .bind(id)
    .bind(&owner[..])
    .execute(pool)
    .await
    .map_err(StorageError::from_sqlx)?;
    Ok(done.rows_affected() == 1)
}

pub async fn cancel_requested(pool: &MySqlPool, id: &[u8]) -> Result<bool, StorageError> {
    let requested: Option<bool> = sqlx::query_scalar("SELECT cancel_requested FROM mmt_jobs WHERE id = ?")
        .bind(id)
        .fetch_optional(pool)
        .await
        .map_err(StorageError::from_sqlx)?;
    Ok(requested.unwrap_or(false))
}

/// Ends a claim in a final state; `false` when this claim no longer owns the job, which is then
/// another worker's to settle.
pub async fn finish(
    pool: &MySqlPool,
    id: &[u8],
    owner: &[u8; 16],
    state: JobState,
    result: Option<&str>,
    error: Option<&str>,
) -> Result<bool, StorageError> {
    let done = sqlx::query(
        "UPDATE mmt_jobs SET state = ?, result = ?, error = ?, progress = IF(?, 100, progress), \
         lease_owner = NULL, lease_expires_at = NULL, finished_at = UTC_TIMESTAMP(3), \
         updated_at = UTC_TIMESTAMP(3) WHERE id = ? AND state = 'running' AND lease_owner = ?",
    )
    .bind(state.as_str())
    .bind(result)
    .bind(error)
    .bind(state == JobState::Succeeded)
    .bind(id)
    .bind(&owner[..])
    .execute(pool)
    .await
    .map_err(StorageError::from_sqlx)?;
    Ok(done.rows_affected() == 1)
}

/// Puts a failed claim back in the queue, due after `retry_in`; `false` as for [`finish`].
pub async fn requeue(
    pool: &MySqlPool,
    id: &[u8],
    owner: &[u8; 16],
    retry_in: Duration,
    error: &str,
) -> Result<bool, StorageError> {
    let done = sqlx::query(
        "UPDATE mmt_jobs SET state = 'queued', error = ?, run_at = UTC_TIMESTAMP(3) + INTERVAL ? MICROSECOND, \
         lease_owner = NULL, lease_expires_at = NULL, updated_at = UTC_TIMESTAMP(3) \
         WHERE id = ? AND state = 'running' AND lease_owner = ?",
    )
    .bind(error)
    .bind(micros(retry_in))
    .bind(id)
    .bind(&owner[..])
    .execute(pool)
    .await
    .map_err(StorageError::from_sqlx)?;
    Ok(done.rows_affected() == 1)
}

/// Fails a job locked by this transaction whose lease lapsed.
pub async fn fail_lapsed(conn: &mut MySqlConnection, id: &[u8], error: &str) -> Result<bool, StorageError> {
    let done = sqlx::query(
        "UPDATE mmt_jobs SET state = 'failed', error = ?, lease_owner = NULL, lease_expires_at = NULL, \
         finished_at = UTC_TIMESTAMP(3), updated_at = UTC_TIMESTAMP(3) \
         WHERE id = ? AND state = 'running' AND lease_expires_at < UTC_TIMESTAMP(3)",
    )
    .bind(error)
    .bind(id)
    .execute(conn)
    .await
    .map_err(StorageError::from_sqlx)?;
    Ok(done.rows_affected() == 1)
}

pub async fn cancel_queued(conn: &mut MySqlConnection, id: &[u8]) -> Result<(), StorageError> {
    sqlx::query(
        "UPDATE mmt_jobs SET state = 'cancelled', finished_at = UTC_TIMESTAMP(3), updated_at = UTC_TIMESTAMP(3) \
         WHERE id = ? AND state = 'queued'",
    )
    .bind(id)
    .execute(conn)
    .await
    .map(|_| ())
    .map_err(StorageError::from_sqlx)
}

pub async fn request_cancel(conn: &mut MySqlConnection, id: &[u8]) -> Result<(), StorageError> {
    sqlx::query(
        "UPDATE mmt_jobs SET cancel_requested = TRUE, updated_at = UTC_TIMESTAMP(3) WHERE id = ? AND state = 'running'",
    )
    .bind(id)
    .execute(conn)
    .await
    .map(|_| ())
    .map_err(StorageError::from_sqlx)
}

pub async fn purge_finished(pool: &MySqlPool, older_than: Duration) -> Result<u64, StorageError> {
    let done = sqlx::query(
        "DELETE FROM mmt_jobs WHERE finished_at < UTC_TIMESTAMP(3) - INTERVAL ? MICROSECOND LIMIT 10000",
    )
    .bind(micros(older_than))
    .execute(pool)
    .await
    .map_err(StorageError::from_sqlx)?;
    Ok(done.rows_affected())
}

/// Adds the schedule, due at once, or updates its period (keeping when it is next due).
pub async fn register_schedule(pool: &MySqlPool, name: &str, every: Duration) -> Result<(), StorageError> {
    sqlx::query(
        "INSERT INTO mmt_job_schedules (name, every_secs, next_run_at) VALUES (?, ?, UTC_TIMESTAMP(3)) \
         ON DUPLICATE KEY UPDATE every_secs = VALUES(every_secs)",
    )
    .bind(name)
    .bind(every.as_secs().max(1))
    .execute(pool)
    .await
    .map(|_| ())
    .map_err(StorageError::from_sqlx)
}

/// Takes the current period of a due schedule; `true` for exactly one caller across replicas.
/// The next period follows on from this one, or from now after a gap, so missed periods do not
/// run in a burst.
pub async fn claim_period(conn: &mut MySqlConnection, name: &str) -> Result<bool, StorageError> {
    let done = sqlx::query(
        "UPDATE mmt_job_schedules SET next_run_at = IF(next_run_at + INTERVAL every_secs SECOND > UTC_TIMESTAMP(3), \
         next_run_at + INTERVAL every_secs SECOND, UTC_TIMESTAMP(3) + INTERVAL every_secs SECOND) \
         WHERE name = ? AND next_run_at <= UTC_TIMESTAMP(3)",
    )
    .bind(name)
    .execute(conn)
    .await
    .map_err(StorageError::from_sqlx)?;
    Ok(done.rows_affected() == 1)
}
