//! Background job throughput. Starts a private MariaDB (scripts/db.sh) on a free port, applies the
//! sidecar's migrations, and builds two replicas in this process (each its own pool and state),
//! each running BENCH_WORKERS workers whose handler does nothing. First BENCH_JOBS jobs are
//! enqueued (transactions of 500) and the workers started; the time from their start until every
//! job is `succeeded` in the database gives jobs per second, and every job must have run exactly
//! once. Then BENCH_SINGLE jobs one at a time: the time from enqueue (with the local wake-up) to
//! the handler starting. Everything it starts it stops.
//!
//!   cargo bench --bench job_queue
//!
//! BENCH_JOBS (default 20000), BENCH_WORKERS (4 per replica), BENCH_SINGLE (200). BENCH_KEEP_DIR
//! keeps the MariaDB data directory.

#[path = "support/mod.rs"]
mod support;

use std::{
    collections::HashSet,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use mmt_sidecar::{
    app::AppState,
    config::Config,
    domain::job::{JobId, JobKind},
    service::jobs::{self, JobContext, NewJob, Workers},
    storage::{lazy_pool, mmt::migrations},
};
use sqlx::mysql::MySqlConnectOptions;
use support::{Guard, free_ports, machine, sql};
use tokio::sync::mpsc;

fn env_count(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn replica(url: &str) -> AppState {
    let config = Config::from_lookup(|key| match key {
        "DATABASE_URL" => Some(url.to_string()),
        "MMT_MASTER_KEY" => Some(support::MASTER_KEY.to_string()),
        _ => None,
    })
    .expect("bench configuration is valid");
    let options: MySqlConnectOptions = url.parse().unwrap();
    AppState::new(lazy_pool(options.timezone(None), config.db_acquire_timeout, config.db_pool_size), config)
}

/// A no-op handler that reports each job it starts.
fn reporting(
    started: mpsc::UnboundedSender<JobId>,
) -> impl Fn(JobContext) -> std::future::Ready<jobs::JobOutcome> {
    move |ctx| {
        let _ = started.send(ctx.id());
        std::future::ready(Ok(None))
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[tokio::main]
async fn main() {
    let (total, per_replica, single) =
        (env_count("BENCH_JOBS", 20_000), env_count("BENCH_WORKERS", 4), env_count("BENCH_SINGLE", 200));
    let [port] = free_ports::<1>();
    let mut guard = Guard::new("mmt-bench-jobs");
    guard.start_db(port);
    let url = format!("mysql://mmt:mmt@127.0.0.1:{port}/openemr");
    let replicas = [replica(&url), replica(&url)];
    migrations::run(&replicas[0].pool).await.expect("migrations apply");
    println!("machine: {}", machine());

    let enqueue_started = Instant::now();
    let mut enqueued = HashSet::with_capacity(total);
    for chunk in (0..total).collect::<Vec<_>>().chunks(500) {
        let mut tx = replicas[0].pool.begin().await.unwrap();
        for n in chunk {
            let job = NewJob::new(JobKind::Housekeeping, serde_json::json!({ "n": n }));
            enqueued.insert(jobs::enqueue(&mut tx, job).await.unwrap());
        }
        tx.commit().await.unwrap();
    }
    let enqueue_secs = enqueue_started.elapsed().as_secs_f64();
    println!(
        "enqueued {total} jobs in {enqueue_secs:.2} s ({:.0} per second, 500 per transaction)",
        total as f64 / enqueue_secs
    );

    let (started_tx, mut started) = mpsc::unbounded_channel();
    let runs = Arc::new(Mutex::new(Vec::with_capacity(total)));
    let collector = {
        let runs = runs.clone();
        tokio::spawn(async move {
            while let Some(id) = started.recv().await {
                runs.lock().unwrap().push(id);
            }
        })
    };
    let began = Instant::now();
    let pools: Vec<_> = replicas
        .iter()
        .map(|state| {
            Workers::new(state.clone())
                .with_handler(JobKind::Housekeeping, reporting(started_tx.clone()))
                .spawn(per_replica)
        })
        .collect();
    let counter = &replicas[1].pool;
    loop {
        let done: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM mmt_jobs WHERE state = 'succeeded'")
            .fetch_one(counter)
            .await
            .unwrap();
        if done as usize >= total {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let secs = began.elapsed().as_secs_f64();
    let ran: Vec<JobId> = runs.lock().unwrap().drain(..).collect();
    let distinct: HashSet<JobId> = ran.iter().copied().collect();
    println!(
        "2 replicas x {per_replica} workers: {total} no-op jobs succeeded in {secs:.2} s = {:.0} jobs per second; \
         handler runs {}, distinct {}, all enqueued ran: {}",
        total as f64 / secs,
        ran.len(),
        distinct.len(),
        distinct == enqueued
    );
    assert_eq!(ran.len(), total, "a job ran twice or not at all");

    let (single_tx, mut single_started) = mpsc::unbounded_channel();
    let pools: Vec<_> = pools
        .into_iter()
        .zip(&replicas)
        .map(|(pool, state)| {
            pool.abort();
            Workers::new(state.clone())
                .with_handler(JobKind::Housekeeping, reporting(single_tx.clone()))
                .spawn(per_replica)
        })
        .collect();
    let mut latencies = Vec::with_capacity(single);
    for _ in 0..single {
        let at = Instant::now();
        let id = jobs::submit(&replicas[0], NewJob::new(JobKind::Housekeeping, serde_json::json!({})))
            .await
            .unwrap();
        assert_eq!(single_started.recv().await, Some(id));
        latencies.push(at.elapsed());
    }
    latencies.sort();
    println!(
        "one job at a time ({single}): enqueue to handler start p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        percentile(&latencies, 0.5).as_secs_f64() * 1000.0,
        percentile(&latencies, 0.99).as_secs_f64() * 1000.0,
        latencies[latencies.len() - 1].as_secs_f64() * 1000.0
    );
    for pool in pools {
        pool.shutdown(Duration::from_secs(5)).await;
    }
    drop(started_tx);
    collector.abort();
    let attempts = sql(&guard.dir, "SELECT MAX(attempts) FROM mmt_jobs");
    println!("largest attempts on any job: {attempts}");
}
