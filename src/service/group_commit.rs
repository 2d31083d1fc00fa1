//! Group commit: one writer task per replica and kind takes every item waiting (up to
//! `MAX_BATCH`) and writes them together, so many requests share one round of statements and one
//! commit. Each submitter waits for the outcome of the batch that held its item: nothing is
//! answered before its own write is done, and a failed batch fails exactly its submitters.

use std::sync::OnceLock;

use futures_util::future::BoxFuture;
use sqlx::MySqlPool;
use tokio::sync::{mpsc, oneshot};

use crate::storage::StorageError;

/// The most items one batch writes.
const MAX_BATCH: usize = 256;
/// Items waiting for the writer; more make submitters wait for room.
const QUEUE: usize = 4096;

/// Writes one batch.
pub type WriteBatch<T> = fn(MySqlPool, Vec<T>) -> BoxFuture<'static, Result<(), StorageError>>;

type Waiting<T> = (T, oneshot::Sender<Result<(), String>>);

pub struct GroupCommit<T> {
    what: &'static str,
    write: WriteBatch<T>,
    queue: OnceLock<mpsc::Sender<Waiting<T>>>,
}

impl<T: Send + 'static> GroupCommit<T> {
    /// `what` names the rows in logs and errors ("audit rows").
    pub fn new(what: &'static str, write: WriteBatch<T>) -> Self {
        Self { what, write, queue: OnceLock::new() }
    }

    /// Queues `item` and waits until the batch holding it is written; the writer starts on first use.
    pub async fn submit(&self, pool: &MySqlPool, item: T) -> Result<(), StorageError> {
        let queue = self.queue.get_or_init(|| start(pool.clone(), self.what, self.write));
        let (done, written) = oneshot::channel();
        let lost = || StorageError::Unavailable(format!("the writer of {} stopped", self.what));
        queue.send((item, done)).await.map_err(|_| lost())?;
        written.await.map_err(|_| lost())?.map_err(|why| {
            StorageError::Unavailable(format!("the {} could not be written: {why}", self.what))
        })
    }
}

fn start<T: Send + 'static>(
    pool: MySqlPool,
    what: &'static str,
    write: WriteBatch<T>,
) -> mpsc::Sender<Waiting<T>> {
    let (queue, mut waiting) = mpsc::channel::<Waiting<T>>(QUEUE);
    tokio::spawn(async move {
        let mut batch = Vec::with_capacity(MAX_BATCH);
        while waiting.recv_many(&mut batch, MAX_BATCH).await > 0 {
            let (items, submitters): (Vec<_>, Vec<_>) = batch.drain(..).unzip();
            let rows = items.len();
            let outcome = write(pool.clone(), items).await.map_err(|e| e.to_string());
            if let Err(why) = &outcome {
                tracing::error!(error = %why, rows, "could not write a batch of {what}");
            }
            for submitter in submitters {
                let _ = submitter.send(outcome.clone());
            }
        }
    });
    queue
}
