use std::{sync::Arc, time::Duration};

use sqlx::MySqlPool;

use crate::{
    app::AppState,
    domain::{compatibility, migration_state::MigrationState, openemr_version::OpenEmrVersion},
    service::cached::Cached,
    storage::{StorageError, mmt::migrations, openemr},
};

/// Health is checked this often in the background, and a request never waits on the database.
pub const HEALTH_EVERY: Duration = Duration::from_secs(1);
/// One check may take this long before it counts as a failure.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(2);

/// The last health check's outcome.
pub type Snapshot = Result<Status, StorageError>;

pub fn health_cache() -> Cached<Snapshot> {
    Cached::new("health")
}

async fn check_health(pool: MySqlPool) -> Result<Snapshot, StorageError> {
    let checked = tokio::time::timeout(HEALTH_TIMEOUT, health(&pool)).await.unwrap_or_else(|_| {
        Err(StorageError::Unavailable("the database did not answer the health check in time".into()))
    });
    if let Err(err) = &checked {
        tracing::warn!(error = %err, "health check failed");
    }
    Ok(checked)
}

/// A request starts a check itself only when the background one is this late (or, outside
/// `launch`, not running), so with the ticker each check runs once.
const READ_REFRESH_AFTER: Duration = Duration::from_secs(2 * HEALTH_EVERY.as_secs());

/// The latest health check and how long ago it finished (a request with no check yet runs one).
pub async fn latest_health(state: &AppState) -> (Arc<Snapshot>, Duration) {
    let pool = state.pool.clone();
    match state.health.get_aged(READ_REFRESH_AFTER, || check_health(pool)).await {
        Ok(found) => found,
        Err(err) => (Arc::new(Err(err)), Duration::ZERO),
    }
}

/// Checks health every [`HEALTH_EVERY`] for as long as the server runs.
pub async fn keep_health_fresh(state: AppState) {
    let mut every = tokio::time::interval(HEALTH_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        let _ = state.health.fill(check_health(state.pool.clone())).await;
    }
}

/// What health and `check` report: the OpenEMR version, the migration state and what is wrong.
#[derive(Debug)]
pub struct Status {
    pub openemr_version: Option<OpenEmrVersion>,
    pub migrations: MigrationState,
    pub problems: Vec<String>,
}

pub async fn health(pool: &MySqlPool) -> Result<Status, StorageError> {
    let openemr_version = openemr::version::read(pool).await?;
    assemble(pool, openemr_version, Vec::new()).await
}

/// Health plus a column-by-column comparison of every OpenEMR table the sidecar uses, and of the
/// PHP session table when that is the session source.
pub async fn check(state: &AppState) -> Result<Status, StorageError> {
    let pool = &state.pool;
    let live = openemr::columns::live_columns(pool).await?;
    let mut schema_problems = compatibility::problems(openemr::requirements::REQUIRED, &live);
    let version_readable = !schema_problems.iter().any(|p| p.contains("`version"));
    let openemr_version = if version_readable { openemr::version::read(pool).await? } else { None };
    if let Some(sessions) = &state.sessions {
        schema_problems.extend(sessions.problems().await);
    }
    assemble(pool, openemr_version, schema_problems).await
}

async fn assemble(
    pool: &MySqlPool,
    openemr_version: Option<OpenEmrVersion>,
    mut problems: Vec<String>,
) -> Result<Status, StorageError> {
    let migrations = migrations::state(pool).await?;
    match &openemr_version {
        None => problems.push("no OpenEMR version could be read from the `version` table".to_string()),
        Some(v) => problems.extend(v.problem()),
    }
    problems.extend(migrations.problem());
    Ok(Status { openemr_version, migrations, problems })
}
