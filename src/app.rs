//! Assembles the service: state, routes, middleware, and the server loop.

use std::{future::Future, sync::Arc};

use poem::{
    Endpoint, EndpointExt, Route,
    listener::{Acceptor, TcpAcceptor},
    middleware::{NormalizePath, RequestId, TrailingSlash},
};
use sqlx::MySqlPool;

use crate::{
    config::Config,
    http,
    service::{
        acl::Acl, credentials::PasswordVerifier, patient_index::PatientIndex, session_bridge::RedisSessions,
    },
};

#[derive(Clone)]
pub struct AppState {
    pub pool: MySqlPool,
    pub config: Arc<Config>,
    pub verifier: PasswordVerifier,
    pub acl: Arc<Acl>,
    pub redis_sessions: Option<Arc<RedisSessions>>,
    pub patient_index: Arc<PatientIndex>,
}

impl AppState {
    pub fn new(pool: MySqlPool, config: Config) -> Self {
        Self {
            acl: Arc::new(Acl::new(pool.clone())),
            verifier: PasswordVerifier::for_this_machine(),
            patient_index: Arc::new(PatientIndex::new(config.search_max_staleness)),
            redis_sessions: config.auth.session_redis.clone().map(|c| Arc::new(RedisSessions::new(c))),
            pool,
            config: Arc::new(config),
        }
    }
}

pub fn build_app(state: AppState) -> impl Endpoint {
    let api = http::api_service();
    let allowed = std::sync::Arc::new(http::allow::AllowedMethods::from_spec(&api.spec()));
    let max_body = state.config.max_body_bytes;
    let max_audio_chunk = state.config.audio.max_chunk_bytes;
    let body_timeout = state.config.connections.body_read_timeout;
    Route::new()
        .at("/api/openapi.json", api.spec_endpoint())
        .at("/metrics", http::metrics::protected)
        .nest("/api/docs", api.swagger_ui())
        .nest("/api", api)
        .data(state)
        // poem-openapi drops trailing slashes from operation paths; OpenEMR-style clients send them.
        .with(NormalizePath::new(TrailingSlash::Trim))
        .around(move |ep, req| http::middleware::limit_body(ep, req, max_body, max_audio_chunk, body_timeout))
        .around(http::middleware::observe)
        .around(http::query_utf8::require_utf8_query)
        .around(http::problem::problem_boundary)
        .around(http::middleware::no_store)
        .around(move |ep, req| http::allow::add_allow(ep, req, allowed.clone()))
        .with(RequestId::default())
}

/// The internal metrics listener (`MMT_METRICS_ADDR`): `/metrics` only, no credentials.
pub fn metrics_app(state: AppState) -> impl Endpoint {
    Route::new().at("/metrics", http::metrics::open).data(state)
}

/// Serves on an already-bound acceptor until `shutdown` resolves, then lets in-flight requests
/// finish within the configured grace period. Connection limits and timeouts: `http::server`.
pub async fn launch(
    acceptor: TcpAcceptor,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let grace = state.config.shutdown_grace;
    let addr = acceptor.local_addr();
    tracing::info!(addr = ?addr.first(), "serving; explorer at /api/docs/");
    let limits = state.config.connections.clone();
    http::server::serve(acceptor, build_app(state), &limits, grace, shutdown).await
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutdown requested; finishing in-flight requests");
}
