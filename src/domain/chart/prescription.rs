//! Prescriptions as OpenEMR's Prescription class keeps them: list-coded form, unit, route and
//! interval, the UI's active flag, substitution, and the medication-list dosage line.

use sha2::{Digest, Sha256};

/// `prescriptions.active` as the prescription screen stores it: 1 ticked, -1 unticked
/// (C_Prescription::edit_action_process); REST DELETE writes 0, so anything but 1 is inactive.
pub const ACTIVE: i32 = 1;
pub const DISCONTINUED: i32 = -1;

pub fn is_active(stored: i32) -> bool {
    stored == ACTIVE
}

/// `prescriptions.substitute`: the Prescription class's substitute_array.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Substitution {
    Allowed,
    NotAllowed,
}

impl Substitution {
    pub fn db(self) -> i32 {
        match self {
            Self::Allowed => 1,
            Self::NotAllowed => 2,
        }
    }

    pub fn from_db(value: Option<i32>) -> Option<Self> {
        match value {
            Some(1) => Some(Self::Allowed),
            Some(2) => Some(Self::NotAllowed),
            _ => None,
        }
    }

    pub fn from_allowed(allowed: bool) -> Self {
        if allowed { Self::Allowed } else { Self::NotAllowed }
    }

    /// The words OpenEMR prints.
    pub fn label(self) -> &'static str {
        match self {
            Self::Allowed => "substitution allowed",
            Self::NotAllowed => "do not substitute",
        }
    }
}

/// The OpenEMR list each coded field draws from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DrugList {
    Form,
    Unit,
    Route,
    Interval,
}

impl DrugList {
    pub const ALL: [Self; 4] = [Self::Form, Self::Unit, Self::Route, Self::Interval];

    pub fn list_id(self) -> &'static str {
        match self {
            Self::Form => "drug_form",
            Self::Unit => "drug_units",
            Self::Route => "drug_route",
            Self::Interval => "drug_interval",
        }
    }

    pub fn field(self) -> &'static str {
        match self {
            Self::Form => "form",
            Self::Unit => "unit",
            Self::Route => "route",
            Self::Interval => "interval",
        }
    }
}

/// The option a caller meant: its option id, else its title (case-insensitive). `Err` carries
/// the allowed values for the 422.
pub fn choose<'a>(options: &'a [(String, String)], given: &str) -> Result<&'a (String, String), String> {
    let given = given.trim();
    options
        .iter()
        .find(|(id, _)| id == given)
        .or_else(|| options.iter().find(|(_, title)| title.eq_ignore_ascii_case(given)))
        .ok_or_else(|| {
            let allowed: Vec<String> = options.iter().map(|(id, title)| format!("{id} ({title})")).collect();
            allowed.join(", ")
        })
}

/// Prescription::get_dosage_display: the dosage alone, or "<dosage> in <form> <interval>".
pub fn dosage_display(dosage: &str, form_title: &str, interval_title: &str) -> String {
    if form_title.is_empty() && interval_title.is_empty() {
        dosage.to_string()
    } else {
        format!("{dosage} in {form_title} {interval_title}")
    }
}

/// Prescription::gen_lists_medication's `drug_dosage_instructions`.
pub fn medication_instructions(size: &str, unit_title: &str, dosage_line: &str) -> String {
    format!("{size}{unit_title}\t\t{dosage_line}")
}

/// Prescription::set_size keeps digits, '/', '.' and '-' only.
pub fn clean_size(raw: &str) -> String {
    raw.chars().filter(|c| c.is_ascii_digit() || matches!(c, '/' | '.' | '-')).collect()
}

/// The fingerprint an idempotent create compares: same key and same fingerprint is a replay.
pub fn fingerprint(canonical_body: &[u8]) -> String {
    hex::encode(Sha256::digest(canonical_body))
}

/// Paper sizes of OpenEMR's `rx_paper_size` global, in millimetres; LETTER by default.
pub fn paper_mm(rx_paper_size: Option<&str>) -> (f32, f32) {
    match rx_paper_size.map(|s| s.trim().to_ascii_uppercase()).as_deref() {
        Some("A4") => (210.0, 297.0),
        Some("LEGAL") => (215.9, 355.6),
        Some("FOLIO") => (215.9, 330.2),
        _ => (215.9, 279.4),
    }
}

/// MRN as OpenEMR prints it: pubpid left-padded with zeros to 10.
pub fn mrn(pubpid: &str) -> String {
    format!("{pubpid:0>10}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> Vec<(String, String)> {
        vec![("2".into(), "tablet".into()), ("3".into(), "capsule".into())]
    }

    #[test]
    fn a_list_value_is_chosen_by_code_or_title_and_unknown_ones_name_the_allowed() {
        let options = opts();
        assert_eq!(choose(&options, "2").unwrap().1, "tablet");
        assert_eq!(choose(&options, "Capsule").unwrap().0, "3");
        assert_eq!(choose(&options, "syrup").unwrap_err(), "2 (tablet), 3 (capsule)");
    }

    #[test]
    fn medication_line_is_built_as_gen_lists_medication_does() {
        let line = dosage_display("1", "tablet", "b.i.d.");
        assert_eq!(medication_instructions("500", "mg", &line), "500mg\t\t1 in tablet b.i.d.");
        assert_eq!(dosage_display("2 puffs", "", ""), "2 puffs");
        assert_eq!(clean_size("500 mg"), "500");
    }

    #[test]
    fn paper_and_mrn_follow_openemr() {
        assert_eq!(paper_mm(None), (215.9, 279.4));
        assert_eq!(paper_mm(Some("a4")), (210.0, 297.0));
        assert_eq!(mrn("1234"), "0000001234");
        assert!(!is_active(DISCONTINUED) && !is_active(0) && is_active(ACTIVE));
    }
}
