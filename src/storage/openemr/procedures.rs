//! Lab orders and their results (`procedure_order`, `procedure_order_code`, `procedure_report`,
//! `procedure_result`), written as `receive_hl7_results.inc.php` writes them, with uuids.

use chrono::NaiveDateTime;
use sqlx::MySqlConnection;

use crate::storage::{StorageError, openemr::uuid_registry};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OrderRow {
    pub procedure_order_id: i64,
    pub patient_id: i64,
    pub provider_id: i64,
    pub encounter_id: i64,
}

const ORDER: &str = "SELECT procedure_order_id, patient_id, provider_id, encounter_id FROM procedure_order";

/// The order, locked so two result messages for it file in turn.
pub async fn order_for_update(conn: &mut MySqlConnection, id: i64) -> Result<Option<OrderRow>, StorageError> {
    let sql = format!("{ORDER} WHERE procedure_order_id = ? AND activity = 1 FOR UPDATE");
    sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(conn)
        .await
        .map_err(StorageError::from_sqlx)
}

/// A results-only order made earlier for the lab's own order number.
pub async fn order_by_control(
    conn: &mut MySqlConnection,
    pid: i64,
    control_id: &str,
) -> Result<Option<OrderRow>, StorageError> {
    let sql = format!(
        "{ORDER} WHERE patient_id = ? AND control_id = ? AND activity = 1 \
         ORDER BY procedure_order_id DESC LIMIT 1 FOR UPDATE"
    );
    sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(pid)
        .bind(control_id)
        .fetch_optional(conn)
        .await
        .map_err(StorageError::from_sqlx)
}

pub struct NewOrder<'a> {
    pub pid: i64,
    pub provider_id: i64,
    pub encounter_id: i64,
    pub ordered: Option<NaiveDateTime>,
    pub collected: Option<NaiveDateTime>,
    pub control_id: &'a str,
}

/// The order a results-only interface makes for results that arrive without one.
pub async fn insert_order(conn: &mut MySqlConnection, o: &NewOrder<'_>) -> Result<i64, StorageError> {
    let uuid = uuid_registry::create(conn, "procedure_order", "procedure_order_id").await?;
    let done = sqlx::query(
        "INSERT INTO procedure_order (uuid, provider_id, patient_id, encounter_id, date_collected, date_ordered, \
         order_status, control_id) VALUES (?, ?, ?, ?, ?, ?, 'complete', ?)",
    )
    .bind(&uuid[..])
    .bind(o.provider_id)
    .bind(o.pid)
    .bind(o.encounter_id)
    .bind(o.collected)
    .bind(o.ordered)
    .bind(o.control_id)
    .execute(conn)
    .await
    .map_err(StorageError::from_sqlx)?;
    Ok(done.last_insert_id() as i64)
}

/// The order line for `code` after sequence `after`, else the first one (a test ordered twice
/// gets its results in order).
pub async fn order_line(
    conn: &mut MySqlConnection,
    order: i64,
    code: &str,
    after: i32,
) -> Result<Option<i32>, StorageError> {
    sqlx::query_scalar(
        "SELECT procedure_order_seq FROM procedure_order_code WHERE procedure_order_id = ? AND procedure_code = ? \
         ORDER BY (procedure_order_seq <= ?), procedure_order_seq LIMIT 1",
    )
    .bind(order)
    .bind(code)
    .bind(after)
    .fetch_optional(conn)
    .await
    .map_err(StorageError::from_sqlx)
}

/// A test the lab added to the order (`procedure_source = '2'`).
pub async fn add_order_line(
    conn: &mut MySqlConnection,
    order: i64,
    code: &str,
    name: &str,
) -> Result<i32, StorageError> {
    let seq: i32 = sqlx::query_scalar(
        "SELECT CAST(IFNULL(MAX(procedure_order_seq), 0) + 1 AS SIGNED) FROM procedure_order_code \
         WHERE procedure_order_id = ?",
    )
    .bind(order)
    .fetch_one(&mut *conn)
    .await
    .map_err(StorageError::from_sqlx)?;
    sqlx::query(
        "INSERT INTO procedure_order_code (procedure_order_id, procedure_order_seq, procedure_code, procedure_name, \
         procedure_source) VALUES (?, ?, ?, ?, '2')",
    )
    .bind(order)
    .bind(seq)
    .bind(code)
    .bind(name)
    .execute(conn)
    .await
    .map_err(StorageError::from_sqlx)?;
    Ok(seq)
}

pub struct NewReport<'a> {
    pub order: i64,
    pub seq: i32,
    pub collected: Option<NaiveDateTime>,
    pub collected_tz: &'a str,
    pub reported: Option<NaiveDateTime>,
    pub reported_tz: &'a str,
    pub source: i64,
    pub specimen: &'a str,
    pub status: &'a str,
    pub notes: &'a str,
}

pub async fn insert_report(conn: &mut MySqlConnection, r: &NewReport<'_>) -> Result<i64, StorageError> {
    let uuid = uuid_registry::create(conn, "procedure_report", "procedure_report_id").await?;
    let done = sqlx::query(
        "INSERT INTO procedure_report (uuid, procedure_order_id, procedure_order_seq, date_collected, \
         date_collected_tz, date_report, date_report_tz, source, specimen_num, report_status, review_status, \
         report_notes) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'received', ?)",
    )
    .bind(&uuid[..])
    .bind(r.order)
    .bind(r.seq)
    .bind(r.collected)
    .bind(r.collected_tz)
    .bind(r.reported)
    .bind(r.reported_tz)
    .bind(r.source)
    .bind(r.specimen)
    .bind(r.status)
    .bind(r.notes)
    .execute(conn)
    .await
    .map_err(StorageError::from_sqlx)?;
    Ok(done.last_insert_id() as i64)
}

pub struct NewResult<'a> {
    pub report: i64,
    pub data_type: char,
    pub code: &'a str,
    pub text: &'a str,
    pub date: Option<NaiveDateTime>,
    pub units: &'a str,
    pub result: &'a str,
    pub range: &'a str,
    pub abnormal: &'a str,
    pub comments: &'a str,
    pub document_id: i64,
    pub status: &'a str,
}

pub async fn insert_result(conn: &mut MySqlConnection, r: &NewResult<'_>) -> Result<i64, StorageError> {
    let uuid = uuid_registry::create(conn, "procedure_result", "procedure_result_id").await?;
    let done = sqlx::query(
        "INSERT INTO procedure_result (uuid, procedure_report_id, result_data_type, result_code, result_text, \
         `date`, units, result, `range`, abnormal, comments, document_id, result_status) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&uuid[..])
    .bind(r.report)
    .bind(r.data_type.to_string())
    .bind(r.code)
    .bind(r.text)
    .bind(r.date)
    .bind(r.units)
    .bind(r.result)
    .bind(r.range)
    .bind(r.abnormal)
    .bind(r.comments)
    .bind(r.document_id)
    .bind(r.status)
    .execute(conn)
    .await
    .map_err(StorageError::from_sqlx)?;
    Ok(done.last_insert_id() as i64)
}

/// Who files a result, for the `forms` row that lists the order in its encounter.
pub struct Filer<'a> {
    pub username: &'a str,
    pub groupname: &'a str,
    pub authorized: bool,
}

/// `addForm($encounter, "Auto Result-<id>", $id, 'procedure_order', $pid)`.
pub async fn list_in_encounter(
    conn: &mut MySqlConnection,
    order: &NewOrder<'_>,
    id: i64,
    filer: &Filer<'_>,
) -> Result<(), StorageError> {
    sqlx::query(
        "INSERT INTO forms (date, encounter, form_name, form_id, pid, user, groupname, authorized, deleted, formdir, \
         provider_id) VALUES (NOW(), ?, ?, ?, ?, ?, ?, ?, 0, 'procedure_order', ?)",
    )
    .bind(order.encounter_id)
    .bind(format!("Auto Result-{id}"))
    .bind(id)
    .bind(order.pid)
    .bind(filer.username)
    .bind(filer.groupname)
    .bind(i8::from(filer.authorized))
    .bind(order.provider_id)
    .execute(conn)
    .await
    .map_err(StorageError::from_sqlx)?;
    Ok(())
}
