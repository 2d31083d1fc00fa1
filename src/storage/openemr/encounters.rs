use chrono::NaiveDateTime;
use sqlx::{MySql, MySqlConnection, MySqlPool, QueryBuilder};

use crate::{
    domain::{encounter::NewEncounter, patient::Pid, user::Caller},
    storage::{StorageError, openemr::uuid_registry},
};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EncounterRow {
    pub id: i64,
    pub encounter: i64,
    pub uuid: Option<Vec<u8>>,
    pub pid: i64,
    pub date: Option<NaiveDateTime>,
    pub date_end: Option<NaiveDateTime>,
    pub reason: Option<String>,
    pub facility_id: i32,
    pub facility: Option<String>,
    pub provider_id: Option<i32>,
    pub provider_name: Option<String>,
    /// The provider's and the facility's uuids, which FHIR references use.
    pub provider_uuid: Option<Vec<u8>>,
    pub facility_uuid: Option<Vec<u8>>,
    pub pc_catid: i32,
    pub category: Option<String>,
    pub class_code: String,
    pub sensitivity: Option<String>,
}

const SELECT: &str = "SELECT fe.id, fe.encounter, fe.uuid, fe.pid, \
     NULLIF(fe.date, '0000-00-00 00:00:00') AS date, NULLIF(fe.date_end, '0000-00-00 00:00:00') AS date_end, \
     fe.reason, fe.facility_id, fe.facility, fe.provider_id, \
     NULLIF(TRIM(CONCAT(COALESCE(u.fname, ''), ' ', COALESCE(u.lname, ''))), '') AS provider_name, \
     u.uuid AS provider_uuid, fac.uuid AS facility_uuid, \
     fe.pc_catid, c.pc_catname AS category, fe.class_code, fe.sensitivity \
     FROM form_encounter fe \
     LEFT JOIN users u ON u.id = fe.provider_id \
     LEFT JOIN facility fac ON fac.id = fe.facility_id \
     LEFT JOIN openemr_postcalendar_categories c ON c.pc_catid = fe.pc_catid";

/// Which of a patient's encounters a caller may see.
#[derive(Debug, Clone)]
pub struct Scope {
    /// One provider's encounters only (OpenEMR's `encounters|notes`).
    pub only_provider: Option<i64>,
    /// Sensitivities the caller may see; encounters without one are always shown, and values
    /// OpenEMR's default ACL does not know count as `high`.
    pub sensitivities: Vec<&'static str>,
}

pub(crate) fn push_patient_filter(q: &mut QueryBuilder<MySql>, pid: Pid, scope: &Scope) {
    q.push(" WHERE fe.pid = ").push_bind(pid.0);
    if let Some(provider) = scope.only_provider {
        q.push(" AND fe.provider_id = ").push_bind(provider);
    }
    q.push(" AND (fe.sensitivity IS NULL OR fe.sensitivity = ''");
    if !scope.sensitivities.is_empty() {
        q.push(" OR fe.sensitivity IN (");
        let mut list = q.separated(", ");
        for s in &scope.sensitivities {
            list.push_bind(*s);
        }
        q.push(")");
    }
    if scope.sensitivities.contains(&"high") {
        q.push(" OR fe.sensitivity NOT IN ('normal', 'high')");
    }
    q.push(")");
}

pub async fn count_for_patient(pool: &MySqlPool, pid: Pid, scope: &Scope) -> Result<i64, StorageError> {
    let mut q = QueryBuilder::new("SELECT COUNT(*) FROM form_encounter fe");
    push_patient_filter(&mut q, pid, scope);
    q.build_query_scalar().fetch_one(pool).await.map_err(StorageError::from_sqlx)
}

/// Newest first.
pub async fn list_for_patient(
    pool: &MySqlPool,
    pid: Pid,
    scope: &Scope,
    limit: u32,
    offset: u64,
) -> Result<Vec<EncounterRow>, StorageError> {
    let mut q = QueryBuilder::new(SELECT);
    push_patient_filter(&mut q, pid, scope);
    q.push(" ORDER BY fe.date DESC, fe.encounter DESC LIMIT ").push_bind(i64::from(limit));
    q.push(" OFFSET ").push_bind(offset as i64);
    q.build_query_as().fetch_all(pool).await.map_err(StorageError::from_sqlx)
}

/// By encounter number, the key OpenEMR uses everywhere but form_encounter's own id.
/// The encounter number of the encounter OpenEMR's FHIR API knows by `uuid`.
pub async fn number_by_uuid(pool: &MySqlPool, uuid: &[u8; 16]) -> Result<Option<i64>, StorageError> {
    sqlx::query_scalar("SELECT encounter FROM form_encounter WHERE uuid = ?")
        .bind(&uuid[..])
        .fetch_optional(pool)
        .await
        .map_err(StorageError::from_sqlx)
}

pub async fn get(pool: &MySqlPool, encounter: i64) -> Result<Option<EncounterRow>, StorageError> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("{SELECT} WHERE fe.encounter = ?")))
        .bind(encounter)
        .fetch_optional(pool)
        .await
        .map_err(StorageError::from_sqlx)
}

/// A patient's encounter: OpenEMR indexes `(pid, encounter)` but not the number alone, so with the
/// pid known this is an index lookup where [`get`] reads the table.
pub async fn get_of(
    pool: &MySqlPool,
    pid: i64,
    encounter: i64,
) -> Result<Option<EncounterRow>, StorageError> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("{SELECT} WHERE fe.pid = ? AND fe.encounter = ?")))
        .bind(pid)
        .bind(encounter)
        .fetch_optional(pool)
        .await
        .map_err(StorageError::from_sqlx)
}

pub async fn get_in(
    conn: &mut MySqlConnection,
    encounter: i64,
) -> Result<Option<EncounterRow>, StorageError> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("{SELECT} WHERE fe.encounter = ?")))
        .bind(encounter)
        .fetch_optional(conn)
        .await
        .map_err(StorageError::from_sqlx)
}

/// EncounterService::insertEncounter: a registered uuid, the form_encounter row (facility name and
/// place of service copied from the facility, as save.php does) and its companion `forms` row.
pub async fn insert(
    conn: &mut MySqlConnection,
    number: i64,
    e: &NewEncounter,
    caller: &Caller,
) -> Result<(), StorageError> {
    let uuid = uuid_registry::create(conn, "form_encounter", "id").await?;
    let done = sqlx::query(
        "INSERT INTO form_encounter (uuid, date, reason, facility, facility_id, billing_facility, pid, encounter, \
         sensitivity, pc_catid, provider_id, class_code, pos_code, date_end) \
         SELECT ?, ?, ?, f.name, f.id, ?, ?, ?, ?, ?, ?, ?, f.pos_code, NULL FROM facility f WHERE f.id = ?",
    )
    .bind(&uuid[..])
    .bind(e.date)
    .bind(&e.reason)
    .bind(e.billing_facility_id)
    .bind(e.pid.0)
    .bind(number)
    .bind(&e.sensitivity)
    .bind(e.pc_catid)
    .bind(e.provider_id)
    .bind(&e.class_code)
    .bind(e.facility_id)
    .execute(&mut *conn)
    .await
    .map_err(StorageError::from_sqlx)?;
    let form_id = done.last_insert_id();
    sqlx::query(
        "INSERT INTO forms (date, encounter, form_name, form_id, pid, user, groupname, authorized, deleted, formdir, \
         provider_id) VALUES (?, ?, 'New Patient Encounter', ?, ?, ?, ?, 1, 0, 'newpatient', ?)",
    )
    .bind(e.date)
    .bind(number)
    .bind(form_id)
    .bind(e.pid.0)
    .bind(&caller.username)
    .bind(&caller.auth_group)
    .bind(e.provider_id)
    .execute(conn)
    .await
    .map_err(StorageError::from_sqlx)?;
    Ok(())
}

pub async fn category_exists(pool: &MySqlPool, pc_catid: i64) -> Result<bool, StorageError> {
    let found: Option<i64> =
        sqlx::query_scalar("SELECT 1 FROM openemr_postcalendar_categories WHERE pc_catid = ?")
            .bind(pc_catid)
            .fetch_optional(pool)
            .await
            .map_err(StorageError::from_sqlx)?;
    Ok(found.is_some())
}

pub async fn class_code_exists(pool: &MySqlPool, code: &str) -> Result<bool, StorageError> {
    let found: Option<i64> = sqlx::query_scalar(
        "SELECT 1 FROM list_options WHERE list_id = '_ActEncounterCode' AND option_id = ? AND activity = 1",
    )
    .bind(code)
    .fetch_optional(pool)
    .await
    .map_err(StorageError::from_sqlx)?;
    Ok(found.is_some())
}

/// The patient's latest encounter dated `day`, as `todaysEncounterCheck()` looks for one.
pub async fn today_for(
    conn: &mut MySqlConnection,
    pid: Pid,
    day: chrono::NaiveDate,
) -> Result<Option<i64>, StorageError> {
    sqlx::query_scalar(
        "SELECT encounter FROM form_encounter WHERE pid = ? AND date >= ? AND date < ? ORDER BY encounter DESC LIMIT 1",
    )
    .bind(pid.0)
    .bind(day)
    .bind(day.succ_opt().unwrap_or(day))
    .fetch_optional(conn)
    .await
    .map_err(StorageError::from_sqlx)
}

/// Every encounter of these patients, whatever its provider or sensitivity (bulk export).
pub async fn for_patients(pool: &MySqlPool, pids: &[i64]) -> Result<Vec<EncounterRow>, StorageError> {
    crate::storage::of_patients(pool, SELECT, "fe.pid", pids, "fe.pid, fe.date, fe.encounter").await
}

/// The latest encounter in the 30 days up to `at` (`receive_hl7_results` links a results-only
/// order to it): number and provider.
pub async fn recent_before(
    conn: &mut MySqlConnection,
    pid: i64,
    at: NaiveDateTime,
) -> Result<Option<(i64, i64)>, StorageError> {
    sqlx::query_as(
        "SELECT encounter, CAST(COALESCE(provider_id, 0) AS SIGNED) FROM form_encounter \
         WHERE pid = ? AND date <= ? AND DATE_ADD(date, INTERVAL 30 DAY) > ? \
         ORDER BY date DESC, encounter DESC LIMIT 1",
    )
    .bind(pid)
    .bind(at)
    .bind(at)
    .fetch_optional(conn)
    .await
    .map_err(StorageError::from_sqlx)
}
