use chrono::NaiveDateTime;
use sqlx::{MySql, MySqlConnection, MySqlPool, QueryBuilder};

use crate::{
    domain::transcription::{Segment, SpeakerRole, TranscriptionStatus},
    storage::{
        StorageError,
        vault::{Field, Keyring, SealError, Vault},
    },
};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TranscriptionRow {
    pub id: Vec<u8>,
    pub pid: i64,
    pub encounter: Option<i64>,
    pub author_id: i64,
    pub status: String,
    pub version: u32,
    #[sqlx(skip)]
    pub title: String,
    pub note_type: String,
    pub language: String,
    #[sqlx(skip)]
    pub note_text: String,
    pub create_digest: Vec<u8>,
    pub audio_content_type: Option<String>,
    pub audio_size: Option<i64>,
    pub audio_received: i64,
    pub audio_sha256: Option<Vec<u8>>,
    pub audio_duration_ms: Option<i64>,
    pub audio_completed_at: Option<NaiveDateTime>,
    #[sqlx(skip)]
    pub reject_reason: Option<String>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub submitted_at: Option<NaiveDateTime>,
    pub approved_at: Option<NaiveDateTime>,
    pub approved_by: Option<i64>,
    pub rejected_at: Option<NaiveDateTime>,
    pub rejected_by: Option<i64>,
    pub cancelled_at: Option<NaiveDateTime>,
    pub filed_at: Option<NaiveDateTime>,
    pub filed_by: Option<i64>,
    pub filed_form_id: Option<i64>,
    pub filed_note_id: Option<i64>,
    sealed_title: Vec<u8>,
    sealed_note_text: Vec<u8>,
    sealed_reject_reason: Option<Vec<u8>>,
}

impl TranscriptionRow {
    pub fn status(&self) -> TranscriptionStatus {
        TranscriptionStatus::parse(&self.status).unwrap_or(TranscriptionStatus::Draft)
    }

    fn unseal(&mut self, keys: &Keyring) -> Result<(), SealError> {
        self.title = keys.open(Field::TranscriptionTitle, &self.sealed_title)?;
        self.note_text = keys.open(Field::TranscriptionText, &self.sealed_note_text)?;
        self.reject_reason =
            self.sealed_reject_reason.as_deref().map(|r| keys.open(Field::RejectReason, r)).transpose()?;
        Ok(())
    }
}

async fn opened(
    vault: &Vault,
    mut rows: Vec<TranscriptionRow>,
) -> Result<Vec<TranscriptionRow>, StorageError> {
    vault.with_keys(|keys| rows.iter_mut().try_for_each(|r| r.unseal(keys))).await?;
    Ok(rows)
}

async fn opened_one(
    vault: &Vault,
    row: Option<TranscriptionRow>,
) -> Result<Option<TranscriptionRow>, StorageError> {
    Ok(opened(vault, row.into_iter().collect()).await?.pop())
}

const COLUMNS: &str = "id, pid, encounter, author_id, CAST(status AS CHAR) AS status, version, title AS sealed_title, \
     note_type, language, note_text AS sealed_note_text, create_digest, audio_content_type, audio_size, \
     audio_received, audio_sha256, audio_duration_ms, audio_completed_at, reject_reason AS sealed_reject_reason, created_at, updated_at, submitted_at, approved_at, \
     approved_by, rejected_at, rejected_by, cancelled_at, filed_at, filed_by, filed_form_id, filed_note_id";

pub struct NewTranscription<'a> {
    pub id: [u8; 16],
    pub pid: i64,
    pub encounter: Option<i64>,
    pub author_id: i64,
    pub title: &'a str,
    pub note_type: &'a str,
    pub language: &'a str,
    pub note_text: &'a str,
    pub create_digest: [u8; 32],
    pub now: NaiveDateTime,
}

pub async fn insert(
    conn: &mut MySqlConnection,
    vault: &Vault,
    t: &NewTranscription<'_>,
) -> Result<(), StorageError> {
    let keys = vault.keys().await?;
    sqlx::query(
        "INSERT INTO mmt_transcriptions (id, pid, encounter, author_id, status, version, title, note_type, language, \
         note_text, create_digest, created_at, updated_at) VALUES (?, ?, ?, ?, 'draft', 1, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&t.id[..])
    .bind(t.pid)
    .bind(t.encounter)
    .bind(t.author_id)
    .bind(keys.seal(Field::TranscriptionTitle, t.title))
    .bind(t.note_type)
    .bind(t.language)
    .bind(keys.seal(Field::TranscriptionText, t.note_text))
    .bind(&t.create_digest[..])
    .bind(t.now)
    .bind(t.now)
    .execute(conn)
    .await
    .map_err(StorageError::from_sqlx)?;
    Ok(())
}

pub async fn get(
    pool: &MySqlPool,
    vault: &Vault,
    id: &[u8; 16],
) -> Result<Option<TranscriptionRow>, StorageError> {
    let row =
        sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM mmt_transcriptions WHERE id = ?")))
            .bind(&id[..])
            .fetch_optional(pool)
            .await
            .map_err(StorageError::from_sqlx)?;
    opened_one(vault, row).await
}

/// Locks the row until the transaction ends: every state change goes through here, so two
/// requests (or replicas) acting on one transcription take turns.
pub async fn lock(
    conn: &mut MySqlConnection,
    vault: &Vault,
    id: &[u8; 16],
) -> Result<Option<TranscriptionRow>, StorageError> {
    let row = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM mmt_transcriptions WHERE id = ? FOR UPDATE"
    )))
    .bind(&id[..])
    .fetch_optional(conn)
    .await
    .map_err(StorageError::from_sqlx)?;
    opened_one(vault, row).await
}

#[derive(Debug, Default, Clone)]
pub struct ListFilters {
    pub pid: Option<i64>,
    pub encounter: Option<i64>,
    pub status: Option<TranscriptionStatus>,
    pub author_id: Option<i64>,
    pub created_from: Option<NaiveDateTime>,
    pub created_to: Option<NaiveDateTime>,
    /// Limits the list to one author's transcriptions, for callers who may see only their own.
    pub only_author: Option<i64>,
    /// Limits the list to patients the caller reaches under the assigned-patient policy.
    pub reach: Option<crate::storage::openemr::patient_access::Reach>,
}

fn push_filters(q: &mut QueryBuilder<MySql>, f: &ListFilters) {
    q.push(" WHERE 1 = 1");
    for (column, value) in
        [("pid", f.pid), ("encounter", f.encounter), ("author_id", f.author_id), ("author_id", f.only_author)]
    {
        if let Some(v) = value {
            q.push(format!(" AND {column} = ")).push_bind(v);
        }
    }
    if let Some(status) = f.status {
        q.push(" AND status = ").push_bind(status.as_str());
    }
    if let Some(from) = f.created_from {
        q.push(" AND created_at >= ").push_bind(from);
    }
    if let Some(to) = f.created_to {
        q.push(" AND created_at < ").push_bind(to);
    }
    if let Some(reach) = &f.reach {
        q.push(" AND ");
        crate::storage::openemr::patient_access::push_reaches(
            q,
            crate::storage::openemr::patient_access::PidOf::Column("mmt_transcriptions.pid"),
            reach,
        );
    }
}

pub async fn count(pool: &MySqlPool, f: &ListFilters) -> Result<i64, StorageError> {
    let mut q = QueryBuilder::new("SELECT COUNT(*) FROM mmt_transcriptions");
    push_filters(&mut q, f);
    q.build_query_scalar().fetch_one(pool).await.map_err(StorageError::from_sqlx)
}

/// Newest first.
pub async fn list(
    pool: &MySqlPool,
    vault: &Vault,
    f: &ListFilters,
    limit: u32,
    offset: u64,
) -> Result<Vec<TranscriptionRow>, StorageError> {
    let mut q = QueryBuilder::new(format!("SELECT {COLUMNS} FROM mmt_transcriptions"));
    push_filters(&mut q, f);
    q.push(" ORDER BY created_at DESC, id LIMIT ")
        .push_bind(i64::from(limit))
        .push(" OFFSET ")
        .push_bind(offset as i64);
    let rows = q.build_query_as().fetch_all(pool).await.map_err(StorageError::from_sqlx)?;
    opened(vault, rows).await
}

#[derive(sqlx::FromRow)]
struct SegmentRow {
    seq: u32,
    start_ms: u32,
    end_ms: u32,
    speaker_label: String,
    speaker_role: String,
    text: Vec<u8>,
    confidence: Option<f64>,
    edited_by_human: bool,
}

pub async fn segments(pool: &MySqlPool, vault: &Vault, id: &[u8; 16]) -> Result<Vec<Segment>, StorageError> {
    let rows: Vec<SegmentRow> = sqlx::query_as(
        "SELECT seq, start_ms, end_ms, speaker_label, CAST(speaker_role AS CHAR) AS speaker_role, text, \
         CAST(confidence AS DOUBLE) AS confidence, edited_by_human FROM mmt_transcription_segments \
         WHERE transcription_id = ? ORDER BY seq",
    )
    .bind(&id[..])
    .fetch_all(pool)
    .await
    .map_err(StorageError::from_sqlx)?;
    let sealed: Vec<&[u8]> = rows.iter().map(|r| &r.text[..]).collect();
    let texts = vault.open_all(Field::SegmentText, &sealed).await?;
    Ok(rows
        .into_iter()
        .zip(texts)
        .map(|(r, text)| Segment {
            seq: r.seq,
            start_ms: r.start_ms,
            end_ms: r.end_ms,
            speaker_label: r.speaker_label,
            speaker_role: SpeakerRole::parse(&r.speaker_role).unwrap_or(SpeakerRole::Unknown),
            text,
            confidence: r.confidence,
            edited_by_human: r.edited_by_human,
        })
        .collect())
}

/// Adds segments, replacing any with the same sequence number.
pub async fn upsert_segments(
    conn: &mut MySqlConnection,
    vault: &Vault,
    id: &[u8; 16],
    segments: &[Segment],
) -> Result<(), StorageError> {
    let keys = vault.keys().await?;
    for chunk in segments.chunks(500) {
        let mut q = QueryBuilder::<MySql>::new(
            "INSERT INTO mmt_transcription_segments (transcription_id, seq, start_ms, end_ms, speaker_label, \
             speaker_role, text, confidence, edited_by_human) ",
        );
        q.push_values(chunk, |mut row, s| {
            row.push_bind(&id[..])
                .push_bind(s.seq)
                .push_bind(s.start_ms)
                .push_bind(s.end_ms)
                .push_bind(&s.speaker_label)
                .push_bind(s.speaker_role.as_str())
                .push_bind(keys.seal(Field::SegmentText, &s.text))
                .push_bind(s.confidence)
                .push_bind(s.edited_by_human);
        });
        q.push(
            " ON DUPLICATE KEY UPDATE start_ms = VALUES(start_ms), end_ms = VALUES(end_ms), \
             speaker_label = VALUES(speaker_label), speaker_role = VALUES(speaker_role), text = VALUES(text), \
             confidence = VALUES(confidence), edited_by_human = VALUES(edited_by_human)",
        );
        q.build().execute(&mut *conn).await.map_err(StorageError::from_sqlx)?;
    }
    Ok(())
}

pub async fn delete_segments(conn: &mut MySqlConnection, id: &[u8; 16]) -> Result<(), StorageError> {
    sqlx::query("DELETE FROM mmt_transcription_segments WHERE transcription_id = ?")
        .bind(&id[..])
        .execute(conn)
        .await
        .map_err(StorageError::from_sqlx)?;
    Ok(())
}

/// The editable details of a draft; `None` leaves a field as it is.
#[derive(Debug, Default, Clone)]
pub struct Details {
    pub title: Option<String>,
    pub note_type: Option<String>,
    pub language: Option<String>,
    pub note_text: Option<String>,
    pub encounter: Option<Option<i64>>,
}

pub async fn update_details(
    conn: &mut MySqlConnection,
    vault: &Vault,
    id: &[u8; 16],
    d: &Details,
    now: NaiveDateTime,
) -> Result<(), StorageError> {
    let keys = vault.keys().await?;
    let mut q =
        QueryBuilder::<MySql>::new("UPDATE mmt_transcriptions SET version = version + 1, updated_at = ");
    q.push_bind(now);
    for (column, value) in [("note_type", &d.note_type), ("language", &d.language)] {
        if let Some(v) = value {
            q.push(format!(", {column} = ")).push_bind(v.clone());
        }
    }
    for (field, value) in [(Field::TranscriptionTitle, &d.title), (Field::TranscriptionText, &d.note_text)] {
        if let Some(v) = value {
            q.push(format!(", {} = ", field.column())).push_bind(keys.seal(field, v));
        }
    }
    if let Some(encounter) = d.encounter {
        q.push(", encounter = ").push_bind(encounter);
    }
    q.push(" WHERE id = ").push_bind(&id[..]);
    q.build().execute(conn).await.map_err(StorageError::from_sqlx)?;
    Ok(())
}

/// Bumps the version of a transcription whose segments changed.
pub async fn touch(
    conn: &mut MySqlConnection,
    id: &[u8; 16],
    now: NaiveDateTime,
) -> Result<(), StorageError> {
    sqlx::query("UPDATE mmt_transcriptions SET version = version + 1, updated_at = ? WHERE id = ?")
        .bind(now)
        .bind(&id[..])
        .execute(conn)
        .await
        .map_err(StorageError::from_sqlx)?;
    Ok(())
}

/// Records a state change and who made it; the state's own timestamp column is set, and a
/// rejection keeps its reason.
pub async fn set_status(
    conn: &mut MySqlConnection,
    vault: &Vault,
    id: &[u8; 16],
    to: TranscriptionStatus,
    by: i64,
    reason: Option<&str>,
    now: NaiveDateTime,
) -> Result<(), StorageError> {
    let (stamp, actor) = match to {
        TranscriptionStatus::PendingReview => (Some("submitted_at"), None),
        TranscriptionStatus::Approved => (Some("approved_at"), Some("approved_by")),
        TranscriptionStatus::Rejected => (Some("rejected_at"), Some("rejected_by")),
        TranscriptionStatus::Cancelled => (Some("cancelled_at"), None),
        TranscriptionStatus::Filed => (Some("filed_at"), Some("filed_by")),
        TranscriptionStatus::Draft => (None, None),
    };
    let mut q = QueryBuilder::<MySql>::new("UPDATE mmt_transcriptions SET version = version + 1, status = ");
    q.push_bind(to.as_str()).push(", updated_at = ").push_bind(now);
    if let Some(column) = stamp {
        q.push(format!(", {column} = ")).push_bind(now);
    }
    if let Some(column) = actor {
        q.push(format!(", {column} = ")).push_bind(by);
    }
    if let Some(reason) = reason {
        q.push(", reject_reason = ").push_bind(vault.keys().await?.seal(Field::RejectReason, reason));
    }
    q.push(" WHERE id = ").push_bind(&id[..]);
    q.build().execute(conn).await.map_err(StorageError::from_sqlx)?;
    Ok(())
}

pub async fn set_filed_note(
    conn: &mut MySqlConnection,
    id: &[u8; 16],
    form_id: i64,
    note_id: i64,
) -> Result<(), StorageError> {
    sqlx::query("UPDATE mmt_transcriptions SET filed_form_id = ?, filed_note_id = ? WHERE id = ?")
        .bind(form_id)
        .bind(note_id)
        .bind(&id[..])
        .execute(conn)
        .await
        .map_err(StorageError::from_sqlx)?;
    Ok(())
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RevisionRow {
    pub revision_no: u32,
    #[sqlx(skip)]
    pub note_text: String,
    pub author_id: i64,
    #[sqlx(skip)]
    pub reason: String,
    pub created_at: NaiveDateTime,
    sealed_note_text: Vec<u8>,
    sealed_reason: Vec<u8>,
}

pub async fn append_revision(
    conn: &mut MySqlConnection,
    vault: &Vault,
    id: &[u8; 16],
    text: &str,
    author_id: i64,
    reason: &str,
    now: NaiveDateTime,
) -> Result<(), StorageError> {
    // Callers hold the transcription's row lock, so reading the next number first is race-free;
    // an INSERT … SELECT on the same table would take InnoDB's auto-increment lock in a way that
    // fails under load (error 1467).
    let next: u32 = sqlx::query_scalar(
        "SELECT CAST(COALESCE(MAX(revision_no), 0) + 1 AS UNSIGNED) FROM mmt_transcription_revisions WHERE transcription_id = ?",
    )
    .bind(&id[..])
    .fetch_one(&mut *conn)
    .await
    .map_err(StorageError::from_sqlx)?;
    let keys = vault.keys().await?;
    sqlx::query(
        "INSERT INTO mmt_transcription_revisions (transcription_id, revision_no, note_text, author_id, reason, created_at) \
         VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(&id[..])
    .bind(next)
    .bind(keys.seal(Field::RevisionText, text))
    .bind(author_id)
    .bind(keys.seal(Field::RevisionReason, reason))
    .bind(now)
    .execute(conn)
    .await
    .map_err(StorageError::from_sqlx)?;
    Ok(())
}

pub async fn revisions(
    pool: &MySqlPool,
    vault: &Vault,
    id: &[u8; 16],
) -> Result<Vec<RevisionRow>, StorageError> {
    let mut rows: Vec<RevisionRow> = sqlx::query_as(
        "SELECT revision_no, note_text AS sealed_note_text, author_id, reason AS sealed_reason, created_at \
         FROM mmt_transcription_revisions \
         WHERE transcription_id = ? ORDER BY revision_no",
    )
    .bind(&id[..])
    .fetch_all(pool)
    .await
    .map_err(StorageError::from_sqlx)?;
    vault
        .with_keys(|keys| {
            rows.iter_mut().try_for_each(|r| {
                r.note_text = keys.open(Field::RevisionText, &r.sealed_note_text)?;
                r.reason = keys.open(Field::RevisionReason, &r.sealed_reason)?;
                Ok(())
            })
        })
        .await?;
    Ok(rows)
}

/// How much of a transcription's audio is safely on disk, and what its upload declared.
#[derive(Debug, Default)]
pub struct AudioProgress<'a> {
    pub content_type: Option<&'a str>,
    pub size: Option<i64>,
    pub received: i64,
    pub sha256: Option<&'a [u8]>,
    pub completed_at: Option<NaiveDateTime>,
}

/// Leaves `version` alone: audio arrives in the background and must not make the client's
/// `If-Match` edits stale.
pub async fn set_audio(
    conn: &mut MySqlConnection,
    id: &[u8; 16],
    a: &AudioProgress<'_>,
) -> Result<(), StorageError> {
    sqlx::query(
        "UPDATE mmt_transcriptions SET audio_content_type = ?, audio_size = ?, audio_received = ?, \
         audio_sha256 = ?, audio_completed_at = ? WHERE id = ?",
    )
    .bind(a.content_type)
    .bind(a.size)
    .bind(a.received)
    .bind(a.sha256)
    .bind(a.completed_at)
    .bind(&id[..])
    .execute(conn)
    .await
    .map_err(StorageError::from_sqlx)?;
    Ok(())
}

/// The highest pid any transcription refers to (0 if none).
pub async fn max_pid(conn: &mut MySqlConnection) -> Result<i64, StorageError> {
    sqlx::query_scalar("SELECT COALESCE(MAX(pid), 0) FROM mmt_transcriptions")
        .fetch_one(conn)
        .await
        .map_err(StorageError::from_sqlx)
}

pub async fn count_for_pid(conn: &mut MySqlConnection, pid: i64) -> Result<i64, StorageError> {
    sqlx::query_scalar("SELECT COUNT(*) FROM mmt_transcriptions WHERE pid = ?")
        .bind(pid)
        .fetch_one(conn)
        .await
        .map_err(StorageError::from_sqlx)
}
