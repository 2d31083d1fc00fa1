//! Billing rules: fee-sheet charge lines, invoice arithmetic as OpenEMR's `InvoiceSummary` does
//! it, and patient payments spread over charge lines as OpenEMR's front-desk screen spreads them.
//! Money is exact decimal throughout (OpenEMR stores `decimal(12,2)`); never a float.

pub mod charge;
pub mod checkout;
pub mod invoice;
pub mod payment;
pub mod pricing;

use rust_decimal::Decimal;

use super::validation::Issues;

/// The largest amount a `decimal(12,2)` column holds.
pub const MAX_MONEY: Decimal = Decimal::from_parts(3_567_587_327, 232, 0, false, 2);

/// Rounded to the cent and always shown with two places (`100.00`, not `100`).
pub fn cents(value: Decimal) -> Decimal {
    let mut value = value.round_dp(2);
    value.rescale(2);
    value
}

/// An amount for a `decimal(12,2)` column: at most two decimal places, within the column, and
/// above zero unless `zero_ok`.
pub fn money(issues: &mut Issues, field: &str, value: Decimal, zero_ok: bool) -> Decimal {
    let value = value.normalize();
    if value.scale() > 2 {
        issues.add(field, "must have at most two decimal places");
    } else if value > MAX_MONEY {
        issues.add(field, format!("must be at most {MAX_MONEY}"));
    } else if value.is_sign_negative() && !value.is_zero() || (!zero_ok && value.is_zero()) {
        issues.add(field, if zero_ok { "must not be negative" } else { "must be more than 0" });
    }
    cents(value)
}

#[cfg(test)]
mod tests {
    use rust_decimal::Decimal;

    use super::{MAX_MONEY, money};
    use crate::domain::validation::Issues;

    fn check(raw: &str, zero_ok: bool) -> Vec<String> {
        let mut issues = Issues::default();
        money(&mut issues, "amount", raw.parse::<Decimal>().unwrap(), zero_ok);
        issues.0.into_iter().map(|i| i.message).collect()
    }

    #[test]
    fn amounts_fit_a_decimal_12_2_column() {
        assert_eq!(MAX_MONEY.to_string(), "9999999999.99");
        assert!(check("12.50", false).is_empty());
        assert!(check("12.500", false).is_empty(), "trailing zeros are not extra places");
        assert_eq!(check("12.505", false), ["must have at most two decimal places"]);
        assert_eq!(check("10000000000", false), ["must be at most 9999999999.99"]);
        assert_eq!(check("0", false), ["must be more than 0"]);
        assert!(check("0", true).is_empty());
        assert_eq!(check("-1", true), ["must not be negative"]);
    }
}
