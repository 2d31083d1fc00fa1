//! This replica's copy of OpenEMR's repeating calendar events (office hours, lunch, series of
//! appointments). No index of OpenEMR's covers `pc_recurrtype`: finding them all means reading the
//! whole calendar table (a third of a second at a million events), and one provider's means passing
//! over every index entry of their history. Listings, free slots and schedules read this copy
//! instead, refreshed in the background once it is older than `MMT_REPEATING_CACHE_SECS`. The
//! sidecar never writes a repeating event, so only ones edited in OpenEMR's own calendar can be
//! that much behind there; booking and rescheduling always read the calendar itself.

use std::sync::Arc;

use crate::{
    app::AppState,
    service::cached::Cached,
    storage::{
        StorageError,
        openemr::scheduling::events::{self, EventRow},
    },
};

pub type RepeatingCache = Cached<Vec<EventRow>>;

pub fn cache() -> RepeatingCache {
    Cached::new("repeating calendar events")
}

/// The repeating events: the copy when there is one (refreshed in the background once older than
/// `MMT_REPEATING_CACHE_SECS`), else read now.
pub async fn rows(state: &AppState) -> Result<Arc<Vec<EventRow>>, StorageError> {
    let pool = state.pool.clone();
    state
        .scheduling
        .repeating
        .get(state.config.scheduling.repeating_ttl, || async move { events::repeating(&pool).await })
        .await
}

/// Reads the copy once at start, so the first listing does not wait for the whole table.
pub async fn warm(state: AppState) {
    if let Err(err) = state.scheduling.repeating.fill(events::repeating(&state.pool)).await {
        tracing::warn!(error = %err, "could not read the repeating calendar events at start");
    }
}
