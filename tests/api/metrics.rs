use poem::http::StatusCode;

use crate::{auth::tokens, helpers::TestDb};

const TOKEN: &str = "metrics-token-0123456789";

#[tokio::test]
async fn metrics_are_off_without_a_token_and_need_it_when_on() {
    let db = TestDb::migrated().await;
    db.client().get("/metrics").send().await.assert_status(StatusCode::NOT_FOUND);
    let client = db.client_with(&[("MMT_METRICS_TOKEN", TOKEN)]);
    client.get("/metrics").send().await.assert_status(StatusCode::UNAUTHORIZED);
    client
        .get("/metrics")
        .header("authorization", "Bearer wrong-token-wrong-token")
        .send()
        .await
        .assert_status(StatusCode::UNAUTHORIZED);
    let (access, _) = tokens(&db, crate::auth::ADMIN).await;
    client
        .get("/metrics")
        .header("authorization", format!("Bearer {access}"))
        .send()
        .await
        .assert_status(StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn metrics_count_requests_per_operation_with_latency_and_pool_usage() {
    let db = TestDb::migrated().await;
    let client = db.client_with(&[("MMT_METRICS_TOKEN", TOKEN)]);
    let (access, _) = tokens(&db, crate::auth::ADMIN).await;
    client
        .get("/api/patients/?search=zzz")
        .header("authorization", format!("Bearer {access}"))
        .send()
        .await
        .assert_status_is_ok();
    let resp = client.get("/metrics").header("authorization", format!("Bearer {TOKEN}")).send().await;
    resp.assert_status_is_ok();
    let text = resp.0.into_body().into_string().await.unwrap();
    let line = text
        .lines()
        .find(|l| {
            l.starts_with("http_requests_total{")
                && l.contains("operation=\"patients_list\"")
                && l.contains("status=\"200\"")
        })
        .unwrap_or_else(|| panic!("no patients_list counter in:\n{text}"));
    let count: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(count >= 1.0);
    assert!(text.contains("http_request_duration_seconds_bucket{"), "latency histogram missing");
    assert!(text.contains("operation=\"auth_login\""));
    for gauge in ["db_pool_connections", "db_pool_idle_connections", "db_pool_max_connections 32"] {
        assert!(text.contains(gauge), "{gauge} missing");
    }
}
