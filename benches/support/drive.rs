//! A closed-loop load driver over HTTP: `clients` tasks, each sending its next request as soon as
//! the last is answered, for a fixed time; latencies, created (201) and conflict (409) counts.
//! Used with `#[path = "support/drive.rs"] mod drive;`.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use rand::{SeedableRng, rngs::StdRng};
use reqwest::{Method, StatusCode};

/// One request: method, path, JSON body, and headers of its own (a signature over the body).
pub struct Request {
    pub method: Method,
    pub path: String,
    pub body: Option<serde_json::Value>,
    pub headers: Vec<(&'static str, String)>,
}

impl From<(Method, String, Option<serde_json::Value>)> for Request {
    fn from((method, path, body): (Method, String, Option<serde_json::Value>)) -> Self {
        Self { method, path, body, headers: Vec::new() }
    }
}

#[derive(Default)]
pub struct Row {
    /// Sorted, in microseconds.
    pub latencies: Vec<u64>,
    pub created: u64,
    pub conflicts: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    pub per_sec: f64,
}

/// Drives `make`'s requests (each client with its own seeded generator) for `secs`. A 409 counts
/// as a conflict when `conflicts_expected`, else as an error.
pub async fn drive<F, R>(
    base: &str,
    token: &str,
    clients: usize,
    secs: Duration,
    seed: u64,
    conflicts_expected: bool,
    make: F,
) -> Row
where
    F: Fn(&mut StdRng) -> R + Send + Sync + 'static,
    R: Into<Request>,
{
    let client = reqwest::Client::new();
    let deadline = Instant::now() + secs;
    let started = Instant::now();
    let token = Arc::new(token.to_string());
    let make = Arc::new(make);
    let tasks: Vec<_> = (0..clients)
        .map(|i| {
            let (client, token, base, make) = (client.clone(), token.clone(), base.to_string(), make.clone());
            tokio::spawn(async move {
                let mut rng = StdRng::seed_from_u64(seed + i as u64);
                let mut row = Row::default();
                while Instant::now() < deadline {
                    let Request { method, path, body, headers } = make(&mut rng).into();
                    let mut req = client.request(method, format!("{base}{path}")).bearer_auth(token.as_str());
                    if let Some(body) = body {
                        req = req.json(&body);
                    }
                    for (name, value) in headers {
                        req = req.header(name, value);
                    }
                    let t = Instant::now();
                    let resp = req.send().await.expect("request");
                    let status = resp.status();
                    let text = resp.text().await.unwrap_or_default();
                    row.latencies.push(t.elapsed().as_micros() as u64);
                    match status {
                        StatusCode::OK => {}
                        StatusCode::CREATED => row.created += 1,
                        StatusCode::CONFLICT if conflicts_expected => row.conflicts += 1,
                        _ => {
                            row.errors += 1;
                            row.first_error
                                .get_or_insert(format!("{status} {}", &text[..text.len().min(300)]));
                        }
                    }
                }
                row
            })
        })
        .collect();
    let mut total = Row::default();
    for task in tasks {
        let row = task.await.unwrap();
        total.latencies.extend(row.latencies);
        total.created += row.created;
        total.conflicts += row.conflicts;
        total.errors += row.errors;
        total.first_error = total.first_error.or(row.first_error);
    }
    total.latencies.sort_unstable();
    total.per_sec = total.latencies.len() as f64 / started.elapsed().as_secs_f64();
    total
}
