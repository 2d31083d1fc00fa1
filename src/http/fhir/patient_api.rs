use poem::{Request, web::Data};
use poem_openapi::{OpenApi, param::Path, param::Query, payload::Json};

use super::{
    FhirError, Found, Links, bundle, entry,
    model::{Bundle, Patient},
    uuid_of,
};
use crate::{
    app::AppState,
    domain::{
        fhir::{date_range, sex_for, token_code},
        patient_search::{FieldMatch, normalize},
    },
    fhir::patient::patient_of,
    http::{
        auth::Auth,
        patients_api::{PatientSort, decode_cursor, encode_cursor},
    },
    service::patients,
    storage::mmt::patient_index::{Filters, Page, SortKey},
};

/// The search parameters served, as the CapabilityStatement lists them.
pub const SEARCH_PARAMS: &[(&str, &str, &str)] = &[
    ("_id", "token", "the patient's id (OpenEMR uuid)"),
    ("name", "string", "the start of any word of the first or last name"),
    ("family", "string", "the start of the last name"),
    ("given", "string", "the start of the first name"),
    ("birthdate", "date", "eq, ge, le, gt or lt and a year, month or day"),
    ("gender", "token", "male, female or unknown"),
    ("identifier", "token", "the chart number (pubpid), exactly"),
    ("phone", "token", "a phone number, compared by its digits"),
    ("email", "token", "an email address, exactly (case-insensitive)"),
];

const DEFAULT_COUNT: u32 = 20;
const MAX_COUNT: u32 = 100;

#[derive(Default)]
pub struct PatientApi;

#[OpenApi(prefix_path = "/Patient")]
impl PatientApi {
    /// One patient (US Core Patient). Needs OpenEMR `patients|demo`; audited as a demographics read.
    #[oai(path = "/:id", method = "get", operation_id = "fhir_patient_read")]
    async fn read(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        id: Path<String>,
    ) -> Result<Found<Patient>, FhirError> {
        let uuid = uuid_of(&id.0).ok_or(patients::PatientError::UnknownUuid)?;
        let row = patients::get_by_uuid(&state, &auth.0, &uuid).await?;
        let patient = patient_of(row).ok_or(patients::PatientError::UnknownUuid)?;
        Ok(Found::Ok(Json(patient)))
    }

    /// Search patients; every parameter given must match. Results are sorted by name and paged:
    /// follow the bundle's `next` link. Needs OpenEMR `patients|demo`; audited, naming every
    /// patient disclosed.
    #[oai(path = "/", method = "get", operation_id = "fhir_patient_search")]
    #[allow(clippy::too_many_arguments)]
    async fn search(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        req: &Request,
        #[oai(name = "_id")] id: Query<Option<String>>,
        name: Query<Option<String>>,
        family: Query<Option<String>>,
        given: Query<Option<String>>,
        birthdate: Query<Option<String>>,
        gender: Query<Option<String>>,
        identifier: Query<Option<String>>,
        phone: Query<Option<String>>,
        email: Query<Option<String>>,
        /// Entries per page, 0 (the total only) to 100 (default 20).
        #[oai(name = "_count")]
        count: Query<Option<u32>>,
        /// Set by the `next` link; do not build it yourself.
        #[oai(name = "_cursor")]
        cursor: Query<Option<String>>,
    ) -> Result<Found<Bundle<Patient>>, FhirError> {
        let mut filters = Filters::default();
        let mut nothing_matches = false;
        if let Some(id) = id.0 {
            let pid = match uuid_of(token_code(&id)) {
                Some(uuid) => patients::pid_of(&state, &uuid).await?,
                None => None,
            };
            match pid {
                Some(pid) => filters.fields.push(FieldMatch::Pid(pid.0)),
                None => nothing_matches = true,
            }
        }
        for (param, value, field) in [
            ("name", name.0, FieldMatch::NameWord as fn(String) -> FieldMatch),
            ("family", family.0, FieldMatch::Family),
            ("given", given.0, FieldMatch::Given),
        ] {
            if let Some(value) = value {
                let words = normalize(&value);
                if words.is_empty() {
                    return Err(FhirError::invalid(
                        param,
                        format!("`{param}` has no letters or digits to match"),
                    ));
                }
                if param == "name" {
                    filters.fields.extend(words.split(' ').map(|w| field(w.to_string())));
                } else {
                    filters.fields.push(field(words));
                }
            }
        }
        if let Some(value) = birthdate.0 {
            let (from, to) = date_range(&value).map_err(|why| FhirError::invalid("birthdate", why))?;
            filters.dob_from = from;
            filters.dob_to = to;
        }
        if let Some(value) = gender.0 {
            filters.sex = Some(sex_for(&value).map_err(|why| FhirError::invalid("gender", why))?.to_string());
        }
        if let Some(value) = identifier.0 {
            filters.fields.push(FieldMatch::ChartNumber(token_code(&value).to_string()));
        }
        if let Some(value) = phone.0 {
            let digits = crate::domain::patient_search::digits(token_code(&value));
            if digits.len() < 4 {
                return Err(FhirError::invalid("phone", "`phone` needs at least 4 digits"));
            }
            filters.fields.push(FieldMatch::Term(digits));
        }
        if let Some(value) = email.0 {
            filters.fields.push(FieldMatch::Term(deunicode::deunicode(token_code(&value)).to_lowercase()));
        }
        let count = count.0.unwrap_or(DEFAULT_COUNT);
        if count > MAX_COUNT {
            return Err(FhirError::invalid(
                "_count",
                format!("`_count` is 0 (the total only) to {MAX_COUNT}"),
            ));
        }
        let after =
            match cursor.0.as_deref() {
                Some(raw) => Some(decode_cursor(PatientSort::Name, raw).ok_or_else(|| {
                    FhirError::invalid("_cursor", "`_cursor` is not one this server issued")
                })?),
                None => None,
            };
        let links = Links::of(req, "Patient");
        if nothing_matches {
            return Ok(Found::Ok(Json(links.whole(Vec::new()))));
        }
        let page =
            Page { sort: SortKey::Name, descending: false, after, offset: None, limit: u64::from(count) };
        let found = patients::search(&state, &auth.0, filters, false, &page).await?;
        let mut link = vec![links.this()];
        if count > 0
            && found.rows.len() == count as usize
            && let Some(key) = &found.last_key
        {
            link.push(links.next("_cursor", &encode_cursor(PatientSort::Name, key)));
        }
        let entries = found
            .rows
            .into_iter()
            .filter_map(patient_of)
            .map(|resource| entry(&links, resource.id.clone(), resource))
            .collect();
        Ok(Found::Ok(Json(bundle(found.total, link, entries))))
    }
}
