//! The served /api spec, made exact where poem-openapi's generated one is not:
//! - Error responses. Every operation returns the one `ApiError`, whose type names every status
//!   the API has; each operation keeps the statuses its shape can produce (credentials,
//!   parameters, a body, a precondition, a write), each with its problem types. The test suite
//!   checks every response it sees against this (`helpers::documented_app`).
//! - Links. What a create returns names the resource that the operations under it act on
//!   (`POST /transcriptions` → every `/transcriptions/{id}/…`), so clients and schemathesis's
//!   stateful phase can follow a create with valid ids.
//! - Examples. The creates carry a body that works on the demo data, so the explorer's "Try it
//!   out" starts from a request that succeeds, and schemathesis's examples phase creates real
//!   resources for the links to follow.
//! - Decimals. poem-openapi reads a decimal from a JSON string or number; the spec said string.
//! - Nulls. An optional field may be sent as `null` (read as absent) and an optional response
//!   field may come back `null`; OpenAPI 3.0 says so with `nullable`, which the generator omits.

use std::collections::BTreeSet;

use poem::http::StatusCode;
use poem_openapi::ApiResponse;
use serde_json::Value;

use super::problem::{ApiError, problem_type};

/// Operations that take credentials in the body instead of a header, and answer 401 and 429.
const SIGN_INS: [&str; 4] = ["auth_login", "auth_refresh", "auth_refresh_if_active", "auth_guest"];

/// What a shape cannot tell: (operation, status) pairs beyond the rules in `statuses`.
const EXTRA: [(&str, u16); 4] = [
    // Audio still being uploaded cannot be played back yet.
    ("transcriptions_audio_get", 409),
    // Only a filed transcription has a document to send.
    ("transcriptions_hl7", 409),
    // Patient deletion answers 405 while the practice has it switched off.
    ("patients_delete", 405),
    // A preview link is its own credential: expired or revoked, it is refused.
    ("document_view", 401),
];

/// Problem types other than the one named after the status, by status and operation.
const SPECIAL_TYPES: [(u16, &str, &str); 3] = [
    (401, "auth_login", "mfa-required: the account needs its second factor; send `totp_code`"),
    (401, "auth_refresh_if_active", "idle: the device was idle too long and is signed out"),
    (409, "appointments_", "slot-taken: another appointment holds the time; `errors` names it"),
];

pub fn exact(spec: &str) -> String {
    let mut spec: Value = serde_json::from_str(spec).unwrap_or_default();
    prune_responses(&mut spec);
    add_links(&mut spec);
    add_examples(&mut spec);
    stored_media_types(&mut spec);
    if let Some(schemas) = spec["components"]["schemas"].as_object_mut() {
        schemas.values_mut().for_each(decimals_as_string_or_number);
        schemas.values_mut().for_each(mark_optional_nullable);
    }
    serde_json::to_string(&spec).unwrap_or_default()
}

/// Stored files go back in the type they were stored with, and audio is taken only in the types
/// `domain::audio` accepts; poem-openapi's `Binary` says `application/octet-stream` for both.
fn stored_media_types(spec: &mut Value) {
    for path in ["/documents/{id}/content", "/document-views/{token}", "/transcriptions/{id}/audio"] {
        for code in ["200", "206"] {
            as_stored(&mut spec["paths"][path]["get"]["responses"][code]["content"]);
        }
    }
    let upload = &mut spec["paths"]["/transcriptions/{id}/audio"]["put"]["requestBody"]["content"];
    if let Some(bytes) = upload.as_object_mut().and_then(|content| content.remove(OCTETS)) {
        *upload =
            crate::domain::audio::CONTENT_TYPES.iter().map(|t| (t.to_string(), bytes.clone())).collect();
    }
}

const OCTETS: &str = "application/octet-stream";

/// Bytes a `Binary` payload declares as `application/octet-stream` go out in whatever type they
/// were stored with.
fn as_stored(content: &mut Value) {
    if let Some(content) = content.as_object_mut()
        && let Some(bytes) = content.remove(OCTETS)
    {
        content.insert("*/*".into(), bytes);
    }
}

/// The FHIR document as served: `FhirError` declares every status, and a read cannot answer
/// those only a write can.
pub fn fhir_exact(spec: &str) -> String {
    let mut spec: Value = serde_json::from_str(spec).unwrap_or_default();
    binary_as_resource(&mut spec);
    for item in spec["paths"].as_object_mut().into_iter().flat_map(|paths| paths.values_mut()) {
        if let Some(responses) = item["get"]["responses"].as_object_mut() {
            responses.retain(|code, _| !["409", "413", "415"].contains(&code.as_str()));
        }
    }
    serde_json::to_string(&spec).unwrap_or_default()
}

/// `Binary` answers its bytes as they are, in the type they were stored with, or a Binary resource
/// when asked for FHIR JSON; an `ApiResponse` keeps one content type per status, so the second is
/// added here.
fn binary_as_resource(spec: &mut Value) {
    let content = &mut spec["paths"]["/Binary/{id}"]["get"]["responses"]["200"]["content"];
    as_stored(content);
    let Some(content) = content.as_object_mut() else {
        return;
    };
    let text = serde_json::json!({"type": "string"});
    let resource = serde_json::json!({
        "type": "object",
        "required": ["resourceType", "id", "contentType", "data"],
        "properties": {"resourceType": text, "id": text, "contentType": text, "data": {"type": "string", "format": "byte"}},
    });
    content.insert(crate::http::fhir::FHIR_JSON.into(), serde_json::json!({ "schema": resource }));
}

fn prune_responses(spec: &mut Value) {
    // The statuses `ApiError` declares on every operation; an operation's own response type may
    // declare others (206, 416), which stay.
    let api_error: BTreeSet<u16> =
        <ApiError as ApiResponse>::meta().responses.iter().filter_map(|r| r.status).collect();
    let Some(paths) = spec["paths"].as_object_mut() else { return };
    for item in paths.values_mut() {
        let Some(methods) = item.as_object_mut() else { continue };
        for (method, op) in methods.iter_mut() {
            let keep = statuses(method, op);
            let id = op["operationId"].as_str().unwrap_or_default().to_string();
            let Some(responses) = op["responses"].as_object_mut() else { continue };
            responses.retain(|code, _| {
                code.parse::<u16>().is_ok_and(|c| !api_error.contains(&c) || keep.contains(&c))
            });
            for (code, response) in responses.iter_mut() {
                if let Ok(code) = code.parse::<u16>()
                    && code >= 400
                {
                    name_problem_types(response, code, &id);
                }
            }
        }
    }
}

/// (creating operation, the collection its resources live under, the response field naming one).
const CREATES: [(&str, &str, &str); 15] = [
    ("facilities_create", "/openemr/facilities", "id"),
    ("admin_users_create", "/admin/users", "id"),
    ("appointments_book", "/appointments", "id"),
    ("chat_rooms_create", "/chat/rooms", "id"),
    ("encounters_create", "/encounters", "encounter"),
    ("patients_create", "/patients", "pid"),
    ("patient_documents_upload", "/documents", "id"),
    ("patient_prescriptions_create", "/prescriptions", "id"),
    ("patient_problems_create", "/issues", "id"),
    ("patient_allergies_create", "/issues", "id"),
    ("patient_medications_create", "/issues", "id"),
    ("payments_create", "/payments", "id"),
    ("transcriptions_create", "/transcriptions", "id"),
    ("webhooks_create", "/webhooks", "id"),
    ("encounter_charges_create", "/charges", "id"),
];

fn add_links(spec: &mut Value) {
    let Some(paths) = spec["paths"].as_object() else { return };
    let mut links: Vec<(String, String, serde_json::Map<String, Value>)> = Vec::new();
    for (source, collection, field) in CREATES {
        let Some((path, method)) = find_operation(paths, source) else { continue };
        let etag = paths[&path][&method]["responses"].as_object().into_iter().flatten().any(|(code, r)| {
            code.starts_with('2')
                && r["headers"].as_object().is_some_and(|h| h.keys().any(|k| k.eq_ignore_ascii_case("etag")))
        });
        let mut targets = serde_json::Map::new();
        for (target_path, item) in paths {
            let Some(rest) = target_path.strip_prefix(collection).and_then(|r| r.strip_prefix("/{")) else {
                continue;
            };
            let param = rest.split('}').next().unwrap_or_default();
            for op in item.as_object().into_iter().flat_map(|ops| ops.values()) {
                let Some(id) = op["operationId"].as_str() else { continue };
                let mut parameters = serde_json::Map::new();
                parameters.insert(param.to_string(), Value::from(format!("$response.body#/{field}")));
                let takes_if_match =
                    op["parameters"].as_array().into_iter().flatten().any(|p| p["name"] == "If-Match");
                if etag && takes_if_match {
                    // The version just created is the one an edit or a transition names.
                    parameters.insert("header.If-Match".into(), Value::from("$response.header.ETag"));
                }
                targets
                    .insert(id.to_string(), serde_json::json!({"operationId": id, "parameters": parameters}));
            }
        }
        links.push((path, method, targets));
    }
    for (path, method, targets) in links {
        let Some(responses) = spec["paths"][&path][&method]["responses"].as_object_mut() else { continue };
        let successes = responses.iter_mut().filter(|(code, _)| code.starts_with('2')).map(|(_, r)| r);
        for response in successes.filter_map(Value::as_object_mut) {
            let links = response.entry("links").or_insert_with(|| Value::Object(Default::default()));
            if let Some(links) = links.as_object_mut() {
                links.extend(targets.clone());
            }
        }
    }
}

fn find_operation(paths: &serde_json::Map<String, Value>, id: &str) -> Option<(String, String)> {
    paths.iter().find_map(|(path, item)| {
        let (method, _) = item.as_object()?.iter().find(|(_, op)| op["operationId"] == id)?;
        Some((path.clone(), method.clone()))
    })
}

fn decimals_as_string_or_number(schema: &mut Value) {
    match schema {
        Value::Object(map) if map.get("format").and_then(Value::as_str) == Some("decimal") => {
            let description = map.remove("description");
            let mut decimal = serde_json::json!({"anyOf": [
                {"type": "string", "format": "decimal", "pattern": r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)$"},
                {"type": "number"}]});
            if let (Some(description), Some(out)) = (description, decimal.as_object_mut()) {
                out.insert("description".into(), description);
            }
            *schema = decimal;
        }
        Value::Object(map) => map.values_mut().for_each(decimals_as_string_or_number),
        Value::Array(items) => items.iter_mut().for_each(decimals_as_string_or_number),
        _ => {}
    }
}

/// Request bodies that succeed on the demo data (`openemr-fixtures/`), by operation.
const EXAMPLES: [(&str, &str); 10] = [
    (
        "facilities_create",
        r#"{"name": "Harbour Street Clinic", "phone": "(217) 555-0170", "city": "Springfield", "state": "IL",
            "npi": "1234567893", "pos_code": 11}"#,
    ),
    (
        "patients_create",
        r#"{"first_name": "Ana", "last_name": "Example", "dob": "1980-04-12", "sex": "Female"}"#,
    ),
    ("encounters_create", r#"{"pid": 1, "reason": "Follow-up of hypertension", "facility_id": 3}"#),
    (
        "transcriptions_create",
        r#"{"id": "6f1c1a52-0d0e-4a4e-9a53-2f3c1b7e9d10", "pid": 1, "title": "Follow-up visit", "segments": [
            {"start_ms": 0, "end_ms": 4200, "speaker_label": "Dr. Garcia", "speaker_role": "clinician",
             "text": "Patient returns for follow-up of hypertension.", "confidence": 0.94}]}"#,
    ),
    (
        "messages_create",
        r#"{"to": ["drgarcia"], "text": "Please review the latest blood pressure readings.", "pid": 1}"#,
    ),
    ("chat_rooms_create", r#"{"title": "Consultation", "pid": 1, "members": ["drgarcia"]}"#),
    (
        "webhooks_create",
        r#"{"url": "https://hooks.clinic.example/sidecar", "event_types": ["transcription.filed"]}"#,
    ),
    ("encounter_vitals_create", r#"{"bps": 128, "bpd": 82, "pulse": 72}"#),
    ("patient_problems_create", r#"{"title": "Essential hypertension", "begdate": "2020-01-01"}"#),
    ("payments_create", r#"{"pid": 1, "method": "cash", "amount": "10.00"}"#),
];

fn add_examples(spec: &mut Value) {
    for (id, example) in EXAMPLES {
        let Some((path, method)) = spec["paths"].as_object().and_then(|paths| find_operation(paths, id))
        else {
            continue;
        };
        let Some(content) = spec["paths"][&path][&method]["requestBody"]["content"].as_object_mut() else {
            continue;
        };
        for media in content.values_mut().filter_map(Value::as_object_mut) {
            media.insert("example".into(), serde_json::from_str(example).unwrap_or_default());
        }
    }
}

/// Every property an object does not require, here and in nested inline objects, may be null.
fn mark_optional_nullable(schema: &mut Value) {
    let required: Vec<String> = schema["required"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r.as_str().map(str::to_string))
        .collect();
    if let Some(properties) = schema.get_mut("properties").and_then(Value::as_object_mut) {
        for (name, property) in properties.iter_mut() {
            mark_optional_nullable(property);
            if required.contains(name) {
                continue;
            }
            if property.get("$ref").is_some() {
                // OpenAPI 3.0 ignores siblings of `$ref`, so the reference goes under `allOf`.
                *property = serde_json::json!({"allOf": [property.take()], "nullable": true});
            } else if let Some(object) = property.as_object_mut() {
                object.insert("nullable".into(), Value::Bool(true));
            }
        }
    }
    if let Some(items) = schema.get_mut("items") {
        mark_optional_nullable(items);
    }
}

fn statuses(method: &str, op: &Value) -> BTreeSet<u16> {
    let id = op["operationId"].as_str().unwrap_or_default();
    let params: Vec<&Value> = op["parameters"].as_array().map(|p| p.iter().collect()).unwrap_or_default();
    let located = |place: &str| params.iter().any(|p| p["in"] == place);
    let header = |name: &str| params.iter().any(|p| p["in"] == "header" && p["name"] == name);
    let has_body = op.get("requestBody").is_some();
    let secured = op.get("security").is_some();
    let sign_in = SIGN_INS.contains(&id);
    let body = op["requestBody"].to_string();
    let checks_password = body.contains("PasswordConfirmation") || body.contains("TotpRemoval");
    let mut codes = BTreeSet::from([400, 500, 503]);
    let mut add = |code: u16, when: bool| {
        if when {
            codes.insert(code);
        }
    };
    add(401, secured || sign_in);
    add(403, secured);
    add(404, (located("path") || located("query") || has_body) && !sign_in || id == "auth_guest");
    add(409, method != "get" && !sign_in);
    add(412, header("If-Match"));
    add(428, header("If-Match"));
    add(413, has_body);
    add(415, has_body);
    add(422, has_body || !params.is_empty());
    add(429, sign_in || checks_password || id.starts_with("chat_"));
    codes.extend(EXTRA.iter().filter(|(op, _)| *op == id).map(|(_, code)| *code));
    codes
}

fn name_problem_types(response: &mut Value, code: u16, id: &str) {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut types = vec![format!("`{}`", problem_type(status))];
    types.extend(
        SPECIAL_TYPES
            .iter()
            .filter(|(c, op, _)| *c == code && id.starts_with(op))
            .map(|(_, _, what)| format!("`urn:mmt-sidecar:problem:{what}`")),
    );
    let description = response["description"].as_str().unwrap_or_default();
    response["description"] = Value::from(format!("{description} Problem type: {}.", types.join("; ")));
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn kept(method: &str, op: Value) -> Vec<u16> {
        statuses(method, &op).into_iter().collect()
    }

    #[test]
    fn a_parameterless_read_lists_only_what_it_can_answer() {
        let op = json!({"operationId": "auth_user", "security": [{"BearerAuth": []}]});
        assert_eq!(kept("get", op), [400, 401, 403, 500, 503]);
    }

    #[test]
    fn writes_with_preconditions_list_conflicts_and_preconditions() {
        let op = json!({"operationId": "transcriptions_update", "security": [{}],
            "parameters": [{"in": "path", "name": "id"}, {"in": "header", "name": "If-Match"}],
            "requestBody": {}});
        assert_eq!(kept("patch", op), [400, 401, 403, 404, 409, 412, 413, 415, 422, 428, 500, 503]);
    }

    #[test]
    fn sign_in_answers_401_and_429_without_a_security_scheme() {
        let op = json!({"operationId": "auth_login", "requestBody": {}});
        assert_eq!(kept("post", op), [400, 401, 413, 415, 422, 429, 500, 503]);
    }

    #[test]
    fn optional_properties_are_nullable_and_required_ones_are_not() {
        let mut schema = json!({"type": "object", "required": ["pid"], "properties": {
            "pid": {"type": "integer"}, "note": {"type": "string"},
            "status": {"$ref": "#/components/schemas/Status"},
            "segments": {"type": "array", "items": {"type": "object", "properties": {"text": {"type": "string"}}}}}});
        mark_optional_nullable(&mut schema);
        let props = &schema["properties"];
        assert!(props["pid"].get("nullable").is_none());
        assert_eq!(props["note"]["nullable"], true);
        assert_eq!(
            props["status"],
            json!({"allOf": [{"$ref": "#/components/schemas/Status"}], "nullable": true})
        );
        assert_eq!(props["segments"]["items"]["properties"]["text"]["nullable"], true);
    }

    #[test]
    fn a_create_links_to_every_operation_on_what_it_created() {
        let spec: Value = serde_json::from_str(crate::http::docs::spec()).unwrap();
        let links = &spec["paths"]["/transcriptions"]["post"]["responses"]["201"]["links"];
        assert_eq!(links["transcriptions_submit"]["parameters"]["id"], "$response.body#/id");
        assert_eq!(links["transcriptions_submit"]["parameters"]["header.If-Match"], "$response.header.ETag");
        assert!(links["transcriptions_get"]["parameters"].get("header.If-Match").is_none());
        assert!(links.as_object().unwrap().len() >= 15, "{links}");
        let encounter = &spec["paths"]["/encounters"]["post"]["responses"]["201"]["links"];
        assert_eq!(
            encounter["encounter_vitals_create"]["parameters"]["encounter"],
            "$response.body#/encounter"
        );
    }

    #[test]
    fn every_example_is_json_for_an_operation_that_takes_a_body() {
        let spec: Value = serde_json::from_str(crate::http::docs::spec()).unwrap();
        let paths = spec["paths"].as_object().unwrap();
        for (id, example) in EXAMPLES {
            let (path, method) = find_operation(paths, id).unwrap_or_else(|| panic!("{id} is not served"));
            let content = &spec["paths"][&path][&method]["requestBody"]["content"];
            let served = &content["application/json; charset=utf-8"]["example"];
            assert_eq!(served, &serde_json::from_str::<Value>(example).unwrap(), "{id}");
        }
    }

    /// Two operation groups declaring the same path each make their own path item, and the spec
    /// keeps only one of them: every declared operation must be in the served spec.
    #[test]
    fn every_declared_operation_is_in_the_served_spec() {
        use poem_openapi::OpenApi;
        let declared: usize = <crate::http::Apis as OpenApi>::meta()
            .iter()
            .flat_map(|api| &api.paths)
            .map(|path| path.operations.len())
            .sum();
        let spec: Value = serde_json::from_str(crate::http::docs::spec()).unwrap();
        let served: usize =
            spec["paths"].as_object().unwrap().values().map(|item| item.as_object().unwrap().len()).sum();
        assert_eq!(served, declared);
    }

    #[test]
    fn the_served_spec_names_problem_types_and_drops_what_an_operation_cannot_answer() {
        let spec: Value = serde_json::from_str(crate::http::docs::spec()).unwrap();
        let login = &spec["paths"]["/auth/login"]["post"]["responses"];
        assert!(login.get("403").is_none() && login.get("412").is_none(), "{login}");
        assert!(login["401"]["description"].as_str().unwrap().contains("mfa-required"), "{login}");
        let user = &spec["paths"]["/auth/user"]["get"]["responses"];
        assert!(user.get("409").is_none() && user.get("422").is_none(), "{user}");
        assert!(spec["paths"]["/patients/{pid}"]["delete"]["responses"].get("405").is_some());
    }

    #[test]
    fn stored_files_keep_their_type_and_audio_uploads_name_the_accepted_types() {
        let spec: Value = serde_json::from_str(crate::http::docs::spec()).unwrap();
        let content = &spec["paths"]["/documents/{id}/content"]["get"]["responses"]["200"]["content"];
        assert!(
            content.get("*/*").is_some() && content.get("application/octet-stream").is_none(),
            "{content}"
        );
        let upload =
            spec["paths"]["/transcriptions/{id}/audio"]["put"]["requestBody"]["content"].as_object().unwrap();
        let types: Vec<&str> = upload.keys().map(String::as_str).collect();
        assert_eq!(types.len(), crate::domain::audio::CONTENT_TYPES.len());
        assert!(types.contains(&"audio/wav") && !types.contains(&"application/octet-stream"), "{types:?}");
        let fhir: Value = serde_json::from_str(crate::http::docs::fhir_spec()).unwrap();
        let binary = &fhir["paths"]["/Binary/{id}"]["get"]["responses"]["200"]["content"];
        assert!(
            binary.get("*/*").is_some() && binary.get(crate::http::fhir::FHIR_JSON).is_some(),
            "{binary}"
        );
    }
}
