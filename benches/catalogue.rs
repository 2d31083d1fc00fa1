//! Supplier catalogues (issue 17). Starts a private MariaDB (scripts/db.sh) with schema/ and
//! openemr-fixtures/ and the release binary with one job worker. Then: a 10,000-row Botanitech
//! workbook (generated as `tests/api/workbooks.rs` writes them) uploaded and imported (seconds from
//! upload to the import's report, and the sidecar's peak resident memory before and after), the
//! same workbook again (all unchanged), and product search at 32 concurrent clients over a mix of
//! prefixes and filters (requests/s, p50/p99). Everything it starts it stops.
//!
//!   cargo bench --bench catalogue
//!
//! BENCH_ROWS (default 10000) products in the workbook; BENCH_SEARCHES (default 3200) searches.

#[path = "support/http.rs"]
mod http_support;
#[path = "support/mod.rs"]
mod support;
#[path = "../tests/api/workbooks.rs"]
#[allow(dead_code)]
mod workbooks;

use std::time::{Duration, Instant};

use http_support::{peak_rss_mib, percentile, sign_in, start_sidecar};
use serde_json::Value;
use support::{Guard, free_ports, machine, sql};

const CLIENTS: usize = 32;
const QUERIES: [&str; 8] = [
    "q=calm",
    "q=har&form=oil",
    "q=tidal%202",
    "schedule=S8&form=flower",
    "q=400123",
    "q=w&schedule=4",
    "q=summit%2010&supplier=botanitech",
    "form=capsule&page=3",
];

async fn import_seconds(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    workbook: Vec<u8>,
) -> (f64, Value) {
    let started = Instant::now();
    let part = reqwest::multipart::Part::bytes(workbook).file_name("botanitech.xlsx");
    let form = reqwest::multipart::Form::new().text("supplier", "botanitech").part("file", part);
    let queued: Value = client
        .post(format!("{base}/api/products/imports/"))
        .bearer_auth(token)
        .multipart(form)
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .json()
        .await
        .unwrap();
    let url = format!("{base}/api/products/imports/{}/", queued["import_id"]);
    let deadline = Instant::now() + Duration::from_secs(600);
    let finished = loop {
        let import: Value = client.get(&url).bearer_auth(token).send().await.unwrap().json().await.unwrap();
        assert_ne!(import["state"], "failed", "{import}");
        if import["state"] == "done" {
            break import;
        }
        assert!(Instant::now() < deadline, "the import did not finish: {import}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    (started.elapsed().as_secs_f64(), finished)
}

async fn searches(client: &reqwest::Client, base: &str, token: &str, total: usize) -> (f64, Vec<u64>) {
    let started = Instant::now();
    let per_client = total / CLIENTS;
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let (client, base, token) = (client.clone(), base.to_string(), token.to_string());
            tokio::spawn(async move {
                let mut micros = Vec::with_capacity(per_client);
                for i in 0..per_client {
                    let query = QUERIES[(c + i) % QUERIES.len()];
                    let at = Instant::now();
                    let reply = client
                        .get(format!("{base}/api/products/?{query}"))
                        .bearer_auth(&token)
                        .send()
                        .await
                        .unwrap();
                    assert!(reply.status().is_success(), "{query}: {}", reply.status());
                    reply.bytes().await.unwrap();
                    micros.push(at.elapsed().as_micros() as u64);
                }
                micros
            })
        })
        .collect();
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    all.sort_unstable();
    (all.len() as f64 / started.elapsed().as_secs_f64(), all)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let env_number =
        |name: &str, default: usize| std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default);
    let rows = env_number("BENCH_ROWS", 10_000);
    let total_searches = env_number("BENCH_SEARCHES", 3_200);
    let [db_port, http_port] = free_ports::<2>();
    let mut guard = Guard::new("mmt-bench-catalogue");
    guard.start_db(db_port);
    let database_url = format!("mysql://mmt:mmt@127.0.0.1:{db_port}/openemr");
    let server = start_sidecar(&mut guard, http_port, &database_url, &[("MMT_WORKERS", "1")]).await;
    let base = format!("http://127.0.0.1:{http_port}");
    let client = reqwest::Client::new();
    let admin = sign_in(&client, &base, "admin", "Sidecar-Admin-1").await;

    let workbook = workbooks::workbook("botanitech", &workbooks::lines(rows, 400_000));
    let size_kib = workbook.len() as f64 / 1024.0;
    let before = peak_rss_mib(server);
    let (first, report) = import_seconds(&client, &base, &admin, workbook.clone()).await;
    assert_eq!(report["report"]["created"].as_u64(), Some(rows as u64), "{}", report["report"]["created"]);
    let after = peak_rss_mib(server);
    let (again, report) = import_seconds(&client, &base, &admin, workbook).await;
    assert_eq!(report["report"]["unchanged"].as_u64(), Some(rows as u64));

    let doctor = sign_in(&client, &base, "drgarcia", "Physician-Garcia-2").await;
    let (rate, micros) = searches(&client, &base, &doctor, total_searches).await;

    let mib = |v: Option<f64>| v.map_or("unknown".into(), |v| format!("{v:.1} MiB"));
    println!();
    println!("mmt-sidecar catalogue benchmark, {}", machine());
    println!();
    println!("| step | rows | seconds | rows/s |");
    println!("|---|--:|--:|--:|");
    println!(
        "| import ({size_kib:.0} KiB workbook, all new) | {rows} | {first:.2} | {:.0} |",
        rows as f64 / first
    );
    println!(
        "| the same workbook again (all unchanged) | {rows} | {again:.2} | {:.0} |",
        rows as f64 / again
    );
    println!();
    println!("sidecar peak RSS (VmHWM): {} before the import, {} after it", mib(before), mib(after));
    let stored = sql(&guard.dir, "SELECT COUNT(*) FROM mmt_products WHERE discontinued_at IS NULL");
    println!("products in the catalogue: {stored}");
    println!();
    println!("| product search | clients | requests | req/s | p50 ms | p99 ms |");
    println!("|---|--:|--:|--:|--:|--:|");
    println!(
        "| mix of {} queries over {rows} products | {CLIENTS} | {} | {rate:.0} | {:.1} | {:.1} |",
        QUERIES.len(),
        micros.len(),
        percentile(&micros, 0.5),
        percentile(&micros, 0.99)
    );
    drop(guard);
}
