//! A booking and a change to one, checked for shape before anything touches the calendar.

use chrono::{NaiveDate, NaiveDateTime, NaiveTime, Timelike};

use crate::domain::{
    patient::Pid,
    scheduling::{availability::Span, status::StatusCode},
    validation::Issues,
};

/// `pc_hometext` is TEXT; `pc_room` varchar(20); `pc_apptstatus` varchar(15).
const REASON_BYTES: usize = 65_535;
const ROOM_CHARS: usize = 20;
const STATUS_CHARS: usize = 15;
/// A client's idempotency key, kept in `mmt_appointment_requests.idempotency_key`.
pub const KEY_CHARS: usize = 64;

#[derive(Debug, Clone, Default)]
pub struct NewAppointmentInput {
    pub pid: Option<i64>,
    pub provider_id: Option<i64>,
    pub facility_id: Option<i64>,
    pub category_id: Option<i64>,
    /// Local `YYYY-MM-DDTHH:MM`.
    pub start: Option<String>,
    pub duration_minutes: Option<i64>,
    pub reason: Option<String>,
    pub room: Option<String>,
    pub status: Option<String>,
    /// Book as a pending hold that lapses unless confirmed.
    pub hold: bool,
    pub override_availability: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAppointment {
    pub pid: Pid,
    pub provider_id: i64,
    pub facility_id: i64,
    pub category_id: i64,
    pub when: When,
    /// `None`: the category's duration.
    pub minutes: Option<u32>,
    pub reason: String,
    pub room: String,
    pub status: Option<StatusCode>,
    pub hold: bool,
    pub override_availability: bool,
}

/// A start on one calendar day, with its length once known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct When {
    pub date: NaiveDate,
    pub start: NaiveTime,
}

impl When {
    /// The span on its day, or `None` when it would run past midnight (OpenEMR's calendar has no
    /// appointment spanning two days).
    pub fn span(self, minutes: u32) -> Option<Span> {
        let start = self.start.num_seconds_from_midnight() / 60;
        let end = start + minutes;
        (minutes > 0 && end <= super::availability::MINUTES_PER_DAY).then_some(Span { start, end })
    }

    pub fn at(self) -> NaiveDateTime {
        self.date.and_time(self.start)
    }
}

/// A change to an appointment; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct AppointmentPatchInput {
    pub status: Option<String>,
    pub start: Option<String>,
    pub duration_minutes: Option<i64>,
    pub provider_id: Option<i64>,
    pub reason: Option<String>,
    pub room: Option<String>,
    pub override_availability: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppointmentPatch {
    pub status: Option<StatusCode>,
    pub when: Option<When>,
    pub minutes: Option<u32>,
    pub provider_id: Option<i64>,
    pub reason: Option<String>,
    pub room: Option<String>,
    pub override_availability: bool,
}

impl AppointmentPatch {
    /// Whether the change moves the appointment in time or to another provider.
    pub fn reschedules(&self) -> bool {
        self.when.is_some() || self.minutes.is_some() || self.provider_id.is_some()
    }
}

fn id(issues: &mut Issues, field: &str, value: Option<i64>, required: bool) -> Option<i64> {
    match value {
        None if required => {
            issues.add(field, "is required");
            None
        }
        Some(v) if v <= 0 || v > i64::from(i32::MAX) => {
            issues.add(field, "must be a positive id");
            None
        }
        other => other,
    }
}

pub fn parse_start(issues: &mut Issues, field: &str, raw: &str) -> Option<When> {
    let raw = raw.trim();
    let parsed = NaiveDateTime::parse_from_str(raw, "%Y-%m-%dT%H:%M")
        .or_else(|_| NaiveDateTime::parse_from_str(raw, "%Y-%m-%dT%H:%M:%S"));
    match parsed {
        Ok(at) if at.second() == 0 => Some(When { date: at.date(), start: at.time() }),
        Ok(_) => {
            issues.add(field, "must start on a whole minute");
            None
        }
        Err(_) => {
            issues.add(field, "must be a local date and time as YYYY-MM-DDTHH:MM");
            None
        }
    }
}

fn minutes(issues: &mut Issues, value: Option<i64>) -> Option<u32> {
    let m = value?;
    match u32::try_from(m) {
        Ok(m) if (1..=24 * 60).contains(&m) => Some(m),
        _ => {
            issues.add("duration_minutes", "must be between 1 and 1440");
            None
        }
    }
}

fn reason(issues: &mut Issues, value: Option<String>) -> Option<String> {
    value.map(|r| {
        let text = issues.prose("reason", &r, 0, REASON_BYTES);
        issues.within_bytes("reason", &text, REASON_BYTES);
        text
    })
}

fn room(issues: &mut Issues, value: Option<String>) -> Option<String> {
    value.map(|r| issues.text("room", &r, 0, ROOM_CHARS))
}

fn status(issues: &mut Issues, value: Option<String>) -> Option<StatusCode> {
    value.map(|s| StatusCode::new(&issues.text("status", &s, 1, STATUS_CHARS)))
}

impl NewAppointmentInput {
    pub fn validate(self) -> Result<NewAppointment, Issues> {
        let mut issues = Issues::default();
        let pid = id(&mut issues, "pid", self.pid, true);
        let provider_id = id(&mut issues, "provider_id", self.provider_id, true);
        let facility_id = id(&mut issues, "facility_id", self.facility_id, true);
        let category_id = id(&mut issues, "category_id", self.category_id, true);
        let when = match self.start.as_deref() {
            None => {
                issues.add("start", "is required");
                None
            }
            Some(raw) => parse_start(&mut issues, "start", raw),
        };
        let minutes = minutes(&mut issues, self.duration_minutes);
        if let (Some(w), Some(m)) = (when, minutes)
            && w.span(m).is_none()
        {
            issues.add("duration_minutes", "must end by midnight of the day it starts");
        }
        let reason = reason(&mut issues, self.reason).unwrap_or_default();
        let room = room(&mut issues, self.room).unwrap_or_default();
        let status = status(&mut issues, self.status);
        if self.hold && status.is_some() {
            issues.add("status", "a hold is always pending (^); leave status out");
        }
        issues.into_result(())?;
        Ok(NewAppointment {
            pid: Pid(pid.unwrap_or_default()),
            provider_id: provider_id.unwrap_or_default(),
            facility_id: facility_id.unwrap_or_default(),
            category_id: category_id.unwrap_or_default(),
            when: when.unwrap_or(When { date: NaiveDate::MIN, start: NaiveTime::MIN }),
            minutes,
            reason,
            room,
            status: if self.hold { Some(StatusCode::pending()) } else { status },
            hold: self.hold,
            override_availability: self.override_availability,
        })
    }
}

impl AppointmentPatchInput {
    pub fn validate(self) -> Result<AppointmentPatch, Issues> {
        let mut issues = Issues::default();
        let patch = AppointmentPatch {
            status: status(&mut issues, self.status),
            when: self.start.as_deref().and_then(|raw| parse_start(&mut issues, "start", raw)),
            minutes: minutes(&mut issues, self.duration_minutes),
            provider_id: id(&mut issues, "provider_id", self.provider_id, false),
            reason: reason(&mut issues, self.reason),
            room: room(&mut issues, self.room),
            override_availability: self.override_availability,
        };
        if (AppointmentPatch { override_availability: false, ..patch.clone() }) == AppointmentPatch::default()
        {
            issues.add("body", "names nothing to change");
        }
        issues.into_result(patch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(issues: Issues) -> Vec<String> {
        issues.0.into_iter().map(|i| i.field).collect()
    }

    fn valid() -> NewAppointmentInput {
        NewAppointmentInput {
            pid: Some(1),
            provider_id: Some(7),
            facility_id: Some(3),
            category_id: Some(5),
            start: Some("2026-12-01T09:30".into()),
            ..NewAppointmentInput::default()
        }
    }

    #[test]
    fn a_booking_names_every_missing_or_bad_field() {
        let err = NewAppointmentInput { start: Some("2026-12-01 9am".into()), ..Default::default() }
            .validate()
            .unwrap_err();
        assert_eq!(fields(err), ["pid", "provider_id", "facility_id", "category_id", "start"]);
        let err = NewAppointmentInput { duration_minutes: Some(0), room: Some("r".repeat(21)), ..valid() }
            .validate()
            .unwrap_err();
        assert_eq!(fields(err), ["duration_minutes", "room"]);
    }

    #[test]
    fn a_booking_may_not_run_past_midnight() {
        let input = NewAppointmentInput {
            start: Some("2026-12-01T23:30".into()),
            duration_minutes: Some(45),
            ..valid()
        };
        assert_eq!(fields(input.validate().unwrap_err()), ["duration_minutes"]);
    }

    #[test]
    fn a_hold_is_pending() {
        let booked = NewAppointmentInput { hold: true, ..valid() }.validate().unwrap();
        assert_eq!(booked.status, Some(StatusCode::pending()));
        let clash = NewAppointmentInput { hold: true, status: Some("@".into()), ..valid() };
        assert_eq!(fields(clash.validate().unwrap_err()), ["status"]);
    }

    #[test]
    fn an_empty_patch_is_refused() {
        assert_eq!(fields(AppointmentPatchInput::default().validate().unwrap_err()), ["body"]);
        let patch = AppointmentPatchInput { start: Some("2026-12-02T10:00".into()), ..Default::default() }
            .validate()
            .unwrap();
        assert!(patch.reschedules());
    }
}
