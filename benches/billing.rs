//! Billing benchmark (issue 15). Starts a private MariaDB (scripts/db.sh) loaded with schema/ +
//! openemr-fixtures/, adds 20,200 coded visits with bench/generate-billing.sql (patient 1 has
//! 200 of them, half paid), starts the release binary and drives it over loopback with reqwest:
//!
//! - invoice list: patient 1's 200 invoices with their balances, 100 per page (`/invoices/`);
//! - invoice: one of patient 1's invoices, per-code balances (`/invoices/{pid-encounter}/`);
//! - payment posting: 1.00 payments spread over a random visit's lines (`POST /payments/`), and
//!   the same with every client posting to one visit, where each payment waits for the one before.
//!
//! Each row prints requests, p50/p99/max latency and requests per second; the run checks that the
//! money posted equals the money found in `ar_activity` afterwards. Everything it starts it stops.
//!
//!   cargo bench --bench billing
//!
//! BENCH_SECS (default 10) sets the measured seconds per row.

#[path = "support/drive.rs"]
mod drive;
#[path = "support/generate.rs"]
mod generate;
#[path = "support/http.rs"]
mod http_support;
#[path = "support/mod.rs"]
mod support;

use std::{fmt::Write as _, sync::Arc, time::Duration};

use drive::drive;
use http_support::{peak_rss_mib, percentile, sign_in, start_sidecar};
use rand::{Rng, rngs::StdRng};
use reqwest::Method;
use support::{machine, sql};

#[derive(Clone, Copy)]
enum Scenario {
    InvoiceList,
    Invoice,
    Payment,
    PaymentOneVisit,
}

/// Encounter numbers of the generated visits: patient 1's first, then everyone else's.
struct Visits {
    first: i64,
    of_patient_one: i64,
    all: i64,
}

impl Scenario {
    fn label(self) -> &'static str {
        match self {
            Self::InvoiceList => "invoice list, patient with 200 visits",
            Self::Invoice => "invoice with per-code balances",
            Self::Payment => "payment posting, random visit",
            Self::PaymentOneVisit => "payment posting, one visit",
        }
    }

    fn request(self, rng: &mut StdRng, v: &Visits) -> (Method, String, Option<serde_json::Value>) {
        match self {
            Self::InvoiceList => (
                Method::GET,
                format!("/api/invoices/?patient=1&page_size=100&page={}", rng.random_range(1..=2)),
                None,
            ),
            Self::Invoice => {
                let encounter = v.first + rng.random_range(0..v.of_patient_one);
                (Method::GET, format!("/api/invoices/1-{encounter}/"), None)
            }
            Self::Payment | Self::PaymentOneVisit => {
                let offset = if matches!(self, Self::Payment) { rng.random_range(0..v.all) } else { 0 };
                let encounter = v.first + offset;
                let pid = if offset < v.of_patient_one { 1 } else { 2 + (offset + 1) % 219 };
                let body = serde_json::json!({"pid": pid, "encounter": encounter, "method": "cash", "amount": "1.00"});
                (Method::POST, "/api/payments/".into(), Some(body))
            }
        }
    }
}

// One client thread, so the load generator takes as little as it can from what it measures.
#[tokio::main(flavor = "current_thread")]
async fn main() {
    let secs = generate::env_secs("BENCH_SECS", 10);
    let (mut guard, db_port, http_port, generate_secs) =
        generate::database("mmt-bench-billing", "generate-billing.sql", "20,200 coded visits");
    let dir = guard.dir.clone();
    let first: i64 = sql(
        &dir,
        "SELECT MIN(encounter) FROM form_encounter WHERE reason = 'Follow-up' AND referral_source = ''",
    )
    .parse()
    .unwrap();
    let lines: i64 = sql(&dir, "SELECT COUNT(*) FROM billing").parse().unwrap();
    eprintln!("generated in {generate_secs:.1} s: {lines} fee-sheet lines");
    let visits = Arc::new(Visits { first, of_patient_one: 200, all: 20_200 });

    let base = format!("http://127.0.0.1:{http_port}");
    let database_url = format!("mysql://mmt:mmt@127.0.0.1:{db_port}/openemr");
    let server_pid = start_sidecar(&mut guard, http_port, &database_url, &[("MMT_WORKERS", "0")]).await;
    let token = sign_in(&reqwest::Client::new(), &base, "acctbrown", "Billing-Brown-7").await;
    let money_before: String = sql(&dir, "SELECT COALESCE(SUM(pay_amount), 0) FROM ar_activity");

    let mut table = String::new();
    let _ = writeln!(
        table,
        "| scenario | clients | requests | posted | errors | p50 ms | p99 ms | max ms | req/s |"
    );
    let _ = writeln!(table, "|---|--:|--:|--:|--:|--:|--:|--:|--:|");
    let mut first_errors = Vec::new();
    let mut posted = 0;
    for (scenario, clients) in [
        (Scenario::InvoiceList, 1),
        (Scenario::InvoiceList, 32),
        (Scenario::Invoice, 1),
        (Scenario::Invoice, 32),
        (Scenario::Payment, 1),
        (Scenario::Payment, 32),
        (Scenario::PaymentOneVisit, 32),
    ] {
        let measure = |clients: usize, secs: Duration| {
            let v = visits.clone();
            let make = move |rng: &mut StdRng| scenario.request(rng, &v);
            drive(&base, &token, clients, secs, 0xb111_0000, false, make)
        };
        let warm = measure(clients.min(4), Duration::from_secs(2)).await;
        let row = measure(clients, secs).await;
        posted += warm.created + row.created;
        let line = format!(
            "| {} | {clients} | {} | {} | {} | {:.1} | {:.1} | {:.1} | {:.0} |",
            scenario.label(),
            row.latencies.len(),
            row.created,
            row.errors,
            percentile(&row.latencies, 50.0),
            percentile(&row.latencies, 99.0),
            percentile(&row.latencies, 100.0),
            row.per_sec
        );
        eprintln!("{line}");
        let _ = writeln!(table, "{line}");
        if let Some(e) = row.first_error.or(warm.first_error) {
            first_errors.push(format!("{} x{clients}: {e}", scenario.label()));
        }
    }
    let money_after: f64 = sql(&dir, "SELECT COALESCE(SUM(pay_amount), 0) FROM ar_activity").parse().unwrap();
    let money_before: f64 = money_before.parse().unwrap();
    let duplicates: i64 = sql(
        &dir,
        "SELECT COUNT(*) FROM (SELECT pid, encounter, sequence_no FROM ar_activity \
         GROUP BY pid, encounter, sequence_no HAVING COUNT(*) > 1) d",
    )
    .parse()
    .unwrap();

    println!();
    println!("mmt-sidecar billing benchmark: {lines} fee-sheet lines over 20,200 visits, {}", machine());
    println!(
        "{} s per row after 2 s of warm-up; load from reqwest on one thread over loopback",
        secs.as_secs()
    );
    println!(
        "generator: {generate_secs:.1} s; payments posted: {posted}, money in ar_activity grew by {:.2} \
         (expected {posted}.00); duplicate sequence numbers: {duplicates}",
        money_after - money_before
    );
    println!();
    print!("{table}");
    if let Some(peak) = peak_rss_mib(server_pid) {
        println!("sidecar peak RSS (VmHWM): {peak:.1} MiB");
    }
    for e in &first_errors {
        println!("first error: {e}");
    }
    drop(guard);
}
