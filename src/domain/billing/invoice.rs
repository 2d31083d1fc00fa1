//! An encounter's invoice as OpenEMR's `InvoiceSummary::arGetInvoiceSummary` adds it up: charges
//! per code (fee-sheet lines and product sales), less payments and adjustments posted against the
//! same code; payments with no code land on "Copay" (a `PCP` copay) or "Claim level".

use rust_decimal::Decimal;

pub struct ChargeLine {
    pub code_type: String,
    pub code: String,
    pub modifier: String,
    pub code_text: String,
    pub fee: Decimal,
}

pub struct SaleLine {
    pub drug_id: i64,
    pub fee: Decimal,
}

pub struct ActivityLine {
    pub code: String,
    pub modifier: String,
    pub account_code: String,
    pub pay_amount: Decimal,
    pub adj_amount: Decimal,
}

/// One code's account, keyed as OpenEMR keys it (`99213`, `99213:25`, `PROD:7`, `Copay`, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeBalance {
    pub key: String,
    pub code_type: Option<String>,
    pub code_text: Option<String>,
    pub charges: Decimal,
    pub payments: Decimal,
    pub adjustments: Decimal,
    pub balance: Decimal,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Totals {
    pub charges: Decimal,
    pub payments: Decimal,
    pub adjustments: Decimal,
    pub balance: Decimal,
}

impl Totals {
    pub fn new(charges: Decimal, payments: Decimal, adjustments: Decimal) -> Self {
        Self { charges, payments, adjustments, balance: charges - payments - adjustments }
    }

    pub fn of(codes: &[CodeBalance]) -> Self {
        let sum = |f: fn(&CodeBalance) -> Decimal| codes.iter().map(f).sum::<Decimal>();
        Self::new(sum(|c| c.charges), sum(|c| c.payments), sum(|c| c.adjustments))
    }

    pub fn status(&self) -> InvoiceStatus {
        if self.balance > Decimal::ZERO { InvoiceStatus::Open } else { InvoiceStatus::Paid }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvoiceStatus {
    Open,
    Paid,
}

impl InvoiceStatus {
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "open" => Some(Self::Open),
            "paid" => Some(Self::Paid),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Paid => "paid",
        }
    }
}

fn keyed(code: &str, modifier: &str) -> String {
    if modifier.is_empty() { code.to_string() } else { format!("{code}:{modifier}") }
}

fn entry(codes: &mut Vec<CodeBalance>, key: String) -> &mut CodeBalance {
    let at = match codes.iter().position(|c| c.key == key) {
        Some(at) => at,
        None => {
            codes.push(CodeBalance {
                key,
                code_type: None,
                code_text: None,
                charges: Decimal::ZERO,
                payments: Decimal::ZERO,
                adjustments: Decimal::ZERO,
                balance: Decimal::ZERO,
            });
            codes.len() - 1
        }
    };
    &mut codes[at]
}

/// The per-code accounts, in the order OpenEMR lists them (charges first, then codes only
/// payments name). `charges` hold live fee-sheet lines with a fee, `activity` the undeleted
/// payment and adjustment lines.
pub fn summarize(charges: &[ChargeLine], sales: &[SaleLine], activity: &[ActivityLine]) -> Vec<CodeBalance> {
    let mut codes = Vec::new();
    for line in charges.iter().filter(|l| !l.fee.is_zero()) {
        let code = if line.code.is_empty() { "Unknown" } else { &line.code };
        let c = entry(&mut codes, keyed(code, &line.modifier));
        c.charges += line.fee;
        c.code_type = Some(line.code_type.clone());
        c.code_text = Some(line.code_text.clone());
    }
    for sale in sales.iter().filter(|s| !s.fee.is_zero()) {
        entry(&mut codes, format!("PROD:{}", sale.drug_id)).charges += sale.fee;
    }
    for a in activity {
        let code = match (a.code.is_empty(), a.account_code == "PCP") {
            (false, _) => a.code.as_str(),
            (true, true) => "Copay",
            (true, false) => "Claim level",
        };
        let c = entry(&mut codes, keyed(code, &a.modifier));
        c.payments += a.pay_amount;
        c.adjustments += a.adj_amount;
    }
    for c in &mut codes {
        c.balance = c.charges - c.payments - c.adjustments;
    }
    codes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    fn charge(code: &str, modifier: &str, fee: &str) -> ChargeLine {
        ChargeLine {
            code_type: "CPT4".into(),
            code: code.into(),
            modifier: modifier.into(),
            code_text: String::new(),
            fee: d(fee),
        }
    }

    fn paid(code: &str, account: &str, pay: &str, adj: &str) -> ActivityLine {
        ActivityLine {
            code: code.into(),
            modifier: String::new(),
            account_code: account.into(),
            pay_amount: d(pay),
            adj_amount: d(adj),
        }
    }

    #[test]
    fn balances_are_kept_per_code_as_openemr_keys_them() {
        let charges =
            [charge("99213", "", "50.00"), charge("99213", "25", "30.00"), charge("36415", "", "0")];
        let sales = [SaleLine { drug_id: 7, fee: d("12.10") }];
        let activity = [
            paid("99213", "PP", "20.00", "0"),
            paid("99213", "PA", "0", "5.55"),
            paid("", "PCP", "10.00", "0"),
        ];
        let codes = summarize(&charges, &sales, &activity);
        let keys: Vec<_> = codes.iter().map(|c| c.key.as_str()).collect();
        assert_eq!(keys, ["99213", "99213:25", "PROD:7", "Copay"], "a zero-fee line is no charge");
        assert_eq!(codes[0].balance, d("24.45"));
        assert_eq!(codes[3].balance, d("-10.00"));
        let totals = Totals::of(&codes);
        assert_eq!(totals.charges, d("92.10"));
        assert_eq!(totals.balance, d("56.55"));
        assert_eq!(totals.status(), InvoiceStatus::Open);
    }

    #[test]
    fn a_payment_without_a_code_is_claim_level_and_a_settled_invoice_is_paid() {
        let codes = summarize(&[charge("99202", "", "80.00")], &[], &[paid("", "PP", "80.00", "0")]);
        assert_eq!(codes[1].key, "Claim level");
        assert_eq!(Totals::of(&codes).balance, Decimal::ZERO);
        assert_eq!(Totals::of(&codes).status(), InvoiceStatus::Paid);
    }
}
