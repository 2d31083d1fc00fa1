//! The FHIR R4 format: the resource shapes served and how OpenEMR's rows map to them, as OpenEMR's
//! own FHIR API maps them. Shared by the FHIR API (`http/fhir`) and bulk export (a job).

pub mod encounter;
pub mod group;
pub mod issues;
pub mod medication;
pub mod model;
pub mod observation;
pub mod patient;

use chrono::{Local, NaiveDateTime, SecondsFormat, TimeZone};

use self::model::Reference;

pub fn instant(at: NaiveDateTime) -> Option<String> {
    Local.from_local_datetime(&at).earliest().map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, false))
}

pub fn text(value: &str) -> Option<String> {
    let value = value.trim();
    (!value.is_empty()).then(|| value.to_string())
}

/// A reference to a patient by the id OpenEMR's FHIR API gives it.
pub fn patient_reference(uuid: Option<&[u8]>) -> Reference {
    Reference {
        reference: crate::storage::openemr::uuid_registry::to_string(uuid).map(|id| format!("Patient/{id}")),
        display: None,
    }
}
