//! What the benches that drive a running sidecar share: starting the release binary against the
//! private MariaDB, waiting for it, signing in, and latency percentiles. Used with
//! `#[path = "support/http.rs"] mod http_support;` next to `support`.

use std::{
    fs::File,
    process::Command,
    time::{Duration, Instant},
};

use crate::support::Guard;

/// Starts `mmt-sidecar serve --migrate` on 127.0.0.1:`port` against `database_url` (its log in the
/// guard's directory) and waits until it answers its health check; the guard stops it.
pub async fn start_sidecar(
    guard: &mut Guard,
    port: u16,
    database_url: &str,
    extra_env: &[(&str, &str)],
) -> u32 {
    // reqwest is built without a default TLS provider; the sidecar's own installer serves here too.
    mmt_sidecar::app::install_tls_provider();
    let log = File::create(guard.dir.join("sidecar.log")).unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_mmt-sidecar"));
    command
        .args(["serve", "--migrate"])
        .env("DATABASE_URL", database_url)
        .env("LISTEN_ADDR", format!("127.0.0.1:{port}"))
        .env("MMT_MASTER_KEY", crate::support::MASTER_KEY)
        .env("LOG_FORMAT", "json")
        .env("RUST_LOG", "warn")
        .env("MMT_COOKIE_SECURE", "false")
        .env("MMT_ACCESS_TOKEN_TTL_SECS", "3600")
        .env_remove("OPENEMR_SESSION_REDIS_URL")
        .stdout(log.try_clone().unwrap())
        .stderr(log);
    for (key, value) in extra_env {
        command.env(key, value);
    }
    let server = command.spawn().expect("start the sidecar");
    let pid = server.id();
    guard.server = Some(server);
    let client = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/api/health/");
    wait_until("GET /api/health/ = 200", Duration::from_secs(120), || {
        let (client, url) = (client.clone(), url.clone());
        async move { client.get(url).send().await.is_ok_and(|r| r.status().is_success()) }
    })
    .await;
    pid
}

pub async fn wait_until<F, Fut>(what: &str, timeout: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

pub async fn sign_in(client: &reqwest::Client, base: &str, username: &str, password: &str) -> String {
    let login: serde_json::Value = client
        .post(format!("{base}/api/auth/login/"))
        .json(&serde_json::json!({"username": username, "password": password}))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap_or_else(|e| panic!("sign-in as {username}: {e}"))
        .json()
        .await
        .unwrap();
    login["access_token"].as_str().expect("access_token").to_string()
}

/// The `p`th percentile of sorted microsecond latencies, in milliseconds.
pub fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1] as f64 / 1000.0
}

/// The process's peak resident memory so far (`VmHWM`), in MiB.
pub fn peak_rss_mib(pid: u32) -> Option<f64> {
    status_mib(pid, "VmHWM:")
}

/// A memory figure of the process's `/proc` status (`VmRSS:` for now, `VmHWM:` for the peak).
pub fn status_mib(pid: u32, field: &str) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}
