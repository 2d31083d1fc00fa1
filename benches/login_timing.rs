//! Timing of failed sign-ins (security issue 12): does the time a failed sign-in takes reveal
//! whether the user exists, is inactive, or which hash format their password uses?
//!
//! Starts a private MariaDB (scripts/db.sh) on a free port, loads schema/ + openemr-fixtures/,
//! applies the sidecar's migrations, puts OpenEMR's lockout (`password_max_failed_logins`) and the
//! sidecar's own throttle out of reach, and calls `service::sign_in::login` in this process: the
//! whole sign-in path (throttle reservation, OpenEMR policies, user lookup, hash verification on
//! the sidecar's verifier, failure counters, audit row, failure floor) without HTTP, each attempt
//! from a fresh client address. Cases: an unknown user; an inactive user (drweber, with his right
//! password); a wrong password for each demo hash format (admin bcrypt `$2y$10$`, nkim SHA-512
//! crypt 100k rounds, drgarcia argon2id, drokafor argon2i, fdmiller legacy `$2a$05$`); and a
//! successful admin sign-in for reference. Every round tries each case once, in turn; after one
//! unrecorded warm-up round, ROUNDS rounds are recorded. Each row prints the median and p95
//! (nearest rank) in ms, and each failure row its median as a ratio to the unknown user's. The
//! table is printed twice: with the default failure floor (`MMT_LOGIN_FAILURE_FLOOR_MS`) and with
//! the floor off (0), which shows what the floor hides. With the floor, ratios near 1.00 mean the
//! time of a failure tells nothing about the account. Everything it starts it stops.
//!
//!   cargo bench --bench login_timing
//!
//! BENCH_KEEP_DIR keeps the MariaDB data directory.

#[path = "support/mod.rs"]
mod support;

use std::{
    fmt::Write as _,
    time::{Duration, Instant},
};

use mmt_sidecar::{
    app::AppState,
    config::Config,
    service::sign_in::{self, AuthError, LoginAttempt},
    storage::{lazy_pool, mmt::migrations},
};
use sqlx::MySqlPool;
use support::{Guard, free_ports, machine, sql};

const ROUNDS: usize = 15;

struct Case {
    label: &'static str,
    username: &'static str,
    password: &'static str,
    succeeds: bool,
}

const fn fails(label: &'static str, username: &'static str, password: &'static str) -> Case {
    Case { label, username, password, succeeds: false }
}

/// The first row is the baseline the failure rows are compared with. Passwords: README.md.
const CASES: [Case; 8] = [
    fails("unknown user", "no-such-user", "Wrong-Password-0"),
    fails("inactive user (drweber, right password)", "drweber", "Retired-Weber-8"),
    fails("wrong password: admin, bcrypt $2y$10$", "admin", "Wrong-Password-0"),
    fails("wrong password: nkim, SHA-512 crypt 100k", "nkim", "Wrong-Password-0"),
    fails("wrong password: drgarcia, argon2id", "drgarcia", "Wrong-Password-0"),
    fails("wrong password: drokafor, argon2i", "drokafor", "Wrong-Password-0"),
    fails("wrong password: fdmiller, legacy $2a$05$", "fdmiller", "Wrong-Password-0"),
    Case {
        label: "success: admin (reference)",
        username: "admin",
        password: "Sidecar-Admin-1",
        succeeds: true,
    },
];

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Median and p95 (nearest rank) of the samples.
fn summary(mut samples: Vec<Duration>) -> (Duration, Duration) {
    samples.sort_unstable();
    let n = samples.len();
    let p95 = samples[((n as f64 * 0.95).ceil() as usize).clamp(1, n) - 1];
    (samples[n / 2], p95)
}

fn state(pool: &MySqlPool, database_url: &str, floor_ms: Option<&str>) -> AppState {
    let mut vars: Vec<(&str, &str)> = vec![
        ("DATABASE_URL", database_url),
        ("LISTEN_ADDR", "127.0.0.1:0"),
        ("MMT_MASTER_KEY", support::MASTER_KEY),
        // The throttle would answer 429 long before the last round; this bench times the rest.
        ("MMT_LOGIN_MAX_FAILURES_PER_USER_ADDRESS", "1000000"),
        ("MMT_LOGIN_MAX_FAILURES_PER_ADDRESS", "1000000"),
    ];
    if let Some(floor) = floor_ms {
        vars.push(("MMT_LOGIN_FAILURE_FLOOR_MS", floor));
    }
    let config = Config::from_lookup(|key| vars.iter().find(|(k, _)| *k == key).map(|(_, v)| v.to_string()))
        .expect("bench config is valid");
    AppState::new(pool.clone(), config)
}

/// One sign-in from a client address no other attempt of this run uses; returns its duration.
async fn attempt(state: &AppState, case: &Case, serial: &mut u32) -> Duration {
    *serial += 1;
    let address = format!("10.{}.{}.{}", (*serial >> 16) & 255, (*serial >> 8) & 255, *serial & 255);
    let login = LoginAttempt {
        username: case.username.to_string(),
        password: case.password.to_string(),
        totp_code: None,
    };
    let started = Instant::now();
    let result = sign_in::login(state, login, &address).await;
    let elapsed = started.elapsed();
    match (result, case.succeeds) {
        (Ok(_), true) | (Err(AuthError::InvalidCredentials), false) => {}
        (Ok(_), false) => panic!("{}: the sign-in succeeded", case.label),
        (Err(e), _) => panic!("{}: unexpected answer: {e}", case.label),
    }
    elapsed
}

/// One table: every case once per round, in turn, so drift spreads over all rows alike.
async fn table(state: &AppState, serial: &mut u32) -> String {
    for case in &CASES {
        attempt(state, case, serial).await;
    }
    let mut samples: Vec<Vec<Duration>> = CASES.iter().map(|_| Vec::with_capacity(ROUNDS)).collect();
    for round in 0..ROUNDS {
        for (case, samples) in CASES.iter().zip(&mut samples) {
            samples.push(attempt(state, case, serial).await);
        }
        eprint!("\r  round {}/{ROUNDS}", round + 1);
    }
    eprintln!();
    let rows: Vec<(Duration, Duration)> = samples.into_iter().map(summary).collect();
    let baseline = ms(rows[0].0);
    let mut out = String::new();
    let _ = writeln!(out, "| sign-in | median ms | p95 ms | median / unknown user |");
    let _ = writeln!(out, "|---|--:|--:|--:|");
    for (case, (median, p95)) in CASES.iter().zip(rows) {
        let ratio = if case.succeeds { "-".to_string() } else { format!("{:.2}", ms(median) / baseline) };
        let _ = writeln!(out, "| {} | {:.1} | {:.1} | {ratio} |", case.label, ms(median), ms(p95));
    }
    out
}

#[tokio::main]
async fn main() {
    let [db_port] = free_ports::<1>();
    let mut guard = Guard::new("mmt-login-timing");
    let dir = guard.dir.clone();
    guard.start_db(db_port);
    let mariadb_version = sql(&dir, "SELECT VERSION()");
    // OpenEMR's own lockout would lock the accounts after 20 failures (the fixtures' setting).
    sql(&dir, "UPDATE globals SET gl_value='100000' WHERE gl_name='password_max_failed_logins'");

    let database_url = format!("mysql://mmt:mmt@127.0.0.1:{db_port}/openemr");
    let options: sqlx::mysql::MySqlConnectOptions = database_url.parse().unwrap();
    let pool = lazy_pool(options.timezone(None), Duration::from_secs(3), 32);
    migrations::run(&pool).await.expect("the sidecar's migrations apply");

    let mut serial = 0u32;
    let mut tables = Vec::new();
    for (floor, title) in [(None, "default failure floor"), (Some("0"), "failure floor off")] {
        let state = state(&pool, &database_url, floor);
        let floor_ms = state.config.auth.failure_floor.as_millis();
        let heading = format!("{title} (MMT_LOGIN_FAILURE_FLOOR_MS={floor_ms})");
        eprintln!("{heading}");
        tables.push((heading, table(&state, &mut serial).await));
    }
    pool.close().await;

    println!();
    println!(
        "mmt-sidecar sign-in timing: sign_in::login in process (no HTTP), MariaDB {mariadb_version}, {}",
        machine()
    );
    println!(
        "{ROUNDS} rounds per table after one warm-up round, cases interleaved, each attempt from its own address; p95 by nearest rank"
    );
    for (heading, table) in tables {
        println!();
        println!("{heading}:");
        println!();
        print!("{table}");
    }
    drop(guard);
}
