use sqlx::{MySqlConnection, MySqlPool};

use crate::storage::{StorageError, openemr::uuid_registry};

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

/// Serialises [`create_missing_group_ids`] across replicas, as two would map the same user twice.
pub const GROUP_LOCK: &str = "openemr_uuid_mapping_group";

/// OpenEMR's GroupService's first step: a `Group` id in `uuid_mapping` for every user with a uuid
/// and none yet. Must run under [`GROUP_LOCK`]; returns how many it added.
pub async fn create_missing_group_ids(conn: &mut MySqlConnection) -> Result<usize, StorageError> {
    let missing: Vec<Vec<u8>> = sqlx::query_scalar(
        "SELECT u.uuid FROM users u \
         LEFT JOIN uuid_mapping m ON m.target_uuid = u.uuid AND m.resource = 'Group' \
         WHERE m.id IS NULL AND u.uuid IS NOT NULL AND u.uuid <> '' AND u.uuid <> REPEAT(CHAR(0), 16)",
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(StorageError::from_sqlx)?;
    for user in &missing {
        uuid_registry::map(conn, "Group", "users", user, None).await?;
    }
    Ok(missing.len())
}

/// A provider group as OpenEMR's FHIR API serves it: a provider with an NPI, by its Group id.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct GroupRow {
    pub uuid: Vec<u8>,
    pub provider_id: i64,
    pub fname: Option<String>,
    pub mname: Option<String>,
    pub lname: Option<String>,
    pub created: Option<chrono::NaiveDateTime>,
}

/// Every provider group, or the one with this id.
pub async fn groups(pool: &MySqlPool, uuid: Option<&[u8; 16]>) -> Result<Vec<GroupRow>, StorageError> {
    sqlx::query_as(
        "SELECT m.uuid, u.id AS provider_id, u.fname, u.mname, u.lname, CAST(m.created AS DATETIME) AS created \
         FROM uuid_mapping m JOIN users u ON u.uuid = m.target_uuid \
         WHERE m.resource = 'Group' AND m.`table` = 'users' AND u.npi IS NOT NULL AND u.npi <> '' \
         AND (? IS NULL OR m.uuid = ?) ORDER BY u.lname, u.fname, u.id",
    )
    .bind(uuid.map(|u| &u[..]))
    .bind(uuid.map(|u| &u[..]))
    .fetch_all(pool)
    .await
    .map_err(StorageError::from_sqlx)
}
