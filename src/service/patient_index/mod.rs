//! Keeps `mmt_patient_index` and this replica's in-memory index in step with OpenEMR's
//! `patient_data`. The sidecar's own writes update the table in their transaction and the memory
//! after it commits; everything else (OpenEMR's screens, imports, other replicas) is picked up by a
//! sweep of rows whose `last_updated` is at or after the last one seen, run in the background
//! every `max_staleness` (searches never wait for it, except before this process's first sweep),
//! or before every search when `max_staleness` is zero. OpenEMR indexes no `last_updated`, so a
//! sweep reads the whole table: it runs only when the table's change stamp says it may find
//! something, and never takes more than a fifth of the time. Searches use the memory once it is
//! built and the table until then.

pub mod memory;

use std::{
    collections::HashSet,
    sync::{
        Arc, PoisonError, RwLock,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use chrono::NaiveDateTime;
use memory::MemoryIndex;
use serde_json::json;
use tokio::sync::Mutex;

use crate::{
    app::AppState,
    domain::{
        patient_search::{TermSource, terms_of},
        table_stamp::{Stamp, StampWatch},
        webhook::ChangeEvent,
    },
    service::webhooks::{self, Change},
    storage::{
        StorageError,
        mmt::patient_index::{self, After, Filters, IndexEntry, Page},
        openemr::{
            patients::{self, PatientRow},
            stamps,
        },
    },
};

/// Patients read per query while the memory index is built.
const BUILD_PAGE: u32 = 500;
/// A background sweep is followed by a pause of at least this many times its own length, up to
/// `LONGEST_PAUSE` (a first sweep that indexes every patient is no measure of later ones).
const PAUSE_PER_SWEEP: u32 = 4;
const LONGEST_PAUSE: Duration = Duration::from_secs(60);

pub struct PatientIndex {
    max_staleness: Duration,
    /// One sweep at a time, and what the last one saw of the table's change stamp.
    sweeping: Mutex<StampWatch<Vec<Stamp>>>,
    /// Set after this process's first sweep; later searches never wait on a background one.
    swept_once: AtomicBool,
    /// `None` until this replica has built it.
    memory: RwLock<Option<MemoryIndex>>,
    /// Serialises changes to the memory index, and holds the `last_updated` its sweeps go on from
    /// (`None` before it is built, `Some(None)` for a table with no dates).
    memory_mark: Mutex<Option<Option<NaiveDateTime>>>,
    building: Mutex<()>,
}

impl PatientIndex {
    pub fn new(max_staleness: Duration) -> Self {
        Self {
            max_staleness,
            sweeping: Mutex::new(StampWatch::default()),
            swept_once: AtomicBool::new(false),
            memory: RwLock::new(None),
            memory_mark: Mutex::new(None),
            building: Mutex::new(()),
        }
    }

    /// Makes the index fit to search: built at least once by this process, or, with a zero
    /// staleness, swept just now (and the memory index built). Concurrent callers share one sweep.
    pub async fn ready_for_search(&self, state: &AppState) -> Result<(), StorageError> {
        if self.max_staleness.is_zero() {
            self.refresh(state).await?;
            return build_memory(state).await;
        }
        if !self.swept_once.load(Ordering::Acquire) {
            let mut watch = self.sweeping.lock().await;
            if !self.swept_once.load(Ordering::Acquire) {
                sweep(state, &mut watch).await?;
                self.swept_once.store(true, Ordering::Release);
            }
        }
        Ok(())
    }

    /// The search answered from memory; `None` while the memory index is being built, or when
    /// the search needs what only the database holds.
    pub fn search_in_memory(&self, f: &Filters, page: &Page) -> Option<(i64, Vec<(i64, After)>)> {
        if !memory::answers(f) {
            return None;
        }
        self.memory.read().unwrap_or_else(PoisonError::into_inner).as_ref().map(|m| m.search(f, page))
    }

    /// How many patients the memory index holds, once it is built.
    pub fn in_memory(&self) -> Option<u64> {
        self.memory.read().unwrap_or_else(PoisonError::into_inner).as_ref().map(MemoryIndex::patients)
    }

    /// Puts the sidecar's own committed write into the memory index at once, so the writer finds
    /// it; before the index is built, its build or first sweep picks the row up.
    pub async fn remember(&self, row: &PatientRow) {
        // Never wait on a first build's sweep: the build or the sweep after it reads this row.
        if self.in_memory().is_none() {
            return;
        }
        let _writer = self.memory_mark.lock().await;
        self.with_memory(|m| m.upsert(&entry(row)));
    }

    pub async fn forget(&self, pid: i64) {
        if self.in_memory().is_none() {
            return;
        }
        let _writer = self.memory_mark.lock().await;
        self.with_memory(|m| m.remove(pid));
    }

    fn with_memory<T>(&self, f: impl FnOnce(&mut MemoryIndex) -> T) -> Option<T> {
        self.memory.write().unwrap_or_else(PoisonError::into_inner).as_mut().map(f)
    }

    async fn refresh(&self, state: &AppState) -> Result<(), StorageError> {
        let mut watch = self.sweeping.lock().await;
        sweep(state, &mut watch).await?;
        self.swept_once.store(true, Ordering::Release);
        Ok(())
    }

    /// The background pause after a sweep that took `sweep`: the staleness allowed, unless the
    /// table is so large that sweeping that often would keep the database busy.
    fn pause_after(&self, sweep: Duration) -> Duration {
        let busy = (sweep * PAUSE_PER_SWEEP).min(LONGEST_PAUSE);
        self.max_staleness.max(Duration::from_millis(500)).max(busy)
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

/// The next page of `patient_data` in pid order, after the last pid `after` holds (which it moves
/// on); empty at the end. Whole-table reads go a page at a time, never all of it at once.
async fn next_page(state: &AppState, after: &mut i64) -> Result<Vec<PatientRow>, StorageError> {
    let rows = patients::page_after(&state.pool, *after, BUILD_PAGE).await?;
    if let Some(last) = rows.last() {
        *after = last.pid;
    }
    Ok(rows)
}

/// The rows changed at or after `a` or `b` (`None` meaning every row).
fn earlier(a: Option<NaiveDateTime>, b: Option<NaiveDateTime>) -> Option<NaiveDateTime> {
    a.zip(b).map(|(a, b)| a.min(b))
}

async fn sweep(state: &AppState, watch: &mut StampWatch<Vec<Stamp>>) -> Result<(), StorageError> {
    let started = Instant::now();
    let stamp = stamps::of(&state.pool, &["patient_data"]).await?;
    if !watch.due(&stamp, started) {
        return Ok(());
    }
    let index = &state.patient_index;
    let now = super::wall_clock_now();
    let mut memory_mark = index.memory_mark.lock().await;
    let watermark = patient_index::state(&state.pool).await?.and_then(|(w, _)| w);
    // The table's watermark is shared by the replicas; this replica's memory may be behind it.
    let since = memory_mark.map_or(watermark, |m| earlier(watermark, m));
    let into_memory = memory_mark.is_some();
    let (mut updated, mut newest) = (0, None);
    if since.is_some() {
        let changed = patients::changed_since(&state.pool, since).await?;
        (updated, newest) = sweep_rows(state, &changed, watermark, into_memory).await?;
    } else {
        let mut after = 0;
        loop {
            let rows = next_page(state, &mut after).await?;
            if rows.is_empty() {
                break;
            }
            let (n, page_newest) = sweep_rows(state, &rows, watermark, into_memory).await?;
            updated += n;
            newest = newest.max(page_newest);
        }
    }
    let patients = patients::count(&state.pool).await?;
    if patients != patient_index::count(&state.pool).await? {
        patient_index::remove_orphans(&state.pool).await?;
    }
    patient_index::save_state(&state.pool, newest.or(watermark), now).await?;
    if updated > 0 {
        tracing::info!(patients = updated, "patient search index updated");
    }
    if let Some(mark) = memory_mark.as_mut() {
        if index.in_memory().is_some_and(|held| held != patients as u64) {
            let existing: HashSet<i64> = patients::all_pids(&state.pool).await?.into_iter().collect();
            index.with_memory(|m| {
                let gone: Vec<i64> = m.pids().filter(|pid| !existing.contains(pid)).collect();
                gone.into_iter().for_each(|pid| _ = m.remove(pid));
            });
        }
        *mark = newest.or(*mark);
        merge_if_needed(state).await;
    }
    watch.swept(stamp, started);
    Ok(())
}

/// Indexes changed rows into the memory index, once it is built, and into the table (those whose
/// digest differs). Returns how many table rows changed and the newest `last_updated` seen.
async fn sweep_rows(
    state: &AppState,
    rows: &[PatientRow],
    watermark: Option<NaiveDateTime>,
    into_memory: bool,
) -> Result<(usize, Option<NaiveDateTime>), StorageError> {
    let newest = rows.iter().filter_map(|r| r.last_updated).max();
    let all: Vec<IndexEntry> = rows.iter().map(entry).collect();
    if into_memory {
        state.patient_index.with_memory(|m| all.iter().for_each(|e| _ = m.upsert(e)));
    }
    let mut updated = 0;
    let mut rest = all.into_iter();
    loop {
        let chunk: Vec<IndexEntry> = rest.by_ref().take(500).collect();
        if chunk.is_empty() {
            break;
        }
        // Rows at the watermark's own second come back every sweep; skip those indexed as they are.
        let pids: Vec<i64> = chunk.iter().map(|e| e.pid).collect();
        let indexed = patient_index::indexed_digests(&state.pool, &pids).await?;
        let entries: Vec<IndexEntry> = chunk
            .into_iter()
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
    Ok((updated, newest))
}

/// Merges the memory index's overlay off the async workers; searches go on meanwhile. The caller
/// holds `memory_mark`, so no change can arrive between the merge and the swap.
async fn merge_if_needed(state: &AppState) {
    let index = state.patient_index.clone();
    let merge = tokio::task::spawn_blocking(move || {
        let merged = {
            let held = index.memory.read().unwrap_or_else(PoisonError::into_inner);
            held.as_ref().filter(|m| m.needs_merge()).map(MemoryIndex::merged)
        };
        if let Some(merged) = merged {
            *index.memory.write().unwrap_or_else(PoisonError::into_inner) = Some(merged);
            release_freed_memory();
        }
    });
    if let Err(err) = merge.await {
        tracing::error!(error = %err, "the patient search index merge failed; the overlay stays");
    }
}

/// Builds this replica's memory index from `patient_data`, a page at a time, unless it is built.
/// Changes made meanwhile are newer than the mark taken first, so the next sweep brings them in.
async fn build_memory(state: &AppState) -> Result<(), StorageError> {
    let index = &state.patient_index;
    let _one_build = index.building.lock().await;
    if index.in_memory().is_some() {
        return Ok(());
    }
    let started = Instant::now();
    let mark = patients::newest_update(&state.pool).await?;
    let mut built = MemoryIndex::default();
    let mut after = 0;
    loop {
        let rows = next_page(state, &mut after).await?;
        if rows.is_empty() {
            break;
        }
        rows.iter().for_each(|row| _ = built.upsert(&entry(row)));
        if built.needs_merge() {
            built = merged_off_workers(built).await;
        }
    }
    let built = merged_off_workers(built).await;
    let (patients, bytes) = (built.patients(), built.heap_bytes());
    let mut memory_mark = index.memory_mark.lock().await;
    *index.memory.write().unwrap_or_else(PoisonError::into_inner) = Some(built);
    *memory_mark = Some(mark);
    release_freed_memory();
    tracing::info!(
        patients,
        bytes,
        millis = started.elapsed().as_millis() as u64,
        "in-memory patient search index built"
    );
    Ok(())
}

/// glibc's allocator keeps the freed pages of a build's scratch space resident (about four times
/// the index at 100,000 patients); hand them back to the system.
fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns pages glibc's heaps hold free; it touches no live allocation.
    unsafe {
        libc::malloc_trim(0);
    }
}

async fn merged_off_workers(index: MemoryIndex) -> MemoryIndex {
    let index = Arc::new(index);
    let source = index.clone();
    match tokio::task::spawn_blocking(move || source.merged()).await {
        Ok(merged) => merged,
        // A merge that panicked leaves the unmerged index, which searches just as well.
        Err(_) => Arc::try_unwrap(index).unwrap_or_default(),
    }
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
        let started = Instant::now();
        if let Err(err) = state.patient_index.refresh(&state).await {
            tracing::warn!(error = %err, "patient search index sweep failed; will retry");
        }
        let swept_in = started.elapsed();
        if let Err(err) = build_memory(&state).await {
            tracing::warn!(error = %err, "in-memory patient search index build failed; will retry");
        }
        tokio::time::sleep(state.patient_index.pause_after(swept_in)).await;
    }
}
