//! Patient (US Core): a `patient_data` row as OpenEMR's FHIR API shapes it.

use super::{
    instant,
    model::{Address, CodeableConcept, Coding, ContactPoint, HumanName, Identifier, Meta, Patient},
    text,
};
use crate::{
    domain::fhir::gender_of,
    storage::openemr::{patients::PatientRow, uuid_registry},
};

pub const US_CORE_PATIENT: &str = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient";
const V2_0203: &str = "http://terminology.hl7.org/CodeSystem/v2-0203";

/// The US Core shape of a `patient_data` row; `None` while OpenEMR has not given it a uuid.
pub fn patient_of(row: PatientRow) -> Option<Patient> {
    let id = uuid_registry::to_string(row.uuid.as_deref())?;
    let given: Vec<String> = [&row.fname, &row.mname].into_iter().filter_map(|n| text(n)).collect();
    let mut name = vec![HumanName { use_: Some("official".into()), family: text(&row.lname), given }];
    if let Some(preferred) = row.preferred_name.as_deref().and_then(text) {
        name.push(HumanName { use_: Some("usual".into()), family: None, given: vec![preferred] });
    }
    let telecom = [
        ("phone", &row.phone_home, "home"),
        ("phone", &row.phone_cell, "mobile"),
        ("phone", &row.phone_biz, "work"),
        ("email", &row.email, "home"),
    ]
    .into_iter()
    .filter_map(|(system, value, use_)| {
        text(value).map(|value| ContactPoint {
            system: Some(system.into()),
            value: Some(value),
            use_: Some(use_.into()),
        })
    })
    .collect();
    let street: Vec<String> = text(&row.street).into_iter().collect();
    let address = (!street.is_empty()
        || [&row.city, &row.state, &row.postal_code].iter().any(|v| text(v).is_some()))
    .then(|| Address {
        line: street,
        city: text(&row.city),
        state: text(&row.state),
        postal_code: text(&row.postal_code),
    });
    let chart_number = Identifier {
        use_: Some("usual".into()),
        kind: Some(CodeableConcept {
            coding: vec![Coding { system: Some(V2_0203.into()), code: Some("PT".into()), display: None }],
            text: Some("Patient chart number".into()),
        }),
        system: Some(V2_0203.into()),
        value: text(&row.pubpid).or_else(|| Some(row.pid.to_string())),
    };
    Some(Patient {
        resource_type: "Patient".into(),
        id,
        meta: Meta {
            version_id: None,
            last_updated: row.last_updated.or(row.date).and_then(instant),
            profile: vec![US_CORE_PATIENT.into()],
        },
        identifier: vec![chart_number],
        active: true,
        name,
        telecom,
        gender: gender_of(&row.sex).into(),
        birth_date: row.dob.map(|d| d.format("%Y-%m-%d").to_string()),
        deceased_date_time: row.deceased_date.and_then(instant),
        address: address.into_iter().collect(),
    })
}
