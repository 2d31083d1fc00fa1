use std::time::Duration;

use poem::{http::StatusCode, web::Data};
use poem_openapi::{ApiResponse, Object, OpenApi, payload::Json};

use crate::{
    app::AppState,
    domain::acl::{AclLevel, Aco},
    http::ApiTags,
    service::{sign_in, status},
    storage::StorageError,
};

#[derive(Object, Debug)]
#[oai(skip_serializing_if_is_none)]
pub struct Health {
    /// `ok` when the sidecar can serve requests, otherwise `unavailable`.
    pub state: String,
    pub database_reachable: bool,
    /// The OpenEMR release read from the live `version` table.
    #[oai(skip_serializing_if_is_none)]
    pub openemr_version: Option<String>,
    /// OpenEMR's `v_database` schema revision.
    #[oai(skip_serializing_if_is_none)]
    pub openemr_database_revision: Option<i64>,
    /// State of the sidecar's own `mmt_` migrations.
    #[oai(skip_serializing_if_is_none)]
    pub migrations: Option<String>,
    /// Every reason the sidecar is not healthy; empty when it is.
    pub problems: Vec<String>,
    /// Whether read-only guest sign-in is enabled (`MMT_GUEST_LOGIN`).
    pub guest_login: bool,
    /// `multi-replica (Redis)` when live updates reach clients of every replica (`MMT_REDIS_URL`),
    /// otherwise `single-replica`.
    pub live_updates: String,
    /// Where the session bridge reads OpenEMR's PHP sessions: `files`, `redis`, `table` or `none`.
    pub session_source: String,
    /// Where patient searches are answered: `memory` once this replica's in-memory index is built,
    /// `database (in-memory index building)` until then.
    pub patient_search: String,
    /// How long ago the background check behind this answer finished, in milliseconds (it runs
    /// every second; a request never waits on the database).
    pub checked_ms_ago: u64,
}

/// A 503 is a problem document that also carries the health fields.
#[derive(Object, Debug)]
pub struct HealthProblem {
    #[oai(rename = "type")]
    pub problem_type: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    #[oai(flatten)]
    pub health: Health,
}

#[derive(ApiResponse)]
pub enum HealthResponse {
    /// The database is reachable, OpenEMR's version is supported and migrations are applied.
    #[oai(status = 200)]
    Healthy(Json<Health>),
    /// Something the sidecar needs is missing; `detail` and `problems` say what.
    #[oai(status = 503, content_type = "application/problem+json")]
    Unavailable(Json<HealthProblem>),
}

#[derive(Default)]
pub struct HealthApi;

#[OpenApi(tag = "ApiTags::Health")]
impl HealthApi {
    /// Service health (no authentication).
    ///
    /// Reports database reachability, the OpenEMR version and the migration state, as a check
    /// running every second in the background last found them (`checked_ms_ago`); a check older
    /// than 10 s means the database stopped answering and is reported as unavailable. Load
    /// balancers and orchestrators should route traffic only while this answers 200.
    ///
    /// Anyone sees the state; the OpenEMR version and the exact problems (which may quote the
    /// database) are shown only to an administrator's bearer token.
    #[oai(path = "/health/", method = "get", operation_id = "health")]
    async fn health(&self, state: Data<&AppState>, req: &poem::Request) -> HealthResponse {
        let (snapshot, age) = status::latest_health(&state).await;
        let mut health = match &*snapshot {
            Ok(s) => Health {
                state: if s.problems.is_empty() { "ok" } else { "unavailable" }.into(),
                database_reachable: true,
                openemr_version: s.openemr_version.as_ref().map(ToString::to_string),
                openemr_database_revision: s.openemr_version.as_ref().map(|v| v.database),
                migrations: Some(s.migrations.summary()),
                problems: s.problems.clone(),
                guest_login: state.config.auth.guest_login,
                live_updates: state.events.mode().into(),
                session_source: state.config.auth.session_source.name().into(),
                patient_search: patient_search(&state),
                checked_ms_ago: 0,
            },
            Err(err) => unreachable_health(err, &state),
        };
        health.checked_ms_ago = u64::try_from(age.as_millis()).unwrap_or(u64::MAX);
        if age > STALE_AFTER {
            health.state = "unavailable".into();
            health.problems.push(format!(
                "the last health check finished {} s ago: the database is not answering",
                age.as_secs()
            ));
        }
        if !is_administrator(&state, req).await {
            redact(&mut health);
        }
        if health.problems.is_empty() {
            return HealthResponse::Healthy(Json(health));
        }
        let status = StatusCode::SERVICE_UNAVAILABLE;
        HealthResponse::Unavailable(Json(HealthProblem {
            problem_type: "urn:mmt-sidecar:problem:service-unavailable".into(),
            title: status.canonical_reason().unwrap_or_default().into(),
            status: status.as_u16(),
            detail: health.problems.join("; "),
            health,
        }))
    }
}

async fn is_administrator(state: &AppState, req: &poem::Request) -> bool {
    let Some(token) = crate::http::auth::bearer_token(req) else {
        return false;
    };
    match sign_in::caller_for_access_token(state, &token).await {
        Ok(caller) if !caller.is_guest() => state
            .acl
            .permissions(&caller.username)
            .await
            .is_ok_and(|p| p.allows(Aco::ADMIN_SUPER, AclLevel::Write)),
        _ => false,
    }
}

/// What an anonymous prober may learn: whether to route traffic here, not what runs behind it.
fn redact(health: &mut Health) {
    health.openemr_version = None;
    health.openemr_database_revision = None;
    if !health.problems.is_empty() {
        let n = health.problems.len();
        health.problems = vec![format!("{n} problem(s); send an administrator's bearer token to see them")];
    }
}

/// A check this old means the checks themselves hang.
const STALE_AFTER: Duration = Duration::from_secs(10);

fn unreachable_health(err: &StorageError, state: &AppState) -> Health {
    let reachable = !matches!(err, StorageError::Unavailable(_));
    Health {
        state: "unavailable".into(),
        database_reachable: reachable,
        openemr_version: None,
        openemr_database_revision: None,
        migrations: None,
        problems: vec![if reachable {
            format!("the database answered with an error: {err}")
        } else {
            err.to_string()
        }],
        guest_login: state.config.auth.guest_login,
        live_updates: state.events.mode().into(),
        session_source: state.config.auth.session_source.name().into(),
        patient_search: patient_search(state),
        checked_ms_ago: 0,
    }
}

fn patient_search(state: &AppState) -> String {
    match state.patient_index.in_memory() {
        Some(_) => "memory".into(),
        None => "database (in-memory index building)".into(),
    }
}
