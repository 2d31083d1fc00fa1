//! Invoices are encounters with money on them (OpenEMR's invoice number is `pid.encounter`):
//! their product sales, and the list with each one's totals added up in SQL.

use chrono::{NaiveDate, NaiveDateTime};
use rust_decimal::Decimal;
use sqlx::{MySql, MySqlPool, QueryBuilder};

use crate::storage::{
    StorageError,
    openemr::patient_access::{PidOf, Reach, push_reaches},
};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SaleRow {
    pub drug_id: i32,
    pub fee: Decimal,
}

pub async fn sales(pool: &MySqlPool, pid: i64, encounter: i64) -> Result<Vec<SaleRow>, StorageError> {
    sqlx::query_as(
        "SELECT drug_id, fee FROM drug_sales WHERE pid = ? AND encounter = ? AND fee != 0 ORDER BY sale_id",
    )
    .bind(pid)
    .bind(encounter)
    .fetch_all(pool)
    .await
    .map_err(StorageError::from_sqlx)
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct InvoiceRow {
    pub pid: i64,
    pub encounter: i64,
    pub date: Option<NaiveDateTime>,
    pub charges: Decimal,
    pub payments: Decimal,
    pub adjustments: Decimal,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owing {
    /// A balance is still due.
    Open,
    /// Nothing is due.
    Settled,
}

pub struct InvoiceFilter<'a> {
    pub pid: Option<i64>,
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
    pub owing: Option<Owing>,
    /// Only patients the assigned-patient rule lets this user reach, when set.
    pub reach: Option<&'a Reach>,
}

/// The same sums `InvoiceSummary` adds line by line: live charges with a fee and product sales,
/// less undeleted payments and adjustments. Grouped per encounter before joining, so a patient's
/// whole history is three index range reads.
fn push_query(q: &mut QueryBuilder<MySql>, f: &InvoiceFilter<'_>) {
    let by_patient = |q: &mut QueryBuilder<MySql>, column: &str| {
        if let Some(pid) = f.pid {
            q.push(format!(" AND {column} = ")).push_bind(pid);
        }
    };
    q.push(
        "SELECT fe.pid, CAST(fe.encounter AS SIGNED) AS encounter, NULLIF(fe.date, '0000-00-00 00:00:00') AS date, \
         CAST(COALESCE(b.total, 0) + COALESCE(s.total, 0) AS DECIMAL(14,2)) AS charges, \
         CAST(COALESCE(a.paid, 0) AS DECIMAL(14,2)) AS payments, \
         CAST(COALESCE(a.adjusted, 0) AS DECIMAL(14,2)) AS adjustments \
         FROM form_encounter fe \
         LEFT JOIN (SELECT pid, encounter, SUM(fee) AS total FROM billing WHERE activity = 1 AND fee != 0",
    );
    by_patient(q, "pid");
    q.push(" GROUP BY pid, encounter) b ON b.pid = fe.pid AND b.encounter = fe.encounter");
    q.push(" LEFT JOIN (SELECT pid, encounter, SUM(fee) AS total FROM drug_sales WHERE fee != 0");
    by_patient(q, "pid");
    q.push(" GROUP BY pid, encounter) s ON s.pid = fe.pid AND s.encounter = fe.encounter");
    q.push(
        " LEFT JOIN (SELECT pid, encounter, SUM(pay_amount) AS paid, SUM(adj_amount) AS adjusted \
         FROM ar_activity WHERE deleted IS NULL",
    );
    by_patient(q, "pid");
    q.push(" GROUP BY pid, encounter) a ON a.pid = fe.pid AND a.encounter = fe.encounter");
    q.push(" WHERE (b.total IS NOT NULL OR s.total IS NOT NULL OR a.pid IS NOT NULL)");
    by_patient(q, "fe.pid");
    if let Some(from) = f.from {
        q.push(" AND fe.date >= ").push_bind(from);
    }
    if let Some(to) = f.to {
        q.push(" AND fe.date < ").push_bind(to.succ_opt().unwrap_or(to));
    }
    if let Some(reach) = f.reach {
        q.push(" AND ");
        push_reaches(q, PidOf::Column("fe.pid"), reach);
    }
    let balance =
        "COALESCE(b.total, 0) + COALESCE(s.total, 0) - COALESCE(a.paid, 0) - COALESCE(a.adjusted, 0)";
    match f.owing {
        Some(Owing::Open) => q.push(format!(" AND {balance} > 0")),
        Some(Owing::Settled) => q.push(format!(" AND {balance} <= 0")),
        None => q,
    };
}

pub async fn list(
    pool: &MySqlPool,
    f: &InvoiceFilter<'_>,
    limit: u32,
    offset: u64,
) -> Result<Vec<InvoiceRow>, StorageError> {
    let mut q = QueryBuilder::new("");
    push_query(&mut q, f);
    q.push(" ORDER BY fe.date DESC, fe.encounter DESC LIMIT ")
        .push_bind(limit)
        .push(" OFFSET ")
        .push_bind(offset);
    q.build_query_as().fetch_all(pool).await.map_err(StorageError::from_sqlx)
}

pub async fn count(pool: &MySqlPool, f: &InvoiceFilter<'_>) -> Result<i64, StorageError> {
    let mut q = QueryBuilder::new("SELECT COUNT(*) FROM (");
    push_query(&mut q, f);
    q.push(") invoices");
    q.build_query_scalar().fetch_one(pool).await.map_err(StorageError::from_sqlx)
}
