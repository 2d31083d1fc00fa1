//! The patient flow board, written as `PatientTrackerService::manage_tracker_status()` writes it.

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
use sqlx::MySqlConnection;

use crate::storage::StorageError;

#[derive(Debug, Clone)]
pub struct Step<'a> {
    pub eid: u32,
    pub pid: i64,
    pub date: NaiveDate,
    pub time: NaiveTime,
    /// The acting user's username, as OpenEMR stores `$_SESSION['authUser']`.
    pub user: &'a str,
    pub status: &'a str,
    pub room: &'a str,
    /// The visit's encounter once one is opened at check-in.
    pub encounter: Option<i64>,
    pub at: NaiveDateTime,
}

#[derive(sqlx::FromRow)]
struct Current {
    id: i64,
    lastseq: String,
    status: Option<String>,
    room: Option<String>,
}

/// A tracker for the appointment (created on its first step) and an element row for each change
/// of status or room; the tracker's `encounter` once the visit has one.
pub async fn record(conn: &mut MySqlConnection, step: &Step<'_>) -> Result<i64, StorageError> {
    let current: Option<Current> = sqlx::query_as(
        "SELECT t.id, t.lastseq, el.status, el.room FROM patient_tracker t \
         LEFT JOIN patient_tracker_element el ON el.pt_tracker_id = t.id AND el.seq = t.lastseq \
         WHERE t.apptdate = ? AND t.appttime = ? AND t.eid = ? AND t.pid = ? FOR UPDATE",
    )
    .bind(step.date)
    .bind(step.time)
    .bind(step.eid)
    .bind(step.pid)
    .fetch_optional(&mut *conn)
    .await
    .map_err(StorageError::from_sqlx)?;
    let id = match current {
        None => {
            let id = sqlx::query(
                "INSERT INTO patient_tracker (date, apptdate, appttime, eid, pid, original_user, encounter, lastseq) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, '1')",
            )
            .bind(step.at)
            .bind(step.date)
            .bind(step.time)
            .bind(step.eid)
            .bind(step.pid)
            .bind(step.user)
            .bind(step.encounter.unwrap_or(0))
            .execute(&mut *conn)
            .await
            .map_err(StorageError::from_sqlx)?
            .last_insert_id() as i64;
            if !step.status.is_empty() || !step.room.is_empty() {
                element(conn, id, step, "1").await?;
            }
            return Ok(id);
        }
        Some(c) => {
            let changed = c.status.as_deref() != Some(step.status) || c.room.as_deref() != Some(step.room);
            if changed {
                let seq = (c.lastseq.trim().parse::<i64>().unwrap_or(0) + 1).to_string();
                sqlx::query("UPDATE patient_tracker SET lastseq = ? WHERE id = ?")
                    .bind(&seq)
                    .bind(c.id)
                    .execute(&mut *conn)
                    .await
                    .map_err(StorageError::from_sqlx)?;
                element(conn, c.id, step, &seq).await?;
            }
            c.id
        }
    };
    if let Some(encounter) = step.encounter {
        sqlx::query("UPDATE patient_tracker SET encounter = ? WHERE id = ?")
            .bind(encounter)
            .bind(id)
            .execute(&mut *conn)
            .await
            .map_err(StorageError::from_sqlx)?;
    }
    Ok(id)
}

async fn element(
    conn: &mut MySqlConnection,
    id: i64,
    step: &Step<'_>,
    seq: &str,
) -> Result<(), StorageError> {
    sqlx::query(
        "INSERT INTO patient_tracker_element (pt_tracker_id, start_datetime, user, status, room, seq) \
         VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(id)
    .bind(step.at)
    .bind(step.user)
    .bind(step.status)
    .bind(step.room)
    .bind(seq)
    .execute(conn)
    .await
    .map_err(StorageError::from_sqlx)?;
    Ok(())
}

/// The encounter the flow board recorded for the appointment at check-in, if any.
pub async fn encounter_of(conn: &mut MySqlConnection, eid: u32) -> Result<Option<i64>, StorageError> {
    sqlx::query_scalar("SELECT MAX(encounter) FROM patient_tracker WHERE eid = ? AND encounter > 0")
        .bind(eid)
        .fetch_one(conn)
        .await
        .map_err(StorageError::from_sqlx)
}
