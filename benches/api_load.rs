//! Load benchmark on a large OpenEMR-shaped dataset (issue 4). Starts a private MariaDB
//! (scripts/db.sh) on a free port, loads schema/ + openemr-fixtures/, adds 100,000 patients and
//! 1,000,000 encounters with bench/generate-large.sql, starts the release binary against it, waits
//! for the patient search index, signs in as admin and drives patient search, patient get and
//! encounter list at 1 and 32 concurrent clients. Prints p50/p99/max latency and throughput per
//! scenario, then the sidecar's peak resident memory (VmHWM). Everything it starts it stops.
//!
//!   cargo bench --bench api_load
//!
//! BENCH_SECS (default 10) sets the measured seconds per scenario and concurrency;
//! BENCH_WARMUP_SECS (default 2) the unrecorded warm-up per scenario.

use std::{
    fmt::Write as _,
    fs::File,
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use rand::{Rng, SeedableRng, rngs::StdRng};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const CONCURRENCY: [usize; 2] = [1, 32];

/// Stops the sidecar and the private MariaDB and removes the data directory, also on panic.
struct Guard {
    dir: PathBuf,
    server: Option<Child>,
    db_started: bool,
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(mut child) = self.server.take() {
            // SIGTERM first so the server drains; SIGKILL if it has not gone after a few seconds.
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
        if self.db_started {
            let _ =
                Command::new("bash").arg(format!("{ROOT}/scripts/db.sh")).arg("stop").arg(&self.dir).status();
        }
        if std::env::var_os("BENCH_KEEP_DIR").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn free_ports<const N: usize>() -> [u16; N] {
    // All listeners stay open until every port is chosen, so the ports differ.
    let listeners: Vec<TcpListener> = (0..N).map(|_| TcpListener::bind("127.0.0.1:0").unwrap()).collect();
    std::array::from_fn(|i| listeners[i].local_addr().unwrap().port())
}

fn env_secs(name: &str, default: u64) -> Duration {
    Duration::from_secs(std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default))
}

fn run(cmd: &mut Command, what: &str) {
    let status = cmd.status().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(status.success(), "{what} failed: {status}");
}

/// One statement through the root socket of the private server; returns the first column.
fn sql(dir: &Path, statement: &str) -> String {
    let out = Command::new("mariadb")
        .arg(format!("--socket={}", dir.join("mysqld.sock").display()))
        .args(["-uroot", "-N", "-B", "openemr", "-e", statement])
        .output()
        .expect("mariadb client");
    assert!(out.status.success(), "{statement}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn peak_rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

#[derive(Clone, Copy, Debug)]
enum Scenario {
    PatientSearch,
    PatientGet,
    EncounterList,
}

impl Scenario {
    fn label(self) -> &'static str {
        match self {
            Self::PatientSearch => "patient search",
            Self::PatientGet => "patient get",
            Self::EncounterList => "encounter list",
        }
    }
}

/// What a front desk types: surnames (with and without accents), their first letters, first name
/// plus surname start, chart numbers.
const SURNAMES: &[&str] = &[
    "smith",
    "johnson",
    "garcia",
    "García",
    "martinez",
    "Rodríguez",
    "lopez",
    "muñoz",
    "munoz",
    "o'brien",
    "obrien",
    "O'Connor",
    "d'angelo",
    "nguyen",
    "Nguyễn",
    "tran",
    "kim",
    "patel",
    "okafor",
    "müller",
    "muller",
    "angstrom",
    "sorensen",
    "dubois",
    "lefevre",
    "kowalski",
    "ozturk",
    "celik",
    "haddad",
    "rossi",
    "de la cruz",
    "mcdonald",
    "taylor",
    "wilson",
    "harris",
    "lewis",
    "chen",
    "wang",
    "tanaka",
    "yilmaz",
];
const FIRST_NAMES: &[&str] = &[
    "mary", "james", "jose", "josé", "zoe", "chloé", "bjorn", "sean", "siobhan", "maria", "john", "michael",
    "priya", "wei", "mei", "fatima", "mohammed", "lucas", "olivia", "sophia", "grace", "hiroshi", "ayse",
    "lukasz",
];

fn search_term(rng: &mut StdRng, max_pid: i64) -> String {
    let pick = |rng: &mut StdRng, list: &[&'static str]| list[rng.random_range(0..list.len())];
    match rng.random_range(0..10) {
        0..=3 => pick(rng, SURNAMES).to_string(),
        4..=6 => {
            let name = pick(rng, SURNAMES);
            name.chars().take(rng.random_range(3..=4)).collect()
        }
        7 | 8 => {
            let first = pick(rng, FIRST_NAMES);
            let last: String = pick(rng, SURNAMES).chars().take(3).collect();
            format!("{first} {last}")
        }
        _ => rng.random_range(1..=max_pid).to_string(),
    }
}

fn path_for(scenario: Scenario, rng: &mut StdRng, max_pid: i64) -> String {
    match scenario {
        Scenario::PatientSearch => {
            let term = search_term(rng, max_pid);
            let mut encoded = String::new();
            for b in term.bytes() {
                if b.is_ascii_alphanumeric() {
                    encoded.push(b as char);
                } else {
                    let _ = write!(encoded, "%{b:02X}");
                }
            }
            format!("/api/patients/?search={encoded}&page_size=25")
        }
        Scenario::PatientGet => format!("/api/patients/{}/", rng.random_range(1..=max_pid)),
        Scenario::EncounterList => format!("/api/patients/{}/encounters/", rng.random_range(1..=max_pid)),
    }
}

struct Outcome {
    latencies_us: Vec<u64>,
    errors: u64,
    first_error: Option<String>,
    elapsed: Duration,
}

async fn drive(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    scenario: Scenario,
    clients: usize,
    duration: Duration,
    max_pid: i64,
) -> Outcome {
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = Vec::new();
    for worker in 0..clients {
        let client = client.clone();
        let base = base.to_string();
        let auth = format!("Bearer {token}");
        tasks.push(tokio::spawn(async move {
            let mut rng = StdRng::seed_from_u64(0x5eed ^ ((worker as u64) << 8) ^ (scenario as u64));
            let mut latencies = Vec::with_capacity(4096);
            let mut errors = 0u64;
            let mut first_error = None;
            while Instant::now() < deadline {
                let url = format!("{base}{}", path_for(scenario, &mut rng, max_pid));
                let t = Instant::now();
                let result = client.get(&url).header("authorization", &auth).send().await;
                let ok = match result {
                    Ok(resp) => {
                        let status = resp.status();
                        let body = resp.bytes().await;
                        match body {
                            // 404 for a pid that does not exist would be an error of the
                            // benchmark: every pid in 1..=max_pid exists.
                            Ok(_) if status.is_success() => true,
                            Ok(b) => {
                                first_error.get_or_insert_with(|| {
                                    format!(
                                        "{status} {url}: {}",
                                        String::from_utf8_lossy(&b[..b.len().min(300)])
                                    )
                                });
                                false
                            }
                            Err(e) => {
                                first_error.get_or_insert_with(|| format!("{url}: {e}"));
                                false
                            }
                        }
                    }
                    Err(e) => {
                        first_error.get_or_insert_with(|| format!("{url}: {e}"));
                        false
                    }
                };
                latencies.push(t.elapsed().as_micros() as u64);
                if !ok {
                    errors += 1;
                }
            }
            (latencies, errors, first_error)
        }));
    }
    let mut out = Outcome { latencies_us: Vec::new(), errors: 0, first_error: None, elapsed: Duration::ZERO };
    for task in tasks {
        let (latencies, errors, first_error) = task.await.expect("client task");
        out.latencies_us.extend(latencies);
        out.errors += errors;
        if out.first_error.is_none() {
            out.first_error = first_error;
        }
    }
    out.elapsed = started.elapsed();
    out
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1] as f64 / 1000.0
}

async fn wait_until<F, Fut>(what: &str, timeout: Duration, mut check: F)
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

// One client thread: on two cores the load generator should take as little as it can from the
// server and MariaDB it measures. One thread easily keeps 32 connections busy.
#[tokio::main(flavor = "current_thread")]
async fn main() {
    let secs = env_secs("BENCH_SECS", 10);
    let warmup = env_secs("BENCH_WARMUP_SECS", 2);
    let unique = format!(
        "mmt-bench-{}-{}",
        std::process::id(),
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis()
    );
    let dir = std::env::temp_dir().join(unique);
    let [db_port, http_port] = free_ports::<2>();
    let mut guard = Guard { dir: dir.clone(), server: None, db_started: false };

    eprintln!("private MariaDB on 127.0.0.1:{db_port} (data in {})", dir.display());
    guard.db_started = true;
    run(
        Command::new("bash")
            .arg(format!("{ROOT}/scripts/db.sh"))
            .arg("start")
            .arg(&dir)
            .arg(db_port.to_string()),
        "scripts/db.sh start",
    );
    run(
        Command::new("bash").arg(format!("{ROOT}/scripts/db.sh")).arg("load").arg(&dir).arg("openemr"),
        "scripts/db.sh load",
    );
    let mariadb_version = sql(&dir, "SELECT VERSION()");

    eprintln!("generating 100,000 patients and 1,000,000 encounters (bench/generate-large.sql)");
    let t = Instant::now();
    run(
        Command::new("mariadb")
            .arg(format!("--socket={}", dir.join("mysqld.sock").display()))
            .args(["-uroot", "openemr"])
            .stdin(File::open(format!("{ROOT}/bench/generate-large.sql")).expect("bench/generate-large.sql"))
            .stdout(Stdio::null()),
        "bench/generate-large.sql",
    );
    let generate_secs = t.elapsed().as_secs_f64();
    let patients: i64 = sql(&dir, "SELECT COUNT(*) FROM patient_data").parse().unwrap();
    let encounters: i64 = sql(&dir, "SELECT COUNT(*) FROM form_encounter").parse().unwrap();
    let max_pid: i64 = sql(&dir, "SELECT MAX(pid) FROM patient_data").parse().unwrap();
    assert_eq!(max_pid, patients, "pids are expected to be 1..=count");
    eprintln!("generated in {generate_secs:.1} s: {patients} patients, {encounters} encounters");

    let base = format!("http://127.0.0.1:{http_port}");
    let log = File::create(dir.join("sidecar.log")).unwrap();
    let t = Instant::now();
    let server = Command::new(env!("CARGO_BIN_EXE_mmt-sidecar"))
        .args(["serve", "--migrate"])
        .env("DATABASE_URL", format!("mysql://mmt:mmt@127.0.0.1:{db_port}/openemr"))
        .env("LISTEN_ADDR", format!("127.0.0.1:{http_port}"))
        .env("LOG_FORMAT", "json")
        .env("RUST_LOG", "warn")
        .env("MMT_COOKIE_SECURE", "false")
        .env("MMT_ACCESS_TOKEN_TTL_SECS", "3600")
        .env_remove("OPENEMR_SESSION_REDIS_URL")
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("start the sidecar");
    let server_pid = server.id();
    guard.server = Some(server);

    let client = reqwest::Client::builder().pool_max_idle_per_host(64).build().unwrap();
    wait_until("GET /api/health/ = 200", Duration::from_secs(120), || {
        let client = client.clone();
        let url = format!("{base}/api/health/");
        async move { client.get(url).send().await.is_ok_and(|r| r.status().is_success()) }
    })
    .await;
    let healthy_secs = t.elapsed().as_secs_f64();
    wait_until("the patient search index", Duration::from_secs(600), || {
        let indexed = sql(&dir, "SELECT COUNT(*) FROM mmt_patient_index").parse::<i64>().unwrap_or(0);
        async move { indexed == patients }
    })
    .await;
    let indexed_secs = t.elapsed().as_secs_f64();
    let rss_after_index = peak_rss_mib(server_pid);
    eprintln!("healthy after {healthy_secs:.1} s, search index complete after {indexed_secs:.1} s");

    let login: serde_json::Value = client
        .post(format!("{base}/api/auth/login/"))
        .json(&serde_json::json!({"username": "admin", "password": "Sidecar-Admin-1"}))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .expect("admin sign-in")
        .json()
        .await
        .unwrap();
    let token = login["access_token"].as_str().expect("access_token").to_string();

    let probe = client
        .get(format!("{base}/api/patients/1/encounters/"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .status();
    assert!(probe.is_success(), "GET /api/patients/1/encounters/ answered {probe}");

    let mut table = String::new();
    let _ = writeln!(table, "| scenario | clients | requests | errors | p50 ms | p99 ms | max ms | req/s |");
    let _ = writeln!(table, "|---|--:|--:|--:|--:|--:|--:|--:|");
    let mut first_errors = Vec::new();
    for scenario in [Scenario::PatientSearch, Scenario::PatientGet, Scenario::EncounterList] {
        drive(&client, &base, &token, scenario, 4, warmup, max_pid).await;
        for clients in CONCURRENCY {
            let mut out = drive(&client, &base, &token, scenario, clients, secs, max_pid).await;
            out.latencies_us.sort_unstable();
            let n = out.latencies_us.len();
            let row = format!(
                "| {} | {clients} | {n} | {} | {:.1} | {:.1} | {:.1} | {:.0} |",
                scenario.label(),
                out.errors,
                percentile(&out.latencies_us, 50.0),
                percentile(&out.latencies_us, 99.0),
                percentile(&out.latencies_us, 100.0),
                n as f64 / out.elapsed.as_secs_f64()
            );
            eprintln!("{row}");
            let _ = writeln!(table, "{row}");
            if let Some(e) = out.first_error {
                first_errors.push(format!("{} x{clients}: {e}", scenario.label()));
            }
        }
    }
    let peak = peak_rss_mib(server_pid);

    println!();
    println!(
        "mmt-sidecar load benchmark: {patients} patients, {encounters} encounters, MariaDB {mariadb_version}, \
         {} s per row ({} s warm-up per scenario), {} CPUs",
        secs.as_secs(),
        warmup.as_secs(),
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0)
    );
    println!(
        "generator: {generate_secs:.1} s; sidecar healthy after {healthy_secs:.1} s, search index built after {indexed_secs:.1} s"
    );
    println!();
    print!("{table}");
    println!();
    let mib = |v: Option<f64>| v.map_or("unknown".to_string(), |v| format!("{v:.1} MiB"));
    println!("sidecar peak RSS (VmHWM): {} (after the index build: {})", mib(peak), mib(rss_after_index));
    for e in &first_errors {
        println!("first error: {e}");
    }
    drop(guard);
}
