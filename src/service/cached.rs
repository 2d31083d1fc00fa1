//! A value each replica keeps and refreshes in the background once it is older than a limit
//! (stale while revalidating): readers wait on the database only when there is no copy yet. For
//! answers OpenEMR's indexes cannot give quickly and that may be a little behind.

use std::{
    future::Future,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use tokio::sync::RwLock;

use crate::storage::StorageError;

pub struct Cached<T>(Arc<Inner<T>>);

struct Inner<T> {
    what: &'static str,
    copy: RwLock<Option<(Instant, Arc<T>)>>,
    refreshing: AtomicBool,
}

impl<T> Clone for Cached<T> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<T: Send + Sync + 'static> Cached<T> {
    /// `what` names the value in warnings.
    pub fn new(what: &'static str) -> Self {
        Self(Arc::new(Inner { what, copy: RwLock::new(None), refreshing: AtomicBool::new(false) }))
    }

    /// The copy, starting one background refresh when it is `max_age` old; without a copy, `load`
    /// now.
    pub async fn get<F>(&self, max_age: Duration, load: impl FnOnce() -> F) -> Result<Arc<T>, StorageError>
    where
        F: Future<Output = Result<T, StorageError>> + Send + 'static,
    {
        Ok(self.get_aged(max_age, load).await?.0)
    }

    /// As [`Self::get`], with how long ago the copy was loaded.
    pub async fn get_aged<F>(
        &self,
        max_age: Duration,
        load: impl FnOnce() -> F,
    ) -> Result<(Arc<T>, Duration), StorageError>
    where
        F: Future<Output = Result<T, StorageError>> + Send + 'static,
    {
        let current = self.0.copy.read().await.clone();
        let Some((loaded, value)) = current else { return Ok((self.fill(load()).await?, Duration::ZERO)) };
        if loaded.elapsed() >= max_age && !self.0.refreshing.swap(true, Ordering::AcqRel) {
            let this = self.clone();
            let refresh = load();
            tokio::spawn(async move {
                if let Err(err) = this.fill(refresh).await {
                    tracing::warn!(error = %err, what = this.0.what, "could not refresh a cached copy");
                }
                this.0.refreshing.store(false, Ordering::Release);
            });
        }
        Ok((value, loaded.elapsed()))
    }

    /// Loads the copy now, e.g. at start so the first reader does not wait.
    pub async fn fill(
        &self,
        load: impl Future<Output = Result<T, StorageError>>,
    ) -> Result<Arc<T>, StorageError> {
        let value = Arc::new(load.await?);
        *self.0.copy.write().await = Some((Instant::now(), value.clone()));
        Ok(value)
    }
}
