use chrono::{NaiveDate, NaiveDateTime};
use sqlx::{MySqlConnection, MySqlPool, QueryBuilder};

use crate::{
    domain::{
        patient::{Demographics, Pid},
        user::UserId,
    },
    storage::{StorageError, openemr::uuid_registry},
};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PatientRow {
    pub pid: i64,
    pub uuid: Option<Vec<u8>>,
    pub pubpid: String,
    pub fname: String,
    pub mname: String,
    pub lname: String,
    pub preferred_name: Option<String>,
    pub dob: Option<NaiveDate>,
    pub sex: String,
    pub phone_home: String,
    pub phone_cell: String,
    pub phone_biz: String,
    pub email: String,
    pub street: String,
    pub city: String,
    pub state: String,
    pub postal_code: String,
    pub provider_id: Option<i32>,
    pub regdate: Option<NaiveDateTime>,
    pub date: Option<NaiveDateTime>,
    pub last_updated: Option<NaiveDateTime>,
    pub deceased_date: Option<NaiveDateTime>,
}

/// Zero dates, which legacy OpenEMR rows hold, read as NULL.
const COLUMNS: &str = "pid, uuid, pubpid, fname, mname, lname, preferred_name, NULLIF(DOB, '0000-00-00') AS dob, \
     sex, phone_home, phone_cell, phone_biz, email, street, city, state, postal_code, providerID AS provider_id, \
     NULLIF(regdate, '0000-00-00 00:00:00') AS regdate, NULLIF(date, '0000-00-00 00:00:00') AS date, \
     last_updated, NULLIF(deceased_date, '0000-00-00 00:00:00') AS deceased_date";

pub async fn get(pool: &MySqlPool, pid: Pid) -> Result<Option<PatientRow>, StorageError> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM patient_data WHERE pid = ?")))
        .bind(pid.0)
        .fetch_optional(pool)
        .await
        .map_err(StorageError::from_sqlx)
}

/// The patient OpenEMR's APIs call `uuid` (16 bytes as stored).
pub async fn pid_by_uuid(pool: &MySqlPool, uuid: &[u8; 16]) -> Result<Option<Pid>, StorageError> {
    let pid: Option<i64> = sqlx::query_scalar("SELECT pid FROM patient_data WHERE uuid = ?")
        .bind(&uuid[..])
        .fetch_optional(pool)
        .await
        .map_err(StorageError::from_sqlx)?;
    Ok(pid.map(Pid))
}

pub async fn uuid_by_pid(pool: &MySqlPool, pid: Pid) -> Result<Option<[u8; 16]>, StorageError> {
    let uuid: Option<Option<Vec<u8>>> = sqlx::query_scalar("SELECT uuid FROM patient_data WHERE pid = ?")
        .bind(pid.0)
        .fetch_optional(pool)
        .await
        .map_err(StorageError::from_sqlx)?;
    Ok(uuid.flatten().and_then(|bytes| <[u8; 16]>::try_from(bytes).ok()).filter(|b| b != &[0; 16]))
}

/// The row as the caller's transaction sees it.
pub async fn get_in(conn: &mut MySqlConnection, pid: Pid) -> Result<Option<PatientRow>, StorageError> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM patient_data WHERE pid = ?")))
        .bind(pid.0)
        .fetch_optional(conn)
        .await
        .map_err(StorageError::from_sqlx)
}

/// The rows for `pids`, in the order given.
pub async fn get_many(pool: &MySqlPool, pids: &[i64]) -> Result<Vec<PatientRow>, StorageError> {
    if pids.is_empty() {
        return Ok(Vec::new());
    }
    let mut q = QueryBuilder::new(format!("SELECT {COLUMNS} FROM patient_data WHERE pid IN ("));
    let mut list = q.separated(", ");
    for pid in pids {
        list.push_bind(pid);
    }
    q.push(")");
    let mut rows: Vec<PatientRow> =
        q.build_query_as().fetch_all(pool).await.map_err(StorageError::from_sqlx)?;
    rows.sort_by_key(|r| pids.iter().position(|p| *p == r.pid));
    Ok(rows)
}

/// Rows OpenEMR or the sidecar changed at or after `since` (all rows when `None`).
pub async fn changed_since(
    pool: &MySqlPool,
    since: Option<NaiveDateTime>,
) -> Result<Vec<PatientRow>, StorageError> {
    let sql = format!("SELECT {COLUMNS} FROM patient_data WHERE ? IS NULL OR last_updated >= ?");
    sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(since)
        .bind(since)
        .fetch_all(pool)
        .await
        .map_err(StorageError::from_sqlx)
}

/// Up to `limit` patients with a pid above `after`, in pid order.
pub async fn page_after(pool: &MySqlPool, after: i64, limit: u32) -> Result<Vec<PatientRow>, StorageError> {
    let sql = format!("SELECT {COLUMNS} FROM patient_data WHERE pid > ? ORDER BY pid LIMIT ?");
    sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(after)
        .bind(limit)
        .fetch_all(pool)
        .await
        .map_err(StorageError::from_sqlx)
}

pub async fn newest_update(pool: &MySqlPool) -> Result<Option<NaiveDateTime>, StorageError> {
    sqlx::query_scalar("SELECT MAX(last_updated) FROM patient_data")
        .fetch_one(pool)
        .await
        .map_err(StorageError::from_sqlx)
}

pub async fn all_pids(pool: &MySqlPool) -> Result<Vec<i64>, StorageError> {
    sqlx::query_scalar("SELECT pid FROM patient_data").fetch_all(pool).await.map_err(StorageError::from_sqlx)
}

/// Every patient, or one provider's (`providerID`).
pub async fn count_for(pool: &MySqlPool, provider: Option<i64>) -> Result<i64, StorageError> {
    sqlx::query_scalar("SELECT COUNT(*) FROM patient_data WHERE ? IS NULL OR providerID = ?")
        .bind(provider)
        .bind(provider)
        .fetch_one(pool)
        .await
        .map_err(StorageError::from_sqlx)
}

pub async fn count(pool: &MySqlPool) -> Result<i64, StorageError> {
    sqlx::query_scalar("SELECT COUNT(*) FROM patient_data")
        .fetch_one(pool)
        .await
        .map_err(StorageError::from_sqlx)
}

pub async fn sexes(pool: &MySqlPool) -> Result<Vec<String>, StorageError> {
    sqlx::query_scalar(
        "SELECT option_id FROM list_options WHERE list_id = 'sex' AND activity = 1 ORDER BY seq",
    )
    .fetch_all(pool)
    .await
    .map_err(StorageError::from_sqlx)
}

pub async fn pubpid_taken(
    conn: &mut MySqlConnection,
    pubpid: &str,
    except: Option<Pid>,
) -> Result<bool, StorageError> {
    let found: Option<i64> =
        sqlx::query_scalar("SELECT pid FROM patient_data WHERE pubpid = ? AND pid <> ? LIMIT 1")
            .bind(pubpid)
            .bind(except.map_or(-1, |p| p.0))
            .fetch_optional(conn)
            .await
            .map_err(StorageError::from_sqlx)?;
    Ok(found.is_some())
}

/// Inserts a patient as PatientService::databaseInsert does: pid = MAX(pid)+1 (the UNIQUE key on
/// pid is OpenEMR's only guard, so callers retry on a duplicate), a registered uuid, pubpid
/// defaulting to the pid, and an empty `history_data` row as the new-patient screen creates.
/// `above` is the highest pid other data still refers to: a deleted chart's pid is never handed to
/// a new patient while something points at it.
pub async fn insert(
    conn: &mut MySqlConnection,
    d: &Demographics,
    by: UserId,
    now: NaiveDateTime,
    above: i64,
) -> Result<Pid, StorageError> {
    let pid: i64 = sqlx::query_scalar("SELECT GREATEST(COALESCE(MAX(pid), 0), ?) + 1 FROM patient_data")
        .bind(above)
        .fetch_one(&mut *conn)
        .await
        .map_err(StorageError::from_sqlx)?;
    let uuid = uuid_registry::create(conn, "patient_data", "id").await?;
    let text = |v: &Option<String>| v.clone().unwrap_or_default();
    sqlx::query(
        "INSERT INTO patient_data (pid, uuid, pubpid, fname, mname, lname, preferred_name, DOB, sex, phone_home, \
         phone_cell, email, street, city, state, postal_code, providerID, date, regdate, created_by, updated_by) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(pid)
    .bind(&uuid[..])
    .bind(d.pubpid.clone().unwrap_or_else(|| pid.to_string()))
    .bind(text(&d.first_name))
    .bind(text(&d.middle_name))
    .bind(text(&d.last_name))
    .bind(&d.preferred_name)
    .bind(d.dob)
    .bind(text(&d.sex))
    .bind(text(&d.phone_home))
    .bind(text(&d.phone_cell))
    .bind(text(&d.email))
    .bind(text(&d.street))
    .bind(text(&d.city))
    .bind(text(&d.state))
    .bind(text(&d.postal_code))
    .bind(d.provider_id)
    .bind(now)
    .bind(now)
    .bind(by.0)
    .bind(by.0)
    .execute(&mut *conn)
    .await
    .map_err(StorageError::from_sqlx)?;
    let history_uuid = uuid_registry::create(conn, "history_data", "id").await?;
    sqlx::query("INSERT INTO history_data (pid, uuid, date) VALUES (?, ?, ?)")
        .bind(pid)
        .bind(&history_uuid[..])
        .bind(now)
        .execute(&mut *conn)
        .await
        .map_err(StorageError::from_sqlx)?;
    Ok(Pid(pid))
}

/// Updates only the fields given; `date` and `updated_by` record the change as OpenEMR does.
pub async fn update(
    conn: &mut MySqlConnection,
    pid: Pid,
    d: &Demographics,
    by: UserId,
    now: NaiveDateTime,
) -> Result<bool, StorageError> {
    let mut q = QueryBuilder::new("UPDATE patient_data SET date = ");
    q.push_bind(now).push(", updated_by = ").push_bind(by.0);
    let texts = [
        ("fname", &d.first_name),
        ("mname", &d.middle_name),
        ("lname", &d.last_name),
        ("preferred_name", &d.preferred_name),
        ("sex", &d.sex),
        ("pubpid", &d.pubpid),
        ("phone_home", &d.phone_home),
        ("phone_cell", &d.phone_cell),
        ("email", &d.email),
        ("street", &d.street),
        ("city", &d.city),
        ("state", &d.state),
        ("postal_code", &d.postal_code),
    ];
    for (column, value) in texts {
        if let Some(v) = value {
            q.push(format!(", {column} = ")).push_bind(v.clone());
        }
    }
    if let Some(dob) = d.dob {
        q.push(", DOB = ").push_bind(dob);
    }
    if let Some(provider) = d.provider_id {
        q.push(", providerID = ").push_bind(provider);
    }
    q.push(" WHERE pid = ").push_bind(pid.0);
    let done = q.build().execute(conn).await.map_err(StorageError::from_sqlx)?;
    Ok(done.rows_affected() > 0)
}

pub async fn has_clinical_history(conn: &mut MySqlConnection, pid: Pid) -> Result<bool, StorageError> {
    let found: Option<i64> = sqlx::query_scalar(
        "SELECT 1 FROM form_encounter WHERE pid = ? UNION ALL SELECT 1 FROM forms WHERE pid = ? LIMIT 1",
    )
    .bind(pid.0)
    .bind(pid.0)
    .fetch_optional(conn)
    .await
    .map_err(StorageError::from_sqlx)?;
    Ok(found.is_some())
}

pub async fn delete(conn: &mut MySqlConnection, pid: Pid) -> Result<bool, StorageError> {
    sqlx::query("DELETE FROM history_data WHERE pid = ?")
        .bind(pid.0)
        .execute(&mut *conn)
        .await
        .map_err(StorageError::from_sqlx)?;
    let done = sqlx::query("DELETE FROM patient_data WHERE pid = ?")
        .bind(pid.0)
        .execute(conn)
        .await
        .map_err(StorageError::from_sqlx)?;
    Ok(done.rows_affected() > 0)
}

/// Up to `limit` pids after `after`, in order: every patient, or one provider's (`providerID`).
pub async fn pids_after(
    pool: &MySqlPool,
    after: i64,
    limit: u32,
    provider: Option<i64>,
) -> Result<Vec<i64>, StorageError> {
    sqlx::query_scalar(
        "SELECT pid FROM patient_data WHERE pid > ? AND (? IS NULL OR providerID = ?) ORDER BY pid LIMIT ?",
    )
    .bind(after)
    .bind(provider)
    .bind(provider)
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await
    .map_err(StorageError::from_sqlx)
}

/// The uuids of one provider's patients (`providerID`), in pid order.
pub async fn uuids_of_provider(pool: &MySqlPool, provider: i64) -> Result<Vec<Vec<u8>>, StorageError> {
    sqlx::query_scalar("SELECT uuid FROM patient_data WHERE providerID = ? AND uuid IS NOT NULL ORDER BY pid")
        .bind(provider)
        .fetch_all(pool)
        .await
        .map_err(StorageError::from_sqlx)
}

/// Who a message's PID may be about.
pub struct MatchKeys<'a> {
    pub ssn: &'a str,
    pub first: &'a str,
    pub last: &'a str,
    pub dob: Option<NaiveDate>,
    pub chart: &'a str,
}

/// Up to three pids `match_patient` (receive_hl7_results.inc.php) takes as the same person: name
/// and birth date where neither side has another SSN, or the SSN with a name or the birth date;
/// plus the sender's record number as chart number with the family name or birth date.
pub async fn matching(pool: &MySqlPool, k: &MatchKeys<'_>) -> Result<Vec<i64>, StorageError> {
    sqlx::query_scalar(
        "SELECT pid FROM patient_data WHERE \
         ((ss = '' OR ? = '') AND fname <> '' AND fname = ? AND lname <> '' AND lname = ? AND DOB = ?) \
         OR (ss <> '' AND REPLACE(ss, '-', '') = ? AND ((fname <> '' AND fname = ?) OR (lname <> '' AND lname = ?) \
             OR DOB = ?)) \
         OR (pubpid <> '' AND pubpid = ? AND ((lname <> '' AND lname = ?) OR DOB = ?)) \
         ORDER BY pid LIMIT 3",
    )
    .bind(k.ssn)
    .bind(k.first)
    .bind(k.last)
    .bind(k.dob)
    .bind(k.ssn)
    .bind(k.first)
    .bind(k.last)
    .bind(k.dob)
    .bind(k.chart)
    .bind(k.last)
    .bind(k.dob)
    .fetch_all(pool)
    .await
    .map_err(StorageError::from_sqlx)
}

/// Up to three pids close enough that a person should decide (`match_patient`'s second query):
/// the same SSN, the same full name, or the same family name and birth date.
pub async fn resembling(pool: &MySqlPool, k: &MatchKeys<'_>) -> Result<Vec<i64>, StorageError> {
    sqlx::query_scalar(
        "SELECT pid FROM patient_data WHERE (ss <> '' AND REPLACE(ss, '-', '') = ?) \
         OR (fname <> '' AND fname = ? AND lname <> '' AND lname = ?) OR (lname <> '' AND lname = ? AND DOB = ?) \
         ORDER BY pid LIMIT 3",
    )
    .bind(k.ssn)
    .bind(k.first)
    .bind(k.last)
    .bind(k.last)
    .bind(k.dob)
    .fetch_all(pool)
    .await
    .map_err(StorageError::from_sqlx)
}
