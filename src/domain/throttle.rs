//! Sign-in throttling policy: a fixed number of failures per subject within a sliding window.

use chrono::{Duration, NaiveDateTime};

#[derive(Debug, Clone, Copy)]
pub struct ThrottlePolicy {
    pub max_failures: i64,
    pub window: Duration,
}

impl ThrottlePolicy {
    /// How long the subject must wait, given its failures inside the window and the oldest one.
    pub fn retry_after(
        &self,
        failures: i64,
        oldest: Option<NaiveDateTime>,
        now: NaiveDateTime,
    ) -> Option<u64> {
        if failures < self.max_failures {
            return None;
        }
        let frees_at = oldest? + self.window;
        Some((frees_at - now).num_seconds().max(1) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> NaiveDateTime {
        chrono::DateTime::from_timestamp(1_800_000_000 + secs, 0).unwrap().naive_utc()
    }

    #[test]
    fn under_the_limit_is_not_throttled() {
        let policy = ThrottlePolicy { max_failures: 3, window: Duration::seconds(60) };
        assert_eq!(policy.retry_after(2, Some(at(0)), at(10)), None);
    }

    #[test]
    fn at_the_limit_waits_until_the_oldest_failure_leaves_the_window() {
        let policy = ThrottlePolicy { max_failures: 3, window: Duration::seconds(60) };
        assert_eq!(policy.retry_after(3, Some(at(0)), at(10)), Some(50));
        assert_eq!(policy.retry_after(5, Some(at(0)), at(60)), Some(1));
    }
}
