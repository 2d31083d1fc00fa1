use sqlx::MySqlPool;

use crate::{
    app::AppState,
    domain::{compatibility, migration_state::MigrationState, openemr_version::OpenEmrVersion},
    storage::{StorageError, mmt::migrations, openemr},
};

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
