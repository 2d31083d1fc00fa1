//! The assigned-patient policy on the demo data: a physician reaches their panel and nothing else,
//! across every patient-keyed operation the spec lists; break-glass opens one chart for a while.

use poem::http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::{
    auth::{ADMIN, tokens},
    events::Sse,
    helpers::{RunningServer, TestDb},
    patients::send,
    transcriptions::new_transcription,
};

const ASSIGNED: &[(&str, &str)] = &[("MMT_PATIENT_ACCESS", "assigned")];
const GARCIA: (&str, &str) = ("drgarcia", "Physician-Garcia-2");
const GARCIA_ID: i64 = 2;
const EMERGENCY: (&str, &str) = ("emergency", "Break-Glass-9");
const OUT_OF_PANEL: &str = "is not on your panel";

struct Practice {
    db: TestDb,
    env: &'static [(&'static str, &'static str)],
    garcia: String,
    admin: String,
}

impl Practice {
    async fn open(env: &'static [(&'static str, &'static str)]) -> Self {
        let db = TestDb::migrated().await;
        let (garcia, _) = tokens(&db, GARCIA).await;
        let (admin, _) = tokens(&db, ADMIN).await;
        Self { db, env, garcia, admin }
    }

    async fn as_token(
        &self,
        token: &str,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        // Boxed: a whole request's future, inlined dozens of times, overflows a test thread's stack.
        Box::pin(send(&self.db, self.env, Some(token), method, path, body)).await
    }

    async fn garcia(&self, method: &str, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        self.as_token(&self.garcia, method, path, body).await
    }

    async fn garcia_with(&self, op: &Operation) -> (StatusCode, Value) {
        let client = self.db.client_with(self.env);
        let method = Method::from_bytes(op.method.as_bytes()).unwrap();
        let mut req =
            client.request(method, &op.path).header("authorization", format!("Bearer {}", self.garcia));
        for (name, value) in &op.headers {
            req = req.header(name.as_str(), value.as_str());
        }
        if let Some(body) = &op.body {
            req = req.body_json(body);
        }
        let resp = Box::pin(req.send()).await;
        let status = resp.0.status();
        let bytes = resp.0.into_body().into_vec().await.unwrap();
        (status, serde_json::from_slice(&bytes).unwrap_or_else(|_| json!(String::from_utf8_lossy(&bytes))))
    }

    async fn admin_creates(&self, path: &str, body: Value) -> Value {
        let (status, created) = self.as_token(&self.admin, "POST", path, Some(body)).await;
        assert!(status.is_success(), "{path}: {status} {created}");
        created
    }

    async fn pids(&self, sql: &str) -> Vec<i64> {
        sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_string())).fetch_all(&self.db.pool).await.unwrap()
    }

    /// A patient of Dr Okafor's with none of Dr Garcia's encounters or appointments near today.
    async fn outside(&self) -> i64 {
        self.pids(
            "SELECT p.pid FROM patient_data p WHERE p.providerID = 3 \
             AND NOT EXISTS (SELECT 1 FROM form_encounter e WHERE e.pid = p.pid AND e.provider_id = 2 \
                             AND e.date > NOW() - INTERVAL 31 DAY) \
             AND NOT EXISTS (SELECT 1 FROM openemr_postcalendar_events a WHERE a.pc_pid = p.pid AND a.pc_aid = '2') \
             ORDER BY p.pid LIMIT 1",
        )
        .await[0]
    }

    async fn inside(&self) -> i64 {
        self.pids("SELECT MIN(pid) FROM patient_data WHERE providerID = 2").await[0]
    }
}

/// One id of each kind of record of patient `pid`, made by the administrator where the demo data
/// has none, keyed by the spec's path parameter pattern.
async fn records_of(practice: &Practice, pid: i64) -> Vec<(&'static str, String)> {
    let encounter =
        practice.admin_creates("/api/encounters/", json!({"pid": pid, "facility_id": 3})).await["encounter"]
            .as_i64()
            .unwrap();
    // Dr Garcia's own draft, written while a break-glass grant lasted (expired before the walk),
    // so her role allows every operation on it and only the panel rule stands in the way.
    let grant = json!({"reason": "Covering the ward tonight"});
    let (status, body) =
        practice.garcia("POST", &format!("/api/patients/{pid}/break-glass/"), Some(grant)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) =
        practice.garcia("POST", "/api/transcriptions/", Some(new_transcription(pid, Some(encounter)))).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let transcription = body["id"].as_str().unwrap().to_string();
    sqlx::query("UPDATE mmt_break_glass SET expires_at = NOW() - INTERVAL 1 SECOND")
        .execute(&practice.db.pool)
        .await
        .unwrap();
    let vitals = practice
        .admin_creates(
            &format!("/api/encounters/{encounter}/vitals/"),
            json!({"units": "metric", "weight": 70.0}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let issue = practice
        .admin_creates(&format!("/api/patients/{pid}/problems/"), json!({"title": "Gout"}))
        .await["id"]
        .as_i64()
        .unwrap();
    let rx = json!({"drug": "Amoxicillin", "dosage": "1", "quantity": "21"});
    let prescription = practice.admin_creates(&format!("/api/patients/{pid}/prescriptions/"), rx).await["id"]
        .as_i64()
        .unwrap();
    let message =
        json!({"to": ["drgarcia"], "pid": pid, "title": "Lab Results", "text": "About this patient."});
    let message = practice.admin_creates("/api/messages/", message).await["items"][0]["id"].as_i64().unwrap();
    let room = json!({"pid": pid, "members": ["drgarcia"]});
    let room = practice.admin_creates("/api/chat/rooms/", room).await["id"].as_u64().unwrap();
    // On Dr Garcia's own calendar, but beyond the recent window, so it does not tie her to the patient.
    let later = chrono::Local::now().date_naive() + chrono::Days::new(60);
    let booking = json!({"pid": pid, "provider_id": GARCIA_ID, "facility_id": 3, "category_id": 5,
        "start": format!("{later}T11:00"), "override_availability": true});
    let appointment = practice.admin_creates("/api/appointments/", booking).await["id"].as_i64().unwrap();
    let charge = json!({"code_type": "ICD10", "code": "I10"});
    let charge = practice.admin_creates(&format!("/api/encounters/{encounter}/charges/"), charge).await["id"]
        .as_i64()
        .unwrap();
    let payment = json!({"pid": pid, "encounter": encounter, "method": "cash", "amount": "5.00"});
    let payment = practice.admin_creates("/api/payments/", payment).await["id"].as_i64().unwrap();
    // The patient check comes before the file is read, so a row without a file will do.
    let document = sqlx::query(
        "INSERT INTO documents (type, size, date, url, mimetype, foreign_id, name, revision) \
         VALUES ('file_url', 3, NOW(), 'file:///nowhere/x.pdf', 'application/pdf', ?, 'x.pdf', NOW())",
    )
    .bind(pid)
    .execute(&practice.db.pool)
    .await
    .unwrap()
    .last_insert_id();
    let hl7 = sqlx::query(
        "INSERT INTO mmt_hl7_messages (sending_application, sending_facility, control_id, message_type, raw, state, \
         ack_code, pid, received_by, received_at, updated_at) \
         VALUES ('LAB', 'ACME', 'PA-1', 'ORU^R01', x'00', 'filed', 'AA', ?, 1, NOW(), NOW())",
    )
    .bind(pid)
    .execute(&practice.db.pool)
    .await
    .unwrap()
    .last_insert_id();
    vec![
        ("/hl7/messages/{id}", hl7.to_string()),
        ("/encounters/{encounter}", encounter.to_string()),
        ("/transcriptions/{id}", transcription),
        ("/vitals/{id}", vitals.to_string()),
        ("/issues/{id}", issue.to_string()),
        ("/prescriptions/{id}", prescription.to_string()),
        ("/messages/{id}", message.to_string()),
        ("/chat/rooms/{id}", room.to_string()),
        ("/appointments/{id}", appointment.to_string()),
        ("/documents/{id}", document.to_string()),
        ("/charges/{id}", charge.to_string()),
        ("/invoices/{id}", format!("{pid}-{encounter}")),
        ("/payments/{id}", payment.to_string()),
    ]
}

/// Path parameters that name no patient's record (the caller's own sessions, jobs, notifications,
/// webhooks, providers, a view token minted after the check, a member's username).
const NOT_PATIENT_KEYED: &[&str] = &[
    "/auth/",
    "/jobs/",
    "/notifications/",
    "/webhooks/",
    "/openemr/providers/",
    "/openemr/facilities/",
    "/document-views/",
    "/admin/",
    "/products/",
];

/// Every operation in the spec whose path names a patient or a patient's record, with that patient
/// (or `pid`'s record) filled in; an operation whose path parameter is not classified fails the test.
struct Operation {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Option<Value>,
}

fn patient_keyed_operations(pid: i64, records: &[(&'static str, String)]) -> Vec<Operation> {
    let spec: Value = serde_json::from_str(include_str!("../snapshots/openapi.json")).unwrap();
    let mut operations = Vec::new();
    for (path, methods) in spec["paths"].as_object().unwrap() {
        // Breaking the glass is the way in for exactly these callers (tested on its own below).
        if !path.contains('{')
            || path.ends_with("/break-glass")
            || NOT_PATIENT_KEYED.iter().any(|prefix| path.starts_with(prefix))
        {
            continue;
        }
        let concrete = if path.starts_with("/patients/{pid}") {
            path.replace("{pid}", &pid.to_string())
        } else {
            let (pattern, id) = records
                .iter()
                .find(|(pattern, _)| path.starts_with(pattern))
                .unwrap_or_else(|| panic!("{path}: say whether this operation is patient-keyed"));
            path.replacen(&pattern[pattern.find('{').unwrap()..], id, 1)
        };
        // The remaining parameters name sub-records; any value reaches the patient check first.
        let concrete = concrete
            .replace("{document_id}", "1")
            .replace("{member_id}", "1")
            .replace("{username}", "drgarcia");
        for (method, operation) in methods.as_object().unwrap() {
            let json = operation["requestBody"]["content"].as_object().and_then(|content| {
                content
                    .iter()
                    .find(|(kind, _)| kind.starts_with("application/json"))
                    .map(|(_, c)| &c["schema"])
            });
            let required = |place: &str| {
                operation["parameters"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|p| p["in"] == place && p["required"] == true)
                    .map(|p| {
                        (
                            p["name"].as_str().unwrap().to_string(),
                            example_text(&example_of(&spec, &p["schema"])),
                        )
                    })
                    .collect::<Vec<_>>()
            };
            let query: Vec<String> = required("query")
                .into_iter()
                .map(|(k, v)| format!("{k}={}", v.replace(' ', "%20")))
                .collect();
            let query = if query.is_empty() { String::new() } else { format!("?{}", query.join("&")) };
            operations.push(Operation {
                method: method.to_uppercase(),
                path: format!("/api{concrete}/{query}"),
                headers: required("header"),
                body: json.map(|schema| example_of(&spec, schema)),
            });
        }
    }
    operations
}

fn example_text(value: &Value) -> String {
    value.as_str().map_or_else(|| value.to_string(), str::to_string)
}

/// A value of `schema` with every required field filled, so the request passes parsing and the
/// operation reaches its patient.
fn example_of(spec: &Value, schema: &Value) -> Value {
    if let Some(reference) = schema["$ref"].as_str() {
        let name = reference.rsplit('/').next().unwrap();
        return example_of(spec, &spec["components"]["schemas"][name]);
    }
    if let Some(first) =
        schema["allOf"].get(0).or_else(|| schema["oneOf"].get(0)).or_else(|| schema["anyOf"].get(0))
    {
        return example_of(spec, first);
    }
    if let Some(first) = schema["enum"].get(0) {
        return first.clone();
    }
    match schema["type"].as_str().unwrap_or("object") {
        "string" => match schema["format"].as_str() {
            Some("date") => json!("2026-01-02"),
            Some("date-time") => json!("2026-01-02T10:00:00"),
            _ => json!("A short note"),
        },
        "integer" | "number" => json!(schema["minimum"].as_i64().unwrap_or(1).max(1)),
        "boolean" => json!(false),
        "array" => {
            let items = schema["minItems"].as_u64().unwrap_or(1);
            Value::Array((0..items).map(|_| example_of(spec, &schema["items"])).collect())
        }
        _ => {
            let mut object = serde_json::Map::new();
            for field in schema["required"].as_array().into_iter().flatten() {
                let name = field.as_str().unwrap();
                object.insert(name.to_string(), example_of(spec, &schema["properties"][name]));
            }
            Value::Object(object)
        }
    }
}

#[tokio::test]
async fn a_physician_reaches_no_patient_keyed_operation_outside_their_panel() {
    let practice = Practice::open(ASSIGNED).await;
    let outside = practice.outside().await;
    let records = records_of(&practice, outside).await;
    let operations = patient_keyed_operations(outside, &records);
    assert!(operations.len() > 60, "only {} operations found", operations.len());
    let (mut leaks, mut by_panel) = (Vec::new(), 0);
    for op in &operations {
        let (status, answer) = practice.garcia_with(op).await;
        let detail = answer["detail"].as_str().unwrap_or("");
        if status == StatusCode::FORBIDDEN && detail.contains(OUT_OF_PANEL) {
            by_panel += 1;
        } else if !refused_before_any_record(status, detail) {
            leaks.push(format!("{} {} {:?}: {status} {answer}", op.method, op.path, op.body));
        }
    }
    assert!(leaks.is_empty(), "operations that skip the assigned-patient check:\n{}", leaks.join("\n"));
    assert!(
        by_panel * 5 >= operations.len() * 4,
        "only {by_panel} of {} refused by the panel rule",
        operations.len()
    );
}

/// Refusals that come before any record is read and read the same for every patient: the request's
/// own shape (400, 405, 415, 422, 428) or the caller's role (OpenEMR's ACL, the calendar rule).
fn refused_before_any_record(status: StatusCode, detail: &str) -> bool {
    let by_role = status == StatusCode::FORBIDDEN
        && (detail.starts_with("requires OpenEMR permission") || detail.contains("your own calendar"));
    let by_shape = [400, 405, 415, 422, 428].contains(&status.as_u16());
    by_role || by_shape
}

#[tokio::test]
async fn body_keyed_creates_refuse_a_patient_outside_the_panel() {
    let practice = Practice::open(ASSIGNED).await;
    let outside = practice.outside().await;
    let tomorrow = chrono::Local::now().date_naive() + chrono::Days::new(2);
    for (path, body) in [
        ("/api/encounters/", json!({"pid": outside, "facility_id": 3})),
        ("/api/transcriptions/", new_transcription(outside, None)),
        ("/api/messages/", json!({"to": ["nkim"], "pid": outside, "title": "Lab Results", "text": "x"})),
        ("/api/chat/rooms/", json!({"pid": outside, "members": ["nkim"]})),
        (
            "/api/appointments/",
            json!({"pid": outside, "provider_id": 2, "facility_id": 3, "category_id": 5,
                   "start": format!("{tomorrow}T09:00"), "override_availability": true}),
        ),
    ] {
        let (status, body) = practice.garcia("POST", path, Some(body)).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}: {body}");
        assert!(body["detail"].as_str().unwrap().contains(OUT_OF_PANEL), "{path}: {body}");
    }
}

#[tokio::test]
async fn the_panel_is_reached_and_a_missing_patient_looks_the_same_as_someone_elses() {
    let practice = Practice::open(ASSIGNED).await;
    let inside = practice.inside().await;
    let (status, body) = practice.garcia("GET", &format!("/api/patients/{inside}/"), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = practice.garcia("GET", &format!("/api/patients/{inside}/encounters/"), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let outside = practice.outside().await;
    let (_, theirs) = practice.garcia("GET", &format!("/api/patients/{outside}/"), None).await;
    let (status, missing) = practice.garcia("GET", "/api/patients/987654/", None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        theirs["detail"].as_str().unwrap().replace(&outside.to_string(), "N"),
        missing["detail"].as_str().unwrap().replace("987654", "N")
    );
    assert!(missing["detail"].as_str().unwrap().contains("break-glass"));
}

#[tokio::test]
async fn search_results_and_totals_hold_only_the_panel() {
    let practice = Practice::open(ASSIGNED).await;
    let (status, page) = practice.garcia("GET", "/api/patients/?page_size=100", None).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let shown: Vec<i64> =
        page["items"].as_array().unwrap().iter().map(|p| p["pid"].as_i64().unwrap()).collect();
    let reachable = practice
        .pids(
            "SELECT p.pid FROM patient_data p WHERE p.providerID = 2 \
             OR p.pid IN (SELECT e.pid FROM form_encounter e WHERE e.provider_id = 2 \
                          AND e.date BETWEEN NOW() - INTERVAL 30 DAY AND NOW() + INTERVAL 30 DAY) \
             OR p.pid IN (SELECT a.pc_pid FROM openemr_postcalendar_events a WHERE a.pc_aid = '2' \
                          AND a.pc_eventDate BETWEEN CURDATE() - INTERVAL 30 DAY AND CURDATE() + INTERVAL 30 DAY) \
             ORDER BY p.pid",
        )
        .await;
    assert_eq!(page["total"].as_i64().unwrap(), reachable.len() as i64);
    assert!(shown.iter().all(|pid| reachable.contains(pid)), "{shown:?} not within {reachable:?}");
    let everyone = practice.pids("SELECT pid FROM patient_data").await.len() as i64;
    assert!(page["total"].as_i64().unwrap() < everyone);
    // The administrator is exempt and sees every patient.
    let (_, all) = practice.as_token(&practice.admin, "GET", "/api/patients/?page_size=1", None).await;
    assert_eq!(all["total"].as_i64().unwrap(), everyone);
}

#[tokio::test]
async fn assigned_me_lists_the_callers_own_panel_whatever_the_policy() {
    let practice = Practice::open(&[]).await;
    let (status, page) = practice.garcia("GET", "/api/patients/?assigned=me&page_size=100", None).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let own = practice.pids("SELECT pid FROM patient_data WHERE providerID = 2").await;
    assert_eq!(page["total"].as_i64().unwrap(), own.len() as i64);
    let (_, everyone) = practice.garcia("GET", "/api/patients/?page_size=1", None).await;
    assert!(everyone["total"].as_i64().unwrap() > own.len() as i64);
}

#[tokio::test]
async fn the_policy_off_changes_nothing() {
    let practice = Practice::open(&[]).await;
    let outside = practice.outside().await;
    let (status, body) = practice.garcia("GET", &format!("/api/patients/{outside}/"), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = practice.garcia("GET", "/api/patients/987654/", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, body) = practice
        .garcia(
            "POST",
            &format!("/api/patients/{outside}/break-glass/"),
            Some(json!({"reason": "unconscious in ED"})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
}

#[tokio::test]
async fn break_glass_opens_one_chart_until_it_expires_audited_and_notified() {
    let practice = Practice::open(ASSIGNED).await;
    let outside = practice.outside().await;
    let chart = format!("/api/patients/{outside}/");
    let path = format!("/api/patients/{outside}/break-glass/");
    let (status, body) = practice.garcia("POST", &path, Some(json!({"reason": "  "}))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["errors"][0]["field"], "reason");
    let reason = "Unconscious in ED, primary unreachable";
    let (status, grant) = practice.garcia("POST", &path, Some(json!({"reason": reason}))).await;
    assert_eq!(status, StatusCode::CREATED, "{grant}");
    let (status, body) = practice.garcia("GET", &chart, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // Only that patient: another of Dr Okafor's stays closed.
    let other = practice
        .pids(&format!(
            "SELECT pid FROM patient_data WHERE providerID = 3 AND pid <> {outside} \
             AND pid NOT IN (SELECT pid FROM form_encounter WHERE provider_id = 2) \
             AND pid NOT IN (SELECT pc_pid FROM openemr_postcalendar_events WHERE pc_aid = '2') ORDER BY pid LIMIT 1"
        ))
        .await[0];
    let (status, _) = practice.garcia("GET", &format!("/api/patients/{other}/"), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // The audit row the viewer can filter on, with the reason, under the physician.
    let logged = practice
        .db
        .scalar(&format!(
            "SELECT COUNT(*) FROM log WHERE event = 'breakglass' AND user = 'drgarcia' AND patient_id = {outside}"
        ))
        .await;
    assert_eq!(logged, 1);
    // The primary provider and the administrator are told.
    let told = practice
        .pids(&format!(
            "SELECT user_id FROM mmt_notifications WHERE kind = 'patient.break_glass' AND subject_id = '{outside}' \
             ORDER BY user_id"
        ))
        .await;
    assert_eq!(told, vec![1, 3]);
    // Four hours by default; once expired, the chart closes again.
    let hours = practice
        .db
        .scalar(&format!(
            "SELECT TIMESTAMPDIFF(MINUTE, granted_at, expires_at) FROM mmt_break_glass WHERE id = {}",
            grant["id"]
        ))
        .await;
    assert_eq!(hours, 240);
    sqlx::query("UPDATE mmt_break_glass SET expires_at = NOW() - INTERVAL 1 SECOND WHERE user_id = ?")
        .bind(GARCIA_ID)
        .execute(&practice.db.pool)
        .await
        .unwrap();
    let (status, _) = practice.garcia("GET", &chart, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn emergency_login_reaches_every_chart_and_each_access_is_audited_as_break_glass() {
    let practice = Practice::open(ASSIGNED).await;
    let (emergency, _) = tokens(&practice.db, EMERGENCY).await;
    let outside = practice.outside().await;
    let (status, body) =
        practice.as_token(&emergency, "GET", &format!("/api/patients/{outside}/"), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let logged = practice
        .db
        .scalar(&format!(
            "SELECT COUNT(*) FROM log WHERE event = 'breakglass' AND user = 'emergency' AND patient_id = {outside}"
        ))
        .await;
    assert_eq!(logged, 1);
}

#[tokio::test]
async fn a_denial_is_written_to_openemrs_audit_log() {
    let practice = Practice::open(ASSIGNED).await;
    let outside = practice.outside().await;
    let (status, _) = practice.garcia("GET", &format!("/api/patients/{outside}/"), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let denied = practice
        .db
        .scalar(&format!(
            "SELECT COUNT(*) FROM log WHERE user = 'drgarcia' AND patient_id = {outside} AND success = 0 \
             AND event = 'security-administration-select'"
        ))
        .await;
    assert_eq!(denied, 1);
}

#[tokio::test]
async fn a_care_team_place_opens_the_chart_on_the_next_request_and_removal_closes_it() {
    // Every request here is served by a freshly built app with its own caches, as a request to
    // another replica would be: nothing but the database carries the change.
    let practice = Practice::open(ASSIGNED).await;
    let outside = practice.outside().await;
    let chart = format!("/api/patients/{outside}/");
    let panel = |page: &Value| page["total"].as_i64().unwrap();
    let (_, before) = practice.garcia("GET", "/api/patients/?assigned=me", None).await;
    assert_eq!(practice.garcia("GET", &chart, None).await.0, StatusCode::FORBIDDEN);
    let member = json!({"user_id": GARCIA_ID, "role": "specialist"});
    let added = practice.admin_creates(&format!("/api/patients/{outside}/care-team/members/"), member).await;
    let (status, body) = practice.garcia("GET", &chart, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, after) = practice.garcia("GET", "/api/patients/?assigned=me", None).await;
    assert_eq!(panel(&after), panel(&before) + 1);
    let removal = format!("/api/patients/{outside}/care-team/members/{}/", added["id"]);
    let (status, body) = practice.as_token(&practice.admin, "DELETE", &removal, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(practice.garcia("GET", &chart, None).await.0, StatusCode::FORBIDDEN);
}

/// One app state throughout, as one replica: the care teams it mirrors for searches follow changes
/// made in OpenEMR's own screens (plain SQL here), two of them most likely in the same second.
#[tokio::test]
async fn a_replicas_search_follows_care_team_changes_made_in_openemr() {
    let practice = Practice::open(ASSIGNED).await;
    let outside = practice.outside().await;
    let client =
        poem::test::TestClient::new(crate::helpers::documented_app(practice.db.state_with(ASSIGNED)));
    let panel = || {
        let req = client
            .get("/api/patients/?assigned=me&page_size=1")
            .header("authorization", format!("Bearer {}", practice.garcia));
        async move {
            let resp = req.send().await;
            resp.assert_status_is_ok();
            resp.json().await.value().object().get("total").i64()
        }
    };
    let before = panel().await;
    let pool = &practice.db.pool;
    let team =
        sqlx::query("INSERT INTO care_teams (pid, status, team_name) VALUES (?, 'active', 'Care Team')")
            .bind(outside)
            .execute(pool)
            .await
            .unwrap()
            .last_insert_id();
    sqlx::query("INSERT INTO care_team_member (care_team_id, user_id, role, status) VALUES (?, ?, 'specialist', 'active')")
        .bind(team)
        .bind(GARCIA_ID)
        .execute(pool)
        .await
        .unwrap();
    assert_eq!(panel().await, before + 1, "a new member finds the team's patient at once");
    sqlx::query("UPDATE care_team_member SET status = 'inactive' WHERE care_team_id = ?")
        .bind(team)
        .execute(pool)
        .await
        .unwrap();
    assert_eq!(panel().await, before, "a member made inactive right after no longer does");
}

#[tokio::test]
async fn lists_leave_out_records_of_patients_outside_the_panel() {
    let practice = Practice::open(ASSIGNED).await;
    let outside = practice.outside().await;
    let records = records_of(&practice, outside).await;
    let id_of = |pattern: &str| records.iter().find(|(p, _)| *p == pattern).unwrap().1.clone();
    let ids = |page: &Value| -> Vec<String> {
        let items = page["items"].as_array().or(page.as_array()).unwrap();
        items.iter().map(|item| item["id"].to_string().trim_matches('"').to_string()).collect()
    };
    let later = chrono::Local::now().date_naive() + chrono::Days::new(60);
    for (list, record) in [
        ("/api/messages/?box=inbox".to_string(), id_of("/messages/{id}")),
        ("/api/chat/rooms/".to_string(), id_of("/chat/rooms/{id}")),
        ("/api/transcriptions/?page_size=100".to_string(), id_of("/transcriptions/{id}")),
        (format!("/api/appointments/?from={later}&to={later}"), id_of("/appointments/{id}")),
    ] {
        let (status, page) = practice.garcia("GET", &list, None).await;
        assert_eq!(status, StatusCode::OK, "{list}: {page}");
        assert!(!ids(&page).contains(&record), "{list} shows {record} of patient {outside}: {page}");
        // With the policy off the same list shows it: the policy is what leaves it out.
        let (_, off) = send(&practice.db, &[], Some(&practice.garcia), Method::GET, &list, None).await;
        assert!(ids(&off).contains(&record), "{list} without the policy: {off}");
    }
    let (_, page) = practice.garcia("GET", "/api/transcriptions/", None).await;
    assert_eq!(page["total"].as_i64().unwrap(), 0, "her only draft is about a patient she no longer reaches");
}

#[tokio::test]
async fn live_changes_about_a_patient_outside_the_panel_are_left_out() {
    let practice = Practice::open(ASSIGNED).await;
    let server = RunningServer::start(practice.db.state_with(ASSIGNED)).await;
    let mut stream = Sse::open(&server, &practice.garcia, None, "").await;
    let (inside, outside) = (practice.inside().await, practice.outside().await);
    let client = reqwest::Client::new();
    for pid in [outside, inside] {
        let change = json!({"email": format!("changed{pid}@example.org")});
        let url = server.url(&format!("/api/patients/{pid}/"));
        let resp = client.patch(url).bearer_auth(&practice.admin).json(&change).send().await.unwrap();
        assert_eq!(resp.status(), 200);
    }
    let first = stream.next_within(std::time::Duration::from_secs(10)).await.expect("the change she may see");
    assert_eq!((first.kind.as_str(), first.data["data"]["pid"].as_i64()), ("patient.updated", Some(inside)));
}
