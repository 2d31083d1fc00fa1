//! The served OpenAPI documents read back as a route table: which operation a request path and
//! method reach, the names of its path parameters, and its JSON body's schema. The `Allow` header
//! and the field-naming of malformed input both answer from it, so neither can drift from the spec.

use std::{collections::BTreeMap, sync::OnceLock};

use serde_json::Value;

/// One operation of a spec.
#[derive(Debug)]
pub struct Operation {
    pub id: String,
    /// The server URL the template is under (`/api`) and the template (`/patients/{pid}`).
    pub prefix: String,
    pub template: String,
    /// `{name}` segments of the path template, in order (poem names them `param0`, `param1`, …).
    pub path_params: Vec<String>,
    /// Declared parameters by name, with their schema.
    pub params: BTreeMap<String, Value>,
    /// The statuses the spec lists for it.
    pub responses: std::collections::BTreeSet<u16>,
    /// The JSON request body's schema, when the operation takes one.
    pub json_body: Option<Value>,
    /// The document's `components`, against which `json_body`'s references resolve.
    components: std::sync::Arc<Value>,
    body_validator: OnceLock<Option<jsonschema::Validator>>,
}

impl Operation {
    /// The body's schema as a validator, compiled on first use.
    pub fn body_validator(&self) -> Option<&jsonschema::Validator> {
        self.body_validator
            .get_or_init(|| {
                let body = self.json_body.as_ref()?;
                let mut root = super::malformed::validation_view(body);
                let components = super::malformed::validation_view(&self.components);
                root.as_object_mut()?.insert("components".into(), components);
                match jsonschema::validator_for(&root) {
                    Ok(validator) => Some(validator),
                    Err(err) => {
                        tracing::error!(operation = %self.id, error = %err, "request schema does not compile");
                        None
                    }
                }
            })
            .as_ref()
    }
}

struct Route {
    prefix: String,
    /// `None` for a `{param}` segment.
    segments: Vec<Option<String>>,
    methods: BTreeMap<String, Operation>,
}

#[derive(Default)]
pub struct SpecRoutes(Vec<Route>);

impl SpecRoutes {
    /// From OpenAPI documents, whose paths are relative to their first server's URL.
    pub fn from_specs(specs: &[&str]) -> Self {
        let mut routes = Vec::new();
        for spec_json in specs {
            let spec: Value = serde_json::from_str(spec_json).unwrap_or_default();
            let prefix =
                spec["servers"][0]["url"].as_str().unwrap_or_default().trim_end_matches('/').to_string();
            let components = std::sync::Arc::new(spec["components"].clone());
            let Some(paths) = spec["paths"].as_object() else { continue };
            for (path, ops) in paths {
                let literals = segments(path).map(|s| (!s.starts_with('{')).then(|| s.to_string())).collect();
                let path_params = segments(path)
                    .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
                    .map(str::to_string)
                    .collect::<Vec<_>>();
                let methods = ops
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(method, op)| {
                        (
                            method.to_uppercase(),
                            operation(op, (&prefix, path), path_params.clone(), components.clone()),
                        )
                    })
                    .collect();
                routes.push(Route { prefix: prefix.clone(), segments: literals, methods });
            }
        }
        // Literal segments win over parameters (`/appointments/slots` before `/appointments/{id}`).
        routes.sort_by_key(|r| std::cmp::Reverse(r.segments.iter().filter(|s| s.is_some()).count()));
        Self(routes)
    }

    fn route(&self, path: &str) -> Option<&Route> {
        self.0.iter().find(|route| {
            let Some(rest) = path.strip_prefix(route.prefix.as_str()) else { return false };
            let parts: Vec<&str> = segments(rest).collect();
            route.segments.len() == parts.len()
                && route.segments.iter().zip(&parts).all(|(r, p)| r.as_deref().is_none_or(|r| r == *p))
        })
    }

    /// The operation `method` reaches at `path` (a full request path, e.g. `/api/patients/7/`).
    pub fn operation(&self, path: &str, method: &str) -> Option<&Operation> {
        self.route(path)?.methods.get(method)
    }

    /// The methods `path` serves other than `method`, e.g. `GET, PUT`.
    pub fn allow(&self, path: &str, method: &str) -> Option<String> {
        let route = self.route(path)?;
        let allowed: Vec<&str> = route.methods.keys().map(String::as_str).filter(|m| *m != method).collect();
        (!allowed.is_empty()).then(|| allowed.join(", "))
    }
}

fn operation(
    op: &Value,
    (prefix, template): (&str, &str),
    path_params: Vec<String>,
    components: std::sync::Arc<Value>,
) -> Operation {
    let params = op["parameters"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| Some((p["name"].as_str()?.to_string(), p["schema"].clone())))
        .collect();
    let json_body = op["requestBody"]["content"]
        .as_object()
        .and_then(|content| content.iter().find(|(ct, _)| ct.starts_with("application/json")))
        .map(|(_, media)| media["schema"].clone());
    let responses =
        op["responses"].as_object().into_iter().flatten().filter_map(|(code, _)| code.parse().ok()).collect();
    Operation {
        responses,
        id: op["operationId"].as_str().unwrap_or_default().to_string(),
        prefix: prefix.to_string(),
        template: template.to_string(),
        path_params,
        params,
        json_body,
        components,
        body_validator: OnceLock::new(),
    }
}

fn segments(path: &str) -> impl Iterator<Item = &str> {
    path.split('/').filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::SpecRoutes;

    #[test]
    fn matches_templated_paths_and_leaves_out_the_refused_method() {
        let routes = SpecRoutes::from_specs(&[
            r#"{"servers": [{"url": "/api"}], "paths": {"/patients/{pid}": {"get": {}, "put": {}, "delete": {}}, "/health": {"get": {}}}}"#,
            r#"{"servers": [{"url": "/fhir/r4"}], "paths": {"/Patient/{id}": {"get": {}}}}"#,
        ]);
        assert_eq!(routes.allow("/api/patients/7/", "DELETE").as_deref(), Some("GET, PUT"));
        assert_eq!(routes.allow("/api/health", "TRACE").as_deref(), Some("GET"));
        assert_eq!(routes.allow("/fhir/r4/Patient/x", "PUT").as_deref(), Some("GET"));
        assert_eq!(routes.allow("/api/nothing", "GET"), None);
        assert_eq!(routes.allow("/patients/7", "DELETE"), None, "only under its server");
    }

    #[test]
    fn literal_segments_win_and_path_parameters_are_named_in_order() {
        let routes = SpecRoutes::from_specs(&[r#"{"servers": [{"url": "/api"}], "paths": {
                "/appointments/{id}": {"get": {"operationId": "one"}},
                "/appointments/slots": {"get": {"operationId": "slots"}},
                "/encounters/{pid}/{eid}": {"get": {"operationId": "enc"}}}}"#]);
        assert_eq!(routes.operation("/api/appointments/slots", "GET").unwrap().id, "slots");
        assert_eq!(routes.operation("/api/appointments/9", "GET").unwrap().id, "one");
        assert_eq!(routes.operation("/api/encounters/1/2/", "GET").unwrap().path_params, ["pid", "eid"]);
        assert!(routes.operation("/api/appointments/9", "POST").is_none());
    }
}

#[cfg(test)]
mod served {
    #[test]
    fn every_json_body_of_the_served_specs_compiles_to_a_validator() {
        let routes =
            super::SpecRoutes::from_specs(&[crate::http::docs::spec(), crate::http::docs::fhir_spec()]);
        let with_body: Vec<_> =
            routes.0.iter().flat_map(|r| r.methods.values()).filter(|op| op.json_body.is_some()).collect();
        assert!(with_body.len() > 40, "{} operations take JSON", with_body.len());
        for op in with_body {
            assert!(op.body_validator().is_some(), "{}", op.id);
        }
    }
}
