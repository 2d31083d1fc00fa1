//! Load benchmark on a large OpenEMR-shaped dataset (issues 4 and 6). Starts a private MariaDB
//! (scripts/db.sh) on a free port, loads schema/ + openemr-fixtures/, adds 100,000 patients and
//! 1,000,000 encounters with bench/generate-large.sql, starts the release binary against it, waits
//! for the patient search index, and drives it over loopback with `wrk` (a separate process; the
//! bench installs the Debian package with apt-get when it is missing) at 1 and 32 connections:
//! health, login (bcrypt cost 10), patient search, patient get, encounter list, transcription
//! create and a mixed read/write load. Each row prints p50/p99/max latency, requests per second
//! and errors. Then the same queries the sidecar runs for search, get and encounter list are timed
//! straight against MariaDB over sqlx (no HTTP, no ACL check, no audit row; and once more with the
//! audit row) at 1 and 32 connections, and the sidecar's throughput is printed as a ratio of that.
//! Last, the sidecar's peak resident memory (VmHWM). Everything it starts it stops.
//!
//!   cargo bench --bench api_load
//!
//! BENCH_SECS (default 10) sets the measured seconds per row; BENCH_WARMUP_SECS (default 2) the
//! unrecorded warm-up per scenario. BENCH_KEEP_DIR keeps the data directory (and wrk scripts).
//! BENCH_ONLY=dashboard,search runs only the scenarios whose label contains one of the words.
//! BENCH_PATIENTS (default 100000) and BENCH_ENCOUNTERS (default 1000000) size the generated data.

#[path = "support/generate.rs"]
mod generate;
#[path = "support/http.rs"]
mod http_support;
#[path = "support/mod.rs"]
mod support;

use std::{
    fmt::Write as _,
    path::Path,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use http_support::{peak_rss_mib, percentile, sign_in, start_sidecar, status_mib, wait_until};
use mmt_sidecar::{
    domain::{audit::AuditEntry, patient::Pid, patient_search::parse_query},
    storage::{
        lazy_pool,
        mmt::patient_index::{self, Filters, Page, SortKey},
        openemr::{audit_log, encounters, patients},
    },
};
use rand::{Rng, SeedableRng, rngs::StdRng};
use support::{machine, run, sql};

const CONCURRENCY: [usize; 2] = [1, 32];
/// The page size the API uses by default, for searches and encounter lists alike.
const PAGE: u32 = 25;

/// `wrk` from the Debian package, installed with apt-get (as scripts/db.sh does for MariaDB).
fn ensure_wrk() {
    let found = || Command::new("bash").args(["-c", "command -v wrk"]).stdout(Stdio::null()).status();
    if found().is_ok_and(|s| s.success()) {
        return;
    }
    eprintln!("wrk is not installed; installing it with apt-get");
    run(
        Command::new("bash").args([
            "-c",
            "set -e; if [ \"$(id -u)\" -ne 0 ]; then SUDO=sudo; else SUDO=; fi; $SUDO apt-get update -qq; \
             DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends wrk >/dev/null",
        ]),
        "apt-get install wrk",
    );
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scenario {
    Health,
    HealthDuringSignIns,
    Login,
    PatientSearch,
    FhirPatientSearch,
    PatientGet,
    EncounterList,
    TranscriptionCreate,
    VitalsTrend,
    ChartSummary,
    PrescriptionPdf,
    Dashboard,
    InboxList,
    Mixed,
    PanelSearch,
    PanelGet,
}

impl Scenario {
    const ALL: [Self; 16] = [
        Self::Health,
        Self::HealthDuringSignIns,
        Self::Login,
        Self::PatientSearch,
        Self::FhirPatientSearch,
        Self::PatientGet,
        Self::EncounterList,
        Self::TranscriptionCreate,
        Self::VitalsTrend,
        Self::ChartSummary,
        Self::PrescriptionPdf,
        Self::Dashboard,
        Self::InboxList,
        Self::Mixed,
        Self::PanelSearch,
        Self::PanelGet,
    ];

    fn label(self) -> &'static str {
        match self {
            Self::Health => "health",
            Self::HealthDuringSignIns => "health while 100 sign-ins queue (bcrypt cost 10)",
            Self::Login => "login (bcrypt cost 10)",
            Self::PatientSearch => "patient search",
            Self::FhirPatientSearch => "FHIR Patient search (name=, _count=25)",
            Self::PatientGet => "patient get",
            Self::EncounterList => "encounter list",
            Self::TranscriptionCreate => "transcription create",
            Self::VitalsTrend => "vitals trend (one patient, 500 readings)",
            Self::ChartSummary => "chart summary (allergies, problems, medications)",
            Self::PrescriptionPdf => "prescription PDF render",
            Self::Dashboard => "dashboard (a physician's week, 20 recent patients, counts)",
            Self::InboxList => "inbox list (500 messages in the inbox)",
            Self::Mixed => "mixed",
            Self::PanelSearch => "patient search, assigned policy (a physician's panel)",
            Self::PanelGet => "patient get, assigned policy (own panel)",
        }
    }

    /// Run against a sidecar started with `MMT_PATIENT_ACCESS=assigned`, as drgarcia.
    fn assigned(self) -> bool {
        matches!(self, Self::PanelSearch | Self::PanelGet)
    }

    /// The name the wrk script dispatches on.
    fn kind(self) -> &'static str {
        match self {
            Self::Health | Self::HealthDuringSignIns => "health",
            Self::Login => "login",
            Self::PatientSearch => "search",
            Self::FhirPatientSearch => "fhir_search",
            Self::PatientGet => "get",
            Self::EncounterList => "encounters",
            Self::TranscriptionCreate => "create",
            Self::VitalsTrend => "vitals",
            Self::ChartSummary => "chart",
            Self::PrescriptionPdf => "rxpdf",
            Self::Dashboard => "dashboard",
            Self::InboxList => "inbox",
            Self::Mixed => "mixed",
            Self::PanelSearch => "search",
            Self::PanelGet => "panel_get",
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

fn url_encode(term: &str) -> String {
    let mut encoded = String::new();
    for b in term.bytes() {
        if b.is_ascii_alphanumeric() {
            encoded.push(b as char);
        } else {
            let _ = write!(encoded, "%{b:02X}");
        }
    }
    encoded
}

fn search_path(term: &str) -> String {
    format!("/api/patients/?search={}&page_size={PAGE}", url_encode(term))
}

/// The FHIR form of a search: `name` matches the start of any name word, so the first word typed.
fn fhir_search_path(term: &str) -> String {
    let word = term.split_whitespace().next().unwrap_or(term);
    format!("/fhir/r4/Patient?name={}&_count={PAGE}", url_encode(word))
}

/// A Lua string literal.
fn lua_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_ascii_graphic() || c == ' ' => out.push(c),
            c => {
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    let _ = write!(out, "\\{b}");
                }
            }
        }
    }
    out.push('"');
    out
}

/// What wrk runs: one request builder per scenario, chosen by `kind`. Transcription creates get a
/// fresh random UUID each (a repeated id would be an idempotent replay, not a create). `done`
/// prints one machine-readable line, which `wrk` parses.
const WRK_LUA: &str = r#"
local reader = { ["Authorization"] = "Bearer " .. reader_token }
local function writer() return { ["Authorization"] = "Bearer " .. writer_token, ["Content-Type"] = "application/json" } end
local function r16() return math.random(0, 65535) end
local function uuid()
  return string.format("%04x%04x-%04x-4%03x-%04x-%04x%04x%04x",
    r16(), r16(), r16(), math.random(0, 4095), 32768 + math.random(0, 16383), r16(), r16(), r16())
end
local function pid() return math.random(1, max_pid) end
local builders = {}
builders.health = function() return wrk.format("GET", "/api/health/", {}) end
builders.login = function()
  return wrk.format("POST", "/api/auth/login/", { ["Content-Type"] = "application/json" }, login_body)
end
builders.search = function() return wrk.format("GET", searches[math.random(#searches)], reader) end
builders.fhir_search = function() return wrk.format("GET", fhir_searches[math.random(#fhir_searches)], reader) end
builders.get = function() return wrk.format("GET", "/api/patients/" .. pid() .. "/", reader) end
builders.panel_get = function() return wrk.format("GET", "/api/patients/" .. panel_pids[math.random(#panel_pids)] .. "/", reader) end
builders.encounters = function() return wrk.format("GET", "/api/patients/" .. pid() .. "/encounters/", reader) end
builders.vitals = function() return wrk.format("GET", "/api/patients/" .. trend_pid .. "/vitals/", reader) end
builders.chart = function() return wrk.format("GET", "/api/patients/" .. chart_pids[math.random(#chart_pids)] .. "/chart/", reader) end
builders.rxpdf = function() return wrk.format("GET", "/api/prescriptions/" .. rx_ids[math.random(#rx_ids)] .. "/pdf", reader) end
builders.dashboard = function() return wrk.format("GET", "/api/dashboard/", writer()) end
builders.inbox = function() return wrk.format("GET", "/api/messages/?box=inbox", writer()) end
builders.create = function()
  local body = string.format('{"id":"%s","pid":%d,"title":"Load test","segments":['
    .. '{"seq":0,"start_ms":0,"end_ms":4200,"speaker_label":"SPEAKER_0","speaker_role":"clinician","text":"How is the cough?","confidence":0.97},'
    .. '{"seq":1,"start_ms":4300,"end_ms":9000,"speaker_label":"SPEAKER_1","speaker_role":"patient","text":"Better, mostly at night.","confidence":0.88}]}',
    uuid(), pid())
  return wrk.format("POST", "/api/transcriptions/", writer(), body)
end
-- 20 % search, 50 % get, 20 % encounter list, 10 % transcription create.
builders.mixed = function()
  local r = math.random(100)
  if r <= 20 then return builders.search()
  elseif r <= 70 then return builders.get()
  elseif r <= 90 then return builders.encounters()
  else return builders.create() end
end
local build = builders[kind]

function request() return build() end

first_error = nil
function response(status, headers, body)
  if status >= 400 and first_error == nil then
    first_error = status .. " " .. string.sub(body or "", 1, 300)
  end
end

local threads = {}
function setup(thread) table.insert(threads, thread) end

function done(summary, latency, requests)
  local e = summary.errors
  local first = ""
  for _, t in ipairs(threads) do
    local f = t:get("first_error")
    if f ~= nil then first = f break end
  end
  io.write(string.format("MMT-RESULT %d %d %d %d %d %d\n", summary.requests, summary.duration,
    e.connect + e.read + e.write + e.status + e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
  io.write("MMT-FIRST-ERROR " .. string.gsub(first, "\n", " ") .. "\n")
end
"#;

struct Setup<'a> {
    dir: &'a Path,
    base: &'a str,
    reader_token: &'a str,
    writer_token: &'a str,
    login_body: &'a str,
    search_paths: &'a [String],
    fhir_search_paths: &'a [String],
    max_pid: i64,
    /// A patient with 500 vitals readings.
    trend_pid: i64,
    /// Comma-separated pids of the demo patients with chart lists.
    chart_pids: &'a str,
    /// Comma-separated ids of the demo prescriptions.
    rx_ids: &'a str,
    /// Comma-separated pids of drgarcia's own panel (for the assigned-policy rows).
    panel_pids: &'a str,
}

#[derive(Default)]
struct Row {
    requests: u64,
    errors: u64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    per_sec: f64,
    first_error: Option<String>,
}

fn wrk(setup: &Setup<'_>, scenario: Scenario, connections: usize, duration: Duration, seed: u64) -> Row {
    let mut script = String::from("-- written by benches/api_load.rs\n");
    let _ = writeln!(script, "kind = {}", lua_str(scenario.kind()));
    let _ = writeln!(script, "max_pid = {}", setup.max_pid);
    let _ = writeln!(script, "trend_pid = {}", setup.trend_pid);
    let _ = writeln!(script, "chart_pids = {{{}}}", setup.chart_pids);
    let _ = writeln!(script, "rx_ids = {{{}}}", setup.rx_ids);
    let _ = writeln!(script, "panel_pids = {{{}}}", setup.panel_pids);
    let _ = writeln!(script, "reader_token = {}", lua_str(setup.reader_token));
    let _ = writeln!(script, "writer_token = {}", lua_str(setup.writer_token));
    let _ = writeln!(script, "login_body = {}", lua_str(setup.login_body));
    let _ = writeln!(script, "math.randomseed({seed})");
    script.push_str("searches = {\n");
    for path in setup.search_paths {
        let _ = writeln!(script, "  {},", lua_str(path));
    }
    script.push_str("}\nfhir_searches = {\n");
    for path in setup.fhir_search_paths {
        let _ = writeln!(script, "  {},", lua_str(path));
    }
    script.push_str("}\n");
    script.push_str(WRK_LUA);
    let path = setup.dir.join(format!("wrk-{}.lua", scenario.kind()));
    std::fs::write(&path, script).unwrap();
    let out = Command::new("wrk")
        .args(["-t1", &format!("-c{connections}"), &format!("-d{}s", duration.as_secs().max(1))])
        .args(["--timeout", "60s", "-s"])
        .arg(&path)
        .arg(setup.base)
        .output()
        .expect("run wrk");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "wrk failed: {stdout}{}", String::from_utf8_lossy(&out.stderr));
    let result = stdout.lines().find_map(|l| l.strip_prefix("MMT-RESULT ")).expect("wrk result line");
    let v: Vec<f64> = result.split_whitespace().map(|x| x.parse().unwrap()).collect();
    let first_error = stdout
        .lines()
        .find_map(|l| l.strip_prefix("MMT-FIRST-ERROR "))
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(str::to_string);
    Row {
        requests: v[0] as u64,
        errors: v[2] as u64,
        p50_ms: v[3] / 1000.0,
        p99_ms: v[4] / 1000.0,
        max_ms: v[5] / 1000.0,
        per_sec: v[0] / (v[1] / 1e6),
        first_error,
    }
}

/// The reads the sidecar's services make for one request, straight over sqlx with the sidecar's
/// own pool settings and storage functions; with `audit`, also the audit row the service writes.
async fn direct_once(
    pool: &sqlx::MySqlPool,
    scenario: Scenario,
    rng: &mut StdRng,
    terms: &[String],
    max_pid: i64,
    audit: bool,
) -> Result<(), String> {
    let err = |e: mmt_sidecar::storage::StorageError| e.to_string();
    let mut patient = None;
    let comments = match scenario {
        Scenario::PatientGet => {
            let pid = Pid(rng.random_range(1..=max_pid));
            patient = Some(pid.0);
            patients::get(pool, pid).await.map_err(err)?.ok_or("no such patient")?;
            format!("mmt-sidecar read demographics of pid {pid}")
        }
        Scenario::PatientSearch => {
            let term = &terms[rng.random_range(0..terms.len())];
            let filters = Filters { needles: parse_query(term), ..Filters::default() };
            let page = Page {
                sort: SortKey::Name,
                descending: false,
                after: None,
                offset: None,
                limit: u64::from(PAGE),
            };
            let total = patient_index::total(pool, &filters).await.map_err(err)?;
            let hits = patient_index::search(pool, &filters, &page).await.map_err(err)?;
            let pids: Vec<i64> = hits.iter().map(|(pid, _)| *pid).collect();
            patients::get_many(pool, &pids).await.map_err(err)?;
            format!("mmt-sidecar patient search: {} of {total} shown; pids {pids:?}", pids.len())
        }
        Scenario::EncounterList => {
            let pid = Pid(rng.random_range(1..=max_pid));
            patient = Some(pid.0);
            patients::get(pool, pid).await.map_err(err)?.ok_or("no such patient")?;
            // The admin's scope: every provider, both sensitivities.
            let scope = encounters::Scope { only_provider: None, sensitivities: vec!["normal", "high"] };
            encounters::count_for_patient(pool, pid, &scope).await.map_err(err)?;
            let rows = encounters::list_for_patient(pool, pid, &scope, PAGE, 0).await.map_err(err)?;
            format!("mmt-sidecar listed encounters of pid {pid}: {} rows", rows.len())
        }
        other => unreachable!("no direct query for {other:?}"),
    };
    if audit {
        let entry = AuditEntry {
            event: "patient-record-select".into(),
            category: "Patient Demographics".into(),
            user: "admin".into(),
            groupname: "Default".into(),
            comments,
            patient_id: patient,
            success: true,
        };
        let mut conn = pool.acquire().await.map_err(|e| e.to_string())?;
        audit_log::record(&mut conn, &entry).await.map_err(err)?;
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn direct(
    pool: &sqlx::MySqlPool,
    scenario: Scenario,
    connections: usize,
    duration: Duration,
    terms: &[String],
    max_pid: i64,
    audit: bool,
    seed: u64,
) -> Row {
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = Vec::new();
    for worker in 0..connections {
        let pool = pool.clone();
        let terms = terms.to_vec();
        tasks.push(tokio::spawn(async move {
            let mut rng = StdRng::seed_from_u64(seed ^ ((worker as u64) << 16));
            let mut latencies = Vec::with_capacity(4096);
            let (mut errors, mut first_error) = (0u64, None);
            while Instant::now() < deadline {
                let t = Instant::now();
                if let Err(e) = direct_once(&pool, scenario, &mut rng, &terms, max_pid, audit).await {
                    errors += 1;
                    first_error.get_or_insert(e);
                }
                latencies.push(t.elapsed().as_micros() as u64);
            }
            (latencies, errors, first_error)
        }));
    }
    let (mut latencies, mut row) = (Vec::new(), Row::default());
    for task in tasks {
        let (l, e, f) = task.await.expect("direct task");
        latencies.extend(l);
        row.errors += e;
        row.first_error = row.first_error.or(f);
    }
    let elapsed = started.elapsed();
    latencies.sort_unstable();
    row.requests = latencies.len() as u64;
    row.p50_ms = percentile(&latencies, 50.0);
    row.p99_ms = percentile(&latencies, 99.0);
    row.max_ms = percentile(&latencies, 100.0);
    row.per_sec = latencies.len() as f64 / elapsed.as_secs_f64();
    row
}

/// Gives the patient of the newest generated encounter `n` vitals forms in that encounter, a day
/// apart, as the vitals form writes them; returns the pid.
/// Puts `n` messages from the administrator in drgarcia's OpenEMR inbox, about random patients,
/// as `addPnote` writes them (one `pnotes` row each, the body's first line in OpenEMR's format).
fn inbox(dir: &Path, n: u32) {
    sql(
        dir,
        &format!(
            "INSERT INTO pnotes (date, body, pid, user, groupname, activity, authorized, title, assigned_to, deleted, \
             message_status, update_by, update_date) \
             SELECT NOW() - INTERVAL seq HOUR, CONCAT(DATE_FORMAT(NOW() - INTERVAL seq HOUR, '%Y-%m-%d %H:%i'), \
             ' (admin to drgarcia) Please review result ', seq), 1 + seq % 1000, 'admin', 'Default', 1, 1, \
             'Lab Results', 'drgarcia', 0, IF(seq % 3 = 0, 'Read', 'New'), 1, NOW() - INTERVAL seq HOUR FROM seq_1_to_{n};"
        ),
    );
}

fn vitals_history(dir: &Path, n: u32) -> i64 {
    let pid: i64 = sql(dir, "SELECT pid FROM form_encounter ORDER BY id DESC LIMIT 1").parse().unwrap();
    sql(
        dir,
        &format!(
            "SET @enc := (SELECT encounter FROM form_encounter WHERE pid = {pid} ORDER BY id DESC LIMIT 1); \
             INSERT INTO form_vitals (uuid, date, pid, user, groupname, authorized, activity, bps, bpd, weight, height, \
             temperature, temp_method, pulse, respiration, note, BMI, BMI_status) \
             SELECT UNHEX(MD5(CONCAT('bench-vitals-', seq))), NOW() - INTERVAL seq DAY, {pid}, 'drgarcia', 'Default', 1, 1, \
             CAST(110 + seq % 30 AS CHAR), CAST(70 + seq % 15 AS CHAR), 170 + seq % 20, 69, 98.6, 'Oral', 60 + seq % 30, 16, '', \
             (170 + seq % 20) / 69 / 69 * 703, 'Normal BL' FROM seq_1_to_{n}; \
             INSERT INTO forms (date, encounter, form_name, form_id, pid, user, groupname, authorized, formdir) \
             SELECT v.date, @enc, 'Vitals', v.id, {pid}, 'drgarcia', 'Default', 1, 'vitals' FROM form_vitals v WHERE v.pid = {pid};"
        ),
    );
    pid
}

/// One scenario: a warm-up, then a row per concurrency level.
fn measure(
    setup: &Setup<'_>,
    scenario: Scenario,
    (warmup, secs): (Duration, Duration),
    seed: &mut u64,
    table: &mut String,
    rates: &mut Vec<(Scenario, usize, f64)>,
    first_errors: &mut Vec<String>,
) {
    *seed += 1;
    wrk(setup, scenario, 4, warmup, *seed);
    for clients in CONCURRENCY {
        *seed += 1;
        let row = match scenario {
            Scenario::HealthDuringSignIns => during_sign_in_flood(setup, clients, secs, *seed),
            _ => wrk(setup, scenario, clients, secs, *seed),
        };
        let line = format!(
            "| {} | {clients} | {} | {} | {:.1} | {:.1} | {:.1} | {:.0} |",
            scenario.label(),
            row.requests,
            row.errors,
            row.p50_ms,
            row.p99_ms,
            row.max_ms,
            row.per_sec
        );
        eprintln!("{line}");
        let _ = writeln!(table, "{line}");
        rates.push((scenario, clients, row.per_sec));
        if let Some(e) = row.first_error {
            first_errors.push(format!("{} x{clients}: {e}", scenario.label()));
        }
    }
}

/// Health measured while a second wrk keeps 100 bcrypt sign-ins in flight, from a second before
/// until after the measured seconds.
fn during_sign_in_flood(setup: &Setup<'_>, clients: usize, secs: Duration, seed: u64) -> Row {
    std::thread::scope(|s| {
        let flood =
            s.spawn(|| wrk(setup, Scenario::Login, 100, secs + Duration::from_secs(2), seed ^ 0x5eed));
        std::thread::sleep(Duration::from_secs(1));
        let row = wrk(setup, Scenario::HealthDuringSignIns, clients, secs, seed);
        flood.join().expect("the sign-in flood");
        row
    })
}

/// Gives every fifth patient up to `teams` an active care team, as OpenEMR's care team card writes
/// it, with two active members: drokafor and nkim on most, drgarcia on one team in forty (her
/// panel then holds a few hundred care-team patients beyond her own, as a physician's would).
fn care_teams(dir: &Path, teams: i64) {
    sql(
        dir,
        &format!(
            "INSERT INTO care_teams (uuid, pid, team_name, status, created_by, date_created) \
             SELECT UNHEX(MD5(CONCAT('bench-team-', seq))), seq * 5, 'Care Team', 'active', 1, NOW() \
             FROM seq_1_to_{teams}; \
             INSERT INTO care_team_member (care_team_id, user_id, role, status, created_by, date_created) \
             SELECT t.id, IF(t.pid % 2 = 0, 3, 4), 'nurse', 'active', 1, NOW() FROM care_teams t \
             UNION ALL SELECT t.id, IF(t.pid % 200 = 0, 2, IF(t.pid % 2 = 0, 4, 3)), 'specialist', 'active', 1, NOW() \
             FROM care_teams t;"
        ),
    );
}

/// A FHIR bulk export of every patient, as an administrator: seconds from kick-off to manifest,
/// resources per second, and the most the process held while it ran (sampled every 100 ms).
async fn bulk_export(client: &reqwest::Client, base: &str, token: &str, server_pid: u32) -> String {
    let before = status_mib(server_pid, "VmRSS:").unwrap_or(f64::NAN);
    let t = Instant::now();
    let kick_off =
        client.get(format!("{base}/fhir/r4/Patient/$export")).bearer_auth(token).send().await.unwrap();
    assert_eq!(kick_off.status().as_u16(), 202, "Patient/$export answered {}", kick_off.status());
    let status_url = kick_off.headers()["content-location"].to_str().unwrap().to_string();
    let mut most = before;
    let manifest: serde_json::Value = loop {
        let reply = client.get(&status_url).bearer_auth(token).send().await.unwrap();
        most = most.max(status_mib(server_pid, "VmRSS:").unwrap_or(f64::NAN));
        match reply.status().as_u16() {
            200 => break reply.json().await.unwrap(),
            202 => tokio::time::sleep(Duration::from_millis(100)).await,
            other => panic!("the export status answered {other}: {}", reply.text().await.unwrap_or_default()),
        }
    };
    let secs = t.elapsed().as_secs_f64();
    let outputs = manifest["output"].as_array().cloned().unwrap_or_default();
    let count = |kind: &str| {
        outputs.iter().find(|o| o["type"] == kind).and_then(|o| o["count"].as_u64()).unwrap_or(0)
    };
    let resources: u64 = outputs.iter().filter_map(|o| o["count"].as_u64()).sum();
    let mut table = String::new();
    let _ = writeln!(
        table,
        "| bulk export | patients | encounters | resources | seconds | resources/s | RSS before MiB | RSS peak while exporting MiB |"
    );
    let _ = writeln!(table, "|---|--:|--:|--:|--:|--:|--:|--:|");
    let _ = writeln!(
        table,
        "| Patient/$export, all types | {} | {} | {resources} | {secs:.1} | {:.0} | {before:.1} | {most:.1} |",
        count("Patient"),
        count("Encounter"),
        resources as f64 / secs
    );
    eprint!("{table}");
    table
}

// One client thread: on two cores the load generator should take as little as it can from the
// server and MariaDB it measures. wrk runs with one thread too (-t1).
#[tokio::main(flavor = "current_thread")]
async fn main() {
    let secs = generate::env_secs("BENCH_SECS", 10);
    let warmup = generate::env_secs("BENCH_WARMUP_SECS", 2);
    ensure_wrk();
    let count =
        |name: &str, default: u64| std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default);
    let (want_patients, want_encounters) =
        (count("BENCH_PATIENTS", 100_000), count("BENCH_ENCOUNTERS", 1_000_000));
    let sizes = [
        ("SET @patients := 100000;", format!("SET @patients := {want_patients};")),
        ("SET @encounters := 1000000;", format!("SET @encounters := {want_encounters};")),
    ];
    let what = format!("{want_patients} patients and {want_encounters} encounters");
    let (mut guard, db_port, http_port, generate_secs) =
        generate::database("mmt-bench", "generate-large.sql", &what, &sizes);
    let dir = guard.dir.clone();
    let mariadb_version = sql(&dir, "SELECT VERSION()");
    let patients: i64 = sql(&dir, "SELECT COUNT(*) FROM patient_data").parse().unwrap();
    let encounters: i64 = sql(&dir, "SELECT COUNT(*) FROM form_encounter").parse().unwrap();
    let max_pid: i64 = sql(&dir, "SELECT MAX(pid) FROM patient_data").parse().unwrap();
    assert_eq!(max_pid, patients, "pids are expected to be 1..=count");
    eprintln!("generated in {generate_secs:.1} s: {patients} patients, {encounters} encounters");
    let trend_pid = vitals_history(&dir, 500);
    inbox(&dir, 500);
    let chart_pids = sql(&dir, "SELECT GROUP_CONCAT(DISTINCT pid ORDER BY pid) FROM lists");
    let rx_ids = sql(&dir, "SELECT GROUP_CONCAT(id ORDER BY id) FROM prescriptions");

    let base = format!("http://127.0.0.1:{http_port}");
    let database_url = format!("mysql://mmt:mmt@127.0.0.1:{db_port}/openemr");
    let t = Instant::now();
    let export_dir = dir.join("fhir-export");
    let export_env = [("MMT_FHIR_EXPORT_DIR", export_dir.to_str().unwrap())];
    let server_pid = start_sidecar(&mut guard, http_port, &database_url, &export_env).await;
    // Connections idle through a long row are closed by the server; never reuse one that old.
    let client = reqwest::Client::builder().pool_idle_timeout(Duration::from_secs(2)).build().unwrap();
    let healthy_secs = t.elapsed().as_secs_f64();
    wait_until("the patient search index", Duration::from_secs(600), || {
        let indexed = sql(&dir, "SELECT COUNT(*) FROM mmt_patient_index").parse::<i64>().unwrap_or(0);
        async move { indexed == patients }
    })
    .await;
    let indexed_secs = t.elapsed().as_secs_f64();
    wait_until("the in-memory search index", Duration::from_secs(600), || {
        let health = client.get(format!("{base}/api/health/")).send();
        async move {
            let body: serde_json::Value = health.await.unwrap().json().await.unwrap_or_default();
            body["patient_search"] == "memory"
        }
    })
    .await;
    let in_memory_secs = t.elapsed().as_secs_f64();
    let rss_after_index = peak_rss_mib(server_pid);
    let rss_indexed = status_mib(server_pid, "VmRSS:");
    eprintln!("healthy after {healthy_secs:.1} s, search index complete after {indexed_secs:.1} s");

    // Reads as admin (unrestricted encounter scope, as in issue 4); transcriptions by a physician.
    let reader_token = sign_in(&client, &base, "admin", "Sidecar-Admin-1").await;
    let writer_token = sign_in(&client, &base, "drgarcia", "Physician-Garcia-2").await;
    let probe = client
        .get(format!("{base}/api/patients/1/encounters/"))
        .bearer_auth(&reader_token)
        .send()
        .await
        .unwrap()
        .status();
    assert!(probe.is_success(), "GET /api/patients/1/encounters/ answered {probe}");
    // The physician has read 20 patients lately, so the dashboard lists a full recent list.
    for pid in 1..=20 {
        let read = client.get(format!("{base}/api/patients/{pid}/")).bearer_auth(&writer_token).send().await;
        assert!(read.is_ok_and(|r| r.status().is_success()), "GET /api/patients/{pid}/ as drgarcia");
    }

    let mut rng = StdRng::seed_from_u64(0x5eed);
    let terms: Vec<String> = (0..4096).map(|_| search_term(&mut rng, max_pid)).collect();
    let search_paths: Vec<String> = terms.iter().map(|t| search_path(t)).collect();
    let fhir_search_paths: Vec<String> = terms.iter().map(|t| fhir_search_path(t)).collect();
    let login_body = serde_json::json!({"username": "acctbrown", "password": "Billing-Brown-7"}).to_string();
    let setup = Setup {
        dir: &dir,
        base: &base,
        reader_token: &reader_token,
        writer_token: &writer_token,
        login_body: &login_body,
        search_paths: &search_paths,
        fhir_search_paths: &fhir_search_paths,
        max_pid,
        trend_pid,
        chart_pids: &chart_pids,
        rx_ids: &rx_ids,
        panel_pids: "",
    };

    let mut table = String::new();
    let _ = writeln!(table, "| scenario | clients | requests | errors | p50 ms | p99 ms | max ms | req/s |");
    let _ = writeln!(table, "|---|--:|--:|--:|--:|--:|--:|--:|");
    let mut first_errors = Vec::new();
    let mut sidecar_rate = Vec::new();
    let mut seed = 1u64;
    let only: Vec<String> = std::env::var("BENCH_ONLY")
        .unwrap_or_default()
        .split(',')
        .map(|w| w.trim().to_lowercase())
        .filter(|w| !w.is_empty())
        .collect();
    let chosen = |s: &Scenario| only.is_empty() || only.iter().any(|w| s.label().to_lowercase().contains(w));
    for scenario in Scenario::ALL.into_iter().filter(chosen).filter(|s| !s.assigned()) {
        measure(
            &setup,
            scenario,
            (warmup, secs),
            &mut seed,
            &mut table,
            &mut sidecar_rate,
            &mut first_errors,
        );
    }
    let peak = peak_rss_mib(server_pid);
    let export = if only.is_empty() || only.iter().any(|w| "bulk export".contains(w.as_str())) {
        bulk_export(&client, &base, &reader_token, server_pid).await
    } else {
        String::new()
    };
    let assigned: Vec<Scenario> = Scenario::ALL.into_iter().filter(chosen).filter(|s| s.assigned()).collect();
    if !assigned.is_empty() {
        // The same data with the assigned-patient policy on, read by a physician: a fifth of the
        // patients get a care team, so the check meets care team rows as it would in a practice.
        care_teams(&dir, patients / 5);
        guard.stop_server();
        let env = [export_env[0], ("MMT_PATIENT_ACCESS", "assigned")];
        start_sidecar(&mut guard, http_port, &database_url, &env).await;
        let panel_token = sign_in(&client, &base, "drgarcia", "Physician-Garcia-2").await;
        let panel_pids = sql(
            &dir,
            "SELECT GROUP_CONCAT(pid) FROM (SELECT pid FROM patient_data WHERE providerID = 2 ORDER BY pid LIMIT 5000) own",
        );
        let panel = Setup { reader_token: &panel_token, panel_pids: &panel_pids, ..setup };
        for scenario in assigned {
            measure(
                &panel,
                scenario,
                (warmup, secs),
                &mut seed,
                &mut table,
                &mut sidecar_rate,
                &mut first_errors,
            );
        }
    }
    let created: i64 = sql(&dir, "SELECT COUNT(*) FROM mmt_transcriptions").parse().unwrap_or(-1);

    // The same queries without HTTP: the sidecar's storage functions over a pool like its own.
    let options: sqlx::mysql::MySqlConnectOptions = database_url.parse().unwrap();
    let pool = lazy_pool(options.timezone(None), Duration::from_secs(3), 32);
    let mut ratios = String::new();
    let _ = writeln!(
        ratios,
        "| query | clients | direct req/s | direct p50 ms | direct + audit row req/s | sidecar req/s | sidecar / direct | sidecar / (direct + audit) |"
    );
    let _ = writeln!(ratios, "|---|--:|--:|--:|--:|--:|--:|--:|");
    for scenario in
        [Scenario::PatientSearch, Scenario::PatientGet, Scenario::EncounterList].into_iter().filter(chosen)
    {
        direct(&pool, scenario, 4, warmup, &terms, max_pid, false, 7).await;
        for clients in CONCURRENCY {
            let plain = direct(&pool, scenario, clients, secs, &terms, max_pid, false, 11).await;
            let audited = direct(&pool, scenario, clients, secs, &terms, max_pid, true, 13).await;
            for (what, row) in [("direct", &plain), ("direct + audit", &audited)] {
                if row.errors > 0 {
                    first_errors.push(format!(
                        "{what} {} x{clients}: {} errors, first {}",
                        scenario.label(),
                        row.errors,
                        row.first_error.as_deref().unwrap_or("")
                    ));
                }
            }
            let http = sidecar_rate
                .iter()
                .find(|(s, c, _)| *s == scenario && *c == clients)
                .map_or(f64::NAN, |(_, _, r)| *r);
            let line = format!(
                "| {} | {clients} | {:.0} | {:.1} | {:.0} | {http:.0} | {:.2} | {:.2} |",
                scenario.label(),
                plain.per_sec,
                plain.p50_ms,
                audited.per_sec,
                http / plain.per_sec,
                http / audited.per_sec
            );
            eprintln!("{line}");
            let _ = writeln!(ratios, "{line}");
        }
    }
    pool.close().await;

    println!();
    println!(
        "mmt-sidecar load benchmark: {patients} patients, {encounters} encounters, MariaDB {mariadb_version}, {}",
        machine()
    );
    println!(
        "{} s per row ({} s warm-up per scenario); load from wrk -t1 over loopback; direct queries over sqlx from this process",
        secs.as_secs(),
        warmup.as_secs(),
    );
    println!(
        "generator: {generate_secs:.1} s; sidecar healthy after {healthy_secs:.1} s, search index table built after {indexed_secs:.1} s, in-memory index after {in_memory_secs:.1} s (resident then: {}); {created} transcriptions created",
        rss_indexed.map_or("unknown".to_string(), |v| format!("{v:.1} MiB"))
    );
    println!();
    print!("{table}");
    println!();
    print!("{ratios}");
    println!();
    print!("{export}");
    println!();
    let mib = |v: Option<f64>| v.map_or("unknown".to_string(), |v| format!("{v:.1} MiB"));
    println!("sidecar peak RSS (VmHWM): {} (after the index build: {})", mib(peak), mib(rss_after_index));
    for e in &first_errors {
        println!("first error: {e}");
    }
    drop(guard);
}
