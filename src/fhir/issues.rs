//! Condition and AllergyIntolerance (US Core): OpenEMR's problem list and allergies (`lists`).

use super::{
    instant,
    model::{AllergyIntolerance, AllergyReaction, CodeableConcept, Coding, Condition, Meta, Reference},
    text,
};
use crate::{
    domain::fhir,
    service::wall_clock_now,
    storage::openemr::{chart::issues::IssueRow, uuid_registry},
};

pub const US_CORE_CONDITION: &str = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-condition";
pub const US_CORE_ALLERGY: &str =
    "http://hl7.org/fhir/us/core/StructureDefinition/us-core-allergyintolerance";

fn concept(system: &str, code: &str) -> CodeableConcept {
    CodeableConcept {
        coding: vec![Coding { system: Some(system.into()), code: Some(code.into()), display: None }],
        text: None,
    }
}

/// The issue's title as text, with the codes of its `diagnosis`.
fn code_of(row: &IssueRow) -> CodeableConcept {
    let coding = fhir::codings(row.diagnosis.as_deref().unwrap_or_default())
        .into_iter()
        .map(|(system, code)| Coding { system: system.map(Into::into), code: Some(code), display: None })
        .collect();
    CodeableConcept { coding, text: row.title.as_deref().and_then(text) }
}

fn meta(row: &IssueRow, profile: &str) -> Meta {
    Meta { version_id: None, last_updated: instant(row.modifydate), profile: vec![profile.into()] }
}

fn clinical_status(row: &IssueRow, system: &str) -> CodeableConcept {
    let ended = row.enddate.map(|e| e.date());
    concept(system, fhir::clinical_status(row.outcome, ended, wall_clock_now().date()))
}

pub fn condition_of(row: IssueRow, patient: &Reference) -> Option<Condition> {
    let id = uuid_registry::to_string(row.uuid.as_deref())?;
    let verification = fhir::verification(&row.verification, fhir::CONDITION_VERIFICATION);
    Some(Condition {
        resource_type: "Condition".into(),
        id,
        meta: meta(&row, US_CORE_CONDITION),
        clinical_status: Some(clinical_status(
            &row,
            "http://terminology.hl7.org/CodeSystem/condition-clinical",
        )),
        verification_status: verification
            .map(|v| concept("http://terminology.hl7.org/CodeSystem/condition-ver-status", v)),
        category: vec![concept(
            "http://terminology.hl7.org/CodeSystem/condition-category",
            "problem-list-item",
        )],
        code: code_of(&row),
        subject: patient.clone(),
        onset_date_time: row.begdate.and_then(instant),
        abatement_date_time: row.enddate.and_then(instant),
        recorded_date: row.date.and_then(instant),
    })
}

pub fn allergy_of(row: IssueRow, patient: &Reference) -> Option<AllergyIntolerance> {
    let id = uuid_registry::to_string(row.uuid.as_deref())?;
    let verification = fhir::verification(&row.verification, fhir::ALLERGY_VERIFICATION);
    let reaction = text(&row.reaction).map(|manifestation| AllergyReaction {
        manifestation: vec![CodeableConcept { coding: Vec::new(), text: Some(manifestation) }],
        severity: row.severity_al.as_deref().and_then(fhir::reaction_severity).map(Into::into),
    });
    Some(AllergyIntolerance {
        resource_type: "AllergyIntolerance".into(),
        id,
        meta: meta(&row, US_CORE_ALLERGY),
        clinical_status: Some(clinical_status(
            &row,
            "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
        )),
        verification_status: verification
            .map(|v| concept("http://terminology.hl7.org/CodeSystem/allergyintolerance-verification", v)),
        code: code_of(&row),
        patient: patient.clone(),
        onset_date_time: row.begdate.and_then(instant),
        recorded_date: row.date.and_then(instant),
        reaction: reaction.into_iter().collect(),
    })
}
