//! Staff accounts as OpenEMR's user administration writes them: the `users` row, its
//! `users_secure` credentials, the `groups` (auth group) row and `users_facility` access.

use sqlx::{MySqlConnection, MySqlPool};

use crate::{
    domain::admin::user_account::{Field, Value},
    storage::{
        StorageError,
        openemr::{
            columns::{self, Query},
            uuid_registry,
        },
    },
};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AccountRow {
    pub id: i64,
    pub uuid: Option<Vec<u8>>,
    pub username: String,
    pub fname: Option<String>,
    pub mname: Option<String>,
    pub lname: Option<String>,
    pub suffix: Option<String>,
    pub email: Option<String>,
    pub active: bool,
    pub authorized: bool,
    pub calendar: bool,
    pub facility_id: i64,
    pub facility: Option<String>,
    pub billing_facility_id: i64,
    pub billing_facility: Option<String>,
    pub npi: Option<String>,
    pub federaltaxid: Option<String>,
    pub taxonomy: String,
    pub specialty: Option<String>,
    pub state_license_number: Option<String>,
    pub info: Option<String>,
    pub see_auth: i64,
    pub auth_group: Option<String>,
    pub last_update_password: Option<chrono::NaiveDateTime>,
    pub mfa: bool,
}

const COLUMNS: &str = "u.id, u.uuid, CAST(u.username AS CHAR) AS username, u.fname, u.mname, u.lname, u.suffix, \
     u.email, u.active <> 0 AS active, COALESCE(u.authorized, 0) <> 0 AS authorized, u.calendar <> 0 AS calendar, \
     CAST(u.facility_id AS SIGNED) AS facility_id, u.facility, \
     CAST(u.billing_facility_id AS SIGNED) AS billing_facility_id, CAST(u.billing_facility AS CHAR) AS billing_facility, \
     u.npi, u.federaltaxid, u.taxonomy, u.specialty, u.state_license_number, CAST(u.info AS CHAR) AS info, \
     CAST(u.see_auth AS SIGNED) AS see_auth, \
     (SELECT CAST(g.name AS CHAR) FROM `groups` g WHERE BINARY g.user = u.username ORDER BY g.id LIMIT 1) AS auth_group, \
     us.last_update_password, \
     EXISTS (SELECT 1 FROM login_mfa_registrations m WHERE m.user_id = u.id) AS mfa";
const FROM: &str = "FROM users u LEFT JOIN users_secure us ON us.id = u.id";

/// Accounts with a login name, by username (OpenEMR's user list), inactive ones on request.
pub async fn list(pool: &MySqlPool, include_inactive: bool) -> Result<Vec<AccountRow>, StorageError> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} {FROM} WHERE u.username <> '' AND (? OR u.active = 1) ORDER BY u.username"
    )))
    .bind(include_inactive)
    .fetch_all(pool)
    .await
    .map_err(StorageError::from_sqlx)
}

pub async fn get(conn: &mut MySqlConnection, id: i64) -> Result<Option<AccountRow>, StorageError> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} {FROM} WHERE u.id = ? AND u.username <> ''"
    )))
    .bind(id)
    .fetch_optional(conn)
    .await
    .map_err(StorageError::from_sqlx)
}

/// Locks the `users` row for a change and says whether it is a staff account.
pub async fn lock(conn: &mut MySqlConnection, id: i64) -> Result<bool, StorageError> {
    let found: Option<i64> =
        sqlx::query_scalar("SELECT id FROM users WHERE id = ? AND username <> '' FOR UPDATE")
            .bind(id)
            .fetch_optional(conn)
            .await
            .map_err(StorageError::from_sqlx)?;
    Ok(found.is_some())
}

/// OpenEMR compares usernames with the column's collation, so `Admin` is taken when `admin` is.
pub async fn username_taken(conn: &mut MySqlConnection, username: &str) -> Result<bool, StorageError> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM users WHERE username = ?)")
        .bind(username)
        .fetch_one(conn)
        .await
        .map_err(StorageError::from_sqlx)
}

/// The `users` row as `usergroup_admin.php` inserts it, with a registered uuid.
pub async fn insert(
    conn: &mut MySqlConnection,
    username: &str,
    values: &[(Field, Value)],
) -> Result<i64, StorageError> {
    let uuid = uuid_registry::create(conn, "users", "id").await?;
    let fixed = ["uuid", "username", "password", "main_menu_role", "patient_menu_role"];
    let username = username.to_string();
    let first = move |q| bind_fixed(q, uuid.to_vec(), username);
    columns::insert_row(conn, "users", &fixed, first, values, |(f, _)| f.column(), bind).await
}

/// The values `usergroup_admin.php` always writes: the uuid, the name, the legacy password
/// column's `NoLongerUsed` and the standard menu roles.
fn bind_fixed(query: Query<'_>, uuid: Vec<u8>, username: String) -> Query<'_> {
    query.bind(uuid).bind(username).bind("NoLongerUsed").bind("standard").bind("standard")
}

pub async fn update(
    conn: &mut MySqlConnection,
    id: i64,
    values: &[(Field, Value)],
) -> Result<(), StorageError> {
    columns::update_row(conn, "users", id, values, |(f, _)| f.column(), bind).await
}

/// `users.facility` and `users.billing_facility` copy their facility's name, renewed whenever
/// the ids change.
pub async fn copy_facility_names(conn: &mut MySqlConnection, id: i64) -> Result<(), StorageError> {
    sqlx::query(
        "UPDATE users u LEFT JOIN facility f ON f.id = u.facility_id LEFT JOIN facility b ON b.id = u.billing_facility_id \
         SET u.facility = f.name, u.billing_facility = b.name WHERE u.id = ?",
    )
    .bind(id)
    .execute(conn)
    .await
    .map_err(StorageError::from_sqlx)?;
    Ok(())
}

/// The facilities among `ids` that exist.
pub async fn existing_facilities(pool: &MySqlPool, ids: &[i64]) -> Result<Vec<i64>, StorageError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut q = sqlx::QueryBuilder::new("SELECT id FROM facility WHERE id IN (");
    let mut list = q.separated(", ");
    for id in ids {
        list.push_bind(*id);
    }
    q.push(")");
    q.build_query_scalar().fetch_all(pool).await.map_err(StorageError::from_sqlx)
}

/// `users_secure` for a new account, as `AuthUtils::updatePassword` creates it.
pub async fn insert_credentials(
    conn: &mut MySqlConnection,
    id: i64,
    username: &str,
    hash: &str,
) -> Result<(), StorageError> {
    sqlx::query(
        "INSERT INTO users_secure (id, username, password, last_update_password) VALUES (?, ?, ?, NOW())",
    )
    .bind(id)
    .bind(username)
    .bind(hash)
    .execute(conn)
    .await
    .map_err(StorageError::from_sqlx)?;
    Ok(())
}

/// The current hash and the four before it, newest first, locked for a password change.
pub async fn lock_hashes(
    conn: &mut MySqlConnection,
    id: i64,
) -> Result<Option<[Option<String>; 5]>, StorageError> {
    type Row = (Option<String>, Option<String>, Option<String>, Option<String>, Option<String>);
    let row: Option<Row> = sqlx::query_as(
        "SELECT password, password_history1, password_history2, password_history3, password_history4 \
         FROM users_secure WHERE id = ? FOR UPDATE",
    )
    .bind(id)
    .fetch_optional(conn)
    .await
    .map_err(StorageError::from_sqlx)?;
    Ok(row.map(|(a, b, c, d, e)| [a, b, c, d, e]))
}

/// A new password as `AuthUtils::updatePassword` stores it: the lockout counters reset and,
/// when OpenEMR keeps a password history, each older hash moved one place down.
pub async fn replace_password(
    conn: &mut MySqlConnection,
    id: i64,
    hash: &str,
    keep_history: bool,
) -> Result<(), StorageError> {
    let history = if keep_history {
        ", password_history4 = password_history3, password_history3 = password_history2, \
         password_history2 = password_history1, password_history1 = password"
    } else {
        ""
    };
    // MariaDB assigns left to right, so each history column reads its neighbour before it moves.
    let sql = format!(
        "UPDATE users_secure SET last_update_password = NOW(), login_fail_counter = 0, last_login_fail = NULL, \
         auto_block_emailed = 0{history}, password = ? WHERE id = ?"
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(hash)
        .bind(id)
        .execute(conn)
        .await
        .map_err(StorageError::from_sqlx)?;
    Ok(())
}

/// Whether some account already has this auth group (OpenEMR's screen offers only those).
pub async fn auth_group_exists(pool: &MySqlPool, name: &str) -> Result<bool, StorageError> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM `groups` WHERE name = ?)")
        .bind(name)
        .fetch_one(pool)
        .await
        .map_err(StorageError::from_sqlx)
}

/// The auth group row every user needs to sign in (`groups`).
pub async fn insert_auth_group(
    conn: &mut MySqlConnection,
    name: &str,
    username: &str,
) -> Result<(), StorageError> {
    sqlx::query("INSERT INTO `groups` (name, user) VALUES (?, ?)")
        .bind(name)
        .bind(username)
        .execute(conn)
        .await
        .map_err(StorageError::from_sqlx)?;
    Ok(())
}

/// The facilities a user may work in when OpenEMR restricts users to facilities.
pub async fn facility_access(conn: &mut MySqlConnection, id: i64) -> Result<Vec<i64>, StorageError> {
    sqlx::query_scalar(
        "SELECT DISTINCT CAST(facility_id AS SIGNED) FROM users_facility \
         WHERE tablename = 'users' AND table_id = ? ORDER BY 1",
    )
    .bind(id)
    .fetch_all(conn)
    .await
    .map_err(StorageError::from_sqlx)
}

/// Replaces the user's facility rows (without a warehouse), leaving warehouse rows alone.
pub async fn set_facility_access(
    conn: &mut MySqlConnection,
    id: i64,
    facilities: &[i64],
) -> Result<(), StorageError> {
    sqlx::query(
        "DELETE FROM users_facility WHERE tablename = 'users' AND table_id = ? AND warehouse_id = ''",
    )
    .bind(id)
    .execute(&mut *conn)
    .await
    .map_err(StorageError::from_sqlx)?;
    for facility in facilities {
        sqlx::query(
            "INSERT INTO users_facility (tablename, table_id, facility_id, warehouse_id) VALUES ('users', ?, ?, '')",
        )
        .bind(id)
        .bind(facility)
        .execute(&mut *conn)
        .await
        .map_err(StorageError::from_sqlx)?;
    }
    Ok(())
}

/// OpenEMR's `gacl_protect` user setting, which keeps a user in the Administrators group.
pub async fn is_protected(conn: &mut MySqlConnection, id: i64) -> Result<bool, StorageError> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM user_settings WHERE setting_user = ? AND setting_label = 'gacl_protect' \
         AND setting_value = '1')",
    )
    .bind(id)
    .fetch_one(conn)
    .await
    .map_err(StorageError::from_sqlx)
}

fn bind<'q>(query: Query<'q>, (_, value): &'q (Field, Value)) -> Query<'q> {
    match value {
        Value::Text(text) => query.bind(text.as_str()),
        Value::Flag(flag) => query.bind(i8::from(*flag)),
        Value::Number(n) => query.bind(*n),
    }
}
