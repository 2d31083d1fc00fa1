//! The patient's chart: vitals and the issue lists, each write compared with what OpenEMR's own
//! code writes for the same input.

mod issues;
mod prescription_sends;
mod prescriptions;
mod vitals;

use serde_json::Value;

use crate::{helpers::TestDb, patients::Api};

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

/// The text of a PDF, as poppler's `pdftotext -layout` reads it.
pub(crate) fn pdf_to_text(pdf: &[u8]) -> String {
    assert!(pdf.starts_with(b"%PDF-"));
    let path = std::env::temp_dir().join(format!("mmt-{}.pdf", uuid::Uuid::new_v4()));
    std::fs::write(&path, pdf).unwrap();
    let out = std::process::Command::new("pdftotext").args(["-layout"]).arg(&path).arg("-").output().unwrap();
    std::fs::remove_file(&path).ok();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// GETs a PDF as the bearer of `token` and reads its text.
pub(crate) async fn fetched_pdf_text(db: &TestDb, token: &str, path: &str) -> String {
    let resp = db.client().get(path).header("authorization", format!("Bearer {token}")).send().await;
    assert_eq!(resp.0.status(), poem::http::StatusCode::OK);
    assert_eq!(resp.0.headers()["content-type"], "application/pdf");
    pdf_to_text(&resp.0.into_body().into_vec().await.unwrap())
}
