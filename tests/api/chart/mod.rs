//! The patient's chart: vitals and the issue lists, each write compared with what OpenEMR's own
//! code writes for the same input.

mod issues;
mod prescription_sends;
mod prescriptions;
mod vitals;

use serde_json::Value;

use crate::patients::Api;

pub(crate) const GARCIA: (&str, &str) = ("drgarcia", "Physician-Garcia-2");
pub(crate) const OKAFOR: (&str, &str) = ("drokafor", "Physician-Okafor-3");
pub(crate) const NURSE: (&str, &str) = ("nkim", "Clinician-Kim-4");
pub(crate) const FRONT: (&str, &str) = ("fdoconnor", "Front-OConnor-6");
pub(crate) const PID: i64 = 9;

/// The row a query returns, as strings (NULL as None), for column-by-column comparison.
pub(crate) async fn row(api: &Api, sql: &str) -> Vec<Option<String>> {
    use sqlx::Row;
    let row = sqlx::query(sqlx::AssertSqlSafe(sql.to_string())).fetch_one(&api.db.pool).await.unwrap();
    (0..row.len()).map(|i| row.try_get::<Option<String>, _>(i).unwrap()).collect()
}

/// Audit rows for the patient with this event and category.
pub(crate) async fn audits(api: &Api, event: &str, category: &str) -> i64 {
    api.db
        .scalar(&format!(
            "SELECT COUNT(*) FROM log WHERE patient_id = {PID} AND event = '{event}' AND category = '{category}'"
        ))
        .await
}

pub(crate) fn field_errors(body: &Value) -> Vec<String> {
    body["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap().to_string()).collect()
}
