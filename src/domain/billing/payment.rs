//! A patient payment as OpenEMR's front-desk screen posts it: an `ar_session` deposit whose amount
//! is spread over the encounter's charge lines (`PP` lines), a copay (`PCP` against the first fee
//! line) or a pre-payment held on the patient's account with no lines; refunds of them as
//! negative payments; and their states.

use rust_decimal::Decimal;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentKind {
    InvoiceBalance,
    Copay,
    PrePayment,
    /// Money given back: a negative payment against what an earlier one paid.
    Refund,
}

impl PaymentKind {
    pub const ALL: [Self; 4] = [Self::InvoiceBalance, Self::Copay, Self::PrePayment, Self::Refund];

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == raw)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvoiceBalance => "invoice_balance",
            Self::Copay => "copay",
            Self::PrePayment => "pre_payment",
            Self::Refund => "refund",
        }
    }

    /// `ar_session.adjustment_code` (list `payment_adjustment_code`).
    pub fn adjustment_code(self) -> &'static str {
        match self {
            Self::PrePayment => "pre_payment",
            Self::InvoiceBalance | Self::Copay | Self::Refund => "patient_payment",
        }
    }

    /// `ar_activity.account_code` of the lines it posts.
    pub fn account_code(self) -> &'static str {
        match self {
            Self::Copay => "PCP",
            Self::InvoiceBalance | Self::PrePayment | Self::Refund => "PP",
        }
    }

    pub fn needs_encounter(self) -> bool {
        matches!(self, Self::InvoiceBalance | Self::Copay)
    }
}

/// A fee line of the encounter with what patients and payers have already put against its code.
#[derive(Debug, Clone)]
pub struct FeeLine {
    pub code_type: String,
    pub code: String,
    pub modifier: String,
    pub fee: Decimal,
    /// Payments on this code other than copays.
    pub paid: Decimal,
    pub adjusted: Decimal,
}

/// How much of a payment goes on which fee line (by index); `None` is claim level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Share {
    pub line: Option<usize>,
    pub amount: Decimal,
}

/// Spreads an invoice payment over fee lines in the order given (OpenEMR orders them by code and
/// modifier): each line takes what it still owes, the copays already paid counting against the
/// first; whatever is left goes on the last line (claim level when there is none). Unlike the
/// PHP, a line already overpaid takes nothing rather than a negative share.
pub fn distribute(amount: Decimal, copays: Decimal, lines: &[FeeLine]) -> Vec<Share> {
    let mut left = amount;
    let mut copays = copays;
    let mut shares: Vec<Share> = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let owed = (line.fee - copays - line.paid - line.adjusted).round_dp(2);
        copays = Decimal::ZERO;
        if owed > Decimal::ZERO && left > Decimal::ZERO {
            let take = owed.min(left);
            left -= take;
            shares.push(Share { line: Some(i), amount: take });
        }
    }
    if left > Decimal::ZERO {
        let last = lines.len().checked_sub(1);
        match shares.iter_mut().find(|s| s.line == last) {
            Some(share) => share.amount += left,
            None => shares.push(Share { line: last, amount: left }),
        }
    }
    shares
}

/// Spreads a refund over what each of a payment's lines still holds, the last line first (the
/// excess a payment put on its last line goes back first). Never more than a line holds.
pub fn take_back(amount: Decimal, held: &[Decimal]) -> Vec<Share> {
    let mut left = amount;
    let mut shares = Vec::new();
    for (i, holds) in held.iter().enumerate().rev() {
        if left <= Decimal::ZERO {
            break;
        }
        let take = (*holds).min(left);
        if take > Decimal::ZERO {
            left -= take;
            shares.push(Share { line: Some(i), amount: take });
        }
    }
    shares
}

/// What may still be refunded of a payment of `paid` after `refunded`; `asked` defaults to all of it.
pub fn refundable(paid: Decimal, refunded: Decimal, asked: Option<Decimal>) -> Result<Decimal, String> {
    let left = paid - refunded;
    match asked {
        _ if left <= Decimal::ZERO => Err("the payment has been refunded in full".into()),
        Some(asked) if asked > left => Err(format!("only {left} of this payment is left to refund")),
        Some(asked) => Ok(asked),
        None => Ok(left),
    }
}

/// A posted payment can be voided, once; its lines stay in `ar_activity` marked `deleted`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentState {
    Posted,
    Voided,
}

impl PaymentState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Posted => "posted",
            Self::Voided => "voided",
        }
    }

    pub fn void(self) -> Result<Self, &'static str> {
        match self {
            Self::Posted => Ok(Self::Voided),
            Self::Voided => Err("the payment is already voided"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    fn line(code: &str, fee: &str, paid: &str) -> FeeLine {
        FeeLine {
            code_type: "CPT4".into(),
            code: code.into(),
            modifier: String::new(),
            fee: d(fee),
            paid: d(paid),
            adjusted: Decimal::ZERO,
        }
    }

    #[test]
    fn a_refund_takes_back_from_the_last_line_first_and_never_more_than_was_paid() {
        let held = [d("12.50"), d("30.00")];
        let shares = take_back(d("35.00"), &held);
        assert_eq!(
            shares,
            [Share { line: Some(1), amount: d("30.00") }, Share { line: Some(0), amount: d("5.00") }]
        );
        assert_eq!(take_back(d("10"), &[d("0"), d("4")]), [Share { line: Some(1), amount: d("4") }]);
        assert_eq!(refundable(d("80"), d("30"), None), Ok(d("50")));
        assert_eq!(refundable(d("80"), d("30"), Some(d("20"))), Ok(d("20")));
        assert!(refundable(d("80"), d("30"), Some(d("50.01"))).is_err());
        assert!(refundable(d("80"), d("80"), None).is_err());
    }

    #[test]
    fn a_payment_fills_lines_in_order_and_the_rest_lands_on_the_last() {
        let lines = [line("36415", "12.50", "0"), line("99213", "50.00", "20.00")];
        let shares = distribute(d("100.00"), Decimal::ZERO, &lines);
        assert_eq!(
            shares,
            [Share { line: Some(0), amount: d("12.50") }, Share { line: Some(1), amount: d("87.50") }]
        );
        let partial = distribute(d("10.00"), Decimal::ZERO, &lines);
        assert_eq!(partial, [Share { line: Some(0), amount: d("10.00") }]);
    }

    #[test]
    fn copays_count_against_the_first_line_and_overpaid_lines_take_nothing() {
        let lines = [line("99213", "50.00", "0"), line("90471", "25.00", "30.00")];
        let shares = distribute(d("45.00"), d("20.00"), &lines);
        assert_eq!(
            shares,
            [Share { line: Some(0), amount: d("30.00") }, Share { line: Some(1), amount: d("15.00") }]
        );
        assert_eq!(distribute(d("5.00"), Decimal::ZERO, &[]), [Share { line: None, amount: d("5.00") }]);
    }

    #[test]
    fn kinds_post_as_the_front_desk_does_and_a_void_happens_once() {
        assert_eq!(PaymentKind::parse("copay").unwrap().account_code(), "PCP");
        assert_eq!(PaymentKind::PrePayment.adjustment_code(), "pre_payment");
        assert!(!PaymentKind::PrePayment.needs_encounter());
        assert_eq!(PaymentState::Posted.void(), Ok(PaymentState::Voided));
        assert!(PaymentState::Voided.void().is_err());
    }
}
