//! `mmt_recent_patients`: the patients each user read lately.

use chrono::{NaiveDate, NaiveDateTime};
use sqlx::MySqlPool;

use crate::storage::StorageError;

/// How many patients a user's list keeps.
pub const KEPT: u32 = 20;

/// Moves the patient to the top of the user's list, then drops what fell below the kept number.
pub async fn touch(pool: &MySqlPool, user_id: i64, pid: i64, at: NaiveDateTime) -> Result<(), StorageError> {
    let upserted = sqlx::query(
        "INSERT INTO mmt_recent_patients (user_id, pid, viewed_at) VALUES (?, ?, ?) \
         ON DUPLICATE KEY UPDATE viewed_at = GREATEST(viewed_at, VALUES(viewed_at))",
    )
    .bind(user_id)
    .bind(pid)
    .bind(at)
    .execute(pool)
    .await
    .map_err(StorageError::from_sqlx)?;
    // One affected row is a new patient on the list (an update counts two): only then can the
    // list have grown past what is kept.
    if upserted.rows_affected() != 1 {
        return Ok(());
    }
    // The derived table lets MariaDB read the table it deletes from.
    sqlx::query(
        "DELETE FROM mmt_recent_patients WHERE user_id = ? AND viewed_at < \
         (SELECT cutoff FROM (SELECT viewed_at AS cutoff FROM mmt_recent_patients WHERE user_id = ? \
          ORDER BY viewed_at DESC LIMIT 1 OFFSET ?) AS kept)",
    )
    .bind(user_id)
    .bind(user_id)
    .bind(KEPT - 1)
    .execute(pool)
    .await
    .map_err(StorageError::from_sqlx)?;
    Ok(())
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RecentPatient {
    pub pid: i64,
    pub fname: Option<String>,
    pub lname: Option<String>,
    pub dob: Option<NaiveDate>,
    pub viewed_at: NaiveDateTime,
}

/// The user's list, newest first, with the patients' names (a patient since removed is left out).
pub async fn list(pool: &MySqlPool, user_id: i64) -> Result<Vec<RecentPatient>, StorageError> {
    sqlx::query_as(
        "SELECT r.pid, p.fname, p.lname, NULLIF(p.DOB, '0000-00-00') AS dob, r.viewed_at FROM mmt_recent_patients r \
         JOIN patient_data p ON p.pid = r.pid WHERE r.user_id = ? ORDER BY r.viewed_at DESC LIMIT ?",
    )
    .bind(user_id)
    .bind(KEPT)
    .fetch_all(pool)
    .await
    .map_err(StorageError::from_sqlx)
}
