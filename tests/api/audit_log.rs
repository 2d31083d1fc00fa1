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

async fn sidecar_rows(db: &TestDb) -> Vec<(u64, LogRow, String)> {
    let ids: Vec<(i64, String)> = sqlx::query_as(
        "SELECT l.id, c.checksum FROM log l JOIN log_comment_encrypt c ON c.log_id = l.id \
         WHERE l.log_from = 'mmt-sidecar' AND l.event = 'patient-record-select' ORDER BY l.id",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    let mut rows = Vec::new();
    for (id, sum) in ids {
        let id = id as u64;
        rows.push((id, log_row(db, id).await, sum));
    }
    rows
}

/// Reads are audited by one writer per replica that commits waiting rows together; every one of
/// a burst of 1,000 concurrent reads still gets its own row, with a checksum OpenEMR verifies.
#[tokio::test]
async fn a_burst_of_a_thousand_concurrent_reads_leaves_a_thousand_valid_audit_rows() {
    let api = crate::patients::Api::as_user(("drgarcia", "Physician-Garcia-2")).await;
    let client = poem::test::TestClient::new(crate::helpers::documented_app(api.db.state()));
    let before = sidecar_rows(&api.db).await.len();
    let reads = (0..1000).map(|i| {
        let (client, token) = (&client, &api.token);
        async move {
            let pid = 1 + i % 200;
            let resp = client
                .get(format!("/api/patients/{pid}/"))
                .header("authorization", format!("Bearer {token}"))
                .send()
                .await;
            resp.0.status()
        }
    });
    let statuses = futures_util::future::join_all(reads).await;
    assert!(statuses.iter().all(|s| s.is_success()), "{:?}", statuses.iter().find(|s| !s.is_success()));
    let rows = sidecar_rows(&api.db).await;
    let reads: Vec<_> = rows
        .iter()
        .skip(before)
        .filter(|(_, r, _)| {
            BASE64
                .decode(&r.comments)
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains("read demographics"))
        })
        .collect();
    assert_eq!(reads.len(), 1000);
    for (id, row, sum) in reads {
        assert_eq!(&audit_log::checksum(row), sum, "log row {id}");
    }
}

/// A request is answered only once its audit row is committed: when the row cannot be written,
/// the read fails with 503 and discloses nothing.
#[tokio::test]
async fn a_read_whose_audit_row_cannot_be_written_is_503_and_shows_nothing() {
    let api = crate::patients::Api::as_user(("drgarcia", "Physician-Garcia-2")).await;
    let fname: String = sqlx::query_scalar("SELECT fname FROM patient_data WHERE pid = 1")
        .fetch_one(&api.db.pool)
        .await
        .unwrap();
    sqlx::query("RENAME TABLE log_comment_encrypt TO log_comment_encrypt_away")
        .execute(&api.db.pool)
        .await
        .unwrap();
    let (status, body) = api.get("/api/patients/1/").await;
    sqlx::query("RENAME TABLE log_comment_encrypt_away TO log_comment_encrypt")
        .execute(&api.db.pool)
        .await
        .unwrap();
    assert_eq!(status, poem::http::StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(!body.to_string().contains(&fname), "{body}");
    let orphans: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM log l LEFT JOIN log_comment_encrypt c ON c.log_id = l.id WHERE c.log_id IS NULL AND l.log_from = 'mmt-sidecar'",
    )
    .fetch_one(&api.db.pool)
    .await
    .unwrap();
    assert_eq!(orphans, 0, "the failed batch left no half-written audit row");
    let (status, _) = api.get("/api/patients/1/").await;
    assert_eq!(status, poem::http::StatusCode::OK);
}
