//! Bulk export (FHIR Bulk Data Access 1.0): `Patient/$export` and `Group/{id}/$export` start an
//! export job (202 and `Content-Location`), `$export-status/{id}` follows it (202 with
//! `X-Progress`, then the manifest), and `$export-file/{id}/{type}.ndjson` serves each file.

use poem::{Body, Request, web::Data};
use poem_openapi::{
    ApiResponse, OpenApi,
    param::{Path, Query},
    payload::{Binary, Json},
};

use super::{
    FhirError, Found, Links, entry,
    model::{Bundle, ExportManifest, ExportOutput, Group},
    outcome, uuid_of,
};
use crate::{
    app::AppState,
    domain::{
        fhir_export::{self, ExportType},
        job::JobId,
    },
    fhir::group::group_of,
    http::auth::Auth,
    service::fhir_export::{self as service, ExportRequest, ExportStatus},
};

const NDJSON: &str = "application/fhir+ndjson";
const FORMATS: [&str; 3] = [NDJSON, "application/ndjson", "ndjson"];

/// The export was queued.
#[derive(ApiResponse)]
pub enum Started {
    /// Poll the status URL in `Content-Location`.
    #[oai(status = 202)]
    Accepted(#[oai(header = "Content-Location")] String),
}

#[derive(ApiResponse)]
pub enum Status {
    /// Complete: the manifest lists one NDJSON file per resource type exported.
    #[oai(status = 200, content_type = "application/json")]
    Complete(Json<ExportManifest>),
    /// Still running; `X-Progress` says how far, `Retry-After` when to ask again.
    #[oai(status = 202)]
    InProgress(#[oai(header = "X-Progress")] String, #[oai(header = "Retry-After")] u32),
}

#[derive(ApiResponse)]
pub enum Deleted {
    /// The export was cancelled and its files removed.
    #[oai(status = 202)]
    Accepted,
}

#[derive(ApiResponse)]
pub enum File {
    /// One resource per line.
    #[oai(status = 200, content_type = "application/fhir+ndjson")]
    Ok(Binary<Body>),
}

#[derive(Default)]
pub struct ExportApi;

#[derive(Default)]
pub struct GroupApi;

#[OpenApi(prefix_path = "/Group")]
impl GroupApi {
    /// OpenEMR's provider groups, whose ids `Group/{id}/$export` takes: each provider with an NPI
    /// and the patients whose provider they are (members by reference only). For OpenEMR
    /// administrators (`admin|super`); a user without a Group id gets one first, as OpenEMR's
    /// GroupService gives them.
    #[oai(path = "/", method = "get", operation_id = "fhir_group_search")]
    async fn search(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        req: &Request,
    ) -> Result<Found<Bundle<Group>>, FhirError> {
        let links = Links::of(req, "Group");
        let entries = service::groups(&state, &auth.0, None)
            .await?
            .iter()
            .filter_map(|g| group_of(&g.row, &g.members))
            .map(|g| entry(&links, g.id.clone(), g))
            .collect();
        Ok(Found::Ok(Json(links.whole(entries))))
    }

    /// One provider group.
    #[oai(path = "/:id", method = "get", operation_id = "fhir_group_read")]
    async fn read(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        id: Path<String>,
    ) -> Result<Found<Group>, FhirError> {
        let uuid = uuid_of(&id.0).ok_or_else(service::no_group)?;
        let found = service::groups(&state, &auth.0, Some(uuid)).await?;
        let group = found.first().and_then(|g| group_of(&g.row, &g.members));
        Ok(Found::Ok(Json(group.ok_or_else(service::no_group)?)))
    }
}

#[OpenApi]
impl ExportApi {
    /// Exports every patient's data as NDJSON, one file per resource type: Patient, Encounter,
    /// Condition, AllergyIntolerance, MedicationRequest and Observation (vital signs), or those
    /// named in `_type`; only resources changed since `_since` when given. Runs as a job; needs
    /// OpenEMR `admin|super`, as OpenEMR's own bulk export. Each exported patient is audited.
    #[oai(path = "/Patient/$export", method = "get", operation_id = "fhir_patient_export")]
    async fn patients(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        req: &Request,
        #[oai(name = "_type")] types: Query<Option<String>>,
        #[oai(name = "_since")] since: Query<Option<String>>,
        #[oai(name = "_outputFormat")] format: Query<Option<String>>,
    ) -> Result<Started, FhirError> {
        start(&state, &auth, req, None, (types.0, since.0, format.0)).await
    }

    /// As `Patient/$export`, for the patients of one Group: OpenEMR's provider groups (a provider
    /// with an NPI and the patients whose provider they are), by the ids OpenEMR's FHIR API gives them.
    #[oai(path = "/Group/:id/$export", method = "get", operation_id = "fhir_group_export")]
    #[allow(clippy::too_many_arguments)]
    async fn group(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        req: &Request,
        id: Path<String>,
        #[oai(name = "_type")] types: Query<Option<String>>,
        #[oai(name = "_since")] since: Query<Option<String>>,
        #[oai(name = "_outputFormat")] format: Query<Option<String>>,
    ) -> Result<Started, FhirError> {
        let group = uuid_of(&id.0).ok_or_else(service::no_group)?;
        start(&state, &auth, req, Some(group), (types.0, since.0, format.0)).await
    }

    /// How an export is going, for the user who started it or an administrator. A failed export
    /// answers 500 with the reason; one past `MMT_FHIR_EXPORT_TTL_SECS` 410.
    #[oai(path = "/$export-status/:id", method = "get", operation_id = "fhir_export_status")]
    async fn status(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        req: &Request,
        id: Path<String>,
    ) -> Result<Status, FhirError> {
        let id = job_id(&id.0)?;
        match service::status(&state, &auth.0, id).await? {
            ExportStatus::InProgress { percent, message } => {
                Ok(Status::InProgress(format!("{percent}% ({message})"), 2))
            }
            ExportStatus::Failed(why) => {
                let problem = outcome(
                    poem::http::StatusCode::INTERNAL_SERVER_ERROR,
                    format!("the export failed: {why}"),
                );
                Err(FhirError::Internal(Json(problem)))
            }
            ExportStatus::Complete { transaction_time, request, output } => {
                let base = super::Links::of(req, "$export-file").url_of(&id.to_string());
                let output = output
                    .into_iter()
                    .map(|o| ExportOutput {
                        url: format!("{base}/{}.ndjson", o.kind),
                        kind: o.kind,
                        count: o.count,
                    })
                    .collect();
                Ok(Status::Complete(Json(ExportManifest {
                    transaction_time,
                    request,
                    requires_access_token: true,
                    output,
                    error: Vec::new(),
                })))
            }
        }
    }

    /// Cancels an export that is still running and removes its files.
    #[oai(path = "/$export-status/:id", method = "delete", operation_id = "fhir_export_delete")]
    async fn delete(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        id: Path<String>,
    ) -> Result<Deleted, FhirError> {
        service::delete(&state, &auth.0, job_id(&id.0)?).await?;
        Ok(Deleted::Accepted)
    }

    /// One file of a finished export (`{type}.ndjson`), with the credentials that started it;
    /// audited.
    #[oai(path = "/$export-file/:id/:file", method = "get", operation_id = "fhir_export_file")]
    async fn file(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        id: Path<String>,
        file: Path<String>,
    ) -> Result<File, FhirError> {
        let id = job_id(&id.0)?;
        let kind =
            file.0.strip_suffix(".ndjson").and_then(ExportType::parse).ok_or_else(|| {
                service::ExportError::NotFound(format!("export {id} has no file {}", file.0))
            })?;
        let stored = service::file(&state, &auth.0, id, kind).await?;
        let last = stored.size().saturating_sub(1);
        Ok(File::Ok(Binary(Body::from_bytes_stream(stored.reader(0, last)))))
    }
}

async fn start(
    state: &AppState,
    auth: &Auth,
    req: &Request,
    group: Option<[u8; 16]>,
    (types, since, format): (Option<String>, Option<String>, Option<String>),
) -> Result<Started, FhirError> {
    if let Some(format) = format.filter(|f| !FORMATS.contains(&f.as_str())) {
        return Err(FhirError::invalid("_outputFormat", format!("`{format}` is not served; use {NDJSON}")));
    }
    let types = fhir_export::types(types.as_deref()).map_err(|why| FhirError::invalid("_type", why))?;
    let since = fhir_export::since(since.as_deref()).map_err(|why| FhirError::invalid("_since", why))?;
    let request = ExportRequest { group, types, since, request: super::request_url(req) };
    let id = service::kick_off(state, &auth.0, request).await?;
    Ok(Started::Accepted(super::Links::of(req, "$export-status").url_of(&id.to_string())))
}

fn job_id(id: &str) -> Result<JobId, FhirError> {
    JobId::parse(id).ok_or_else(|| service::not_found().into())
}
