//! What the benches share: a private MariaDB started with scripts/db.sh and loaded with schema/ +
//! openemr-fixtures/, the guard that stops it (and a server, if any) and removes its data
//! directory, and small helpers. Used from benches/api_load.rs and benches/login_timing.rs with
//! `#[path = "support/mod.rs"] mod support;`.

use std::{
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command},
    time::{Duration, Instant},
};

pub const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The master key of every bench configuration (encryption at rest): 32 bytes, base64.
pub const MASTER_KEY: &str = "YmVuY2ggbWFzdGVyIGtleSBvZiBtbXQtc2lkZWNhciE=";

/// Stops the server (if any) and the private MariaDB and removes the data directory, also on
/// panic. BENCH_KEEP_DIR keeps the directory.
pub struct Guard {
    pub dir: PathBuf,
    pub server: Option<Child>,
    pub db_started: bool,
}

impl Guard {
    /// A fresh, not yet created data directory under the temp dir; nothing is started.
    pub fn new(prefix: &str) -> Self {
        let unique = format!(
            "{prefix}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis()
        );
        Self { dir: std::env::temp_dir().join(unique), server: None, db_started: false }
    }

    /// Starts a private MariaDB on 127.0.0.1:`port` in the data directory (scripts/db.sh start,
    /// which also creates user mmt/mmt) and loads schema/ + openemr-fixtures/ into database
    /// `openemr` (scripts/db.sh load).
    pub fn start_db(&mut self, port: u16) {
        eprintln!("private MariaDB on 127.0.0.1:{port} (data in {})", self.dir.display());
        self.db_started = true;
        run(
            Command::new("bash")
                .arg(format!("{ROOT}/scripts/db.sh"))
                .arg("start")
                .arg(&self.dir)
                .arg(port.to_string()),
            "scripts/db.sh start",
        );
        run(
            Command::new("bash")
                .arg(format!("{ROOT}/scripts/db.sh"))
                .arg("load")
                .arg(&self.dir)
                .arg("openemr"),
            "scripts/db.sh load",
        );
    }
}

impl Guard {
    /// Stops the sidecar: SIGTERM first so the server drains; SIGKILL if it has not gone after a
    /// few seconds.
    pub fn stop_server(&mut self) {
        if let Some(mut child) = self.server.take() {
            let _ = Command::new("kill").arg(child.id().to_string()).status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if matches!(child.try_wait(), Ok(Some(_))) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.stop_server();
        if self.db_started {
            let _ =
                Command::new("bash").arg(format!("{ROOT}/scripts/db.sh")).arg("stop").arg(&self.dir).status();
        }
        if std::env::var_os("BENCH_KEEP_DIR").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

pub fn free_ports<const N: usize>() -> [u16; N] {
    // All listeners stay open until every port is chosen, so the ports differ.
    let listeners: Vec<TcpListener> = (0..N).map(|_| TcpListener::bind("127.0.0.1:0").unwrap()).collect();
    std::array::from_fn(|i| listeners[i].local_addr().unwrap().port())
}

pub fn run(cmd: &mut Command, what: &str) {
    let status = cmd.status().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(status.success(), "{what} failed: {status}");
}

/// One statement through the root socket of the private server; returns the first column.
pub fn sql(dir: &Path, statement: &str) -> String {
    let out = Command::new("mariadb")
        .arg(format!("--socket={}", dir.join("mysqld.sock").display()))
        .args(["-uroot", "-N", "-B", "openemr", "-e", statement])
        .output()
        .expect("mariadb client");
    assert!(out.status.success(), "{statement}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

pub fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or("unknown CPU", |(_, v)| v.trim())
        .to_string();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let ram_gib = meminfo
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0 / 1024.0);
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    format!("{cpus} CPUs ({model}), {ram_gib:.1} GiB RAM")
}
