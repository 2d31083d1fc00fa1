//! The `Allow` header RFC 9110 requires on every 405, read from the served specs (`spec_routes`).

use poem::{Endpoint, IntoResponse, Request, Response, http::StatusCode};

use super::spec_routes::SpecRoutes;

pub async fn add_allow<E: Endpoint>(
    next: E,
    req: Request,
    routes: &'static SpecRoutes,
) -> poem::Result<Response> {
    let path = req.uri().path().to_string();
    let method = req.method().as_str().to_string();
    let mut response = next.call(req).await?.into_response();
    if response.status() == StatusCode::METHOD_NOT_ALLOWED
        && let Some(allow) = routes.allow(&path, &method)
        && let Ok(value) = allow.parse()
    {
        response.headers_mut().insert(poem::http::header::ALLOW, value);
    }
    Ok(response)
}
