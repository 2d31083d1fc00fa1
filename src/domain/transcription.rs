//! Transcriptions of dictated visits: their states, the one place transitions are decided, and
//! what makes a transcription or a segment valid.

use std::fmt;

use crate::domain::validation::Issues;

/// A transcription's id: a UUID the client generates, so a retried create is recognised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TranscriptionId(pub [u8; 16]);

impl TranscriptionId {
    pub fn parse(s: &str) -> Option<Self> {
        uuid::Uuid::parse_str(s).ok().filter(|u| !u.is_nil()).map(|u| Self(*u.as_bytes()))
    }

    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        bytes.try_into().ok().map(Self)
    }

    /// Fits OpenEMR's `form_clinical_notes.external_id` (varchar 30), so a filed note names its source.
    pub fn external_id(&self) -> String {
        use base64::Engine;
        format!("mmt-{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(self.0))
    }
}

impl fmt::Display for TranscriptionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        uuid::Uuid::from_bytes(self.0).fmt(f)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TranscriptionStatus {
    Draft,
    PendingReview,
    Approved,
    Rejected,
    Filed,
    Cancelled,
}

impl TranscriptionStatus {
    pub const ALL: [Self; 6] =
        [Self::Draft, Self::PendingReview, Self::Approved, Self::Rejected, Self::Filed, Self::Cancelled];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "draft",
            Self::PendingReview => "pending_review",
            Self::Approved => "approved",
            Self::Rejected => "rejected",
            Self::Filed => "filed",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// Only a draft's text, details and segments may change.
    pub fn is_editable(self) -> bool {
        self == Self::Draft
    }
}

impl fmt::Display for TranscriptionStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Submit,
    Approve,
    Reject,
    Reopen,
    Cancel,
    File,
}

impl Action {
    pub const ALL: [Self; 6] =
        [Self::Submit, Self::Approve, Self::Reject, Self::Reopen, Self::Cancel, Self::File];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Submit => "submit",
            Self::Approve => "approve",
            Self::Reject => "reject",
            Self::Reopen => "reopen",
            Self::Cancel => "cancel",
            Self::File => "integrate_with_openemr",
        }
    }

    /// The state this action leads to from `from`, if the workflow allows it there.
    fn target(self, from: TranscriptionStatus) -> Option<TranscriptionStatus> {
        use TranscriptionStatus::*;
        match (self, from) {
            (Self::Submit, Draft) => Some(PendingReview),
            (Self::Approve, PendingReview) => Some(Approved),
            (Self::Reject, PendingReview) => Some(Rejected),
            (Self::Reopen, Rejected) => Some(Draft),
            (Self::Cancel, Draft | Rejected) => Some(Cancelled),
            (Self::File, Approved) => Some(Filed),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot {} a transcription that is {current}; allowed now: {}", action.as_str(), allowed_list(.allowed))]
pub struct IllegalTransition {
    pub current: TranscriptionStatus,
    pub action: Action,
    pub allowed: Vec<Action>,
}

fn allowed_list(allowed: &[Action]) -> String {
    if allowed.is_empty() {
        "nothing (this is a final state)".into()
    } else {
        allowed.iter().map(|a| a.as_str()).collect::<Vec<_>>().join(", ")
    }
}

/// The workflow, decided here and nowhere else:
/// draft → pending_review → approved → filed; pending_review → rejected → draft;
/// draft | rejected → cancelled.
pub fn transition(
    from: TranscriptionStatus,
    action: Action,
) -> Result<TranscriptionStatus, IllegalTransition> {
    action.target(from).ok_or_else(|| IllegalTransition {
        current: from,
        action,
        allowed: allowed_from(from),
    })
}

pub fn allowed_from(from: TranscriptionStatus) -> Vec<Action> {
    Action::ALL.into_iter().filter(|a| a.target(from).is_some()).collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpeakerRole {
    Clinician,
    Patient,
    Other,
    Unknown,
}

impl SpeakerRole {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Clinician => "clinician",
            Self::Patient => "patient",
            Self::Other => "other",
            Self::Unknown => "unknown",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Clinician, Self::Patient, Self::Other, Self::Unknown].into_iter().find(|r| r.as_str() == s)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    pub seq: u32,
    pub start_ms: u32,
    pub end_ms: u32,
    pub speaker_label: String,
    pub speaker_role: SpeakerRole,
    pub text: String,
    pub confidence: Option<f64>,
    pub edited_by_human: bool,
}

pub struct SegmentInput {
    pub seq: Option<u32>,
    pub start_ms: i64,
    pub end_ms: i64,
    pub speaker_label: Option<String>,
    pub speaker_role: Option<String>,
    pub text: String,
    pub confidence: Option<f64>,
    pub edited_by_human: Option<bool>,
}

pub const MAX_SEGMENTS: usize = 5000;
/// Filing writes the note to OpenEMR's `form_clinical_notes.description`, a TEXT column.
pub const MAX_NOTE_BYTES: usize = 65_535;
/// `mmt_transcription_segments.text` is a TEXT column too.
const MAX_SEGMENT_BYTES: usize = 65_535;

/// Validates segments in order; a missing `seq` takes its position. Sequence numbers must be
/// unique, times must run forward within a segment, and confidence is a probability.
pub fn validate_segments(inputs: Vec<SegmentInput>, issues: &mut Issues) -> Vec<Segment> {
    if inputs.len() > MAX_SEGMENTS {
        issues.add("segments", format!("at most {MAX_SEGMENTS} segments per request"));
        return Vec::new();
    }
    let mut seen = std::collections::HashSet::new();
    inputs
        .into_iter()
        .enumerate()
        .filter_map(|(i, s)| {
            let field = |name: &str| format!("segments[{i}].{name}");
            let seq = s.seq.unwrap_or(i as u32);
            if !seen.insert(seq) {
                issues.add(&field("seq"), format!("{seq} is used twice"));
            }
            let in_range = |v: i64| (0..=i64::from(u32::MAX)).contains(&v);
            if !in_range(s.start_ms) {
                issues.add(&field("start_ms"), "must be a non-negative number of milliseconds");
            }
            if !in_range(s.end_ms) || s.end_ms < s.start_ms {
                issues.add(&field("end_ms"), "must not be before start_ms");
            }
            if s.confidence.is_some_and(|c| !(0.0..=1.0).contains(&c) || c.is_nan()) {
                issues.add(&field("confidence"), "must be between 0 and 1");
            }
            let role = match s.speaker_role.as_deref() {
                None => Some(SpeakerRole::Unknown),
                Some(r) => SpeakerRole::parse(r).or_else(|| {
                    issues.add(&field("speaker_role"), "must be clinician, patient, other or unknown");
                    None
                }),
            };
            let text = issues.prose(&field("text"), &s.text, 0, 20_000);
            issues.within_bytes(&field("text"), &text, MAX_SEGMENT_BYTES);
            let label =
                issues.text(&field("speaker_label"), s.speaker_label.as_deref().unwrap_or_default(), 0, 64);
            Some(Segment {
                seq,
                start_ms: s.start_ms.clamp(0, i64::from(u32::MAX)) as u32,
                end_ms: s.end_ms.clamp(0, i64::from(u32::MAX)) as u32,
                speaker_label: label,
                speaker_role: role?,
                text,
                confidence: s.confidence,
                edited_by_human: s.edited_by_human.unwrap_or(false),
            })
        })
        .collect()
}

/// The note a transcription starts with when the client sends segments but no text.
pub fn text_from_segments(segments: &[Segment]) -> String {
    let mut ordered: Vec<&Segment> = segments.iter().collect();
    ordered.sort_by_key(|s| s.seq);
    ordered.iter().map(|s| s.text.trim()).filter(|t| !t.is_empty()).collect::<Vec<_>>().join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use TranscriptionStatus::*;

    #[test]
    fn ids_round_trip_and_fit_openemrs_external_id() {
        let id = TranscriptionId::parse("0192f0c3-7c1e-7a55-9d33-2b8f6a0e4c11").unwrap();
        assert_eq!(id.to_string(), "0192f0c3-7c1e-7a55-9d33-2b8f6a0e4c11");
        assert!(id.external_id().len() <= 30);
        assert_eq!(TranscriptionId::parse("00000000-0000-0000-0000-000000000000"), None);
        assert_eq!(TranscriptionId::parse("not-a-uuid"), None);
    }

    #[test]
    fn every_legal_transition() {
        for (from, action, to) in [
            (Draft, Action::Submit, PendingReview),
            (PendingReview, Action::Approve, Approved),
            (PendingReview, Action::Reject, Rejected),
            (Rejected, Action::Reopen, Draft),
            (Draft, Action::Cancel, Cancelled),
            (Rejected, Action::Cancel, Cancelled),
            (Approved, Action::File, Filed),
        ] {
            assert_eq!(transition(from, action), Ok(to), "{from} {}", action.as_str());
        }
    }

    #[test]
    fn every_other_pair_is_illegal_and_names_the_allowed_actions() {
        let legal = 7;
        let mut illegal = 0;
        for from in TranscriptionStatus::ALL {
            for action in Action::ALL {
                if let Err(e) = transition(from, action) {
                    illegal += 1;
                    assert_eq!(e.allowed, allowed_from(from));
                    assert!(e.to_string().contains(from.as_str()));
                }
            }
        }
        assert_eq!(illegal, 36 - legal);
        let e = transition(Filed, Action::Approve).unwrap_err();
        assert_eq!(
            e.to_string(),
            "cannot approve a transcription that is filed; allowed now: nothing (this is a final state)"
        );
        let e = transition(Draft, Action::Approve).unwrap_err();
        assert_eq!(
            e.to_string(),
            "cannot approve a transcription that is draft; allowed now: submit, cancel"
        );
    }

    fn seg(seq: Option<u32>, start: i64, end: i64, conf: Option<f64>) -> SegmentInput {
        SegmentInput {
            seq,
            start_ms: start,
            end_ms: end,
            speaker_label: Some("SPEAKER_0".into()),
            speaker_role: Some("clinician".into()),
            text: "Patient reports a dry cough.".into(),
            confidence: conf,
            edited_by_human: None,
        }
    }

    #[test]
    fn segments_are_validated_field_by_field() {
        let mut issues = Issues::default();
        validate_segments(
            vec![seg(Some(1), 0, 900, Some(0.93)), seg(Some(1), 500, 400, Some(1.5))],
            &mut issues,
        );
        let fields: Vec<_> = issues.0.iter().map(|i| i.field.as_str()).collect();
        assert_eq!(fields, ["segments[1].seq", "segments[1].end_ms", "segments[1].confidence"]);
    }

    #[test]
    fn text_is_assembled_in_sequence_order() {
        let mut issues = Issues::default();
        let mut a = seg(Some(2), 1000, 2000, None);
        a.text = "Second.".into();
        let mut b = seg(Some(1), 0, 900, None);
        b.text = "First.".into();
        let segments = validate_segments(vec![a, b], &mut issues);
        assert_eq!(text_from_segments(&segments), "First.\nSecond.");
    }
}
