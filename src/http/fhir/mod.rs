//! FHIR R4 under `/fhir/r4/`: its own OpenAPI document and explorer (`/fhir/r4/openapi.json`,
//! `/fhir/r4/docs`), the same authentication, ACL and audit as `/api`, and every error an
//! OperationOutcome.

pub mod appointment_api;
pub mod communication_api;
pub mod directory_api;
pub mod document_api;
pub mod encounter_api;
pub mod export_api;
pub mod issues_api;
pub mod medication_api;
pub mod metadata_api;
pub mod observation_api;
pub mod patient_api;
pub mod schedule_api;

use chrono::NaiveDate;
use poem::{Endpoint, Request, Response, http::StatusCode};
use poem_openapi::{
    ApiResponse, OpenApiService,
    payload::Json,
    types::{ParseFromJSON, ToJSON},
};

use self::model::{Bundle, BundleLink, BundleSearch, Entry, OperationOutcome, OutcomeIssue, Reference};
pub use crate::fhir::{instant, model, patient_reference, text};
use crate::http::problem::{ApiError, Problem};

pub const FHIR_JSON: &str = "application/fhir+json";

pub type FhirApis = (
    metadata_api::MetadataApi,
    patient_api::PatientApi,
    issues_api::ConditionApi,
    issues_api::AllergyApi,
    encounter_api::EncounterApi,
    observation_api::ObservationApi,
    directory_api::PractitionerApi,
    directory_api::OrganizationApi,
    medication_api::MedicationRequestApi,
    appointment_api::AppointmentApi,
    (schedule_api::ScheduleApi, schedule_api::SlotApi),
    (
        document_api::DocumentReferenceApi,
        document_api::BinaryApi,
        communication_api::CommunicationApi,
        export_api::ExportApi,
        export_api::GroupApi,
    ),
);

pub fn fhir_service() -> OpenApiService<FhirApis, ()> {
    OpenApiService::new(FhirApis::default(), "mmt-sidecar FHIR R4", env!("CARGO_PKG_VERSION"))
        .description(
            "FHIR R4 (4.0.1) over OpenEMR's rows, with the ids OpenEMR's own FHIR API uses. Sign in \
             at /api/auth/login/ and send the access token as `Authorization: Bearer`. Errors are \
             OperationOutcome resources. The rest of the API: /api/docs.",
        )
        .server("/fhir/r4")
}

/// A resource, or a search's Bundle.
#[derive(ApiResponse)]
pub enum Found<T: ToJSON> {
    #[oai(status = 200, content_type = "application/fhir+json")]
    Ok(Json<T>),
}

/// A resource just written, and where it can be read.
#[derive(ApiResponse)]
pub enum Created<T: ToJSON> {
    #[oai(status = 201, content_type = "application/fhir+json")]
    Created(Json<T>, #[oai(header = "Location")] String),
}

/// The patient a `patient` search parameter (`Patient/{id}` or `{id}`, required) names: `None`
/// when it names no one, which a search answers with an empty Bundle.
pub async fn searched_patient(
    state: &crate::app::AppState,
    patient: Option<String>,
) -> Result<Option<(crate::domain::patient::Pid, [u8; 16])>, FhirError> {
    let patient = patient.ok_or_else(|| FhirError::invalid("patient", "`patient` is required"))?;
    let Some(uuid) = uuid_of(patient.strip_prefix("Patient/").unwrap_or(&patient)) else { return Ok(None) };
    Ok(crate::service::patients::pid_of(state, &uuid).await?.map(|pid| (pid, uuid)))
}

/// The patient a written resource's `subject` names, which must be one of this server's.
pub async fn subject_patient(
    state: &crate::app::AppState,
    subject: Option<&Reference>,
) -> Result<(crate::domain::patient::Pid, [u8; 16]), FhirError> {
    let reference = subject
        .and_then(|s| s.reference.clone())
        .ok_or_else(|| FhirError::invalid("subject", "is required: Patient/{id}"))?;
    searched_patient(state, Some(reference))
        .await?
        .ok_or_else(|| FhirError::invalid("subject", "names no patient of this server"))
}

/// Every error a FHIR operation can answer with.
#[derive(ApiResponse, Debug)]
pub enum FhirError {
    /// A search parameter or the request is malformed.
    #[oai(status = 400, content_type = "application/fhir+json")]
    BadRequest(Json<OperationOutcome>),
    /// No valid credentials were presented.
    #[oai(status = 401, content_type = "application/fhir+json")]
    Unauthorized(Json<OperationOutcome>),
    /// The caller's OpenEMR permissions do not allow this.
    #[oai(status = 403, content_type = "application/fhir+json")]
    Forbidden(Json<OperationOutcome>),
    /// No such resource.
    #[oai(status = 404, content_type = "application/fhir+json")]
    NotFound(Json<OperationOutcome>),
    /// A write clashes with what is stored (a booking over another appointment).
    #[oai(status = 409, content_type = "application/fhir+json")]
    Conflict(Json<OperationOutcome>),
    /// A bulk export whose files have expired and were removed.
    #[oai(status = 410, content_type = "application/fhir+json")]
    Gone(Json<OperationOutcome>),
    /// A write's body is larger than the server takes.
    #[oai(status = 413, content_type = "application/fhir+json")]
    TooLarge(Json<OperationOutcome>),
    /// A write's body is not JSON (`application/fhir+json` or `application/json`).
    #[oai(status = 415, content_type = "application/fhir+json")]
    UnsupportedMediaType(Json<OperationOutcome>),
    /// An unexpected server error.
    #[oai(status = 500, content_type = "application/fhir+json")]
    Internal(Json<OperationOutcome>),
    /// The database is unavailable or busy; retry.
    #[oai(status = 503, content_type = "application/fhir+json")]
    Unavailable(Json<OperationOutcome>),
}

impl FhirError {
    /// The same error with each element at fault named as the resource names it (`element` maps
    /// the API's field names).
    pub fn renamed(self, element: impl Fn(&str) -> &str) -> Self {
        match self {
            Self::BadRequest(Json(mut outcome)) => {
                for issue in &mut outcome.issue {
                    for expression in &mut issue.expression {
                        *expression = element(expression).to_string();
                    }
                }
                Self::BadRequest(Json(outcome))
            }
            other => other,
        }
    }

    pub fn invalid(parameter: &str, message: impl Into<String>) -> Self {
        let mut outcome = outcome(StatusCode::BAD_REQUEST, message.into());
        outcome.issue[0].expression = vec![parameter.to_string()];
        Self::BadRequest(Json(outcome))
    }
}

impl<E: Into<ApiError>> From<E> for FhirError {
    fn from(err: E) -> Self {
        let problem = err.into().into_problem();
        let status = StatusCode::from_u16(problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let json = Json(outcome_of(&problem));
        match status.as_u16() {
            400 | 422 => Self::BadRequest(json),
            401 => Self::Unauthorized(json),
            403 => Self::Forbidden(json),
            404 => Self::NotFound(json),
            409 => Self::Conflict(json),
            410 => Self::Gone(json),
            413 => Self::TooLarge(json),
            415 => Self::UnsupportedMediaType(json),
            503 => Self::Unavailable(json),
            _ => Self::Internal(json),
        }
    }
}

/// FHIR's issue type for an HTTP status.
fn issue_code(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 | 413 | 415 | 422 => "invalid",
        401 => "login",
        403 => "forbidden",
        404 => "not-found",
        405 => "not-supported",
        409 | 412 | 428 => "conflict",
        429 => "throttled",
        503 => "transient",
        _ => "exception",
    }
}

fn outcome(status: StatusCode, diagnostics: String) -> OperationOutcome {
    OperationOutcome {
        resource_type: "OperationOutcome".into(),
        issue: vec![OutcomeIssue {
            severity: "error".into(),
            code: issue_code(status).into(),
            diagnostics: Some(diagnostics),
            expression: Vec::new(),
        }],
    }
}

/// The problem's detail and request id as one issue, or one issue per field at fault.
fn outcome_of(problem: &Problem) -> OperationOutcome {
    let status = StatusCode::from_u16(problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let request = problem.request_id.as_ref().map(|id| format!(" (request id {id})")).unwrap_or_default();
    let mut outcome = outcome(status, format!("{}{request}", problem.detail));
    if !problem.errors.is_empty() {
        outcome.issue = problem
            .errors
            .iter()
            .map(|e| OutcomeIssue {
                severity: "error".into(),
                code: issue_code(status).into(),
                diagnostics: Some(e.message.clone()),
                expression: vec![e.field.clone()],
            })
            .collect();
    }
    outcome
}

/// Whatever failed below (authentication, an unknown path, a handler) leaves as an
/// OperationOutcome: the problem boundary's answer, re-dressed.
pub async fn outcome_boundary<E: Endpoint>(next: E, req: Request) -> poem::Result<Response> {
    let response = crate::http::problem::problem_boundary(next, req).await?;
    let is_problem =
        response.content_type().is_some_and(|ct| ct.starts_with(crate::http::problem::PROBLEM_JSON));
    if !is_problem {
        return Ok(response);
    }
    let (parts, body) = response.into_parts();
    let bytes = body.into_bytes().await.unwrap_or_default();
    let problem: Problem = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Problem::new(parts.status, parts.status.canonical_reason().unwrap_or("error")));
    let mut redressed = Response::builder().status(parts.status);
    for (name, value) in parts.headers.iter().filter(|(n, _)| *n != poem::http::header::CONTENT_TYPE) {
        redressed = redressed.header(name, value.clone());
    }
    Ok(redressed.content_type(FHIR_JSON).body(outcome_of(&problem).to_json_string()))
}

pub fn bundle<T: ParseFromJSON + ToJSON>(
    total: i64,
    link: Vec<BundleLink>,
    entry: Vec<Entry<T>>,
) -> Bundle<T> {
    Bundle { resource_type: "Bundle".into(), kind: "searchset".into(), total: Some(total), link, entry }
}

/// This server as the request reached it: `scheme://host`.
fn origin(req: &Request) -> String {
    let host = req.header("host").unwrap_or("localhost");
    let scheme = if req.header("x-forwarded-proto") == Some("https") { "https" } else { "http" };
    format!("{scheme}://{host}")
}

/// The request's absolute URL (the FHIR routes see their path without the `/fhir/r4` base).
pub fn request_url(req: &Request) -> String {
    let path = req.uri().path_and_query().map(|p| p.as_str()).unwrap_or("/");
    format!("{}/fhir/r4{path}", origin(req))
}

/// Absolute links back to this server, as the request reached it.
pub struct Links {
    base: String,
    resource: &'static str,
    query: Vec<String>,
}

impl Links {
    pub fn of(req: &Request, resource: &'static str) -> Self {
        let query = req
            .uri()
            .query()
            .unwrap_or_default()
            .split('&')
            .filter(|pair| !pair.is_empty() && !pair.starts_with("_cursor=") && !pair.starts_with("_offset="))
            .map(str::to_string)
            .collect();
        Self { base: format!("{}/fhir/r4", origin(req)), resource, query }
    }

    fn url(&self, extra: Option<String>) -> String {
        let query: Vec<String> = self.query.iter().cloned().chain(extra).collect();
        let base = format!("{}/{}", self.base, self.resource);
        if query.is_empty() { base } else { format!("{base}?{}", query.join("&")) }
    }

    /// The URL of one resource of this type.
    pub fn url_of(&self, id: &str) -> String {
        format!("{}/{}/{id}", self.base, self.resource)
    }

    /// Every match on one page.
    pub fn whole<T: ParseFromJSON + ToJSON>(&self, entries: Vec<Entry<T>>) -> Bundle<T> {
        bundle(entries.len() as i64, vec![self.this()], entries)
    }

    pub fn this(&self) -> BundleLink {
        BundleLink { relation: "self".into(), url: self.url(None) }
    }

    /// The following page: this search with `param` (`_cursor`, `_offset`) set to `value`.
    pub fn next(&self, param: &str, value: &str) -> BundleLink {
        BundleLink { relation: "next".into(), url: self.url(Some(format!("{param}={value}"))) }
    }
}

/// `_count` for searches paged by `_offset`: 1 to 100, 20 when not given.
pub fn offset_count(count: Option<u32>) -> Result<u32, FhirError> {
    let count = count.unwrap_or(20);
    if (1..=100).contains(&count) {
        Ok(count)
    } else {
        Err(FhirError::invalid("_count", "`_count` is 1 to 100"))
    }
}

/// A page's links when paged by `_offset`: itself, and the next page while more remain.
pub fn offset_links(links: &Links, offset: u64, count: u32, total: i64) -> Vec<BundleLink> {
    let mut link = vec![links.this()];
    let next = offset + u64::from(count);
    if next < u64::try_from(total).unwrap_or(0) {
        link.push(links.next("_offset", &next.to_string()));
    }
    link
}

/// The days a date parameter given up to twice (`ge…&lt…`) bounds, each end open when unsaid.
pub fn date_bounds(
    name: &str,
    values: &[String],
) -> Result<(Option<NaiveDate>, Option<NaiveDate>), FhirError> {
    let mut bounds: (Option<NaiveDate>, Option<NaiveDate>) = (None, None);
    for value in values {
        let (from, to) =
            crate::domain::fhir::date_range(value).map_err(|why| FhirError::invalid(name, why))?;
        bounds.0 = bounds.0.max(from);
        bounds.1 = match (bounds.1, to) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
    Ok(bounds)
}

/// A search match, with its absolute URL.
pub fn entry<T: ParseFromJSON + ToJSON>(links: &Links, id: String, resource: T) -> Entry<T> {
    Entry { full_url: links.url_of(&id), resource, search: BundleSearch { mode: "match".into() } }
}

/// A reference to the patient with this pid, by the id OpenEMR's FHIR API gives them.
pub async fn subject_of(
    state: &crate::app::AppState,
    pid: crate::domain::patient::Pid,
) -> Result<Reference, FhirError> {
    let uuid = crate::service::patients::uuid_of(state, pid).await?;
    Ok(patient_reference(uuid.as_ref().map(|u| &u[..])))
}

/// A FHIR id as the 16 bytes OpenEMR stores; anything else names nothing here.
pub fn uuid_of(id: &str) -> Option<[u8; 16]> {
    uuid::Uuid::parse_str(id).ok().map(|u| *u.as_bytes())
}
