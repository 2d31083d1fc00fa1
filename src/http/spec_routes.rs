//! The served OpenAPI documents read back as a route table: which operation a request path and
//! method reach, the names of its path parameters, and its JSON body's schema. The `Allow` header
//! and the field-naming of malformed input both answer from it, so neither can drift from the spec.

use std::{
    collections::BTreeMap,
    sync::{Arc, OnceLock},
};

use serde_json::Value;

/// One operation of a spec.
#[derive(Debug)]
pub struct Operation {
    pub id: String,
    /// Its path parameters in template order (poem names them `param0`, `param1`, …), each with
    /// its segment's position in the full request path (`/api/patients/{pid}`: `pid` at 2).
    pub path_params: Vec<(String, usize)>,
    /// Declared parameters by name, with their schema.
    pub params: BTreeMap<String, Value>,
    /// The statuses the spec lists for it.
    pub responses: std::collections::BTreeSet<u16>,
    /// The JSON request body's schema, when the operation takes one.
    pub json_body: Option<Value>,
    /// The document's `components` as the body check reads them, against which `json_body`'s
    /// references resolve; one copy per document.
    components: Arc<Value>,
    body_validator: OnceLock<Option<jsonschema::Validator>>,
}

impl Operation {
    /// The body's schema as a validator, compiled on first use.
    pub fn body_validator(&self) -> Option<&jsonschema::Validator> {
        self.body_validator
            .get_or_init(|| {
                let mut root = super::malformed::validation_view(self.json_body.as_ref()?);
                root.as_object_mut()?.insert("components".into(), (*self.components).clone());
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

    /// The `index`th path parameter's name and the segment of `path` (a full request path) that
    /// holds it.
    pub fn path_param<'p>(&self, path: &'p str, index: usize) -> Option<(&str, Option<&'p str>)> {
        let (name, at) = self.path_params.get(index)?;
        Some((name.as_str(), segments(path).nth(*at)))
    }
}

struct Route {
    /// The full path's segments, the server prefix's included; `None` for a `{param}`.
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
            let prefix = spec["servers"][0]["url"].as_str().unwrap_or_default().to_string();
            let components = Arc::new(super::malformed::validation_view(&spec["components"]));
            let Some(paths) = spec["paths"].as_object() else { continue };
            for (path, ops) in paths {
                let full = format!("{prefix}{path}");
                let literals: Vec<Option<String>> =
                    segments(&full).map(|s| (!s.starts_with('{')).then(|| s.to_string())).collect();
                let path_params: Vec<(String, usize)> = segments(&full)
                    .enumerate()
                    .filter_map(|(at, s)| Some((s.strip_prefix('{')?.strip_suffix('}')?.to_string(), at)))
                    .collect();
                let methods = ops
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(method, op)| {
                        (method.to_uppercase(), operation(op, path_params.clone(), components.clone()))
                    })
                    .collect();
                routes.push(Route { segments: literals, methods });
            }
        }
        // Literal segments win over parameters (`/appointments/slots` before `/appointments/{id}`).
        routes.sort_by_key(|r| std::cmp::Reverse(r.segments.iter().filter(|s| s.is_some()).count()));
        Self(routes)
    }

    fn route(&self, path: &str) -> Option<&Route> {
        let parts: Vec<&str> = segments(path).collect();
        self.0.iter().find(|route| {
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

fn operation(op: &Value, path_params: Vec<(String, usize)>, components: Arc<Value>) -> Operation {
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
        let enc = routes.operation("/api/encounters/1/2/", "GET").unwrap();
        assert_eq!(enc.path_param("/api/encounters/1/2/", 0), Some(("pid", Some("1"))));
        assert_eq!(enc.path_param("/api/encounters/1/2/", 1), Some(("eid", Some("2"))));
        assert_eq!(enc.path_param("/api/encounters/1/2/", 2), None);
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
