//! The HTTP layer: thin poem-openapi operations that parse input, call a service, shape output.

pub mod health;
pub mod middleware;
pub mod problem;

use poem_openapi::{OpenApiService, Tags};

#[derive(Tags)]
pub enum ApiTags {
    /// Service health.
    Health,
}

pub type Apis = health::HealthApi;

pub fn api_service() -> OpenApiService<Apis, ()> {
    OpenApiService::new(health::HealthApi, "mmt-sidecar", env!("CARGO_PKG_VERSION"))
        .description(
            "Companion API beside OpenEMR: OpenEMR logins and single sign-on, the dictation and \
             transcription workflow, and clinical data keyed off OpenEMR patients. Every error is \
             an RFC 9457 problem (application/problem+json).",
        )
        .server("/api")
}
