//! Keeps `mmt_patient_index` in step with OpenEMR's `patient_data`. The sidecar's own writes update
//! it in their transaction; everything else (OpenEMR's screens, imports) is picked up by a sweep of
//! rows whose `last_updated` is at or after the last one seen, run in the background every
//! `max_staleness` (searches never wait for it, except before this process's first sweep), or
//! before every search when `max_staleness` is zero.

use std::time::{Duration, Instant};

use serde_json::json;
use tokio::sync::Mutex;

use crate::{
    app::AppState,
    domain::{
        patient_search::{TermSource, terms_of},
        webhook::ChangeEvent,
    },
    service::webhooks::{self, Change},
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

    /// Makes the index fit to search: built at least once by this process, or, with a zero
    /// staleness, swept just now. Concurrent callers share one sweep.
    pub async fn ready_for_search(&self, state: &AppState) -> Result<(), StorageError> {
        let mut last = self.last_sync.lock().await;
        if last.is_none() || self.max_staleness.is_zero() {
            sweep(state).await?;
            *last = Some(Instant::now());
        }
        Ok(())
    }

    async fn refresh(&self, state: &AppState) -> Result<(), StorageError> {
        let mut last = self.last_sync.lock().await;
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
        pid: row.pid,
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
    let now = super::wall_clock_now();
    let watermark = patient_index::state(&state.pool).await?.and_then(|(w, _)| w);
    let changed = patients::changed_since(&state.pool, watermark).await?;
    let mut updated = 0;
    for chunk in changed.chunks(500) {
        // Rows at the watermark's own second come back every sweep; skip those indexed as they are.
        let pids: Vec<i64> = chunk.iter().map(|r| r.pid).collect();
        let indexed = patient_index::indexed_digests(&state.pool, &pids).await?;
        let entries: Vec<IndexEntry> = chunk
            .iter()
            .map(entry)
            .filter(|e| indexed.get(&e.pid).is_none_or(|d| d.as_slice() != e.digest()))
            .collect();
        if entries.is_empty() {
            continue;
        }
        // Changes OpenEMR made; the very first build announces nothing.
        let changes: Vec<Option<ChangeEvent>> = entries
            .iter()
            .map(|e| match indexed.contains_key(&e.pid) {
                true => Some(ChangeEvent::PatientUpdated),
                false => watermark.map(|_| ChangeEvent::PatientCreated),
            })
            .collect();
        updated += index_chunk(state, &entries, &changes).await?;
    }
    if patients::count(&state.pool).await? != patient_index::count(&state.pool).await? {
        patient_index::remove_orphans(&state.pool).await?;
    }
    let newest = changed.iter().filter_map(|r| r.last_updated).max().or(watermark);
    patient_index::save_state(&state.pool, newest, now).await?;
    if updated > 0 {
        tracing::info!(patients = updated, "patient search index updated");
    }
    Ok(())
}

/// Indexes the entries and records the change events (one per entry, `None` for no event) of
/// OpenEMR's own edits, in one transaction.
async fn upsert_committed(
    state: &AppState,
    entries: &[IndexEntry],
    changes: &[Option<ChangeEvent>],
) -> Result<(), StorageError> {
    let mut tx = state.pool.begin().await.map_err(StorageError::from_sqlx)?;
    patient_index::upsert(&mut tx, entries).await?;
    let mut events = Vec::new();
    for (e, change) in entries.iter().zip(changes) {
        if let Some(event) = change {
            let change = Change { event: *event, pid: Some(e.pid), data: json!({ "source": "openemr" }) };
            events.push(webhooks::record(&mut tx, change).await?);
        }
    }
    tx.commit().await.map_err(StorageError::from_sqlx)?;
    for event in events {
        webhooks::committed(state, event);
    }
    Ok(())
}

/// Indexes a chunk in one transaction; if the database refuses it, row by row, so one row that
/// cannot be indexed is logged (by pid only) and skipped instead of stalling every later change.
/// Returns how many rows were indexed.
async fn index_chunk(
    state: &AppState,
    entries: &[IndexEntry],
    changes: &[Option<ChangeEvent>],
) -> Result<usize, StorageError> {
    match upsert_committed(state, entries, changes).await {
        Ok(()) => return Ok(entries.len()),
        Err(e) if e.is_transient() => return Err(e),
        Err(_) => {}
    }
    let mut indexed = 0;
    for (i, e) in entries.iter().enumerate() {
        match upsert_committed(state, &entries[i..=i], &changes[i..=i]).await {
            Ok(()) => indexed += 1,
            Err(err) if err.is_transient() => return Err(err),
            Err(err) => {
                tracing::error!(pid = e.pid, error = %err, "patient could not be indexed for search; skipped")
            }
        }
    }
    Ok(indexed)
}

/// Runs for the life of the server so the first search never waits for the initial build.
pub async fn keep_fresh(state: AppState) {
    loop {
        if let Err(err) = state.patient_index.refresh(&state).await {
            tracing::warn!(error = %err, "patient search index sweep failed; will retry");
        }
        tokio::time::sleep(state.patient_index.interval()).await;
    }
}
