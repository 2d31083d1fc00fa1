//! Prometheus metrics: request counts and latency per operation, and database pool usage.
//! Served at `/metrics` on the API listener to holders of `MMT_METRICS_TOKEN`, and without
//! credentials on `MMT_METRICS_ADDR` when that internal address is set.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use poem::{IntoResponse, Request, Response, handler, http::StatusCode, web::Data};
use subtle::ConstantTimeEq;

use crate::{
    app::AppState,
    http::{auth, problem::ApiError},
};

const LATENCY_BUCKETS: &[f64] =
    &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process-wide recorder, installed on first use (several apps in one test process share it).
fn handle() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full("http_request_duration_seconds".into()), LATENCY_BUCKETS)
            .expect("bucket list is not empty")
            .build_recorder();
        let handle = recorder.handle();
        let _ = metrics::set_global_recorder(recorder);
        handle
    })
}

pub fn record_request(method: &str, operation: &'static str, status: u16, seconds: f64) {
    handle();
    let labels = [
        ("method", method.to_string()),
        ("operation", operation.to_string()),
        ("status", status.to_string()),
    ];
    metrics::counter!("http_requests_total", &labels).increment(1);
    let labels = [("method", method.to_string()), ("operation", operation.to_string())];
    metrics::histogram!("http_request_duration_seconds", &labels).record(seconds);
}

fn render(state: &AppState) -> Response {
    metrics::gauge!("db_pool_connections").set(f64::from(state.pool.size()));
    metrics::gauge!("db_pool_idle_connections").set(state.pool.num_idle() as f64);
    metrics::gauge!("db_pool_max_connections").set(f64::from(state.pool.options().get_max_connections()));
    handle().render().with_content_type("text/plain; version=0.0.4").into_response()
}

/// `/metrics` beside the API: off (404) unless a token is configured, and then only for it.
#[handler]
pub async fn protected(req: &Request, state: Data<&AppState>) -> poem::Result<Response> {
    let Some(expected) = state.config.metrics_token.as_deref() else {
        return Err(ApiError::new(StatusCode::NOT_FOUND, "metrics are not enabled on this listener").into());
    };
    let presented = auth::bearer_token(req).unwrap_or_default();
    if !bool::from(presented.as_bytes().ct_eq(expected.as_bytes())) {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "metrics need `Authorization: Bearer <MMT_METRICS_TOKEN>`",
        )
        .into());
    }
    Ok(render(&state))
}

/// `/metrics` on the internal metrics address, which only the monitoring network reaches.
#[handler]
pub async fn open(state: Data<&AppState>) -> Response {
    render(&state)
}
