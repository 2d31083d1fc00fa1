//! A provider's schedule and free slots, computed from OpenEMR's calendar rows as its calendar
//! computes them.

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};

use crate::{
    app::AppState,
    domain::{
        audit::AuditEntry,
        scheduling::availability::{DayPlan, Effect, MINUTES_PER_DAY, Occurrence, Span, occupied_span},
        user::Caller,
        validation::Issues,
    },
    service::{
        audit,
        scheduling::{
            CalendarSettings, SchedulingError, Statuses, check_range, occurrences, readable_provider,
            required_date, settings,
        },
    },
    storage::{
        StorageError,
        openemr::{
            providers,
            scheduling::{
                categories::{self, CategoryRow},
                events::{self, EventRow},
            },
        },
    },
};

/// Where a calendar's repeating events come from: the calendar itself, for a booking's check, or
/// this replica's copy (`repeating`), for reads that only show what is free.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repeating {
    Exact,
    Cached,
}

/// Everything that happens on a provider's calendar over a range, expanded.
pub struct Calendar {
    pub rows: Vec<EventRow>,
    pub occurrences: Vec<Occurrence>,
    pub settings: CalendarSettings,
    pub statuses: Statuses,
    pub categories: Vec<CategoryRow>,
}

impl Calendar {
    /// The provider's calendar over `from..=to`, under the site's settings and statuses, which
    /// the caller has read already.
    pub async fn load(
        state: &AppState,
        conn: &mut sqlx::MySqlConnection,
        provider: i64,
        (from, to): (NaiveDate, NaiveDate),
        repeating: Repeating,
        settings: CalendarSettings,
        statuses: Statuses,
    ) -> Result<Self, StorageError> {
        let mut rows = events::one_off_for_provider(conn, provider, from, to).await?;
        match repeating {
            Repeating::Exact => rows.extend(events::repeating_for_provider(conn, provider, from, to).await?),
            Repeating::Cached => {
                let copy = super::repeating::rows(state).await?;
                rows.extend(
                    copy.iter()
                        .filter(|r| matches!(r.provider(), Some(p) if p == provider || p == 0))
                        .filter(|r| {
                            r.event_date.is_some_and(|d| d <= to) && r.end_date.is_some_and(|d| d >= from)
                        })
                        .cloned(),
                );
            }
        }
        let occurrences = occurrences(&rows, from, to, &settings, &statuses);
        Ok(Self { rows, occurrences, settings, statuses, categories: categories::all(&state.pool).await? })
    }

    pub fn day(&self, date: NaiveDate, category: Option<i64>, ignore: Option<u64>) -> DayPlan {
        let day: Vec<Occurrence> =
            self.occurrences.iter().filter(|o| o.date == date && Some(o.eid) != ignore).copied().collect();
        DayPlan::build(date, &day, category, self.settings.interval_mins)
    }

    pub fn category(&self, id: i64) -> Option<&CategoryRow> {
        self.categories.iter().find(|c| i64::from(c.pc_catid) == id)
    }

    pub fn category_name(&self, id: i64) -> String {
        self.category(id).and_then(|c| c.pc_catname.clone()).unwrap_or_else(|| format!("category {id}"))
    }

    fn row(&self, eid: u64) -> Option<&EventRow> {
        self.rows.iter().find(|r| u64::from(r.pc_eid) == eid)
    }
}

pub struct RangeInput {
    pub provider: Option<i64>,
    pub facility: Option<i64>,
    pub category: Option<i64>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub duration_minutes: Option<i64>,
}

struct Range {
    provider: i64,
    from: NaiveDate,
    to: NaiveDate,
}

fn parse_range(input: &RangeInput, issues: &mut Issues) -> Option<Range> {
    let provider = match input.provider {
        Some(p) if p > 0 => Some(p),
        Some(_) => {
            issues.add("provider", "must be a positive user id");
            None
        }
        None => {
            issues.add("provider", "is required");
            None
        }
    };
    let from = required_date(issues, "from", input.from.as_deref());
    let to = required_date(issues, "to", input.to.as_deref());
    if let (Some(from), Some(to)) = (from, to) {
        check_range(issues, from, to);
    }
    Some(Range { provider: provider?, from: from?, to: to? })
}

async fn open_for(
    state: &AppState,
    caller: &Caller,
    input: &RangeInput,
    issues: &mut Issues,
) -> Result<Option<(Range, Calendar)>, SchedulingError> {
    let settings = settings(state).await?;
    let own = readable_provider(state, caller, &settings).await?;
    let range = parse_range(input, issues);
    if let Some(r) = &range
        && providers::get(&state.pool, r.provider).await?.is_none()
    {
        issues.add("provider", format!("user {} is not an active, authorized provider", r.provider));
    }
    let Some(range) = range.filter(|_| issues.0.is_empty()) else { return Ok(None) };
    if own.is_some_and(|me| me != range.provider) {
        return Err(SchedulingError::OtherCalendar);
    }
    let statuses = Statuses::load(state).await?;
    let mut conn = state.pool.acquire().await.map_err(StorageError::from_sqlx)?;
    let span = (range.from, range.to);
    let calendar =
        Calendar::load(state, &mut conn, range.provider, span, Repeating::Cached, settings, statuses).await?;
    Ok(Some((range, calendar)))
}

fn dates(from: NaiveDate, to: NaiveDate) -> impl Iterator<Item = NaiveDate> {
    from.iter_days().take_while(move |d| *d <= to)
}

fn at(date: NaiveDate, minute: u32) -> NaiveDateTime {
    if minute >= MINUTES_PER_DAY {
        return date.succ_opt().unwrap_or(date).and_time(NaiveTime::MIN);
    }
    date.and_time(Span::time(minute))
}

pub struct Slot {
    pub start: NaiveDateTime,
    pub end: NaiveDateTime,
}

pub struct Slots {
    pub provider: i64,
    pub category: i64,
    pub category_name: String,
    /// The category's constant id (`pc_constant_id`), which OpenEMR's FHIR API codes it by.
    pub category_code: Option<String>,
    pub minutes: u32,
    pub slots: Vec<Slot>,
}

/// Free starts for a visit of the category's length (or `duration_minutes`), never in the past.
pub async fn slots(
    state: &AppState,
    caller: &Caller,
    input: RangeInput,
    now: NaiveDateTime,
) -> Result<Slots, SchedulingError> {
    let mut issues = Issues::default();
    if input.category.is_none() {
        issues.add("category", "is required: the visit category whose length the slots have");
    }
    if input.duration_minutes.is_some_and(|m| !(1..=i64::from(MINUTES_PER_DAY)).contains(&m)) {
        issues.add("duration_minutes", "must be between 1 and 1440");
    }
    let opened = open_for(state, caller, &input, &mut issues).await?;
    let category_id = input.category.unwrap_or_default();
    let Some((range, calendar)) = opened else { return Err(issues.into()) };
    let Some(category) = calendar.category(category_id) else {
        issues.add("category", format!("no calendar category {category_id}"));
        return Err(issues.into());
    };
    let (category_name, category_code) =
        (calendar.category_name(category_id), category.pc_constant_id.clone());
    let minutes = match input.duration_minutes {
        Some(m) => m as u32,
        None => u32::try_from(category.pc_duration / 60).unwrap_or(0).max(calendar.settings.interval_mins),
    };
    let facility_ok = |o: &Occurrence| {
        input.facility.is_none_or(|f| {
            !matches!(o.effect, Effect::Opens { .. })
                || calendar.row(o.eid).is_none_or(|r| r.pc_facility == 0 || i64::from(r.pc_facility) == f)
        })
    };
    let mut slots = Vec::new();
    for date in dates(range.from, range.to) {
        let day: Vec<Occurrence> =
            calendar.occurrences.iter().filter(|o| o.date == date && facility_ok(o)).copied().collect();
        let plan = DayPlan::build(date, &day, Some(category_id), calendar.settings.interval_mins);
        for start in plan.free_slots(minutes, calendar.settings.interval_mins) {
            let start_at = at(date, start);
            if start_at >= now {
                slots.push(Slot { start: start_at, end: at(date, start + minutes) });
            }
        }
    }
    Ok(Slots {
        provider: range.provider,
        category: category_id,
        category_name,
        category_code,
        minutes,
        slots,
    })
}

pub struct Block {
    pub event_id: u32,
    pub category_id: i64,
    pub category: String,
    pub title: String,
    pub start: NaiveDateTime,
    pub end: NaiveDateTime,
}

pub struct BookedSlot {
    pub id: u32,
    pub pid: i64,
    pub category_id: i64,
    pub status: String,
    pub start: NaiveDateTime,
    pub end: NaiveDateTime,
    /// Other appointments taking the same time: double bookings made around the sidecar (OpenEMR's
    /// own screens do not prevent them).
    pub overlaps: Vec<u32>,
}

pub struct DaySchedule {
    pub date: NaiveDate,
    pub available: Vec<Slot>,
    pub closed: Option<Block>,
    pub blocks: Vec<Block>,
    pub appointments: Vec<BookedSlot>,
}

/// A provider's days: In Office hours, provider events (lunch, vacation …), closures and booked
/// appointments. Reading it is a scheduling read of the patients booked, so it is audited.
pub async fn schedule(
    state: &AppState,
    caller: &Caller,
    input: RangeInput,
) -> Result<Vec<DaySchedule>, SchedulingError> {
    let mut issues = Issues::default();
    let Some((range, calendar)) = open_for(state, caller, &input, &mut issues).await? else {
        return Err(issues.into());
    };
    let interval = calendar.settings.interval_mins;
    let days: Vec<DaySchedule> = dates(range.from, range.to)
        .map(|date| {
            let plan = calendar.day(date, None, None);
            let block = |o: &Occurrence| {
                let span = occupied_span(o, interval);
                Block {
                    event_id: o.eid as u32,
                    category_id: o.category,
                    category: calendar.category_name(o.category),
                    title: calendar.row(o.eid).and_then(|r| r.pc_title.clone()).unwrap_or_default(),
                    start: at(date, span.start),
                    end: at(date, span.end),
                }
            };
            let todays = calendar.occurrences.iter().filter(|o| o.date == date);
            let taking: Vec<(u32, Span)> = todays
                .clone()
                .filter(|o| o.effect == Effect::Appointment)
                .map(|o| (o.eid as u32, occupied_span(o, 1)))
                .collect();
            DaySchedule {
                date,
                available: plan
                    .open
                    .iter()
                    .map(|s| Slot { start: at(date, s.start), end: at(date, s.end) })
                    .collect(),
                closed: todays.clone().find(|o| o.effect == Effect::ShutsDay).map(block),
                blocks: todays.clone().filter(|o| o.effect == Effect::Reserves).map(block).collect(),
                appointments: todays
                    .filter_map(|o| {
                        let row = calendar.row(o.eid)?;
                        let span = occupied_span(o, 1);
                        let overlaps = match o.effect {
                            Effect::Appointment => taking
                                .iter()
                                .filter(|(id, other)| *id != row.pc_eid && other.overlaps(span))
                                .map(|(id, _)| *id)
                                .collect(),
                            _ => Vec::new(),
                        };
                        Some(BookedSlot {
                            id: row.pc_eid,
                            overlaps,
                            pid: row.patient()?.0,
                            category_id: o.category,
                            status: row.pc_apptstatus.clone(),
                            start: at(date, span.start),
                            end: at(date, span.end),
                        })
                    })
                    .collect(),
            }
        })
        .collect();
    let booked: Vec<String> =
        days.iter().flat_map(|d| d.appointments.iter().map(|a| a.id.to_string())).collect();
    let comments = format!(
        "mmt-sidecar read the schedule of provider {} from {} to {}: appointments [{}]",
        range.provider,
        range.from,
        range.to,
        booked.join(",")
    );
    audit::record(state, &AuditEntry::phi(caller, "scheduling-select", "Scheduling", None, comments)).await?;
    Ok(days)
}
