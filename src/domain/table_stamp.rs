//! When a sweep of an OpenEMR table can be skipped because the table has not changed.
//!
//! InnoDB's `UPDATE_TIME` (in `information_schema.TABLES`) moves when a change to the table
//! commits, so a stamp equal to the one seen at the last sweep means there is nothing new. But it
//! has a one-second grain and carries the time of the change, not of its commit: a transaction
//! that changed a row in the same second as the stamp seen, and committed after the sweep, leaves
//! the stamp as it was. So a stamp is trusted only once a sweep has started `SETTLE` after the stamp
//! was first seen, and a sweep runs every `BACKSTOP` whatever the stamp says (a transaction held open
//! longer than `SETTLE`, a server that caches the stamp).

use std::time::{Duration, Instant};

use chrono::NaiveDateTime;

/// Longer than the stamp's grain plus a commit's usual delay after its change.
pub const SETTLE: Duration = Duration::from_secs(2);
pub const BACKSTOP: Duration = Duration::from_secs(60);

/// `None` is a stamp like any other: the server has seen no change since it opened the table.
pub type Stamp = Option<NaiveDateTime>;

/// `S` is one table's stamp, or several tables' stamps in a fixed order.
#[derive(Debug, Default)]
pub struct StampWatch<S = Stamp> {
    /// The stamp the last sweep started after, and when that stamp was first seen.
    seen: Option<(S, Instant)>,
    last_sweep: Option<Instant>,
}

impl<S: PartialEq> StampWatch<S> {
    /// Whether a sweep starting `now`, with the table's stamp read just before, may find changes.
    pub fn due(&self, stamp: &S, now: Instant) -> bool {
        match (&self.seen, self.last_sweep) {
            (Some((seen, first_seen)), Some(last)) if seen == stamp => {
                last < *first_seen + SETTLE || now >= last + BACKSTOP
            }
            _ => true,
        }
    }

    /// Records a sweep that finished, started at `started` with `stamp` read just before it.
    pub fn swept(&mut self, stamp: S, started: Instant) {
        if self.seen.as_ref().is_none_or(|(seen, _)| *seen != stamp) {
            self.seen = Some((stamp, started));
        }
        self.last_sweep = Some(started);
    }
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;

    use super::*;

    fn at(second: u32) -> Stamp {
        NaiveDate::from_ymd_opt(2026, 12, 2).and_then(|d| d.and_hms_opt(10, 0, second))
    }

    #[test]
    fn the_first_sweep_always_runs() {
        assert!(StampWatch::default().due(&at(1), Instant::now()));
        assert!(StampWatch::default().due(&Stamp::None, Instant::now()));
    }

    #[test]
    fn a_new_stamp_is_swept_again_until_a_sweep_started_settle_after_it() {
        let t0 = Instant::now();
        let mut watch = StampWatch::default();
        watch.swept(at(1), t0);
        assert!(
            watch.due(&at(1), t0 + Duration::from_millis(100)),
            "a commit from the same second may follow"
        );
        watch.swept(at(1), t0 + Duration::from_millis(100));
        assert!(watch.due(&at(1), t0 + SETTLE), "no sweep has started settle after the stamp yet");
        watch.swept(at(1), t0 + SETTLE);
        assert!(!watch.due(&at(1), t0 + SETTLE + Duration::from_millis(100)), "nothing changed");
    }

    #[test]
    fn a_moved_stamp_is_due_at_once_and_settles_anew() {
        let t0 = Instant::now();
        let mut watch = StampWatch::default();
        watch.swept(at(1), t0);
        watch.swept(at(1), t0 + SETTLE);
        let t1 = t0 + SETTLE + Duration::from_secs(1);
        assert!(watch.due(&at(5), t1));
        assert!(watch.due(&Stamp::None, t1), "a stamp the server forgot is a change too");
        watch.swept(at(5), t1);
        assert!(watch.due(&at(5), t1 + Duration::from_secs(1)));
        watch.swept(at(5), t1 + SETTLE);
        assert!(!watch.due(&at(5), t1 + SETTLE));
    }

    #[test]
    fn an_unchanged_stamp_is_swept_once_a_backstop_anyway() {
        let t0 = Instant::now();
        let mut watch = StampWatch::default();
        watch.swept(at(1), t0);
        watch.swept(at(1), t0 + SETTLE);
        assert!(!watch.due(&at(1), t0 + SETTLE + BACKSTOP - Duration::from_millis(1)));
        assert!(watch.due(&at(1), t0 + SETTLE + BACKSTOP));
    }
}
