//! The code catalogue the fee sheet picks from: `code_types`, `codes` with their `prices` per
//! price level, and ICD-10 diagnoses (an external code set in `icd10_dx_order_code`).

use rust_decimal::Decimal;
use sqlx::{MySqlConnection, MySqlPool};

use crate::storage::StorageError;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CodeType {
    pub ct_key: String,
    pub ct_id: i32,
    pub ct_just: String,
    pub ct_fee: i8,
    pub ct_diag: i8,
}

impl CodeType {
    pub fn billable(&self) -> bool {
        self.ct_fee == 1
    }

    pub fn diagnosis(&self) -> bool {
        self.ct_diag == 1
    }
}

pub async fn code_type(pool: &MySqlPool, key: &str) -> Result<Option<CodeType>, StorageError> {
    sqlx::query_as(
        "SELECT ct_key, ct_id, ct_just, ct_fee, ct_diag FROM code_types WHERE ct_key = ? AND ct_active = 1",
    )
    .bind(key)
    .fetch_optional(pool)
    .await
    .map_err(StorageError::from_sqlx)
}

/// A billable code with the price it carries at a price level (`prices`), else its own fee.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct FeeCode {
    pub id: i32,
    pub code_text: Option<String>,
    pub price: Option<Decimal>,
}

pub async fn fee_code(
    conn: &mut MySqlConnection,
    ct_id: i32,
    code: &str,
    modifier: &str,
    level: &str,
) -> Result<Option<FeeCode>, StorageError> {
    // A code with this modifier in the catalogue, else the code itself: the fee sheet prices a
    // modified line at the unmodified code's price unless the catalogue lists the pair.
    sqlx::query_as(
        "SELECT c.id, c.code_text, COALESCE(p.pr_price, c.fee) AS price FROM codes c \
         LEFT JOIN prices p ON p.pr_id = CAST(c.id AS CHAR) AND p.pr_selector = '' AND p.pr_level = ? \
         WHERE c.code_type = ? AND c.code = ? AND c.active = 1 AND c.modifier IN (?, '') \
         ORDER BY c.modifier = ? DESC, c.id LIMIT 1",
    )
    .bind(level)
    .bind(ct_id)
    .bind(code)
    .bind(modifier)
    .bind(modifier)
    .fetch_optional(conn)
    .await
    .map_err(StorageError::from_sqlx)
}

/// The description of an ICD-10-CM code that is valid for coding, if it is one.
pub async fn icd10(conn: &mut MySqlConnection, code: &str) -> Result<Option<String>, StorageError> {
    sqlx::query_scalar(
        "SELECT COALESCE(long_desc, short_desc, '') FROM icd10_dx_order_code \
         WHERE formatted_dx_code = ? AND active = 1 AND valid_for_coding = '1' ORDER BY revision DESC LIMIT 1",
    )
    .bind(code)
    .fetch_optional(conn)
    .await
    .map_err(StorageError::from_sqlx)
}

/// The patient's price level (`patient_data.pricelevel`, `standard` when unset).
pub async fn price_level(conn: &mut MySqlConnection, pid: i64) -> Result<String, StorageError> {
    let level: Option<String> = sqlx::query_scalar("SELECT pricelevel FROM patient_data WHERE pid = ?")
        .bind(pid)
        .fetch_optional(conn)
        .await
        .map_err(StorageError::from_sqlx)?;
    Ok(level.filter(|l| !l.is_empty()).unwrap_or_else(|| "standard".into()))
}
