//! Encounter: OpenEMR's visits (`form_encounter`), with the encounter API's provider scope,
//! sensitivity checks and audit.

use poem::{Request, web::Data};
use poem_openapi::{OpenApi, param::Path, param::Query, payload::Json};

use super::{
    FhirError, Found, Links, bundle, entry,
    model::{Bundle, Encounter},
    offset_count, offset_links, patient_reference, searched_patient, subject_of, uuid_of,
};
use crate::{
    app::AppState,
    fhir::encounter::encounter_of,
    http::auth::Auth,
    service::encounters::{self, EncounterError},
};

/// The search parameters served, as the CapabilityStatement lists them.
pub const SEARCH_PARAMS: &[(&str, &str, &str)] = &[
    ("patient", "reference", "the patient's id; required"),
    ("_count", "number", "entries per page, 1 to 100 (default 20); newest first"),
];

#[derive(Default)]
pub struct EncounterApi;

#[OpenApi(prefix_path = "/Encounter")]
impl EncounterApi {
    /// One visit. Needs the encounter's OpenEMR rights (`encounters|notes` for one's own,
    /// `encounters|notes_a` for anyone's, and its sensitivity); audited.
    #[oai(path = "/:id", method = "get", operation_id = "fhir_encounter_read")]
    async fn read(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        id: Path<String>,
    ) -> Result<Found<Encounter>, FhirError> {
        let uuid = uuid_of(&id.0).ok_or(EncounterError::UnknownUuid)?;
        let row = encounters::get_by_uuid(&state, &auth.0, &uuid).await?;
        let subject = subject_of(&state, crate::domain::patient::Pid(row.pid)).await?;
        let encounter = encounter_of(row, subject).ok_or(EncounterError::UnknownUuid)?;
        Ok(Found::Ok(Json(encounter)))
    }

    /// A patient's visits, newest first, paged by `next` links. Needs the same rights as the
    /// encounter list of `/api`; audited.
    #[oai(path = "/", method = "get", operation_id = "fhir_encounter_search")]
    async fn search(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        req: &Request,
        /// The patient's id (`Patient/{id}` or `{id}`); required.
        patient: Query<Option<String>>,
        #[oai(name = "_count")] count: Query<Option<u32>>,
        /// Set by the `next` link.
        #[oai(name = "_offset")]
        offset: Query<Option<u64>>,
    ) -> Result<Found<Bundle<Encounter>>, FhirError> {
        let count = offset_count(count.0)?;
        let links = Links::of(req, "Encounter");
        let Some((pid, uuid)) = searched_patient(&state, patient.0).await? else {
            return Ok(Found::Ok(Json(links.whole(Vec::new()))));
        };
        let offset = offset.0.unwrap_or(0);
        let page = encounters::list_for_patient(&state, &auth.0, pid, count, offset).await?;
        let reference = patient_reference(Some(&uuid[..]));
        let link = offset_links(&links, offset, count, page.total);
        let entries = page
            .rows
            .into_iter()
            .filter_map(|row| encounter_of(row, reference.clone()))
            .map(|e| entry(&links, e.id.clone(), e))
            .collect();
        Ok(Found::Ok(Json(bundle(page.total, link, entries))))
    }
}
