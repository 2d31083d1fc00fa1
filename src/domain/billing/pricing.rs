//! The practice's visit prices (the seed's rule: a first visit costs more than a return one):
//! a price per calendar category and kind of patient, with a practice-wide fallback. A patient is
//! returning once they have had a visit, or missed one: a fulfilled or no-show appointment.

use rust_decimal::Decimal;

use crate::domain::validation::Issues;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum PatientKind {
    New,
    Returning,
}

impl PatientKind {
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "new" => Some(Self::New),
            "returning" => Some(Self::Returning),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::New => "new",
            Self::Returning => "returning",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriceRule {
    /// A calendar category (`pc_catid`); `None` applies to every category without its own rule.
    pub category_id: Option<i64>,
    pub kind: PatientKind,
    pub amount: Decimal,
}

/// At most one rule per category and kind; reports each repeat by its index in the request.
pub fn check_unique(issues: &mut Issues, rules: &[(usize, PriceRule)]) {
    for (n, (i, rule)) in rules.iter().enumerate() {
        if rules[..n].iter().any(|(_, r)| r.category_id == rule.category_id && r.kind == rule.kind) {
            issues.add(&format!("rules[{i}]"), "repeats the category and patient kind of an earlier rule");
        }
    }
}

/// The rule for this category and kind, else the practice-wide one.
pub fn pick(rules: &[PriceRule], category_id: i64, kind: PatientKind) -> Option<&PriceRule> {
    let of = |category: Option<i64>| rules.iter().find(|r| r.category_id == category && r.kind == kind);
    of(Some(category_id)).or_else(|| of(None))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(category_id: Option<i64>, kind: PatientKind, amount: &str) -> PriceRule {
        PriceRule { category_id, kind, amount: amount.parse().unwrap() }
    }

    #[test]
    fn a_category_rule_wins_over_the_practice_wide_one() {
        let rules = [
            rule(None, PatientKind::New, "80.00"),
            rule(None, PatientKind::Returning, "50.00"),
            rule(Some(9), PatientKind::Returning, "65.00"),
        ];
        assert_eq!(pick(&rules, 9, PatientKind::Returning).unwrap().amount.to_string(), "65.00");
        assert_eq!(pick(&rules, 9, PatientKind::New).unwrap().amount.to_string(), "80.00");
        assert_eq!(pick(&rules, 5, PatientKind::Returning).unwrap().amount.to_string(), "50.00");
        assert!(pick(&rules[2..], 5, PatientKind::New).is_none());
    }

    #[test]
    fn a_repeated_rule_is_named() {
        let mut issues = Issues::default();
        check_unique(
            &mut issues,
            &[(0, rule(Some(5), PatientKind::New, "1")), (2, rule(Some(5), PatientKind::New, "2"))],
        );
        assert_eq!(issues.0[0].field, "rules[2]");
    }
}
