use sqlx::MySqlPool;

use crate::storage::StorageError;

/// An OpenEMR user who may provide care: `authorized = 1` and active.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ProviderRow {
    pub id: i64,
    pub uuid: Option<Vec<u8>>,
    pub username: String,
    pub fname: Option<String>,
    pub lname: Option<String>,
    pub title: Option<String>,
    pub specialty: Option<String>,
    pub npi: Option<String>,
    pub facility_id: i64,
    pub facility: Option<String>,
}

const SELECT: &str = "SELECT u.id, u.uuid, CAST(u.username AS CHAR) AS username, u.fname, u.lname, u.title, u.specialty, \
     u.npi, u.facility_id, f.name AS facility \
     FROM users u LEFT JOIN facility f ON f.id = u.facility_id \
     WHERE u.authorized = 1 AND u.active = 1 AND u.username <> ''";

pub async fn list(pool: &MySqlPool) -> Result<Vec<ProviderRow>, StorageError> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("{SELECT} ORDER BY u.lname, u.fname, u.id")))
        .fetch_all(pool)
        .await
        .map_err(StorageError::from_sqlx)
}

pub async fn get(pool: &MySqlPool, id: i64) -> Result<Option<ProviderRow>, StorageError> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("{SELECT} AND u.id = ?")))
        .bind(id)
        .fetch_optional(pool)
        .await
        .map_err(StorageError::from_sqlx)
}

/// The provider a FHIR Group id names: OpenEMR's GroupService gives each provider with an NPI a
/// `uuid_mapping` row (resource `Group`) whose target is the provider's `users.uuid`.
pub async fn by_group_uuid(pool: &MySqlPool, uuid: &[u8; 16]) -> Result<Option<i64>, StorageError> {
    sqlx::query_scalar(
        "SELECT u.id FROM uuid_mapping m JOIN users u ON u.uuid = m.target_uuid \
         WHERE m.uuid = ? AND m.resource = 'Group' AND m.`table` = 'users' AND u.npi IS NOT NULL AND u.npi <> ''",
    )
    .bind(&uuid[..])
    .fetch_optional(pool)
    .await
    .map_err(StorageError::from_sqlx)
}
