//! OpenEMR's phpGACL permissions: which access level a user holds on an ACO (`section|value`),
//! decided the way `AclMain::aclCheckCore` decides it.

use std::{collections::BTreeMap, fmt};

/// An ACL's `return_value`, weakest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AclLevel {
    View,
    Addonly,
    Wsome,
    Write,
}

impl AclLevel {
    /// OpenEMR compares return values exactly, so anything else is no level at all.
    pub fn parse(return_value: &str) -> Option<Self> {
        match return_value {
            "view" => Some(Self::View),
            "addonly" => Some(Self::Addonly),
            "wsome" => Some(Self::Wsome),
            "write" => Some(Self::Write),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::View => "view",
            Self::Addonly => "addonly",
            Self::Wsome => "wsome",
            Self::Write => "write",
        }
    }
}

impl fmt::Display for AclLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An access control object, the thing a permission is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Aco {
    pub section: &'static str,
    pub value: &'static str,
}

impl Aco {
    pub const PATIENTS_DEMO: Self = Self { section: "patients", value: "demo" };
    pub const PATIENTS_MED: Self = Self { section: "patients", value: "med" };
    pub const PATIENTS_RX: Self = Self { section: "patients", value: "rx" };
    pub const PATIENTS_APPT: Self = Self { section: "patients", value: "appt" };
    pub const PATIENTS_NOTES: Self = Self { section: "patients", value: "notes" };
    pub const PATIENTS_DOCS: Self = Self { section: "patients", value: "docs" };
    pub const PATIENTS_DOCS_RM: Self = Self { section: "patients", value: "docs_rm" };
    pub const PATIENTS_LAB: Self = Self { section: "patients", value: "lab" };
    pub const ENCOUNTERS_NOTES: Self = Self { section: "encounters", value: "notes" };
    pub const ENCOUNTERS_NOTES_A: Self = Self { section: "encounters", value: "notes_a" };
    pub const ENCOUNTERS_CODING: Self = Self { section: "encounters", value: "coding" };
    pub const ENCOUNTERS_CODING_A: Self = Self { section: "encounters", value: "coding_a" };
    pub const ACCT_BILL: Self = Self { section: "acct", value: "bill" };
    pub const ACCT_DISC: Self = Self { section: "acct", value: "disc" };
    pub const ACCT_REP_A: Self = Self { section: "acct", value: "rep_a" };
    pub const ADMIN_SUPER: Self = Self { section: "admin", value: "super" };
    pub const ADMIN_PRACTICE: Self = Self { section: "admin", value: "practice" };
    pub const ADMIN_USERS: Self = Self { section: "admin", value: "users" };
    pub const ADMIN_DRUGS: Self = Self { section: "admin", value: "drugs" };
    pub const SENSITIVITIES_NORMAL: Self = Self { section: "sensitivities", value: "normal" };
    pub const SENSITIVITIES_HIGH: Self = Self { section: "sensitivities", value: "high" };

    /// The ACO OpenEMR checks to show an encounter of this sensitivity (`aclCheckCore('sensitivities',
    /// <value>)`). A value OpenEMR's default ACL does not know needs `high`, the stricter one.
    pub fn for_sensitivity(value: &str) -> Self {
        if value == Self::SENSITIVITIES_NORMAL.value {
            Self::SENSITIVITIES_NORMAL
        } else {
            Self::SENSITIVITIES_HIGH
        }
    }
}

impl fmt::Display for Aco {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}|{}", self.section, self.value)
    }
}

/// An ARO group the user belongs to, directly or as an ancestor of one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclGroup {
    pub value: String,
    pub name: String,
}

/// One enabled ACL that applies to the user on one ACO.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AclGrant {
    pub allow: bool,
    pub level: Option<AclLevel>,
}

/// Allowed iff some allowing grant reaches `wanted` and no grant denies: a deny always wins.
pub fn permits(grants: &[AclGrant], wanted: AclLevel) -> bool {
    grants.iter().all(|g| g.allow) && grants.iter().any(|g| g.level.is_some_and(|l| l >= wanted))
}

/// Everything a user may do, as read from phpGACL.
#[derive(Debug, Clone)]
pub struct Permissions {
    pub groups: Vec<AclGroup>,
    grants: BTreeMap<String, Vec<AclGrant>>,
}

impl Permissions {
    pub fn new(groups: Vec<AclGroup>, grants: Vec<(String, String, AclGrant)>) -> Self {
        let mut by_aco: BTreeMap<String, Vec<AclGrant>> = BTreeMap::new();
        for (section, value, grant) in grants {
            by_aco.entry(format!("{section}|{value}")).or_default().push(grant);
        }
        Self { groups, grants: by_aco }
    }

    /// `admin|super` with write access grants everything, as in OpenEMR.
    pub fn allows(&self, aco: Aco, level: AclLevel) -> bool {
        self.permits(Aco::ADMIN_SUPER, AclLevel::Write) || self.permits(aco, level)
    }

    /// `aclCheckAcoSpec` with no return value: an empty spec passes, else `section|value` at any level.
    pub fn allows_spec(&self, spec: &str) -> bool {
        if spec.is_empty() {
            return true;
        }
        let Some((section, value)) = spec.split_once('|') else { return false };
        let value = value.split('|').next().unwrap_or_default();
        self.permits(Aco::ADMIN_SUPER, AclLevel::Write)
            || self.grants.get(&format!("{section}|{value}")).is_some_and(|g| permits(g, AclLevel::View))
    }

    fn permits(&self, aco: Aco, level: AclLevel) -> bool {
        self.grants.get(&aco.to_string()).is_some_and(|grants| permits(grants, level))
    }

    /// The best allowed level on each ACO, sorted by `section|value`; denied ACOs are left out.
    pub fn effective(&self) -> Vec<(String, AclLevel)> {
        self.grants
            .iter()
            .filter(|(_, grants)| grants.iter().all(|g| g.allow))
            .filter_map(|(aco, grants)| Some((aco.clone(), grants.iter().filter_map(|g| g.level).max()?)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allow(level: AclLevel) -> AclGrant {
        AclGrant { allow: true, level: Some(level) }
    }

    fn deny(level: AclLevel) -> AclGrant {
        AclGrant { allow: false, level: Some(level) }
    }

    fn grant(aco: Aco, grant: AclGrant) -> (String, String, AclGrant) {
        (aco.section.to_string(), aco.value.to_string(), grant)
    }

    #[test]
    fn levels_parse_from_return_values_in_order() {
        let all = ["view", "addonly", "wsome", "write"].map(|s| AclLevel::parse(s).unwrap());
        assert!(all.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(all.map(AclLevel::as_str), ["view", "addonly", "wsome", "write"]);
        assert_eq!(AclLevel::parse("Write"), None);
        assert_eq!(AclLevel::parse(""), None);
    }

    #[test]
    fn aco_specs_pass_at_any_level_and_an_empty_spec_always() {
        let p = Permissions::new(vec![], vec![grant(Aco::PATIENTS_DOCS, allow(AclLevel::View))]);
        assert!(p.allows_spec("patients|docs"));
        assert!(p.allows_spec(""));
        assert!(!p.allows_spec("patients|demo"));
        assert!(!p.allows_spec("patients"));
    }

    #[test]
    fn aco_displays_as_section_and_value() {
        assert_eq!(Aco::ENCOUNTERS_NOTES_A.to_string(), "encounters|notes_a");
    }

    #[test]
    fn a_higher_level_covers_a_lower_one_but_not_the_reverse() {
        assert!(permits(&[allow(AclLevel::Write)], AclLevel::View));
        assert!(permits(&[allow(AclLevel::Addonly)], AclLevel::Addonly));
        assert!(!permits(&[allow(AclLevel::Addonly)], AclLevel::Write));
        assert!(permits(&[allow(AclLevel::View), allow(AclLevel::Write)], AclLevel::Wsome));
    }

    #[test]
    fn a_deny_wins_over_any_allow() {
        assert!(!permits(&[allow(AclLevel::Write), deny(AclLevel::View)], AclLevel::View));
    }

    #[test]
    fn no_grant_or_no_level_permits_nothing() {
        assert!(!permits(&[], AclLevel::View));
        assert!(!permits(&[AclGrant { allow: true, level: None }], AclLevel::View));
    }

    #[test]
    fn admin_super_write_allows_everything() {
        let admin = Permissions::new(vec![], vec![grant(Aco::ADMIN_SUPER, allow(AclLevel::Write))]);
        assert!(admin.allows(Aco::PATIENTS_MED, AclLevel::Write));
        let viewer = Permissions::new(vec![], vec![grant(Aco::ADMIN_SUPER, allow(AclLevel::View))]);
        assert!(!viewer.allows(Aco::PATIENTS_MED, AclLevel::View));
    }

    #[test]
    fn effective_keeps_the_best_level_and_drops_denied_acos() {
        let p = Permissions::new(
            vec![],
            vec![
                grant(Aco::PATIENTS_MED, allow(AclLevel::View)),
                grant(Aco::ENCOUNTERS_NOTES, allow(AclLevel::Addonly)),
                grant(Aco::ENCOUNTERS_NOTES, allow(AclLevel::Write)),
                grant(Aco::PATIENTS_DEMO, allow(AclLevel::Write)),
                grant(Aco::PATIENTS_DEMO, deny(AclLevel::View)),
            ],
        );
        assert_eq!(
            p.effective(),
            vec![
                ("encounters|notes".to_string(), AclLevel::Write),
                ("patients|med".to_string(), AclLevel::View)
            ]
        );
    }
}
