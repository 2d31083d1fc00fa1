//! The `Allow` header RFC 9110 requires on every 405, built from the spec's paths and methods.

use poem::{Endpoint, IntoResponse, Request, Response, http::StatusCode};

/// Each spec path as its server prefix (`/api`, `/fhir/r4`) and segments (`None` for a
/// `{param}`), with the methods it serves.
#[derive(Debug, Default)]
pub struct AllowedMethods(Vec<(String, Vec<Option<String>>, Vec<String>)>);

impl AllowedMethods {
    /// From OpenAPI documents, whose paths are relative to their first server's URL.
    pub fn from_specs(specs: &[&str]) -> Self {
        let mut routes = Vec::new();
        for spec_json in specs {
            let spec: serde_json::Value = serde_json::from_str(spec_json).unwrap_or_default();
            let prefix =
                spec["servers"][0]["url"].as_str().unwrap_or_default().trim_end_matches('/').to_string();
            let Some(paths) = spec["paths"].as_object() else { continue };
            for (path, ops) in paths {
                let segments = segments(path).map(|s| (!s.starts_with('{')).then(|| s.to_string())).collect();
                let methods = ops.as_object().map(|o| o.keys().map(|m| m.to_uppercase()).collect());
                routes.push((prefix.clone(), segments, methods.unwrap_or_default()));
            }
        }
        Self(routes)
    }

    /// The methods `path` serves other than `method`, e.g. `GET, PUT`.
    fn allow(&self, path: &str, method: &str) -> Option<String> {
        let (_, _, methods) = self.0.iter().find(|(prefix, route, _)| {
            let Some(rest) = path.strip_prefix(prefix.as_str()) else { return false };
            let parts: Vec<&str> = segments(rest).collect();
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
        let allowed = AllowedMethods::from_specs(&[
            r#"{"servers": [{"url": "/api"}], "paths": {"/patients/{pid}": {"get": {}, "put": {}, "delete": {}}, "/health": {"get": {}}}}"#,
            r#"{"servers": [{"url": "/fhir/r4"}], "paths": {"/Patient/{id}": {"get": {}}}}"#,
        ]);
        assert_eq!(allowed.allow("/api/patients/7/", "DELETE").as_deref(), Some("GET, PUT"));
        assert_eq!(allowed.allow("/api/health", "TRACE").as_deref(), Some("GET"));
        assert_eq!(allowed.allow("/fhir/r4/Patient/x", "PUT").as_deref(), Some("GET"));
        assert_eq!(allowed.allow("/api/nothing", "GET"), None);
        assert_eq!(allowed.allow("/patients/7", "DELETE"), None, "only under its server");
    }
}
