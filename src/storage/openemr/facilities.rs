use sqlx::{MySqlConnection, MySqlPool};

use crate::{
    domain::admin::facility::{Field, Value},
    storage::{
        StorageError,
        openemr::{
            columns::{self, Query},
            uuid_registry,
        },
    },
};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct FacilityRow {
    pub id: i64,
    pub uuid: Option<Vec<u8>>,
    pub name: Option<String>,
    pub phone: Option<String>,
    pub fax: Option<String>,
    pub street: Option<String>,
    pub city: Option<String>,
    pub state: Option<String>,
    pub postal_code: Option<String>,
    pub country_code: String,
    pub email: Option<String>,
    pub website: Option<String>,
    pub federal_ein: Option<String>,
    pub tax_id_type: String,
    pub facility_npi: Option<String>,
    pub facility_taxonomy: Option<String>,
    pub pos_code: Option<i8>,
    pub service_location: bool,
    pub billing_location: bool,
    pub accepts_assignment: bool,
    pub primary_business_entity: bool,
    pub color: String,
    pub inactive: bool,
}

const COLUMNS: &str = "id, uuid, name, phone, fax, street, city, state, postal_code, country_code, email, \
     website, federal_ein, tax_id_type, facility_npi, facility_taxonomy, pos_code, \
     service_location <> 0 AS service_location, billing_location <> 0 AS billing_location, \
     accepts_assignment <> 0 AS accepts_assignment, primary_business_entity <> 0 AS primary_business_entity, \
     color, inactive <> 0 AS inactive";

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

/// The row, locked for a change.
pub async fn lock(conn: &mut MySqlConnection, id: i64) -> Result<Option<FacilityRow>, StorageError> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM facility WHERE id = ? FOR UPDATE")))
        .bind(id)
        .fetch_optional(conn)
        .await
        .map_err(StorageError::from_sqlx)
}

/// Another facility marked as the primary business entity. The column has no index, so this
/// locking read locks every row it scans: two requests making different facilities primary
/// take turns, and the second sees the first.
pub async fn other_primary(
    conn: &mut MySqlConnection,
    id: i64,
) -> Result<Option<(i64, String)>, StorageError> {
    sqlx::query_as(
        "SELECT id, COALESCE(name, '') FROM facility WHERE primary_business_entity = 1 AND id <> ? \
         ORDER BY id LIMIT 1 FOR UPDATE",
    )
    .bind(id)
    .fetch_optional(conn)
    .await
    .map_err(StorageError::from_sqlx)
}

/// A new row with a uuid registered as OpenEMR's FacilityService does.
pub async fn insert(conn: &mut MySqlConnection, values: &[(Field, Value)]) -> Result<i64, StorageError> {
    let uuid = uuid_registry::create(conn, "facility", "id").await?;
    columns::insert_row(
        conn,
        "facility",
        &["uuid"],
        |q| q.bind(uuid.to_vec()),
        values,
        |(f, _)| f.column(),
        bind,
    )
    .await
}

pub async fn update(
    conn: &mut MySqlConnection,
    id: i64,
    values: &[(Field, Value)],
) -> Result<(), StorageError> {
    columns::update_row(conn, "facility", id, values, |(f, _)| f.column(), bind).await
}

/// `users.facility` keeps a copy of the facility's name; OpenEMR's screen renews it on a rename
/// (`FacilityService::updateUsersFacility`).
pub async fn rename_for_users(conn: &mut MySqlConnection, id: i64, name: &str) -> Result<u64, StorageError> {
    let done = sqlx::query("UPDATE users SET facility = ? WHERE facility_id = ?")
        .bind(name)
        .bind(id)
        .execute(conn)
        .await
        .map_err(StorageError::from_sqlx)?;
    Ok(done.rows_affected())
}

fn bind<'q>(query: Query<'q>, (field, value): &'q (Field, Value)) -> Query<'q> {
    match value {
        Value::Text(text) => query.bind(text.as_str()),
        Value::Flag(flag) => query.bind(i8::from(field.stored_flag(*flag))),
        Value::Code(code) => query.bind(code.map(i16::from)),
    }
}
