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
        acl::Acl, credentials::PasswordVerifier, patient_index::PatientIndex, session_bridge::SessionStore,
    },
};

#[derive(Clone)]
pub struct AppState {
    pub pool: MySqlPool,
    pub config: Arc<Config>,
    pub verifier: PasswordVerifier,
    pub acl: Arc<Acl>,
    /// Where the session bridge reads OpenEMR's PHP sessions; `None`: the bridge is off.
    pub sessions: Option<Arc<SessionStore>>,
    pub patient_index: Arc<PatientIndex>,
    /// Live updates: this replica's subscribers and its link to the others.
    pub events: Arc<crate::service::events::EventHub>,
    /// Wakes an idle job worker of this process when a job is enqueued here.
    pub job_wake: Arc<tokio::sync::Notify>,
    /// Booking queues and cached repeating appointments of this replica.
    pub scheduling: Arc<crate::service::scheduling::Shared>,
    /// Provider panel sizes this replica keeps for dashboards.
    pub dashboard: Arc<crate::service::dashboard::Shared>,
    /// Care team members this replica mirrors for searches under the assigned-patient policy.
    pub patient_access: Arc<crate::service::patient_access::Shared>,
    /// Writes the audit rows of reads in batches (group commit).
    pub audit: Arc<crate::service::audit::AuditWriter>,
    /// The last health check, refreshed in the background.
    pub health: crate::service::cached::Cached<crate::service::status::Snapshot>,
    /// The SMTP transport; `None` when `SMTP_URL` is unset.
    pub mail: Option<Arc<crate::service::mail::Mailer>>,
    /// Clients for calls out, kept with the state rather than in statics: a pooled connection
    /// belongs to the tokio runtime that opened it, so a client must not outlive its runtime
    /// (the test suite runs a runtime per test in one process). Built on first use: building one
    /// reads and parses the machine's TLS roots.
    pub stripe_http: Arc<std::sync::OnceLock<reqwest::Client>>,
    pub webhook_http: Arc<std::sync::OnceLock<reqwest::Client>>,
    /// The keys that encrypt the sidecar's own PHI at rest.
    pub vault: Arc<crate::storage::vault::Vault>,
}

/// Makes ring the process's TLS provider (Redis and outgoing HTTPS build their configs from the
/// process default); idempotent, so every entry point may call it.
pub fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

impl AppState {
    pub fn new(pool: MySqlPool, config: Config) -> Self {
        install_tls_provider();
        Self {
            acl: Arc::new(Acl::new(pool.clone())),
            verifier: PasswordVerifier::for_this_machine(),
            patient_index: Arc::new(PatientIndex::new(config.search_max_staleness)),
            events: Arc::new(crate::service::events::EventHub::new(&config)),
            job_wake: Arc::new(tokio::sync::Notify::new()),
            scheduling: Arc::default(),
            dashboard: Arc::default(),
            patient_access: Arc::default(),
            health: crate::service::status::health_cache(),
            audit: Arc::default(),
            mail: crate::service::mail::Mailer::from_config(&config.mail).map(Arc::new),
            stripe_http: Arc::default(),
            webhook_http: Arc::default(),
            sessions: SessionStore::new(&config.auth.session_source, &pool).map(Arc::new),
            vault: Arc::new(crate::storage::vault::Vault::new(
                pool.clone(),
                config.master_key.clone(),
                config.previous_master_key.clone(),
            )),
            pool,
            config: Arc::new(config),
        }
    }
}

pub fn build_app(state: AppState) -> impl Endpoint {
    let api = http::api_service();
    let max_body = state.config.max_body_bytes;
    let max_audio_chunk = state.config.audio.max_chunk_bytes;
    // The form around a document adds its headers and boundaries to the file's own limit.
    let max_document =
        usize::try_from(state.config.documents.max_bytes).unwrap_or(usize::MAX).saturating_add(65536);
    let body_timeout = state.config.connections.body_read_timeout;
    Route::new()
        .at("/api/openapi.json", http::docs::spec_endpoint())
        .at("/metrics", http::metrics::protected)
        // A WebSocket upgrade is not something poem-openapi can describe, so it is a plain route.
        .at("/api/ws", http::events_api::websocket.with(poem::middleware::CookieJarManager::new()))
        .at("/api/docs", http::docs::explorer())
        .nest("/api", api.around(|ep, req| http::malformed::explain(ep, req, http::malformed::Surface::Api)))
        .at("/fhir/r4/openapi.json", http::docs::fhir_spec_endpoint())
        .at("/fhir/r4/docs", http::docs::fhir_explorer())
        .nest(
            "/fhir/r4",
            http::fhir::fhir_service()
                .around(|ep, req| http::malformed::explain(ep, req, http::malformed::Surface::Fhir))
                .around(http::fhir::outcome_boundary),
        )
        .data(state)
        // poem-openapi drops trailing slashes from operation paths; OpenEMR-style clients send them.
        .with(NormalizePath::new(TrailingSlash::Trim))
        .around(move |ep, req| {
            http::middleware::limit_body(ep, req, max_body, max_audio_chunk, max_document, body_timeout)
        })
        .around(http::middleware::observe)
        .around(http::query_utf8::require_utf8_query)
        .around(http::problem::problem_boundary)
        .around(http::middleware::no_store)
        .around(|ep, req| http::allow::add_allow(ep, req, http::docs::routes()))
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
    let events = state.events.clone();
    let health = tokio::spawn(crate::service::status::keep_health_fresh(state.clone()));
    let shutdown = async move {
        shutdown.await;
        events.close();
        health.abort();
    };
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
