//! MedicationRequest: OpenEMR's prescriptions, with the prescription API's `patients|rx` check
//! and audit.

use std::collections::HashMap;

use poem::{Request, web::Data};
use poem_openapi::{OpenApi, param::Path, param::Query, payload::Json};

use super::{
    FhirError, Found, Links, entry,
    model::{Bundle, MedicationRequest, Reference},
    patient_reference, searched_patient, subject_of, uuid_of,
};
use crate::{
    app::AppState,
    domain::patient::Pid,
    fhir::medication::{self, request_of},
    http::auth::Auth,
    service::chart::{ChartError, prescriptions},
    storage::openemr::providers,
};

#[derive(Default)]
pub struct MedicationRequestApi;

#[OpenApi(prefix_path = "/MedicationRequest")]
impl MedicationRequestApi {
    /// One prescription. Needs OpenEMR `patients|rx`; audited.
    #[oai(path = "/:id", method = "get", operation_id = "fhir_medication_request_read")]
    async fn read(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        id: Path<String>,
    ) -> Result<Found<MedicationRequest>, FhirError> {
        let missing = || ChartError::NotFound("no prescription with this id".into());
        let uuid = uuid_of(&id.0).ok_or_else(missing)?;
        let rx = prescriptions::get_by_uuid(&state, &auth.0, &uuid).await?;
        let pid = Pid(rx.row.patient_id.unwrap_or_default());
        let subject = subject_of(&state, pid).await?;
        let requesters = requesters(&state).await?;
        let request = request_of(rx.row, &subject, &requesters).ok_or_else(missing)?;
        Ok(Found::Ok(Json(request)))
    }

    /// A patient's prescriptions, active first, all on one page. Needs OpenEMR `patients|rx`;
    /// audited.
    #[oai(path = "/", method = "get", operation_id = "fhir_medication_request_search")]
    async fn search(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        req: &Request,
        /// The patient's id (`Patient/{id}` or `{id}`); required.
        patient: Query<Option<String>>,
    ) -> Result<Found<Bundle<MedicationRequest>>, FhirError> {
        let links = Links::of(req, "MedicationRequest");
        let Some((pid, uuid)) = searched_patient(&state, patient.0).await? else {
            return Ok(Found::Ok(Json(links.whole(Vec::new()))));
        };
        let found = prescriptions::list(&state, &auth.0, pid).await?;
        let subject = patient_reference(Some(&uuid[..]));
        let requesters = requesters(&state).await?;
        let entries: Vec<_> = found
            .into_iter()
            .filter_map(|rx| request_of(rx.row, &subject, &requesters))
            .map(|r| entry(&links, r.id.clone(), r))
            .collect();
        Ok(Found::Ok(Json(links.whole(entries))))
    }
}

/// Providers by user id, as references to the Practitioners served.
pub(super) async fn requesters(state: &AppState) -> Result<HashMap<i64, Reference>, FhirError> {
    Ok(medication::requesters(&providers::list(&state.pool).await?))
}
