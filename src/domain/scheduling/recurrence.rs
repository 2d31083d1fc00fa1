//! OpenEMR's repeating calendar events, expanded into dates exactly as its `fetchEvents()` does
//! (library/appointments.inc.php), including PHP `mktime` day overflow and its quirks: a monthly
//! event on the 31st drifts (Jan 31 → Mar 3 → Apr 3), the first occurrence of a days-of-week event
//! is its start date whatever its weekday, and an Nth-weekday event counts from its start month.

use chrono::{Datelike, Days, NaiveDate, Weekday};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Day,
    Week,
    Month,
    Year,
    WorkDay,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pattern {
    /// `pc_recurrtype` 0.
    Once,
    /// Type 1: every `every` units.
    Every { every: u32, unit: Unit },
    /// Type 2: the `nth` (1-4, 5 = last) `weekday` of every `months`-th month.
    NthWeekday { nth: u32, weekday: Weekday, months: u32, from_first_of_month: bool },
    /// Type 3: on these weekdays of every week.
    Weekdays(Vec<Weekday>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recurrence {
    pub pattern: Pattern,
    /// `exdate`: occurrences skipped.
    pub except: Vec<NaiveDate>,
}

/// The raw strings of a `pc_recurrspec` array, as PHP stored them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecurrSpec {
    pub repeat_freq: String,
    pub repeat_freq_type: String,
    pub repeat_on_num: String,
    pub repeat_on_day: String,
    pub repeat_on_freq: String,
    pub exdate: String,
    pub rt2_pf_flag: bool,
}

/// OpenEMR's `weekend_days` global (`6,0`: Saturday and Sunday), as PHP `date('w')` numbers.
pub type WeekendDays = Vec<u32>;

pub fn default_weekend_days() -> WeekendDays {
    vec![6, 0]
}

impl Recurrence {
    pub const ONCE: Self = Self { pattern: Pattern::Once, except: Vec::new() };

    /// `None` where OpenEMR's `checkEvent()` would skip the event (it shows no occurrence at all).
    pub fn from_spec(recurrtype: i32, spec: &RecurrSpec) -> Option<Self> {
        let pattern = match recurrtype {
            0 => Pattern::Once,
            1 => Pattern::Every { every: positive(&spec.repeat_freq)?, unit: unit(&spec.repeat_freq_type)? },
            2 => Pattern::NthWeekday {
                nth: positive(&spec.repeat_on_num)?.min(5),
                weekday: php_weekday(spec.repeat_on_day.trim().parse().ok()?)?,
                months: positive(&spec.repeat_on_freq)?,
                from_first_of_month: spec.rt2_pf_flag,
            },
            3 => {
                let days = spec
                    .repeat_freq
                    .split(',')
                    .map(|d| {
                        d.trim()
                            .parse::<u32>()
                            .ok()
                            .filter(|n| (1..=7).contains(n))
                            .and_then(|n| php_weekday(n - 1))
                    })
                    .collect::<Option<Vec<_>>>()?;
                if days.is_empty() {
                    return None;
                }
                Pattern::Weekdays(days)
            }
            _ => return None,
        };
        let except = spec
            .exdate
            .split(',')
            .filter_map(|d| NaiveDate::parse_from_str(d.trim(), "%Y%m%d").ok())
            .collect();
        Some(Self { pattern, except })
    }

    /// The dates in `[from, to]` on which an event starting `start` (and, when repeating, ending
    /// `end`) occurs. A repeating event with no end date has none, as in OpenEMR.
    pub fn occurrences(
        &self,
        start: NaiveDate,
        end: Option<NaiveDate>,
        from: NaiveDate,
        to: NaiveDate,
        weekend: &[u32],
    ) -> Vec<NaiveDate> {
        let mut dates = match &self.pattern {
            Pattern::Once => return if (from..=to).contains(&start) { vec![start] } else { Vec::new() },
            _ if end.is_none() => return Vec::new(),
            Pattern::NthWeekday { nth, weekday, months, from_first_of_month } => {
                let stop = end.unwrap_or(to).min(to);
                nth_weekdays(start, *nth, *weekday, *months, *from_first_of_month, from, stop)
            }
            _ => {
                let stop = end.unwrap_or(to).min(to);
                self.stepped(start, from, stop, weekend)
            }
        };
        dates.retain(|d| !self.except.contains(d));
        dates
    }

    fn stepped(&self, start: NaiveDate, from: NaiveDate, stop: NaiveDate, weekend: &[u32]) -> Vec<NaiveDate> {
        let mut dates = Vec::new();
        let mut at = start;
        while at < from {
            at = self.next(at, weekend);
        }
        while at <= stop {
            dates.push(at);
            at = self.next(at, weekend);
        }
        dates
    }

    /// OpenEMR's `__increment()`.
    fn next(&self, at: NaiveDate, weekend: &[u32]) -> NaiveDate {
        let (y, m, d) = (i64::from(at.year()), i64::from(at.month()), i64::from(at.day()));
        match &self.pattern {
            Pattern::Every { every, unit } => {
                let f = i64::from(*every);
                match unit {
                    Unit::Day => mktime(y, m, d + f),
                    Unit::Week => mktime(y, m, d + 7 * f),
                    Unit::Month => mktime(y, m + f, d),
                    Unit::Year => mktime(y + f, m, d),
                    Unit::WorkDay => mktime(y, m, d + work_day_step(at, f, weekend)),
                }
            }
            Pattern::Weekdays(days) => days
                .iter()
                .map(|w| {
                    let ahead = (7 + w.num_days_from_sunday() - at.weekday().num_days_from_sunday()) % 7;
                    at + Days::new(u64::from(if ahead == 0 { 7 } else { ahead }))
                })
                .min()
                .unwrap_or(at + Days::new(7)),
            Pattern::Once | Pattern::NthWeekday { .. } => at + Days::new(1),
        }
    }
}

/// Days to add for "every `f` work days" from `at`, as `__increment()` counts them.
fn work_day_step(at: NaiveDate, f: i64, weekend: &[u32]) -> i64 {
    let dow = |offset: i64| (i64::from(at.weekday().num_days_from_sunday()) + offset).rem_euclid(7) as u32;
    let mut step = f;
    for day in 1..=f {
        if weekend.contains(&dow(day)) {
            step += 1;
        }
    }
    let landed = dow(step);
    match weekend {
        [first, _] if landed == *first => step + 2,
        [_, second] if landed == *second => step + 1,
        [only] if landed == *only => step + 1,
        _ => step,
    }
}

fn nth_weekdays(
    start: NaiveDate,
    nth: u32,
    weekday: Weekday,
    months: u32,
    from_first_of_month: bool,
    from: NaiveDate,
    stop: NaiveDate,
) -> Vec<NaiveDate> {
    let (mut y, mut m) = (i64::from(start.year()), i64::from(start.month()));
    let mut d = if from_first_of_month { 1 } else { i64::from(start.day()) };
    let step = |y: i64, m: i64, d: i64| {
        let next = mktime(y, m + i64::from(months), d);
        (i64::from(next.year()), i64::from(next.month()), i64::from(next.day()))
    };
    let month_of = |date: NaiveDate| (i64::from(date.year()), i64::from(date.month()));
    while (y, m) < month_of(from) {
        (y, m, d) = step(y, m, d);
    }
    let mut dates = Vec::new();
    while (y, m) <= month_of(stop) {
        if let Some(date) = (1..=nth)
            .rev()
            .find_map(|n| NaiveDate::from_weekday_of_month_opt(y as i32, m as u32, weekday, n as u8))
            && (from..=stop).contains(&date)
        {
            dates.push(date);
        }
        (y, m, d) = step(y, m, d);
    }
    dates
}

/// PHP's `mktime(0,0,0,$m,$d,$y)`: months and days past their range roll over.
pub fn mktime(y: i64, m: i64, d: i64) -> NaiveDate {
    let year = y + (m - 1).div_euclid(12);
    let month = (m - 1).rem_euclid(12) + 1;
    let first = NaiveDate::from_ymd_opt(year as i32, month as u32, 1).unwrap_or(NaiveDate::MAX);
    if d >= 1 {
        first.checked_add_days(Days::new((d - 1) as u64)).unwrap_or(NaiveDate::MAX)
    } else {
        first.checked_sub_days(Days::new((1 - d) as u64)).unwrap_or(NaiveDate::MIN)
    }
}

fn positive(s: &str) -> Option<u32> {
    s.trim().parse::<u32>().ok().filter(|n| *n > 0)
}

fn unit(s: &str) -> Option<Unit> {
    Some(match s.trim().parse::<u32>().ok()? {
        0 => Unit::Day,
        1 => Unit::Week,
        2 => Unit::Month,
        3 => Unit::Year,
        4 => Unit::WorkDay,
        _ => return None,
    })
}

/// PHP `date('w')` numbering: 0 Sunday … 6 Saturday.
fn php_weekday(n: u32) -> Option<Weekday> {
    use Weekday::{Fri, Mon, Sat, Sun, Thu, Tue, Wed};
    [Sun, Mon, Tue, Wed, Thu, Fri, Sat].get(n as usize).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn spec(freq: &str, freq_type: &str) -> RecurrSpec {
        RecurrSpec { repeat_freq: freq.into(), repeat_freq_type: freq_type.into(), ..RecurrSpec::default() }
    }

    fn dates(list: &[&str]) -> Vec<NaiveDate> {
        list.iter().map(|d| date(d)).collect()
    }

    #[test]
    fn weekly_skips_exdates_and_stops_at_the_end_date() {
        let mut s = spec("1", "1");
        s.exdate = "20261215,20261201".into();
        let r = Recurrence::from_spec(1, &s).unwrap();
        // Tuesdays from 2026-11-03 to 2026-12-22.
        let got = r.occurrences(
            date("2026-11-03"),
            Some(date("2026-12-22")),
            date("2026-11-20"),
            date("2027-01-31"),
            &[6, 0],
        );
        assert_eq!(got, dates(&["2026-11-24", "2026-12-08", "2026-12-22"]));
    }

    #[test]
    fn every_third_day_counts_from_the_first_occurrence() {
        let r = Recurrence::from_spec(1, &spec("3", "0")).unwrap();
        let got = r.occurrences(
            date("2026-12-30"),
            Some(date("2027-01-10")),
            date("2027-01-01"),
            date("2027-01-31"),
            &[6, 0],
        );
        assert_eq!(got, dates(&["2027-01-02", "2027-01-05", "2027-01-08"]));
    }

    #[test]
    fn monthly_on_the_31st_drifts_like_php_mktime() {
        let r = Recurrence::from_spec(1, &spec("1", "2")).unwrap();
        let got = r.occurrences(
            date("2027-01-31"),
            Some(date("2027-05-31")),
            date("2027-01-01"),
            date("2027-12-31"),
            &[6, 0],
        );
        assert_eq!(got, dates(&["2027-01-31", "2027-03-03", "2027-04-03", "2027-05-03"]));
    }

    #[test]
    fn every_work_day_skips_the_weekend() {
        let r = Recurrence::from_spec(1, &spec("1", "4")).unwrap();
        // 2026-12-04 is a Friday.
        let got = r.occurrences(
            date("2026-12-03"),
            Some(date("2026-12-09")),
            date("2026-12-01"),
            date("2026-12-31"),
            &[6, 0],
        );
        assert_eq!(got, dates(&["2026-12-03", "2026-12-04", "2026-12-07", "2026-12-08", "2026-12-09"]));
    }

    #[test]
    fn every_second_work_day_over_a_weekend() {
        let r = Recurrence::from_spec(1, &spec("2", "4")).unwrap();
        // Thu 2026-12-03 + 2 work days = Mon 2026-12-07; then Wed 2026-12-09; then Fri 2026-12-11.
        let got = r.occurrences(
            date("2026-12-03"),
            Some(date("2026-12-14")),
            date("2026-12-01"),
            date("2026-12-31"),
            &[6, 0],
        );
        assert_eq!(got, dates(&["2026-12-03", "2026-12-07", "2026-12-09", "2026-12-11"]));
    }

    #[test]
    fn second_tuesday_of_every_month() {
        let s = RecurrSpec {
            repeat_on_num: "2".into(),
            repeat_on_day: "2".into(),
            repeat_on_freq: "1".into(),
            rt2_pf_flag: true,
            ..RecurrSpec::default()
        };
        let r = Recurrence::from_spec(2, &s).unwrap();
        let got = r.occurrences(
            date("2026-10-13"),
            Some(date("2027-03-01")),
            date("2026-12-01"),
            date("2027-03-31"),
            &[6, 0],
        );
        assert_eq!(got, dates(&["2026-12-08", "2027-01-12", "2027-02-09"]));
    }

    #[test]
    fn last_friday_falls_back_to_the_fourth_when_there_is_no_fifth() {
        let s = RecurrSpec {
            repeat_on_num: "5".into(),
            repeat_on_day: "5".into(),
            repeat_on_freq: "1".into(),
            rt2_pf_flag: true,
            ..RecurrSpec::default()
        };
        let r = Recurrence::from_spec(2, &s).unwrap();
        let got = r.occurrences(
            date("2027-01-01"),
            Some(date("2027-03-31")),
            date("2027-01-01"),
            date("2027-03-31"),
            &[6, 0],
        );
        // January 2027 has five Fridays (29th), February four (26th), March four (26th).
        assert_eq!(got, dates(&["2027-01-29", "2027-02-26", "2027-03-26"]));
    }

    #[test]
    fn days_of_week_start_on_the_start_date_then_follow_the_listed_days() {
        // 2 = Monday, 4 = Wednesday; starts on a Sunday.
        let r = Recurrence::from_spec(3, &spec("2,4", "6")).unwrap();
        let got = r.occurrences(
            date("2026-11-29"),
            Some(date("2026-12-09")),
            date("2026-11-01"),
            date("2026-12-31"),
            &[6, 0],
        );
        assert_eq!(got, dates(&["2026-11-29", "2026-11-30", "2026-12-02", "2026-12-07", "2026-12-09"]));
    }

    #[test]
    fn malformed_specs_are_skipped_as_openemr_skips_them() {
        assert_eq!(Recurrence::from_spec(1, &spec("", "1")), None);
        assert_eq!(Recurrence::from_spec(1, &spec("1", "9")), None);
        assert_eq!(Recurrence::from_spec(3, &spec("8", "6")), None);
        assert_eq!(Recurrence::from_spec(7, &spec("1", "1")), None);
    }

    #[test]
    fn a_repeating_event_without_an_end_date_has_no_occurrences() {
        let r = Recurrence::from_spec(1, &spec("1", "0")).unwrap();
        assert!(
            r.occurrences(date("2026-12-01"), None, date("2026-12-01"), date("2026-12-31"), &[6, 0])
                .is_empty()
        );
    }

    #[test]
    fn mktime_rolls_days_and_months_over() {
        assert_eq!(mktime(2027, 2, 31), date("2027-03-03"));
        assert_eq!(mktime(2026, 13, 1), date("2027-01-01"));
        assert_eq!(mktime(2027, 1, 0), date("2026-12-31"));
    }
}
