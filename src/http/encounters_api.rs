use chrono::NaiveDateTime;
use poem::web::Data;
use poem_openapi::{ApiResponse, Object, OpenApi, param::Path, param::Query, payload::Json};

use crate::{
    app::AppState,
    domain::{encounter::NewEncounterInput, patient::Pid, validation::Issues},
    http::{ApiTags, auth::Auth, problem::ApiError},
    service::encounters,
    storage::openemr::{encounters::EncounterRow, uuid_registry},
};

#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
pub struct Encounter {
    /// The encounter number: OpenEMR's key for an encounter everywhere but form_encounter itself.
    pub encounter: i64,
    pub uuid: Option<String>,
    pub pid: i64,
    pub date: Option<NaiveDateTime>,
    pub date_end: Option<NaiveDateTime>,
    pub reason: String,
    pub facility_id: i64,
    pub facility: Option<String>,
    pub provider_id: Option<i64>,
    pub provider_name: Option<String>,
    /// Visit category id (`openemr_postcalendar_categories`).
    pub category_id: i64,
    pub category: Option<String>,
    /// HL7 ActEncounterCode, e.g. AMB.
    pub class_code: String,
    pub sensitivity: Option<String>,
}

impl From<EncounterRow> for Encounter {
    fn from(r: EncounterRow) -> Self {
        Self {
            encounter: r.encounter,
            uuid: uuid_registry::to_string(r.uuid.as_deref()),
            pid: r.pid,
            date: r.date,
            date_end: r.date_end,
            reason: r.reason.unwrap_or_default(),
            facility_id: i64::from(r.facility_id),
            facility: r.facility,
            provider_id: r.provider_id.filter(|p| *p > 0).map(i64::from),
            provider_name: r.provider_name,
            category_id: i64::from(r.pc_catid),
            category: r.category,
            class_code: r.class_code,
            sensitivity: r.sensitivity,
        }
    }
}

/// A new encounter. Only these fields exist; any other is rejected.
#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct EncounterInput {
    pub pid: Option<i64>,
    /// YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS]; defaults to now.
    pub date: Option<String>,
    pub reason: Option<String>,
    pub facility_id: Option<i64>,
    /// Defaults to `facility_id`.
    pub billing_facility_id: Option<i64>,
    /// Defaults to the caller; someone else's needs `encounters|notes_a`.
    pub provider_id: Option<i64>,
    /// Visit category; defaults to 5, Office Visit.
    pub category_id: Option<i64>,
    /// Defaults to AMB.
    pub class_code: Option<String>,
}

#[derive(Object)]
pub struct EncounterPage {
    pub items: Vec<Encounter>,
    pub total: i64,
    pub page: u32,
    pub page_size: u32,
}

#[derive(ApiResponse)]
pub enum PageResponse {
    #[oai(status = 200)]
    Ok(Json<EncounterPage>),
}

#[derive(ApiResponse)]
pub enum EncounterResponse {
    #[oai(status = 200)]
    Ok(Json<Encounter>),
}

#[derive(ApiResponse)]
pub enum Created {
    /// Created with the next encounter number from OpenEMR's `sequences`.
    #[oai(status = 201)]
    Created(Json<Encounter>, #[oai(header = "Location")] String),
}

#[derive(Default)]
pub struct EncountersApi;

async fn page_of(
    state: &AppState,
    auth: Auth,
    pid: i64,
    page: Option<u32>,
    page_size: Option<u32>,
) -> Result<PageResponse, ApiError> {
    let super::paging::Window { page, page_size, offset } = super::paging::window(page, page_size);
    let found = encounters::list_for_patient(state, &auth.0, Pid(pid), page_size, offset).await?;
    Ok(PageResponse::Ok(Json(EncounterPage {
        items: found.rows.into_iter().map(Encounter::from).collect(),
        total: found.total,
        page,
        page_size,
    })))
}

#[OpenApi(tag = "ApiTags::Encounters")]
impl EncountersApi {
    /// A patient's encounters, newest first.
    ///
    /// With OpenEMR `encounters|notes_a` every encounter; with `encounters|notes` only those the
    /// caller provided.
    #[oai(path = "/patients/:pid/encounters/", method = "get", operation_id = "patient_encounters")]
    async fn for_patient(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        pid: Path<i64>,
        page: Query<Option<u32>>,
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))] page_size: Query<Option<u32>>,
    ) -> Result<PageResponse, ApiError> {
        page_of(&state, auth, pid.0, page.0, page_size.0).await
    }

    /// Encounters of the patient given by `patient` (a pid), newest first.
    #[oai(path = "/encounters/", method = "get", operation_id = "encounters_list")]
    async fn list(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        patient: Query<Option<i64>>,
        page: Query<Option<u32>>,
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))] page_size: Query<Option<u32>>,
    ) -> Result<PageResponse, ApiError> {
        let Some(pid) = patient.0 else {
            let mut issues = Issues::default();
            issues.add("patient", "is required: the pid whose encounters to list");
            return Err(issues.into());
        };
        page_of(&state, auth, pid, page.0, page_size.0).await
    }

    /// One encounter, by encounter number.
    #[oai(path = "/encounters/:encounter/", method = "get", operation_id = "encounters_get")]
    async fn get(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        encounter: Path<i64>,
    ) -> Result<EncounterResponse, ApiError> {
        let row = encounters::get(&state, &auth.0, encounter.0).await?;
        Ok(EncounterResponse::Ok(Json(row.into())))
    }

    /// Open an encounter as OpenEMR's new-encounter screen does.
    ///
    /// Takes the next number from `sequences`, registers a uuid, writes `form_encounter` (facility
    /// name and place of service copied from the facility) and its `newpatient` form row.
    #[oai(path = "/encounters/", method = "post", operation_id = "encounters_create")]
    async fn create(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        body: Json<EncounterInput>,
    ) -> Result<Created, ApiError> {
        let b = body.0;
        let input = NewEncounterInput {
            pid: b.pid,
            date: b.date,
            reason: b.reason,
            facility_id: b.facility_id,
            billing_facility_id: b.billing_facility_id,
            provider_id: b.provider_id,
            pc_catid: b.category_id,
            class_code: b.class_code,
        };
        let row = encounters::create(&state, &auth.0, input).await?;
        let location = format!("/api/encounters/{}/", row.encounter);
        Ok(Created::Created(Json(row.into()), location))
    }
}
