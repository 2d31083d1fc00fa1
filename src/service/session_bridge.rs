//! Single sign-on from an OpenEMR browser session: the `OpenEMR` cookie names a PHP session, stored
//! in a file, in Redis or in a database table; it is accepted only under the checks OpenEMR itself
//! applies on every request.

use std::{path::PathBuf, time::Duration};

use redis::{
    AsyncCommands,
    aio::{ConnectionManager, ConnectionManagerConfig},
};
use secrecy::ExposeSecret;
use sqlx::MySqlPool;
use subtle::ConstantTimeEq;
use tokio::sync::OnceCell;

use crate::{
    app::AppState,
    config::{SessionRedisConfig, SessionSource, SessionTableConfig},
    domain::{
        compatibility::{self, ColumnKind},
        user::{Caller, SignInMethod},
    },
    php::session,
    service::{
        audit,
        sign_in::{AuthError, caller_from},
    },
    storage::{
        self,
        openemr::{globals, php_sessions, session_tracker, users},
    },
};

/// OpenEMR's default for the `timeout` global, in seconds.
const DEFAULT_TIMEOUT_SECS: i64 = 7200;

fn rejected(reason: &str) -> AuthError {
    AuthError::SessionRejected(reason.to_string())
}

/// The caller behind an OpenEMR session cookie. A rejected session is written to OpenEMR's audit
/// log (it may be forged or stolen); the cookie's value never is.
pub async fn caller_for_session(state: &AppState, session_id: &str) -> Result<Caller, AuthError> {
    let result = accept_session(state, session_id).await;
    if let Err(AuthError::SessionRejected(reason)) = &result {
        let comments = format!("failure: OpenEMR session bridge. session rejected: {reason}");
        audit::sign_in(state, "", "", false, &comments).await;
    }
    result
}

async fn accept_session(state: &AppState, session_id: &str) -> Result<Caller, AuthError> {
    if !session::is_valid_session_id(session_id) {
        return Err(rejected("the session id is malformed"));
    }
    let raw = read_session(state, session_id).await?;
    let php_session = session::decode(&raw).map_err(|e| rejected(&e.to_string()))?;
    if php_session.site_id.as_deref() != Some(state.config.openemr_site.as_str()) {
        return Err(rejected("the session belongs to another OpenEMR site"));
    }
    // OpenEMR sets it only once sign-in is complete, second factor included.
    let Some(tracker) = &php_session.session_database_uuid else {
        return Err(rejected(
            "the session has not completed OpenEMR's sign-in (a second factor may be pending)",
        ));
    };

    let record = users::by_id(&state.pool, crate::domain::user::UserId(php_session.auth_user_id))
        .await?
        .filter(|r| r.active && r.username == php_session.auth_user)
        .ok_or_else(|| rejected("the session's user is unknown or inactive"))?;
    let same_password: bool = record.password_hash.as_bytes().ct_eq(php_session.auth_pass.as_bytes()).into();
    if !same_password {
        return Err(rejected("the password changed since this session signed in"));
    }
    let timeout = globals::value(&state.pool, "timeout")
        .await?
        .and_then(|v| v.parse::<i64>().ok())
        .filter(|t| *t > 0)
        .unwrap_or(DEFAULT_TIMEOUT_SECS);
    let idle = session_tracker::idle_seconds(&state.pool, tracker).await?.unwrap_or(i64::MAX);
    if idle > timeout {
        return Err(rejected("the session is idle past OpenEMR's timeout"));
    }
    Ok(caller_from(record, SignInMethod::OpenEmrSession, None))
}

async fn read_session(state: &AppState, session_id: &str) -> Result<Vec<u8>, AuthError> {
    let store = state.sessions.as_ref().ok_or_else(|| rejected("the session bridge is not configured"))?;
    match store.as_ref() {
        SessionStore::Files(dir) => read_session_file(&dir.join(format!("sess_{session_id}"))).await,
        SessionStore::Redis(redis) => redis.read(session_id).await,
        SessionStore::Table(table) => table.read(session_id).await,
    }
}

/// Where the bridge reads sessions: the one source the configuration names.
pub enum SessionStore {
    Files(PathBuf),
    Redis(RedisSessions),
    Table(TableSessions),
}

impl SessionStore {
    /// `None` when no source is configured, which turns the bridge off.
    pub fn new(source: &SessionSource, pool: &MySqlPool) -> Option<Self> {
        Some(match source {
            SessionSource::None => return None,
            SessionSource::Files(dir) => Self::Files(dir.clone()),
            SessionSource::Redis(config) => Self::Redis(RedisSessions::new(config.clone())),
            SessionSource::Table(config) => Self::Table(TableSessions::new(config.clone(), pool)),
        })
    }

    /// What `check` reports about the source; only a table can be inspected ahead of use.
    pub async fn problems(&self) -> Vec<String> {
        match self {
            Self::Table(table) => table.problems().await,
            Self::Files(_) | Self::Redis(_) => Vec::new(),
        }
    }
}

/// Sessions kept as rows by a PDO session handler, in OpenEMR's database or their own.
pub struct TableSessions {
    config: SessionTableConfig,
    pool: MySqlPool,
}

impl TableSessions {
    fn new(config: SessionTableConfig, main: &MySqlPool) -> Self {
        let (timeout, size) = (main.options().get_acquire_timeout(), main.options().get_max_connections());
        let pool = config
            .database
            .clone()
            .map_or_else(|| main.clone(), |options| storage::lazy_pool(*options, timeout, size));
        Self { config, pool }
    }

    async fn read(&self, session_id: &str) -> Result<Vec<u8>, AuthError> {
        let row = php_sessions::by_id(&self.pool, &self.config, session_id, session::MAX_LEN)
            .await?
            .filter(|row| row.length.is_some())
            .ok_or_else(|| rejected("no such OpenEMR session"))?;
        if session::row_expired(row.time, row.lifetime, chrono::Utc::now().timestamp()) {
            return Err(rejected("the session has expired"));
        }
        row.data.ok_or_else(|| rejected("the session data is too large"))
    }

    async fn problems(&self) -> Vec<String> {
        let c = &self.config;
        let required = [
            (c.id_column.as_str(), ColumnKind::TextOrBytes),
            (c.data_column.as_str(), ColumnKind::TextOrBytes),
            (c.lifetime_column.as_str(), ColumnKind::Integer),
            (c.time_column.as_str(), ColumnKind::Integer),
        ];
        match php_sessions::columns(&self.pool, c).await {
            Ok(live) => compatibility::table_problems(&c.qualified_name(), &required, &live),
            Err(err) => vec![format!("the PHP session table could not be inspected: {err}")],
        }
    }
}

async fn read_session_file(path: &std::path::Path) -> Result<Vec<u8>, AuthError> {
    let meta = tokio::fs::metadata(path).await.map_err(|_| rejected("no such OpenEMR session"))?;
    if meta.len() > session::MAX_LEN as u64 {
        return Err(rejected("the session file is too large"));
    }
    tokio::fs::read(path).await.map_err(|_| rejected("the session file could not be read"))
}

/// A dead Redis must fail a request quickly, not hold it.
const REDIS_TIMEOUT: Duration = Duration::from_secs(2);

/// OpenEMR's Redis session store. The connection is made on first use so the service starts while
/// Redis is down; the manager reconnects by itself afterwards.
pub struct RedisSessions {
    config: SessionRedisConfig,
    connection: OnceCell<ConnectionManager>,
}

impl RedisSessions {
    pub fn new(config: SessionRedisConfig) -> Self {
        Self { config, connection: OnceCell::new() }
    }

    async fn read(&self, session_id: &str) -> Result<Vec<u8>, AuthError> {
        let key = format!("{}{session_id}", self.config.key_prefix);
        tokio::time::timeout(REDIS_TIMEOUT, self.fetch(&key))
            .await
            .unwrap_or_else(|_| Err(unavailable("timed out")))
    }

    /// Plain reads only: taking OpenEMR's lock keys would stall the user's PHP requests.
    async fn fetch(&self, key: &str) -> Result<Vec<u8>, AuthError> {
        let mut conn = self.connection.get_or_try_init(|| self.connect()).await.map_err(unavailable)?.clone();
        let len: usize = conn.strlen(key).await.map_err(unavailable)?;
        if len > session::MAX_LEN {
            return Err(rejected("the session data is too large"));
        }
        let raw: Option<Vec<u8>> = if len == 0 { None } else { conn.get(key).await.map_err(unavailable)? };
        raw.ok_or_else(|| rejected("no such OpenEMR session"))
    }

    async fn connect(&self) -> redis::RedisResult<ConnectionManager> {
        let client = redis::Client::open(self.config.url.expose_secret())?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(REDIS_TIMEOUT))
            .set_response_timeout(Some(REDIS_TIMEOUT))
            .set_number_of_retries(1);
        ConnectionManager::new_with_config(client, config).await
    }
}

fn unavailable(cause: impl std::fmt::Display) -> AuthError {
    tracing::warn!(error = %cause, "OpenEMR's Redis session store is unavailable");
    AuthError::SessionStoreUnavailable
}
