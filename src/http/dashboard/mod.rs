//! The clinician's dashboard, their profile and their signed-in devices.

pub mod dashboard_api;
pub mod profile_api;
pub mod sessions_api;

use poem::http::{HeaderMap, StatusCode, header::USER_AGENT};

use crate::{
    app::AppState,
    http::problem::{ApiError, Problem},
    service::{dashboard::DashboardError, dashboard::sessions, sign_in::Issued},
};

impl From<DashboardError> for ApiError {
    fn from(err: DashboardError) -> Self {
        match err {
            DashboardError::Guest | DashboardError::NotAllowed(_) => {
                Self::new(StatusCode::FORBIDDEN, err.to_string())
            }
            DashboardError::NotFound(_) => Self::new(StatusCode::NOT_FOUND, err.to_string()),
            DashboardError::Invalid(issues) => issues.into(),
            DashboardError::Idle(_) => {
                let mut problem = Problem::new(StatusCode::UNAUTHORIZED, err.to_string());
                problem.problem_type = "urn:mmt-sidecar:problem:idle".into();
                Self::from_problem(problem)
            }
            DashboardError::Acl(inner) => inner.into(),
            DashboardError::Scheduling(inner) => inner.into(),
            DashboardError::Messages(inner) => inner.into(),
            DashboardError::Auth(inner) => inner.into(),
            DashboardError::Storage(inner) => inner.into(),
        }
    }
}

/// A sign-in, labelled with the client's User-Agent for the list of signed-in devices (best
/// effort: the sign-in stands without its label).
pub async fn labelled(state: &AppState, issued: Issued, headers: &HeaderMap) -> Issued {
    let agent = headers.get(USER_AGENT).and_then(|v| v.to_str().ok());
    if let Err(err) = sessions::label(state, &issued, agent).await {
        tracing::warn!(error = %err, "could not label a sign-in with its client");
    }
    issued
}
