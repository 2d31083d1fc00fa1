//! The OpenAPI document, the explorer and the `Allow` table, built once per process: the document
//! is large, and serialising it again for every app built (the tests build hundreds) costs
//! seconds of CPU on a small machine.

use std::sync::LazyLock;

use poem::{Body, Endpoint, Response, endpoint::make_sync};

use super::allow::AllowedMethods;

static SPEC: LazyLock<String> = LazyLock::new(|| super::api_service().spec());
static EXPLORER: LazyLock<String> = LazyLock::new(|| super::api_service().swagger_ui_html());
static ALLOWED: LazyLock<AllowedMethods> = LazyLock::new(|| AllowedMethods::from_spec(&SPEC));

pub fn spec() -> &'static str {
    &SPEC
}

pub fn allowed() -> &'static AllowedMethods {
    &ALLOWED
}

pub fn spec_endpoint() -> impl Endpoint<Output = Response> {
    make_sync(|_| {
        Response::builder()
            .content_type("application/json")
            .body(Body::from_bytes(bytes::Bytes::from_static(SPEC.as_bytes())))
    })
}

pub fn explorer() -> impl Endpoint<Output = Response> {
    make_sync(|_| {
        Response::builder()
            .content_type("text/html; charset=utf-8")
            .body(Body::from_bytes(bytes::Bytes::from_static(EXPLORER.as_bytes())))
    })
}
