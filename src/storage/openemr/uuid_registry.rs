use sqlx::MySqlConnection;

use crate::storage::StorageError;

/// A new OpenEMR uuid: 16 random bytes, recorded in `uuid_registry` as UuidRegistry::createUuid does.
pub async fn create(
    conn: &mut MySqlConnection,
    table: &str,
    id_column: &str,
) -> Result<[u8; 16], StorageError> {
    register(conn, table, id_column, false).await
}

/// A document file's name (`new UuidRegistry(['document_drive' => true])`): no table, `document_drive=1`.
pub async fn create_for_drive(conn: &mut MySqlConnection) -> Result<[u8; 16], StorageError> {
    register(conn, "", "", true).await
}

async fn register(
    conn: &mut MySqlConnection,
    table: &str,
    id_column: &str,
    drive: bool,
) -> Result<[u8; 16], StorageError> {
    let uuid = *uuid::Uuid::new_v4().as_bytes();
    sqlx::query(
        "INSERT INTO uuid_registry (uuid, table_name, table_id, table_vertical, couchdb, document_drive, mapped, created) \
         VALUES (?, ?, ?, '', '', ?, 0, NOW())",
    )
    .bind(&uuid[..])
    .bind(table)
    .bind(id_column)
    .bind(i8::from(drive))
    .execute(conn)
    .await
    .map_err(StorageError::from_sqlx)?;
    Ok(uuid)
}

/// A `uuid_mapping` row as UuidMapping::createMissingResourceUuids writes it: a FHIR id for a
/// resource OpenEMR derives from a row (`target`, that row's uuid), registered with `mapped = 1`.
pub async fn map(
    conn: &mut MySqlConnection,
    resource: &str,
    table: &str,
    target: &[u8],
    resource_path: Option<&str>,
) -> Result<[u8; 16], StorageError> {
    let uuid = *uuid::Uuid::new_v4().as_bytes();
    sqlx::query(
        "INSERT INTO uuid_registry (uuid, table_name, table_id, table_vertical, couchdb, document_drive, mapped, created) \
         VALUES (?, 'uuid_mapping', 'id', '', '', 0, 1, NOW())",
    )
    .bind(&uuid[..])
    .execute(&mut *conn)
    .await
    .map_err(StorageError::from_sqlx)?;
    sqlx::query(
        "INSERT INTO uuid_mapping (`uuid`, `resource`, `table`, `target_uuid`, `created`, `resource_path`) \
         VALUES (?, ?, ?, ?, NOW(), ?)",
    )
    .bind(&uuid[..])
    .bind(resource)
    .bind(table)
    .bind(target)
    .bind(resource_path)
    .execute(&mut *conn)
    .await
    .map_err(StorageError::from_sqlx)?;
    Ok(uuid)
}

/// OpenEMR renders binary uuids in byte order; NULL, empty and all-zero mean "none yet".
pub fn to_string(bytes: Option<&[u8]>) -> Option<String> {
    let uuid = uuid::Uuid::from_slice(bytes?).ok()?;
    (!uuid.is_nil()).then(|| uuid.to_string())
}
