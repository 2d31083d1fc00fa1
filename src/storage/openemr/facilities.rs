use sqlx::MySqlPool;

use crate::storage::StorageError;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct FacilityRow {
    pub id: i64,
    pub uuid: Option<Vec<u8>>,
    pub name: Option<String>,
    pub phone: Option<String>,
    pub street: Option<String>,
    pub city: Option<String>,
    pub state: Option<String>,
    pub postal_code: Option<String>,
    pub pos_code: Option<i8>,
    pub service_location: bool,
    pub billing_location: bool,
    pub inactive: bool,
}

const COLUMNS: &str = "id, uuid, name, phone, street, city, state, postal_code, pos_code, \
     service_location <> 0 AS service_location, billing_location <> 0 AS billing_location, inactive <> 0 AS inactive";

pub async fn list(pool: &MySqlPool) -> Result<Vec<FacilityRow>, StorageError> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM facility ORDER BY name, id")))
        .fetch_all(pool)
        .await
        .map_err(StorageError::from_sqlx)
}

pub async fn get(pool: &MySqlPool, id: i64) -> Result<Option<FacilityRow>, StorageError> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM facility WHERE id = ?")))
        .bind(id)
        .fetch_optional(pool)
        .await
        .map_err(StorageError::from_sqlx)
}
