//! Malformed input answered field by field, in one place for every operation: a JSON body is
//! checked against its operation's schema from the served spec before the operation parses it,
//! and whatever poem-openapi still refuses (a path or query parameter of the wrong type, an
//! unknown field) is re-worded with the parameter's API name. Unparseable JSON is a 400; anything
//! else malformed answers `invalid` (422 for /api, 400 for FHIR, as FHIR asks).

use jsonschema::{Validator, error::TypeKind, error::ValidationErrorKind, paths::LocationSegment};
use poem::{Body, Endpoint, IntoResponse, Request, Response, http::StatusCode};
use poem_openapi::error::{ParseMultipartError, ParseParamError, ParsePathError, ParseRequestPayloadError};
use serde_json::Value;

use super::{
    problem::{ApiError, FieldError},
    spec_routes::Operation,
};

/// Where the operations are mounted, and what status input that is well-formed but not what
/// an operation takes gets there.
#[derive(Clone, Copy)]
pub enum Surface {
    Api,
    Fhir,
}

impl Surface {
    fn prefix(self) -> &'static str {
        match self {
            Self::Api => "/api",
            Self::Fhir => "/fhir/r4",
        }
    }

    fn invalid(self) -> StatusCode {
        match self {
            Self::Api => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Fhir => StatusCode::BAD_REQUEST,
        }
    }
}

/// Runs inside the surface's nest, which has taken its prefix off the path. Only a JSON body is
/// looked at on the way in; everything else is read again only when the operation failed.
pub async fn explain<E: Endpoint>(next: E, mut req: Request, surface: Surface) -> poem::Result<Response> {
    let sent = Sent { uri: req.uri().clone(), method: req.method().clone(), surface };
    let mut refused = None;
    if sends_json(&req)
        && let Some(validator) = sent.operation().and_then(Operation::body_validator)
    {
        let bytes = req.take_body().into_bytes().await?;
        match check_body(&bytes, validator, surface.invalid()) {
            Ok(()) => req.set_body(Body::from(bytes)),
            Err(problem) => {
                // The operation still authenticates first (an anonymous caller gets its 401);
                // given a body that is not JSON, it then fails to parse it, and the problem found
                // here is the answer.
                refused = Some(problem);
                req.set_body(Body::from_bytes(bytes::Bytes::from_static(b"\0")));
            }
        }
    }
    match next.call(req).await {
        Ok(response) => Ok(response.into_response()),
        Err(err) => Err(match refused {
            Some(problem) if err.is::<ParseRequestPayloadError>() => problem.into(),
            _ => name_the_field(err, &sent),
        }),
    }
}

fn sends_json(req: &Request) -> bool {
    req.content_type().is_some_and(|ct| ct.starts_with("application/json"))
}

fn check_body(bytes: &[u8], validator: &Validator, invalid: StatusCode) -> Result<(), ApiError> {
    let body: Value = serde_json::from_slice(bytes).map_err(|err| {
        let message = format!("is not valid JSON: {err}");
        ApiError::invalid_fields(StatusCode::BAD_REQUEST, vec![field_error("body", message)])
    })?;
    // poem-openapi reads `null` as an absent optional field, so the schema judges it that way too.
    let body = without_null_members(body);
    let errors: Vec<FieldError> = validator.iter_errors(&body).flat_map(|e| describe(&e)).collect();
    if errors.is_empty() { Ok(()) } else { Err(ApiError::invalid_fields(invalid, errors)) }
}

fn without_null_members(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, without_null_members(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(without_null_members).collect()),
        other => other,
    }
}

/// One entry per problem, named by its path in the body (`segments[2].start_ms`). Messages say
/// what is expected without echoing the value sent, which may be a password or PHI.
fn describe(error: &jsonschema::ValidationError<'_>) -> Vec<FieldError> {
    let at = field_path(error.instance_path().iter());
    let within = |name: &str| if at == "body" { name.to_string() } else { format!("{at}.{name}") };
    let message = match error.kind() {
        ValidationErrorKind::Required { property } => {
            return vec![field_error(&within(property.as_str().unwrap_or_default()), "is required".into())];
        }
        ValidationErrorKind::AdditionalProperties { unexpected } => {
            return unexpected.iter().map(|name| field_error(&within(name), unknown_field())).collect();
        }
        ValidationErrorKind::Type { kind } => format!("must be {}", type_names(kind)),
        ValidationErrorKind::MinLength { limit } => format!("must be at least {limit} characters long"),
        ValidationErrorKind::MaxLength { limit } => format!("must be at most {limit} characters long"),
        ValidationErrorKind::Minimum { limit } => format!("must be at least {}", number(limit)),
        ValidationErrorKind::Maximum { limit } => format!("must be at most {}", number(limit)),
        ValidationErrorKind::ExclusiveMinimum { limit } => format!("must be more than {}", number(limit)),
        ValidationErrorKind::ExclusiveMaximum { limit } => format!("must be less than {}", number(limit)),
        ValidationErrorKind::MinItems { limit } => format!("must have at least {limit} items"),
        ValidationErrorKind::MaxItems { limit } => format!("must have at most {limit} items"),
        ValidationErrorKind::MaxProperties { limit } => format!("must have at most {limit} entries"),
        ValidationErrorKind::Pattern { pattern } => format!("must match the pattern {pattern}"),
        ValidationErrorKind::Enum { options } => format!("must be one of {}", one_of(options)),
        ValidationErrorKind::OneOfNotValid { .. } | ValidationErrorKind::AnyOf { .. } => {
            "matches none of the forms the spec allows for it".into()
        }
        other => format!("is not valid ({})", other.keyword()),
    };
    vec![field_error(&at, message)]
}

/// `100` rather than the `100.0` a spec's float bound prints as.
fn number(limit: &Value) -> String {
    match limit.as_f64() {
        Some(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", f as i64),
        _ => limit.to_string(),
    }
}

fn field_path<'a>(segments: impl Iterator<Item = LocationSegment<'a>>) -> String {
    let mut path = String::new();
    for segment in segments {
        match segment {
            LocationSegment::Property(name) if path.is_empty() => path.push_str(&name),
            LocationSegment::Property(name) => {
                path.push('.');
                path.push_str(&name);
            }
            LocationSegment::Index(i) => path.push_str(&format!("[{i}]")),
        }
    }
    if path.is_empty() { "body".into() } else { path }
}

fn type_names(kind: &TypeKind) -> String {
    let article = |t: String| match t.as_str() {
        "integer" | "array" | "object" => format!("an {t}"),
        "null" => t,
        _ => format!("a {t}"),
    };
    match kind {
        TypeKind::Single(t) => article(t.to_string()),
        TypeKind::Multiple(set) => {
            set.iter().map(|t| article(t.to_string())).collect::<Vec<_>>().join(" or ")
        }
    }
}

fn one_of(options: &Value) -> String {
    let names: Vec<String> = options
        .as_array()
        .into_iter()
        .flatten()
        .map(|o| o.as_str().map_or_else(|| o.to_string(), str::to_string))
        .collect();
    names.join(", ")
}

fn unknown_field() -> String {
    "is not a field of this request".into()
}

fn field_error(field: &str, message: String) -> FieldError {
    FieldError { field: field.to_string(), message }
}

/// What the request named, to find its operation and the parameter values it sent.
struct Sent {
    uri: poem::http::Uri,
    method: poem::http::Method,
    surface: Surface,
}

impl Sent {
    fn path(&self) -> String {
        format!("{}{}", self.surface.prefix(), self.uri.path())
    }

    fn operation(&self) -> Option<&'static Operation> {
        super::docs::routes().operation(&self.path(), self.method.as_str())
    }

    fn query(&self, name: &str) -> Option<String> {
        let pairs: Vec<(String, String)> =
            serde_urlencoded::from_str(self.uri.query().unwrap_or_default()).unwrap_or_default();
        pairs.into_iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }
}

/// poem-openapi's own parse errors, re-worded with the API's names; any other error passes.
fn name_the_field(err: poem::Error, sent: &Sent) -> poem::Error {
    let op = sent.operation();
    let error = if let Some(e) = err.downcast_ref::<ParsePathError>() {
        // poem routes path parameters as `param0`, `param1`, … in template order.
        let path = sent.path();
        let index = e.name.strip_prefix("param").and_then(|n| n.parse::<usize>().ok());
        let (name, value) =
            index.zip(op).and_then(|(i, op)| op.path_param(&path, i)).unwrap_or((e.name, None));
        field_error(name, parameter_message(op, name, value, &e.reason))
    } else if let Some(e) = err.downcast_ref::<ParseParamError>() {
        field_error(e.name, parameter_message(op, e.name, sent.query(e.name).as_deref(), &e.reason))
    } else if let Some(e) = err.downcast_ref::<ParseRequestPayloadError>() {
        payload_error(&e.reason)
    } else if let Some(e) = err.downcast_ref::<ParseMultipartError>() {
        field_error("body", format!("could not be read: {}", e.reason))
    } else {
        return err;
    };
    ApiError::invalid_fields(sent.surface.invalid(), vec![error]).into()
}

/// The value sent, judged by the parameter's schema as a body field would be.
fn parameter_message(op: Option<&Operation>, name: &str, value: Option<&str>, reason: &str) -> String {
    let schema = op.and_then(|op| op.params.get(name));
    let (Some(schema), Some(value)) = (schema, value) else {
        return if reason.contains("expects an input value") {
            "is required".into()
        } else {
            format!("is not valid: {reason}")
        };
    };
    let typed = match schema["type"].as_str() {
        Some("integer") => {
            value.parse::<i64>().map(Value::from).or_else(|_| value.parse::<u64>().map(Value::from)).ok()
        }
        Some("number") => value.parse::<f64>().ok().map(Value::from),
        Some("boolean") => value.parse::<bool>().ok().map(Value::from),
        _ => Some(Value::from(value)),
    };
    let Some(typed) = typed else {
        let expected = match schema["type"].as_str() {
            Some("boolean") => "true or false".to_string(),
            Some(t) => type_names(&TypeKind::Single(t.parse().unwrap_or(jsonschema::JsonType::String))),
            None => "valid".to_string(),
        };
        return format!("must be {expected}");
    };
    jsonschema::validator_for(&validation_view(schema))
        .ok()
        .and_then(|v| v.iter_errors(&typed).flat_map(|e| describe(&e)).next())
        .map_or_else(|| format!("is not valid: {reason}"), |e| e.message)
}

/// What the body schema could not say: an unknown field (`deny_unknown_fields`), or a value
/// poem-openapi's own types refuse (a date it cannot read).
fn payload_error(reason: &str) -> FieldError {
    let unknown = reason.split("unknown field `").nth(1).and_then(|rest| rest.split('`').next());
    match unknown {
        Some(name) => field_error(name, unknown_field()),
        None => field_error("body", format!("could not be read: {reason}")),
    }
}

/// The spec as the body check reads it: poem-openapi enforces the integer formats' ranges, which
/// the spec only names.
pub fn validation_view(schema: &Value) -> Value {
    match schema {
        Value::Object(map) => {
            let mut out: serde_json::Map<String, Value> =
                map.iter().map(|(k, v)| (k.clone(), validation_view(v))).collect();
            if let Some((min, max)) = map.get("format").and_then(Value::as_str).and_then(integer_range) {
                out.entry("minimum").or_insert(min);
                out.entry("maximum").or_insert(max);
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(validation_view).collect()),
        other => other.clone(),
    }
}

fn integer_range(format: &str) -> Option<(Value, Value)> {
    Some(match format {
        "int8" => (i8::MIN.into(), i8::MAX.into()),
        "int16" => (i16::MIN.into(), i16::MAX.into()),
        "int32" => (i32::MIN.into(), i32::MAX.into()),
        "uint8" => (0.into(), u8::MAX.into()),
        "uint16" => (0.into(), u16::MAX.into()),
        "uint32" => (0.into(), u32::MAX.into()),
        "uint64" => (0.into(), u64::MAX.into()),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn errors(schema: Value, body: &str) -> Result<(), Vec<(String, String)>> {
        let mut root = validation_view(&schema);
        root.as_object_mut().unwrap().insert(
            "components".into(),
            validation_view(&json!({"schemas": {
            "Segment": {"type": "object", "required": ["start_ms"], "properties": {
                "start_ms": {"type": "integer", "format": "uint32"}}}}})),
        );
        let validator = jsonschema::validator_for(&root).unwrap();
        check_body(body.as_bytes(), &validator, StatusCode::UNPROCESSABLE_ENTITY).map_err(|e| {
            let problem = e.into_problem();
            problem.errors.into_iter().map(|e| (e.field, e.message)).collect()
        })
    }

    fn login() -> Value {
        json!({"type": "object", "required": ["username", "password"], "properties": {
            "username": {"type": "string", "minLength": 1},
            "password": {"type": "string", "maxLength": 8},
            "totp_code": {"type": "string"},
            "amount": {"anyOf": [{"type": "string", "pattern": "^[0-9.]+$"}, {"type": "number"}]},
            "segments": {"type": "array", "items": {"$ref": "#/components/schemas/Segment"}}}})
    }

    fn pair(field: &str, message: &str) -> (String, String) {
        (field.to_string(), message.to_string())
    }

    #[test]
    fn names_each_missing_or_mistyped_field_without_echoing_values() {
        assert_eq!(errors(login(), r#"{"username": "admin"}"#), Err(vec![pair("password", "is required")]));
        let found = errors(login(), r#"{"username": 123, "password": "secret-long-one"}"#).unwrap_err();
        assert!(found.contains(&pair("username", "must be a string")), "{found:?}");
        assert!(found.contains(&pair("password", "must be at most 8 characters long")), "{found:?}");
        assert!(found.iter().all(|(_, m)| !m.contains("secret")), "{found:?}");
    }

    #[test]
    fn nested_items_are_named_by_index_and_formats_bound_integers() {
        let found = errors(
            login(),
            r#"{"username": "a", "password": "b", "segments": [{"start_ms": 1}, {"start_ms": -4}, {}]}"#,
        );
        assert_eq!(
            found,
            Err(vec![
                pair("segments[1].start_ms", "must be at least 0"),
                pair("segments[2].start_ms", "is required")
            ])
        );
    }

    #[test]
    fn nulls_stand_for_absent_optional_fields() {
        assert_eq!(
            errors(login(), r#"{"username": "a", "password": "b", "totp_code": null, "amount": 12.5}"#),
            Ok(())
        );
        assert_eq!(errors(login(), r#"{"username": "a", "password": "b", "amount": "12.50"}"#), Ok(()));
        assert_eq!(
            errors(login(), r#"{"username": null, "password": "b"}"#),
            Err(vec![pair("username", "is required")])
        );
        let found = errors(login(), r#"{"username": "a", "password": "b", "amount": "twelve"}"#).unwrap_err();
        assert_eq!(found[0].0, "amount");
    }

    #[test]
    fn unparseable_json_is_a_bad_request_naming_the_body() {
        let validator = jsonschema::validator_for(&json!({})).unwrap();
        let problem = check_body(b"{\"username\":", &validator, StatusCode::UNPROCESSABLE_ENTITY)
            .unwrap_err()
            .into_problem();
        assert_eq!(problem.status, 400);
        assert_eq!(problem.errors[0].field, "body");
        assert!(problem.errors[0].message.starts_with("is not valid JSON"), "{:?}", problem.errors);
    }

    #[test]
    fn poem_payload_errors_name_an_unknown_field() {
        let e = payload_error("failed to parse \"EncounterInput\": unknown field `bogus`.");
        assert_eq!((e.field.as_str(), e.message.as_str()), ("bogus", "is not a field of this request"));
        assert_eq!(payload_error("Expected input type \"date\"").field, "body");
    }
}
