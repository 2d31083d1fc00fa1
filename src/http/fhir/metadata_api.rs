use poem_openapi::{ApiResponse, OpenApi, payload::Json};

use super::{
    issues_api::BY_PATIENT,
    model::{CapabilityStatement, Interaction, Rest, RestOperation, RestResource, SearchParam, Software},
    patient_api::SEARCH_PARAMS,
};

#[derive(ApiResponse)]
pub enum MetadataResponse {
    #[oai(status = 200, content_type = "application/fhir+json")]
    Ok(Json<CapabilityStatement>),
}

#[derive(Default)]
pub struct MetadataApi;

#[OpenApi]
impl MetadataApi {
    /// The CapabilityStatement: exactly the resources, interactions and search parameters served.
    /// No authentication, as FHIR clients read it before they sign in.
    #[oai(path = "/metadata", method = "get", operation_id = "fhir_metadata")]
    async fn metadata(&self) -> MetadataResponse {
        MetadataResponse::Ok(Json(capabilities()))
    }
}

/// When the capabilities below last changed.
/// The resources that can be created, besides read and searched.
const WRITTEN: &[&str] = &["Observation", "Appointment", "DocumentReference", "Communication"];
/// The resources that are only read by id.
const READ_ONLY: &[&str] = &["Binary"];
const READ: &[&str] = &["read", "search-type"];
const WRITE: &[&str] = &["read", "search-type", "create"];
const CHANGED: &str = "2026-12-01";

fn capabilities() -> CapabilityStatement {
    let interactions = |codes: &[&str]| codes.iter().map(|c| Interaction { code: (*c).into() }).collect();
    let params = |list: &[(&str, &str, &str)]| {
        list.iter()
            .map(|(name, kind, doc)| SearchParam {
                name: (*name).into(),
                kind: (*kind).into(),
                documentation: Some((*doc).into()),
            })
            .collect()
    };
    CapabilityStatement {
        resource_type: "CapabilityStatement".into(),
        status: "active".into(),
        date: CHANGED.into(),
        kind: "instance".into(),
        software: Software { name: "mmt-sidecar".into(), version: env!("CARGO_PKG_VERSION").into() },
        fhir_version: "4.0.1".into(),
        format: vec!["json".into()],
        rest: vec![Rest {
            mode: "server".into(),
            resource: [
                ("Patient", crate::fhir::patient::US_CORE_PATIENT, SEARCH_PARAMS),
                ("Condition", crate::fhir::issues::US_CORE_CONDITION, BY_PATIENT),
                ("AllergyIntolerance", crate::fhir::issues::US_CORE_ALLERGY, BY_PATIENT),
                ("Encounter", crate::fhir::encounter::US_CORE_ENCOUNTER, super::encounter_api::SEARCH_PARAMS),
                (
                    "Observation",
                    crate::fhir::observation::VITAL_SIGNS_PROFILE,
                    super::observation_api::SEARCH_PARAMS,
                ),
                ("MedicationRequest", crate::fhir::medication::US_CORE_MEDICATION_REQUEST, BY_PATIENT),
                ("Appointment", "", super::appointment_api::SEARCH_PARAMS),
                ("Schedule", "", super::schedule_api::SCHEDULE_PARAMS),
                ("Slot", "", super::schedule_api::SLOT_PARAMS),
                ("Practitioner", super::directory_api::US_CORE_PRACTITIONER, &[]),
                ("Organization", super::directory_api::US_CORE_ORGANIZATION, &[]),
                (
                    "DocumentReference",
                    super::document_api::US_CORE_DOCUMENT_REFERENCE,
                    super::document_api::SEARCH_PARAMS,
                ),
                ("Binary", "", &[]),
                ("Communication", "", super::communication_api::SEARCH_PARAMS),
                ("Group", "", &[]),
            ]
            .into_iter()
            .map(|(kind, profile, search)| RestResource {
                kind: kind.into(),
                profile: Some(profile.to_string()).filter(|p| !p.is_empty()),
                interaction: interactions(match kind {
                    k if WRITTEN.contains(&k) => WRITE,
                    k if READ_ONLY.contains(&k) => &READ[..1],
                    _ => READ,
                }),
                search_param: params(search),
            })
            .collect(),
            operation: ["patient-export", "group-export"]
                .into_iter()
                .map(|op| RestOperation {
                    name: "export".into(),
                    definition: format!("http://hl7.org/fhir/uv/bulkdata/OperationDefinition/{op}"),
                })
                .collect(),
        }],
    }
}
