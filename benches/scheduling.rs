//! Scheduling benchmark on a calendar of a million events (issue 11). Starts a private MariaDB
//! (scripts/db.sh) loaded with schema/ + openemr-fixtures/, adds twelve providers' repeating
//! office hours and 1,000,000 appointments with bench/generate-calendar.sql, starts the release
//! binary and drives it over loopback with reqwest at 1 and 32 concurrent clients:
//!
//! - slot search: one provider's free 15-minute slots for a month (`/appointments/slots/`);
//! - clinic week: every appointment of a 10-provider facility for a week (`/appointments/`);
//! - booking: 32 clients booking random 15-minute times in one provider's week, where most
//!   requests lose the race or hit a taken slot (409) and every booking is serialised per provider.
//!
//! Each row prints requests, p50/p99/max latency, requests per second, and for bookings how many
//! were created and refused. Everything it starts it stops.
//!
//!   cargo bench --bench scheduling
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

use std::{fmt::Write as _, time::Duration};

use chrono::{Datelike, Days, Local, NaiveDate, Weekday};
use drive::drive;
use http_support::{peak_rss_mib, percentile, sign_in, start_sidecar};
use rand::{Rng, rngs::StdRng};
use reqwest::Method;
use support::{machine, sql};

#[derive(Clone, Copy, PartialEq)]
enum Scenario {
    Slots,
    ClinicWeek,
    Booking,
}

impl Scenario {
    fn label(self) -> &'static str {
        match self {
            Self::Slots => "slot search, one provider-month",
            Self::ClinicWeek => "appointment list, 10-provider clinic week",
            Self::Booking => "booking, one provider-week (conflicts)",
        }
    }

    /// A request of this scenario with randomness from `rng`.
    fn request(
        self,
        rng: &mut StdRng,
        first_monday: NaiveDate,
    ) -> (Method, String, Option<serde_json::Value>) {
        let week = first_monday + Days::new(7 * rng.random_range(0..150));
        match self {
            Self::Slots => {
                let month = NaiveDate::from_ymd_opt(week.year(), week.month(), 1).unwrap();
                let last = month.checked_add_months(chrono::Months::new(1)).unwrap().pred_opt().unwrap();
                (
                    Method::GET,
                    format!("/api/appointments/slots/?provider=2&category=5&from={month}&to={last}"),
                    None,
                )
            }
            Self::ClinicWeek => {
                let to = week + Days::new(6);
                (Method::GET, format!("/api/appointments/?from={week}&to={to}&facility=3&limit=200"), None)
            }
            Self::Booking => {
                let day = first_monday + Days::new(rng.random_range(0..5));
                let minute = 15 * rng.random_range(0..16) + if rng.random_bool(0.5) { 0 } else { 300 };
                let start = format!("{day}T{:02}:{:02}", 8 + minute / 60, minute % 60);
                let body = serde_json::json!({"pid": rng.random_range(1..=220), "provider_id": 2, "facility_id": 3,
                    "category_id": 5, "start": start});
                (Method::POST, "/api/appointments/".into(), Some(body))
            }
        }
    }
}

// One client thread, so the load generator takes as little as it can from what it measures.
#[tokio::main(flavor = "current_thread")]
async fn main() {
    let secs = generate::env_secs("BENCH_SECS", 10);
    let (mut guard, db_port, http_port, generate_secs) =
        generate::database("mmt-bench-scheduling", "generate-calendar.sql", "1,000,000 calendar events", &[]);
    let dir = guard.dir.clone();
    let events: i64 = sql(&dir, "SELECT COUNT(*) FROM openemr_postcalendar_events").parse().unwrap();
    eprintln!("generated in {generate_secs:.1} s: {events} events");

    let base = format!("http://127.0.0.1:{http_port}");
    let database_url = format!("mysql://mmt:mmt@127.0.0.1:{db_port}/openemr");
    let server_pid = start_sidecar(&mut guard, http_port, &database_url, &[("MMT_WORKERS", "0")]).await;
    let token = sign_in(&reqwest::Client::new(), &base, "admin", "Sidecar-Admin-1").await;
    let mut first_monday = Local::now().date_naive() + Days::new(7);
    while first_monday.weekday() != Weekday::Mon {
        first_monday = first_monday + Days::new(1);
    }

    let mut table = String::new();
    let _ = writeln!(
        table,
        "| scenario | clients | requests | created | 409 | errors | p50 ms | p99 ms | max ms | req/s |"
    );
    let _ = writeln!(table, "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
    let mut first_errors = Vec::new();
    for (scenario, clients) in [
        (Scenario::Slots, 1),
        (Scenario::Slots, 32),
        (Scenario::ClinicWeek, 1),
        (Scenario::ClinicWeek, 32),
        (Scenario::Booking, 32),
    ] {
        let measure = |clients: usize, secs: Duration| {
            let make = move |rng: &mut StdRng| scenario.request(rng, first_monday);
            drive(&base, &token, clients, secs, 0x5c4e_d000, scenario == Scenario::Booking, make)
        };
        measure(clients.min(4), Duration::from_secs(2)).await;
        let row = measure(clients, secs).await;
        let line = format!(
            "| {} | {clients} | {} | {} | {} | {} | {:.1} | {:.1} | {:.1} | {:.0} |",
            scenario.label(),
            row.latencies.len(),
            row.created,
            row.conflicts,
            row.errors,
            percentile(&row.latencies, 50.0),
            percentile(&row.latencies, 99.0),
            percentile(&row.latencies, 100.0),
            row.per_sec
        );
        eprintln!("{line}");
        let _ = writeln!(table, "{line}");
        if let Some(e) = row.first_error {
            first_errors.push(format!("{} x{clients}: {e}", scenario.label()));
        }
    }
    let double_booked: i64 = sql(
        &dir,
        "SELECT COUNT(*) FROM openemr_postcalendar_events a JOIN openemr_postcalendar_events b \
         ON a.pc_aid = b.pc_aid AND a.pc_eventDate = b.pc_eventDate AND a.pc_eid < b.pc_eid \
         AND a.pc_startTime < b.pc_endTime AND b.pc_startTime < a.pc_endTime \
         WHERE a.pc_aid = '2' AND a.pc_recurrtype = 0 AND b.pc_recurrtype = 0 AND b.pc_time > NOW() - INTERVAL 1 DAY \
         AND b.pc_apptstatus NOT IN ('x', '%', '?') AND a.pc_apptstatus NOT IN ('x', '%', '?')",
    )
    .parse()
    .unwrap();

    println!();
    println!("mmt-sidecar scheduling benchmark: {events} calendar events, {}", machine());
    println!(
        "{} s per row after 2 s of warm-up; load from reqwest on one thread over loopback",
        secs.as_secs()
    );
    println!(
        "generator: {generate_secs:.1} s; bookings overlapping another live appointment: {double_booked}"
    );
    println!();
    print!("{table}");
    if let Some(peak) = peak_rss_mib(server_pid) {
        println!("sidecar peak RSS (VmHWM), repeating events cached: {peak:.1} MiB");
    }
    for e in &first_errors {
        println!("first error: {e}");
    }
    drop(guard);
}
