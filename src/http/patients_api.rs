use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{NaiveDate, NaiveDateTime};
use poem::{http::StatusCode, web::Data};
use poem_openapi::{ApiResponse, Enum, Object, OpenApi, param::Path, param::Query, payload::Json};

use crate::{
    app::AppState,
    domain::{
        patient::{DemographicsInput, Pid},
        patient_search::parse_query,
        validation::Issues,
    },
    http::{ApiTags, auth::Auth, problem::ApiError},
    service::patients,
    storage::{
        mmt::patient_index::{After, Filters, Page, SortKey},
        openemr::{patients::PatientRow, uuid_registry},
    },
};

/// Curated demographics of an OpenEMR patient.
#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
pub struct Patient {
    /// OpenEMR's patient key.
    pub pid: i64,
    pub uuid: Option<String>,
    /// The chart number shown in OpenEMR.
    pub pubpid: String,
    pub first_name: String,
    pub middle_name: String,
    pub last_name: String,
    pub preferred_name: Option<String>,
    /// Absent when unknown (including OpenEMR's legacy 0000-00-00).
    pub dob: Option<NaiveDate>,
    /// A value of OpenEMR's `sex` list, e.g. Female, Male, UNK.
    pub sex: String,
    pub phone_home: String,
    pub phone_cell: String,
    pub email: String,
    pub street: String,
    pub city: String,
    pub state: String,
    pub postal_code: String,
    /// OpenEMR user id of the patient's provider.
    pub provider_id: Option<i64>,
    pub registered_at: Option<NaiveDateTime>,
    pub updated_at: Option<NaiveDateTime>,
    pub deceased_at: Option<NaiveDateTime>,
}

impl From<PatientRow> for Patient {
    fn from(r: PatientRow) -> Self {
        Self {
            pid: r.pid,
            uuid: uuid_registry::to_string(r.uuid.as_deref()),
            pubpid: r.pubpid,
            first_name: r.fname,
            middle_name: r.mname,
            last_name: r.lname,
            preferred_name: r.preferred_name.filter(|p| !p.is_empty()),
            dob: r.dob,
            sex: r.sex,
            phone_home: r.phone_home,
            phone_cell: r.phone_cell,
            email: r.email,
            street: r.street,
            city: r.city,
            state: r.state,
            postal_code: r.postal_code,
            provider_id: r.provider_id.filter(|p| *p > 0).map(i64::from),
            registered_at: r.regdate,
            updated_at: r.last_updated.or(r.date),
            deceased_at: r.deceased_date,
        }
    }
}

/// Demographics to create or change. Only these fields exist; any other is rejected.
#[derive(Object, Default)]
#[oai(deny_unknown_fields)]
pub struct PatientInput {
    pub first_name: Option<String>,
    pub middle_name: Option<String>,
    pub last_name: Option<String>,
    pub preferred_name: Option<String>,
    /// YYYY-MM-DD, not in the future.
    pub dob: Option<String>,
    pub sex: Option<String>,
    /// Chart number; defaults to the pid and must be unique.
    pub pubpid: Option<String>,
    pub phone_home: Option<String>,
    pub phone_cell: Option<String>,
    pub email: Option<String>,
    pub street: Option<String>,
    pub city: Option<String>,
    pub state: Option<String>,
    pub postal_code: Option<String>,
    pub provider_id: Option<i64>,
}

impl From<PatientInput> for DemographicsInput {
    fn from(p: PatientInput) -> Self {
        Self {
            first_name: p.first_name,
            middle_name: p.middle_name,
            last_name: p.last_name,
            preferred_name: p.preferred_name,
            dob: p.dob,
            sex: p.sex,
            pubpid: p.pubpid,
            phone_home: p.phone_home,
            phone_cell: p.phone_cell,
            email: p.email,
            street: p.street,
            city: p.city,
            state: p.state,
            postal_code: p.postal_code,
            provider_id: p.provider_id,
        }
    }
}

#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
pub struct PatientPage {
    pub items: Vec<Patient>,
    /// Patients matching the search and filters, across all pages.
    pub total: i64,
    pub page_size: u32,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// Whose panel to list.
#[derive(Enum, Clone, Copy, PartialEq, Eq, Debug)]
pub enum Assigned {
    /// The caller's own patients: primary provider or care team member.
    #[oai(rename = "me")]
    Me,
}

#[derive(Enum, Clone, Copy, PartialEq, Eq, Debug)]
pub enum PatientSort {
    #[oai(rename = "name")]
    Name,
    #[oai(rename = "-name")]
    NameDesc,
    #[oai(rename = "dob")]
    Dob,
    #[oai(rename = "-dob")]
    DobDesc,
    #[oai(rename = "pid")]
    Pid,
    #[oai(rename = "-pid")]
    PidDesc,
    /// Best match of the `search` words first: the surname itself, then a surname starting with
    /// a word, then a given name starting with one, then the rest (phone, email, chart number);
    /// each group by name.
    #[oai(rename = "relevance")]
    Relevance,
}

impl PatientSort {
    fn key(self) -> (SortKey, bool) {
        match self {
            Self::Name => (SortKey::Name, false),
            Self::NameDesc => (SortKey::Name, true),
            Self::Dob => (SortKey::Dob, false),
            Self::DobDesc => (SortKey::Dob, true),
            Self::Pid => (SortKey::Pid, false),
            Self::PidDesc => (SortKey::Pid, true),
            Self::Relevance => (SortKey::Relevance, false),
        }
    }
}

#[derive(ApiResponse)]
pub enum PageResponse {
    #[oai(status = 200)]
    Ok(Json<PatientPage>),
}

#[derive(ApiResponse)]
pub enum PatientResponse {
    #[oai(status = 200)]
    Ok(Json<Patient>),
}

#[derive(ApiResponse)]
pub enum Created {
    /// Created, with pid, uuid and chart number allocated as OpenEMR allocates them.
    #[oai(status = 201)]
    Created(Json<Patient>, #[oai(header = "Location")] String),
}

#[derive(ApiResponse)]
pub enum Deleted {
    #[oai(status = 204)]
    Deleted,
}

const MAX_PAGE_SIZE: u32 = 100;

#[derive(serde::Serialize, serde::Deserialize)]
struct Cursor {
    sort: String,
    after: After,
}

pub(crate) fn encode_cursor(sort: PatientSort, after: &After) -> String {
    let json =
        serde_json::to_vec(&Cursor { sort: format!("{sort:?}"), after: after.clone() }).unwrap_or_default();
    URL_SAFE_NO_PAD.encode(json)
}

pub(crate) fn decode_cursor(sort: PatientSort, raw: &str) -> Option<After> {
    let cursor: Cursor = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(raw).ok()?).ok()?;
    (cursor.sort == format!("{sort:?}")).then_some(cursor.after)
}

#[derive(Default)]
pub struct PatientsApi;

#[OpenApi(prefix_path = "/patients", tag = "ApiTags::Patients")]
impl PatientsApi {
    /// Search and list patients.
    ///
    /// `search` matches, case- and accent-insensitively, the start of any name, the chart number
    /// (pubpid), the pid, a phone number (whole, or its last 7 or 4 digits) or an email; a date
    /// (YYYY-MM-DD or MM/DD/YYYY) matches the birth date. Every word must match. Page with
    /// `cursor` (stable while patients are added) or with `page`. Needs OpenEMR `patients|demo`.
    #[oai(path = "/", method = "get", operation_id = "patients_list")]
    #[allow(clippy::too_many_arguments)]
    async fn list(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        search: Query<Option<String>>,
        sex: Query<Option<String>>,
        dob_from: Query<Option<String>>,
        dob_to: Query<Option<String>>,
        /// Patients with an encounter at this facility id.
        facility: Query<Option<i64>>,
        /// Patients whose provider is this OpenEMR user id.
        provider: Query<Option<i64>>,
        /// `me`: only the caller's own panel (primary provider or care team), whatever
        /// `MMT_PATIENT_ACCESS` says.
        assigned: Query<Option<Assigned>>,
        sort: Query<Option<PatientSort>>,
        cursor: Query<Option<String>>,
        /// 1-based page number, as an alternative to `cursor`.
        page: Query<Option<u32>>,
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))] page_size: Query<Option<u32>>,
    ) -> Result<PageResponse, ApiError> {
        let mut issues = Issues::default();
        let filters = Filters {
            needles: search.0.as_deref().map(parse_query).unwrap_or_default(),
            fields: Vec::new(),
            sex: sex.0,
            dob_from: issues.optional_date("dob_from", dob_from.0),
            dob_to: issues.optional_date("dob_to", dob_to.0),
            provider_id: provider.0,
            facility_id: facility.0,
            panels: Vec::new(),
        };
        issues.into_result(())?;
        let sort = sort.0.unwrap_or(PatientSort::Name);
        let (key, descending) = sort.key();
        let page_size = page_size.0.unwrap_or(25).min(MAX_PAGE_SIZE);
        let after = match cursor.0.as_deref() {
            Some(raw) => Some(decode_cursor(sort, raw).ok_or_else(|| {
                ApiError::new(StatusCode::BAD_REQUEST, "`cursor` is not one this server issued for this sort")
            })?),
            None => None,
        };
        let offset = match (page.0, &after) {
            (Some(0), _) => return Err(ApiError::new(StatusCode::BAD_REQUEST, "`page` starts at 1")),
            (Some(_), Some(_)) => {
                return Err(ApiError::new(StatusCode::BAD_REQUEST, "use `cursor` or `page`, not both"));
            }
            (Some(p), None) => Some(u64::from(p - 1) * u64::from(page_size)),
            (None, _) => None,
        };
        // A search of only punctuation ("%", "_") has nothing to match; it must not list everyone.
        if filters.needles.is_empty() && search.0.as_deref().is_some_and(|s| !s.trim().is_empty()) {
            return Ok(PageResponse::Ok(Json(PatientPage {
                items: Vec::new(),
                total: 0,
                page_size,
                next_cursor: None,
            })));
        }
        let query = Page { sort: key, descending, after, offset, limit: u64::from(page_size) };
        let found =
            patients::search(&state, &auth.0, filters, assigned.0 == Some(Assigned::Me), &query).await?;
        let full_page = found.rows.len() == page_size as usize;
        Ok(PageResponse::Ok(Json(PatientPage {
            next_cursor: found.last_key.filter(|_| full_page).map(|k| encode_cursor(sort, &k)),
            items: found.rows.into_iter().map(Patient::from).collect(),
            total: found.total,
            page_size,
        })))
    }

    /// One patient's demographics. Needs OpenEMR `patients|demo`.
    #[oai(path = "/:pid/", method = "get", operation_id = "patients_get")]
    async fn get(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        pid: Path<i64>,
    ) -> Result<PatientResponse, ApiError> {
        let row = patients::get(&state, &auth.0, Pid(pid.0)).await?;
        Ok(PatientResponse::Ok(Json(row.into())))
    }

    /// Register a patient as OpenEMR's new-patient screen does.
    ///
    /// Needs `first_name`, `last_name`, `sex` and `dob`. Allocates pid, uuid and chart number
    /// like OpenEMR and adds the companion `history_data` row. Needs OpenEMR `patients|demo` write.
    #[oai(path = "/", method = "post", operation_id = "patients_create")]
    async fn create(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        body: Json<PatientInput>,
    ) -> Result<Created, ApiError> {
        let row = patients::create(&state, &auth.0, body.0.into()).await?;
        let location = format!("/api/patients/{}/", row.pid);
        Ok(Created::Created(Json(row.into()), location))
    }

    /// Replace a patient's curated demographics (first name, last name, sex and dob required).
    #[oai(path = "/:pid/", method = "put", operation_id = "patients_replace")]
    async fn replace(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        pid: Path<i64>,
        body: Json<PatientInput>,
    ) -> Result<PatientResponse, ApiError> {
        let input = body.0;
        let mut issues = Issues::default();
        for (field, missing) in [
            ("first_name", input.first_name.is_none()),
            ("last_name", input.last_name.is_none()),
            ("sex", input.sex.is_none()),
            ("dob", input.dob.is_none()),
        ] {
            if missing {
                issues.add(field, "is required when replacing; use PATCH to change some fields");
            }
        }
        issues.into_result(())?;
        let row = patients::update(&state, &auth.0, Pid(pid.0), input.into()).await?;
        Ok(PatientResponse::Ok(Json(row.into())))
    }

    /// Change some of a patient's curated demographics.
    #[oai(path = "/:pid/", method = "patch", operation_id = "patients_update")]
    async fn update(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        pid: Path<i64>,
        body: Json<PatientInput>,
    ) -> Result<PatientResponse, ApiError> {
        let row = patients::update(&state, &auth.0, Pid(pid.0), body.0.into()).await?;
        Ok(PatientResponse::Ok(Json(row.into())))
    }

    /// Delete a patient: refused (405) unless the server sets `MMT_ALLOW_PATIENT_DELETE=true`.
    ///
    /// OpenEMR keeps charts. Even when allowed, only a chart with no encounters or forms is
    /// deleted, and only by an OpenEMR administrator (`admin|super`).
    #[oai(path = "/:pid/", method = "delete", operation_id = "patients_delete")]
    async fn delete(&self, state: Data<&AppState>, auth: Auth, pid: Path<i64>) -> Result<Deleted, ApiError> {
        if !state.config.allow_patient_delete {
            return Err(ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "patients are not deleted through the sidecar: OpenEMR keeps charts (set MMT_ALLOW_PATIENT_DELETE=true to allow deleting empty charts)",
            ));
        }
        patients::delete(&state, &auth.0, Pid(pid.0)).await?;
        Ok(Deleted::Deleted)
    }
}
