//! MariaDB advisory locks (GET_LOCK), which serialise work across sidecar replicas without
//! touching any table. Names are scoped to the current database, since one server may host
//! several OpenEMR sites.

use sqlx::{MySql, MySqlConnection, MySqlPool, pool::PoolConnection};

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
        Err(StorageError::Unavailable(format!(
            "another replica held the `{name}` lock for over {wait_secs} s"
        )))
    }
}

/// A pooled connection holding a named lock. The lock belongs to the connection, not to a
/// transaction, so work done in transactions on `conn()` stays covered through its commit.
/// Dropped without `release`, the connection is closed, which frees the lock on the server.
pub struct Held {
    conn: PoolConnection<MySql>,
    name: String,
    released: bool,
}

impl Held {
    pub async fn take(
        pool: &MySqlPool,
        name: impl Into<String>,
        wait_secs: i64,
    ) -> Result<Self, StorageError> {
        let name = name.into();
        let mut conn = pool.acquire().await.map_err(StorageError::from_sqlx)?;
        acquire(&mut conn, &name, wait_secs).await?;
        Ok(Self { conn, name, released: false })
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
