//! FHIR bulk export (Bulk Data Access 1.0): which resource types can be exported and how a
//! kick-off request's `_type` and `_since` are read.

use chrono::{DateTime, NaiveDateTime};

/// The resource types an export writes, one NDJSON file each, in this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ExportType {
    Patient,
    Encounter,
    Condition,
    AllergyIntolerance,
    MedicationRequest,
    Observation,
}

impl ExportType {
    pub const ALL: [Self; 6] = [
        Self::Patient,
        Self::Encounter,
        Self::Condition,
        Self::AllergyIntolerance,
        Self::MedicationRequest,
        Self::Observation,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Patient => "Patient",
            Self::Encounter => "Encounter",
            Self::Condition => "Condition",
            Self::AllergyIntolerance => "AllergyIntolerance",
            Self::MedicationRequest => "MedicationRequest",
            Self::Observation => "Observation",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

/// `_type`: a comma-separated list of types, every one exportable; all of them when absent.
pub fn types(value: Option<&str>) -> Result<Vec<ExportType>, String> {
    let Some(value) = value.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(ExportType::ALL.to_vec());
    };
    let mut types = Vec::new();
    for name in value.split(',').map(str::trim) {
        let kind = ExportType::parse(name).ok_or_else(|| {
            let known: Vec<_> = ExportType::ALL.iter().map(|t| t.as_str()).collect();
            format!("`{name}` cannot be exported; the types are {}", known.join(", "))
        })?;
        types.push(kind);
    }
    types.sort();
    types.dedup();
    Ok(types)
}

/// `_since`: a FHIR instant (with its offset), as the server's local time OpenEMR stores.
pub fn since(value: Option<&str>) -> Result<Option<NaiveDateTime>, String> {
    let Some(value) = value.map(str::trim).filter(|v| !v.is_empty()) else { return Ok(None) };
    let at = DateTime::parse_from_rfc3339(value)
        .map_err(|_| format!("`{value}` is not a FHIR instant such as 2026-01-31T08:00:00Z"))?;
    Ok(Some(at.with_timezone(&chrono::Local).naive_local()))
}

/// Whether a resource last changed at `changed` belongs in an export since `since`; a resource
/// whose change time is not recorded is always included, as the specification allows.
pub fn changed_since(changed: Option<NaiveDateTime>, since: Option<NaiveDateTime>) -> bool {
    match (changed, since) {
        (Some(changed), Some(since)) => changed >= since,
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn types_default_to_all_and_refuse_unknown_names() {
        assert_eq!(types(None).unwrap(), ExportType::ALL.to_vec());
        assert_eq!(
            types(Some("Observation, Patient,Patient")).unwrap(),
            vec![ExportType::Patient, ExportType::Observation]
        );
        let refused = types(Some("Patient,Practitioner")).unwrap_err();
        assert!(refused.contains("`Practitioner` cannot be exported"), "{refused}");
    }

    #[test]
    fn since_reads_an_instant_with_its_offset_and_refuses_a_bare_date() {
        let at = since(Some("2026-01-31T08:00:00+00:00")).unwrap().unwrap();
        let utc = chrono::Local.from_local_datetime(&at).unwrap().naive_utc();
        assert_eq!(utc.to_string(), "2026-01-31 08:00:00");
        assert!(since(Some("2026-01-31")).is_err());
        assert_eq!(since(None).unwrap(), None);
        assert!(changed_since(None, Some(at)));
        assert!(!changed_since(Some(at - chrono::Duration::seconds(1)), Some(at)));
    }
}
