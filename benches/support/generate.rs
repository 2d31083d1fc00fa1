//! Loading `bench/`'s generator scripts into the private server. Used with
//! `#[path = "support/generate.rs"] mod generate;` next to `support`.

use std::{
    path::Path,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use crate::support::{Guard, ROOT, free_ports, run};

/// Seconds from the environment variable `name`, else `default`.
pub fn env_secs(name: &str, default: u64) -> Duration {
    Duration::from_secs(std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default))
}

/// A private server loaded with schema/, openemr-fixtures/ and `script`, and a free port for the
/// sidecar: (guard, database port, http port, seconds the script took).
pub fn database(prefix: &str, script: &str, what: &str) -> (Guard, u16, u16, f64) {
    let [db_port, http_port] = free_ports::<2>();
    let mut guard = Guard::new(prefix);
    guard.start_db(db_port);
    eprintln!("generating {what} (bench/{script})");
    let secs = script_into(&guard.dir, script);
    (guard, db_port, http_port, secs)
}

/// Runs one of `bench/`'s generator scripts into the private server; returns the seconds it took.
fn script_into(dir: &Path, script: &str) -> f64 {
    let started = Instant::now();
    let input = std::fs::File::open(format!("{ROOT}/bench/{script}"))
        .unwrap_or_else(|e| panic!("bench/{script}: {e}"));
    run(
        Command::new("mariadb")
            .arg(format!("--socket={}", dir.join("mysqld.sock").display()))
            .args(["-uroot", "openemr"])
            .stdin(input)
            .stdout(Stdio::null()),
        &format!("bench/{script}"),
    );
    started.elapsed().as_secs_f64()
}
