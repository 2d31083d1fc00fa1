//! The command line: `serve`, `worker`, `migrate`, `check`, `import-products`, `hl7-import`,
//! `rotate-key`, `openapi`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use poem::listener::{Listener, TcpListener};

use crate::{
    app::{self, AppState},
    config::Config,
    http, service,
    storage::{self, mmt::migrations},
    telemetry,
};

#[derive(Parser, Debug)]
#[command(
    name = "mmt-sidecar",
    version,
    about = "Companion service beside OpenEMR, on OpenEMR's own database"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Serve the HTTP API (explorer at /api/docs/, spec at /api/openapi.json).
    Serve {
        /// Apply pending mmt_ migrations before serving.
        #[arg(long, env = "MMT_AUTO_MIGRATE")]
        migrate: bool,
    },
    /// Run background job workers (MMT_WORKERS of them) and the job scheduler, without the HTTP API.
    /// Stops claiming on SIGTERM/SIGINT and lets jobs in progress finish within MMT_SHUTDOWN_GRACE_SECS.
    Worker,
    /// Apply the sidecar's own mmt_ migrations; safe to run again and from several replicas at once.
    Migrate,
    /// Verify connectivity, the OpenEMR version, every OpenEMR table and column the sidecar uses, and the migration state.
    Check,
    /// Import a supplier's product list (.xlsx) into the catalogue at once, printing the report
    /// as JSON. Exits 1 when the workbook does not fit the supplier's layout (nothing changes).
    ImportProducts {
        /// botanitech, medreleaf, alma, phytoca or tasmanian-botanics.
        #[arg(long)]
        supplier: String,
        file: std::path::PathBuf,
    },
    /// Receive HL7 v2 messages from a file (one message or a batch) or from each file of a folder,
    /// as `POST /api/hl7/` receives them, as the OpenEMR user named; prints each file's ACKs.
    /// Exits 1 when a message was not taken (AE/AR). With --watch the folder is polled and each
    /// answered file moved to done/ or failed/ with its ACKs in <name>.ack, until stopped.
    Hl7Import {
        /// The OpenEMR username the messages are received as (their ACL applies).
        #[arg(long)]
        user: String,
        /// Poll the folder every this many seconds.
        #[arg(long)]
        watch: Option<u64>,
        path: std::path::PathBuf,
    },
    /// Add a data key for encryption at rest and queue the job (`key.rotate`) that seals again
    /// under it what older keys sealed; prints both ids. (To replace the master key instead, start
    /// with the new one and the old one as MMT_PREVIOUS_MASTER_KEY_FILE: the data keys are rewrapped.)
    RotateKey,
    /// Print the OpenAPI spec.
    Openapi {
        /// YAML instead of JSON.
        #[arg(long)]
        yaml: bool,
    },
}

pub async fn run(cli: Cli) -> ExitCode {
    if let Command::Openapi { yaml } = cli.command {
        let spec = http::docs::spec();
        let as_yaml = || {
            serde_json::from_str::<serde_json::Value>(spec).ok().and_then(|v| serde_yaml::to_string(&v).ok())
        };
        println!("{}", if yaml { as_yaml().unwrap_or_default() } else { spec.to_string() });
        return ExitCode::SUCCESS;
    }
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(err) => {
            eprintln!("mmt-sidecar: {err}");
            return ExitCode::from(2);
        }
    };
    telemetry::init(config.log_format);
    let options = match config.connect_options() {
        Ok(options) => options,
        Err(err) => {
            eprintln!("mmt-sidecar: {err}");
            return ExitCode::from(2);
        }
    };
    let pool = storage::lazy_pool(options, config.db_acquire_timeout, config.db_pool_size);
    let state = AppState::new(pool, config);
    match cli.command {
        Command::Serve { migrate } => serve(state, migrate).await,
        Command::Worker => worker(state).await,
        Command::Migrate => migrate(&state).await,
        Command::Check => check(&state).await,
        Command::ImportProducts { supplier, file } => import_products(&state, &supplier, &file).await,
        Command::Hl7Import { user, watch, path } => hl7_import(&state, &user, watch, &path).await,
        Command::RotateKey => rotate_key(&state).await,
        Command::Openapi { .. } => unreachable!("handled above"),
    }
}

async fn serve(state: AppState, migrate_first: bool) -> ExitCode {
    if migrate_first && migrate(&state).await != ExitCode::SUCCESS || !unlock(&state).await {
        return ExitCode::FAILURE;
    }
    let addr = state.config.listen_addr;
    let acceptor = match TcpListener::bind(addr).into_acceptor().await {
        Ok(acceptor) => acceptor,
        Err(err) => {
            eprintln!("mmt-sidecar: cannot listen on {addr}: {err}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(metrics_addr) = state.config.metrics_addr {
        match TcpListener::bind(metrics_addr).into_acceptor().await {
            Ok(acceptor) => {
                let app = app::metrics_app(state.clone());
                tokio::spawn(poem::Server::new_with_acceptor(acceptor).run(app));
            }
            Err(err) => {
                eprintln!("mmt-sidecar: cannot listen for metrics on {metrics_addr}: {err}");
                return ExitCode::FAILURE;
            }
        }
    }
    let mllp = match &state.config.hl7.listen {
        Some(listen) => match tokio::net::TcpListener::bind(listen.addr).await {
            Ok(listener) => Some(tokio::spawn(crate::mllp::serve(state.clone(), listener))),
            Err(err) => {
                eprintln!("mmt-sidecar: cannot listen for HL7 over MLLP on {}: {err}", listen.addr);
                return ExitCode::FAILURE;
            }
        },
        None => None,
    };
    tokio::spawn(service::patient_index::keep_fresh(state.clone()));
    tokio::spawn(service::scheduling::repeating::warm(state.clone()));
    tokio::spawn(service::dashboard::warm(state.clone()));
    let jobs = service::jobs::start(&state);
    let grace = state.config.shutdown_grace;
    let shutdown = async {
        app::shutdown_signal().await;
        jobs.stop();
    };
    let served = app::launch(acceptor, state, shutdown).await;
    if let Some(mllp) = mllp {
        mllp.abort();
    }
    jobs.shutdown(grace).await;
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("mmt-sidecar: server error: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn worker(state: AppState) -> ExitCode {
    let count = state.config.jobs.workers;
    if count == 0 {
        eprintln!("mmt-sidecar: MMT_WORKERS is 0, so a worker has nothing to run");
        return ExitCode::from(2);
    }
    if !unlock(&state).await {
        return ExitCode::FAILURE;
    }
    let jobs = service::jobs::start(&state);
    tracing::info!(workers = count, "running background jobs");
    app::shutdown_signal().await;
    jobs.shutdown(state.config.shutdown_grace).await;
    ExitCode::SUCCESS
}

/// Reads the data keys at start, so a wrong master key stops the process before it serves; a
/// database not reachable yet only delays the reading.
async fn unlock(state: &AppState) -> bool {
    match state.vault.keys().await {
        Ok(_) => true,
        Err(storage::StorageError::Sealed(why)) => {
            eprintln!("mmt-sidecar: encryption at rest: {why}");
            false
        }
        Err(err) => {
            tracing::warn!(error = %err, "the data keys could not be read yet; they are read when first needed");
            true
        }
    }
}

async fn rotate_key(state: &AppState) -> ExitCode {
    match service::key_rotation::rotate(state).await {
        Ok((key, job)) => {
            println!("data key {key} now seals new values; job {job} (key.rotate) reseals older ones");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("mmt-sidecar: the key could not be rotated: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn migrate(state: &AppState) -> ExitCode {
    match migrations::run(&state.pool).await {
        Ok(()) => match migrations::state(&state.pool).await {
            Ok(s) => {
                println!("migrations: {}", s.summary());
                ExitCode::SUCCESS
            }
            Err(err) => {
                eprintln!("mmt-sidecar: migrated, but could not read the state back: {err}");
                ExitCode::FAILURE
            }
        },
        Err(err) => {
            eprintln!("mmt-sidecar: migration failed: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn import_products(state: &AppState, supplier: &str, file: &std::path::Path) -> ExitCode {
    let bytes = match std::fs::read(file) {
        Ok(bytes) => bytes,
        Err(err) => {
            eprintln!("mmt-sidecar: cannot read {}: {err}", file.display());
            return ExitCode::from(2);
        }
    };
    let name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let imports = service::catalogue::imports::check_upload(supplier, &name, &bytes);
    let result = match imports {
        Ok(supplier) => service::catalogue::imports::import_file(state, supplier, &name, &bytes).await,
        Err(err) => Err(err),
    };
    match result {
        Ok(report) => {
            println!("{}", serde_json::to_string_pretty(&report).unwrap_or_default());
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("mmt-sidecar: import failed: {}", describe(&err));
            ExitCode::FAILURE
        }
    }
}

async fn hl7_import(state: &AppState, user: &str, watch: Option<u64>, path: &std::path::Path) -> ExitCode {
    if let Some(secs) = watch {
        let every = std::time::Duration::from_secs(secs.max(1));
        tokio::select! {
            watched = crate::hl7_files::watch(state, user, path, every) => if let Err(err) = watched {
                eprintln!("mmt-sidecar: cannot watch {}: {err}", path.display());
                return ExitCode::FAILURE;
            },
            () = app::shutdown_signal() => {}
        }
        return ExitCode::SUCCESS;
    }
    let files = match crate::hl7_files::files_of(path) {
        Ok(files) => files,
        Err(err) => {
            eprintln!("mmt-sidecar: cannot read {}: {err}", path.display());
            return ExitCode::from(2);
        }
    };
    let mut all_taken = true;
    for file in files {
        match crate::hl7_files::receive_file(state, user, &file).await {
            Ok(answered) => {
                println!("{}\n{}\n", file.display(), answered.acks.replace('\r', "\n"));
                all_taken &= answered.taken;
            }
            Err(err) => {
                eprintln!("mmt-sidecar: {} was not received: {err}", file.display());
                all_taken = false;
            }
        }
    }
    if all_taken { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

fn describe(err: &service::catalogue::CatalogueError) -> String {
    match err {
        service::catalogue::CatalogueError::Invalid(issues) => issues.summary(),
        other => other.to_string(),
    }
}

async fn check(state: &AppState) -> ExitCode {
    let status = match service::status::check(state).await {
        Ok(status) => status,
        Err(err) => {
            println!("database: FAILED ({err})");
            return ExitCode::FAILURE;
        }
    };
    println!("database: reachable");
    match &status.openemr_version {
        Some(v) => println!("openemr: {v}"),
        None => println!("openemr: unknown"),
    }
    println!("migrations: {}", status.migrations.summary());
    println!("session source: {}", state.config.auth.session_source.name());
    let mut problems = status.problems;
    match service::documents::records::check_store(state).await {
        Ok((line, problem)) => {
            println!("{line}");
            problems.extend(problem);
        }
        Err(err) => problems.push(format!("the document store could not be checked: {err}")),
    }
    if status.migrations.problem().is_none() {
        match state.vault.keys().await {
            Ok(keys) => println!(
                "encryption at rest: the master key opens the data keys; key {} seals",
                keys.current()
            ),
            Err(err) => problems.push(format!("encryption at rest: {err}")),
        }
    }
    if problems.is_empty() {
        println!("check: OK");
        return ExitCode::SUCCESS;
    }
    println!("check: {} problem(s):", problems.len());
    for problem in &problems {
        println!("  - {problem}");
    }
    ExitCode::FAILURE
}
