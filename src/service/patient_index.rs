//! Keeps `mmt_patient_index` in step with OpenEMR's `patient_data`. The sidecar's own writes update
//! it in their transaction; everything else (OpenEMR's screens, imports) is picked up by a sweep of
//! rows whose `last_updated` is at or after the last one seen, run before a search whenever the
//! index is older than the configured staleness, and in the background.

use std::time::{Duration, Instant};

use tokio::sync::Mutex;

use crate::{
    app::AppState,
    domain::patient_search::{TermSource, terms_of},
    storage::{
        StorageError,
        mmt::patient_index::{self, IndexEntry},
        openemr::patients::{self, PatientRow},
    },
};

pub struct PatientIndex {
    max_staleness: Duration,
    last_sync: Mutex<Option<Instant>>,
}

impl PatientIndex {
    pub fn new(max_staleness: Duration) -> Self {
        Self { max_staleness, last_sync: Mutex::new(None) }
    }

    /// Sweeps first if the index may be older than allowed; concurrent callers share one sweep.
    pub async fn ensure_fresh(&self, state: &AppState) -> Result<(), StorageError> {
        let mut last = self.last_sync.lock().await;
        if last.is_some_and(|at| at.elapsed() < self.max_staleness) && !self.max_staleness.is_zero() {
            return Ok(());
        }
        sweep(state).await?;
        *last = Some(Instant::now());
        Ok(())
    }

    pub fn interval(&self) -> Duration {
        self.max_staleness.max(Duration::from_millis(500))
    }
}

pub fn entry(row: &PatientRow) -> IndexEntry {
    let terms = terms_of(&TermSource {
        first_name: &row.fname,
        middle_name: &row.mname,
        last_name: &row.lname,
        preferred_name: row.preferred_name.as_deref().unwrap_or_default(),
        pubpid: &row.pubpid,
        email: &row.email,
        phones: [&row.phone_home, &row.phone_cell, &row.phone_biz],
    });
    IndexEntry {
        pid: row.pid,
        terms,
        dob: row.dob,
        sex: row.sex.clone(),
        provider_id: row.provider_id.map(i64::from),
        source_updated: row.last_updated,
    }
}

async fn sweep(state: &AppState) -> Result<(), StorageError> {
    let now = chrono::Local::now().naive_local();
    let watermark = patient_index::state(&state.pool).await?.and_then(|(w, _)| w);
    let changed = patients::changed_since(&state.pool, watermark).await?;
    for chunk in changed.chunks(500) {
        let entries: Vec<IndexEntry> = chunk.iter().map(entry).collect();
        let mut tx = state.pool.begin().await.map_err(StorageError::from_sqlx)?;
        patient_index::upsert(&mut tx, &entries).await?;
        tx.commit().await.map_err(StorageError::from_sqlx)?;
    }
    if patients::count(&state.pool).await? != patient_index::count(&state.pool).await? {
        patient_index::remove_orphans(&state.pool).await?;
    }
    let newest = changed.iter().filter_map(|r| r.last_updated).max().or(watermark);
    patient_index::save_state(&state.pool, newest, now).await?;
    if !changed.is_empty() {
        tracing::info!(patients = changed.len(), "patient search index updated");
    }
    Ok(())
}

/// Runs for the life of the server so the first search never waits for the initial build.
pub async fn keep_fresh(state: AppState) {
    loop {
        if let Err(err) = state.patient_index.ensure_fresh(&state).await {
            tracing::warn!(error = %err, "patient search index sweep failed; will retry");
        }
        tokio::time::sleep(state.patient_index.interval()).await;
    }
}
