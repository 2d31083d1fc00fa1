//! `mmt_visit_prices`: the practice's price rules (category 0 = every category).

use chrono::NaiveDateTime;
use rust_decimal::Decimal;
use sqlx::{MySqlConnection, MySqlPool};

use crate::storage::StorageError;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PriceRow {
    pub category_id: i32,
    pub patient_kind: String,
    pub amount: Decimal,
    pub updated_by: i64,
    pub updated_at: NaiveDateTime,
}

pub async fn all(pool: &MySqlPool) -> Result<Vec<PriceRow>, StorageError> {
    sqlx::query_as(
        "SELECT category_id, patient_kind, amount, updated_by, updated_at FROM mmt_visit_prices \
         ORDER BY category_id, patient_kind",
    )
    .fetch_all(pool)
    .await
    .map_err(StorageError::from_sqlx)
}

/// Replaces every rule with `rows` (category, kind, amount).
pub async fn replace(
    conn: &mut MySqlConnection,
    rows: &[(i64, &str, Decimal)],
    by: i64,
    now: NaiveDateTime,
) -> Result<(), StorageError> {
    sqlx::query("DELETE FROM mmt_visit_prices").execute(&mut *conn).await.map_err(StorageError::from_sqlx)?;
    for (category, kind, amount) in rows {
        sqlx::query(
            "INSERT INTO mmt_visit_prices (category_id, patient_kind, amount, updated_by, updated_at) \
             VALUES (?, ?, ?, ?, ?)",
        )
        .bind(category)
        .bind(kind)
        .bind(amount)
        .bind(by)
        .bind(now)
        .execute(&mut *conn)
        .await
        .map_err(StorageError::from_sqlx)?;
    }
    Ok(())
}

/// The appointment statuses of the patient's earlier appointments, and whether they have an
/// earlier encounter: what tells a returning patient.
pub async fn history(
    pool: &MySqlPool,
    pid: i64,
    before: NaiveDateTime,
) -> Result<(Vec<String>, bool), StorageError> {
    let statuses: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT pc_apptstatus FROM openemr_postcalendar_events \
         WHERE pc_pid = ? AND pc_eventDate <= ? AND pc_recurrtype = 0",
    )
    .bind(pid.to_string())
    .bind(before.date())
    .fetch_all(pool)
    .await
    .map_err(StorageError::from_sqlx)?;
    let visited: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM form_encounter WHERE pid = ? AND date < ?)")
            .bind(pid)
            .bind(before)
            .fetch_one(pool)
            .await
            .map_err(StorageError::from_sqlx)?;
    Ok((statuses, visited))
}
