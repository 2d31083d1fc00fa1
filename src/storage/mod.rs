//! SQL, and nothing else. `openemr` reads and writes OpenEMR's own tables exactly as OpenEMR does;
//! `mmt` owns the sidecar's `mmt_`-prefixed tables.

pub mod advisory_lock;
pub mod audio;
pub mod mmt;
pub mod openemr;
pub mod vault;

use std::time::Duration;

use sqlx::{
    MySqlPool,
    mysql::{MySqlConnectOptions, MySqlPoolOptions},
};

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("the database is unreachable: {0}")]
    Unavailable(String),
    /// Reachable, but this request could not be served in time: no pooled connection came free,
    /// or a lock it needed stayed taken.
    #[error("the database is busy: {0}")]
    Busy(String),
    /// Shown as its class only: MariaDB's message quotes the values it refused (a duplicate
    /// name, an overlong note), and those are PHI that must not reach logs or clients.
    #[error("database error: {}", class_of(.0))]
    Database(sqlx::Error),
    /// Encryption at rest could not seal or open a value; the reason names no value.
    #[error("encryption at rest: {0}")]
    Sealed(&'static str),
}

fn class_of(error: &sqlx::Error) -> String {
    match error {
        sqlx::Error::Database(e) => match e.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>() {
            Some(my) => format!("MariaDB error {} (SQLSTATE {})", my.number(), my.code().unwrap_or("?")),
            None => format!("SQLSTATE {}", e.code().as_deref().unwrap_or("?")),
        },
        sqlx::Error::ColumnDecode { index, .. } => format!("could not decode column {index}"),
        sqlx::Error::ColumnNotFound(name) => format!("no column {name}"),
        sqlx::Error::RowNotFound => "no row".into(),
        sqlx::Error::Protocol(_) => "protocol error".into(),
        sqlx::Error::Decode(_) | sqlx::Error::Encode(_) => "value conversion failed".into(),
        _ => "unexpected database client error".into(),
    }
}

impl StorageError {
    /// A duplicate key or deadlock that a retry of the whole transaction can resolve.
    pub fn is_retryable_conflict(&self) -> bool {
        self.is_duplicate_key() || self.is_deadlock()
    }

    pub fn is_duplicate_key(&self) -> bool {
        matches!(self, Self::Database(sqlx::Error::Database(e)) if e.is_unique_violation())
    }

    pub fn is_deadlock(&self) -> bool {
        matches!(self, Self::Database(sqlx::Error::Database(e)) if e.code().as_deref() == Some("40001"))
    }

    /// Worth retrying later as a whole: the database was unreachable, busy or deadlocked.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unavailable(_) | Self::Busy(_)) || self.is_deadlock()
    }

    pub fn from_sqlx(error: sqlx::Error) -> Self {
        match error {
            sqlx::Error::PoolTimedOut => Self::Busy("no pooled connection came free in time".into()),
            sqlx::Error::PoolClosed | sqlx::Error::Io(_) | sqlx::Error::Tls(_) => {
                Self::Unavailable(error.to_string())
            }
            sqlx::Error::Database(ref e) if is_busy(e.as_ref()) => Self::Busy(class_of(&error)),
            sqlx::Error::Database(ref e) if is_server_going_away(e.as_ref()) => {
                Self::Unavailable(error.to_string())
            }
            other => Self::Database(other),
        }
    }
}

impl From<sqlx::Error> for StorageError {
    fn from(error: sqlx::Error) -> Self {
        Self::from_sqlx(error)
    }
}

fn mariadb_number(e: &dyn sqlx::error::DatabaseError) -> Option<u16> {
    e.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>().map(|e| e.number())
}

/// Server shutdown (1053), a killed connection (1927), too many connections (1040): the request
/// may succeed on retry, so they are 503s, not 500s. Deadlocks stay `Database` errors so writers
/// can retry them.
fn is_server_going_away(e: &dyn sqlx::error::DatabaseError) -> bool {
    matches!(mariadb_number(e), Some(1040 | 1053 | 1927))
}

/// A lock wait that timed out (1205) and a busy auto-increment lock (1467).
fn is_busy(e: &dyn sqlx::error::DatabaseError) -> bool {
    matches!(mariadb_number(e), Some(1205 | 1467))
}

/// A pool that connects lazily: the service starts, and reports 503, while the database is down,
/// and recovers by itself when it returns. A request that cannot get a connection within
/// `acquire_timeout` is answered 503.
pub fn lazy_pool(options: MySqlConnectOptions, acquire_timeout: Duration, size: u32) -> MySqlPool {
    MySqlPoolOptions::new()
        .max_connections(size)
        .min_connections(0)
        .acquire_timeout(acquire_timeout)
        .idle_timeout(Duration::from_secs(300))
        .test_before_acquire(true)
        .connect_lazy_with(options)
}

/// Rows of one batch of patients (bulk export): `select`, then `WHERE <column> IN (pids)`, in
/// `order`.
pub(crate) async fn of_patients<T>(
    pool: &MySqlPool,
    select: &str,
    column: &str,
    pids: &[i64],
    order: &str,
) -> Result<Vec<T>, StorageError>
where
    T: Send + Unpin + for<'r> sqlx::FromRow<'r, sqlx::mysql::MySqlRow>,
{
    if pids.is_empty() {
        return Ok(Vec::new());
    }
    let mut q = sqlx::QueryBuilder::new(select);
    q.push(format!(" WHERE {column} IN ("));
    let mut listed = q.separated(", ");
    for pid in pids {
        listed.push_bind(*pid);
    }
    q.push(format!(") ORDER BY {order}"));
    q.build_query_as().fetch_all(pool).await.map_err(StorageError::from_sqlx)
}
