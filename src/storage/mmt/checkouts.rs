//! `mmt_checkouts` (a Stripe Checkout Session per booking paid online) and `mmt_stripe_events`
//! (each Stripe event acted on once).

use chrono::NaiveDateTime;
use rust_decimal::Decimal;
use sqlx::{MySqlConnection, MySqlPool};

use crate::storage::StorageError;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CheckoutRow {
    pub id: u64,
    pub pc_eid: u32,
    pub pid: i64,
    pub stripe_session: String,
    pub url: String,
    pub amount: Decimal,
    pub currency: String,
    pub patient_kind: String,
    pub state: String,
    pub payment_intent: Option<String>,
    pub ar_session_id: Option<u32>,
    pub refunded: Decimal,
    pub hold_lapsed_at: Option<NaiveDateTime>,
    pub created_by: i64,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    pub settled_at: Option<NaiveDateTime>,
    pub outcome: Option<String>,
}

const SELECT: &str = "SELECT id, pc_eid, pid, stripe_session, url, amount, currency, patient_kind, state, \
     payment_intent, ar_session_id, refunded, hold_lapsed_at, created_by, created_at, expires_at, settled_at, \
     outcome FROM mmt_checkouts";

async fn one(
    conn: &mut MySqlConnection,
    filter: &str,
    value: impl ToString,
) -> Result<Option<CheckoutRow>, StorageError> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("{SELECT} WHERE {filter} = ? ORDER BY id DESC LIMIT 1")))
        .bind(value.to_string())
        .fetch_optional(conn)
        .await
        .map_err(StorageError::from_sqlx)
}

pub async fn by_session(
    conn: &mut MySqlConnection,
    session: &str,
) -> Result<Option<CheckoutRow>, StorageError> {
    one(conn, "stripe_session", session).await
}

pub async fn by_payment_intent(
    conn: &mut MySqlConnection,
    intent: &str,
) -> Result<Option<CheckoutRow>, StorageError> {
    one(conn, "payment_intent", intent).await
}

pub async fn by_payment(
    conn: &mut MySqlConnection,
    session_id: i64,
) -> Result<Option<CheckoutRow>, StorageError> {
    one(conn, "ar_session_id", session_id).await
}

/// The appointment's checkouts, newest first.
pub async fn for_appointment(pool: &MySqlPool, eid: u32) -> Result<Vec<CheckoutRow>, StorageError> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("{SELECT} WHERE pc_eid = ? ORDER BY id DESC")))
        .bind(eid)
        .fetch_all(pool)
        .await
        .map_err(StorageError::from_sqlx)
}

pub struct NewCheckout<'a> {
    pub eid: u32,
    pub pid: i64,
    pub stripe_session: &'a str,
    pub url: &'a str,
    pub amount: Decimal,
    pub currency: &'a str,
    pub patient_kind: &'a str,
    pub created_by: i64,
    pub now: NaiveDateTime,
    pub expires_at: NaiveDateTime,
}

pub async fn insert(conn: &mut MySqlConnection, c: &NewCheckout<'_>) -> Result<u64, StorageError> {
    let done = sqlx::query(
        "INSERT INTO mmt_checkouts (pc_eid, pid, stripe_session, url, amount, currency, patient_kind, state, \
         created_by, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, 'open', ?, ?, ?)",
    )
    .bind(c.eid)
    .bind(c.pid)
    .bind(c.stripe_session)
    .bind(c.url)
    .bind(c.amount)
    .bind(c.currency)
    .bind(c.patient_kind)
    .bind(c.created_by)
    .bind(c.now)
    .bind(c.expires_at)
    .execute(conn)
    .await
    .map_err(StorageError::from_sqlx)?;
    Ok(done.last_insert_id())
}

pub struct Settled<'a> {
    pub id: u64,
    pub state: &'a str,
    pub payment_intent: Option<&'a str>,
    pub ar_session_id: Option<i64>,
    pub refunded: Decimal,
    pub outcome: &'a str,
    pub now: NaiveDateTime,
}

/// Records how a checkout ended (paid, expired, refunded); the payment ids once known stay.
pub async fn settle(conn: &mut MySqlConnection, s: &Settled<'_>) -> Result<(), StorageError> {
    sqlx::query(
        "UPDATE mmt_checkouts SET state = ?, payment_intent = COALESCE(?, payment_intent), \
         ar_session_id = COALESCE(?, ar_session_id), refunded = ?, outcome = ?, settled_at = ? WHERE id = ?",
    )
    .bind(s.state)
    .bind(s.payment_intent)
    .bind(s.ar_session_id)
    .bind(s.refunded)
    .bind(s.outcome)
    .bind(s.now)
    .bind(s.id)
    .execute(conn)
    .await
    .map_err(StorageError::from_sqlx)?;
    Ok(())
}

/// The sweep lapsed the booking's hold while its checkout was open.
pub async fn hold_lapsed(
    conn: &mut MySqlConnection,
    eid: u32,
    now: NaiveDateTime,
) -> Result<(), StorageError> {
    sqlx::query("UPDATE mmt_checkouts SET hold_lapsed_at = ? WHERE pc_eid = ? AND state = 'open'")
        .bind(now)
        .bind(eid)
        .execute(conn)
        .await
        .map_err(StorageError::from_sqlx)?;
    Ok(())
}

/// Claims a Stripe event for processing; false when it was processed (or is being) already.
pub async fn claim_event(
    pool: &MySqlPool,
    id: &str,
    kind: &str,
    now: NaiveDateTime,
) -> Result<bool, StorageError> {
    let done = sqlx::query(
        "INSERT IGNORE INTO mmt_stripe_events (event_id, event_type, received_at, outcome) VALUES (?, ?, ?, 'processing')",
    )
    .bind(id)
    .bind(kind)
    .bind(now)
    .execute(pool)
    .await
    .map_err(StorageError::from_sqlx)?;
    Ok(done.rows_affected() == 1)
}

pub async fn event_done(pool: &MySqlPool, id: &str, outcome: &str) -> Result<(), StorageError> {
    sqlx::query("UPDATE mmt_stripe_events SET outcome = ? WHERE event_id = ?")
        .bind(outcome)
        .bind(id)
        .execute(pool)
        .await
        .map_err(StorageError::from_sqlx)?;
    Ok(())
}

/// Gives the event back so Stripe's retry processes it (processing failed).
pub async fn release_event(pool: &MySqlPool, id: &str) -> Result<(), StorageError> {
    sqlx::query("DELETE FROM mmt_stripe_events WHERE event_id = ?")
        .bind(id)
        .execute(pool)
        .await
        .map_err(StorageError::from_sqlx)?;
    Ok(())
}

pub async fn event_outcome(pool: &MySqlPool, id: &str) -> Result<Option<String>, StorageError> {
    sqlx::query_scalar("SELECT outcome FROM mmt_stripe_events WHERE event_id = ?")
        .bind(id)
        .fetch_optional(pool)
        .await
        .map_err(StorageError::from_sqlx)
}
