//! Configuration, read once from the environment at start-up. Every problem is reported at once.

use std::{net::SocketAddr, time::Duration};

use secrecy::{ExposeSecret, SecretString};
use sqlx::mysql::MySqlConnectOptions;

use crate::storage::vault::MasterKey;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Pretty,
}

#[derive(Clone)]
pub enum DatabaseConfig {
    Url(SecretString),
    Parts { host: String, port: u16, name: String, user: String, password: SecretString },
}

#[derive(Clone)]
pub struct Config {
    pub database: DatabaseConfig,
    /// How long a request waits for a pooled database connection before it is told 503.
    pub db_acquire_timeout: Duration,
    /// Connections in the database pool: 16 per core, from 8 to 64, unless set.
    pub db_pool_size: u32,
    pub listen_addr: SocketAddr,
    pub openemr_site: String,
    pub log_format: LogFormat,
    pub max_body_bytes: usize,
    pub shutdown_grace: Duration,
    pub auth: AuthConfig,
    /// How old the patient search index may be before a search sweeps it first.
    pub search_max_staleness: Duration,
    pub allow_patient_delete: bool,
    pub audio: AudioConfig,
    /// Bearer token for `/metrics` on the API listener; unset turns that endpoint off.
    pub metrics_token: Option<String>,
    /// A separate, internal address serving `/metrics` without credentials.
    pub metrics_addr: Option<SocketAddr>,
    /// OpenEMR's site folder (`sites/<site>`): the key files under `documents/logs_and_misc/methods`
    /// and patient documents under `documents/<pid>/`. Must exist when set.
    pub openemr_site_dir: Option<std::path::PathBuf>,
    pub documents: DocumentsConfig,
    pub connections: ConnectionLimits,
    pub events: EventsConfig,
    pub jobs: JobsConfig,
    pub scheduling: SchedulingConfig,
    pub mail: MailConfig,
    pub hl7: Hl7Config,
    pub fhir_export: FhirExportConfig,
    pub stripe: StripeConfig,
    /// `MMT_PATIENT_ACCESS` and its settings (`service::patient_access`).
    pub patient_access: crate::domain::patient_access::Policy,
    /// Wraps the data keys that encrypt the sidecar's own PHI (`storage::vault`).
    pub master_key: MasterKey,
    /// The master key being replaced: data keys it wrapped are rewrapped under `master_key`.
    pub previous_master_key: Option<MasterKey>,
}

/// Outgoing e-mail (`service::mail`); unset `smtp_url` turns sending off.
#[derive(Debug, Clone)]
pub struct MailConfig {
    /// `smtp://`, `smtps://` or `smtp://…?tls=required`, credentials in the URL; never logged.
    pub smtp_url: Option<SecretString>,
    /// The From address; OpenEMR's `practice_return_email_path` global when unset.
    pub from: Option<lettre::message::Mailbox>,
}

/// Where filed notes are sent as HL7 `MDM^T02` (`service::hl7`); nothing is sent when neither is set.
/// And where HL7 v2 messages are received over MLLP (`mllp`), when `listen` is set.
#[derive(Clone, Default)]
pub struct Hl7Config {
    /// `MMT_HL7_MLLP_ADDR`: a receiver's `host:port`, spoken to over MLLP, each message acknowledged.
    pub mllp_addr: Option<String>,
    /// `MMT_HL7_DROP_DIR`: a folder each message is written to as `<control id>.hl7`.
    pub drop_dir: Option<std::path::PathBuf>,
    pub listen: Option<Hl7Listen>,
}

/// The MLLP listener: MLLP has no sign-in, so messages are received as one OpenEMR user (whose
/// ACL applies) and only from the address ranges allowed.
#[derive(Clone, Debug)]
pub struct Hl7Listen {
    /// `MMT_HL7_LISTEN_ADDR`.
    pub addr: SocketAddr,
    /// `MMT_HL7_LISTEN_USER`: the OpenEMR username messages are received as.
    pub user: String,
    /// `MMT_HL7_LISTEN_ALLOW`: comma-separated addresses or CIDR ranges; loopback only by default.
    pub allow: Vec<ipnet::IpNet>,
}

/// FHIR bulk export (`service::fhir_export`): where its files are kept, sealed, and for how long.
#[derive(Debug, Clone)]
pub struct FhirExportConfig {
    /// `MMT_FHIR_EXPORT_DIR`: one folder per export.
    pub dir: std::path::PathBuf,
    /// `MMT_FHIR_EXPORT_TTL_SECS`: how long a finished export's files can be fetched.
    pub ttl: Duration,
}

impl Hl7Config {
    pub fn sends(&self) -> bool {
        self.mllp_addr.is_some() || self.drop_dir.is_some()
    }
}

/// Online payment of bookings through Stripe Checkout (`service::billing::checkout`); off
/// without `STRIPE_SECRET_KEY`. Neither secret is ever logged.
#[derive(Clone)]
pub struct StripeConfig {
    /// Stripe's API, or a stand-in for it.
    pub api_base: String,
    pub secret_key: Option<SecretString>,
    /// The webhook endpoint's signing secret (`whsec_…`); webhooks are refused without it.
    pub webhook_secret: Option<SecretString>,
    /// ISO currency, lower case, of a two-decimal currency.
    pub currency: String,
    pub success_url: String,
    pub cancel_url: String,
    /// How long a checkout (and the booking hold it pays for) stays open: Stripe allows 30 min to 24 h.
    pub checkout_ttl: Duration,
    /// How far a webhook's signed timestamp may be from now.
    pub tolerance: Duration,
}

/// Appointment booking (`service::scheduling`).
#[derive(Debug, Clone)]
pub struct SchedulingConfig {
    /// How long a pending hold keeps its slot unless confirmed.
    pub hold: Duration,
    /// Mark past appointments that never arrived as no-shows (OpenEMR itself never does).
    pub mark_no_shows: bool,
    /// How old this replica's copy of the repeating appointments may grow before a listing
    /// refreshes it (`service::scheduling::repeating`).
    pub repeating_ttl: Duration,
}

/// Background job workers (`service::jobs`).
#[derive(Debug, Clone)]
pub struct JobsConfig {
    /// Worker tasks per process; 0 runs neither workers nor the scheduler here.
    pub workers: usize,
    /// A claimed job whose worker stops renewing this lease is taken up by another worker.
    pub lease: Duration,
    /// How often an idle worker looks for due jobs (jobs enqueued by this process wake it at once).
    pub poll: Duration,
    /// Wait after a failed attempt, doubling per attempt up to `backoff_cap`.
    pub backoff_base: Duration,
    pub backoff_cap: Duration,
}

/// Live updates (`/api/events/`, `/api/ws/`).
#[derive(Clone)]
pub struct EventsConfig {
    /// The Redis that carries events between replicas; `None`: this replica works alone. May hold a
    /// password, so it is never printed.
    pub redis_url: Option<SecretString>,
    /// How long events are kept for clients that reconnect.
    pub retention: Duration,
}

impl std::fmt::Debug for EventsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventsConfig")
            .field("redis_url", &self.redis_url.as_ref().map(|_| "(hidden)"))
            .field("retention", &self.retention)
            .finish()
    }
}

/// What one client connection may hold, so slow or idle clients cannot starve the others.
#[derive(Debug, Clone)]
pub struct ConnectionLimits {
    /// A request's headers must arrive within this.
    pub header_read_timeout: Duration,
    /// Each piece of a request body must arrive within this of the previous one.
    pub body_read_timeout: Duration,
    /// A connection with no request in progress is closed after this.
    pub keep_alive_timeout: Duration,
    /// Connections beyond this wait in the kernel's backlog until one closes.
    pub max_connections: usize,
}

/// Patient documents (`service::documents`).
#[derive(Debug, Clone)]
pub struct DocumentsConfig {
    /// The largest file one upload may carry.
    pub max_bytes: u64,
    /// How long a preview link works.
    pub view_ttl: Duration,
}

#[derive(Debug, Clone)]
pub struct AudioConfig {
    pub dir: std::path::PathBuf,
    pub max_bytes: u64,
    pub max_chunk_bytes: usize,
}

#[derive(Debug, Clone)]
pub struct AuthConfig {
    pub access_ttl: Duration,
    pub refresh_ttl: Duration,
    pub guest_login: bool,
    /// Where the session bridge reads OpenEMR's PHP sessions; `None` turns the bridge off.
    pub session_source: SessionSource,
    pub session_cookie: String,
    /// Send the access cookie with `Secure`; turn off only for plain-HTTP development.
    pub secure_cookie: bool,
    /// Failed sign-ins of one username from one address before 429. Failures of a username from
    /// every address count toward OpenEMR's own lockout (`password_max_failed_logins`) instead, so
    /// nobody can lock a colleague out from elsewhere at this low threshold.
    pub max_failures_per_user_address: i64,
    pub max_failures_per_address: i64,
    pub failure_window: Duration,
    /// Every failed sign-in takes at least this long, so timing tells nothing about the account.
    pub failure_floor: Duration,
    /// Origins (`scheme://host[:port]`) allowed to make cookie-authenticated changes besides the
    /// server's own.
    pub allowed_origins: Vec<String>,
    /// `POST /api/auth/refresh-if-active/` refreshes only a client active within this.
    pub idle_timeout: Duration,
}

/// The one place OpenEMR keeps its PHP sessions. Naming two is a configuration error: the bridge
/// must read exactly where PHP writes, or a stale copy elsewhere could sign someone in.
#[derive(Debug, Clone)]
pub enum SessionSource {
    None,
    /// Where OpenEMR's PHP writes `sess_<id>` files.
    Files(std::path::PathBuf),
    Redis(SessionRedisConfig),
    Table(SessionTableConfig),
}

impl SessionSource {
    pub fn name(&self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Files(_) => "files",
            Self::Redis(_) => "redis",
            Self::Table(_) => "table",
        }
    }
}

/// A database table written by a PDO session handler. Every name was checked to be a plain
/// identifier (letters, digits, `_`), so it can be quoted into SQL.
#[derive(Clone)]
pub struct SessionTableConfig {
    /// The database holding the table, when it is not the connected one.
    pub schema: Option<String>,
    pub table: String,
    pub id_column: String,
    pub data_column: String,
    pub lifetime_column: String,
    pub time_column: String,
    /// The table's own database (`OPENEMR_SESSION_DATABASE_URL`); `None`: OpenEMR's. Holds a password.
    pub database: Option<Box<MySqlConnectOptions>>,
}

impl SessionTableConfig {
    /// `table` or `schema.table`, as configured.
    pub fn qualified_name(&self) -> String {
        match &self.schema {
            Some(schema) => format!("{schema}.{}", self.table),
            None => self.table.clone(),
        }
    }
}

impl std::fmt::Debug for SessionTableConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionTableConfig")
            .field("table", &self.qualified_name())
            .field("columns", &[&self.id_column, &self.data_column, &self.lifetime_column, &self.time_column])
            .field("database", &self.database.as_ref().map(|_| "(hidden)"))
            .finish()
    }
}

#[derive(Clone)]
pub struct SessionRedisConfig {
    /// May hold a password, so it is never printed.
    pub url: SecretString,
    /// `session:` for OpenEMR's predis handler, `sf_s` for Symfony's `RedisSessionHandler`.
    pub key_prefix: String,
}

impl std::fmt::Debug for SessionRedisConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionRedisConfig")
            .field("url", &"(hidden)")
            .field("key_prefix", &self.key_prefix)
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
#[error("invalid configuration:\n  - {}", .0.join("\n  - "))]
pub struct ConfigError(pub Vec<String>);

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|key| std::env::var(key).ok())
    }

    /// Reads settings through `lookup` so tests can supply an environment without mutating the process's.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |key: &str| lookup(key).filter(|v| !v.trim().is_empty());
        let mut errors = Vec::new();

        let database = database_from(&get, &mut errors);
        let listen_addr = parse_or(&get, "LISTEN_ADDR", "0.0.0.0:8001", &mut errors, |v| {
            v.parse::<SocketAddr>().map_err(|_| "expected host:port, e.g. 0.0.0.0:8001".to_string())
        });
        let openemr_site = get("OPENEMR_SITE").unwrap_or_else(|| "default".into());
        if !openemr_site.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
            errors.push("OPENEMR_SITE: only letters, digits, '-' and '_' are allowed".into());
        }
        let log_format = parse_or(&get, "LOG_FORMAT", "json", &mut errors, |v| match v {
            "json" => Ok(LogFormat::Json),
            "pretty" => Ok(LogFormat::Pretty),
            _ => Err("expected 'json' or 'pretty'".into()),
        });
        let max_body_bytes = parse_or(&get, "MMT_MAX_BODY_BYTES", "1048576", &mut errors, |v| {
            v.parse::<usize>()
                .ok()
                .filter(|n| *n >= 1024)
                .ok_or_else(|| "expected a number of bytes, at least 1024".into())
        });
        let shutdown_grace = parse_or(&get, "MMT_SHUTDOWN_GRACE_SECS", "30", &mut errors, |v| {
            v.parse::<u64>().map(Duration::from_secs).map_err(|_| "expected whole seconds".into())
        });

        let db_acquire_timeout =
            parse_or(&get, "MMT_DB_ACQUIRE_TIMEOUT_MS", "3000", &mut errors, |v| match v.parse::<u64>() {
                Ok(ms @ 1..=60_000) => Ok(Duration::from_millis(ms)),
                _ => Err("expected milliseconds from 1 to 60000".into()),
            });
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get() as u32);
        let pool_default = (16 * cores).clamp(8, 64).to_string();
        let db_pool_size =
            parse_or(&get, "MMT_DB_POOL_SIZE", &pool_default, &mut errors, |v| match v.parse::<u32>() {
                Ok(n @ 1..=1000) => Ok(n),
                _ => Err("expected a number of connections from 1 to 1000".into()),
            });
        let auth = auth_from(&get, &mut errors);
        let search_max_staleness = parse_or(&get, "MMT_SEARCH_MAX_STALENESS_MS", "2000", &mut errors, |v| {
            v.parse::<u64>().map(Duration::from_millis).map_err(|_| "expected milliseconds".into())
        });
        let allow_patient_delete =
            parse_or(&get, "MMT_ALLOW_PATIENT_DELETE", "false", &mut errors, parse_flag);
        let audio = audio_from(&get, &mut errors);
        let openemr_site_dir = site_dir_from(&get, &mut errors);
        let document_max = parse_or(&get, "MMT_DOCUMENT_MAX_BYTES", "67108864", &mut errors, |v| {
            Ok(v.parse::<u64>().ok().filter(|n| *n > 0).ok_or("expected a positive number of bytes")?)
        });
        let document_view_ttl =
            parse_or(&get, "MMT_DOCUMENT_VIEW_TTL_SECS", "600", &mut errors, positive_secs);

        let metrics_token = get("MMT_METRICS_TOKEN");
        if metrics_token.as_ref().is_some_and(|t| t.len() < 16) {
            errors.push("MMT_METRICS_TOKEN: use at least 16 characters".into());
        }
        let connections = connections_from(&get, &mut errors);
        let events = events_from(&get, &mut errors);
        let jobs = jobs_from(&get, &mut errors);
        let scheduling = scheduling_from(&get, &mut errors);
        let mail = mail_from(&get, &mut errors);
        let hl7 = hl7_from(&get, &mut errors);
        let fhir_export_ttl = parse_or(&get, "MMT_FHIR_EXPORT_TTL_SECS", "3600", &mut errors, positive_secs);
        let stripe = stripe_from(&get, &mut errors);
        let patient_access = patient_access_from(&get, &mut errors);
        let master_key = master_key_from(&get, "", &mut errors);
        let previous_master_key = master_key_from(&get, "PREVIOUS_", &mut errors);
        let metrics_addr = get("MMT_METRICS_ADDR").and_then(|v| {
            v.parse::<SocketAddr>()
                .map_err(|_| errors.push("MMT_METRICS_ADDR: expected host:port, e.g. 127.0.0.1:9101".into()))
                .ok()
        });

        // Every setting was read above, so every problem is already in `errors`.
        let config = (|| {
            Some(Self {
                database: database?,
                db_acquire_timeout: db_acquire_timeout?,
                db_pool_size: db_pool_size?,
                listen_addr: listen_addr?,
                openemr_site,
                log_format: log_format?,
                max_body_bytes: max_body_bytes?,
                shutdown_grace: shutdown_grace?,
                auth: auth?,
                search_max_staleness: search_max_staleness?,
                allow_patient_delete: allow_patient_delete?,
                audio: audio?,
                metrics_token,
                metrics_addr,
                openemr_site_dir,
                documents: DocumentsConfig { max_bytes: document_max?, view_ttl: document_view_ttl? },
                connections: connections?,
                events: events?,
                jobs: jobs?,
                scheduling: scheduling?,
                mail,
                hl7,
                fhir_export: FhirExportConfig {
                    dir: get("MMT_FHIR_EXPORT_DIR").unwrap_or_else(|| "./.dev/fhir-export".into()).into(),
                    ttl: fhir_export_ttl?,
                },
                stripe: stripe?,
                patient_access: patient_access?,
                master_key: master_key?,
                previous_master_key,
            })
        })();
        match config {
            Some(config) if errors.is_empty() => Ok(config),
            _ => Err(ConfigError(errors)),
        }
    }

    pub fn connect_options(&self) -> Result<MySqlConnectOptions, ConfigError> {
        let options = match &self.database {
            DatabaseConfig::Url(url) => url
                .expose_secret()
                .parse::<MySqlConnectOptions>()
                .map_err(|_| ConfigError(vec!["DATABASE_URL: not a valid mysql:// URL".into()]))?,
            DatabaseConfig::Parts { host, port, name, user, password } => MySqlConnectOptions::new()
                .host(host)
                .port(*port)
                .database(name)
                .username(user)
                .password(password.expose_secret()),
        };
        // OpenEMR writes DATETIME columns in the server's local time, so the sidecar must not force UTC.
        Ok(options.timezone(None))
    }
}

fn database_from(get: &impl Fn(&str) -> Option<String>, errors: &mut Vec<String>) -> Option<DatabaseConfig> {
    if let Some(url) = get("DATABASE_URL") {
        if !url.starts_with("mysql://") && !url.starts_with("mariadb://") {
            errors.push("DATABASE_URL: must start with mysql:// (the value is not shown)".into());
            return None;
        }
        return Some(DatabaseConfig::Url(SecretString::from(url)));
    }
    let mut missing = |key: &str| {
        let value = get(key);
        if value.is_none() {
            errors.push(format!("{key}: required (or set DATABASE_URL)"));
        }
        value
    };
    let (host, name, user, password) =
        (missing("DB_HOST"), missing("DB_NAME"), missing("DB_USER"), missing("DB_PASSWORD"));
    let port = match get("DB_PORT").map(|p| p.parse::<u16>()) {
        None => Some(3306),
        Some(Ok(p)) if p > 0 => Some(p),
        Some(_) => {
            errors.push("DB_PORT: expected a port number 1-65535".into());
            None
        }
    };
    Some(DatabaseConfig::Parts {
        host: host?,
        port: port?,
        name: name?,
        user: user?,
        password: SecretString::from(password?),
    })
}

fn auth_from(get: &impl Fn(&str) -> Option<String>, errors: &mut Vec<String>) -> Option<AuthConfig> {
    let secs = |key: &str, default: &str, errors: &mut Vec<String>| {
        parse_or(get, key, default, errors, positive_secs)
    };
    let count = |key: &str, default: &str, errors: &mut Vec<String>| {
        parse_or(get, key, default, errors, |v| {
            v.parse::<i64>().ok().filter(|n| *n > 0).ok_or_else(|| "expected a positive number".into())
        })
    };
    let flag =
        |key: &str, default: &str, errors: &mut Vec<String>| parse_or(get, key, default, errors, parse_flag);
    let session_cookie = get("OPENEMR_SESSION_COOKIE").unwrap_or_else(|| "OpenEMR".into());
    if !session_cookie.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
        errors.push("OPENEMR_SESSION_COOKIE: only letters, digits, '-' and '_' are allowed".into());
    }
    let access_ttl = secs("MMT_ACCESS_TOKEN_TTL_SECS", "900", errors);
    let refresh_ttl = secs("MMT_REFRESH_TOKEN_TTL_SECS", "86400", errors);
    let guest_login = flag("MMT_GUEST_LOGIN", "false", errors);
    let secure_cookie = flag("MMT_COOKIE_SECURE", "true", errors);
    let max_failures_per_user_address = count("MMT_LOGIN_MAX_FAILURES_PER_USER_ADDRESS", "5", errors);
    let max_failures_per_address = count("MMT_LOGIN_MAX_FAILURES_PER_ADDRESS", "20", errors);
    let failure_window = secs("MMT_LOGIN_FAILURE_WINDOW_SECS", "900", errors);
    let idle_timeout = secs("MMT_IDLE_TIMEOUT_SECS", "900", errors);
    let failure_floor = parse_or(get, "MMT_LOGIN_FAILURE_FLOOR_MS", "600", errors, |v| {
        v.parse::<u64>().map(Duration::from_millis).map_err(|_| "expected milliseconds".into())
    });
    let allowed_origins: Vec<String> = get("MMT_ALLOWED_ORIGINS")
        .map(|v| {
            v.split(',')
                .map(|o| o.trim().trim_end_matches('/').to_string())
                .filter(|o| !o.is_empty())
                .collect()
        })
        .unwrap_or_default();
    if allowed_origins.iter().any(|o| !(o.starts_with("https://") || o.starts_with("http://"))) {
        errors.push(
            "MMT_ALLOWED_ORIGINS: expected comma-separated origins such as https://emr.example.org".into(),
        );
    }
    let session_source = session_source_from(get, errors);
    Some(AuthConfig {
        access_ttl: access_ttl?,
        refresh_ttl: refresh_ttl?,
        guest_login: guest_login?,
        session_source: session_source?,
        session_cookie,
        secure_cookie: secure_cookie?,
        max_failures_per_user_address: max_failures_per_user_address?,
        max_failures_per_address: max_failures_per_address?,
        failure_window: failure_window?,
        failure_floor: failure_floor?,
        allowed_origins,
        idle_timeout: idle_timeout?,
    })
}

fn connections_from(
    get: &impl Fn(&str) -> Option<String>,
    errors: &mut Vec<String>,
) -> Option<ConnectionLimits> {
    let secs = |key: &str, default: &str, errors: &mut Vec<String>| {
        parse_or(get, key, default, errors, positive_secs)
    };
    let header_read_timeout = secs("MMT_HEADER_READ_TIMEOUT_SECS", "10", errors);
    let body_read_timeout = secs("MMT_BODY_READ_TIMEOUT_SECS", "30", errors);
    let keep_alive_timeout = secs("MMT_KEEP_ALIVE_TIMEOUT_SECS", "60", errors);
    let max_connections = parse_or(get, "MMT_MAX_CONNECTIONS", "1024", errors, |v| {
        v.parse::<usize>().ok().filter(|n| *n > 0).ok_or_else(|| "expected a positive number".into())
    });
    Some(ConnectionLimits {
        header_read_timeout: header_read_timeout?,
        body_read_timeout: body_read_timeout?,
        keep_alive_timeout: keep_alive_timeout?,
        max_connections: max_connections?,
    })
}

fn jobs_from(get: &impl Fn(&str) -> Option<String>, errors: &mut Vec<String>) -> Option<JobsConfig> {
    let positive = |key: &str, default: &str, unit: fn(u64) -> Duration, errors: &mut Vec<String>| {
        parse_or(get, key, default, errors, |v| {
            v.parse::<u64>()
                .ok()
                .filter(|n| *n > 0)
                .map(unit)
                .ok_or_else(|| "expected a positive number".into())
        })
    };
    let workers = parse_or(get, "MMT_WORKERS", "2", errors, |v| {
        v.parse::<usize>().ok().filter(|n| *n <= 256).ok_or_else(|| "expected 0 to 256".into())
    });
    let lease = positive("MMT_JOB_LEASE_SECS", "60", Duration::from_secs, errors);
    let poll = positive("MMT_JOB_POLL_MS", "500", Duration::from_millis, errors);
    let backoff_base = positive("MMT_JOB_BACKOFF_MS", "1000", Duration::from_millis, errors);
    let backoff_cap = positive("MMT_JOB_BACKOFF_MAX_SECS", "3600", Duration::from_secs, errors);
    Some(JobsConfig {
        workers: workers?,
        lease: lease?,
        poll: poll?,
        backoff_base: backoff_base?,
        backoff_cap: backoff_cap?,
    })
}

fn site_dir_from(
    get: &impl Fn(&str) -> Option<String>,
    errors: &mut Vec<String>,
) -> Option<std::path::PathBuf> {
    let dir = std::path::PathBuf::from(get("OPENEMR_SITE_DIR")?);
    if !dir.is_dir() {
        errors.push(format!("OPENEMR_SITE_DIR: {} is not a folder this process can reach", dir.display()));
    }
    Some(dir)
}

/// `MMT_MASTER_KEY_FILE` (a file holding the key) or `MMT_MASTER_KEY`; `which` is "" or "PREVIOUS_",
/// and only the current key is required.
fn master_key_from(
    get: &impl Fn(&str) -> Option<String>,
    which: &str,
    errors: &mut Vec<String>,
) -> Option<MasterKey> {
    let (env, file) = (format!("MMT_{which}MASTER_KEY"), format!("MMT_{which}MASTER_KEY_FILE"));
    let (source, text) = match (get(&env), get(&file)) {
        (Some(_), Some(_)) => {
            errors.push(format!("{env}, {file}: set one of them, not both"));
            return None;
        }
        (Some(text), None) => (env, text),
        (None, Some(path)) => match std::fs::read_to_string(&path) {
            Ok(text) => (file, text),
            Err(e) => {
                errors.push(format!("{file}: {path} cannot be read: {e}"));
                return None;
            }
        },
        (None, None) if which.is_empty() => {
            errors.push(format!(
                "{file} or {env}: required. The sidecar encrypts its own PHI (transcriptions, chat, \
                 extracted document text, audio) under data keys that this master key wraps; make one \
                 with `openssl rand -base64 32 > master.key` and keep it apart from the database's backups"
            ));
            return None;
        }
        (None, None) => return None,
    };
    MasterKey::parse(&text).map_err(|why| errors.push(format!("{source}: {why}"))).ok()
}

fn audio_from(get: &impl Fn(&str) -> Option<String>, errors: &mut Vec<String>) -> Option<AudioConfig> {
    let positive =
        |v: &str| v.parse::<u64>().ok().filter(|n| *n > 0).ok_or("expected a positive number of bytes");
    let max_bytes = parse_or(get, "MMT_AUDIO_MAX_BYTES", "209715200", errors, |v| Ok(positive(v)?));
    let max_chunk_bytes =
        parse_or(get, "MMT_AUDIO_MAX_CHUNK_BYTES", "8388608", errors, |v| Ok(positive(v)? as usize));
    Some(AudioConfig {
        dir: get("MMT_AUDIO_DIR").unwrap_or_else(|| "./.dev/audio".into()).into(),
        max_bytes: max_bytes?,
        max_chunk_bytes: max_chunk_bytes?,
    })
}

const SESSION_SOURCES: [&str; 3] =
    ["OPENEMR_SESSION_DIR", "OPENEMR_SESSION_REDIS_URL", "OPENEMR_SESSION_TABLE"];

fn session_source_from(
    get: &impl Fn(&str) -> Option<String>,
    errors: &mut Vec<String>,
) -> Option<SessionSource> {
    let named: Vec<&str> = SESSION_SOURCES.into_iter().filter(|key| get(key).is_some()).collect();
    if named.len() > 1 {
        errors.push(format!("{}: name one PHP session source, not {}", named.join(", "), named.len()));
        return None;
    }
    if get("OPENEMR_SESSION_DATABASE_URL").is_some() && get("OPENEMR_SESSION_TABLE").is_none() {
        errors.push("OPENEMR_SESSION_DATABASE_URL: set it only with OPENEMR_SESSION_TABLE".into());
        return None;
    }
    if let Some(dir) = get("OPENEMR_SESSION_DIR") {
        return Some(SessionSource::Files(dir.into()));
    }
    if let Some(url) = get("OPENEMR_SESSION_REDIS_URL") {
        return session_redis_from(get, url, errors).map(SessionSource::Redis);
    }
    if let Some(table) = get("OPENEMR_SESSION_TABLE") {
        return session_table_from(get, &table, errors).map(SessionSource::Table);
    }
    Some(SessionSource::None)
}

fn session_redis_from(
    get: &impl Fn(&str) -> Option<String>,
    url: String,
    errors: &mut Vec<String>,
) -> Option<SessionRedisConfig> {
    let url = url.trim().to_string();
    if !is_redis_url(&url) {
        errors.push(
            "OPENEMR_SESSION_REDIS_URL: expected redis://host:port/db or rediss://… (the value is not shown)"
                .into(),
        );
        return None;
    }
    let key_prefix = get("OPENEMR_SESSION_REDIS_PREFIX").unwrap_or_else(|| "session:".into());
    Some(SessionRedisConfig { url: SecretString::from(url), key_prefix })
}

fn session_table_from(
    get: &impl Fn(&str) -> Option<String>,
    name: &str,
    errors: &mut Vec<String>,
) -> Option<SessionTableConfig> {
    let name = name.trim();
    let (schema, table) = match name.split_once('.') {
        Some((schema, table)) => (Some(schema), table),
        None => (None, name),
    };
    let valid = schema.into_iter().chain([table]).all(is_identifier);
    if !valid {
        errors.push(
            "OPENEMR_SESSION_TABLE: expected table or database.table, of letters, digits and '_'".into(),
        );
    }
    let column = |key: &str, default: &str, errors: &mut Vec<String>| {
        parse_or(get, key, default, errors, |v| {
            is_identifier(v)
                .then(|| v.to_string())
                .ok_or_else(|| "only letters, digits and '_' are allowed".into())
        })
    };
    let id_column = column("OPENEMR_SESSION_TABLE_ID_COLUMN", "sess_id", errors);
    let data_column = column("OPENEMR_SESSION_TABLE_DATA_COLUMN", "sess_data", errors);
    let lifetime_column = column("OPENEMR_SESSION_TABLE_LIFETIME_COLUMN", "sess_lifetime", errors);
    let time_column = column("OPENEMR_SESSION_TABLE_TIME_COLUMN", "sess_time", errors);
    let database = session_database_from(get, errors);
    Some(SessionTableConfig {
        schema: schema.map(str::to_string),
        table: valid.then(|| table.to_string())?,
        id_column: id_column?,
        data_column: data_column?,
        lifetime_column: lifetime_column?,
        time_column: time_column?,
        database: database?,
    })
}

fn session_database_from(
    get: &impl Fn(&str) -> Option<String>,
    errors: &mut Vec<String>,
) -> Option<Option<Box<MySqlConnectOptions>>> {
    let Some(url) = get("OPENEMR_SESSION_DATABASE_URL") else {
        return Some(None);
    };
    let url = url.trim();
    let options = (url.starts_with("mysql://") || url.starts_with("mariadb://"))
        .then(|| url.parse::<MySqlConnectOptions>().ok())
        .flatten();
    if options.is_none() {
        errors.push("OPENEMR_SESSION_DATABASE_URL: expected a mysql:// URL (the value is not shown)".into());
    }
    // Same reason as `connect_options`: the server's local time, never forced UTC.
    Some(Some(Box::new(options?.timezone(None))))
}

/// A MariaDB identifier that needs no escaping inside backticks.
fn is_identifier(name: &str) -> bool {
    (1..=64).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

fn is_redis_url(url: &str) -> bool {
    (url.starts_with("redis://") || url.starts_with("rediss://"))
        && redis::IntoConnectionInfo::into_connection_info(url).is_ok()
}

fn events_from(get: &impl Fn(&str) -> Option<String>, errors: &mut Vec<String>) -> Option<EventsConfig> {
    let redis_url = get("MMT_REDIS_URL").map(|v| v.trim().to_string());
    if redis_url.as_deref().is_some_and(|url| !is_redis_url(url)) {
        errors.push(
            "MMT_REDIS_URL: expected redis://host:port/db or rediss://… (the value is not shown)".into(),
        );
    }
    let retention = parse_or(get, "MMT_EVENT_RETENTION_SECS", "86400", errors, positive_secs);
    Some(EventsConfig { redis_url: redis_url.map(SecretString::from), retention: retention? })
}

fn scheduling_from(
    get: &impl Fn(&str) -> Option<String>,
    errors: &mut Vec<String>,
) -> Option<SchedulingConfig> {
    let hold = parse_or(get, "MMT_APPOINTMENT_HOLD_MINUTES", "15", errors, |v| {
        v.parse::<u64>()
            .ok()
            .filter(|m| (1..=24 * 60).contains(m))
            .map(|m| Duration::from_secs(m * 60))
            .ok_or_else(|| "expected minutes between 1 and 1440".to_string())
    });
    let mark_no_shows = parse_or(get, "MMT_MARK_NO_SHOWS", "false", errors, parse_flag);
    let repeating_ttl = parse_or(get, "MMT_REPEATING_CACHE_SECS", "30", errors, positive_secs);
    Some(SchedulingConfig { hold: hold?, mark_no_shows: mark_no_shows?, repeating_ttl: repeating_ttl? })
}

fn hl7_from(get: &impl Fn(&str) -> Option<String>, errors: &mut Vec<String>) -> Hl7Config {
    let mllp_addr = get("MMT_HL7_MLLP_ADDR").filter(|addr| {
        let ok =
            addr.rsplit_once(':').is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
        if !ok {
            errors.push("MMT_HL7_MLLP_ADDR: expected host:port, e.g. hl7.example.org:2575".into());
        }
        ok
    });
    Hl7Config {
        mllp_addr,
        drop_dir: get("MMT_HL7_DROP_DIR").map(Into::into),
        listen: hl7_listen_from(get, errors),
    }
}

fn hl7_listen_from(get: &impl Fn(&str) -> Option<String>, errors: &mut Vec<String>) -> Option<Hl7Listen> {
    get("MMT_HL7_LISTEN_ADDR")?;
    let addr = parse_or(get, "MMT_HL7_LISTEN_ADDR", "", errors, |v| {
        v.parse::<SocketAddr>().map_err(|_| "expected ip:port, e.g. 0.0.0.0:2575".to_string())
    });
    let user = get("MMT_HL7_LISTEN_USER").filter(|u| !u.trim().is_empty());
    if user.is_none() {
        errors.push(
            "MMT_HL7_LISTEN_USER: required with MMT_HL7_LISTEN_ADDR: the OpenEMR user HL7 messages are received as"
                .into(),
        );
    }
    let allow = parse_or(get, "MMT_HL7_LISTEN_ALLOW", "127.0.0.1/32,::1/128", errors, |v| {
        v.split(',')
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(|a| a.parse::<ipnet::IpNet>().or_else(|_| a.parse::<std::net::IpAddr>().map(Into::into)))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| {
                "expected comma-separated addresses or CIDR ranges, e.g. 10.0.0.0/24,192.0.2.7".into()
            })
    });
    Some(Hl7Listen { addr: addr?, user: user?.trim().to_string(), allow: allow? })
}

fn mail_from(get: &impl Fn(&str) -> Option<String>, errors: &mut Vec<String>) -> MailConfig {
    let smtp_url = get("SMTP_URL").filter(|url| {
        let ok = lettre::AsyncSmtpTransport::<lettre::Tokio1Executor>::from_url(url).is_ok();
        if !ok {
            errors.push(
                "SMTP_URL: expected smtp://, smtps:// or smtp://…?tls=required (the value is not shown)"
                    .into(),
            );
        }
        ok
    });
    let from = get("MMT_MAIL_FROM").and_then(|v| {
        v.parse()
            .map_err(|_| {
                errors.push("MMT_MAIL_FROM: expected an address, e.g. Clinic <rx@clinic.example>".into())
            })
            .ok()
    });
    MailConfig { smtp_url: smtp_url.map(SecretString::from), from }
}

fn stripe_from(get: &impl Fn(&str) -> Option<String>, errors: &mut Vec<String>) -> Option<StripeConfig> {
    let secret_key = get("STRIPE_SECRET_KEY").map(SecretString::from);
    let api_base = parse_or(get, "MMT_STRIPE_API_BASE", "https://api.stripe.com", errors, |v| {
        reqwest::Url::parse(v)
            .ok()
            .filter(|u| matches!(u.scheme(), "https" | "http"))
            .map(|_| v.trim_end_matches('/').to_string())
            .ok_or_else(|| "expected an http(s) URL".to_string())
    });
    let currency = parse_or(get, "MMT_STRIPE_CURRENCY", "usd", errors, |v| {
        let ok = v.len() == 3 && v.bytes().all(|b| b.is_ascii_lowercase());
        ok.then(|| v.to_string())
            .ok_or_else(|| "expected a three-letter ISO code in lower case, e.g. usd".into())
    });
    let mut page = |name: &str| {
        let url = get(name).filter(|v| reqwest::Url::parse(v).is_ok());
        if url.is_none() && secret_key.is_some() {
            errors.push(format!("{name}: an absolute URL is required with STRIPE_SECRET_KEY"));
        }
        url.unwrap_or_default()
    };
    let (success_url, cancel_url) = (page("MMT_STRIPE_SUCCESS_URL"), page("MMT_STRIPE_CANCEL_URL"));
    let checkout_ttl = parse_or(get, "MMT_CHECKOUT_MINUTES", "30", errors, |v| {
        v.parse::<u64>()
            .ok()
            .filter(|m| (30..=24 * 60).contains(m))
            .map(|m| Duration::from_secs(m * 60))
            .ok_or_else(|| "expected minutes between 30 and 1440 (Stripe's limits)".to_string())
    });
    let tolerance = parse_or(get, "MMT_STRIPE_WEBHOOK_TOLERANCE_SECS", "300", errors, positive_secs);
    Some(StripeConfig {
        api_base: api_base?,
        secret_key,
        webhook_secret: get("STRIPE_WEBHOOK_SECRET").map(SecretString::from),
        currency: currency?,
        success_url,
        cancel_url,
        checkout_ttl: checkout_ttl?,
        tolerance: tolerance?,
    })
}

fn patient_access_from(
    get: &impl Fn(&str) -> Option<String>,
    errors: &mut Vec<String>,
) -> Option<crate::domain::patient_access::Policy> {
    let whole = |v: &str| v.parse::<u32>().map_err(|_| "expected a whole number".to_string());
    let days = parse_or(get, "MMT_PATIENT_ACCESS_RECENT_DAYS", "30", errors, whole);
    let hours = parse_or(get, "MMT_BREAK_GLASS_HOURS", "4", errors, whole);
    let (days, hours) = (days?, hours?);
    parse_or(get, "MMT_PATIENT_ACCESS", "all", errors, |v| {
        crate::domain::patient_access::Policy::parse(v, days, hours)
    })
}

fn positive_secs(v: &str) -> Result<Duration, String> {
    v.parse::<u64>()
        .ok()
        .filter(|n| *n > 0)
        .map(Duration::from_secs)
        .ok_or_else(|| "expected a positive number of seconds".into())
}

fn parse_flag(v: &str) -> Result<bool, String> {
    match v {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        _ => Err("expected true or false".into()),
    }
}

fn parse_or<T>(
    get: &impl Fn(&str) -> Option<String>,
    key: &str,
    default: &str,
    errors: &mut Vec<String>,
    parse: impl FnOnce(&str) -> Result<T, String>,
) -> Option<T> {
    let raw = get(key).unwrap_or_else(|| default.to_string());
    parse(raw.trim()).map_err(|why| errors.push(format!("{key}: {why}"))).ok()
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let database = match &self.database {
            DatabaseConfig::Url(_) => "DATABASE_URL (hidden)".to_string(),
            DatabaseConfig::Parts { host, port, name, user, .. } => format!("{user}@{host}:{port}/{name}"),
        };
        f.debug_struct("Config")
            .field("database", &database)
            .field("listen_addr", &self.listen_addr)
            .field("openemr_site", &self.openemr_site)
            .field("log_format", &self.log_format)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("shutdown_grace", &self.shutdown_grace)
            .field("auth", &self.auth)
            .field("db_pool_size", &self.db_pool_size)
            .field("search_max_staleness", &self.search_max_staleness)
            .field("allow_patient_delete", &self.allow_patient_delete)
            .field("metrics_token", &self.metrics_token.as_ref().map(|_| "(hidden)"))
            .field("metrics_addr", &self.metrics_addr)
            .field("audio", &self.audio)
            .field("openemr_site_dir", &self.openemr_site_dir)
            .field("documents", &self.documents)
            .field("events", &self.events)
            .field("jobs", &self.jobs)
            .field("mail", &self.mail)
            .field("patient_access", &self.patient_access)
            .field("master_key", &self.master_key)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let vars: HashMap<String, String> =
            vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::from_lookup(move |k| vars.get(k).cloned())
    }

    const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    const PARTS: &[(&str, &str)] = &[
        ("DB_HOST", "db"),
        ("DB_NAME", "openemr"),
        ("DB_USER", "openemr"),
        ("DB_PASSWORD", "pw-secret"),
        ("MMT_MASTER_KEY", KEY),
    ];

    #[test]
    fn defaults_apply_when_only_the_database_is_given() {
        let c = config(PARTS).unwrap();
        assert_eq!(c.listen_addr.to_string(), "0.0.0.0:8001");
        assert_eq!(c.openemr_site, "default");
        assert_eq!(c.log_format, LogFormat::Json);
        assert!(matches!(c.database, DatabaseConfig::Parts { port: 3306, .. }));
        assert_eq!(c.db_acquire_timeout, Duration::from_secs(3));
    }

    #[test]
    fn the_pool_is_sized_from_the_cores_unless_set() {
        let cores = std::thread::available_parallelism().unwrap().get() as u32;
        assert_eq!(config(PARTS).unwrap().db_pool_size, (16 * cores).clamp(8, 64));
        let with = |n: &str| config(&[PARTS, &[("MMT_DB_POOL_SIZE", n)]].concat());
        assert_eq!(with("5").unwrap().db_pool_size, 5);
        for bad in ["0", "1001", "many"] {
            assert!(with(bad).unwrap_err().0.join("\n").contains("MMT_DB_POOL_SIZE"), "{bad}");
        }
    }

    #[test]
    fn the_pool_wait_is_bounded() {
        let with = |ms: &str| config(&[PARTS, &[("MMT_DB_ACQUIRE_TIMEOUT_MS", ms)]].concat());
        assert_eq!(with("250").unwrap().db_acquire_timeout, Duration::from_millis(250));
        for bad in ["0", "60001", "soon"] {
            let err = with(bad).unwrap_err().0.join("\n");
            assert!(err.contains("MMT_DB_ACQUIRE_TIMEOUT_MS"), "{bad}: {err}");
        }
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let err =
            config(&[("LISTEN_ADDR", "nowhere"), ("LOG_FORMAT", "xml"), ("DB_PORT", "99999")]).unwrap_err();
        let joined = err.0.join("\n");
        for key in [
            "DB_HOST",
            "DB_NAME",
            "DB_USER",
            "DB_PASSWORD",
            "DB_PORT",
            "LISTEN_ADDR",
            "LOG_FORMAT",
            "MMT_MASTER_KEY",
        ] {
            assert!(joined.contains(key), "{key} not reported in:\n{joined}");
        }
    }

    #[test]
    fn database_url_takes_precedence_and_is_never_shown() {
        let c = config(&[("DATABASE_URL", "mysql://u:url-secret@h/db"), ("MMT_MASTER_KEY", KEY)]).unwrap();
        assert!(matches!(c.database, DatabaseConfig::Url(_)));
        assert!(!format!("{c:?}").contains("url-secret"));
        let err = config(&[("DATABASE_URL", "postgres://u:url-secret@h/db")]).unwrap_err();
        assert!(!err.to_string().contains("url-secret"));
    }

    #[test]
    fn the_master_key_is_required_once_valid_and_never_shown() {
        let without: Vec<_> = PARTS.iter().copied().filter(|(k, _)| *k != "MMT_MASTER_KEY").collect();
        let err = config(&without).unwrap_err().to_string();
        assert!(err.contains("MMT_MASTER_KEY_FILE or MMT_MASTER_KEY: required"), "{err}");
        let err = config(&[PARTS, &[("MMT_MASTER_KEY_FILE", "/nowhere/master.key")]].concat()).unwrap_err();
        assert!(err.to_string().contains("set one of them, not both"), "{err}");
        let err = config(&[PARTS, &[("MMT_PREVIOUS_MASTER_KEY", "c2hvcnQ=")]].concat()).unwrap_err();
        assert!(err.to_string().contains("MMT_PREVIOUS_MASTER_KEY: expected 32 bytes"), "{err}");
        let c = config(PARTS).unwrap();
        assert!(c.previous_master_key.is_none());
        assert!(!format!("{c:?}").contains(KEY));
    }

    #[test]
    fn debug_output_hides_the_password() {
        let c = config(PARTS).unwrap();
        let shown = format!("{c:?}");
        assert!(shown.contains("openemr@db:3306/openemr"));
        assert!(!shown.contains("pw-secret"));
    }

    #[test]
    fn session_redis_url_is_validated_and_never_shown() {
        assert!(matches!(config(PARTS).unwrap().auth.session_source, SessionSource::None));

        let mut vars = PARTS.to_vec();
        vars.push(("OPENEMR_SESSION_REDIS_URL", "redis://:redis-secret@cache:6379/0"));
        let c = config(&vars).unwrap();
        let SessionSource::Redis(redis) = &c.auth.session_source else { panic!("not redis") };
        assert_eq!(redis.key_prefix, "session:");
        assert!(!format!("{c:?}").contains("redis-secret"));

        vars.push(("OPENEMR_SESSION_REDIS_PREFIX", "sf_s"));
        let c = config(&vars).unwrap();
        assert!(matches!(c.auth.session_source, SessionSource::Redis(r) if r.key_prefix == "sf_s"));

        let mut vars = PARTS.to_vec();
        vars.push(("OPENEMR_SESSION_REDIS_URL", "http://:redis-secret@cache:6379/0"));
        let err = config(&vars).unwrap_err().to_string();
        assert!(err.contains("OPENEMR_SESSION_REDIS_URL") && !err.contains("redis-secret"), "{err}");
    }

    fn with(extra: &[(&'static str, &'static str)]) -> Result<Config, ConfigError> {
        config(&[PARTS, extra].concat())
    }

    #[test]
    fn a_session_table_defaults_to_the_pdo_handler_layout() {
        let c = with(&[("OPENEMR_SESSION_TABLE", "sessions")]).unwrap();
        let SessionSource::Table(t) = &c.auth.session_source else { panic!("not a table") };
        assert_eq!(
            (t.qualified_name(), t.id_column.as_str(), t.data_column.as_str()),
            ("sessions".into(), "sess_id", "sess_data")
        );
        assert_eq!((t.lifetime_column.as_str(), t.time_column.as_str()), ("sess_lifetime", "sess_time"));
        assert!(t.database.is_none());

        let c = with(&[
            ("OPENEMR_SESSION_TABLE", "php.web_sessions"),
            ("OPENEMR_SESSION_TABLE_DATA_COLUMN", "payload"),
            ("OPENEMR_SESSION_DATABASE_URL", "mysql://u:table-secret@h/php"),
        ])
        .unwrap();
        let SessionSource::Table(t) = &c.auth.session_source else { panic!("not a table") };
        assert_eq!(
            (t.schema.as_deref(), t.table.as_str(), t.data_column.as_str()),
            (Some("php"), "web_sessions", "payload")
        );
        assert!(t.database.is_some() && !format!("{c:?}").contains("table-secret"));
    }

    #[test]
    fn session_table_names_are_plain_identifiers() {
        for bad in ["sessions`; DROP TABLE users", "a.b.c", "sess ions", ".sessions"] {
            let err = with(&[("OPENEMR_SESSION_TABLE", bad)]).unwrap_err().to_string();
            assert!(err.contains("OPENEMR_SESSION_TABLE:"), "{bad}: {err}");
        }
        let err = with(&[("OPENEMR_SESSION_TABLE", "sessions"), ("OPENEMR_SESSION_TABLE_TIME_COLUMN", "t`")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("OPENEMR_SESSION_TABLE_TIME_COLUMN"), "{err}");
        let err =
            with(&[("OPENEMR_SESSION_TABLE", "s"), ("OPENEMR_SESSION_DATABASE_URL", "pg://x:db-secret@h")])
                .unwrap_err()
                .to_string();
        assert!(err.contains("OPENEMR_SESSION_DATABASE_URL") && !err.contains("db-secret"), "{err}");
        let err = with(&[("OPENEMR_SESSION_DATABASE_URL", "mysql://h/php")]).unwrap_err().to_string();
        assert!(err.contains("only with OPENEMR_SESSION_TABLE"), "{err}");
    }

    #[test]
    fn exactly_one_session_source_may_be_named() {
        assert_eq!(with(&[("OPENEMR_SESSION_DIR", "/s")]).unwrap().auth.session_source.name(), "files");
        let err = with(&[
            ("OPENEMR_SESSION_DIR", "/s"),
            ("OPENEMR_SESSION_REDIS_URL", "redis://cache:6379/0"),
            ("OPENEMR_SESSION_TABLE", "sessions"),
        ])
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("OPENEMR_SESSION_DIR, OPENEMR_SESSION_REDIS_URL, OPENEMR_SESSION_TABLE: name one"),
            "{err}"
        );
    }

    #[test]
    fn hl7_destinations_are_optional_and_the_receiver_must_be_host_and_port() {
        assert!(!config(PARTS).unwrap().hl7.sends());
        let mut vars = PARTS.to_vec();
        vars.push(("MMT_HL7_MLLP_ADDR", "hl7.example.org:2575"));
        let c = config(&vars).unwrap();
        assert_eq!((c.hl7.sends(), c.hl7.mllp_addr.as_deref()), (true, Some("hl7.example.org:2575")));
        let mut vars = PARTS.to_vec();
        vars.push(("MMT_HL7_MLLP_ADDR", "hl7.example.org"));
        assert!(config(&vars).unwrap_err().to_string().contains("MMT_HL7_MLLP_ADDR"));
    }

    #[test]
    fn the_mllp_listener_needs_a_user_and_is_loopback_only_unless_ranges_are_allowed() {
        assert!(config(PARTS).unwrap().hl7.listen.is_none());
        let mut vars = PARTS.to_vec();
        vars.push(("MMT_HL7_LISTEN_ADDR", "0.0.0.0:2575"));
        assert!(config(&vars).unwrap_err().to_string().contains("MMT_HL7_LISTEN_USER"));
        vars.push(("MMT_HL7_LISTEN_USER", "labfeed"));
        let listen = config(&vars).unwrap().hl7.listen.unwrap();
        let allowed =
            |ip: &str| listen.allow.iter().any(|net| net.contains(&ip.parse::<std::net::IpAddr>().unwrap()));
        assert!(allowed("127.0.0.1") && allowed("::1") && !allowed("10.0.0.5"));
        vars.push(("MMT_HL7_LISTEN_ALLOW", "10.0.0.0/24, 192.0.2.7"));
        let listen = config(&vars).unwrap().hl7.listen.unwrap();
        assert_eq!(listen.allow.len(), 2);
        vars.push(("MMT_HL7_LISTEN_ALLOW", "10.0.0.0/33"));
        assert!(config(&vars).unwrap_err().to_string().contains("MMT_HL7_LISTEN_ALLOW"));
    }

    #[test]
    fn smtp_url_is_validated_and_never_shown() {
        let c = config(PARTS).unwrap();
        assert!(c.mail.smtp_url.is_none() && c.mail.from.is_none());

        let mut vars = PARTS.to_vec();
        vars.push(("SMTP_URL", "smtp://rx:mail-secret@mail.example:2525?tls=required"));
        vars.push(("MMT_MAIL_FROM", "Harbour Clinic <rx@harbour.example>"));
        let c = config(&vars).unwrap();
        assert!(c.mail.smtp_url.is_some());
        assert_eq!(c.mail.from.as_ref().map(|m| m.email.to_string()).as_deref(), Some("rx@harbour.example"));
        assert!(!format!("{c:?}").contains("mail-secret"));

        let mut vars = PARTS.to_vec();
        vars.push(("SMTP_URL", "http://rx:mail-secret@mail.example"));
        vars.push(("MMT_MAIL_FROM", "not an address"));
        let err = config(&vars).unwrap_err().to_string();
        assert!(err.contains("SMTP_URL") && !err.contains("mail-secret"), "{err}");
        assert!(err.contains("MMT_MAIL_FROM"), "{err}");
    }

    #[test]
    fn live_updates_redis_url_is_validated_and_never_shown() {
        let c = config(PARTS).unwrap();
        assert!(c.events.redis_url.is_none());
        assert_eq!(c.events.retention, Duration::from_secs(86400));

        let mut vars = PARTS.to_vec();
        vars.push(("MMT_REDIS_URL", "rediss://:events-secret@cache:6380/0"));
        vars.push(("MMT_EVENT_RETENTION_SECS", "600"));
        let c = config(&vars).unwrap();
        assert!(c.events.redis_url.is_some() && c.auth.session_source.name() == "none");
        assert_eq!(c.events.retention, Duration::from_secs(600));
        assert!(!format!("{c:?}").contains("events-secret"));

        let mut vars = PARTS.to_vec();
        vars.push(("MMT_REDIS_URL", "tcp://:events-secret@cache:6379"));
        vars.push(("MMT_EVENT_RETENTION_SECS", "0"));
        let err = config(&vars).unwrap_err().to_string();
        assert!(err.contains("MMT_REDIS_URL") && !err.contains("events-secret"), "{err}");
        assert!(err.contains("MMT_EVENT_RETENTION_SECS"), "{err}");
    }

    #[test]
    fn job_settings_have_defaults_and_are_checked() {
        let c = config(PARTS).unwrap();
        assert_eq!(
            (c.jobs.workers, c.jobs.lease, c.jobs.poll),
            (2, Duration::from_secs(60), Duration::from_millis(500))
        );
        let mut vars = PARTS.to_vec();
        vars.extend([("MMT_WORKERS", "0"), ("MMT_JOB_BACKOFF_MS", "20")]);
        let c = config(&vars).unwrap();
        assert_eq!((c.jobs.workers, c.jobs.backoff_base), (0, Duration::from_millis(20)));
        vars.extend([("MMT_WORKERS", "many"), ("MMT_JOB_LEASE_SECS", "0")]);
        let err = config(&vars).unwrap_err().to_string();
        assert!(err.contains("MMT_WORKERS") && err.contains("MMT_JOB_LEASE_SECS"), "{err}");
    }

    #[test]
    fn site_names_are_restricted_to_a_safe_alphabet() {
        let mut vars = PARTS.to_vec();
        vars.push(("OPENEMR_SITE", "../etc"));
        assert!(config(&vars).unwrap_err().to_string().contains("OPENEMR_SITE"));
    }

    #[test]
    fn the_site_folder_must_exist_and_the_document_limit_be_positive() {
        let mut vars = PARTS.to_vec();
        vars.push(("OPENEMR_SITE_DIR", "/nonexistent/sites/default"));
        vars.push(("MMT_DOCUMENT_MAX_BYTES", "0"));
        let err = config(&vars).unwrap_err().to_string();
        assert!(err.contains("OPENEMR_SITE_DIR") && err.contains("MMT_DOCUMENT_MAX_BYTES"), "{err}");
        let tmp = std::env::temp_dir();
        let mut vars = PARTS.to_vec();
        vars.push(("OPENEMR_SITE_DIR", tmp.to_str().unwrap()));
        let ok = config(&vars).unwrap();
        assert_eq!(ok.openemr_site_dir.as_deref(), Some(tmp.as_path()));
        assert_eq!(ok.documents.max_bytes, 64 * 1024 * 1024);
    }
}
