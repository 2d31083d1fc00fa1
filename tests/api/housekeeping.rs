use crate::{auth, helpers::TestDb};

#[tokio::test]
async fn housekeeping_purges_long_expired_tokens_and_old_failures_only() {
    let db = TestDb::migrated().await;
    auth::tokens(&db, auth::ADMIN).await;
    auth::tokens(&db, auth::ADMIN).await;
    auth::login(&db, "admin", "wrong").await;
    sqlx::query("UPDATE mmt_auth_tokens SET expires_at = NOW() - INTERVAL 3 DAY ORDER BY id LIMIT 2")
        .execute(&db.pool)
        .await
        .unwrap();
    sqlx::query(
        "UPDATE mmt_login_failures SET failed_at = NOW() - INTERVAL 1 DAY WHERE scope = 'user_address'",
    )
    .execute(&db.pool)
    .await
    .unwrap();
    let (tokens, failures) = mmt_sidecar::service::housekeeping::sweep(&db.state()).await.unwrap();
    assert_eq!((tokens, failures), (2, 1));
    let left: (i64, i64) = sqlx::query_as(
        "SELECT (SELECT COUNT(*) FROM mmt_auth_tokens), (SELECT COUNT(*) FROM mmt_login_failures)",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(left, (2, 1), "live tokens and recent failures stay");
}
