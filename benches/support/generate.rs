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
/// sidecar: (guard, database port, http port, seconds the script took). Each `(from, to)` of
/// `sizes` replaces a line of the script, so a bench can scale what the script generates.
pub fn database(prefix: &str, script: &str, what: &str, sizes: &[(&str, String)]) -> (Guard, u16, u16, f64) {
    let [db_port, http_port] = free_ports::<2>();
    let mut guard = Guard::new(prefix);
    guard.start_db(db_port);
    eprintln!("generating {what} (bench/{script})");
    let secs = script_into(&guard.dir, script, sizes);
    (guard, db_port, http_port, secs)
}

/// Runs one of `bench/`'s generator scripts into the private server; returns the seconds it took.
fn script_into(dir: &Path, script: &str, sizes: &[(&str, String)]) -> f64 {
    let started = Instant::now();
    let mut text = std::fs::read_to_string(format!("{ROOT}/bench/{script}"))
        .unwrap_or_else(|e| panic!("bench/{script}: {e}"));
    for (from, to) in sizes {
        assert!(text.contains(from), "bench/{script} has no line {from}");
        text = text.replace(from, to);
    }
    let input = dir.join(script);
    std::fs::write(&input, text).unwrap();
    run(
        Command::new("mariadb")
            .arg(format!("--socket={}", dir.join("mysqld.sock").display()))
            .args(["-uroot", "openemr"])
            .stdin(std::fs::File::open(&input).unwrap())
            .stdout(Stdio::null()),
        &format!("bench/{script}"),
    );
    started.elapsed().as_secs_f64()
}
