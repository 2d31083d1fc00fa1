//! Issues on OpenEMR's patient lists (`lists`): allergies, problems and medications.

use crate::domain::validation::Issues;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IssueType {
    Allergy,
    Problem,
    Medication,
}

impl IssueType {
    /// `lists.type` (an `issue_types.type`).
    pub fn db_type(self) -> &'static str {
        match self {
            Self::Allergy => "allergy",
            Self::Problem => "medical_problem",
            Self::Medication => "medication",
        }
    }

    pub fn from_db(value: &str) -> Option<Self> {
        [Self::Allergy, Self::Problem, Self::Medication].into_iter().find(|t| t.db_type() == value)
    }

    /// The audit category EventAuditLogger gives a `lists` row of this type.
    pub fn audit_category(self) -> &'static str {
        match self {
            Self::Allergy => "Allergy",
            Self::Problem => "Problem List",
            Self::Medication => "Medication",
        }
    }

    /// Code systems `lists.diagnosis` holds for this type, as OpenEMR's code pickers write them.
    pub fn code_systems(self) -> &'static [&'static str] {
        match self {
            Self::Problem => &["ICD10", "SNOMED-CT"],
            Self::Allergy => &["RXCUI", "SNOMED-CT"],
            Self::Medication => &["RXCUI"],
        }
    }
}

/// `lists.diagnosis`: `SYSTEM:CODE` entries joined by `;` (BaseService::addCoding reads them back).
pub fn diagnosis(kind: IssueType, codes: &[String], issues: &mut Issues) -> String {
    let mut out = Vec::new();
    for (i, raw) in codes.iter().enumerate() {
        let field = format!("codes[{i}]");
        let Some((system, code)) = raw.trim().split_once(':') else {
            issues.add(&field, "must be SYSTEM:CODE, e.g. ICD10:E11.9");
            continue;
        };
        let system = system.to_ascii_uppercase();
        let code_ok =
            !code.is_empty() && code.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-');
        if !kind.code_systems().contains(&system.as_str()) {
            issues.add(&field, format!("code system must be one of {}", kind.code_systems().join(", ")));
        } else if !code_ok {
            issues.add(&field, "the code may hold letters, digits, '.' and '-' only");
        } else {
            out.push(format!("{system}:{code}"));
        }
    }
    let joined = out.join(";");
    if joined.chars().count() > 255 {
        issues.add("codes", "must be at most 255 characters together");
    }
    joined
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_stored_as_openemr_joins_them() {
        let mut issues = Issues::default();
        let codes = ["icd10:E11.9".to_string(), "SNOMED-CT:44054006".to_string()];
        assert_eq!(diagnosis(IssueType::Problem, &codes, &mut issues), "ICD10:E11.9;SNOMED-CT:44054006");
        assert!(issues.0.is_empty());
        diagnosis(IssueType::Medication, &["ICD10:E11.9".into(), "RXCUI:".into(), "E11".into()], &mut issues);
        let fields: Vec<_> = issues.0.iter().map(|i| i.field.as_str()).collect();
        assert_eq!(fields, ["codes[0]", "codes[1]", "codes[2]"]);
    }
}
