//! Billing benchmark (issue 15). Starts a private MariaDB (scripts/db.sh) loaded with schema/ +
//! openemr-fixtures/, adds 20,200 coded visits with bench/generate-billing.sql (patient 1 has
//! 200 of them, half paid), starts the release binary and drives it over loopback with reqwest:
//!
//! - invoice list: patient 1's 200 invoices with their balances, 100 per page (`/invoices/`);
//! - invoice: one of patient 1's invoices, per-code balances (`/invoices/{pid-encounter}/`);
//! - payment posting: 1.00 payments spread over a random visit's lines (`POST /payments/`), and
//!   the same with every client posting to one visit, where each payment waits for the one before;
//! - Stripe webhooks: `checkout.session.completed` for a held booking (signature checked, event
//!   claimed, booking confirmed under its provider's lock, card payment posted), each event new;
//!   and one event replayed (answered from the event store).
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

use std::{
    fmt::Write as _,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use drive::{Request, drive};
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
    StripePaid,
    StripeReplay,
}

const WEBHOOK_SECRET: &str = "whsec_bench";
/// Held bookings with an open checkout, more than the webhook rows can pay.
const CHECKOUTS: usize = 20_000;

/// Encounter numbers of the generated visits: patient 1's first, then everyone else's.
struct Visits {
    first: i64,
    of_patient_one: i64,
    all: i64,
    /// The next checkout a `StripePaid` request pays.
    next_checkout: AtomicUsize,
}

impl Scenario {
    fn label(self) -> &'static str {
        match self {
            Self::InvoiceList => "invoice list, patient with 200 visits",
            Self::Invoice => "invoice with per-code balances",
            Self::Payment => "payment posting, random visit",
            Self::PaymentOneVisit => "payment posting, one visit",
            Self::StripePaid => "Stripe webhook: booking paid",
            Self::StripeReplay => "Stripe webhook: event replayed",
        }
    }

    fn request(self, rng: &mut StdRng, v: &Visits) -> Request {
        match self {
            Self::StripePaid => paid_event(v.next_checkout.fetch_add(1, Ordering::Relaxed)),
            Self::StripeReplay => paid_event(0),
            Self::InvoiceList => (
                Method::GET,
                format!("/api/invoices/?patient=1&page_size=100&page={}", rng.random_range(1..=2)),
                None,
            )
                .into(),
            Self::Invoice => {
                let encounter = v.first + rng.random_range(0..v.of_patient_one);
                (Method::GET, format!("/api/invoices/1-{encounter}/"), None).into()
            }
            Self::Payment | Self::PaymentOneVisit => {
                let offset = if matches!(self, Self::Payment) { rng.random_range(0..v.all) } else { 0 };
                let encounter = v.first + offset;
                let pid = if offset < v.of_patient_one { 1 } else { 2 + (offset + 1) % 219 };
                let body = serde_json::json!({"pid": pid, "encounter": encounter, "method": "cash", "amount": "1.00"});
                (Method::POST, "/api/payments/".into(), Some(body)).into()
            }
        }
    }
}

/// Stripe's `checkout.session.completed` for checkout `n`, signed as Stripe signs it.
fn paid_event(n: usize) -> Request {
    let body = serde_json::json!({"id": format!("evt_bench_{n}"), "object": "event",
        "type": "checkout.session.completed", "data": {"object": {"id": format!("cs_bench_{n}"),
        "object": "checkout.session", "payment_status": "paid", "payment_intent": format!("pi_bench_{n}"),
        "amount_total": 5000}}});
    let at = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
    let bytes = serde_json::to_vec(&body).unwrap();
    let signature = mmt_sidecar::domain::webhook::signature(WEBHOOK_SECRET, at, &bytes);
    Request {
        method: Method::POST,
        path: "/api/webhooks/stripe/".into(),
        body: Some(body),
        headers: vec![("Stripe-Signature", signature)],
    }
}

/// Held (pending) bookings with an open checkout each, as `POST /appointments/{id}/checkout/`
/// leaves them, spread over eight providers' booking locks.
fn held_checkouts(dir: &std::path::Path) {
    sql(
        dir,
        &format!(
            "INSERT INTO openemr_postcalendar_events (pc_catid, pc_multiple, pc_aid, pc_pid, pc_gid, pc_title, \
             pc_time, pc_hometext, pc_informant, pc_eventDate, pc_endDate, pc_duration, pc_recurrtype, pc_recurrspec, \
             pc_recurrfreq, pc_startTime, pc_endTime, pc_alldayevent, pc_eventstatus, pc_sharing, pc_apptstatus, \
             pc_prefcatid, pc_facility, pc_billing_location, pc_room) \
             SELECT 5, 0, 1 + seq % 8, CAST(2 + seq % 219 AS CHAR), 0, 'Office Visit', NOW(), 'Bench checkout', '1', \
             DATE_ADD(CURDATE() + INTERVAL 1 YEAR, INTERVAL seq DIV 256 DAY), NULL, 900, 0, '', 0, \
             MAKETIME(8 + (seq DIV 8) % 32 DIV 4, 15 * ((seq DIV 8) % 4), 0), \
             ADDTIME(MAKETIME(8 + (seq DIV 8) % 32 DIV 4, 15 * ((seq DIV 8) % 4), 0), '00:15:00'), 0, 1, 1, '^', 0, \
             3, 3, '' FROM seq_0_to_{last}",
            last = CHECKOUTS - 1
        ),
    );
    sql(
        dir,
        "INSERT INTO mmt_appointment_holds (pc_eid, expires_at, held_by, created_at) SELECT pc_eid, \
         NOW() + INTERVAL 1 DAY, 1, NOW() FROM openemr_postcalendar_events WHERE pc_hometext = 'Bench checkout'",
    );
    sql(
        dir,
        "INSERT INTO mmt_checkouts (pc_eid, pid, stripe_session, url, amount, currency, patient_kind, state, \
         created_by, created_at, expires_at) SELECT pc_eid, CAST(pc_pid AS SIGNED), \
         CONCAT('cs_bench_', ROW_NUMBER() OVER (ORDER BY pc_eid) - 1), 'https://checkout.stripe.com/c/pay/bench', \
         50.00, 'usd', 'returning', 'open', 1, NOW(), NOW() + INTERVAL 1 DAY FROM openemr_postcalendar_events \
         WHERE pc_hometext = 'Bench checkout'",
    );
}

// One client thread, so the load generator takes as little as it can from what it measures.
#[tokio::main(flavor = "current_thread")]
async fn main() {
    let secs = generate::env_secs("BENCH_SECS", 10);
    let (mut guard, db_port, http_port, generate_secs) =
        generate::database("mmt-bench-billing", "generate-billing.sql", "20,200 coded visits", &[]);
    let dir = guard.dir.clone();
    let first: i64 = sql(
        &dir,
        "SELECT MIN(encounter) FROM form_encounter WHERE reason = 'Follow-up' AND referral_source = ''",
    )
    .parse()
    .unwrap();
    let lines: i64 = sql(&dir, "SELECT COUNT(*) FROM billing").parse().unwrap();
    eprintln!("generated in {generate_secs:.1} s: {lines} fee-sheet lines");
    let visits =
        Arc::new(Visits { first, of_patient_one: 200, all: 20_200, next_checkout: AtomicUsize::new(0) });

    let base = format!("http://127.0.0.1:{http_port}");
    let database_url = format!("mysql://mmt:mmt@127.0.0.1:{db_port}/openemr");
    let env = [("MMT_WORKERS", "0"), ("STRIPE_WEBHOOK_SECRET", WEBHOOK_SECRET)];
    let server_pid = start_sidecar(&mut guard, http_port, &database_url, &env).await;
    held_checkouts(&dir);
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
        (Scenario::StripePaid, 1),
        (Scenario::StripePaid, 8),
        (Scenario::StripeReplay, 32),
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

    let paid = visits.next_checkout.load(Ordering::Relaxed);
    let card_payments: i64 =
        sql(&dir, "SELECT COUNT(*) FROM ar_session WHERE reference LIKE 'pi\\_bench\\_%'").parse().unwrap();
    let confirmed: i64 = sql(
        &dir,
        "SELECT COUNT(*) FROM openemr_postcalendar_events WHERE pc_hometext = 'Bench checkout' AND pc_apptstatus = '*'",
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
    println!(
        "Stripe: {paid} paid events sent, {card_payments} card payments posted, {confirmed} bookings confirmed"
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
