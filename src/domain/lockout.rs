//! OpenEMR's account lockout and password expiry (AuthUtils), decided the way OpenEMR decides them
//! so an account OpenEMR refuses is refused here too, and failures here count there.

use chrono::{Days, NaiveDate};

/// `password_max_failed_logins` (0 = off) and `time_reset_password_max_failed_logins` (seconds,
/// 0 = never reset by time). OpenEMR's defaults are 20 and 3600.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockoutPolicy {
    pub max_failures: i64,
    pub reset_after_secs: i64,
}

impl Default for LockoutPolicy {
    fn default() -> Self {
        Self { max_failures: 20, reset_after_secs: 3600 }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockState {
    Open,
    /// Locked, but the last failure is older than the reset window: OpenEMR zeroes the counter
    /// and lets this attempt through.
    ResetThenOpen,
    Locked,
}

impl LockoutPolicy {
    /// `counter` is `users_secure.login_fail_counter`; `since_last_failure` the seconds since
    /// `last_login_fail` by the database clock (None when it is NULL).
    pub fn state(&self, counter: i64, since_last_failure: Option<i64>) -> LockState {
        if self.max_failures == 0 || counter < self.max_failures {
            return LockState::Open;
        }
        match since_last_failure {
            Some(secs) if self.reset_after_secs > 0 && secs > self.reset_after_secs => {
                LockState::ResetThenOpen
            }
            _ => LockState::Locked,
        }
    }
}

/// `password_expiration_days` (0 = off) and `password_grace_time` (days). OpenEMR's defaults are
/// 180 and 30.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExpiryPolicy {
    pub days: u64,
    pub grace_days: u64,
}

impl ExpiryPolicy {
    /// OpenEMR refuses a sign-in once today is past the last change plus the expiry and the grace
    /// period (the cut-off day itself still works). No recorded change date means no expiry.
    pub fn is_expired(&self, last_changed: Option<NaiveDate>, today: NaiveDate) -> bool {
        let Some(changed) = last_changed.filter(|_| self.days > 0) else {
            return false;
        };
        changed.checked_add_days(Days::new(self.days + self.grace_days)).is_some_and(|cutoff| today > cutoff)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn locks_at_the_maximum_and_reopens_only_after_a_quiet_window() {
        let p = LockoutPolicy { max_failures: 3, reset_after_secs: 60 };
        assert_eq!(p.state(2, Some(1)), LockState::Open);
        assert_eq!(p.state(3, Some(1)), LockState::Locked);
        assert_eq!(p.state(3, Some(60)), LockState::Locked, "the window must be exceeded, not reached");
        assert_eq!(p.state(3, Some(61)), LockState::ResetThenOpen);
        assert_eq!(p.state(3, None), LockState::Locked);
        let forever = LockoutPolicy { max_failures: 3, reset_after_secs: 0 };
        assert_eq!(forever.state(9, Some(1_000_000)), LockState::Locked);
        let off = LockoutPolicy { max_failures: 0, reset_after_secs: 60 };
        assert_eq!(off.state(1000, Some(1)), LockState::Open);
    }

    #[test]
    fn expiry_counts_the_grace_period_and_allows_the_cutoff_day() {
        let p = ExpiryPolicy { days: 180, grace_days: 30 };
        let changed = Some(day("2025-01-01"));
        assert!(!p.is_expired(changed, day("2025-07-30")), "2025-01-01 + 210 days is the cut-off");
        assert!(p.is_expired(changed, day("2025-07-31")));
        assert!(!p.is_expired(None, day("2099-01-01")));
        assert!(!ExpiryPolicy { days: 0, grace_days: 30 }.is_expired(changed, day("2099-01-01")));
    }
}
