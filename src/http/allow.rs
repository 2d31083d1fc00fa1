//! The `Allow` header RFC 9110 requires on every 405, built from the spec's paths and methods.

use poem::{Endpoint, IntoResponse, Request, Response, http::StatusCode};

/// Each spec path as segments (`None` for a `{param}`) with the methods it serves.
#[derive(Debug, Default)]
pub struct AllowedMethods(Vec<(Vec<Option<String>>, Vec<String>)>);

impl AllowedMethods {
    /// From the OpenAPI document, whose paths are relative to `/api`.
    pub fn from_spec(spec_json: &str) -> Self {
        let spec: serde_json::Value = serde_json::from_str(spec_json).unwrap_or_default();
        let Some(paths) = spec["paths"].as_object() else { return Self::default() };
        let routes = paths
            .iter()
            .map(|(path, ops)| {
                let segments = segments(path).map(|s| (!s.starts_with('{')).then(|| s.to_string())).collect();
                let methods = ops.as_object().map(|o| o.keys().map(|m| m.to_uppercase()).collect());
                (segments, methods.unwrap_or_default())
            })
            .collect();
        Self(routes)
    }

    /// The methods `path` serves other than `method`, e.g. `GET, PUT`.
    fn allow(&self, path: &str, method: &str) -> Option<String> {
        let path = path.strip_prefix("/api")?;
        let parts: Vec<&str> = segments(path).collect();
        let (_, methods) = self.0.iter().find(|(route, _)| {
            route.len() == parts.len()
                && route.iter().zip(&parts).all(|(r, p)| r.as_deref().is_none_or(|r| r == *p))
        })?;
        let allowed: Vec<&str> = methods.iter().map(String::as_str).filter(|m| *m != method).collect();
        (!allowed.is_empty()).then(|| allowed.join(", "))
    }
}

fn segments(path: &str) -> impl Iterator<Item = &str> {
    path.split('/').filter(|s| !s.is_empty())
}

pub async fn add_allow<E: Endpoint>(
    next: E,
    req: Request,
    allowed: &'static AllowedMethods,
) -> poem::Result<Response> {
    let path = req.uri().path().to_string();
    let method = req.method().as_str().to_string();
    let mut response = next.call(req).await?.into_response();
    if response.status() == StatusCode::METHOD_NOT_ALLOWED
        && let Some(allow) = allowed.allow(&path, &method)
        && let Ok(value) = allow.parse()
    {
        response.headers_mut().insert(poem::http::header::ALLOW, value);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::AllowedMethods;

    #[test]
    fn matches_templated_paths_and_leaves_out_the_refused_method() {
        let allowed = AllowedMethods::from_spec(
            r#"{"paths": {"/patients/{pid}": {"get": {}, "put": {}, "delete": {}}, "/health": {"get": {}}}}"#,
        );
        assert_eq!(allowed.allow("/api/patients/7/", "DELETE").as_deref(), Some("GET, PUT"));
        assert_eq!(allowed.allow("/api/health", "TRACE").as_deref(), Some("GET"));
        assert_eq!(allowed.allow("/api/nothing", "GET"), None);
    }
}
