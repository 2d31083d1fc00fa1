//! Holds: the scheduled `appointment.sweep` job lapses holds that were never confirmed, freeing
//! their slot (with `MMT_MARK_NO_SHOWS`, past appointments whose patient never arrived become
//! no-shows); an online payment settles its held booking. Each appointment is changed by one
//! replica only (its row is locked and the hold row claimed).

use std::time::Duration;

use serde_json::json;
use sqlx::MySqlConnection;

use super::{
    SchedulingError,
    appointments::{self, Proposal},
    availability::{Calendar, Repeating},
};
use crate::{
    app::AppState,
    domain::{
        audit::AuditEntry,
        billing::checkout::{self, Settlement},
        event::Event,
        scheduling::{
            appointment::When,
            status::{Phase, StatusCode},
        },
        webhook::ChangeEvent,
    },
    service::{
        jobs::{JobContext, JobFailure, JobOutcome},
        scheduling::{self, Statuses},
        wall_clock_now,
        webhooks::{self, Change},
    },
    storage::{
        StorageError,
        advisory_lock::{self, Held},
        mmt::{appointments as own, checkouts},
        openemr::{
            audit_log,
            scheduling::{
                events::{self, EventRow},
                tracker::{self, Step},
            },
        },
    },
};

pub const EVERY: Duration = Duration::from_secs(60);
/// Appointments changed per run; the next run takes the rest.
const BATCH: u32 = 200;
const SYSTEM_USER: &str = "mmt-sidecar";
/// Tries of one status change that lost a deadlock.
const ATTEMPTS: u32 = 5;

/// Lapses one hold now (its checkout expired unpaid); whether it was still held.
pub async fn lapse(state: &AppState, eid: u32, why: &str) -> Result<bool, StorageError> {
    let statuses = Statuses::load(state).await?;
    let mut conn = state.pool.acquire().await.map_err(StorageError::from_sqlx)?;
    let cancel = StatusCode::canceled();
    let change = StatusChange { eid, expected: &[Phase::Pending], status: &cancel, why, claim_hold: true };
    let event = set_status(&mut conn, &statuses, &change).await?;
    Ok(event.map(|e| webhooks::committed(state, e)).is_some())
}

/// Sets `status` on one appointment through the flow board if it is still in `expected`; its hold
/// ends. `claim_hold`: only when this call ended the hold (a lapse), and a checkout open for the
/// booking then remembers that its hold lapsed.
pub(super) struct StatusChange<'a> {
    pub eid: u32,
    pub expected: &'a [Phase],
    pub status: &'a StatusCode,
    pub why: &'a str,
    pub claim_hold: bool,
}

/// An appointment the flow board has never seen has no tracker row, so two of them changed at once
/// can deadlock on its index gap: the loser is retried.
pub(super) async fn set_status(
    conn: &mut MySqlConnection,
    statuses: &Statuses,
    change: &StatusChange<'_>,
) -> Result<Option<Event>, StorageError> {
    let mut attempt = 1;
    loop {
        match set_status_once(conn, statuses, change).await {
            Err(e) if e.is_deadlock() && attempt < ATTEMPTS => attempt += 1,
            done => return done,
        }
    }
}

async fn set_status_once(
    conn: &mut MySqlConnection,
    statuses: &Statuses,
    change: &StatusChange<'_>,
) -> Result<Option<Event>, StorageError> {
    let StatusChange { eid, expected, status, why, claim_hold } = *change;
    let mut tx = sqlx::Connection::begin(&mut *conn).await.map_err(StorageError::from_sqlx)?;
    let released = own::release(&mut tx, eid).await?;
    if !events::lock(&mut tx, eid).await? {
        tx.commit().await.map_err(StorageError::from_sqlx)?;
        return Ok(None);
    }
    let row = events::get(&mut tx, eid).await?;
    let Some((row, pid)) = row.and_then(|r| r.patient().map(|p| (r, p))) else {
        tx.commit().await.map_err(StorageError::from_sqlx)?;
        return Ok(None);
    };
    if !expected.contains(&statuses.phase(&row.pc_apptstatus)) || (claim_hold && !released) {
        tx.commit().await.map_err(StorageError::from_sqlx)?;
        return Ok(None);
    }
    let (date, time) = (row.event_date.unwrap_or_default(), row.start_time.unwrap_or_default());
    let step = Step {
        eid,
        pid: pid.0,
        date,
        time,
        user: SYSTEM_USER,
        status: status.as_str(),
        room: &row.pc_room,
        encounter: None,
        at: wall_clock_now(),
    };
    tracker::record(&mut tx, &step).await?;
    events::set_status_and_room(&mut tx, eid, status.as_str(), &row.pc_room).await?;
    let comments = format!("mmt-sidecar set appointment {eid} to {status}: {why}");
    audit_log::record(&mut tx, &AuditEntry::system("scheduling-update", "Scheduling", pid.0, comments))
        .await?;
    if claim_hold {
        checkouts::hold_lapsed(&mut tx, eid, wall_clock_now()).await?;
    }
    let event = if statuses.phase(status.as_str()) == Phase::Cancelled {
        ChangeEvent::AppointmentCancelled
    } else {
        ChangeEvent::AppointmentUpdated
    };
    let change = Change {
        event,
        pid: Some(pid.0),
        data: json!({ "appointment": eid, "status": status.as_str(), "reason": why }),
    };
    let event = webhooks::record(&mut tx, change).await?;
    tx.commit().await.map_err(StorageError::from_sqlx)?;
    Ok(Some(event))
}

/// Lapses every hold past its expiry; how many were cancelled here.
pub async fn expire_holds(state: &AppState) -> Result<usize, StorageError> {
    let statuses = Statuses::load(state).await?;
    let mut conn = state.pool.acquire().await.map_err(StorageError::from_sqlx)?;
    let due = own::expired(&mut conn, wall_clock_now(), BATCH).await?;
    let mut cancelled = 0;
    let cancel = StatusCode::canceled();
    for eid in due {
        let change = StatusChange {
            eid,
            expected: &[Phase::Pending],
            status: &cancel,
            why: "hold lapsed",
            claim_hold: true,
        };
        if let Some(event) = set_status(&mut conn, &statuses, &change).await? {
            webhooks::committed(state, event);
            cancelled += 1;
        }
    }
    Ok(cancelled)
}

/// Marks appointments that ended before now and never saw the patient arrive as no-shows.
pub async fn mark_no_shows(state: &AppState) -> Result<usize, StorageError> {
    let statuses = Statuses::load(state).await?;
    let mut conn = state.pool.acquire().await.map_err(StorageError::from_sqlx)?;
    let waiting = [Phase::Proposed, Phase::Pending, Phase::Booked];
    let codes: Vec<String> = statuses
        .options()
        .iter()
        .filter(|o| waiting.contains(&o.phase()))
        .map(|o| o.code.to_string())
        .collect();
    let due = events::ended_unarrived(&mut conn, wall_clock_now(), &codes, BATCH).await?;
    let mut marked = 0;
    let no_show = StatusCode::no_show();
    for eid in due {
        let change =
            StatusChange { eid, expected: &waiting, status: &no_show, why: "no arrival", claim_hold: false };
        if let Some(event) = set_status(&mut conn, &statuses, &change).await? {
            webhooks::committed(state, event);
            marked += 1;
        }
    }
    Ok(marked)
}

/// What an online payment did to its booking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settled {
    Confirmed,
    /// Confirmed or seen by hand meanwhile; left as it was.
    Kept,
    /// Its hold had lapsed; booked again in the same, still free, slot.
    Rebooked,
    /// Cancelled, or its slot taken after the hold lapsed: the money must go back.
    Lost,
}

/// A booking's payment arrived: a held booking is confirmed, a lapsed one booked again when its
/// time is still free (under the provider's booking lock, as any booking), anything confirmed by
/// hand meanwhile left alone.
pub async fn settle_paid(state: &AppState, eid: u32, lapsed: bool) -> Result<Settled, SchedulingError> {
    let row = {
        let mut conn = state.pool.acquire().await.map_err(StorageError::from_sqlx)?;
        events::get(&mut conn, eid).await?.ok_or(SchedulingError::NotFound(eid))?
    };
    let provider = row.provider().unwrap_or_default();
    let _queued = state.scheduling.gate.enter(provider).await;
    let mut held =
        Held::take(&state.pool, appointments::lock_name(provider), advisory_lock::WRITE_WAIT_SECS).await?;
    let result = settle_locked(state, eid, lapsed, held.conn()).await;
    held.release().await?;
    let (settled, event) = result?;
    if let Some(event) = event {
        webhooks::committed(state, event);
    }
    Ok(settled)
}

async fn settle_locked(
    state: &AppState,
    eid: u32,
    lapsed: bool,
    conn: &mut MySqlConnection,
) -> Result<(Settled, Option<Event>), SchedulingError> {
    let statuses = Statuses::load(state).await?;
    let row = events::get(conn, eid).await?.ok_or(SchedulingError::NotFound(eid))?;
    let phase = statuses.phase(&row.pc_apptstatus);
    let booked = StatusCode::new("*");
    let (expected, why, settled) = match checkout::settle(phase, lapsed) {
        Settlement::Keep => return Ok((Settled::Kept, None)),
        Settlement::Refund => return Ok((Settled::Lost, None)),
        Settlement::Confirm => ([Phase::Proposed, Phase::Pending], "paid online", Settled::Confirmed),
        Settlement::Rebook => {
            if !still_free(state, conn, &row, &statuses).await? {
                return Ok((Settled::Lost, None));
            }
            ([Phase::Cancelled, Phase::Cancelled], "paid online after its hold lapsed", Settled::Rebooked)
        }
    };
    let change = StatusChange { eid, expected: &expected, status: &booked, why, claim_hold: false };
    match set_status(conn, &statuses, &change).await? {
        Some(event) => Ok((settled, Some(event))),
        None => Ok((Settled::Lost, None)),
    }
}

/// Whether the appointment's own time is still free for it.
async fn still_free(
    state: &AppState,
    conn: &mut MySqlConnection,
    row: &EventRow,
    statuses: &Statuses,
) -> Result<bool, SchedulingError> {
    let (Some(date), Some(start), Some(provider)) = (row.event_date, row.start_time, row.provider()) else {
        return Ok(false);
    };
    let settings = scheduling::settings(state).await?;
    let calendar =
        Calendar::load(state, conn, provider, (date, date), Repeating::Exact, settings, statuses.clone())
            .await?;
    let proposal = Proposal {
        when: When { date, start },
        minutes: u32::try_from(row.pc_duration / 60).unwrap_or(0),
        category: i64::from(row.pc_catid),
        ignore: Some(u64::from(row.pc_eid)),
    };
    Ok(appointments::check_time(&calendar, &proposal, true).is_ok())
}

pub async fn job(ctx: JobContext) -> JobOutcome {
    let state = ctx.state();
    let expired = expire_holds(state).await.map_err(JobFailure::from)?;
    let no_shows = if state.config.scheduling.mark_no_shows {
        mark_no_shows(state).await.map_err(JobFailure::from)?
    } else {
        0
    };
    Ok(Some(json!({ "holds_expired": expired, "no_shows": no_shows })))
}
