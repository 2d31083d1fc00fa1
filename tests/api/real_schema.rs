//! The guarantee OpenEMR administrators care most about: on the real OpenEMR schema, `migrate`
//! and `check` create nothing outside `mmt_` and change no OpenEMR table.

use std::{collections::BTreeMap, path::PathBuf};

use crate::helpers::TestDb;

fn real_schema() -> Option<PathBuf> {
    let path = std::env::var("OPENEMR_REAL_SCHEMA")
        .map(PathBuf::from)
        .unwrap_or_else(|_| crate::helpers::repo_path("../shared/openemr-schema/database.sql"));
    path.exists().then_some(path)
}

async fn show_create_all(db: &TestDb) -> BTreeMap<String, String> {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT CAST(TABLE_NAME AS CHAR) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    let mut out = BTreeMap::new();
    for table in tables {
        let (_, ddl): (String, String) =
            sqlx::query_as(sqlx::AssertSqlSafe(format!("SHOW CREATE TABLE `{table}`")))
                .fetch_one(&db.pool)
                .await
                .unwrap();
        // AUTO_INCREMENT counters move with data, not with schema changes.
        let ddl = ddl.split(' ').filter(|w| !w.starts_with("AUTO_INCREMENT=")).collect::<Vec<_>>().join(" ");
        out.insert(table, ddl);
    }
    out
}

/// Needs OpenEMR's real `database.sql` (OPENEMR_REAL_SCHEMA, or ../shared/ beside the project):
/// without it `scripts/test.sh` skips this test by name and says so; CI always runs it.
#[tokio::test]
async fn migrate_and_check_touch_nothing_but_mmt_tables_on_the_real_openemr_schema() {
    let schema = real_schema().expect("OPENEMR_REAL_SCHEMA names a readable database.sql");
    let db = TestDb::empty().await;
    db.load_with_client(&schema);
    // What OpenEMR's installer does after loading database.sql: write the real version.
    sqlx::query("UPDATE version SET v_major = 8, v_minor = 2, v_patch = 0, v_tag = '-dev', v_database = 541, v_acl = 13")
        .execute(&db.pool)
        .await
        .unwrap();
    let before = show_create_all(&db).await;
    assert!(before.len() >= 250, "the real schema has ~281 tables, found {}", before.len());

    let migrate = db.run_binary(&["migrate"]);
    assert!(migrate.status.success(), "{}", String::from_utf8_lossy(&migrate.stderr));
    let check = db.run_binary(&["check"]);
    assert!(check.status.success(), "check on the real schema: {}", String::from_utf8_lossy(&check.stdout));

    let after = show_create_all(&db).await;
    for (table, ddl) in &before {
        assert_eq!(after.get(table), Some(ddl), "OpenEMR table `{table}` was changed or dropped");
    }
    let added: Vec<&String> = after.keys().filter(|t| !before.contains_key(*t)).collect();
    assert!(!added.is_empty());
    assert!(added.iter().all(|t| t.starts_with("mmt_")), "non-mmt_ tables were added: {added:?}");
}
