//! The dashboard's counts, in one round trip.

use std::collections::HashMap;

use sqlx::MySqlPool;

use crate::storage::StorageError;

#[derive(Debug, Clone, Copy, sqlx::FromRow)]
pub struct Counts {
    /// From [`panel_sizes`], not this query.
    #[sqlx(default)]
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

/// The encounter is joined by pid too (a transcription's encounter is always its patient's), since
/// OpenEMR indexes `form_encounter.encounter` only after `pid`: by encounter alone, every dashboard
/// with a transcription awaiting review read the whole table.
pub async fn of(pool: &MySqlPool, w: &Whose<'_>) -> Result<Counts, StorageError> {
    sqlx::query_as(
        "SELECT \
           (SELECT COUNT(*) FROM mmt_transcriptions t \
            LEFT JOIN form_encounter fe ON fe.pid = t.pid AND fe.encounter = t.encounter \
            WHERE t.status = 'pending_review' AND (? OR (? AND (fe.provider_id = ? \
              OR (t.encounter IS NULL AND t.author_id = ?))))) AS pending_reviews, \
           (SELECT COUNT(*) FROM pnotes WHERE assigned_to = ? AND message_status = 'New' AND activity = 1 \
            AND deleted != 1 AND (? OR pid IS NULL OR pid = 0)) AS unread_messages, \
           (SELECT COUNT(*) FROM mmt_transcriptions WHERE author_id = ? AND status = 'draft') AS draft_transcriptions",
    )
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

/// How many patients each user cares for: as primary provider (`patient_data.providerID`) or as an
/// active member of the patient's active care team. OpenEMR indexes neither, so this reads both
/// tables whole: callers keep the answer for a while.
pub async fn panel_sizes(pool: &MySqlPool) -> Result<HashMap<i64, i64>, StorageError> {
    let rows: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT user_id, COUNT(DISTINCT pid) FROM ( \
           SELECT CAST(providerID AS SIGNED) AS user_id, pid FROM patient_data \
           WHERE providerID IS NOT NULL AND providerID <> 0 \
           UNION ALL SELECT m.user_id, t.pid FROM care_team_member m JOIN care_teams t ON t.id = m.care_team_id \
           WHERE m.status = 'active' AND t.status = 'active' AND m.user_id IS NOT NULL \
         ) panel GROUP BY user_id",
    )
    .fetch_all(pool)
    .await
    .map_err(StorageError::from_sqlx)?;
    Ok(rows.into_iter().collect())
}
