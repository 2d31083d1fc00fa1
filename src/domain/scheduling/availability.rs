//! A provider's day as OpenEMR's calendar computes it: "In Office" opens availability at its start
//! time, "Out Of Office" closes it (and midnight closes it), clinic holidays and closures shut the
//! day, and every other event reserves its time. One model answers both "which slots are free"
//! and "may this booking go here", so a slot offered is always a slot that can be booked.

use chrono::{NaiveDate, NaiveTime, Timelike};

pub const MINUTES_PER_DAY: u32 = 24 * 60;

/// The calendar categories OpenEMR's calendar code treats by number.
pub const IN_OFFICE: i64 = 2;
pub const OUT_OF_OFFICE: i64 = 3;

/// What one event occurrence does to its provider's day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// "In Office"; `preferred` is its `pc_prefcatid` (0: any category).
    Opens {
        preferred: i64,
    },
    Closes,
    /// A clinic holiday or closure (category type 2): nothing can be booked that day.
    ShutsDay,
    /// A patient appointment that takes the time (not cancelled, not a no-show).
    Appointment,
    /// Lunch, vacation, reserved or any other provider event.
    Reserves,
    /// Cancelled and no-show appointments, and events OpenEMR hides (`pc_eventstatus` ≠ 1).
    Nothing,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Occurrence {
    pub eid: u64,
    pub date: NaiveDate,
    pub start: NaiveTime,
    pub duration_secs: i64,
    pub all_day: bool,
    pub category: i64,
    pub effect: Effect,
}

/// A half-open span of minutes since midnight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub start: u32,
    pub end: u32,
}

impl Span {
    pub fn overlaps(self, other: Span) -> bool {
        self.start < other.end && other.start < self.end
    }

    pub fn time(minute: u32) -> NaiveTime {
        NaiveTime::from_num_seconds_from_midnight_opt(minute.min(MINUTES_PER_DAY - 1) * 60, 0)
            .unwrap_or(NaiveTime::MIN)
    }
}

/// Why a span cannot be booked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blocker {
    /// Another appointment of the provider overlaps: never overridden.
    Appointment { eid: u64 },
    /// A provider event (lunch, vacation, reserved …) overlaps.
    Reserved { eid: u64, category: i64 },
    /// The clinic is closed that day.
    Closed { eid: u64 },
    /// Outside the provider's In Office hours.
    NotInOffice,
}

impl Blocker {
    /// Whether a user with OpenEMR's override right (`patients|appt` write) may book anyway.
    pub fn overridable(self) -> bool {
        !matches!(self, Self::Appointment { .. })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayPlan {
    pub date: NaiveDate,
    pub open: Vec<Span>,
    pub shut_by: Option<u64>,
    pub taken: Vec<(Span, Blocker)>,
}

/// The time an occurrence takes: at least one calendar interval, as OpenEMR's slot grid counts a
/// zero-length event; a whole day when all-day.
pub fn occupied_span(o: &Occurrence, interval_mins: u32) -> Span {
    if o.all_day {
        return Span { start: 0, end: MINUTES_PER_DAY };
    }
    let start = o.start.num_seconds_from_midnight() / 60;
    let minutes = u32::try_from(o.duration_secs.max(0) / 60).unwrap_or(MINUTES_PER_DAY);
    Span { start, end: (start + minutes.max(interval_mins.max(1))).min(MINUTES_PER_DAY) }
}

impl DayPlan {
    /// The plan of one day from that day's occurrences; `category` is the visit category being
    /// booked, so In Office blocks reserved for another category count as Out Of Office.
    pub fn build(date: NaiveDate, day: &[Occurrence], category: Option<i64>, interval_mins: u32) -> Self {
        let mut markers: Vec<(u32, bool)> = day
            .iter()
            .filter_map(|o| {
                let at = o.start.num_seconds_from_midnight() / 60;
                match o.effect {
                    Effect::Opens { preferred } => {
                        Some((at, preferred == 0 || category.is_none_or(|c| c == preferred)))
                    }
                    Effect::Closes => Some((at, false)),
                    _ => None,
                }
            })
            .collect();
        // At the same minute the close wins, as in OpenEMR's slot loop.
        markers.sort_by_key(|(at, opens)| (*at, !*opens));
        Self {
            date,
            open: open_spans(&markers),
            shut_by: day.iter().find(|o| o.effect == Effect::ShutsDay).map(|o| o.eid),
            taken: day
                .iter()
                .filter_map(|o| {
                    let blocker = match o.effect {
                        Effect::Appointment => Blocker::Appointment { eid: o.eid },
                        Effect::Reserves => Blocker::Reserved { eid: o.eid, category: o.category },
                        _ => return None,
                    };
                    Some((occupied_span(o, interval_mins), blocker))
                })
                .collect(),
        }
    }

    /// The first reason `span` cannot be booked; an overlapping appointment is always reported
    /// first, since nothing overrides it.
    pub fn check(&self, span: Span) -> Result<(), Blocker> {
        let overlapping = |want_appointment: bool| {
            self.taken.iter().find(|(taken, blocker)| {
                taken.overlaps(span) && matches!(blocker, Blocker::Appointment { .. }) == want_appointment
            })
        };
        if let Some((_, blocker)) = overlapping(true) {
            return Err(*blocker);
        }
        if let Some(eid) = self.shut_by {
            return Err(Blocker::Closed { eid });
        }
        if let Some((_, blocker)) = overlapping(false) {
            return Err(*blocker);
        }
        if !self.open.iter().any(|o| o.start <= span.start && span.end <= o.end) {
            return Err(Blocker::NotInOffice);
        }
        Ok(())
    }

    /// Free starts for a visit of `minutes`, on the calendar's grid; after each free slot the
    /// search continues where that visit would end, as OpenEMR's "find available" lists them.
    pub fn free_slots(&self, minutes: u32, interval_mins: u32) -> Vec<u32> {
        let step = interval_mins.max(1);
        let length = minutes.max(1);
        let mut starts = Vec::new();
        let mut at = 0;
        while at + length <= MINUTES_PER_DAY {
            if self.check(Span { start: at, end: at + length }).is_ok() {
                starts.push(at);
                at += length.div_ceil(step) * step;
            } else {
                at += step;
            }
        }
        starts
    }
}

/// In Office → Out Of Office spans; the day starts closed and midnight closes it.
fn open_spans(markers: &[(u32, bool)]) -> Vec<Span> {
    let mut spans = Vec::new();
    let mut since: Option<u32> = None;
    for &(at, opens) in markers {
        match (since, opens) {
            (None, true) => since = Some(at),
            (Some(start), false) => {
                if at > start {
                    spans.push(Span { start, end: at });
                }
                since = None;
            }
            _ => {}
        }
    }
    if let Some(start) = since {
        spans.push(Span { start, end: MINUTES_PER_DAY });
    }
    spans
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(h: u32, m: u32) -> NaiveTime {
        NaiveTime::from_hms_opt(h, m, 0).unwrap()
    }

    fn occ(eid: u64, start: NaiveTime, minutes: i64, category: i64, effect: Effect) -> Occurrence {
        Occurrence {
            eid,
            date: NaiveDate::from_ymd_opt(2026, 12, 1).unwrap(),
            start,
            duration_secs: minutes * 60,
            all_day: false,
            category,
            effect,
        }
    }

    fn day(events: &[Occurrence], category: Option<i64>) -> DayPlan {
        DayPlan::build(NaiveDate::from_ymd_opt(2026, 12, 1).unwrap(), events, category, 15)
    }

    fn office_with_lunch() -> Vec<Occurrence> {
        vec![
            occ(1, at(9, 0), 0, IN_OFFICE, Effect::Opens { preferred: 0 }),
            occ(2, at(12, 0), 60, 8, Effect::Reserves),
            occ(3, at(17, 0), 0, OUT_OF_OFFICE, Effect::Closes),
        ]
    }

    fn minute(h: u32, m: u32) -> u32 {
        h * 60 + m
    }

    #[test]
    fn slots_lie_inside_office_hours_and_skip_lunch() {
        let slots = day(&office_with_lunch(), Some(5)).free_slots(30, 15);
        assert_eq!(slots.first(), Some(&minute(9, 0)));
        assert_eq!(slots.last(), Some(&minute(16, 30)));
        assert!(slots.contains(&minute(11, 30)));
        assert!(slots.iter().all(|s| !(minute(11, 31)..minute(13, 0)).contains(s)));
        assert!(slots.contains(&minute(13, 0)));
        assert_eq!(slots.len(), 14);
    }

    #[test]
    fn a_booked_appointment_takes_its_time_exactly() {
        let mut events = office_with_lunch();
        events.push(occ(9, at(9, 10), 15, 5, Effect::Appointment));
        let plan = day(&events, Some(5));
        let slots = plan.free_slots(15, 15);
        assert!(!slots.contains(&minute(9, 0)));
        assert!(!slots.contains(&minute(9, 15)), "09:15 overlaps 09:10-09:25");
        assert!(slots.contains(&minute(9, 30)));
        assert_eq!(
            plan.check(Span { start: minute(9, 20), end: minute(9, 35) }),
            Err(Blocker::Appointment { eid: 9 })
        );
    }

    #[test]
    fn cancelled_appointments_free_their_slot() {
        let mut events = office_with_lunch();
        events.push(occ(9, at(10, 0), 15, 5, Effect::Nothing));
        assert!(day(&events, Some(5)).free_slots(15, 15).contains(&minute(10, 0)));
    }

    #[test]
    fn an_appointment_conflict_is_reported_before_unavailability() {
        let mut events = office_with_lunch();
        events.push(occ(9, at(12, 0), 15, 5, Effect::Appointment));
        let plan = day(&events, Some(5));
        assert_eq!(
            plan.check(Span { start: minute(12, 0), end: minute(12, 15) }),
            Err(Blocker::Appointment { eid: 9 })
        );
        assert_eq!(
            plan.check(Span { start: minute(12, 15), end: minute(12, 30) }),
            Err(Blocker::Reserved { eid: 2, category: 8 })
        );
        assert_eq!(plan.check(Span { start: minute(8, 0), end: minute(8, 15) }), Err(Blocker::NotInOffice));
        assert_eq!(plan.check(Span { start: minute(16, 50), end: minute(17, 5) }), Err(Blocker::NotInOffice));
    }

    #[test]
    fn without_an_in_office_block_nothing_is_free() {
        assert!(day(&[occ(2, at(12, 0), 60, 8, Effect::Reserves)], Some(5)).free_slots(15, 15).is_empty());
    }

    #[test]
    fn a_clinic_closure_shuts_the_whole_day() {
        let mut events = office_with_lunch();
        events.push(occ(7, at(0, 0), 1440, 6, Effect::ShutsDay));
        let plan = day(&events, Some(5));
        assert!(plan.free_slots(15, 15).is_empty());
        assert_eq!(
            plan.check(Span { start: minute(10, 0), end: minute(10, 15) }),
            Err(Blocker::Closed { eid: 7 })
        );
    }

    #[test]
    fn in_office_for_another_category_counts_as_out() {
        let events = vec![
            occ(1, at(9, 0), 0, IN_OFFICE, Effect::Opens { preferred: 10 }),
            occ(3, at(17, 0), 0, OUT_OF_OFFICE, Effect::Closes),
        ];
        assert!(day(&events, Some(5)).free_slots(15, 15).is_empty());
        assert!(!day(&events, Some(10)).free_slots(30, 15).is_empty());
    }

    #[test]
    fn an_all_day_vacation_reserves_the_day() {
        let mut events = office_with_lunch();
        let mut vacation = occ(4, at(0, 0), 0, 4, Effect::Reserves);
        vacation.all_day = true;
        events.push(vacation);
        assert!(day(&events, Some(5)).free_slots(15, 15).is_empty());
    }

    #[test]
    fn zero_length_events_still_take_one_interval() {
        let mut events = office_with_lunch();
        events.push(occ(5, at(10, 0), 0, 11, Effect::Reserves));
        let plan = day(&events, Some(5));
        assert!(plan.check(Span { start: minute(10, 0), end: minute(10, 15) }).is_err());
        assert!(plan.check(Span { start: minute(10, 15), end: minute(10, 30) }).is_ok());
    }
}
