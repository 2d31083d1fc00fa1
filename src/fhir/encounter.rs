//! Encounter (US Core): a `form_encounter` row with its provider and facility.

use super::{
    instant,
    model::{CodeableConcept, Coding, Encounter, EncounterParticipant, Identifier, Meta, Period, Reference},
    text,
};
use crate::{
    service::wall_clock_now,
    storage::openemr::{encounters::EncounterRow, uuid_registry},
};

pub const US_CORE_ENCOUNTER: &str = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-encounter";
const ACT_CODE: &str = "http://terminology.hl7.org/CodeSystem/v3-ActCode";

pub fn encounter_of(row: EncounterRow, subject: Reference) -> Option<Encounter> {
    let id = uuid_registry::to_string(row.uuid.as_deref())?;
    let today = wall_clock_now().date();
    let finished = row.date_end.is_some() || row.date.is_some_and(|d| d.date() < today);
    // A reference to the served resource, named as OpenEMR names it.
    let refer = |kind: &str, uuid: Option<&[u8]>, name: Option<&str>| {
        let reference = uuid_registry::to_string(uuid).map(|id| format!("{kind}/{id}"));
        let display = name.and_then(text);
        (reference.is_some() || display.is_some()).then_some(Reference { reference, display })
    };
    Some(Encounter {
        resource_type: "Encounter".into(),
        id,
        meta: Meta { version_id: None, last_updated: None, profile: vec![US_CORE_ENCOUNTER.into()] },
        identifier: vec![Identifier {
            use_: Some("usual".into()),
            kind: None,
            system: Some("urn:openemr:encounter".into()),
            value: Some(row.encounter.to_string()),
        }],
        status: if finished { "finished" } else { "in-progress" }.into(),
        class: Coding { system: Some(ACT_CODE.into()), code: text(&row.class_code), display: None },
        kind: vec![CodeableConcept {
            coding: Vec::new(),
            text: row.category.as_deref().and_then(text).or_else(|| Some("Visit".into())),
        }],
        subject,
        participant: refer("Practitioner", row.provider_uuid.as_deref(), row.provider_name.as_deref())
            .map(|individual| EncounterParticipant { individual })
            .into_iter()
            .collect(),
        period: row.date.map(|start| Period { start: instant(start), end: row.date_end.and_then(instant) }),
        reason_code: row
            .reason
            .as_deref()
            .and_then(text)
            .map(|reason| CodeableConcept { coding: Vec::new(), text: Some(reason) })
            .into_iter()
            .collect(),
        service_provider: refer("Organization", row.facility_uuid.as_deref(), row.facility.as_deref()),
    })
}
