use base64::{Engine, engine::general_purpose::STANDARD as BASE64};
use chrono::{Local, NaiveDateTime};
use mmt_sidecar::{
    domain::audit::AuditEntry,
    storage::openemr::audit_log::{self, LogRow},
};

use crate::helpers::TestDb;

fn entry(patient_id: Option<i64>, success: bool) -> AuditEntry {
    AuditEntry {
        event: "patient-record-select".into(),
        category: "Patient Demographics".into(),
        user: "drgarcia".into(),
        groupname: "Default".into(),
        comments: "viewed chart of O'Brien, Zoë".into(),
        patient_id,
        success,
    }
}

async fn log_row(db: &TestDb, id: u64) -> LogRow {
    sqlx::query_as(
        "SELECT DATE_FORMAT(date, '%Y-%m-%d %H:%i:%s') AS date, event, category, user, groupname, comments, \
         user_notes, patient_id, success, crt_user, log_from, menu_item_id, ccda_doc_id FROM log WHERE id = ?",
    )
    .bind(id)
    .fetch_one(&db.pool)
    .await
    .unwrap()
}

async fn count(db: &TestDb, table: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
        .fetch_one(&db.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_recorded_event_is_written_as_openemr_writes_it() {
    let db = TestDb::openemr().await;
    let before = Local::now().naive_local();
    let id = audit_log::record(&mut db.pool.acquire().await.unwrap(), &entry(Some(7), true)).await.unwrap();

    let row = log_row(&db, id).await;
    assert_eq!(row.event, "patient-record-select");
    assert_eq!(row.category, "Patient Demographics");
    assert_eq!(row.user, "drgarcia");
    assert_eq!(row.groupname, "Default");
    assert_eq!(BASE64.decode(&row.comments).unwrap(), "viewed chart of O'Brien, Zoë".as_bytes());
    assert_eq!((row.user_notes.as_str(), row.crt_user.as_str()), ("", ""));
    assert_eq!((row.patient_id, row.success), (Some(7), true));
    assert_eq!(row.log_from, "mmt-sidecar");
    assert_eq!((row.menu_item_id, row.ccda_doc_id), (None, None));
    let written = NaiveDateTime::parse_from_str(&row.date, "%Y-%m-%d %H:%M:%S").unwrap();
    assert!((written - before).num_seconds().abs() <= 5, "{written} vs local {before}");

    let (encrypt, checksum, checksum_api, version): (String, String, String, i64) = sqlx::query_as(
        "SELECT encrypt, checksum, checksum_api, version FROM log_comment_encrypt WHERE log_id = ?",
    )
    .bind(id)
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!((encrypt.as_str(), checksum_api.as_str(), version), ("No", "", 4));
    assert_eq!(checksum, audit_log::checksum(&row));
    assert_eq!(checksum.len(), 128);
}

#[tokio::test]
async fn a_failure_without_patient_checksums_what_was_stored() {
    let db = TestDb::openemr().await;
    let id = audit_log::record(&mut db.pool.acquire().await.unwrap(), &entry(None, false)).await.unwrap();
    let row = log_row(&db, id).await;
    assert_eq!((row.patient_id, row.success), (None, false));
    let stored: String = sqlx::query_scalar("SELECT checksum FROM log_comment_encrypt WHERE log_id = ?")
        .bind(id)
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(stored, audit_log::checksum(&row));
}

#[tokio::test]
async fn inside_a_transaction_the_audit_commits_or_rolls_back_with_it() {
    let db = TestDb::openemr().await;
    let mut tx = db.pool.begin().await.unwrap();
    audit_log::record(&mut tx, &entry(Some(7), true)).await.unwrap();
    tx.rollback().await.unwrap();
    assert_eq!((count(&db, "log").await, count(&db, "log_comment_encrypt").await), (0, 0));

    let mut tx = db.pool.begin().await.unwrap();
    audit_log::record(&mut tx, &entry(Some(7), true)).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!((count(&db, "log").await, count(&db, "log_comment_encrypt").await), (1, 1));
}
