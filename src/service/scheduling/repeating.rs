//! This replica's copy of OpenEMR's repeating calendar events (office hours, lunch, series of
//! appointments). No index of OpenEMR's covers `pc_recurrtype`: finding them all means reading the
//! whole calendar table (a third of a second at a million events), and one provider's means passing
//! over every index entry of their history. Listings, free slots and schedules read this copy
//! instead, refreshed in the background once it is older than `MMT_REPEATING_CACHE_SECS`. The
//! sidecar never writes a repeating event, so only ones edited in OpenEMR's own calendar can be
//! that much behind there; booking and rescheduling always read the calendar itself.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Instant,
};

use tokio::sync::RwLock;

use crate::{
    app::AppState,
    storage::{
        StorageError,
        openemr::scheduling::events::{self, EventRow},
    },
};

#[derive(Default)]
pub struct RepeatingCache {
    copy: RwLock<Option<(Instant, Arc<Vec<EventRow>>)>>,
    refreshing: AtomicBool,
}

async fn load(state: &AppState) -> Result<Arc<Vec<EventRow>>, StorageError> {
    let rows = Arc::new(events::repeating(&state.pool).await?);
    *state.scheduling.repeating.copy.write().await = Some((Instant::now(), rows.clone()));
    Ok(rows)
}

/// The repeating events: the copy when there is one (starting a refresh if it is stale),
/// else read now.
pub async fn rows(state: &AppState) -> Result<Arc<Vec<EventRow>>, StorageError> {
    let cache = &state.scheduling.repeating;
    let current = cache.copy.read().await.clone();
    let Some((loaded, rows)) = current else { return load(state).await };
    if loaded.elapsed() >= state.config.scheduling.repeating_ttl
        && !cache.refreshing.swap(true, Ordering::AcqRel)
    {
        let state = state.clone();
        tokio::spawn(async move {
            if let Err(err) = load(&state).await {
                tracing::warn!(error = %err, "could not refresh the repeating calendar events");
            }
            state.scheduling.repeating.refreshing.store(false, Ordering::Release);
        });
    }
    Ok(rows)
}

/// Reads the copy once at start, so the first listing does not wait for the whole table.
pub async fn warm(state: AppState) {
    if let Err(err) = load(&state).await {
        tracing::warn!(error = %err, "could not read the repeating calendar events at start");
    }
}
