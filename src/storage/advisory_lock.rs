//! MariaDB advisory locks (GET_LOCK), which serialise work across sidecar replicas without
//! touching any table. Names are scoped to the current database, since one server may host
//! several OpenEMR sites.

use std::{
    collections::HashMap,
    sync::{Arc, LazyLock, Mutex, Weak},
    time::{Duration, Instant},
};

use sqlx::{MySql, MySqlConnection, MySqlPool, pool::PoolConnection};
use tokio::sync::{Mutex as Queue, OwnedMutexGuard};

use crate::storage::StorageError;

/// How long a write waits for its turn behind others of its kind (filings, patient creates)
/// before answering 503: generous, since each holder is quick and a burst queues behind it.
pub const WRITE_WAIT_SECS: i64 = 30;

async fn acquire(conn: &mut MySqlConnection, name: &str, wait_secs: i64) -> Result<(), StorageError> {
    let got: Option<i64> = sqlx::query_scalar("SELECT GET_LOCK(CONCAT(?, ':', DATABASE()), ?)")
        .bind(name)
        .bind(wait_secs)
        .fetch_one(&mut *conn)
        .await
        .map_err(StorageError::from_sqlx)?;
    if got == Some(1) {
        Ok(())
    } else {
        Err(StorageError::Busy(format!("another replica held the `{name}` lock for over {wait_secs} s")))
    }
}

type Queues = Mutex<HashMap<String, Weak<Queue<()>>>>;

static QUEUES: LazyLock<Queues> = LazyLock::new(Queues::default);

/// This process's place in line for one named piece of work. Writers wait here before they take
/// a pooled connection: a burst waiting on the server's lock, or on a row lock, would otherwise
/// hold every connection in the pool while it waits and starve all other requests.
pub struct Turn {
    _place: OwnedMutexGuard<()>,
}

fn queue(pool: &MySqlPool, name: &str) -> Arc<Queue<()>> {
    let key = format!("{}:{name}", pool.connect_options().get_database().unwrap_or_default());
    let mut queues = QUEUES.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(queue) = queues.get(&key).and_then(Weak::upgrade) {
        return queue;
    }
    queues.retain(|_, queue| queue.strong_count() > 0);
    let queue = Arc::new(Queue::new(()));
    queues.insert(key, Arc::downgrade(&queue));
    queue
}

/// Waits up to `wait_secs` for this process's turn at `name` (per database), in arrival order.
pub async fn turn(pool: &MySqlPool, name: &str, wait_secs: i64) -> Result<Turn, StorageError> {
    let wait = Duration::from_secs(wait_secs.unsigned_abs());
    tokio::time::timeout(wait, queue(pool, name).lock_owned())
        .await
        .map(|place| Turn { _place: place })
        .map_err(|_| StorageError::Busy(format!("the `{name}` queue did not move for {wait_secs} s")))
}

/// A pooled connection holding a named lock. The lock belongs to the connection, not to a
/// transaction, so work done in transactions on `conn()` stays covered through its commit.
/// Dropped without `release`, the connection is closed, which frees the lock on the server.
pub struct Held {
    conn: PoolConnection<MySql>,
    name: String,
    released: bool,
    _turn: Turn,
}

impl Held {
    pub async fn take(
        pool: &MySqlPool,
        name: impl Into<String>,
        wait_secs: i64,
    ) -> Result<Self, StorageError> {
        let name = name.into();
        let started = Instant::now();
        let turn = turn(pool, &name, wait_secs).await?;
        let mut conn = pool.acquire().await.map_err(StorageError::from_sqlx)?;
        let left = wait_secs.saturating_sub(i64::try_from(started.elapsed().as_secs()).unwrap_or(i64::MAX));
        acquire(&mut conn, &name, left.max(1)).await?;
        Ok(Self { conn, name, released: false, _turn: turn })
    }

    pub fn conn(&mut self) -> &mut MySqlConnection {
        &mut self.conn
    }

    pub async fn release(mut self) -> Result<(), StorageError> {
        sqlx::query("SELECT RELEASE_LOCK(CONCAT(?, ':', DATABASE()))")
            .bind(&self.name)
            .execute(&mut *self.conn)
            .await
            .map_err(StorageError::from_sqlx)?;
        self.released = true;
        Ok(())
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        if !self.released {
            self.conn.close_on_drop();
        }
    }
}
