//! Money in OpenEMR's integrated A/R: an `ar_session` per payment (the deposit), `ar_activity`
//! lines putting it against charge codes, and the front desk's `payments` receipt row.

use chrono::{NaiveDate, NaiveDateTime};
use rust_decimal::Decimal;
use sqlx::{MySqlConnection, MySqlPool};

use crate::storage::StorageError;

pub struct NewSession<'a> {
    pub patient_id: i64,
    pub user_id: i64,
    pub reference: &'a str,
    pub pay_total: Decimal,
    pub description: &'a str,
    pub adjustment_code: &'a str,
    pub payment_method: &'a str,
    pub now: NaiveDateTime,
}

/// As `front_payment.php` inserts it, with the NOT NULL columns it leaves to `sql_mode=''`
/// (`modified_time`, `global_amount`) given real values.
pub async fn insert_session(conn: &mut MySqlConnection, s: &NewSession<'_>) -> Result<i64, StorageError> {
    let today = s.now.date();
    let done = sqlx::query(
        "INSERT INTO ar_session (payer_id, user_id, closed, reference, check_date, deposit_date, pay_total, \
         created_time, modified_time, global_amount, payment_type, description, adjustment_code, post_to_date, \
         patient_id, payment_method) VALUES (0, ?, 0, ?, ?, ?, ?, ?, ?, 0, 'patient', ?, ?, ?, ?, ?)",
    )
    .bind(s.user_id)
    .bind(s.reference)
    .bind(today)
    .bind(today)
    .bind(s.pay_total)
    .bind(s.now)
    .bind(s.now)
    .bind(s.description)
    .bind(s.adjustment_code)
    .bind(today)
    .bind(s.patient_id)
    .bind(s.payment_method)
    .execute(conn)
    .await
    .map_err(StorageError::from_sqlx)?;
    i64::try_from(done.last_insert_id())
        .map_err(|_| StorageError::Unavailable("session id out of range".into()))
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SessionRow {
    pub session_id: u32,
    pub patient_id: i64,
    pub user_id: i32,
    pub reference: String,
    pub pay_total: Decimal,
    pub payment_type: String,
    pub adjustment_code: String,
    pub payment_method: String,
    pub post_to_date: NaiveDate,
    pub modified_time: NaiveDateTime,
    pub description: Option<String>,
}

pub async fn session(conn: &mut MySqlConnection, id: i64) -> Result<Option<SessionRow>, StorageError> {
    sqlx::query_as(
        "SELECT session_id, patient_id, user_id, reference, pay_total, payment_type, adjustment_code, \
         payment_method, post_to_date, modified_time, description FROM ar_session WHERE session_id = ?",
    )
    .bind(id)
    .fetch_optional(conn)
    .await
    .map_err(StorageError::from_sqlx)
}

/// `Recorder::getNextSequenceNumber`; callers hold the visit's lock, which OpenEMR's own code
/// does not (openemr/openemr#13392), and retry on a duplicate key if OpenEMR raced them.
pub async fn next_sequence(
    conn: &mut MySqlConnection,
    pid: i64,
    encounter: i64,
) -> Result<u32, StorageError> {
    sqlx::query_scalar(
        "SELECT CAST(IFNULL(MAX(sequence_no), 0) + 1 AS UNSIGNED) FROM ar_activity WHERE pid = ? AND encounter = ?",
    )
    .bind(pid)
    .bind(encounter)
    .fetch_one(conn)
    .await
    .map_err(StorageError::from_sqlx)
}

pub struct NewActivity<'a> {
    pub pid: i64,
    pub encounter: i64,
    pub sequence_no: u32,
    pub code_type: &'a str,
    pub code: &'a str,
    pub modifier: &'a str,
    pub post_user: i64,
    pub session_id: i64,
    pub pay_amount: Decimal,
    pub account_code: &'a str,
    /// An `adjreason` option, e.g. `Pt refund` on a refund line; empty on a payment.
    pub memo: &'a str,
    pub now: NaiveDateTime,
}

/// `Recorder::recordActivity` for a patient payment line (payer type 0, no adjustment).
pub async fn insert_activity(conn: &mut MySqlConnection, a: &NewActivity<'_>) -> Result<(), StorageError> {
    sqlx::query(
        "INSERT INTO ar_activity (pid, encounter, sequence_no, code_type, code, modifier, payer_type, post_time, \
         post_user, session_id, modified_time, pay_amount, adj_amount, memo, account_code, follow_up, \
         follow_up_note) VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?, ?, 0, ?, ?, '', '')",
    )
    .bind(a.pid)
    .bind(a.encounter)
    .bind(a.sequence_no)
    .bind(a.code_type)
    .bind(a.code)
    .bind(a.modifier)
    .bind(a.now)
    .bind(a.post_user)
    .bind(a.session_id)
    .bind(a.now)
    .bind(a.pay_amount)
    .bind(a.memo)
    .bind(a.account_code)
    .execute(conn)
    .await
    .map_err(StorageError::from_sqlx)?;
    Ok(())
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ActivityRow {
    pub pid: i32,
    pub encounter: i32,
    pub sequence_no: u32,
    pub code_type: String,
    pub code: String,
    pub modifier: String,
    pub payer_type: i32,
    pub post_time: NaiveDateTime,
    pub session_id: u32,
    pub memo: String,
    pub pay_amount: Decimal,
    pub adj_amount: Decimal,
    pub account_code: String,
    pub deleted: Option<NaiveDateTime>,
    pub reference: Option<String>,
    pub payment_method: Option<String>,
}

const ACTIVITY: &str = "SELECT a.pid, a.encounter, a.sequence_no, a.code_type, a.code, a.modifier, a.payer_type, \
     a.post_time, a.session_id, a.memo, a.pay_amount, a.adj_amount, a.account_code, a.deleted, s.reference, \
     s.payment_method FROM ar_activity a LEFT JOIN ar_session s ON s.session_id = a.session_id";

/// The visit's live payment and adjustment lines, in `InvoiceSummary`'s order.
pub async fn for_encounter(
    pool: &MySqlPool,
    pid: i64,
    encounter: i64,
) -> Result<Vec<ActivityRow>, StorageError> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{ACTIVITY} WHERE a.deleted IS NULL AND a.pid = ? AND a.encounter = ? ORDER BY s.check_date, a.sequence_no"
    )))
    .bind(pid)
    .bind(encounter)
    .fetch_all(pool)
    .await
    .map_err(StorageError::from_sqlx)
}

/// Every line a session posted, voided ones included.
pub async fn for_session(
    conn: &mut MySqlConnection,
    session_id: i64,
) -> Result<Vec<ActivityRow>, StorageError> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{ACTIVITY} WHERE a.session_id = ? ORDER BY a.pid, a.encounter, a.sequence_no"
    )))
    .bind(session_id)
    .fetch_all(conn)
    .await
    .map_err(StorageError::from_sqlx)
}

/// Voids the session's lines as OpenEMR does: they stay, stamped `deleted`.
pub async fn void_lines(
    conn: &mut MySqlConnection,
    session_id: i64,
    now: NaiveDateTime,
) -> Result<u64, StorageError> {
    let done = sqlx::query(
        "UPDATE ar_activity SET deleted = ?, modified_time = ? WHERE session_id = ? AND deleted IS NULL",
    )
    .bind(now)
    .bind(now)
    .bind(session_id)
    .execute(conn)
    .await
    .map_err(StorageError::from_sqlx)?;
    Ok(done.rows_affected())
}

/// A fee line of the visit (fee code types only, ordered by code and modifier as the front desk
/// orders them) with the non-copay payments and the adjustments already on its code.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OwedRow {
    pub code_type: String,
    pub code: String,
    pub modifier: String,
    pub fee: Decimal,
    pub paid: Decimal,
    pub adjusted: Decimal,
}

pub async fn owed(
    conn: &mut MySqlConnection,
    pid: i64,
    encounter: i64,
) -> Result<Vec<OwedRow>, StorageError> {
    sqlx::query_as(
        "SELECT b.code_type, COALESCE(b.code, '') AS code, COALESCE(b.modifier, '') AS modifier, \
         COALESCE(b.fee, 0) AS fee, \
         (SELECT COALESCE(SUM(a.pay_amount), 0) FROM ar_activity a WHERE a.pid = b.pid AND a.encounter = b.encounter \
            AND a.deleted IS NULL AND a.code_type = b.code_type AND a.code = b.code \
            AND a.modifier = COALESCE(b.modifier, '') AND NOT (a.payer_type = 0 AND a.account_code = 'PCP')) AS paid, \
         (SELECT COALESCE(SUM(a.adj_amount), 0) FROM ar_activity a WHERE a.pid = b.pid AND a.encounter = b.encounter \
            AND a.deleted IS NULL AND a.code_type = b.code_type AND a.code = b.code \
            AND a.modifier = COALESCE(b.modifier, '')) AS adjusted \
         FROM billing b JOIN code_types ct ON ct.ct_key = b.code_type \
         WHERE ct.ct_fee = 1 AND b.activity != 0 AND b.pid = ? AND b.encounter = ? \
         ORDER BY b.code, b.modifier",
    )
    .bind(pid)
    .bind(encounter)
    .fetch_all(conn)
    .await
    .map_err(StorageError::from_sqlx)
}

/// Copays the patient has paid on the visit (`PCP` lines).
pub async fn copays(conn: &mut MySqlConnection, pid: i64, encounter: i64) -> Result<Decimal, StorageError> {
    sqlx::query_scalar(
        "SELECT COALESCE(SUM(pay_amount), 0) FROM ar_activity WHERE pid = ? AND encounter = ? \
         AND payer_type = 0 AND account_code = 'PCP' AND deleted IS NULL",
    )
    .bind(pid)
    .bind(encounter)
    .fetch_one(conn)
    .await
    .map_err(StorageError::from_sqlx)
}

pub struct Receipt<'a> {
    pub pid: i64,
    pub encounter: i64,
    pub at: NaiveDateTime,
    pub username: &'a str,
    pub method: &'a str,
    pub source: &'a str,
    /// Paid for today's visit (`amount1`) or an earlier one (`amount2`), as `frontPayment` splits it.
    pub today: Decimal,
    pub earlier: Decimal,
}

/// `frontPayment()`: the row the front-desk receipts report reads.
pub async fn insert_receipt(conn: &mut MySqlConnection, r: &Receipt<'_>) -> Result<i64, StorageError> {
    let done = sqlx::query(
        "INSERT INTO payments (pid, encounter, dtime, user, method, source, amount1, amount2) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(r.pid)
    .bind(r.encounter)
    .bind(r.at)
    .bind(r.username)
    .bind(r.method)
    .bind(r.source)
    .bind(r.today)
    .bind(r.earlier)
    .execute(conn)
    .await
    .map_err(StorageError::from_sqlx)?;
    i64::try_from(done.last_insert_id())
        .map_err(|_| StorageError::Unavailable("payment id out of range".into()))
}

pub async fn delete_receipt(conn: &mut MySqlConnection, id: i64) -> Result<(), StorageError> {
    sqlx::query("DELETE FROM payments WHERE id = ?")
        .bind(id)
        .execute(conn)
        .await
        .map_err(StorageError::from_sqlx)?;
    Ok(())
}
