//! Live chat rules: rooms about a patient or an appointment, what a message may hold, how fast
//! one user may post, and the events a room's members receive.

use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use serde_json::json;

use crate::domain::{
    event::{Kind, NewEvent, Topic},
    patient::Pid,
    throttle::ThrottlePolicy,
    user::UserId,
    validation::Issues,
};

pub const TITLE_CHARS: usize = 255;
/// One message: a few paragraphs. Longer ones are refused with 413, not cut.
pub const TEXT_CHARS: usize = 4000;
/// `mmt_chat_messages.text` is a TEXT column; 4 bytes per character at most.
pub const TEXT_BYTES: usize = 4 * TEXT_CHARS;
pub const MAX_MEMBERS: usize = 50;
/// An OpenEMR username (`users.username` is varchar(255)).
const NAME_CHARS: usize = 255;

/// Messages one user may post, over all rooms, within the window.
pub fn rate_limit() -> ThrottlePolicy {
    ThrottlePolicy { max_failures: 20, window: Duration::seconds(10) }
}

/// A member's typing indicators reach the room at most this often.
pub fn typing_every() -> Duration {
    Duration::seconds(3)
}

/// A room's id; its live events go on topic `chat:<id>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RoomId(pub u64);

impl RoomId {
    pub fn topic(self) -> Topic {
        Topic::parse(&format!("chat:{}", self.0)).expect("chat:<digits> is a topic")
    }
}

/// What a room is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    Patient(Pid),
    /// An appointment (`pc_eid`): a consultation, about its patient when it has one.
    Appointment(u32),
}

/// A new room as the client sent it.
pub struct RoomInput {
    pub pid: Option<i64>,
    pub appointment_id: Option<i64>,
    pub title: Option<String>,
    /// Usernames besides the creator, who is always a member.
    pub members: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct NewRoom {
    pub subject: Subject,
    pub title: String,
    pub members: Vec<String>,
}

impl RoomInput {
    pub fn validate(self) -> Result<NewRoom, Issues> {
        let mut issues = Issues::default();
        let subject = match (self.pid, self.appointment_id) {
            (Some(pid), None) if pid > 0 => Some(Subject::Patient(Pid(pid))),
            (Some(_), None) => {
                issues.add("pid", "must be a patient's pid");
                None
            }
            (None, Some(eid)) => match u32::try_from(eid) {
                Ok(eid) if eid > 0 => Some(Subject::Appointment(eid)),
                _ => {
                    issues.add("appointment_id", "must be an appointment's id");
                    None
                }
            },
            _ => {
                issues.add("pid", "give either `pid` or `appointment_id`: what the room is about");
                None
            }
        };
        let title = issues.text("title", self.title.as_deref().unwrap_or(""), 0, TITLE_CHARS);
        let members = usernames(&mut issues, "members", &self.members);
        match subject {
            Some(subject) => issues.into_result(NewRoom { subject, title, members }),
            None => Err(issues),
        }
    }
}

/// Distinct, checked usernames, each invalid one named as `field[i]`.
pub fn usernames(issues: &mut Issues, field: &str, names: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let name = issues.text(&format!("{field}[{i}]"), name, 1, NAME_CHARS);
        if !out.contains(&name) {
            out.push(name);
        }
    }
    if out.len() > MAX_MEMBERS {
        issues.add(field, format!("at most {MAX_MEMBERS} members"));
    }
    out
}

#[derive(Debug)]
pub enum TextError {
    /// More than [`TEXT_CHARS`] characters or [`TEXT_BYTES`] bytes.
    TooLarge,
    Invalid(Issues),
}

/// A message's text: at least one visible character, line breaks allowed.
pub fn message_text(text: &str) -> Result<String, TextError> {
    if text.chars().count() > TEXT_CHARS || text.len() > TEXT_BYTES {
        return Err(TextError::TooLarge);
    }
    let mut issues = Issues::default();
    let text = issues.prose("text", text, 1, TEXT_CHARS);
    issues.into_result(text).map_err(TextError::Invalid)
}

/// A member is told about a new message only when it starts their unread run: they had read
/// everything before it. Later messages of the run would only repeat the news.
pub fn starts_unread_run(read_up_to: u64, previous_last: u64) -> bool {
    read_up_to >= previous_last
}

/// One line of a transcript filed to the chart.
pub struct TranscriptLine<'a> {
    /// Local wall-clock time, as OpenEMR dates its notes.
    pub at: NaiveDateTime,
    pub author: &'a str,
    pub text: &'a str,
}

/// The transcript as one note: a heading, then `YYYY-mm-dd HH:MM author: text` per message.
pub fn transcript(room: RoomId, title: &str, lines: &[TranscriptLine<'_>]) -> String {
    let heading = if title.is_empty() {
        format!("Chat transcript (room {})", room.0)
    } else {
        format!("Chat transcript (room {}): {title}", room.0)
    };
    let mut out = heading;
    for line in lines {
        out.push('\n');
        out.push_str(&format!("{} {}: {}", line.at.format("%Y-%m-%d %H:%M"), line.author, line.text));
    }
    out
}

/// A member's copy of a room event: chat events go to each member by name, so only members
/// receive them, whatever topics a client subscribes to.
fn event(room: RoomId, kind: &str, to: UserId, data: serde_json::Value) -> NewEvent {
    NewEvent {
        topic: room.topic(),
        kind: Kind::parse(kind).expect("chat kinds are valid names"),
        recipient: Some(to),
        data,
    }
}

/// What a member is sent about a message: its text too, so a chat needs no extra round trip.
pub struct MessageNews<'a> {
    pub room: RoomId,
    pub id: u64,
    pub author: &'a str,
    pub text: &'a str,
    pub at: DateTime<Utc>,
}

impl MessageNews<'_> {
    pub fn event(&self, to: UserId) -> NewEvent {
        let data = json!({ "room": self.room.0, "id": self.id, "author": self.author, "text": self.text, "at": self.at });
        event(self.room, "chat.message", to, data)
    }
}

/// `user` has read up to message `up_to`.
pub fn read_event(room: RoomId, user: &str, up_to: u64, to: UserId) -> NewEvent {
    event(room, "chat.read", to, json!({ "room": room.0, "user": user, "up_to": up_to }))
}

pub fn typing_event(room: RoomId, user: &str, to: UserId) -> NewEvent {
    event(room, "chat.typing", to, json!({ "room": room.0, "user": user }))
}

/// `added` is true when `user` joined, false when they left or were removed.
pub fn member_event(room: RoomId, user: &str, added: bool, to: UserId) -> NewEvent {
    let kind = if added { "chat.member.added" } else { "chat.member.removed" };
    event(room, kind, to, json!({ "room": room.0, "user": user }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(pid: Option<i64>, eid: Option<i64>) -> RoomInput {
        RoomInput { pid, appointment_id: eid, title: None, members: vec!["nkim".into(), "nkim".into()] }
    }

    #[test]
    fn a_room_is_about_a_patient_or_an_appointment() {
        let room = input(Some(3), None).validate().unwrap();
        assert_eq!((room.subject, room.members.len()), (Subject::Patient(Pid(3)), 1));
        assert_eq!(input(None, Some(9)).validate().unwrap().subject, Subject::Appointment(9));
        for (pid, eid, field) in [
            (None, None, "pid"),
            (Some(3), Some(9), "pid"),
            (Some(0), None, "pid"),
            (None, Some(-1), "appointment_id"),
        ] {
            assert_eq!(input(pid, eid).validate().unwrap_err().0[0].field, field);
        }
        let crowd = RoomInput { members: (0..51).map(|i| format!("u{i}")).collect(), ..input(Some(3), None) };
        assert_eq!(crowd.validate().unwrap_err().0[0].field, "members");
    }

    #[test]
    fn message_text_is_bounded_and_not_blank() {
        assert_eq!(message_text(" hi\nthere ").unwrap(), "hi\nthere");
        assert!(matches!(message_text("  "), Err(TextError::Invalid(_))));
        assert!(message_text(&"a".repeat(TEXT_CHARS)).is_ok());
        assert!(matches!(message_text(&"a".repeat(TEXT_CHARS + 1)), Err(TextError::TooLarge)));
    }

    #[test]
    fn only_the_first_unread_message_notifies() {
        assert!(starts_unread_run(7, 7));
        assert!(!starts_unread_run(6, 7));
    }

    #[test]
    fn transcript_lines_read_like_openemr_notes() {
        let at = NaiveDateTime::parse_from_str("2026-11-30 09:05:41", "%Y-%m-%d %H:%M:%S").unwrap();
        let lines = [
            TranscriptLine { at, author: "drgarcia", text: "BP?" },
            TranscriptLine { at, author: "nkim", text: "128/82" },
        ];
        assert_eq!(
            transcript(RoomId(4), "Consult", &lines),
            "Chat transcript (room 4): Consult\n2026-11-30 09:05 drgarcia: BP?\n2026-11-30 09:05 nkim: 128/82"
        );
    }

    #[test]
    fn room_events_go_to_one_member_on_the_room_topic() {
        let e = read_event(RoomId(4), "nkim", 12, UserId(5));
        assert_eq!(
            (e.topic.as_str(), e.kind.as_str(), e.recipient),
            ("chat:4", "chat.read", Some(UserId(5)))
        );
        assert_eq!(e.data["up_to"], 12);
    }
}
