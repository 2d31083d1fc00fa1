//! A fee-sheet line (`billing` row): its modifiers, units, fee and diagnosis justification, and
//! when OpenEMR still lets it change.

use rust_decimal::Decimal;

use crate::domain::validation::Issues;

pub const MAX_UNITS: i64 = 9999;
/// `billing.modifier` is varchar(12): four two-character modifiers joined by `:`.
const MAX_MODIFIERS: usize = 4;
/// `billing.code` is varchar(20).
pub const MAX_CODE_CHARS: usize = 20;
/// `billing.justify` is varchar(255); `billing.pricelevel` varchar(31).
pub const MAX_JUSTIFY_CHARS: usize = 255;
pub const MAX_PRICE_LEVEL_CHARS: usize = 31;

/// The modifiers as the fee sheet stores them (`25:59`), each checked.
pub fn modifier(issues: &mut Issues, given: &[String]) -> String {
    if given.len() > MAX_MODIFIERS {
        issues.add("modifiers", format!("at most {MAX_MODIFIERS} modifiers"));
    }
    for (i, m) in given.iter().enumerate() {
        if m.len() != 2 || !m.bytes().all(|b| b.is_ascii_alphanumeric()) {
            issues.add(&format!("modifiers[{i}]"), "a modifier is two letters or digits, e.g. 25");
        }
    }
    given.iter().map(|m| m.to_ascii_uppercase()).collect::<Vec<_>>().join(":")
}

pub fn modifiers_of(stored: &str) -> Vec<String> {
    stored.split(':').filter(|m| !m.is_empty()).map(str::to_string).collect()
}

pub fn units(issues: &mut Issues, given: Option<i64>) -> i32 {
    let units = given.unwrap_or(1);
    if !(1..=MAX_UNITS).contains(&units) {
        issues.add("units", format!("must be 1 to {MAX_UNITS}"));
    }
    i32::try_from(units.clamp(1, MAX_UNITS)).unwrap_or(1)
}

/// `billing.fee` is the line total: unit price × units.
pub fn fee(price: Decimal, units: i32) -> Decimal {
    super::cents(price * Decimal::from(units))
}

/// The unit price a stored line was charged at.
pub fn unit_price(fee: Decimal, units: i32) -> Decimal {
    super::cents(if units > 0 { fee / Decimal::from(units) } else { fee })
}

/// `justify` as the fee sheet writes it: `ICD10|E11.9:ICD10|I10:`.
pub fn justify(code_type: &str, codes: &[String]) -> String {
    codes.iter().map(|c| format!("{code_type}|{c}:")).collect()
}

/// The diagnosis codes a stored `justify` names, in order.
pub fn justified(stored: &str) -> Vec<String> {
    stored
        .split(':')
        .filter_map(|part| part.split_once('|').map(|(_, code)| code.trim().to_string()))
        .filter(|code| !code.is_empty())
        .collect()
}

/// Where a line stands: OpenEMR changes a line only while it is live and not yet billed
/// (`billed = 0 AND activity = 1`); deleting sets `activity = 0`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineState {
    Open,
    Billed,
    Deleted,
}

impl LineState {
    pub fn of(billed: bool, active: bool) -> Self {
        match (active, billed) {
            (false, _) => Self::Deleted,
            (true, true) => Self::Billed,
            (true, false) => Self::Open,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Billed => "billed",
            Self::Deleted => "deleted",
        }
    }

    /// Why the line may not change, if it may not.
    pub fn refuses_change(self, id: i64) -> Option<String> {
        match self {
            Self::Open => None,
            Self::Billed => Some(format!(
                "charge {id} is already billed; OpenEMR's fee sheet locks billed lines, so it cannot change"
            )),
            Self::Deleted => Some(format!("charge {id} was deleted")),
        }
    }
}

#[cfg(test)]
mod tests {
    use rust_decimal::Decimal;

    use super::*;

    #[test]
    fn modifiers_are_checked_and_joined_as_the_fee_sheet_stores_them() {
        let mut issues = Issues::default();
        assert_eq!(modifier(&mut issues, &["25".into(), "lt".into()]), "25:LT");
        assert!(issues.0.is_empty());
        modifier(&mut issues, &["255".into(), "2-".into()]);
        let fields: Vec<_> = issues.0.iter().map(|i| i.field.as_str()).collect();
        assert_eq!(fields, ["modifiers[0]", "modifiers[1]"]);
        assert_eq!(modifiers_of("25:LT"), ["25", "LT"]);
        assert!(modifiers_of("").is_empty());
    }

    #[test]
    fn the_fee_is_price_times_units_in_cents() {
        let price: Decimal = "12.50".parse().unwrap();
        assert_eq!(fee(price, 3).to_string(), "37.50");
        assert_eq!(unit_price("37.50".parse().unwrap(), 3).to_string(), "12.50");
        let mut issues = Issues::default();
        assert_eq!(units(&mut issues, None), 1);
        units(&mut issues, Some(0));
        units(&mut issues, Some(MAX_UNITS + 1));
        assert_eq!(issues.0.len(), 2);
    }

    #[test]
    fn justification_round_trips_through_openemrs_format() {
        let stored = justify("ICD10", &["E11.9".into(), "I10".into()]);
        assert_eq!(stored, "ICD10|E11.9:ICD10|I10:");
        assert_eq!(justified(&stored), ["E11.9", "I10"]);
        assert!(justified("").is_empty());
    }

    #[test]
    fn only_open_lines_change() {
        assert_eq!(LineState::of(false, true), LineState::Open);
        assert!(LineState::Open.refuses_change(1).is_none());
        assert!(LineState::of(true, true).refuses_change(1).unwrap().contains("billed"));
        assert_eq!(LineState::of(true, false), LineState::Deleted);
        assert!(LineState::Deleted.refuses_change(1).is_some());
    }
}
