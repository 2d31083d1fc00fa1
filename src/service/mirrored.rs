//! A copy of what some OpenEMR tables hold, kept by each replica and loaded again only when the
//! tables' change stamps say they may have changed (`domain::table_stamp`). For reads that would
//! scan tables OpenEMR does not index for them, on every request, though they rarely change.

use std::{future::Future, sync::Arc, time::Duration, time::Instant};

use sqlx::MySqlPool;
use tokio::sync::Mutex;

use crate::{
    domain::table_stamp::{Stamp, StampWatch},
    storage::{StorageError, openemr::stamps},
};

pub struct Mirrored<T> {
    tables: &'static [&'static str],
    copy: Mutex<Copy<T>>,
}

struct Copy<T> {
    value: Option<Arc<T>>,
    watch: StampWatch<Vec<Stamp>>,
    /// When the stamps last said the copy held every committed change.
    checked: Option<Instant>,
}

impl<T> Mirrored<T> {
    pub fn new(tables: &'static [&'static str]) -> Self {
        Self { tables, copy: Mutex::new(Copy { value: None, watch: StampWatch::default(), checked: None }) }
    }

    /// The copy, as of at most `max_age` before this call: checked against the tables' stamps when
    /// older, and loaded again when they may have changed. One caller checks or loads at a time;
    /// those waiting meanwhile take what it found.
    pub async fn get<F>(
        &self,
        pool: &MySqlPool,
        max_age: Duration,
        load: impl FnOnce() -> F,
    ) -> Result<Arc<T>, StorageError>
    where
        F: Future<Output = Result<T, StorageError>>,
    {
        let asked = Instant::now();
        let mut copy = self.copy.lock().await;
        if let (Some(value), Some(checked)) = (&copy.value, copy.checked)
            && checked + max_age >= asked
        {
            return Ok(value.clone());
        }
        let started = Instant::now();
        let stamps = stamps::of(pool, self.tables).await?;
        let value = match &copy.value {
            Some(value) if !copy.watch.due(&stamps, started) => value.clone(),
            _ => {
                let value = Arc::new(load().await?);
                copy.watch.swept(stamps, started);
                copy.value = Some(value.clone());
                value
            }
        };
        copy.checked = Some(started);
        Ok(value)
    }
}
