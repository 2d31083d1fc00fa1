//! RFC 9457 problem details: the one shape every error leaves the sidecar in.

use poem::{
    Endpoint, IntoResponse, Request, Response, http::StatusCode, middleware::ReqId, web::Json as PoemJson,
};
use poem_openapi::{ApiResponse, Object, payload::Json};

use crate::service::mfa::MfaError;

pub const PROBLEM_JSON: &str = "application/problem+json";

tokio::task_local! {
    static REQUEST_ID: Option<String>;
}

#[derive(Object, Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct FieldError {
    /// The request field, e.g. `dob` or `segments[2].start_ms`.
    pub field: String,
    pub message: String,
}

/// An RFC 9457 problem.
#[derive(Object, Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Problem {
    /// A URI naming the kind of problem.
    #[oai(rename = "type")]
    #[serde(rename = "type")]
    pub problem_type: String,
    /// Short summary of the kind of problem.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong with this request, in words a client developer can act on.
    pub detail: String,
    /// Quote this id when reporting a problem; it is in the server's logs.
    #[oai(skip_serializing_if_is_none)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// One entry per invalid field, for validation problems.
    #[oai(skip_serializing_if_is_empty, default)]
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub errors: Vec<FieldError>,
    /// On a sign-in refused for want of a second factor: the methods the account has in OpenEMR
    /// (`TOTP`, `U2F`). Send the password again with `totp_code`.
    #[oai(skip_serializing_if_is_none)]
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub mfa_required: Option<Vec<String>>,
}

impl Problem {
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        Self {
            problem_type: problem_type(status),
            title: status.canonical_reason().unwrap_or("Error").to_string(),
            status: status.as_u16(),
            detail: detail.into(),
            request_id: REQUEST_ID.try_with(Clone::clone).ok().flatten(),
            errors: Vec::new(),
            mfa_required: None,
        }
    }

    pub fn with_errors(mut self, errors: Vec<FieldError>) -> Self {
        self.errors = errors;
        self
    }

    fn into_poem_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        PoemJson(self).with_status(status).with_content_type(PROBLEM_JSON).into_response()
    }
}

/// The problem type named after a status, e.g. `urn:mmt-sidecar:problem:not-found`.
pub fn problem_type(status: StatusCode) -> String {
    format!("urn:mmt-sidecar:problem:{}", slug(status))
}

fn slug(status: StatusCode) -> String {
    status.canonical_reason().unwrap_or("error").to_ascii_lowercase().replace([' ', '-'], "-")
}

/// Every error an operation can answer with; all of them are problem+json.
#[derive(ApiResponse, Debug)]
pub enum ApiError {
    /// The request is malformed.
    #[oai(status = 400, content_type = "application/problem+json")]
    BadRequest(Json<Problem>),
    /// No valid credentials were presented.
    #[oai(status = 401, content_type = "application/problem+json")]
    Unauthorized(Json<Problem>),
    /// The caller's OpenEMR permissions do not allow this.
    #[oai(status = 403, content_type = "application/problem+json")]
    Forbidden(Json<Problem>),
    /// No such resource.
    #[oai(status = 404, content_type = "application/problem+json")]
    NotFound(Json<Problem>),
    /// This server does not allow the operation; `detail` says why.
    #[oai(status = 405, content_type = "application/problem+json")]
    MethodNotAllowed(Json<Problem>),
    /// The resource is not in a state that allows this.
    #[oai(status = 409, content_type = "application/problem+json")]
    Conflict(Json<Problem>),
    /// The `If-Match` precondition failed.
    #[oai(status = 412, content_type = "application/problem+json")]
    PreconditionFailed(Json<Problem>),
    /// The edit must name the version it changes, with `If-Match`.
    #[oai(status = 428, content_type = "application/problem+json")]
    PreconditionRequired(Json<Problem>),
    /// The request body is too large.
    #[oai(status = 413, content_type = "application/problem+json")]
    PayloadTooLarge(Json<Problem>),
    /// The request body's media type is not accepted.
    #[oai(status = 415, content_type = "application/problem+json")]
    UnsupportedMediaType(Json<Problem>),
    /// The request is well-formed but invalid; `errors` names each field.
    #[oai(status = 422, content_type = "application/problem+json")]
    Unprocessable(Json<Problem>),
    /// Too many attempts; see `Retry-After`.
    #[oai(status = 429, content_type = "application/problem+json")]
    TooManyRequests(Json<Problem>, #[oai(header = "Retry-After")] u64),
    /// An unexpected server error.
    #[oai(status = 500, content_type = "application/problem+json")]
    Internal(Json<Problem>),
    /// The database or another dependency is unavailable.
    #[oai(status = 503, content_type = "application/problem+json")]
    Unavailable(Json<Problem>),
}

impl ApiError {
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        Self::from_problem(Problem::new(status, detail))
    }

    pub fn from_problem(problem: Problem) -> Self {
        let json = Json(problem);
        match json.0.status {
            400 => Self::BadRequest(json),
            401 => Self::Unauthorized(json),
            403 => Self::Forbidden(json),
            404 => Self::NotFound(json),
            405 => Self::MethodNotAllowed(json),
            409 => Self::Conflict(json),
            412 => Self::PreconditionFailed(json),
            413 => Self::PayloadTooLarge(json),
            415 => Self::UnsupportedMediaType(json),
            428 => Self::PreconditionRequired(json),
            422 => Self::Unprocessable(json),
            503 => Self::Unavailable(json),
            _ => Self::Internal(json),
        }
    }

    pub fn into_problem(self) -> Problem {
        match self {
            Self::BadRequest(p)
            | Self::Unauthorized(p)
            | Self::Forbidden(p)
            | Self::NotFound(p)
            | Self::MethodNotAllowed(p)
            | Self::Conflict(p)
            | Self::PreconditionFailed(p)
            | Self::PreconditionRequired(p)
            | Self::PayloadTooLarge(p)
            | Self::UnsupportedMediaType(p)
            | Self::Unprocessable(p)
            | Self::TooManyRequests(p, _)
            | Self::Internal(p)
            | Self::Unavailable(p) => p.0,
        }
    }

    /// A validation problem listing each field, its detail naming them all.
    pub fn invalid_fields(status: StatusCode, errors: Vec<FieldError>) -> Self {
        let detail =
            errors.iter().map(|e| format!("{}: {}", e.field, e.message)).collect::<Vec<_>>().join("; ");
        Self::from_problem(Problem::new(status, detail).with_errors(errors))
    }

    pub fn too_many_requests(detail: impl Into<String>, retry_after_secs: u64) -> Self {
        Self::TooManyRequests(Json(Problem::new(StatusCode::TOO_MANY_REQUESTS, detail)), retry_after_secs)
    }
}

/// Outermost error boundary: whatever failed below (unknown route, wrong method, unparsable JSON,
/// an oversized body, a handler error) leaves as problem+json carrying the request id.
pub async fn problem_boundary<E: Endpoint>(next: E, req: Request) -> poem::Result<Response> {
    let request_id = req.data::<ReqId>().map(ToString::to_string);
    REQUEST_ID
        .scope(request_id, async move {
            let response = match next.call(req).await {
                Ok(output) => output.into_response(),
                Err(err) => error_response(err),
            };
            Ok(ensure_problem(response))
        })
        .await
}

fn error_response(err: poem::Error) -> Response {
    if err.is_from_response() {
        return err.into_response();
    }
    let status = err.status();
    let detail = if status.is_server_error() {
        tracing::error!(error = %err, "request failed");
        "an unexpected error occurred; quote the request id when reporting it".to_string()
    } else if status == StatusCode::NOT_FOUND {
        "no resource at this path; see /api/docs/ for the available operations".to_string()
    } else if status == StatusCode::METHOD_NOT_ALLOWED {
        "this path does not support the request's method; see /api/docs/".to_string()
    } else {
        err.to_string()
    };
    Problem::new(status, detail).into_poem_response()
}

fn ensure_problem(response: Response) -> Response {
    let status = response.status();
    // FHIR answers its errors as OperationOutcomes (`http::fhir`), HL7 v2 as ACKs (`hl7_api`).
    let is_problem = response.content_type().is_some_and(|ct| {
        ct.starts_with(PROBLEM_JSON)
            || ct.starts_with(crate::http::fhir::FHIR_JSON)
            || ct.starts_with(crate::http::hl7_api::HL7_V2)
    });
    if !(status.is_client_error() || status.is_server_error()) || is_problem {
        return response;
    }
    let mut problem = Problem::new(status, status.canonical_reason().unwrap_or("error")).into_poem_response();
    if let Some(retry) = response.headers().get("retry-after") {
        problem.headers_mut().insert("retry-after", retry.clone());
    }
    problem
}

impl From<crate::storage::StorageError> for ApiError {
    fn from(err: crate::storage::StorageError) -> Self {
        if err.is_duplicate_key() {
            return Self::new(StatusCode::CONFLICT, "this conflicts with a record that already exists");
        }
        if let Some(detail) = unavailable_detail(&err) {
            tracing::warn!(error = %err, "database unavailable or busy");
            return Self::new(StatusCode::SERVICE_UNAVAILABLE, detail);
        }
        tracing::error!(error = %err, "database error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "an unexpected database error occurred; quote the request id",
        )
    }
}

/// Why a retry may succeed, in words a client can act on (and that tell a flaky run's cause).
fn unavailable_detail(err: &crate::storage::StorageError) -> Option<&'static str> {
    use crate::storage::StorageError as E;
    match err {
        E::Unavailable(_) => {
            Some("the database could not be reached or dropped the connection; retry shortly")
        }
        E::Busy(_) => Some("the database is busy (no connection or lock came free in time); retry shortly"),
        _ if err.is_deadlock() => Some("the database stopped this request to break a deadlock; retry it"),
        _ => None,
    }
}

impl From<crate::service::sign_in::AuthError> for ApiError {
    fn from(err: crate::service::sign_in::AuthError) -> Self {
        use crate::service::sign_in::AuthError as E;
        match err {
            E::Throttled(secs) => Self::too_many_requests(err.to_string(), secs),
            E::Busy => Self::too_many_requests(err.to_string(), 1),
            E::GuestDisabled => Self::new(StatusCode::NOT_FOUND, err.to_string()),
            E::SessionStoreUnavailable => Self::new(StatusCode::SERVICE_UNAVAILABLE, err.to_string()),
            E::Storage(inner) => inner.into(),
            E::SecondFactor(MfaError::Required(ref methods)) => {
                let mut problem = Problem::new(StatusCode::UNAUTHORIZED, err.to_string());
                problem.problem_type = "urn:mmt-sidecar:problem:mfa-required".into();
                problem.mfa_required = Some(methods.clone());
                Self::from_problem(problem)
            }
            E::SecondFactor(MfaError::Storage(inner)) => inner.into(),
            E::InvalidCredentials
            | E::Locked
            | E::PasswordExpired
            | E::SecondFactor(_)
            | E::InvalidToken
            | E::RefreshReused
            | E::SessionRejected(_) => Self::new(StatusCode::UNAUTHORIZED, err.to_string()),
        }
    }
}

/// Outside sign-in (enrolling or removing a second factor), a wrong code is a field error.
impl From<MfaError> for ApiError {
    fn from(err: MfaError) -> Self {
        match err {
            MfaError::Invalid => {
                let mut issues = crate::domain::validation::Issues::default();
                issues.add("code", err.to_string());
                issues.into()
            }
            MfaError::Storage(inner) => inner.into(),
            MfaError::Required(_) => Self::new(StatusCode::UNAUTHORIZED, err.to_string()),
            MfaError::Unsupported(_) | MfaError::Conflict(_) => {
                Self::new(StatusCode::CONFLICT, err.to_string())
            }
        }
    }
}

impl From<crate::service::acl::AclError> for ApiError {
    fn from(err: crate::service::acl::AclError) -> Self {
        match err {
            crate::service::acl::AclError::Denied { .. }
            | crate::service::acl::AclError::OutOfPanel { .. } => {
                Self::new(StatusCode::FORBIDDEN, err.to_string())
            }
            crate::service::acl::AclError::Storage(inner) => inner.into(),
        }
    }
}

impl From<crate::domain::validation::Issues> for ApiError {
    fn from(issues: crate::domain::validation::Issues) -> Self {
        let errors =
            issues.0.into_iter().map(|i| FieldError { field: i.field, message: i.message }).collect();
        Self::invalid_fields(StatusCode::UNPROCESSABLE_ENTITY, errors)
    }
}

impl From<crate::service::patients::PatientError> for ApiError {
    fn from(err: crate::service::patients::PatientError) -> Self {
        use crate::service::patients::PatientError as E;
        match err {
            E::NotFound(_) | E::UnknownUuid => Self::new(StatusCode::NOT_FOUND, err.to_string()),
            E::Invalid(issues) => issues.into(),
            E::Conflict(_) => Self::new(StatusCode::CONFLICT, err.to_string()),
            E::Acl(inner) => inner.into(),
            E::Storage(inner) => inner.into(),
        }
    }
}

impl From<crate::service::encounters::EncounterError> for ApiError {
    fn from(err: crate::service::encounters::EncounterError) -> Self {
        use crate::service::encounters::EncounterError as E;
        match err {
            E::NotFound(_) | E::PatientNotFound(_) | E::UnknownUuid => {
                Self::new(StatusCode::NOT_FOUND, err.to_string())
            }
            E::Invalid(issues) => issues.into(),
            E::Acl(inner) => inner.into(),
            E::Storage(inner) => inner.into(),
        }
    }
}

impl From<crate::service::transcriptions::TranscriptionError> for ApiError {
    fn from(err: crate::service::transcriptions::TranscriptionError) -> Self {
        use crate::service::transcriptions::TranscriptionError as E;
        match err {
            E::NotFound(_) => Self::new(StatusCode::NOT_FOUND, err.to_string()),
            E::Conflict(_) | E::Illegal(_) => Self::new(StatusCode::CONFLICT, err.to_string()),
            E::Stale { .. } => Self::new(StatusCode::PRECONDITION_FAILED, err.to_string()),
            E::PreconditionRequired => Self::new(StatusCode::PRECONDITION_REQUIRED, err.to_string()),
            E::Invalid(issues) => issues.into(),
            E::Acl(inner) => inner.into(),
            E::Storage(inner) => inner.into(),
        }
    }
}

impl From<crate::service::jobs::JobError> for ApiError {
    fn from(err: crate::service::jobs::JobError) -> Self {
        use crate::service::jobs::JobError as E;
        match err {
            E::NotFound(_) => Self::new(StatusCode::NOT_FOUND, err.to_string()),
            E::Illegal(_) => Self::new(StatusCode::CONFLICT, err.to_string()),
            E::Acl(inner) => inner.into(),
            E::Storage(inner) => inner.into(),
        }
    }
}

impl From<crate::service::fhir_export::ExportError> for ApiError {
    fn from(err: crate::service::fhir_export::ExportError) -> Self {
        use crate::service::fhir_export::ExportError as E;
        match err {
            E::NotFound(_) => Self::new(StatusCode::NOT_FOUND, err.to_string()),
            E::Expired(_) => Self::new(StatusCode::GONE, err.to_string()),
            E::Files(_) => Self::new(StatusCode::SERVICE_UNAVAILABLE, err.to_string()),
            E::Acl(inner) => inner.into(),
            E::Job(inner) => inner.into(),
            E::Storage(inner) => inner.into(),
        }
    }
}

impl From<crate::service::scheduling::SchedulingError> for ApiError {
    fn from(err: crate::service::scheduling::SchedulingError) -> Self {
        use crate::service::scheduling::SchedulingError as E;
        match err {
            E::NotFound(_) | E::UnknownUuid => Self::new(StatusCode::NOT_FOUND, err.to_string()),
            E::Invalid(issues) => issues.into(),
            E::Taken(eid) => {
                let mut problem = Problem::new(StatusCode::CONFLICT, err.to_string());
                problem.problem_type = "urn:mmt-sidecar:problem:slot-taken".into();
                problem.errors =
                    vec![FieldError { field: "conflicting_appointment".into(), message: eid.to_string() }];
                Self::from_problem(problem)
            }
            E::Unavailable(_) => {
                let mut issues = crate::domain::validation::Issues::default();
                issues.add("start", err.to_string());
                issues.into()
            }
            E::Transition { .. } | E::Repeating(_) | E::KeyReused(_) => {
                Self::new(StatusCode::CONFLICT, err.to_string())
            }
            E::OtherCalendar => Self::new(StatusCode::FORBIDDEN, err.to_string()),
            E::Acl(inner) => inner.into(),
            E::Storage(inner) => inner.into(),
        }
    }
}

impl From<crate::service::admin::AdminError> for ApiError {
    fn from(err: crate::service::admin::AdminError) -> Self {
        use crate::service::admin::AdminError as E;
        match err {
            E::NotFound(_) => Self::new(StatusCode::NOT_FOUND, err.to_string()),
            E::Conflict(_) => Self::new(StatusCode::CONFLICT, err.to_string()),
            E::Forbidden(_) => Self::new(StatusCode::FORBIDDEN, err.to_string()),
            E::Invalid(issues) => issues.into(),
            E::Acl(inner) => inner.into(),
            E::Storage(inner) => inner.into(),
        }
    }
}

impl From<crate::service::catalogue::CatalogueError> for ApiError {
    fn from(err: crate::service::catalogue::CatalogueError) -> Self {
        use crate::service::catalogue::CatalogueError as E;
        match err {
            E::NotFound(_) => Self::new(StatusCode::NOT_FOUND, err.to_string()),
            E::Invalid(issues) => issues.into(),
            E::Unreadable(_) | E::Layout { .. } => {
                let mut issues = crate::domain::validation::Issues::default();
                issues.add("file", err.to_string());
                issues.into()
            }
            E::Acl(inner) => inner.into(),
            E::Storage(inner) => inner.into(),
        }
    }
}

impl From<crate::service::chart::ChartError> for ApiError {
    fn from(err: crate::service::chart::ChartError) -> Self {
        use crate::service::chart::ChartError as E;
        match err {
            E::NotFound(_) => Self::new(StatusCode::NOT_FOUND, err.to_string()),
            E::Conflict(_) => Self::new(StatusCode::CONFLICT, err.to_string()),
            E::Disabled(_) => Self::new(StatusCode::FORBIDDEN, err.to_string()),
            E::Unavailable(_) => Self::new(StatusCode::SERVICE_UNAVAILABLE, err.to_string()),
            E::Invalid(issues) => issues.into(),
            E::Acl(inner) => inner.into(),
            E::Storage(inner) => inner.into(),
        }
    }
}

impl From<crate::service::billing::BillingError> for ApiError {
    fn from(err: crate::service::billing::BillingError) -> Self {
        use crate::service::billing::BillingError as E;
        match err {
            E::NotFound(_) => Self::new(StatusCode::NOT_FOUND, err.to_string()),
            E::Conflict(_) => Self::new(StatusCode::CONFLICT, err.to_string()),
            E::Stale(_) => Self::new(StatusCode::PRECONDITION_FAILED, err.to_string()),
            E::BadSignature(_) => Self::new(StatusCode::BAD_REQUEST, err.to_string()),
            E::Unavailable(_) => Self::new(StatusCode::SERVICE_UNAVAILABLE, err.to_string()),
            E::Invalid(issues) => issues.into(),
            E::Acl(inner) => inner.into(),
            E::Storage(inner) => inner.into(),
        }
    }
}

impl From<crate::service::patient_access::BreakGlassError> for ApiError {
    fn from(err: crate::service::patient_access::BreakGlassError) -> Self {
        use crate::service::patient_access::BreakGlassError as E;
        match err {
            E::Invalid(message) => {
                let mut issues = crate::domain::validation::Issues::default();
                issues.add("reason", message);
                issues.into()
            }
            E::NotFound(_) => Self::new(StatusCode::NOT_FOUND, err.to_string()),
            E::PolicyOff => Self::new(StatusCode::CONFLICT, err.to_string()),
            E::Acl(inner) => inner.into(),
            E::Storage(inner) => inner.into(),
        }
    }
}

impl From<crate::service::care_team::CareTeamError> for ApiError {
    fn from(err: crate::service::care_team::CareTeamError) -> Self {
        use crate::service::care_team::CareTeamError as E;
        match err {
            E::NotFound(_) => Self::new(StatusCode::NOT_FOUND, err.to_string()),
            E::Invalid(issues) => issues.into(),
            E::Acl(inner) => inner.into(),
            E::Storage(inner) => inner.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::StorageError;

    fn detail(err: StorageError) -> String {
        match ApiError::from(err) {
            ApiError::Unavailable(Json(p)) => p.detail,
            _ => panic!("expected 503"),
        }
    }

    #[test]
    fn a_503_says_whether_the_database_was_busy_or_gone() {
        assert!(detail(StorageError::from_sqlx(sqlx::Error::PoolTimedOut)).contains("busy"));
        assert!(detail(StorageError::from_sqlx(sqlx::Error::PoolClosed)).contains("could not be reached"));
    }
}
