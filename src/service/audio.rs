//! A transcription's audio: resumable chunked upload, verified on completion, and reads by range.
//! A chunk is on disk (fsynced) before the database records it, and the row stays locked
//! meanwhile, so the recorded offset never runs ahead of the file.

use std::io;

use bytes::Bytes;
use futures_util::{StreamExt, stream::BoxStream};

use crate::{
    app::AppState,
    domain::{
        audio::{self, ByteRange, Chunk, Refusal, Upload},
        transcription::TranscriptionId,
        user::Caller,
    },
    service::{
        acl::AclError,
        audit,
        transcriptions::{TranscriptionError, entry, readable, require_author},
    },
    storage::{
        StorageError,
        audio::AudioFiles,
        mmt::transcriptions::{self as store, AudioProgress, TranscriptionRow},
        openemr::audit_log,
    },
};

#[derive(Debug, thiserror::Error)]
pub enum AudioError {
    #[error(transparent)]
    Transcription(#[from] TranscriptionError),
    #[error(transparent)]
    Refused(#[from] Refusal),
    #[error("the audio does not match its declared SHA-256; nothing was kept, upload it again from offset 0")]
    ChecksumMismatch,
    #[error("the audio upload is not complete ({received} of {size} bytes)")]
    Incomplete { received: i64, size: i64 },
    #[error("audio storage {0}; nothing was recorded, retry later")]
    Disk(&'static str),
}

impl From<StorageError> for AudioError {
    fn from(e: StorageError) -> Self {
        Self::Transcription(e.into())
    }
}

impl From<sqlx::Error> for AudioError {
    fn from(e: sqlx::Error) -> Self {
        Self::Transcription(e.into())
    }
}

impl From<AclError> for AudioError {
    fn from(e: AclError) -> Self {
        Self::Transcription(e.into())
    }
}

type Result<T, E = AudioError> = std::result::Result<T, E>;

/// Names the problem without the path, which is the operator's business, not the client's.
fn disk(e: io::Error) -> AudioError {
    tracing::error!(error = %e, "audio storage failed");
    AudioError::Disk(match e.kind() {
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => "is full",
        io::ErrorKind::ReadOnlyFilesystem => "is read-only",
        io::ErrorKind::PermissionDenied => "is not writable by the sidecar",
        _ => "is unavailable",
    })
}

fn files(state: &AppState) -> AudioFiles<'_> {
    AudioFiles::new(&state.config.audio.dir, &state.vault)
}

fn upload_of(row: &TranscriptionRow) -> Upload {
    Upload {
        received: row.audio_received,
        size: row.audio_size,
        content_type: row.audio_content_type.clone(),
        sha256: row.audio_sha256.as_deref().and_then(|s| s.try_into().ok()),
    }
}

/// Takes one chunk; the last one is checked against the declared SHA-256 and a mismatch
/// discards the whole upload.
pub async fn upload(
    state: &AppState,
    caller: &Caller,
    id: TranscriptionId,
    chunk: Chunk<'_>,
    bytes: &[u8],
) -> Result<Upload> {
    let mut tx = state.pool.begin().await?;
    let row = store::lock(&mut tx, &state.vault, &id.0).await?.ok_or(TranscriptionError::NotFound(id))?;
    require_author(state, caller, &row).await?;
    let current = upload_of(&row);
    if current.complete() {
        return Err(
            TranscriptionError::Conflict("the audio is complete and cannot be replaced".into()).into()
        );
    }
    if !audio::accepts_upload(row.status()) {
        return Err(TranscriptionError::Conflict(format!(
            "a transcription that is {} takes no audio; only drafts and notes pending review do",
            row.status()
        ))
        .into());
    }
    let next = audio::accept(&current, &chunk, state.config.audio.max_bytes)?;
    let files = files(state);
    let name = id.to_string();
    let offset = chunk.offset as u64;
    if files.part_len(&name).await.map_err(disk)? < offset {
        // The partial file lost bytes the database recorded (e.g. the disk was restored), so
        // the client must start again.
        store::set_audio(&mut tx, &id.0, &AudioProgress::default()).await?;
        tx.commit().await?;
        return Err(Refusal::Offset(0).into());
    }
    files.write(&name, offset, bytes).await.map_err(disk)?;
    let mut progress = AudioProgress {
        content_type: next.content_type.as_deref(),
        size: next.size,
        received: next.received,
        sha256: next.sha256.as_ref().map(|s| &s[..]),
        completed_at: None,
    };
    if next.complete() {
        if Some(files.part_sha256(&name).await.map_err(disk)?) != next.sha256 {
            if let Err(e) = files.discard(&name).await {
                tracing::error!(error = %e, "could not remove a rejected audio upload");
            }
            store::set_audio(&mut tx, &id.0, &AudioProgress::default()).await?;
            tx.commit().await?;
            return Err(AudioError::ChecksumMismatch);
        }
        files.complete(&name).await.map_err(disk)?;
        progress.completed_at = Some(super::wall_clock_now());
        let comments =
            format!("mmt-sidecar received the audio of transcription {id} ({} bytes)", next.received);
        audit_log::record(&mut tx, &entry(caller, "patient-record-insert", row.pid, comments)).await?;
    }
    store::set_audio(&mut tx, &id.0, &progress).await?;
    tx.commit().await?;
    Ok(next)
}

/// What the server has, so a client resumes after a dropped connection.
pub async fn progress(state: &AppState, caller: &Caller, id: TranscriptionId) -> Result<Upload> {
    Ok(upload_of(&readable(state, caller, id).await?))
}

pub enum AudioRead {
    Bytes {
        content_type: String,
        len: u64,
        /// The first and last byte sent, when a range was asked for.
        range: Option<(u64, u64)>,
        body: BoxStream<'static, io::Result<Bytes>>,
    },
    /// The range asked for lies outside the file's `len` bytes.
    Unsatisfiable { len: u64 },
}

/// The complete audio, or the one range asked for; every read is audited.
pub async fn read(
    state: &AppState,
    caller: &Caller,
    id: TranscriptionId,
    range: Option<&str>,
) -> Result<AudioRead> {
    let row = readable(state, caller, id).await?;
    let upload = upload_of(&row);
    if !upload.complete() {
        return Err(AudioError::Incomplete {
            received: upload.received,
            size: upload.size.unwrap_or_default(),
        });
    }
    let stored = files(state).open(&id.to_string()).await.map_err(disk)?;
    let len = stored.size();
    if Some(len as i64) != upload.size {
        tracing::error!(%id, "an audio file does not hold the bytes its upload recorded");
        return Err(AudioError::Disk("holds a damaged file"));
    }
    let (first, last, range) = match audio::byte_range(range, len) {
        ByteRange::Whole => (0, len.saturating_sub(1), None),
        ByteRange::Part(first, last) => (first, last, Some((first, last))),
        ByteRange::Unsatisfiable => return Ok(AudioRead::Unsatisfiable { len }),
    };
    let body = stored.reader(first, last).boxed();
    let comments = format!("mmt-sidecar read the audio of transcription {id}");
    audit::record(state, &entry(caller, "patient-record-select", row.pid, comments)).await?;
    Ok(AudioRead::Bytes { content_type: row.audio_content_type.unwrap_or_default(), len, range, body })
}
