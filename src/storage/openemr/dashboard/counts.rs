//! The dashboard's counts, in one round trip.

use sqlx::MySqlPool;

use crate::storage::StorageError;

#[derive(Debug, Clone, Copy, sqlx::FromRow)]
pub struct Counts {
    pub my_patients: i64,
    pub pending_reviews: i64,
    pub unread_messages: i64,
    pub draft_transcriptions: i64,
}

/// Whose transcriptions awaiting review the caller may sign off (the transcription workflow's
/// reviewer rule).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReviewScope {
    /// `encounters|notes_a`: every one.
    All,
    /// `encounters|notes`: those of the caller's encounters, or their own without an encounter.
    Own,
    None,
}

pub struct Whose<'a> {
    pub user_id: i64,
    pub username: &'a str,
    pub reviews: ReviewScope,
    /// Messages about a patient count only with `patients|notes`.
    pub patient_messages: bool,
}

pub async fn of(pool: &MySqlPool, w: &Whose<'_>) -> Result<Counts, StorageError> {
    sqlx::query_as(
        "SELECT \
           (SELECT COUNT(*) FROM patient_data WHERE providerID = ?) AS my_patients, \
           (SELECT COUNT(*) FROM mmt_transcriptions t LEFT JOIN form_encounter fe ON fe.encounter = t.encounter \
            WHERE t.status = 'pending_review' AND (? OR (? AND (fe.provider_id = ? \
              OR (t.encounter IS NULL AND t.author_id = ?))))) AS pending_reviews, \
           (SELECT COUNT(*) FROM pnotes WHERE assigned_to = ? AND message_status = 'New' AND activity = 1 \
            AND deleted != 1 AND (? OR pid IS NULL OR pid = 0)) AS unread_messages, \
           (SELECT COUNT(*) FROM mmt_transcriptions WHERE author_id = ? AND status = 'draft') AS draft_transcriptions",
    )
    .bind(w.user_id)
    .bind(w.reviews == ReviewScope::All)
    .bind(w.reviews == ReviewScope::Own)
    .bind(w.user_id)
    .bind(w.user_id)
    .bind(w.username)
    .bind(w.patient_messages)
    .bind(w.user_id)
    .fetch_one(pool)
    .await
    .map_err(StorageError::from_sqlx)
}
