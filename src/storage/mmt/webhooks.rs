//! Webhook endpoints and their delivery log (`mmt_webhooks`, `mmt_webhook_deliveries`).

use chrono::NaiveDateTime;
use sqlx::{MySqlConnection, MySqlPool};

use crate::storage::StorageError;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct WebhookRow {
    pub id: u64,
    pub url: String,
    pub secret: String,
    pub event_types: String,
    pub include_phi: bool,
    pub active: bool,
    pub description: String,
    pub created_by: i64,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

const COLUMNS: &str =
    "id, url, secret, event_types, include_phi, active, description, created_by, created_at, updated_at";

pub struct NewWebhook<'a> {
    pub url: &'a str,
    pub secret: &'a str,
    pub event_types: &'a str,
    pub include_phi: bool,
    pub description: &'a str,
    pub created_by: i64,
    pub now: NaiveDateTime,
}

pub async fn insert(pool: &MySqlPool, w: &NewWebhook<'_>) -> Result<u64, StorageError> {
    let done = sqlx::query(
        "INSERT INTO mmt_webhooks (url, secret, event_types, include_phi, active, description, created_by, \
         created_at, updated_at) VALUES (?, ?, ?, ?, TRUE, ?, ?, ?, ?)",
    )
    .bind(w.url)
    .bind(w.secret)
    .bind(w.event_types)
    .bind(w.include_phi)
    .bind(w.description)
    .bind(w.created_by)
    .bind(w.now)
    .bind(w.now)
    .execute(pool)
    .await
    .map_err(StorageError::from_sqlx)?;
    Ok(done.last_insert_id())
}

pub async fn get(pool: &MySqlPool, id: u64) -> Result<Option<WebhookRow>, StorageError> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM mmt_webhooks WHERE id = ?")))
        .bind(id)
        .fetch_optional(pool)
        .await
        .map_err(StorageError::from_sqlx)
}

pub async fn list(pool: &MySqlPool) -> Result<Vec<WebhookRow>, StorageError> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM mmt_webhooks ORDER BY id")))
        .fetch_all(pool)
        .await
        .map_err(StorageError::from_sqlx)
}

/// Active endpoints, read inside the transaction of the change whose deliveries they get.
pub async fn active(conn: &mut MySqlConnection) -> Result<Vec<WebhookRow>, StorageError> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM mmt_webhooks WHERE active")))
        .fetch_all(conn)
        .await
        .map_err(StorageError::from_sqlx)
}

pub struct WebhookChanges<'a> {
    pub url: &'a str,
    pub event_types: &'a str,
    pub include_phi: bool,
    pub active: bool,
    pub description: &'a str,
}

pub async fn update(
    pool: &MySqlPool,
    id: u64,
    c: &WebhookChanges<'_>,
    now: NaiveDateTime,
) -> Result<bool, StorageError> {
    let done = sqlx::query(
        "UPDATE mmt_webhooks SET url = ?, event_types = ?, include_phi = ?, active = ?, description = ?, \
         updated_at = ? WHERE id = ?",
    )
    .bind(c.url)
    .bind(c.event_types)
    .bind(c.include_phi)
    .bind(c.active)
    .bind(c.description)
    .bind(now)
    .bind(id)
    .execute(pool)
    .await
    .map_err(StorageError::from_sqlx)?;
    Ok(done.rows_affected() > 0)
}

/// Removes the endpoint; its delivery log goes with it.
pub async fn delete(pool: &MySqlPool, id: u64) -> Result<bool, StorageError> {
    let mut tx = pool.begin().await.map_err(StorageError::from_sqlx)?;
    sqlx::query("DELETE FROM mmt_webhook_deliveries WHERE webhook_id = ?")
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(StorageError::from_sqlx)?;
    let done = sqlx::query("DELETE FROM mmt_webhooks WHERE id = ?")
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(StorageError::from_sqlx)?;
    tx.commit().await.map_err(StorageError::from_sqlx)?;
    Ok(done.rows_affected() > 0)
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DeliveryRow {
    pub id: u64,
    pub webhook_id: u64,
    pub event_id: u64,
    pub event_type: String,
    pub state: String,
    pub attempts: u32,
    pub last_status: Option<i16>,
    pub last_error: String,
    pub last_attempt_at: Option<NaiveDateTime>,
    pub delivered_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
}

const DELIVERY_COLUMNS: &str = "id, webhook_id, event_id, event_type, CAST(state AS CHAR) AS state, attempts, \
     last_status, last_error, last_attempt_at, delivered_at, created_at";

pub async fn insert_delivery(
    conn: &mut MySqlConnection,
    webhook_id: u64,
    event_id: u64,
    event_type: &str,
    now: NaiveDateTime,
) -> Result<u64, StorageError> {
    let done = sqlx::query(
        "INSERT INTO mmt_webhook_deliveries (webhook_id, event_id, event_type, state, created_at) \
         VALUES (?, ?, ?, 'pending', ?)",
    )
    .bind(webhook_id)
    .bind(event_id)
    .bind(event_type)
    .bind(now)
    .execute(conn)
    .await
    .map_err(StorageError::from_sqlx)?;
    Ok(done.last_insert_id())
}

pub async fn delivery(pool: &MySqlPool, id: u64) -> Result<Option<DeliveryRow>, StorageError> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {DELIVERY_COLUMNS} FROM mmt_webhook_deliveries WHERE id = ?"
    )))
    .bind(id)
    .fetch_optional(pool)
    .await
    .map_err(StorageError::from_sqlx)
}

pub async fn deliveries(
    pool: &MySqlPool,
    webhook_id: u64,
    limit: u32,
) -> Result<Vec<DeliveryRow>, StorageError> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {DELIVERY_COLUMNS} FROM mmt_webhook_deliveries WHERE webhook_id = ? ORDER BY id DESC LIMIT ?"
    )))
    .bind(webhook_id)
    .bind(limit)
    .fetch_all(pool)
    .await
    .map_err(StorageError::from_sqlx)
}

/// Records one attempt: delivered, failed for good, or still pending a retry.
pub async fn record_attempt(
    pool: &MySqlPool,
    id: u64,
    state: &str,
    status: Option<u16>,
    error: &str,
    now: NaiveDateTime,
) -> Result<(), StorageError> {
    sqlx::query(
        "UPDATE mmt_webhook_deliveries SET state = ?, attempts = attempts + 1, last_status = ?, last_error = ?, \
         last_attempt_at = ?, delivered_at = IF(? = 'delivered', ?, delivered_at) WHERE id = ?",
    )
    .bind(state)
    .bind(status)
    .bind(error.chars().take(255).collect::<String>())
    .bind(now)
    .bind(state)
    .bind(now)
    .bind(id)
    .execute(pool)
    .await
    .map_err(StorageError::from_sqlx)?;
    Ok(())
}

/// A manual redelivery starts the delivery over.
pub async fn reopen(conn: &mut MySqlConnection, id: u64) -> Result<(), StorageError> {
    sqlx::query("UPDATE mmt_webhook_deliveries SET state = 'pending' WHERE id = ?")
        .bind(id)
        .execute(conn)
        .await
        .map_err(StorageError::from_sqlx)?;
    Ok(())
}
