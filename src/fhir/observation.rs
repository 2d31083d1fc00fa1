//! Observation (vital signs): each measurement of OpenEMR's vitals form, coded as OpenEMR's FHIR
//! API codes it, with the ids its `uuid_mapping` gives them.

use std::collections::BTreeMap;

use super::{
    instant,
    model::{CodeableConcept, Coding, Meta, Observation, ObservationComponent, Quantity, Reference},
};
use crate::{
    domain::{
        chart::vitals::Measure,
        fhir::{BLOOD_PRESSURE, BMI, DIASTOLIC, SYSTOLIC, VITAL_SIGNS, VITALS_PANEL},
    },
    storage::openemr::chart::vitals::VitalsRow,
};

pub const VITAL_SIGNS_PROFILE: &str = "http://hl7.org/fhir/StructureDefinition/vitalsigns";
pub const LOINC: &str = "http://loinc.org";

fn concept(code: &str, display: &str) -> CodeableConcept {
    CodeableConcept {
        coding: vec![Coding {
            system: Some(LOINC.into()),
            code: Some(code.into()),
            display: Some(display.into()),
        }],
        text: Some(display.into()),
    }
}

fn quantity(value: f64, unit: &str) -> Quantity {
    // The columns are floats: 165.3 reads back as 165.30000305.
    let value = (value * 100.0).round() / 100.0;
    Quantity { value, unit: unit.into(), system: "http://unitsofmeasure.org".into(), code: unit.into() }
}

/// The form's Observations that have a value and an id, each with its LOINC code; the vital signs
/// panel lists the others as members.
pub fn observations(
    row: &VitalsRow,
    ids: Option<&BTreeMap<String, [u8; 16]>>,
    subject: &Reference,
) -> Vec<(Observation, String)> {
    let Some(ids) = ids else { return Vec::new() };
    let measurements = row.measurements();
    let observation = |code: &str, display: &str| {
        let id = uuid::Uuid::from_bytes(*ids.get(code)?).to_string();
        Some(Observation {
            resource_type: "Observation".into(),
            id,
            meta: Meta {
                version_id: None,
                last_updated: instant(row.last_updated),
                profile: vec![VITAL_SIGNS_PROFILE.into()],
            },
            status: "final".into(),
            category: vec![CodeableConcept {
                coding: vec![Coding {
                    system: Some("http://terminology.hl7.org/CodeSystem/observation-category".into()),
                    code: Some("vital-signs".into()),
                    display: Some("Vital Signs".into()),
                }],
                text: None,
            }],
            code: concept(code, display),
            subject: subject.clone(),
            effective_date_time: row.date.and_then(instant),
            value_quantity: None,
            component: Vec::new(),
            has_member: Vec::new(),
        })
    };
    let mut found: Vec<(Observation, String)> = Vec::new();
    for sign in &VITAL_SIGNS {
        if let (Some(value), Some(mut o)) =
            (measurements.get(sign.measure), observation(sign.code, sign.display))
        {
            o.value_quantity = Some(quantity(value, sign.unit));
            found.push((o, sign.code.into()));
        }
    }
    if let (Some(bmi), Some(mut o)) = (row.bmi.filter(|b| *b > 0.0), observation(BMI.0, BMI.1)) {
        o.value_quantity = Some(quantity(bmi, "kg/m2"));
        found.push((o, BMI.0.into()));
    }
    let pressures: Vec<ObservationComponent> = [(SYSTOLIC, Measure::Bps), (DIASTOLIC, Measure::Bpd)]
        .into_iter()
        .filter_map(|((code, display), measure)| {
            measurements.get(measure).map(|v| ObservationComponent {
                code: concept(code, display),
                value_quantity: quantity(v, "mm[Hg]"),
            })
        })
        .collect();
    if let (false, Some(mut o)) = (pressures.is_empty(), observation(BLOOD_PRESSURE.0, BLOOD_PRESSURE.1)) {
        o.component = pressures;
        found.push((o, BLOOD_PRESSURE.0.into()));
    }
    if let (false, Some(mut panel)) = (found.is_empty(), observation(VITALS_PANEL.0, VITALS_PANEL.1)) {
        panel.has_member = found
            .iter()
            .map(|(o, _)| Reference { reference: Some(format!("Observation/{}", o.id)), display: None })
            .collect();
        found.insert(0, (panel, VITALS_PANEL.0.into()));
    }
    found
}
