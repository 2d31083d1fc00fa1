use std::process::Command;

use crate::helpers::{TestDb, binary};

fn text(out: &std::process::Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

#[test]
fn missing_configuration_fails_fast_listing_every_problem() {
    let out = Command::new(binary())
        .arg("check")
        .env_clear()
        .env("DB_PASSWORD", "s3cret-never-printed")
        .env("LOG_FORMAT", "yaml")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for expected in [
        "DB_HOST: required",
        "DB_NAME: required",
        "DB_USER: required",
        "LOG_FORMAT: expected",
        "MMT_MASTER_KEY_FILE or MMT_MASTER_KEY: required",
    ] {
        assert!(stderr.contains(expected), "missing `{expected}` in: {stderr}");
    }
    assert!(!stderr.contains("s3cret"), "a secret was printed: {stderr}");
}

#[test]
fn a_bad_database_url_is_refused_without_echoing_it() {
    let out = Command::new(binary())
        .arg("migrate")
        .env_clear()
        .env("DATABASE_URL", "postgres://user:hunter2@db/openemr")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("DATABASE_URL: must start with mysql://"), "{stderr}");
    assert!(!stderr.contains("hunter2"));
}

#[test]
fn every_command_has_help() {
    for args in [
        vec!["--help"],
        vec!["serve", "--help"],
        vec!["migrate", "--help"],
        vec!["check", "--help"],
        vec!["openapi", "--help"],
    ] {
        let out = Command::new(binary()).args(&args).output().unwrap();
        assert!(out.status.success(), "{args:?}");
        assert!(String::from_utf8_lossy(&out.stdout).contains("Usage: mmt-sidecar"), "{args:?}");
    }
}

async fn tables(db: &TestDb) -> Vec<String> {
    sqlx::query_scalar("SELECT CAST(TABLE_NAME AS CHAR) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() ORDER BY 1")
        .fetch_all(&db.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn migrate_is_idempotent_and_creates_only_mmt_tables() {
    let db = TestDb::empty().await;
    let first = db.run_binary(&["migrate"]);
    assert!(first.status.success(), "{}", text(&first));
    let after_first = tables(&db).await;
    let second = db.run_binary(&["migrate"]);
    assert!(second.status.success(), "{}", text(&second));
    assert!(text(&second).contains("up to date"));
    assert_eq!(tables(&db).await, after_first);
    assert!(after_first.contains(&"mmt_schema_migrations".to_string()));
    assert!(after_first.iter().all(|t| t.starts_with("mmt_")), "{after_first:?}");
}

#[tokio::test]
async fn concurrent_migrate_from_several_replicas_applies_each_migration_once() {
    let db = TestDb::openemr().await;
    let children: Vec<_> = (0..4)
        .map(|_| {
            Command::new(binary())
                .arg("migrate")
                .env_clear()
                .envs(db.env())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", text(&out));
    }
    let rows: Vec<(i64, bool)> = sqlx::query_as("SELECT version, success FROM mmt_schema_migrations")
        .fetch_all(&db.pool)
        .await
        .unwrap();
    let embedded = mmt_sidecar::storage::mmt::migrations::MIGRATOR.iter().count();
    assert_eq!(rows.len(), embedded);
    assert!(rows.iter().all(|(_, ok)| *ok));
}

#[tokio::test]
async fn check_passes_on_the_migrated_demo_database() {
    let db = TestDb::migrated().await;
    let out = db.run_binary(&["check"]);
    let report = text(&out);
    assert!(out.status.success(), "{report}");
    assert!(report.contains("openemr: 8.2.0-dev (database 541, acl 13)"), "{report}");
    assert!(
        report.contains("encryption at rest: the master key opens the data keys; key 2 seals"),
        "{report}"
    );
    assert!(report.contains("check: OK"));

    let other =
        db.run_binary_with(&["check"], &[("MMT_MASTER_KEY", "b3RoZXIgbWFzdGVyIGtleSwgbm90IHRoaXMgc2l0ZSE=")]);
    let report = text(&other);
    assert_eq!(other.status.code(), Some(1), "{report}");
    assert!(
        report.contains("encryption at rest: the data keys were wrapped by another master key"),
        "{report}"
    );
}

#[tokio::test]
async fn check_reports_a_missing_column_and_fails() {
    let db = TestDb::migrated().await;
    sqlx::query("ALTER TABLE version DROP COLUMN v_acl").execute(&db.pool).await.unwrap();
    let out = db.run_binary(&["check"]);
    let report = text(&out);
    assert_eq!(out.status.code(), Some(1), "{report}");
    assert!(report.contains("column `version.v_acl` is missing"), "{report}");
}

#[tokio::test]
async fn check_reports_pending_migrations_and_an_unreachable_database() {
    let db = TestDb::openemr().await;
    let out = db.run_binary(&["check"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("pending; run `mmt-sidecar migrate`"));

    let port = crate::helpers::free_port();
    let out = Command::new(binary())
        .arg("check")
        .env_clear()
        .env("DATABASE_URL", format!("mysql://nobody:pw@127.0.0.1:{port}/openemr"))
        .env("MMT_MASTER_KEY", crate::helpers::TEST_MASTER_KEY)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("database: FAILED"), "{}", text(&out));
}
