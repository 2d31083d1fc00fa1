use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
use sqlx::{MySql, MySqlConnection, MySqlPool, QueryBuilder};

use crate::{
    domain::{patient::Pid, user::Caller},
    php,
    storage::{StorageError, openemr::uuid_registry},
};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EventRow {
    pub pc_eid: u32,
    pub uuid: Option<Vec<u8>>,
    pub pc_catid: i32,
    pub category: Option<String>,
    pub cattype: Option<i32>,
    pub pc_aid: Option<String>,
    pub provider_name: Option<String>,
    pub pc_pid: Option<String>,
    pub patient_name: Option<String>,
    pub pc_title: Option<String>,
    pub pc_time: Option<NaiveDateTime>,
    pub pc_hometext: Option<String>,
    pub event_date: Option<NaiveDate>,
    pub end_date: Option<NaiveDate>,
    pub pc_duration: i64,
    pub pc_recurrtype: i32,
    pub pc_recurrspec: Option<String>,
    pub start_time: Option<NaiveTime>,
    pub pc_alldayevent: i32,
    pub pc_eventstatus: i32,
    pub pc_apptstatus: String,
    pub pc_prefcatid: i32,
    pub pc_facility: i32,
    pub facility: Option<String>,
    pub pc_room: String,
    /// For FHIR references: the patient's, provider's and facility's uuids, the provider's NPI
    /// and the category's constant id.
    pub patient_uuid: Option<Vec<u8>>,
    pub provider_uuid: Option<Vec<u8>>,
    pub provider_npi: Option<String>,
    pub facility_uuid: Option<Vec<u8>>,
    pub category_constant: Option<String>,
}

impl EventRow {
    /// `pc_pid` as a patient, for patient appointments (provider events have `''`).
    pub fn patient(&self) -> Option<Pid> {
        self.pc_pid.as_deref().and_then(|p| p.trim().parse().ok()).filter(|p| *p > 0).map(Pid)
    }

    pub fn provider(&self) -> Option<i64> {
        self.pc_aid.as_deref().and_then(|a| a.trim().parse().ok())
    }
}

/// Zero dates and out-of-range times in legacy rows read as NULL rather than failing the read.
const SELECT: &str = "SELECT e.pc_eid, e.uuid, e.pc_catid, c.pc_catname AS category, c.pc_cattype AS cattype, \
     e.pc_aid, NULLIF(TRIM(CONCAT(COALESCE(u.fname, ''), ' ', COALESCE(u.lname, ''))), '') AS provider_name, \
     e.pc_pid, NULLIF(TRIM(CONCAT(COALESCE(p.fname, ''), ' ', COALESCE(p.lname, ''))), '') AS patient_name, \
     e.pc_title, e.pc_time, e.pc_hometext, \
     NULLIF(e.pc_eventDate, '0000-00-00') AS event_date, NULLIF(e.pc_endDate, '0000-00-00') AS end_date, \
     e.pc_duration, e.pc_recurrtype, e.pc_recurrspec, \
     IF(e.pc_startTime BETWEEN '00:00:00' AND '23:59:59', e.pc_startTime, NULL) AS start_time, \
     e.pc_alldayevent, e.pc_eventstatus, e.pc_apptstatus, e.pc_prefcatid, e.pc_facility, \
     f.name AS facility, e.pc_room, p.uuid AS patient_uuid, u.uuid AS provider_uuid, u.npi AS provider_npi, \
     f.uuid AS facility_uuid, c.pc_constant_id AS category_constant \
     FROM openemr_postcalendar_events e \
     LEFT JOIN openemr_postcalendar_categories c ON c.pc_catid = e.pc_catid \
     LEFT JOIN users u ON u.id = e.pc_aid \
     LEFT JOIN patient_data p ON p.pid = e.pc_pid AND e.pc_pid <> '' \
     LEFT JOIN facility f ON f.id = e.pc_facility";

/// The category ids to look a provider's events up by, so they are found through the
/// `basic_event` index (`pc_catid, pc_aid, pc_eventDate, pc_endDate, pc_eventstatus, …`), whose
/// first column is the category: every calendar category, and 0 for events saved without one.
/// (`SELECT DISTINCT pc_catid` over the events would be exact, but as a prepared statement
/// MariaDB reads every row of the table for it instead of skipping through the index.)
async fn categories_in_use(conn: &mut MySqlConnection) -> Result<Vec<i64>, StorageError> {
    sqlx::query_scalar("SELECT 0 UNION SELECT CAST(pc_catid AS SIGNED) FROM openemr_postcalendar_categories")
        .fetch_all(conn)
        .await
        .map_err(StorageError::from_sqlx)
}

/// `WHERE` for a provider's events and the clinic's (provider `0`: holidays and closures) that
/// OpenEMR's calendar shows (`pc_eventstatus = 1`), through the `basic_event` index.
async fn provider_events(
    conn: &mut MySqlConnection,
    provider: i64,
) -> Result<Option<QueryBuilder<MySql>>, StorageError> {
    let categories = categories_in_use(conn).await?;
    if categories.is_empty() {
        return Ok(None);
    }
    let mut q = QueryBuilder::new(SELECT);
    q.push(" WHERE e.pc_catid IN (");
    let mut list = q.separated(", ");
    for c in categories {
        list.push_bind(c);
    }
    q.push(") AND e.pc_aid IN (").push_bind(provider.to_string()).push(", '0') AND e.pc_eventstatus = 1");
    Ok(Some(q))
}

/// A provider's (and the clinic's) one-off events dated in `[from, to]`: an index range.
pub async fn one_off_for_provider(
    conn: &mut MySqlConnection,
    provider: i64,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<EventRow>, StorageError> {
    let Some(mut q) = provider_events(conn, provider).await? else { return Ok(Vec::new()) };
    q.push(" AND e.pc_eventDate BETWEEN ").push_bind(from).push(" AND ").push_bind(to);
    q.push(" AND e.pc_recurrtype = 0");
    q.build_query_as().fetch_all(conn).await.map_err(StorageError::from_sqlx)
}

/// A provider's (and the clinic's) repeating events whose run overlaps `[from, to]`. The index
/// has the end date, so one-off events (no end date) are passed over without reading their rows;
/// still, every earlier event of the provider is an index entry to pass over.
pub async fn repeating_for_provider(
    conn: &mut MySqlConnection,
    provider: i64,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<EventRow>, StorageError> {
    let Some(mut q) = provider_events(conn, provider).await? else { return Ok(Vec::new()) };
    q.push(" AND e.pc_eventDate <= ").push_bind(to).push(" AND e.pc_endDate >= ").push_bind(from);
    q.push(" AND e.pc_recurrtype > 0");
    q.build_query_as().fetch_all(conn).await.map_err(StorageError::from_sqlx)
}

#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    pub provider: Option<i64>,
    pub facility: Option<i64>,
    pub patient: Option<Pid>,
    pub status: Option<String>,
    pub category: Option<i64>,
}

/// One-off patient appointments dated in `[from, to]` (the `pc_eventDate` index finds them), as
/// OpenEMR's `fetchAppointments()` selects them.
pub async fn one_off_appointments(
    pool: &MySqlPool,
    from: NaiveDate,
    to: NaiveDate,
    filter: &ListFilter,
) -> Result<Vec<EventRow>, StorageError> {
    let mut q = QueryBuilder::new(SELECT);
    q.push(" WHERE e.pc_recurrtype = 0 AND e.pc_eventDate BETWEEN ")
        .push_bind(from)
        .push(" AND ")
        .push_bind(to);
    q.push(" AND e.pc_pid <> '' AND e.pc_eventstatus = 1");
    if let Some(provider) = filter.provider {
        q.push(" AND e.pc_aid = ").push_bind(provider.to_string());
    }
    if let Some(facility) = filter.facility {
        q.push(" AND e.pc_facility = ").push_bind(facility);
    }
    if let Some(pid) = filter.patient {
        q.push(" AND e.pc_pid = ").push_bind(pid.0.to_string());
    }
    if let Some(status) = &filter.status {
        q.push(" AND e.pc_apptstatus = ").push_bind(status.clone());
    }
    if let Some(category) = filter.category {
        q.push(" AND e.pc_catid = ").push_bind(category);
    }
    q.build_query_as().fetch_all(pool).await.map_err(StorageError::from_sqlx)
}

/// Every repeating event OpenEMR's calendar shows. No index covers `pc_recurrtype`, so this
/// reads the whole table; callers cache it.
pub async fn repeating(pool: &MySqlPool) -> Result<Vec<EventRow>, StorageError> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT} WHERE e.pc_recurrtype > 0 AND e.pc_eventstatus = 1"
    )))
    .fetch_all(pool)
    .await
    .map_err(StorageError::from_sqlx)
}

impl ListFilter {
    /// The same filter as [`one_off_appointments`] applies in SQL, for cached rows.
    pub fn matches(&self, row: &EventRow) -> bool {
        self.provider.is_none_or(|p| row.provider() == Some(p))
            && self.facility.is_none_or(|f| i64::from(row.pc_facility) == f)
            && self.patient.is_none_or(|p| row.patient() == Some(p))
            && self.status.as_ref().is_none_or(|s| &row.pc_apptstatus == s)
            && self.category.is_none_or(|c| i64::from(row.pc_catid) == c)
    }
}

pub async fn get(conn: &mut MySqlConnection, eid: u32) -> Result<Option<EventRow>, StorageError> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("{SELECT} WHERE e.pc_eid = ?")))
        .bind(eid)
        .fetch_optional(conn)
        .await
        .map_err(StorageError::from_sqlx)
}

/// Locks the event row until the transaction ends, so two changes to one appointment queue.
pub async fn lock(conn: &mut MySqlConnection, eid: u32) -> Result<bool, StorageError> {
    let found: Option<u32> =
        sqlx::query_scalar("SELECT pc_eid FROM openemr_postcalendar_events WHERE pc_eid = ? FOR UPDATE")
            .bind(eid)
            .fetch_optional(conn)
            .await
            .map_err(StorageError::from_sqlx)?;
    Ok(found.is_some())
}

/// One patient appointment as the sidecar books it.
#[derive(Debug, Clone)]
pub struct Insert<'a> {
    pub pid: Pid,
    pub provider_id: i64,
    pub facility_id: i64,
    pub category_id: i64,
    pub title: &'a str,
    pub reason: &'a str,
    pub date: NaiveDate,
    pub start: NaiveTime,
    pub minutes: u32,
    pub status: &'a str,
    pub room: &'a str,
}

/// `InsertEvent()`'s row plus what it leaves out: a registered uuid, `pc_eventstatus = 1` (the
/// calendar shows nothing else) and every NOT NULL column OpenEMR relies on `sql_mode = ''` for.
pub async fn insert(
    conn: &mut MySqlConnection,
    e: &Insert<'_>,
    caller: &Caller,
) -> Result<u32, StorageError> {
    let uuid = uuid_registry::create(conn, "openemr_postcalendar_events", "pc_eid").await?;
    let end = e.start + chrono::Duration::minutes(i64::from(e.minutes));
    let done = sqlx::query(
        "INSERT INTO openemr_postcalendar_events (uuid, pc_catid, pc_multiple, pc_aid, pc_pid, pc_gid, pc_title, \
         pc_time, pc_hometext, pc_informant, pc_eventDate, pc_endDate, pc_duration, pc_recurrtype, pc_recurrspec, \
         pc_recurrfreq, pc_startTime, pc_endTime, pc_alldayevent, pc_location, pc_eventstatus, pc_sharing, \
         pc_apptstatus, pc_prefcatid, pc_facility, pc_billing_location, pc_room) \
         VALUES (?, ?, 0, ?, ?, 0, ?, NOW(), ?, ?, ?, NULL, ?, 0, ?, 0, ?, ?, 0, ?, 1, 1, ?, 0, ?, ?, ?)",
    )
    .bind(&uuid[..])
    .bind(e.category_id)
    .bind(e.provider_id.to_string())
    .bind(e.pid.0.to_string())
    .bind(e.title)
    .bind(e.reason)
    .bind(caller.user_id.0.to_string())
    .bind(e.date)
    .bind(i64::from(e.minutes) * 60)
    .bind(php::calendar::NO_REPEAT)
    .bind(e.start)
    .bind(end)
    .bind(php::calendar::EMPTY_LOCATION)
    .bind(e.status)
    .bind(e.facility_id)
    .bind(e.facility_id)
    .bind(e.room)
    .execute(conn)
    .await
    .map_err(StorageError::from_sqlx)?;
    u32::try_from(done.last_insert_id()).map_err(|_| StorageError::Unavailable("pc_eid out of range".into()))
}

/// Moves an appointment to another time, length or provider (a reschedule).
pub async fn reschedule(
    conn: &mut MySqlConnection,
    eid: u32,
    provider_id: i64,
    date: NaiveDate,
    start: NaiveTime,
    minutes: u32,
) -> Result<(), StorageError> {
    let end = start + chrono::Duration::minutes(i64::from(minutes));
    sqlx::query(
        "UPDATE openemr_postcalendar_events SET pc_aid = ?, pc_eventDate = ?, pc_startTime = ?, pc_endTime = ?, \
         pc_duration = ? WHERE pc_eid = ?",
    )
    .bind(provider_id.to_string())
    .bind(date)
    .bind(start)
    .bind(end)
    .bind(i64::from(minutes) * 60)
    .bind(eid)
    .execute(conn)
    .await
    .map_err(StorageError::from_sqlx)?;
    Ok(())
}

pub async fn set_reason(conn: &mut MySqlConnection, eid: u32, reason: &str) -> Result<(), StorageError> {
    sqlx::query("UPDATE openemr_postcalendar_events SET pc_hometext = ? WHERE pc_eid = ?")
        .bind(reason)
        .bind(eid)
        .execute(conn)
        .await
        .map_err(StorageError::from_sqlx)?;
    Ok(())
}

/// Status and room as `manage_tracker_status()` copies them back into the event.
pub async fn set_status_and_room(
    conn: &mut MySqlConnection,
    eid: u32,
    status: &str,
    room: &str,
) -> Result<(), StorageError> {
    sqlx::query("UPDATE openemr_postcalendar_events SET pc_apptstatus = ?, pc_room = ? WHERE pc_eid = ?")
        .bind(status)
        .bind(room)
        .bind(eid)
        .execute(conn)
        .await
        .map_err(StorageError::from_sqlx)?;
    Ok(())
}

/// How far back the no-show sweep looks, so turning it on does not rewrite years of history.
const NO_SHOW_LOOKBACK_DAYS: u64 = 7;

/// One-off patient appointments in one of `codes` that ended before `now` (within the lookback).
pub async fn ended_unarrived(
    conn: &mut MySqlConnection,
    now: NaiveDateTime,
    codes: &[String],
    limit: u32,
) -> Result<Vec<u32>, StorageError> {
    if codes.is_empty() {
        return Ok(Vec::new());
    }
    let since = now.date().checked_sub_days(chrono::Days::new(NO_SHOW_LOOKBACK_DAYS)).unwrap_or(now.date());
    let mut q =
        QueryBuilder::new("SELECT pc_eid FROM openemr_postcalendar_events WHERE pc_eventDate BETWEEN ");
    q.push_bind(since).push(" AND ").push_bind(now.date());
    q.push(" AND pc_recurrtype = 0 AND pc_eventstatus = 1 AND pc_pid <> '' AND pc_apptstatus IN (");
    let mut list = q.separated(", ");
    for code in codes {
        list.push_bind(code.clone());
    }
    q.push(") AND TIMESTAMP(pc_eventDate, pc_endTime) < ").push_bind(now);
    q.push(" ORDER BY pc_eid LIMIT ").push_bind(limit);
    q.build_query_scalar().fetch_all(conn).await.map_err(StorageError::from_sqlx)
}

/// The appointment with this uuid (OpenEMR's FHIR Appointment id).
pub async fn id_by_uuid(pool: &MySqlPool, uuid: &[u8; 16]) -> Result<Option<u32>, StorageError> {
    sqlx::query_scalar("SELECT pc_eid FROM openemr_postcalendar_events WHERE uuid = ?")
        .bind(&uuid[..])
        .fetch_optional(pool)
        .await
        .map_err(StorageError::from_sqlx)
}

/// A patient's appointments as OpenEMR's FHIR API lists them, one per event row (a repeating
/// appointment once, at its first date), newest first, optionally within dates; and their count.
pub async fn for_patient(
    pool: &MySqlPool,
    pid: Pid,
    dates: (Option<NaiveDate>, Option<NaiveDate>),
    provider: Option<i64>,
    limit: u32,
    offset: u64,
) -> Result<(Vec<EventRow>, i64), StorageError> {
    let filter = |q: &mut QueryBuilder<MySql>| {
        q.push(" WHERE e.pc_pid = ").push_bind(pid.0.to_string()).push(" AND e.pc_eventstatus = 1");
        if let Some(from) = dates.0 {
            q.push(" AND e.pc_eventDate >= ").push_bind(from);
        }
        if let Some(to) = dates.1 {
            q.push(" AND e.pc_eventDate <= ").push_bind(to);
        }
        if let Some(provider) = provider {
            q.push(" AND e.pc_aid = ").push_bind(provider.to_string());
        }
    };
    let mut q = QueryBuilder::new(SELECT);
    filter(&mut q);
    q.push(" ORDER BY e.pc_eventDate DESC, e.pc_startTime DESC, e.pc_eid DESC LIMIT ").push_bind(limit);
    q.push(" OFFSET ").push_bind(offset);
    let rows = q.build_query_as().fetch_all(pool).await.map_err(StorageError::from_sqlx)?;
    let mut count = QueryBuilder::new("SELECT COUNT(*) FROM openemr_postcalendar_events e");
    filter(&mut count);
    let total = count.build_query_scalar().fetch_one(pool).await.map_err(StorageError::from_sqlx)?;
    Ok((rows, total))
}
