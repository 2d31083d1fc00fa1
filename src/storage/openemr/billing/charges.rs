//! Fee-sheet lines (`billing`), written as `BillingUtilities::addBilling` writes them and changed
//! only while `billed = 0 AND activity = 1`, as the fee sheet changes them.

use chrono::NaiveDateTime;
use rust_decimal::Decimal;
use sqlx::MySqlConnection;

use crate::storage::StorageError;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ChargeRow {
    pub id: i32,
    pub date: Option<NaiveDateTime>,
    pub code_type: Option<String>,
    pub code: Option<String>,
    pub pid: Option<i64>,
    pub encounter: Option<i32>,
    pub provider_id: Option<i32>,
    pub user: Option<i32>,
    pub code_text: Option<String>,
    pub modifier: Option<String>,
    pub units: Option<i32>,
    pub fee: Option<Decimal>,
    pub justify: Option<String>,
    pub pricelevel: Option<String>,
    pub billed: Option<i8>,
    pub activity: Option<i8>,
}

const SELECT: &str = "SELECT id, date, code_type, code, pid, encounter, provider_id, user, code_text, modifier, \
     units, fee, justify, pricelevel, billed, activity FROM billing";

/// The encounter's live lines, diagnoses and charges, in the order they were entered.
pub async fn for_encounter(
    conn: &mut MySqlConnection,
    pid: i64,
    encounter: i64,
) -> Result<Vec<ChargeRow>, StorageError> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT} WHERE pid = ? AND encounter = ? AND activity = 1 ORDER BY id"
    )))
    .bind(pid)
    .bind(encounter)
    .fetch_all(conn)
    .await
    .map_err(StorageError::from_sqlx)
}

pub async fn get(conn: &mut MySqlConnection, id: i64, lock: bool) -> Result<Option<ChargeRow>, StorageError> {
    let lock = if lock { " FOR UPDATE" } else { "" };
    sqlx::query_as(sqlx::AssertSqlSafe(format!("{SELECT} WHERE id = ?{lock}")))
        .bind(id)
        .fetch_optional(conn)
        .await
        .map_err(StorageError::from_sqlx)
}

pub struct NewCharge<'a> {
    pub pid: i64,
    pub encounter: i64,
    pub code_type: &'a str,
    pub code: &'a str,
    pub code_text: &'a str,
    pub modifier: &'a str,
    pub units: i32,
    pub fee: Decimal,
    pub justify: &'a str,
    pub pricelevel: &'a str,
    pub provider_id: Option<i32>,
    pub user_id: i64,
    pub groupname: &'a str,
    pub authorized: bool,
    pub now: NaiveDateTime,
}

pub async fn insert(conn: &mut MySqlConnection, c: &NewCharge<'_>) -> Result<i64, StorageError> {
    let done = sqlx::query(
        "INSERT INTO billing (date, encounter, code_type, code, code_text, pid, authorized, user, groupname, \
         activity, billed, provider_id, modifier, units, fee, ndc_info, justify, notecodes, pricelevel, \
         revenue_code, payer_id, bill_process) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 1, 0, ?, ?, ?, ?, '', ?, '', ?, '', NULL, 0)",
    )
    .bind(c.now)
    .bind(c.encounter)
    .bind(c.code_type)
    .bind(c.code)
    .bind(c.code_text)
    .bind(c.pid)
    .bind(c.authorized)
    .bind(c.user_id)
    .bind(c.groupname)
    .bind(c.provider_id)
    .bind(c.modifier)
    .bind(c.units)
    .bind(c.fee)
    .bind(c.justify)
    .bind(c.pricelevel)
    .execute(conn)
    .await
    .map_err(StorageError::from_sqlx)?;
    i64::try_from(done.last_insert_id())
        .map_err(|_| StorageError::Unavailable("billing id out of range".into()))
}

pub struct ChargeChange<'a> {
    pub modifier: &'a str,
    pub units: i32,
    pub fee: Decimal,
    pub justify: &'a str,
    pub provider_id: Option<i32>,
}

/// Changes an open line; false when it was billed or deleted meanwhile.
pub async fn update(conn: &mut MySqlConnection, id: i64, c: &ChargeChange<'_>) -> Result<bool, StorageError> {
    let done = sqlx::query(
        "UPDATE billing SET modifier = ?, units = ?, fee = ?, justify = ?, provider_id = ? \
         WHERE id = ? AND billed = 0 AND activity = 1",
    )
    .bind(c.modifier)
    .bind(c.units)
    .bind(c.fee)
    .bind(c.justify)
    .bind(c.provider_id)
    .bind(id)
    .execute(conn)
    .await
    .map_err(StorageError::from_sqlx)?;
    Ok(done.rows_affected() == 1)
}

/// `deleteBilling()`: the line stays, with `activity = 0`.
pub async fn deactivate(conn: &mut MySqlConnection, id: i64) -> Result<bool, StorageError> {
    let done = sqlx::query("UPDATE billing SET activity = 0 WHERE id = ? AND billed = 0 AND activity = 1")
        .bind(id)
        .execute(conn)
        .await
        .map_err(StorageError::from_sqlx)?;
    Ok(done.rows_affected() == 1)
}

/// The fee sheet's `visitChecksum`: its form carries this value and refuses to save when the
/// visit's lines, sales or billing state no longer add up to it.
pub async fn checksum(conn: &mut MySqlConnection, pid: i64, encounter: i64) -> Result<u32, StorageError> {
    sqlx::query_scalar(
        "SELECT CAST(\
           (SELECT COALESCE(BIT_XOR(CRC32(CONCAT_WS(',', id, code, modifier, units, fee, authorized, provider_id, \
              ndc_info, justify, billed))), 0) FROM billing WHERE pid = ? AND encounter = ? AND activity = 1) \
         ^ (SELECT COALESCE(BIT_XOR(CRC32(CONCAT_WS(',', sale_id, inventory_id, prescription_id, quantity, fee, \
              sale_date, billed))), 0) FROM drug_sales WHERE pid = ? AND encounter = ?) \
         ^ (SELECT COALESCE(BIT_XOR(CRC32(CONCAT_WS(',', id, date, provider_id, supervisor_id, last_level_billed, \
              last_level_closed))), 0) FROM form_encounter WHERE pid = ? AND encounter = ?) AS UNSIGNED)",
    )
    .bind(pid)
    .bind(encounter)
    .bind(pid)
    .bind(encounter)
    .bind(pid)
    .bind(encounter)
    .fetch_one(conn)
    .await
    .map_err(StorageError::from_sqlx)
}

/// Takes the encounter's row lock, so the sidecar's writes to one visit's lines queue up and
/// each sees the checksum the one before it left.
pub async fn lock_visit(conn: &mut MySqlConnection, encounter: i64) -> Result<(), StorageError> {
    sqlx::query("SELECT id FROM form_encounter WHERE encounter = ? FOR UPDATE")
        .bind(encounter)
        .fetch_optional(conn)
        .await
        .map_err(StorageError::from_sqlx)?;
    Ok(())
}
