//! Appointments: listed with repeats expanded, read, booked without double booking, and moved
//! through OpenEMR's statuses with the flow board kept as OpenEMR keeps it.

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
use serde_json::json;
use sha2::{Digest, Sha256};
use sqlx::MySqlConnection;

use crate::{
    app::AppState,
    domain::{
        acl::{AclLevel, Aco},
        audit::AuditEntry,
        encounter::NewEncounter,
        messaging::notification::{NotificationKind, Subject, worth_telling},
        patient::Pid,
        scheduling::{
            appointment::{
                AppointmentPatch, AppointmentPatchInput, KEY_CHARS, NewAppointment, NewAppointmentInput, When,
            },
            availability::Blocker,
            status::{Phase, StatusCode},
        },
        user::Caller,
        validation::Issues,
        webhook::ChangeEvent,
    },
    service::{
        audit,
        messaging::notifications,
        patient_access, permission,
        scheduling::{
            SchedulingError, Statuses,
            availability::{Calendar, Repeating},
            check_range, dates_of, describe, readable_provider, required_date, settings,
        },
        wall_clock_now,
        webhooks::{self, Change},
    },
    storage::{
        StorageError,
        advisory_lock::{self, Held},
        mmt::appointments as own,
        openemr::{
            audit_log, encounters, facilities, patients, providers,
            scheduling::{
                categories::{self, CategoryRow},
                events::{self, EventRow, Insert, ListFilter},
                tracker::{self, Step},
            },
            sequences,
        },
    },
};

/// One appointment on one date (a repeating one occurs on many).
#[derive(Debug, Clone)]
pub struct Appointment {
    pub row: EventRow,
    pub date: NaiveDate,
    pub phase: Phase,
    pub hold_expires: Option<NaiveDateTime>,
    pub encounter: Option<i64>,
}

impl Appointment {
    pub fn start(&self) -> NaiveDateTime {
        self.date.and_time(self.row.start_time.unwrap_or_default())
    }

    pub fn end(&self) -> NaiveDateTime {
        self.start() + chrono::Duration::seconds(self.row.pc_duration.max(0))
    }
}

fn entry(caller: &Caller, event: &str, pid: Option<i64>, comments: String) -> AuditEntry {
    AuditEntry::phi(caller, event, "Scheduling", pid, comments)
}

pub struct ListInput {
    pub from: Option<String>,
    pub to: Option<String>,
    pub filter: ListFilter,
    pub after: Option<(NaiveDate, NaiveTime, u32)>,
    pub limit: usize,
}

pub struct Page {
    pub items: Vec<Appointment>,
    pub total: usize,
    pub more: bool,
}

/// Patient appointments over a date range, repeats expanded as OpenEMR's calendar expands them,
/// ordered by start; `after` continues from the last item of a previous page.
pub async fn list(state: &AppState, caller: &Caller, input: ListInput) -> Result<Page, SchedulingError> {
    let settings = settings(state).await?;
    let own_only = readable_provider(state, caller, &settings).await?;
    let mut issues = Issues::default();
    let from = required_date(&mut issues, "from", input.from.as_deref());
    let to = required_date(&mut issues, "to", input.to.as_deref());
    if let (Some(from), Some(to)) = (from, to) {
        check_range(&mut issues, from, to);
    }
    let (Some(from), Some(to)) = (from, to) else { return Err(issues.into()) };
    issues.into_result(())?;
    let mut filter = input.filter;
    if let Some(pid) = filter.patient {
        permission::reach(state, caller, pid.0).await?;
    }
    if let Some(me) = own_only {
        if filter.provider.is_some_and(|p| p != me) {
            return Err(SchedulingError::OtherCalendar);
        }
        filter.provider = Some(me);
    }
    let statuses = Statuses::load(state).await?;
    let mut rows = events::one_off_appointments(&state.pool, from, to, &filter).await?;
    let repeating = super::repeating::rows(state).await?;
    rows.extend(
        repeating
            .iter()
            .filter(|r| {
                filter.matches(r)
                    && r.event_date.is_some_and(|d| d <= to)
                    && r.end_date.is_some_and(|d| d >= from)
            })
            .cloned(),
    );
    let mut all: Vec<Appointment> = rows
        .into_iter()
        .flat_map(|row| {
            let phase = statuses.phase(&row.pc_apptstatus);
            dates_of(&row, from, to, &settings.weekend).into_iter().map(move |date| Appointment {
                row: row.clone(),
                date,
                phase,
                hold_expires: None,
                encounter: None,
            })
        })
        .collect();
    all.sort_by_key(|a| (a.date, a.row.start_time, a.row.pc_eid));
    patient_access::retain_reachable(state, caller, &mut all, |a| a.row.patient().map(|p| p.0)).await?;
    let total = all.len();
    let mut items: Vec<Appointment> = all
        .into_iter()
        .filter(|a| {
            input
                .after
                .is_none_or(|after| (a.date, a.row.start_time.unwrap_or_default(), a.row.pc_eid) > after)
        })
        .take(input.limit + 1)
        .collect();
    let more = items.len() > input.limit;
    items.truncate(input.limit);
    let ids: Vec<String> = items.iter().map(|a| format!("{}@{}", a.row.pc_eid, a.date)).collect();
    let comments = format!("mmt-sidecar listed appointments from {from} to {to}: [{}]", ids.join(","));
    audit::record(state, &entry(caller, "scheduling-select", filter.patient.map(|p| p.0), comments)).await?;
    Ok(Page { items, total, more })
}

async fn load(
    state: &AppState,
    conn: &mut MySqlConnection,
    eid: u32,
) -> Result<Appointment, SchedulingError> {
    let row = events::get(conn, eid)
        .await?
        .filter(|r| r.patient().is_some())
        .ok_or(SchedulingError::NotFound(eid))?;
    let statuses = Statuses::load(state).await?;
    Ok(Appointment {
        date: row.event_date.unwrap_or_default(),
        phase: statuses.phase(&row.pc_apptstatus),
        hold_expires: own::hold_expiry(conn, eid).await?,
        encounter: tracker::encounter_of(conn, eid).await?,
        row,
    })
}

async fn require_calendar(state: &AppState, caller: &Caller, row: &EventRow) -> Result<(), SchedulingError> {
    let settings = settings(state).await?;
    match readable_provider(state, caller, &settings).await? {
        Some(me) if row.provider() != Some(me) => Err(SchedulingError::OtherCalendar),
        _ => Ok(()),
    }
}

pub async fn get(state: &AppState, caller: &Caller, eid: u32) -> Result<Appointment, SchedulingError> {
    let mut conn = state.pool.acquire().await.map_err(StorageError::from_sqlx)?;
    let appointment = load(state, &mut conn, eid).await?;
    require_calendar(state, caller, &appointment.row).await?;
    let pid = appointment.row.patient().map(|p| p.0);
    if let Some(pid) = pid {
        permission::reach(state, caller, pid).await?;
    }
    audit::record(
        state,
        &entry(caller, "scheduling-select", pid, format!("mmt-sidecar read appointment {eid}")),
    )
    .await?;
    Ok(appointment)
}

/// An appointment by its OpenEMR uuid, with [`get`]'s checks and audit.
pub async fn get_by_uuid(
    state: &AppState,
    caller: &Caller,
    uuid: &[u8; 16],
) -> Result<Appointment, SchedulingError> {
    let eid = events::id_by_uuid(&state.pool, uuid).await?.ok_or(SchedulingError::UnknownUuid)?;
    get(state, caller, eid).await
}

/// One page of a patient's appointments, one per calendar row, newest first (FHIR's view of
/// them), with the calendar's rights: `patients|appt`, the patient within reach, and a provider
/// who may only see their own calendar seeing only theirs. Audited.
pub async fn for_patient(
    state: &AppState,
    caller: &Caller,
    pid: Pid,
    dates: (Option<NaiveDate>, Option<NaiveDate>),
    limit: u32,
    offset: u64,
) -> Result<(Vec<Appointment>, i64), SchedulingError> {
    let settings = settings(state).await?;
    let own_only = readable_provider(state, caller, &settings).await?;
    permission::reach(state, caller, pid.0).await?;
    let (rows, total) = events::for_patient(&state.pool, pid, dates, own_only, limit, offset).await?;
    let statuses = Statuses::load(state).await?;
    let items: Vec<Appointment> = rows
        .into_iter()
        .map(|row| Appointment {
            date: row.event_date.unwrap_or_default(),
            phase: statuses.phase(&row.pc_apptstatus),
            hold_expires: None,
            encounter: None,
            row,
        })
        .collect();
    let ids: Vec<String> = items.iter().map(|a| a.row.pc_eid.to_string()).collect();
    let comments = format!("mmt-sidecar listed appointments of pid {pid}: [{}]", ids.join(","));
    audit::record(state, &entry(caller, "scheduling-select", Some(pid.0), comments)).await?;
    Ok((items, total))
}

pub(super) fn lock_name(provider: i64) -> String {
    format!("mmt-appt-{provider}")
}

/// What makes two booking requests the same: everything but the key itself.
fn fingerprint(a: &NewAppointment) -> [u8; 32] {
    let canonical = format!(
        "{}|{}|{}|{}|{}|{:?}|{}|{}|{:?}|{}",
        a.pid,
        a.provider_id,
        a.facility_id,
        a.category_id,
        a.when.at(),
        a.minutes,
        a.reason,
        a.room,
        a.status.as_ref().map(StatusCode::as_str),
        a.hold
    );
    Sha256::digest(canonical.as_bytes()).into()
}

fn check_key(issues: &mut Issues, key: Option<&str>) {
    if let Some(key) = key
        && (key.is_empty() || key.len() > KEY_CHARS || !key.bytes().all(|b| b.is_ascii_graphic()))
    {
        issues.add("Idempotency-Key", format!("must be 1 to {KEY_CHARS} printable ASCII characters"));
    }
}

/// Checks the booking's references against OpenEMR's tables, naming each bad field; the category.
async fn references(
    state: &AppState,
    a: &NewAppointment,
    statuses: &Statuses,
    issues: &mut Issues,
) -> Result<Option<CategoryRow>, StorageError> {
    if patients::get(&state.pool, a.pid).await?.is_none() {
        issues.add("pid", format!("no patient with pid {}", a.pid));
    }
    if providers::get(&state.pool, a.provider_id).await?.is_none() {
        issues.add("provider_id", format!("user {} is not an active, authorized provider", a.provider_id));
    }
    match facilities::get(&state.pool, a.facility_id).await? {
        Some(f) if !f.inactive => {}
        Some(_) => issues.add("facility_id", format!("facility {} is inactive", a.facility_id)),
        None => issues.add("facility_id", format!("no facility {}", a.facility_id)),
    }
    let category =
        categories::all(&state.pool).await?.into_iter().find(|c| i64::from(c.pc_catid) == a.category_id);
    let category = match category {
        Some(c) if c.pc_cattype == categories::PATIENT && c.pc_active != 0 => Some(c),
        Some(_) => {
            issues.add(
                "category_id",
                format!("category {} is not an active patient visit category", a.category_id),
            );
            None
        }
        None => {
            issues.add("category_id", format!("no calendar category {}", a.category_id));
            None
        }
    };
    if let Some(status) = &a.status
        && statuses.find(status.as_str()).is_none()
    {
        issues.add(
            "status",
            format!("{status} is not an active apptstat code; allowed: {}", statuses.allowed()),
        );
    }
    Ok(category)
}

/// A time an appointment would take: its day, start, length and category; `ignore` is the
/// appointment being moved, which does not block itself.
pub(super) struct Proposal {
    pub when: When,
    pub minutes: u32,
    pub category: i64,
    pub ignore: Option<u64>,
}

/// Whether the caller asked to book outside availability and may: OpenEMR lets `patients|appt`
/// write (not wsome) answer "use it anyway?".
async fn may_override(state: &AppState, caller: &Caller, asked: bool) -> Result<bool, SchedulingError> {
    Ok(asked && state.acl.permissions(&caller.username).await?.allows(Aco::PATIENTS_APPT, AclLevel::Write))
}

/// May the appointment take this time? An overlapping appointment is always a conflict; anything
/// else only when `may_override`.
pub(super) fn check_time(
    calendar: &Calendar,
    p: &Proposal,
    may_override: bool,
) -> Result<(), SchedulingError> {
    let Some(span) = p.when.span(p.minutes) else {
        let mut issues = Issues::default();
        issues.add("duration_minutes", "the appointment must end by midnight of its day");
        return Err(issues.into());
    };
    match calendar.day(p.when.date, Some(p.category), p.ignore).check(span) {
        Ok(()) => Ok(()),
        Err(Blocker::Appointment { eid }) => Err(SchedulingError::Taken(eid)),
        Err(blocker) if may_override && blocker.overridable() => Ok(()),
        Err(blocker) => Err(SchedulingError::Unavailable(describe(blocker, |c| calendar.category_name(c)))),
    }
}

pub enum Booked {
    Created(Appointment),
    /// The same request was made before with this key: its appointment.
    Replayed(Appointment),
}

/// Books an appointment as OpenEMR's calendar writes one, serialised per provider across every
/// replica, so two overlapping bookings can never both succeed.
pub async fn book(
    state: &AppState,
    caller: &Caller,
    input: NewAppointmentInput,
    key: Option<&str>,
) -> Result<Booked, SchedulingError> {
    let mut issues = Issues::default();
    check_key(&mut issues, key);
    let booking = match input.validate() {
        Ok(b) => b,
        Err(mut invalid) => {
            invalid.0.extend(issues.0);
            return Err(invalid.into());
        }
    };
    permission::require_on(state, caller, Aco::PATIENTS_APPT, AclLevel::Wsome, booking.pid.0).await?;
    let statuses = Statuses::load(state).await?;
    let category = references(state, &booking, &statuses, &mut issues).await?;
    issues.into_result(())?;
    let category = category.ok_or(SchedulingError::Invalid(Issues::default()))?;
    let hash = fingerprint(&booking);
    let overriding = may_override(state, caller, booking.override_availability).await?;
    let _queued = state.scheduling.gate.enter(booking.provider_id).await;
    let mut held =
        Held::take(&state.pool, lock_name(booking.provider_id), advisory_lock::WRITE_WAIT_SECS).await?;
    let request =
        Request { booking: &booking, category: &category, key, hash: &hash, overriding, statuses: &statuses };
    let result = book_locked(state, caller, &request, held.conn()).await;
    held.release().await?;
    let (booked, events) = result?;
    for event in events {
        webhooks::committed(state, event);
    }
    Ok(booked)
}

/// A validated booking request, as it goes under the provider's lock.
struct Request<'a> {
    booking: &'a NewAppointment,
    category: &'a CategoryRow,
    key: Option<&'a str>,
    hash: &'a [u8; 32],
    overriding: bool,
    statuses: &'a Statuses,
}

async fn book_locked(
    state: &AppState,
    caller: &Caller,
    request: &Request<'_>,
    conn: &mut MySqlConnection,
) -> Result<(Booked, Vec<crate::domain::event::Event>), SchedulingError> {
    let Request { booking, category, key, hash, overriding, statuses } = *request;
    if let Some(key) = key
        && let Some(previous) = own::request(conn, caller.user_id.0, key).await?
    {
        if previous.request_hash != hash[..] {
            return Err(SchedulingError::KeyReused(key.to_string()));
        }
        return Ok((Booked::Replayed(load(state, conn, previous.pc_eid).await?), Vec::new()));
    }
    let date = booking.when.date;
    let settings = settings(state).await?;
    let calendar = Calendar::load(
        state,
        conn,
        booking.provider_id,
        (date, date),
        Repeating::Exact,
        settings,
        statuses.clone(),
    )
    .await?;
    let minutes = booking.minutes.unwrap_or_else(|| {
        u32::try_from(category.pc_duration / 60).unwrap_or(0).max(calendar.settings.interval_mins)
    });
    let proposal = Proposal { when: booking.when, minutes, category: booking.category_id, ignore: None };
    check_time(&calendar, &proposal, overriding)?;
    let now = wall_clock_now();
    let status = booking.status.clone().unwrap_or_else(StatusCode::none);
    let title = category.pc_catname.clone().unwrap_or_default();
    let mut tx = sqlx::Connection::begin(&mut *conn).await.map_err(StorageError::from_sqlx)?;
    let insert = Insert {
        pid: booking.pid,
        provider_id: booking.provider_id,
        facility_id: booking.facility_id,
        category_id: booking.category_id,
        title: &title,
        reason: &booking.reason,
        date,
        start: booking.when.start,
        minutes,
        status: status.as_str(),
        room: &booking.room,
    };
    let eid = events::insert(&mut tx, &insert, caller).await?;
    let step = Step {
        eid,
        pid: booking.pid.0,
        date,
        time: booking.when.start,
        user: &caller.username,
        status: status.as_str(),
        room: &booking.room,
        encounter: None,
        at: now,
    };
    tracker::record(&mut tx, &step).await?;
    if booking.hold {
        let lapse =
            chrono::Duration::from_std(state.config.scheduling.hold).unwrap_or(chrono::Duration::minutes(15));
        own::hold(&mut tx, eid, now + lapse, caller.user_id.0, now).await?;
    }
    if let Some(key) = key {
        own::remember(&mut tx, caller.user_id.0, key, hash, eid, now).await?;
    }
    let comments = format!(
        "mmt-sidecar booked appointment {eid} with provider {} at {}",
        booking.provider_id,
        booking.when.at()
    );
    audit_log::record(&mut tx, &entry(caller, "scheduling-insert", Some(booking.pid.0), comments)).await?;
    let change = Change {
        event: ChangeEvent::AppointmentBooked,
        pid: Some(booking.pid.0),
        data: json!({ "appointment": eid, "provider_id": booking.provider_id, "start": booking.when.at(), "status": status.as_str() }),
    };
    let mut events = vec![webhooks::record(&mut tx, change).await?];
    events.extend(
        tell_provider(&mut tx, caller, booking.provider_id, NotificationKind::AppointmentBooked, eid).await?,
    );
    tx.commit().await.map_err(StorageError::from_sqlx)?;
    Ok((Booked::Created(load(state, conn, eid).await?), events))
}

/// Changes an appointment: status (through the flow board, opening the visit's encounter at
/// check-in when OpenEMR's `auto_create_new_encounters` says so), reason, room, or a reschedule
/// to another time, length or provider, checked as a booking is.
pub async fn change(
    state: &AppState,
    caller: &Caller,
    eid: u32,
    input: AppointmentPatchInput,
) -> Result<Appointment, SchedulingError> {
    let patch = input.validate()?;
    let current = {
        let mut conn = state.pool.acquire().await.map_err(StorageError::from_sqlx)?;
        load(state, &mut conn, eid).await?
    };
    let pid = current.row.patient().ok_or(SchedulingError::NotFound(eid))?;
    permission::require_on(state, caller, Aco::PATIENTS_APPT, AclLevel::Wsome, pid.0).await?;
    require_calendar(state, caller, &current.row).await?;
    if current.row.pc_recurrtype != 0 {
        return Err(SchedulingError::Repeating(eid));
    }
    let provider = patch.provider_id.or(current.row.provider()).unwrap_or_default();
    let overriding = may_override(state, caller, patch.override_availability).await?;
    let _queued = state.scheduling.gate.enter(provider).await;
    let mut held = Held::take(&state.pool, lock_name(provider), advisory_lock::WRITE_WAIT_SECS).await?;
    let result = change_locked(state, caller, eid, pid, &patch, overriding, held.conn()).await;
    held.release().await?;
    let (appointment, events) = result?;
    for event in events {
        webhooks::committed(state, event);
    }
    Ok(appointment)
}

async fn change_locked(
    state: &AppState,
    caller: &Caller,
    eid: u32,
    pid: Pid,
    patch: &AppointmentPatch,
    overriding: bool,
    conn: &mut MySqlConnection,
) -> Result<(Appointment, Vec<crate::domain::event::Event>), SchedulingError> {
    let settings = settings(state).await?;
    let statuses = Statuses::load(state).await?;
    let now = wall_clock_now();
    let mut tx = sqlx::Connection::begin(&mut *conn).await.map_err(StorageError::from_sqlx)?;
    if !events::lock(&mut tx, eid).await? {
        return Err(SchedulingError::NotFound(eid));
    }
    let row = events::get(&mut tx, eid).await?.ok_or(SchedulingError::NotFound(eid))?;
    let from = statuses.phase(&row.pc_apptstatus);
    let next_status = match &patch.status {
        Some(code) => {
            let option = statuses.find(code.as_str()).ok_or_else(|| {
                let mut issues = Issues::default();
                issues.add(
                    "status",
                    format!("{code} is not an active apptstat code; allowed: {}", statuses.allowed()),
                );
                SchedulingError::Invalid(issues)
            })?;
            if !from.may_become(option.phase()) {
                return Err(SchedulingError::Transition {
                    eid,
                    from: row.pc_apptstatus.clone(),
                    to: code.to_string(),
                });
            }
            Some(option.clone())
        }
        None => None,
    };
    let to_phase = next_status.as_ref().map_or(from, |o| o.phase());
    let date = patch.when.map_or(row.event_date.unwrap_or_default(), |w| w.date);
    let start = patch.when.map_or(row.start_time.unwrap_or_default(), |w| w.start);
    let minutes = patch.minutes.unwrap_or_else(|| u32::try_from(row.pc_duration / 60).unwrap_or(0));
    let provider = patch.provider_id.or(row.provider()).unwrap_or_default();
    let retakes_time = to_phase.occupies_time() && (patch.reschedules() || !from.occupies_time());
    if patch.provider_id.is_some() && providers::get(&state.pool, provider).await?.is_none() {
        let mut issues = Issues::default();
        issues.add("provider_id", format!("user {provider} is not an active, authorized provider"));
        return Err(issues.into());
    }
    if retakes_time {
        let day = (date, date);
        let calendar = Calendar::load(
            state,
            &mut tx,
            provider,
            day,
            Repeating::Exact,
            settings.clone(),
            statuses.clone(),
        )
        .await?;
        let when = When { date, start };
        let proposal = Proposal {
            when,
            minutes: minutes.max(1),
            category: i64::from(row.pc_catid),
            ignore: Some(u64::from(eid)),
        };
        check_time(&calendar, &proposal, overriding)?;
    }
    if patch.reschedules() {
        events::reschedule(&mut tx, eid, provider, date, start, minutes).await?;
    }
    if let Some(reason) = &patch.reason {
        events::set_reason(&mut tx, eid, reason).await?;
    }
    let room = patch.room.clone().unwrap_or_else(|| row.pc_room.clone());
    let status = next_status.as_ref().map_or_else(|| row.pc_apptstatus.clone(), |o| o.code.to_string());
    let mut produced = Vec::new();
    if next_status.is_some() || patch.room.is_some() {
        let encounter = match &next_status {
            Some(option) if option.checks_in && date == now.date() && settings.auto_encounter != 0 => Some(
                visit_encounter(caller, &row, pid, settings.auto_encounter, now, &mut tx, &mut produced)
                    .await?,
            ),
            _ => None,
        };
        let step = Step {
            eid,
            pid: pid.0,
            date,
            time: start,
            user: &caller.username,
            status: &status,
            room: &room,
            encounter,
            at: now,
        };
        tracker::record(&mut tx, &step).await?;
        events::set_status_and_room(&mut tx, eid, &status, &room).await?;
    }
    if to_phase != Phase::Pending {
        own::release(&mut tx, eid).await?;
    }
    let comments = format!(
        "mmt-sidecar changed appointment {eid}: status {status}, {date} {start}, provider {provider}"
    );
    audit_log::record(&mut tx, &entry(caller, "scheduling-update", Some(pid.0), comments)).await?;
    let event = if to_phase == Phase::Cancelled {
        ChangeEvent::AppointmentCancelled
    } else {
        ChangeEvent::AppointmentUpdated
    };
    let change = Change {
        event,
        pid: Some(pid.0),
        data: json!({ "appointment": eid, "status": status, "start": date.and_time(start), "provider_id": provider }),
    };
    produced.push(webhooks::record(&mut tx, change).await?);
    if to_phase == Phase::Cancelled {
        produced.extend(
            tell_provider(&mut tx, caller, provider, NotificationKind::AppointmentCancelled, eid).await?,
        );
    }
    tx.commit().await.map_err(StorageError::from_sqlx)?;
    Ok((load(state, conn, eid).await?, produced))
}

/// The provider hears of a booking or cancellation someone else made in their calendar.
async fn tell_provider(
    tx: &mut MySqlConnection,
    caller: &Caller,
    provider: i64,
    kind: NotificationKind,
    eid: u32,
) -> Result<Option<crate::domain::event::Event>, StorageError> {
    if !worth_telling(provider, caller.user_id.0) {
        return Ok(None);
    }
    notifications::notify(tx, provider, kind, &Subject::Appointment(eid.into()), &caller.username)
        .await
        .map(Some)
}

/// The encounter a check-in opens, as the flow board's `todaysEncounterCheck()` does: today's
/// encounter of the patient when one per day (mode 1) and one exists, else a new one.
#[allow(clippy::too_many_arguments)]
async fn visit_encounter(
    caller: &Caller,
    row: &EventRow,
    pid: Pid,
    mode: u8,
    now: NaiveDateTime,
    tx: &mut MySqlConnection,
    produced: &mut Vec<crate::domain::event::Event>,
) -> Result<i64, SchedulingError> {
    if mode == 1
        && let Some(existing) = encounters::today_for(tx, pid, now.date()).await?
    {
        return Ok(existing);
    }
    let number = sequences::next_id(tx).await?;
    let provider_id = row.provider().unwrap_or(caller.user_id.0);
    let encounter = NewEncounter {
        pid,
        date: now,
        reason: row.pc_hometext.clone().unwrap_or_default(),
        facility_id: i64::from(row.pc_facility),
        billing_facility_id: i64::from(row.pc_facility),
        provider_id,
        pc_catid: i64::from(row.pc_catid),
        class_code: "AMB".into(),
        sensitivity: "normal".into(),
    };
    encounters::insert(tx, number, &encounter, caller).await?;
    let comments =
        format!("mmt-sidecar opened encounter {number} at check-in for appointment {}", row.pc_eid);
    audit_log::record(
        tx,
        &AuditEntry::phi(caller, "patient-record-insert", "Encounter Form", Some(pid.0), comments),
    )
    .await?;
    let change = Change {
        event: ChangeEvent::EncounterCreated,
        pid: Some(pid.0),
        data: json!({ "encounter": number }),
    };
    produced.push(webhooks::record(tx, change).await?);
    Ok(number)
}
