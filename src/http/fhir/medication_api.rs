//! MedicationRequest: OpenEMR's prescriptions, with the prescription API's `patients|rx` check
//! and audit.

use std::collections::HashMap;

use poem::{Request, web::Data};
use poem_openapi::{OpenApi, param::Path, param::Query, payload::Json};

use super::{
    FhirError, Found, Links, entry, instant,
    model::{Bundle, CodeableConcept, Coding, DispenseRequest, Dosage, MedicationRequest, Meta, Reference},
    patient_reference, searched_patient, subject_of, text, uuid_of,
};
use crate::{
    app::AppState,
    domain::patient::Pid,
    http::auth::Auth,
    service::chart::{ChartError, prescriptions},
    storage::openemr::{
        chart::prescriptions::PrescriptionRow,
        providers::{self, ProviderRow},
        uuid_registry,
    },
};

pub const US_CORE_MEDICATION_REQUEST: &str =
    "http://hl7.org/fhir/us/core/StructureDefinition/us-core-medicationrequest";
const RXNORM: &str = "http://www.nlm.nih.gov/research/umls/rxnorm";
const INTENTS: [&str; 8] = [
    "proposal",
    "plan",
    "order",
    "original-order",
    "reflex-order",
    "filler-order",
    "instance-order",
    "option",
];

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
    Ok(providers::list(&state.pool).await?.iter().map(|p| (p.id, practitioner_reference(p))).collect())
}

/// A provider as a reference to the Practitioner served, named.
pub(super) fn practitioner_reference(p: &ProviderRow) -> Reference {
    let name =
        format!("{} {}", p.fname.as_deref().unwrap_or_default(), p.lname.as_deref().unwrap_or_default());
    Reference {
        reference: uuid_registry::to_string(p.uuid.as_deref()).map(|id| format!("Practitioner/{id}")),
        display: text(&name),
    }
}

fn request_of(
    row: PrescriptionRow,
    subject: &Reference,
    requesters: &HashMap<i64, Reference>,
) -> Option<MedicationRequest> {
    let id = uuid_registry::to_string(row.uuid.as_deref())?;
    let drug = row.drug.as_deref().and_then(text);
    let coding = row
        .rxnorm_drugcode
        .as_deref()
        .and_then(text)
        .map(|code| Coding { system: Some(RXNORM.into()), code: Some(code), display: drug.clone() })
        .into_iter()
        .collect();
    let intent =
        row.request_intent.as_deref().map(str::trim).filter(|i| INTENTS.contains(i)).unwrap_or("order");
    let instructions = row
        .drug_dosage_instructions
        .as_deref()
        .and_then(text)
        .or_else(|| row.dosage.as_deref().and_then(text));
    let requester = row
        .provider_id
        .and_then(|p| requesters.get(&p).cloned())
        .unwrap_or(Reference { reference: None, display: Some("Unknown prescriber".into()) });
    Some(MedicationRequest {
        resource_type: "MedicationRequest".into(),
        id,
        meta: Meta {
            version_id: None,
            last_updated: row.date_modified.and_then(instant),
            profile: vec![US_CORE_MEDICATION_REQUEST.into()],
        },
        status: if row.active == 1 { "active" } else { "stopped" }.into(),
        intent: intent.into(),
        medication_codeable_concept: CodeableConcept { coding, text: drug },
        subject: subject.clone(),
        authored_on: row.date_added.and_then(instant),
        requester,
        dosage_instruction: instructions.map(|text| Dosage { text: Some(text) }).into_iter().collect(),
        dispense_request: row
            .refills
            .and_then(|r| u32::try_from(r).ok())
            .map(|r| DispenseRequest { number_of_repeats_allowed: Some(r) }),
    })
}
