use std::{
    collections::HashSet,
    process::{Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use mmt_sidecar::{
    app::AppState,
    domain::{
        job::{JobId, JobKind},
        user::UserId,
    },
    service::jobs::{self, JobContext, JobFailure, JobOutcome, NewJob, Schedule, Workers},
    storage::{self, mmt::jobs::JobRow},
};
use poem::http::StatusCode;
use serde_json::{Value, json};
use sqlx::mysql::MySqlConnectOptions;

use crate::{
    auth::{ADMIN, tokens},
    helpers::{TestDb, binary, test_pool},
};

const GARCIA: (&str, &str) = ("drgarcia", "Physician-Garcia-2");
const NURSE: (&str, &str) = ("nkim", "Clinician-Kim-4");

/// Quick polling, a short lease and short backoff, so each test takes seconds.
const FAST: &[(&str, &str)] =
    &[("MMT_JOB_POLL_MS", "20"), ("MMT_JOB_LEASE_SECS", "1"), ("MMT_JOB_BACKOFF_MS", "100")];

/// A replica: its own pool and state on the shared database.
fn replica(db: &TestDb, extra: &[(&str, &str)]) -> AppState {
    let options: MySqlConnectOptions = db.url.parse().unwrap();
    AppState::new(test_pool(options), TestDb::config_for(&db.url, extra))
}

async fn submit(state: &AppState, job: NewJob) -> JobId {
    jobs::submit(state, job).await.unwrap()
}

async fn row(db: &TestDb, id: JobId) -> JobRow {
    storage::mmt::jobs::get(&db.pool, &id.0).await.unwrap().expect("the job exists")
}

async fn wait_until(db: &TestDb, id: JobId, what: &str, done: impl Fn(&JobRow) -> bool) -> JobRow {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let job = row(db, id).await;
        if done(&job) {
            return job;
        }
        assert!(Instant::now() < deadline, "job {id} not {what} after 20 s: {job:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn finished(db: &TestDb, id: JobId) -> JobRow {
    wait_until(db, id, "finished", |j| j.finished_at.is_some()).await
}

type Runs = Arc<Mutex<Vec<(JobId, Instant)>>>;

/// A handler that notes each run and then answers as `outcome` says.
fn recording(
    runs: &Runs,
    outcome: fn(&JobContext) -> JobOutcome,
) -> impl Fn(JobContext) -> futures_util::future::BoxFuture<'static, JobOutcome> + Send + Sync + 'static {
    let runs = runs.clone();
    move |ctx| {
        runs.lock().unwrap().push((ctx.id(), Instant::now()));
        let answer = outcome(&ctx);
        Box::pin(async move { answer })
    }
}

fn ran(runs: &Runs) -> Vec<JobId> {
    runs.lock().unwrap().iter().map(|(id, _)| *id).collect()
}

#[tokio::test]
async fn an_enqueued_job_runs_reports_progress_and_succeeds() {
    let db = TestDb::migrated().await;
    let state = replica(&db, FAST);
    let workers = Workers::new(state.clone())
        .with_handler(JobKind::Housekeeping, |ctx: JobContext| async move {
            ctx.progress(40, "sweeping").await?;
            let row = row_of(&ctx).await;
            Ok(Some(json!({ "seen_progress": row.progress, "message": row.progress_message, "attempt": ctx.attempt() })))
        })
        .spawn(2);
    let id = submit(&state, NewJob::new(JobKind::Housekeeping, json!({}))).await;
    let job = finished(&db, id).await;
    workers.shutdown(Duration::from_secs(5)).await;

    assert_eq!(job.state, "succeeded", "{job:?}");
    assert_eq!((job.attempts, job.max_attempts, job.progress), (1, 3, 100));
    let result: Value = serde_json::from_str(job.result.as_deref().unwrap()).unwrap();
    assert_eq!(result, json!({ "seen_progress": 40, "message": "sweeping", "attempt": 1 }));
    assert_eq!(job.error, None);
    assert!(job.finished_at.unwrap() >= job.created_at);
}

async fn row_of(ctx: &JobContext) -> JobRow {
    storage::mmt::jobs::get(&ctx.state().pool, &ctx.id().0).await.unwrap().unwrap()
}

#[tokio::test]
async fn two_replicas_with_four_workers_each_never_run_a_job_twice() {
    let db = TestDb::migrated().await;
    let settings = [("MMT_JOB_POLL_MS", "20")];
    let (a, b) = (replica(&db, &settings), replica(&db, &settings));
    let runs = Runs::default();
    let mut ids = HashSet::new();
    let mut tx = db.pool.begin().await.unwrap();
    for n in 0..300 {
        ids.insert(
            jobs::enqueue(&mut tx, NewJob::new(JobKind::Housekeeping, json!({ "n": n }))).await.unwrap(),
        );
    }
    tx.commit().await.unwrap();
    let pools = [a, b].map(|state| {
        Workers::new(state).with_handler(JobKind::Housekeeping, recording(&runs, |_| Ok(None))).spawn(4)
    });

    let deadline = Instant::now() + Duration::from_secs(30);
    while db.scalar("SELECT COUNT(*) FROM mmt_jobs WHERE state = 'succeeded'").await < 300 {
        assert!(Instant::now() < deadline, "not all jobs ran within 30 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for pool in pools {
        pool.shutdown(Duration::from_secs(5)).await;
    }
    let ran = ran(&runs);
    assert_eq!(ran.len(), 300, "every job ran exactly once");
    assert_eq!(ran.into_iter().collect::<HashSet<_>>(), ids);
    assert_eq!(db.scalar("SELECT CAST(MAX(attempts) AS SIGNED) FROM mmt_jobs").await, 1);
}

#[tokio::test]
async fn a_failing_job_retries_with_growing_backoff_then_fails_and_a_poisoned_one_fails_at_once() {
    let db = TestDb::migrated().await;
    let state = replica(&db, FAST);
    let runs = Runs::default();
    let workers = Workers::new(state.clone())
        .with_handler(
            JobKind::Housekeeping,
            recording(&runs, |ctx| {
                Err(if ctx.payload()["poisoned"] == true {
                    JobFailure::Permanent("payload names no subscriber".into())
                } else {
                    JobFailure::Transient("upstream answered HTTP 503".into())
                })
            }),
        )
        .spawn(2);
    let flaky = submit(&state, NewJob::new(JobKind::Housekeeping, json!({}))).await;
    let poisoned = submit(&state, NewJob::new(JobKind::Housekeeping, json!({ "poisoned": true }))).await;
    let (flaky_job, poisoned_job) = (finished(&db, flaky).await, finished(&db, poisoned).await);
    workers.shutdown(Duration::from_secs(5)).await;

    assert_eq!(flaky_job.state, "failed");
    assert_eq!((flaky_job.attempts, flaky_job.max_attempts), (3, 3));
    assert_eq!(flaky_job.error.as_deref(), Some("upstream answered HTTP 503"));
    let times: Vec<Instant> =
        runs.lock().unwrap().iter().filter(|(id, _)| *id == flaky).map(|(_, at)| *at).collect();
    assert_eq!(times.len(), 3, "three attempts, then no more");
    let (first_wait, second_wait) = (times[1] - times[0], times[2] - times[1]);
    assert!(first_wait >= Duration::from_millis(90), "{first_wait:?}");
    assert!(second_wait >= Duration::from_millis(190), "{second_wait:?}");
    assert!(second_wait > first_wait, "backoff grows: {first_wait:?} then {second_wait:?}");

    assert_eq!(poisoned_job.state, "failed");
    assert_eq!(poisoned_job.attempts, 1, "a permanent failure is not retried");
    assert_eq!(poisoned_job.error.as_deref(), Some("payload names no subscriber"));

    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(runs.lock().unwrap().len(), 4, "finished jobs never run again");
}

#[tokio::test]
async fn a_job_whose_worker_died_mid_run_is_taken_up_after_its_lease_and_completes_once() {
    let db = TestDb::migrated().await;
    let (first, second) = (replica(&db, FAST), replica(&db, FAST));
    let started = Arc::new(tokio::sync::Notify::new());
    let abandoned = Arc::new(Mutex::new(false));
    let dying = {
        let (started, abandoned) = (started.clone(), abandoned.clone());
        Workers::new(first.clone())
            .with_handler(JobKind::Housekeeping, move |_ctx| {
                let (started, abandoned) = (started.clone(), abandoned.clone());
                async move {
                    let _dropped = DropFlag(abandoned);
                    started.notify_one();
                    std::future::pending::<JobOutcome>().await
                }
            })
            .spawn(1)
    };
    let id = submit(&first, NewJob::new(JobKind::Housekeeping, json!({}))).await;
    tokio::time::timeout(Duration::from_secs(10), started.notified())
        .await
        .expect("the first worker starts it");
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(row(&db, id).await.state, "running", "the heartbeat keeps the lease past its first second");

    dying.abort();
    let died = Instant::now();
    let runs = Runs::default();
    let survivor = Workers::new(second)
        .with_handler(JobKind::Housekeeping, recording(&runs, |_| Ok(Some(json!("done")))))
        .spawn(2);
    let job = finished(&db, id).await;
    let taken_up_after = runs.lock().unwrap()[0].1 - died;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    survivor.shutdown(Duration::from_secs(5)).await;

    assert!(*abandoned.lock().unwrap(), "the dead worker's handler stopped with it");
    assert!(taken_up_after >= Duration::from_millis(500), "not before the lease lapsed: {taken_up_after:?}");
    assert_eq!(ran(&runs), vec![id], "completed once");
    let job_now = row(&db, id).await;
    assert_eq!((job_now.state.as_str(), job_now.attempts), ("succeeded", 2));
    assert_eq!(job_now.finished_at, job.finished_at, "finished once");
}

struct DropFlag(Arc<Mutex<bool>>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        *self.0.lock().unwrap() = true;
    }
}

#[tokio::test]
async fn a_scheduled_job_is_enqueued_once_per_period_across_three_replicas() {
    let db = TestDb::migrated().await;
    let every_second = vec![Schedule { kind: JobKind::Housekeeping, every: Duration::from_secs(1) }];
    let schedulers: Vec<_> =
        (0..3).map(|_| jobs::spawn_scheduler(replica(&db, FAST), every_second.clone())).collect();
    tokio::time::sleep(Duration::from_millis(3500)).await;
    for s in schedulers {
        s.shutdown(Duration::from_secs(5)).await;
    }
    let created: Vec<chrono::NaiveDateTime> =
        sqlx::query_scalar("SELECT created_at FROM mmt_jobs WHERE kind = 'housekeeping' ORDER BY created_at")
            .fetch_all(&db.pool)
            .await
            .unwrap();
    assert!(
        (3..=4).contains(&created.len()),
        "one per period over 3.5 periods, not per replica: {created:?}"
    );
    // Periods follow a fixed cadence, so a claim made late on a busy machine may be followed by an
    // on-time one less than a period later; claims of one period by several replicas would be
    // milliseconds apart.
    for pair in created.windows(2) {
        assert!(pair[1] - pair[0] >= chrono::Duration::milliseconds(500), "{created:?}");
    }
    assert_eq!(db.scalar("SELECT COUNT(*) FROM mmt_job_schedules").await, 1);
}

#[tokio::test]
async fn the_sidecars_own_workers_run_housekeeping_and_fail_kinds_they_do_not_know() {
    let db = TestDb::migrated().await;
    let state = replica(&db, FAST);
    let housekeeping = submit(&state, NewJob::new(JobKind::Housekeeping, json!({}))).await;
    let newer = submit(&state, NewJob::new(JobKind::Housekeeping, json!({}))).await;
    // As a newer version of the sidecar, with a kind this one lacks, might have queued it.
    sqlx::query("UPDATE mmt_jobs SET kind = 'ocr.page' WHERE id = ?")
        .bind(&newer.0[..])
        .execute(&db.pool)
        .await
        .unwrap();
    let workers = Workers::new(state.clone()).spawn(1);
    let (housekeeping, newer) = (finished(&db, housekeeping).await, finished(&db, newer).await);
    workers.shutdown(Duration::from_secs(5)).await;

    assert_eq!(housekeeping.state, "succeeded", "{housekeeping:?}");
    let result: Value = serde_json::from_str(housekeeping.result.as_deref().unwrap()).unwrap();
    assert_eq!(result, json!({ "tokens": 0, "login_failures": 0, "jobs": 0, "fhir_exports": 0 }));
    assert_eq!((newer.state.as_str(), newer.attempts), ("failed", 1));
    assert_eq!(newer.error.as_deref(), Some("no handler for job kind `ocr.page` on this replica"));
}

async fn user_id(db: &TestDb, username: &str) -> i64 {
    db.scalar(&format!("SELECT id FROM users WHERE username = '{username}'")).await
}

async fn call(db: &TestDb, method: &str, path: &str, token: &str) -> (StatusCode, Value) {
    let client = db.client();
    let resp = client
        .request(poem::http::Method::from_bytes(method.as_bytes()).unwrap(), path)
        .header("authorization", format!("Bearer {token}"))
        .send()
        .await;
    let status = resp.0.status();
    let text = resp.0.into_body().into_string().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

#[tokio::test]
async fn the_user_who_queued_a_job_or_an_administrator_may_read_and_cancel_it() {
    let db = TestDb::migrated().await;
    let state = db.state();
    let garcia = user_id(&db, "drgarcia").await;
    let mut job = NewJob::new(JobKind::WebhookDeliver, json!({}));
    job.queued_by = Some(UserId(garcia));
    let id = submit(&state, job).await;
    let path = format!("/api/jobs/{id}/");
    let (owner, _) = tokens(&db, GARCIA).await;
    let (admin, _) = tokens(&db, ADMIN).await;
    let (nurse, _) = tokens(&db, NURSE).await;

    let (status, body) = call(&db, "GET", &path, &owner).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["id"], id.to_string());
    assert_eq!((body["kind"].as_str(), body["state"].as_str()), (Some("webhook.deliver"), Some("queued")));
    assert_eq!((body["progress"].as_u64(), body["attempts"].as_u64()), (Some(0), Some(0)));
    assert_eq!(body["queued_by"], garcia);
    let created = chrono::DateTime::parse_from_rfc3339(body["created_at"].as_str().unwrap()).unwrap();
    assert_eq!(created.offset().local_minus_utc(), 0, "times are UTC: {body}");
    assert_eq!(call(&db, "GET", &path, &admin).await.0, StatusCode::OK);
    assert_eq!(call(&db, "GET", &path, &nurse).await.0, StatusCode::FORBIDDEN);
    assert_eq!(call(&db, "POST", &format!("{path}cancel/"), &nurse).await.0, StatusCode::FORBIDDEN);
    assert_eq!(db.client().get(&path).send().await.0.status(), StatusCode::UNAUTHORIZED);

    let unknown = format!("/api/jobs/{}/", JobId::generate());
    assert_eq!(call(&db, "GET", &unknown, &admin).await.0, StatusCode::NOT_FOUND);
    assert_eq!(call(&db, "POST", &format!("{unknown}cancel/"), &admin).await.0, StatusCode::NOT_FOUND);
    assert_eq!(call(&db, "GET", "/api/jobs/not-a-uuid/", &admin).await.0, StatusCode::NOT_FOUND);

    let (status, body) = call(&db, "POST", &format!("{path}cancel/"), &owner).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["state"], "cancelled");
    assert!(body["finished_at"].is_string());
    let (status, body) = call(&db, "POST", &format!("{path}cancel/"), &admin).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("cancelled"), "{body}");

    let scheduled = submit(&state, NewJob::new(JobKind::Housekeeping, json!({}))).await;
    let scheduled_path = format!("/api/jobs/{scheduled}/");
    assert_eq!(call(&db, "GET", &scheduled_path, &owner).await.0, StatusCode::FORBIDDEN);
    let (status, body) = call(&db, "POST", &format!("{scheduled_path}cancel/"), &admin).await;
    assert_eq!((status, body["state"].as_str()), (StatusCode::OK, Some("cancelled")), "{body}");
}

#[tokio::test]
async fn reading_a_job_about_a_patient_is_audited() {
    let db = TestDb::migrated().await;
    let id = submit(&db.state(), NewJob::new(JobKind::WebhookDeliver, json!({})).for_patient(18)).await;
    let (admin, _) = tokens(&db, ADMIN).await;
    let audited = "SELECT COUNT(*) FROM log WHERE category = 'Background Job' AND patient_id = 18";
    assert_eq!(db.scalar(audited).await, 0);
    let (status, body) = call(&db, "GET", &format!("/api/jobs/{id}/"), &admin).await;
    assert_eq!((status, body["patient_id"].as_i64()), (StatusCode::OK, Some(18)));
    assert_eq!(db.scalar(audited).await, 1);
    assert_eq!(call(&db, "POST", &format!("/api/jobs/{id}/cancel/"), &admin).await.0, StatusCode::OK);
    assert_eq!(db.scalar(audited).await, 2);

    let plain = submit(&db.state(), NewJob::new(JobKind::WebhookDeliver, json!({}))).await;
    assert_eq!(call(&db, "GET", &format!("/api/jobs/{plain}/"), &admin).await.0, StatusCode::OK);
    assert_eq!(db.scalar("SELECT COUNT(*) FROM log WHERE category = 'Background Job'").await, 2);
}

#[tokio::test]
async fn cancelling_a_running_job_asks_its_handler_which_ends_it_cancelled() {
    let db = TestDb::migrated().await;
    let state = replica(&db, FAST);
    let workers = Workers::new(state.clone())
        .with_handler(JobKind::Housekeeping, |ctx: JobContext| async move {
            ctx.progress(50, "halfway").await?;
            loop {
                if ctx.cancelled().await? {
                    return Err(JobFailure::Cancelled);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .spawn(1);
    let garcia = user_id(&db, "drgarcia").await;
    let mut job = NewJob::new(JobKind::Housekeeping, json!({}));
    job.queued_by = Some(UserId(garcia));
    let id = submit(&state, job).await;
    wait_until(&db, id, "at 50 %", |j| j.progress == 50).await;
    let (owner, _) = tokens(&db, GARCIA).await;
    let path = format!("/api/jobs/{id}/");

    let (status, body) = call(&db, "GET", &path, &owner).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (body["state"].as_str(), body["progress_message"].as_str()),
        (Some("running"), Some("halfway"))
    );
    let (status, body) = call(&db, "POST", &format!("{path}cancel/"), &owner).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    // The handler checks every 20 ms, so it may have ended the job before this answer was read.
    assert!(matches!(body["state"].as_str(), Some("running" | "cancelled")), "{body}");
    assert_eq!(body["cancel_requested"].as_bool(), Some(true), "{body}");
    let job = finished(&db, id).await;
    workers.shutdown(Duration::from_secs(5)).await;
    assert_eq!((job.state.as_str(), job.attempts), ("cancelled", 1));
}

#[test]
fn the_worker_command_has_help_and_refuses_zero_workers() {
    let out = Command::new(binary()).args(["worker", "--help"]).output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("Usage: mmt-sidecar worker"));
    let out = Command::new(binary())
        .arg("worker")
        .env_clear()
        .env("DATABASE_URL", "mysql://u:p@127.0.0.1:1/db")
        .env("MMT_MASTER_KEY", crate::helpers::TEST_MASTER_KEY)
        .env("MMT_WORKERS", "0")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("MMT_WORKERS is 0"));
}

#[tokio::test]
async fn the_worker_command_runs_scheduled_housekeeping_and_stops_on_sigterm() {
    let db = TestDb::migrated().await;
    let mut child = Command::new(binary())
        .arg("worker")
        .env_clear()
        .envs(db.env())
        .env("MMT_JOB_POLL_MS", "50")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let succeeded = "SELECT COUNT(*) FROM mmt_jobs WHERE kind = 'housekeeping' AND state = 'succeeded'";
    while db.scalar(succeeded).await < 1 {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the worker did not run housekeeping within 20 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(Command::new("kill").arg(child.id().to_string()).status().unwrap().success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the worker did not stop on SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "{status}");
    assert_eq!(db.scalar(succeeded).await, 1, "one period, one run");
}
