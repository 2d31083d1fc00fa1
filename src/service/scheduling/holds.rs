//! The scheduled `appointment.sweep` job: holds that were never confirmed lapse and free their
//! slot; with `MMT_MARK_NO_SHOWS`, past appointments whose patient never arrived become no-shows.
//! Each appointment is changed by one replica only (its row is locked and the hold row claimed).

use std::time::Duration;

use serde_json::json;
use sqlx::MySqlConnection;

use crate::{
    app::AppState,
    domain::{
        audit::AuditEntry,
        event::Event,
        scheduling::status::{Phase, StatusCode},
        webhook::ChangeEvent,
    },
    service::{
        jobs::{JobContext, JobFailure, JobOutcome},
        scheduling::Statuses,
        wall_clock_now,
        webhooks::{self, Change},
    },
    storage::{
        StorageError,
        mmt::appointments as own,
        openemr::{
            audit_log,
            scheduling::{
                events,
                tracker::{self, Step},
            },
        },
    },
};

pub const EVERY: Duration = Duration::from_secs(60);
/// Appointments changed per run; the next run takes the rest.
const BATCH: u32 = 200;
const SYSTEM_USER: &str = "mmt-sidecar";

/// Sets `status` on one appointment through the flow board if it is still in `expected`.
async fn set_status(
    conn: &mut MySqlConnection,
    statuses: &Statuses,
    eid: u32,
    expected: &[Phase],
    status: &StatusCode,
    why: &str,
    claim_hold: bool,
) -> Result<Option<Event>, StorageError> {
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
    let event = if status.as_str() == "?" {
        ChangeEvent::AppointmentUpdated
    } else {
        ChangeEvent::AppointmentCancelled
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
    for eid in due {
        if let Some(event) = set_status(
            &mut conn,
            &statuses,
            eid,
            &[Phase::Pending],
            &StatusCode::canceled(),
            "hold lapsed",
            true,
        )
        .await?
        {
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
    for eid in due {
        if let Some(event) =
            set_status(&mut conn, &statuses, eid, &waiting, &StatusCode::no_show(), "no arrival", false)
                .await?
        {
            webhooks::committed(state, event);
            marked += 1;
        }
    }
    Ok(marked)
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
