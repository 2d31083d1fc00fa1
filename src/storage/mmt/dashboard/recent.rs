//! `mmt_recent_patients`: the patients each user read lately.

use chrono::{NaiveDate, NaiveDateTime};
use sqlx::{MySql, MySqlPool, QueryBuilder};

use crate::storage::StorageError;

/// How many patients a user's list keeps.
pub const KEPT: u32 = 20;

/// One read of a patient by a user.
pub struct Viewed {
    pub user_id: i64,
    pub pid: i64,
    pub at: NaiveDateTime,
}

/// Moves each patient to the top of their reader's list, then drops what fell below the kept number.
pub async fn touch(pool: &MySqlPool, views: &[Viewed]) -> Result<(), StorageError> {
    if views.is_empty() {
        return Ok(());
    }
    let mut q = QueryBuilder::<MySql>::new("INSERT INTO mmt_recent_patients (user_id, pid, viewed_at) ");
    q.push_values(views, |mut row, v| {
        row.push_bind(v.user_id).push_bind(v.pid).push_bind(v.at);
    });
    q.push(" ON DUPLICATE KEY UPDATE viewed_at = GREATEST(viewed_at, VALUES(viewed_at))");
    let affected = q.build().execute(pool).await.map_err(StorageError::from_sqlx)?.rows_affected();
    // A moved row counts two and a new one one: only a new row can grow a list past what is kept.
    if affected == 2 * views.len() as u64 {
        return Ok(());
    }
    let mut users: Vec<i64> = views.iter().map(|v| v.user_id).collect();
    users.sort_unstable();
    users.dedup();
    for user_id in users {
        trim(pool, user_id).await?;
    }
    Ok(())
}

async fn trim(pool: &MySqlPool, user_id: i64) -> Result<(), StorageError> {
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
