//! Online payment of a booking through a Stripe Checkout Session: the checkout's states, what a
//! payment does to the booking it pays for, and amounts in Stripe's smallest currency unit.

use rust_decimal::Decimal;

use crate::domain::scheduling::status::Phase;

/// A checkout's life. `Open` until Stripe says it was paid or expired; a paid checkout may be
/// refunded, in part (it stays `Paid`) or whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckoutState {
    Open,
    Paid,
    Expired,
    Refunded,
}

impl CheckoutState {
    pub const ALL: [Self; 4] = [Self::Open, Self::Paid, Self::Expired, Self::Refunded];

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Paid => "paid",
            Self::Expired => "expired",
            Self::Refunded => "refunded",
        }
    }

    /// Stripe took the money: paid, or refunded at once when the booking could not be kept.
    pub fn complete(self, kept: bool) -> Result<Self, &'static str> {
        match self {
            Self::Open if kept => Ok(Self::Paid),
            Self::Open => Ok(Self::Refunded),
            _ => Err("the checkout is no longer open"),
        }
    }

    pub fn expire(self) -> Result<Self, &'static str> {
        match self {
            Self::Open => Ok(Self::Expired),
            _ => Err("the checkout is no longer open"),
        }
    }

    /// Money given back: `Refunded` once all of `paid` has gone back.
    pub fn refund(self, refunded: Decimal, paid: Decimal) -> Result<Self, &'static str> {
        match self {
            Self::Paid | Self::Refunded if refunded >= paid => Ok(Self::Refunded),
            Self::Paid => Ok(Self::Paid),
            _ => Err("nothing was paid through this checkout"),
        }
    }
}

/// What a payment does to its booking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settlement {
    /// Still held: the booking is confirmed.
    Confirm,
    /// Confirmed (or seen) meanwhile by hand: the payment is recorded, the status left alone.
    Keep,
    /// The hold lapsed before the money came: book it again if the slot is still free.
    Rebook,
    /// Cancelled by someone: the money goes back.
    Refund,
}

/// `lapsed`: the sweep cancelled this booking's hold while its checkout was open.
pub fn settle(phase: Phase, lapsed: bool) -> Settlement {
    match phase {
        Phase::Proposed | Phase::Pending => Settlement::Confirm,
        Phase::Cancelled if lapsed => Settlement::Rebook,
        Phase::Cancelled => Settlement::Refund,
        Phase::Booked
        | Phase::Waitlist
        | Phase::Arrived
        | Phase::CheckedIn
        | Phase::Fulfilled
        | Phase::NoShow => Settlement::Keep,
    }
}

/// An amount in cents (Stripe's `unit_amount` for two-decimal currencies); None beyond i64.
pub fn to_minor(amount: Decimal) -> Option<i64> {
    i64::try_from((amount.round_dp(2) * Decimal::ONE_HUNDRED).trunc()).ok()
}

pub fn from_minor(minor: i64) -> Decimal {
    Decimal::new(minor, 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkout_completes_or_expires_once_and_refunds_up_to_what_was_paid() {
        assert_eq!(CheckoutState::Open.complete(true), Ok(CheckoutState::Paid));
        assert_eq!(CheckoutState::Open.complete(false), Ok(CheckoutState::Refunded));
        assert!(CheckoutState::Paid.complete(true).is_err());
        assert!(CheckoutState::Expired.complete(true).is_err(), "Stripe never completes an expired session");
        assert_eq!(CheckoutState::Open.expire(), Ok(CheckoutState::Expired));
        assert!(CheckoutState::Paid.expire().is_err());
        let (paid, part) = (Decimal::new(8000, 2), Decimal::new(3000, 2));
        assert_eq!(CheckoutState::Paid.refund(part, paid), Ok(CheckoutState::Paid));
        assert_eq!(CheckoutState::Paid.refund(paid, paid), Ok(CheckoutState::Refunded));
        assert!(CheckoutState::Open.refund(part, paid).is_err());
        assert!(CheckoutState::Expired.refund(part, paid).is_err());
        for s in CheckoutState::ALL {
            assert_eq!(CheckoutState::parse(s.as_str()), Some(s));
        }
    }

    #[test]
    fn a_payment_confirms_a_held_booking_rebooks_a_lapsed_one_and_refunds_a_cancelled_one() {
        assert_eq!(settle(Phase::Pending, false), Settlement::Confirm);
        assert_eq!(settle(Phase::Cancelled, true), Settlement::Rebook);
        assert_eq!(settle(Phase::Cancelled, false), Settlement::Refund);
        assert_eq!(settle(Phase::Booked, false), Settlement::Keep);
        assert_eq!(settle(Phase::Arrived, true), Settlement::Keep);
    }

    #[test]
    fn amounts_convert_to_cents_and_back_exactly() {
        assert_eq!(to_minor("80.00".parse().unwrap()), Some(8000));
        assert_eq!(to_minor("0.07".parse().unwrap()), Some(7));
        assert_eq!(from_minor(4999).to_string(), "49.99");
        assert_eq!(to_minor(from_minor(123_456)), Some(123_456));
    }
}
