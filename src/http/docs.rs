//! The OpenAPI document, the explorer and the route table (`Allow`, malformed-input fields), built once per process: the document
//! is large, and serialising it again for every app built (the tests build hundreds) costs
//! seconds of CPU on a small machine.

use std::sync::LazyLock;

use poem::{Body, Endpoint, Response, endpoint::make_sync};

use super::spec_routes::SpecRoutes;

static SPEC: LazyLock<String> = LazyLock::new(|| super::served_spec::exact(&super::api_service().spec()));
static EXPLORER: LazyLock<String> = LazyLock::new(|| super::api_service().swagger_ui_html());
static FHIR_SPEC: LazyLock<String> =
    LazyLock::new(|| super::served_spec::fhir_exact(&super::fhir::fhir_service().spec()));
static FHIR_EXPLORER: LazyLock<String> = LazyLock::new(|| super::fhir::fhir_service().swagger_ui_html());
static ROUTES: LazyLock<SpecRoutes> = LazyLock::new(|| SpecRoutes::from_specs(&[&SPEC, &FHIR_SPEC]));

pub fn spec() -> &'static str {
    &SPEC
}

pub fn routes() -> &'static SpecRoutes {
    &ROUTES
}

pub fn fhir_spec() -> &'static str {
    &FHIR_SPEC
}

fn serve(content_type: &'static str, text: &'static LazyLock<String>) -> impl Endpoint<Output = Response> {
    make_sync(move |_| {
        Response::builder()
            .content_type(content_type)
            .body(Body::from_bytes(bytes::Bytes::from_static(LazyLock::force(text).as_bytes())))
    })
}

pub fn spec_endpoint() -> impl Endpoint<Output = Response> {
    serve("application/json", &SPEC)
}

pub fn explorer() -> impl Endpoint<Output = Response> {
    serve("text/html; charset=utf-8", &EXPLORER)
}

pub fn fhir_spec_endpoint() -> impl Endpoint<Output = Response> {
    serve("application/json", &FHIR_SPEC)
}

pub fn fhir_explorer() -> impl Endpoint<Output = Response> {
    serve("text/html; charset=utf-8", &FHIR_EXPLORER)
}
