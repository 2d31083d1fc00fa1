//! MedicationRequest (US Core): OpenEMR's prescriptions, with their prescribers.

use std::collections::HashMap;

use super::{
    instant,
    model::{CodeableConcept, Coding, DispenseRequest, Dosage, MedicationRequest, Meta, Reference},
    text,
};
use crate::storage::openemr::{chart::prescriptions::PrescriptionRow, providers::ProviderRow, uuid_registry};

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

/// Providers by user id, as references to the Practitioners served.
pub fn requesters(providers: &[ProviderRow]) -> HashMap<i64, Reference> {
    providers.iter().map(|p| (p.id, practitioner_reference(p))).collect()
}

/// A provider as a reference to the Practitioner served, named.
pub fn practitioner_reference(p: &ProviderRow) -> Reference {
    let name =
        format!("{} {}", p.fname.as_deref().unwrap_or_default(), p.lname.as_deref().unwrap_or_default());
    Reference {
        reference: uuid_registry::to_string(p.uuid.as_deref()).map(|id| format!("Practitioner/{id}")),
        display: text(&name),
    }
}

pub fn request_of(
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
