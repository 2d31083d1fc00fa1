//! Scheduling on OpenEMR's calendar: listing and reading appointments, a provider's schedule and
//! free slots, booking without double booking, status changes with the flow board, and holds.

pub mod appointments;
pub mod availability;
pub mod holds;
pub mod repeating;

use std::time::Duration;

use chrono::NaiveDate;
use sqlx::MySqlPool;

use crate::{
    app::AppState,
    domain::{
        acl::{AclLevel, Aco},
        scheduling::{
            availability::{Blocker, Effect, IN_OFFICE, OUT_OF_OFFICE, Occurrence},
            recurrence::{Recurrence, WeekendDays, default_weekend_days},
            status::{Phase, StatusOption, phase_of},
        },
        user::Caller,
        validation::Issues,
    },
    php,
    service::{acl::AclError, cached::Cached, permission},
    storage::{
        StorageError,
        openemr::{
            globals,
            scheduling::{categories, events::EventRow},
        },
    },
};

/// Bookings of this replica queue here per provider (striped) before they take a pooled
/// connection to wait on the provider's database lock, so a burst for one provider holds one
/// connection, not one per request, and cannot starve the pool the lock holder needs.
pub struct BookingGate(Vec<tokio::sync::Mutex<()>>);

impl Default for BookingGate {
    fn default() -> Self {
        Self((0..64).map(|_| tokio::sync::Mutex::new(())).collect())
    }
}

/// What this replica keeps for scheduling between requests.
pub struct Shared {
    pub gate: BookingGate,
    pub repeating: repeating::RepeatingCache,
    settings: Cached<CalendarSettings>,
    statuses: Cached<Vec<StatusOption>>,
}

impl Default for Shared {
    fn default() -> Self {
        Self {
            gate: BookingGate::default(),
            repeating: repeating::cache(),
            settings: Cached::new("calendar settings"),
            statuses: Cached::new("appointment statuses"),
        }
    }
}

/// How old this replica's copy of the calendar globals and the appointment status list may be:
/// every listing and booking reads them, and OpenEMR's administrators rarely change them (a change
/// applies within this time).
const SETTINGS_MAX_AGE: Duration = Duration::from_secs(5);

impl BookingGate {
    pub async fn enter(&self, provider: i64) -> tokio::sync::MutexGuard<'_, ()> {
        self.0[provider.rem_euclid(self.0.len() as i64) as usize].lock().await
    }
}

/// The longest range one request may expand (a year and a day, for a leap year).
pub const MAX_RANGE_DAYS: i64 = 366;

#[derive(Debug, thiserror::Error)]
pub enum SchedulingError {
    #[error("no appointment {0}")]
    NotFound(u32),
    #[error("no appointment with this id")]
    UnknownUuid,
    #[error("invalid appointment")]
    Invalid(Issues),
    /// The span overlaps another appointment of the provider.
    #[error("the time overlaps appointment {0} of this provider")]
    Taken(u64),
    /// The provider is not available then; `Blocker` says why.
    #[error("{0}")]
    Unavailable(String),
    #[error("appointment {eid} cannot go from status {from} to {to}")]
    Transition { eid: u32, from: String, to: String },
    #[error("you may read and change only your own calendar (OpenEMR's docs_see_entire_calendar is off)")]
    OtherCalendar,
    #[error("appointment {0} repeats; change a repeating appointment in OpenEMR's calendar")]
    Repeating(u32),
    #[error("idempotency key {0} was already used for a different booking")]
    KeyReused(String),
    #[error(transparent)]
    Acl(#[from] AclError),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl From<Issues> for SchedulingError {
    fn from(issues: Issues) -> Self {
        Self::Invalid(issues)
    }
}

/// The calendar globals scheduling reads, with OpenEMR's code defaults.
#[derive(Debug, Clone)]
pub struct CalendarSettings {
    /// `calendar_interval`: the slot grid in minutes.
    pub interval_mins: u32,
    /// `weekend_days`, for "every work day" repeats.
    pub weekend: WeekendDays,
    /// `auto_create_new_encounters`: 0 off, 1 one encounter per day, 2 one per appointment.
    pub auto_encounter: u8,
    /// `docs_see_entire_calendar`: whether providers see colleagues' calendars.
    pub docs_see_all: bool,
}

pub async fn settings(state: &AppState) -> Result<CalendarSettings, StorageError> {
    let pool = state.pool.clone();
    let copy =
        state.scheduling.settings.get(SETTINGS_MAX_AGE, || async move { read_settings(&pool).await }).await?;
    Ok((*copy).clone())
}

async fn read_settings(pool: &MySqlPool) -> Result<CalendarSettings, StorageError> {
    let found = globals::values(
        pool,
        &["calendar_interval", "weekend_days", "auto_create_new_encounters", "docs_see_entire_calendar"],
    )
    .await?;
    let get = |name: &str| found.get(name).map(|v| v.trim());
    Ok(CalendarSettings {
        interval_mins: get("calendar_interval").and_then(|v| v.parse().ok()).filter(|m| *m > 0).unwrap_or(15),
        weekend: match get("weekend_days") {
            Some(v) => v.split(',').filter_map(|d| d.trim().parse().ok()).filter(|d| *d < 7).collect(),
            None => default_weekend_days(),
        },
        auto_encounter: get("auto_create_new_encounters").and_then(|v| v.parse().ok()).unwrap_or(1),
        docs_see_all: get("docs_see_entire_calendar") == Some("1"),
    })
}

/// Which providers' calendars the caller may read: every one with `patients|appt`, except that a
/// provider (an authorized user) sees only their own unless `docs_see_entire_calendar` is on or
/// they administer OpenEMR.
pub async fn readable_provider(
    state: &AppState,
    caller: &Caller,
    settings: &CalendarSettings,
) -> Result<Option<i64>, SchedulingError> {
    permission::require(state, caller, Aco::PATIENTS_APPT, AclLevel::View).await?;
    if settings.docs_see_all || caller.is_guest() {
        return Ok(None);
    }
    let is_admin = state.acl.permissions(&caller.username).await?.allows(Aco::ADMIN_SUPER, AclLevel::View);
    Ok((caller.provider && !is_admin).then_some(caller.user_id.0))
}

/// A required `YYYY-MM-DD` query value.
pub fn required_date(issues: &mut Issues, field: &str, raw: Option<&str>) -> Option<NaiveDate> {
    match raw {
        None => {
            issues.add(field, "is required (YYYY-MM-DD)");
            None
        }
        Some(raw) => issues.date(field, raw),
    }
}

pub fn check_range(issues: &mut Issues, from: NaiveDate, to: NaiveDate) {
    if to < from {
        issues.add("to", "must not be before from");
    } else if (to - from).num_days() >= MAX_RANGE_DAYS {
        issues.add("to", format!("the range may span at most {MAX_RANGE_DAYS} days"));
    }
}

/// The status codes in use, so a code is checked against the site's own list.
#[derive(Clone)]
pub struct Statuses(Vec<StatusOption>);

impl Statuses {
    pub async fn load(state: &AppState) -> Result<Self, StorageError> {
        let pool = state.pool.clone();
        let copy = state
            .scheduling
            .statuses
            .get(SETTINGS_MAX_AGE, || async move { categories::statuses(&pool).await })
            .await?;
        Ok(Self((*copy).clone()))
    }

    pub fn find(&self, code: &str) -> Option<&StatusOption> {
        self.0.iter().find(|o| o.code.as_str() == code)
    }

    /// A stored code's phase; codes no longer on the list keep their built-in meaning.
    pub fn phase(&self, code: &str) -> Phase {
        self.find(code).map_or_else(|| phase_of(code, false, false), StatusOption::phase)
    }

    pub fn allowed(&self) -> String {
        self.0.iter().map(|o| o.code.as_str()).collect::<Vec<_>>().join(", ")
    }

    pub fn options(&self) -> &[StatusOption] {
        &self.0
    }
}

/// Each date in `[from, to]` on which the event occurs, as OpenEMR's calendar expands it.
pub fn dates_of(row: &EventRow, from: NaiveDate, to: NaiveDate, weekend: &[u32]) -> Vec<NaiveDate> {
    let Some(start) = row.event_date else { return Vec::new() };
    let spec = php::calendar::recurrspec(row.pc_recurrspec.as_deref());
    Recurrence::from_spec(row.pc_recurrtype, &spec)
        .map(|r| r.occurrences(start, row.end_date, from, to, weekend))
        .unwrap_or_default()
}

/// What an occurrence of `row` does to its provider's day.
pub fn effect_of(row: &EventRow, statuses: &Statuses) -> Effect {
    let is_clinic = row.provider() == Some(0);
    match row.pc_catid as i64 {
        _ if row.pc_eventstatus != 1 => Effect::Nothing,
        _ if row.cattype == Some(categories::CLINIC) => Effect::ShutsDay,
        _ if is_clinic => Effect::Nothing,
        IN_OFFICE => Effect::Opens { preferred: i64::from(row.pc_prefcatid) },
        OUT_OF_OFFICE => Effect::Closes,
        _ if row.patient().is_some() => {
            if statuses.phase(&row.pc_apptstatus).occupies_time() {
                Effect::Appointment
            } else {
                Effect::Nothing
            }
        }
        _ => Effect::Reserves,
    }
}

pub fn occurrences(
    rows: &[EventRow],
    from: NaiveDate,
    to: NaiveDate,
    settings: &CalendarSettings,
    statuses: &Statuses,
) -> Vec<Occurrence> {
    rows.iter()
        .flat_map(|row| {
            let effect = effect_of(row, statuses);
            dates_of(row, from, to, &settings.weekend).into_iter().map(move |date| Occurrence {
                eid: u64::from(row.pc_eid),
                date,
                start: row.start_time.unwrap_or_default(),
                duration_secs: row.pc_duration,
                all_day: row.pc_alldayevent != 0 || effect == Effect::ShutsDay,
                category: i64::from(row.pc_catid),
                effect,
            })
        })
        .collect()
}

pub fn describe(blocker: Blocker, category_name: impl Fn(i64) -> String) -> String {
    match blocker {
        Blocker::Appointment { eid } => format!("the time overlaps appointment {eid}"),
        Blocker::Reserved { eid, category } => {
            format!("the provider is not available then ({}, event {eid})", category_name(category))
        }
        Blocker::Closed { eid } => format!("the clinic is closed that day (event {eid})"),
        Blocker::NotInOffice => "the time is outside the provider's In Office hours".into(),
    }
}

pub async fn categories(
    state: &AppState,
    caller: &Caller,
) -> Result<Vec<categories::CategoryRow>, SchedulingError> {
    permission::require(state, caller, Aco::PATIENTS_APPT, AclLevel::View).await?;
    Ok(categories::all(&state.pool).await?)
}

pub async fn statuses(state: &AppState, caller: &Caller) -> Result<Statuses, SchedulingError> {
    permission::require(state, caller, Aco::PATIENTS_APPT, AclLevel::View).await?;
    Ok(Statuses::load(state).await?)
}
