//! What a user is notified of, and what each notification is about (ids only, never PHI).

/// The kinds of notification, each also the kind of its live event on topic `notification`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotificationKind {
    /// A message was sent or replied to the user.
    MessageReceived,
    /// A reviewer sent the user's transcription back for changes.
    TranscriptionChangesRequested,
    /// Someone else booked an appointment with the user as provider.
    AppointmentBooked,
    /// Someone else cancelled one of the user's appointments.
    AppointmentCancelled,
    /// A job the user queued ended failed.
    JobFailed,
    /// A new chat message in a room whose messages the user had all read.
    ChatMessage,
    /// The text of a document the user sent to OCR has been extracted.
    DocumentTextReady,
    /// A clinician broke the glass to reach a patient outside their panel (to the patient's
    /// primary provider and the administrators).
    BreakGlass,
    /// A booking's online payment came after its slot was lost and went back to the card (to
    /// whoever opened the checkout).
    PaymentRefunded,
}

impl NotificationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MessageReceived => "message.received",
            Self::TranscriptionChangesRequested => "transcription.changes_requested",
            Self::AppointmentBooked => "appointment.booked",
            Self::AppointmentCancelled => "appointment.cancelled",
            Self::JobFailed => "job.failed",
            Self::ChatMessage => "chat.message",
            Self::DocumentTextReady => "document.text_ready",
            Self::BreakGlass => "patient.break_glass",
            Self::PaymentRefunded => "payment.refunded",
        }
    }
}

/// The record a notification points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// `pnotes.id`
    Message(i64),
    /// `mmt_transcriptions.id`
    Transcription(String),
    /// `pc_eid`
    Appointment(i64),
    /// `mmt_jobs.id`
    Job(String),
    /// `mmt_chat_rooms.id`
    ChatRoom(u64),
    /// `documents.id`
    Document(i64),
    /// `patient_data.pid`
    Patient(i64),
}

impl Subject {
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Message(_) => "message",
            Self::Transcription(_) => "transcription",
            Self::Appointment(_) => "appointment",
            Self::Job(_) => "job",
            Self::ChatRoom(_) => "chat_room",
            Self::Document(_) => "document",
            Self::Patient(_) => "patient",
        }
    }

    pub fn id(&self) -> String {
        match self {
            Self::Message(id) | Self::Appointment(id) | Self::Document(id) | Self::Patient(id) => {
                id.to_string()
            }
            Self::Transcription(id) | Self::Job(id) => id.clone(),
            Self::ChatRoom(id) => id.to_string(),
        }
    }

    pub fn message_id(&self) -> Option<i64> {
        match self {
            Self::Message(id) => Some(*id),
            _ => None,
        }
    }
}

/// A change the user made themselves is no news to them.
pub fn worth_telling(recipient: i64, actor: i64) -> bool {
    recipient != actor && recipient > 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_valid_event_kinds_and_subjects_name_their_record() {
        for kind in [
            NotificationKind::MessageReceived,
            NotificationKind::TranscriptionChangesRequested,
            NotificationKind::AppointmentBooked,
            NotificationKind::AppointmentCancelled,
            NotificationKind::JobFailed,
            NotificationKind::ChatMessage,
            NotificationKind::DocumentTextReady,
            NotificationKind::BreakGlass,
            NotificationKind::PaymentRefunded,
        ] {
            assert!(crate::domain::event::Kind::parse(kind.as_str()).is_ok(), "{kind:?}");
        }
        assert_eq!((Subject::Message(7).kind(), Subject::Message(7).id()), ("message", "7".into()));
        assert_eq!(Subject::Message(7).message_id(), Some(7));
        assert_eq!(Subject::Job("ab12".into()).message_id(), None);
        assert!(worth_telling(3, 2) && !worth_telling(2, 2) && !worth_telling(0, 2));
    }
}
