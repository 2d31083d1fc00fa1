//! Background jobs: the kinds there are, their states, the one place transitions are decided, and
//! how long a failed attempt waits before the next.

use std::{fmt, time::Duration};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct JobId(pub [u8; 16]);

impl JobId {
    /// Time-ordered (uuid v7), so new rows land at the end of the primary key.
    pub fn generate() -> Self {
        Self(*uuid::Uuid::now_v7().as_bytes())
    }

    pub fn parse(s: &str) -> Option<Self> {
        uuid::Uuid::parse_str(s).ok().filter(|u| !u.is_nil()).map(|u| Self(*u.as_bytes()))
    }

    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        bytes.try_into().ok().map(Self)
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        uuid::Uuid::from_bytes(self.0).fmt(f)
    }
}

/// What a job does. Each kind has one handler, registered with the workers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobKind {
    /// Purges the sidecar's expired sign-in rows and old finished jobs; scheduled.
    Housekeeping,
    /// Delivers one webhook event to one subscriber.
    WebhookDeliver,
    /// Lapses unconfirmed appointment holds and, when enabled, marks no-shows; scheduled.
    AppointmentSweep,
    /// E-mails one prescription's PDF (`mmt_prescription_sends`).
    PrescriptionSend,
    /// Extracts a patient document's text, page by page (text layer, else Tesseract).
    DocumentOcr,
    /// Imports a supplier's product workbook into the catalogue.
    ProductImport,
    /// Seals again, under the newest data key, what older keys sealed (`mmt-sidecar rotate-key`).
    KeyRotation,
    /// Sends one filed note as HL7 `MDM^T02` to the configured receiver.
    Hl7Send,
    /// Writes a FHIR bulk export's NDJSON files (`Patient/$export`, `Group/{id}/$export`).
    FhirExport,
}

impl JobKind {
    pub const ALL: [Self; 9] = [
        Self::Housekeeping,
        Self::WebhookDeliver,
        Self::AppointmentSweep,
        Self::PrescriptionSend,
        Self::DocumentOcr,
        Self::ProductImport,
        Self::KeyRotation,
        Self::Hl7Send,
        Self::FhirExport,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Housekeeping => "housekeeping",
            Self::WebhookDeliver => "webhook.deliver",
            Self::AppointmentSweep => "appointment.sweep",
            Self::PrescriptionSend => "prescription.send",
            Self::DocumentOcr => "document.ocr",
            Self::ProductImport => "product.import",
            Self::KeyRotation => "key.rotate",
            Self::Hl7Send => "hl7.send",
            Self::FhirExport => "fhir.export",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Attempts before a job that keeps failing ends `failed`.
    pub fn max_attempts(self) -> u32 {
        match self {
            // The next period runs it again anyway.
            Self::Housekeeping
            | Self::AppointmentSweep
            | Self::DocumentOcr
            | Self::ProductImport
            | Self::KeyRotation
            | Self::FhirExport => 3,
            // A subscriber may be down for a while: with the default backoff (1 s doubling to
            // the 1 h cap) these attempts span about a day.
            Self::WebhookDeliver => 36,
            // A mail server restarting or greylisting, a receiver down: with the default backoff
            // about 17 minutes.
            Self::PrescriptionSend | Self::Hl7Send => 10,
        }
    }
}

impl fmt::Display for JobKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobState {
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

impl JobState {
    pub const ALL: [Self; 5] = [Self::Queued, Self::Running, Self::Succeeded, Self::Failed, Self::Cancelled];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobAction {
    /// A worker takes the job: a queued one that is due, or a running one whose lease lapsed.
    Claim,
    Succeed,
    /// The attempt failed and another is allowed later.
    Retry,
    Fail,
    Cancel,
}

impl JobAction {
    pub const ALL: [Self; 5] = [Self::Claim, Self::Succeed, Self::Retry, Self::Fail, Self::Cancel];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Claim => "claim",
            Self::Succeed => "succeed",
            Self::Retry => "retry",
            Self::Fail => "fail",
            Self::Cancel => "cancel",
        }
    }

    fn target(self, from: JobState) -> Option<JobState> {
        use JobState::*;
        match (self, from) {
            (Self::Claim, Queued | Running) => Some(Running),
            (Self::Succeed, Running) => Some(Succeeded),
            (Self::Retry, Running) => Some(Queued),
            (Self::Fail, Running) => Some(Failed),
            (Self::Cancel, Queued | Running) => Some(Cancelled),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot {} a job that is {current}", action.as_str())]
pub struct IllegalJobTransition {
    pub current: JobState,
    pub action: JobAction,
}

/// The lifecycle, decided here and nowhere else:
/// queued → running → succeeded | failed | cancelled; running → queued (retry later);
/// queued → cancelled; running → running (claimed again after its worker's lease lapsed).
pub fn transition(from: JobState, action: JobAction) -> Result<JobState, IllegalJobTransition> {
    action.target(from).ok_or(IllegalJobTransition { current: from, action })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelOutcome {
    /// The job had not started and is now cancelled.
    Cancelled,
    /// The job is running; its handler sees the request and stops, ending it cancelled.
    Requested,
}

/// A running handler may hold work half done that only it can stop cleanly, so it is asked.
pub fn request_cancel(from: JobState) -> Result<CancelOutcome, IllegalJobTransition> {
    transition(from, JobAction::Cancel)?;
    Ok(if from == JobState::Running { CancelOutcome::Requested } else { CancelOutcome::Cancelled })
}

/// Whether a job that has been claimed `attempts` times may be claimed again.
pub fn has_attempts_left(attempts: u32, max_attempts: u32) -> bool {
    attempts < max_attempts
}

/// Exponential backoff with a cap: `base`, `2·base`, `4·base`, … never more than `cap`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub base: Duration,
    pub cap: Duration,
}

impl Backoff {
    /// The wait after failed attempt number `attempt` (1 for the first).
    pub fn delay(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1));
        self.base.saturating_mul(factor).min(self.cap)
    }
}

/// Progress as stored: a percentage and a message that fits its column (255 characters).
pub fn progress(percent: u8, message: &str) -> (u8, String) {
    (percent.min(100), message.chars().take(255).collect())
}

/// A handler's error as stored; an overlong one must not make recording the failure fail too.
pub fn error_text(message: &str) -> String {
    message.chars().take(2000).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lifecycle_allows_exactly_these_steps() {
        use JobAction::*;
        use JobState::*;
        let allowed = [
            (Queued, Claim, Running),
            (Running, Claim, Running),
            (Running, Succeed, Succeeded),
            (Running, Retry, Queued),
            (Running, Fail, Failed),
            (Queued, Cancel, Cancelled),
            (Running, Cancel, Cancelled),
        ];
        for from in JobState::ALL {
            for action in JobAction::ALL {
                let expected =
                    allowed.iter().find(|(f, a, _)| *f == from && *a == action).map(|(_, _, to)| *to);
                assert_eq!(transition(from, action).ok(), expected, "{from} --{}-->", action.as_str());
            }
        }
    }

    #[test]
    fn finished_jobs_cannot_change() {
        for from in [JobState::Succeeded, JobState::Failed, JobState::Cancelled] {
            for action in JobAction::ALL {
                let err = transition(from, action).unwrap_err();
                assert_eq!(err, IllegalJobTransition { current: from, action });
            }
            assert!(request_cancel(from).unwrap_err().to_string().contains(from.as_str()));
        }
    }

    #[test]
    fn cancelling_a_running_job_asks_its_handler() {
        assert_eq!(request_cancel(JobState::Queued), Ok(CancelOutcome::Cancelled));
        assert_eq!(request_cancel(JobState::Running), Ok(CancelOutcome::Requested));
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let b = Backoff { base: Duration::from_secs(1), cap: Duration::from_secs(60) };
        let delays: Vec<u64> = (1..=8).map(|a| b.delay(a).as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 32, 60, 60]);
        assert_eq!(b.delay(u32::MAX), Duration::from_secs(60), "no overflow");
        assert_eq!(b.delay(0), Duration::from_secs(1));
    }

    #[test]
    fn attempts_stop_at_the_maximum() {
        assert!(has_attempts_left(1, 3) && has_attempts_left(2, 3));
        assert!(!has_attempts_left(3, 3) && !has_attempts_left(4, 3));
    }

    #[test]
    fn kinds_and_states_round_trip() {
        for kind in JobKind::ALL {
            assert_eq!(JobKind::parse(kind.as_str()), Some(kind));
            assert!(kind.max_attempts() >= 1);
        }
        for state in JobState::ALL {
            assert_eq!(JobState::parse(state.as_str()), Some(state));
        }
        assert_eq!(JobKind::parse("ocr"), None);
    }

    #[test]
    fn ids_are_uuids_and_progress_fits_its_columns() {
        let id = JobId::generate();
        assert_eq!(JobId::parse(&id.to_string()), Some(id));
        assert_eq!(JobId::parse("00000000-0000-0000-0000-000000000000"), None);
        assert_eq!(JobId::parse("nope"), None);
        let (pct, msg) = progress(150, &"é".repeat(300));
        assert_eq!((pct, msg.chars().count()), (100, 255));
        assert_eq!(error_text(&"x".repeat(5000)).len(), 2000);
    }
}
