//! Webhooks end to end: a real HTTP receiver on loopback gets each change event once, signed,
//! retried after failures, and again on manual redelivery; the delivery log tells what happened.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use hmac::{Hmac, KeyInit, Mac};
use mmt_sidecar::{app::AppState, service::jobs::Workers};
use poem::{
    EndpointExt, Route, Server, handler,
    http::{HeaderMap, StatusCode},
    listener::{Acceptor, Listener, TcpListener},
    web::Data,
};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::{
    auth::{self, tokens},
    helpers::TestDb,
    patients::send,
};

/// A request the receiver got: its headers and raw body.
type Post = (HeaderMap, Vec<u8>);

#[derive(Clone, Default)]
struct Received {
    posts: Arc<Mutex<Vec<Post>>>,
    /// Answer 500 to this many requests first.
    failures_left: Arc<Mutex<u32>>,
}

#[handler]
fn receive(headers: &HeaderMap, body: Vec<u8>, received: Data<&Received>) -> StatusCode {
    received.posts.lock().unwrap().push((headers.clone(), body));
    let mut left = received.failures_left.lock().unwrap();
    if *left > 0 {
        *left -= 1;
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    StatusCode::NO_CONTENT
}

/// A receiver on a free loopback port; returns its URL.
async fn receiver(received: Received) -> String {
    let acceptor = TcpListener::bind("127.0.0.1:0").into_acceptor().await.unwrap();
    let addr = *acceptor.local_addr()[0].as_socket_addr().unwrap();
    tokio::spawn(Server::new_with_acceptor(acceptor).run(Route::new().at("/hook", receive).data(received)));
    format!("http://{addr}/hook")
}

const SETTINGS: &[(&str, &str)] = &[("MMT_JOB_BACKOFF_MS", "50"), ("MMT_JOB_POLL_MS", "50")];

struct Setup {
    db: TestDb,
    state: AppState,
    admin: String,
    received: Received,
    url: String,
    workers: mmt_sidecar::service::jobs::Tasks,
}

async fn setup() -> Setup {
    let db = TestDb::migrated().await;
    let state = db.state_with(SETTINGS);
    let workers = Workers::new(state.clone()).spawn(2);
    let (admin, _) = tokens(&db, auth::ADMIN).await;
    let received = Received::default();
    let url = receiver(received.clone()).await;
    Setup { db, state, admin, received, url, workers }
}

impl Setup {
    async fn call(&self, method: poem::http::Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        send(&self.db, SETTINGS, Some(&self.admin), method, path, body).await
    }

    async fn register(&self, events: Value, include_phi: bool) -> Value {
        let body = json!({"url": self.url, "event_types": events, "include_phi": include_phi});
        let (status, hook) = self.call(poem::http::Method::POST, "/api/webhooks/", Some(body)).await;
        assert_eq!(status, StatusCode::CREATED, "{hook}");
        hook
    }

    async fn posts_reach(&self, n: usize) -> Vec<(HeaderMap, Value)> {
        for _ in 0..200 {
            if self.received.posts.lock().unwrap().len() >= n {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let posts = self.received.posts.lock().unwrap().clone();
        posts.into_iter().map(|(h, b)| (h, serde_json::from_slice(&b).unwrap())).collect()
    }
}

fn verify(secret: &str, headers: &HeaderMap, body: &Value) -> bool {
    let sig = headers["mmt-signature"].to_str().unwrap();
    let (t, v1) = sig.split_once(",v1=").unwrap();
    let t = t.trim_start_matches("t=");
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.{}", serde_json::to_string(body).unwrap()).as_bytes());
    mac.verify_slice(&hex::decode(v1).unwrap()).is_ok()
}

fn new_patient() -> Value {
    json!({"first_name": "Wanda", "last_name": "Hooke", "dob": "1980-05-06", "sex": "Female"})
}

#[tokio::test]
async fn a_change_is_delivered_once_signed_with_ids_only() {
    let s = setup().await;
    let hook = s.register(json!(["patient.created", "encounter.created"]), false).await;
    let secret = hook["secret"].as_str().unwrap();
    let (status, patient) = s.call(poem::http::Method::POST, "/api/patients/", Some(new_patient())).await;
    assert_eq!(status, StatusCode::CREATED);
    let posts = s.posts_reach(1).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let posts_after = s.posts_reach(1).await;
    assert_eq!(posts_after.len(), 1, "delivered exactly once");
    let (headers, body) = &posts[0];
    assert_eq!(body["type"], "patient.created");
    assert_eq!(body["data"]["pid"], patient["pid"]);
    assert!(body.get("patient").is_none(), "no PHI without include_phi: {body}");
    assert_eq!(headers["mmt-event-type"], "patient.created");
    assert!(verify(secret, headers, body), "the signature verifies with the endpoint's secret");
    assert!(!verify("another-secret", headers, body));
    s.workers.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn a_failing_receiver_gets_retries_and_the_log_shows_each_attempt() {
    let s = setup().await;
    *s.received.failures_left.lock().unwrap() = 2;
    let hook = s.register(json!(["*"]), true).await;
    let id = hook["id"].as_u64().unwrap();
    s.call(poem::http::Method::POST, "/api/patients/", Some(new_patient())).await;
    let posts = s.posts_reach(3).await;
    assert_eq!(posts.len(), 3, "two failures, then the delivery");
    assert!(posts.iter().all(|(_, b)| b["id"] == posts[0].1["id"]), "the same event each time");
    assert_eq!(posts[2].1["patient"]["last_name"], "Hooke", "include_phi adds the demographics");
    let pid = posts[0].1["data"]["pid"].as_i64().unwrap();
    let disclosures =
        s.db.scalar(&format!(
            "SELECT COUNT(*) FROM log WHERE event = 'patient-record-select' AND patient_id = {pid} \
             AND CAST(FROM_BASE64(comments) AS CHAR) LIKE '%to webhook {id}%'"
        ))
        .await;
    assert_eq!(disclosures, 3, "every attempt that carried PHI is audited");
    let mut log = Value::Null;
    for _ in 0..100 {
        log = s.call(poem::http::Method::GET, &format!("/api/webhooks/{id}/deliveries/"), None).await.1;
        if log[0]["state"] == "delivered" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(log[0]["state"], "delivered", "{log}");
    assert_eq!(log[0]["attempts"], 3);
    assert_eq!(log[0]["last_status"], 204);

    let delivery = log[0]["id"].as_u64().unwrap();
    let (status, queued) = s
        .call(poem::http::Method::POST, &format!("/api/webhooks/{id}/deliveries/{delivery}/redeliver/"), None)
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{queued}");
    let posts = s.posts_reach(4).await;
    assert_eq!(posts.len(), 4);
    assert_eq!(posts[3].1["id"], posts[0].1["id"], "redelivery sends the same event");
    s.workers.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn changes_made_in_openemr_itself_are_announced_by_the_index_sweep() {
    let s = setup().await;
    s.register(json!(["patient.updated"]), false).await;
    // The first build announces nothing: every row is new to the index, not to OpenEMR.
    s.state.patient_index.ready_for_search(&s.state).await.unwrap();
    sqlx::query(
        "UPDATE patient_data SET fname = 'Renamed', last_updated = NOW() + INTERVAL 1 SECOND WHERE pid = 12",
    )
    .execute(&s.db.pool)
    .await
    .unwrap();
    s.state.patient_index.ready_for_search(&s.state).await.unwrap();
    let posts = s.posts_reach(1).await;
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0].1["type"], "patient.updated");
    assert_eq!(posts[0].1["data"]["pid"], 12);
    assert_eq!(posts[0].1["data"]["source"], "openemr");
    s.workers.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn only_administrators_manage_webhooks_and_bad_input_names_the_field() {
    let s = setup().await;
    let (nurse, _) = tokens(&s.db, ("nkim", "Clinician-Kim-4")).await;
    let body = json!({"url": s.url, "event_types": ["patient.created"]});
    let (status, _) =
        send(&s.db, &[], Some(&nurse), poem::http::Method::POST, "/api/webhooks/", Some(body)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let bad = json!({"url": "ftp://x", "event_types": ["patient.deleted"]});
    let (status, problem) = s.call(poem::http::Method::POST, "/api/webhooks/", Some(bad)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let fields: Vec<&str> =
        problem["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["url", "event_types"], "{problem}");
    let hook = s.register(json!(["patient.created"]), false).await;
    let id = hook["id"].as_u64().unwrap();
    let (_, listed) = s.call(poem::http::Method::GET, "/api/webhooks/", None).await;
    assert!(listed[0].get("secret").is_none(), "the secret is shown only at creation");
    let (status, paused) = s
        .call(poem::http::Method::PATCH, &format!("/api/webhooks/{id}/"), Some(json!({"active": false})))
        .await;
    assert_eq!((status, &paused["active"]), (StatusCode::OK, &json!(false)));
    s.call(poem::http::Method::POST, "/api/patients/", Some(new_patient())).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(s.received.posts.lock().unwrap().is_empty(), "a paused endpoint gets nothing");
    let (status, _) = s.call(poem::http::Method::DELETE, &format!("/api/webhooks/{id}/"), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    s.workers.shutdown(Duration::from_secs(5)).await;
}
