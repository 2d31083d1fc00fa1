//! Rules for a transcription's audio: accepted types, resumable chunked uploads, byte ranges.

use base64::{Engine, engine::general_purpose::STANDARD};

use crate::domain::{transcription::TranscriptionStatus, validation::Issues};

pub const CONTENT_TYPES: &[&str] = &[
    "audio/mp4",
    "audio/m4a",
    "audio/x-m4a",
    "audio/aac",
    "audio/mpeg",
    "audio/wav",
    "audio/x-wav",
    "audio/ogg",
    "audio/webm",
    "audio/flac",
    "audio/3gpp",
    "audio/amr",
];

/// Drafts take audio, and so do notes pending review: a phone often submits the note while its
/// recording is still uploading. Audio never changes once complete, so a reviewer's copy is final.
pub fn accepts_upload(status: TranscriptionStatus) -> bool {
    matches!(status, TranscriptionStatus::Draft | TranscriptionStatus::PendingReview)
}

/// An upload as the server has it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Upload {
    pub received: i64,
    pub size: Option<i64>,
    pub content_type: Option<String>,
    pub sha256: Option<[u8; 32]>,
}

impl Upload {
    pub fn complete(&self) -> bool {
        self.size == Some(self.received)
    }
}

/// What a chunk's request says about itself and the whole file.
pub struct Chunk<'a> {
    pub offset: i64,
    pub len: i64,
    pub upload_length: Option<i64>,
    pub content_type: &'a str,
    pub upload_checksum: Option<&'a str>,
    pub x_audio_sha256: Option<&'a str>,
}

#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error("the server has {0} bytes of this upload; send the chunk at Upload-Offset {0}")]
    Offset(i64),
    #[error("{0}")]
    TooLarge(String),
    #[error("{0} is not an accepted audio type; send one of {list}", list = CONTENT_TYPES.join(", "))]
    UnsupportedType(String),
    #[error("{0}")]
    Conflict(String),
    #[error("invalid audio chunk")]
    Invalid(Issues),
}

impl From<Issues> for Refusal {
    fn from(issues: Issues) -> Self {
        Self::Invalid(issues)
    }
}

/// Checks a chunk against the upload so far and returns the upload as it stands once the chunk
/// is written. Until some bytes are received, every chunk (re)starts the upload.
pub fn accept(current: &Upload, chunk: &Chunk, max_bytes: u64) -> Result<Upload, Refusal> {
    let content_type = chunk.content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    if !CONTENT_TYPES.contains(&content_type.as_str()) {
        return Err(Refusal::UnsupportedType(content_type));
    }
    let mut issues = Issues::default();
    let declared = declared_digest(&mut issues, chunk.upload_checksum, chunk.x_audio_sha256);
    issues.into_result(())?;
    if chunk.offset != current.received {
        return Err(Refusal::Offset(current.received));
    }
    let fresh = current.received == 0;
    let size = match (fresh, current.size, chunk.upload_length) {
        (true, _, None) => return Err(invalid("Upload-Length", "is required on the first chunk")),
        (true, _, Some(n)) if n < 1 => return Err(invalid("Upload-Length", "must be at least 1 byte")),
        (true, _, Some(n)) if n as u64 > max_bytes => {
            return Err(Refusal::TooLarge(format!(
                "the audio is {n} bytes; the limit is {max_bytes} (MMT_AUDIO_MAX_BYTES)"
            )));
        }
        (true, _, Some(n)) => n,
        (false, Some(stored), Some(n)) if n != stored => {
            return Err(Refusal::Conflict(format!(
                "Upload-Length {n} differs from the {stored} bytes declared when the upload began"
            )));
        }
        (false, stored, _) => stored.unwrap_or_default(),
    };
    let sha256 = if fresh {
        declared
    } else {
        if current.content_type.as_deref() != Some(content_type.as_str()) {
            return Err(Refusal::Conflict(format!(
                "Content-Type {content_type} differs from the {} the upload began with",
                current.content_type.as_deref().unwrap_or_default()
            )));
        }
        if declared.is_some() && current.sha256.is_some() && declared != current.sha256 {
            return Err(Refusal::Conflict("the checksum differs from the one declared earlier".into()));
        }
        declared.or(current.sha256)
    };
    let end = chunk.offset + chunk.len;
    if end > size {
        return Err(Refusal::TooLarge(format!(
            "the chunk ends at byte {end}, past the declared Upload-Length of {size}"
        )));
    }
    if end == size && sha256.is_none() {
        return Err(invalid(
            "Upload-Checksum",
            "is required by the last chunk: `sha256 <hex or base64>` of the whole file (or X-Audio-SHA256)",
        ));
    }
    Ok(Upload { received: end, size: Some(size), content_type: Some(content_type), sha256 })
}

fn invalid(field: &str, message: &str) -> Refusal {
    let mut issues = Issues::default();
    issues.add(field, message);
    Refusal::Invalid(issues)
}

/// `Upload-Checksum: sha256 <hex or base64>` (as tus sends it) and `X-Audio-SHA256: <hex>`.
fn declared_digest(
    issues: &mut Issues,
    upload_checksum: Option<&str>,
    x_sha256: Option<&str>,
) -> Option<[u8; 32]> {
    let from_checksum = upload_checksum.and_then(|raw| match raw.trim().split_once(' ') {
        Some((algorithm, value)) if algorithm.eq_ignore_ascii_case("sha256") => {
            digest(issues, "Upload-Checksum", value)
        }
        _ => {
            issues.add("Upload-Checksum", "must be `sha256 <hex or base64 digest>`");
            None
        }
    });
    let from_header = x_sha256.and_then(|value| digest(issues, "X-Audio-SHA256", value));
    if from_checksum.is_some() && from_header.is_some() && from_checksum != from_header {
        issues.add("X-Audio-SHA256", "differs from Upload-Checksum");
    }
    from_checksum.or(from_header)
}

fn digest(issues: &mut Issues, field: &str, value: &str) -> Option<[u8; 32]> {
    let value = value.trim();
    let bytes = if value.len() == 64 { hex::decode(value).ok() } else { STANDARD.decode(value).ok() };
    let parsed = bytes.and_then(|b| <[u8; 32]>::try_from(b).ok());
    if parsed.is_none() {
        issues.add(field, "must be a SHA-256 digest, 64 hex digits or 44 base64 characters");
    }
    parsed
}

/// How to answer a `Range` header for a file of `len` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteRange {
    Whole,
    /// First and last byte, inclusive.
    Part(u64, u64),
    Unsatisfiable,
}

/// One `bytes=` range; anything else (other units, several ranges, malformed) is ignored and the
/// whole file is sent, as RFC 9110 allows.
pub fn byte_range(header: Option<&str>, len: u64) -> ByteRange {
    let Some((first, last)) =
        header.and_then(|h| h.trim().strip_prefix("bytes=")).and_then(|r| r.split_once('-'))
    else {
        return ByteRange::Whole;
    };
    let (first, last) = (first.trim(), last.trim());
    let range = match (first.parse::<u64>().ok(), last.parse::<u64>().ok()) {
        (None, Some(suffix)) if first.is_empty() => match suffix {
            0 => return ByteRange::Unsatisfiable,
            n => (len.saturating_sub(n), len.saturating_sub(1)),
        },
        (Some(a), None) if last.is_empty() => (a, len.saturating_sub(1)),
        (Some(a), Some(b)) if a <= b => (a, b.min(len.saturating_sub(1))),
        _ => return ByteRange::Whole,
    };
    if range.0 >= len { ByteRange::Unsatisfiable } else { ByteRange::Part(range.0, range.1) }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

    fn chunk(offset: i64, len: i64) -> Chunk<'static> {
        Chunk {
            offset,
            len,
            upload_length: Some(10),
            content_type: "audio/webm;codecs=opus",
            upload_checksum: None,
            x_audio_sha256: None,
        }
    }

    #[test]
    fn a_first_chunk_declares_the_upload_and_later_ones_must_agree() {
        let first = accept(&Upload::default(), &chunk(0, 4), 100).unwrap();
        assert_eq!(first.received, 4);
        assert_eq!(first.content_type.as_deref(), Some("audio/webm"));
        assert!(matches!(accept(&first, &chunk(3, 4), 100), Err(Refusal::Offset(4))));
        let other_length = Chunk { upload_length: Some(11), ..chunk(4, 4) };
        assert!(matches!(accept(&first, &other_length, 100), Err(Refusal::Conflict(_))));
        assert!(matches!(accept(&first, &chunk(4, 7), 100), Err(Refusal::TooLarge(_))));
        assert!(matches!(accept(&first, &chunk(4, 6), 100), Err(Refusal::Invalid(_))), "no checksum");
        let last = Chunk { upload_length: None, x_audio_sha256: Some(HEX), ..chunk(4, 6) };
        assert!(accept(&first, &last, 100).unwrap().complete());
        assert!(matches!(accept(&Upload::default(), &chunk(0, 4), 9), Err(Refusal::TooLarge(_))));
        let mp3 = Chunk { content_type: "video/mp4", ..chunk(0, 4) };
        assert!(matches!(accept(&Upload::default(), &mp3, 100), Err(Refusal::UnsupportedType(_))));
    }

    #[test]
    fn checksums_are_hex_or_base64_sha256() {
        let mut issues = Issues::default();
        let b64 = STANDARD.encode(hex::decode(HEX).unwrap());
        let from_b64 = declared_digest(&mut issues, Some(&format!("sha256 {b64}")), Some(HEX));
        assert!(issues.0.is_empty() && from_b64.is_some());
        declared_digest(&mut issues, Some(&format!("md5 {HEX}")), Some("abc"));
        assert_eq!(issues.0.len(), 2);
    }

    #[test]
    fn ranges_follow_rfc_9110() {
        assert_eq!(byte_range(None, 10), ByteRange::Whole);
        assert_eq!(byte_range(Some("bytes=0-3"), 10), ByteRange::Part(0, 3));
        assert_eq!(byte_range(Some("bytes=5-"), 10), ByteRange::Part(5, 9));
        assert_eq!(byte_range(Some("bytes=-3"), 10), ByteRange::Part(7, 9));
        assert_eq!(byte_range(Some("bytes=-30"), 10), ByteRange::Part(0, 9));
        assert_eq!(byte_range(Some("bytes=8-30"), 10), ByteRange::Part(8, 9));
        assert_eq!(byte_range(Some("bytes=10-"), 10), ByteRange::Unsatisfiable);
        assert_eq!(byte_range(Some("bytes=-0"), 10), ByteRange::Unsatisfiable);
        assert_eq!(byte_range(Some("bytes=4-2"), 10), ByteRange::Whole);
        assert_eq!(byte_range(Some("items=0-1"), 10), ByteRange::Whole);
    }
}
