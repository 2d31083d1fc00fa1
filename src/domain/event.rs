//! Live updates: events, their topics and kinds, and which events reach which caller.

use std::collections::{HashSet, VecDeque};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::user::{Caller, UserId};

/// The length of `mmt_events.topic`.
const MAX_TOPIC_LEN: usize = 128;
/// The length of `mmt_events.kind`.
const MAX_KIND_LEN: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error(
        "`{0}` is not a topic: lowercase letters, digits and `_` (e.g. `job`), optionally `:` and an \
         instance of letters, digits, `_`, `.` or `-` (e.g. `chat:42`), at most 128 characters"
    )]
    Topic(String),
    #[error(
        "`{0}` is not an event kind: dot-separated lowercase words (e.g. `job.progress`), at most 64 characters"
    )]
    Kind(String),
    #[error("at most {} topics at once", TopicFilter::MAX_TOPICS)]
    TooManyTopics,
}

/// A stream of related events: `job`, `notification`, `transcription`, `appointment`, or a family
/// with an instance such as `chat:<room>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Topic(String);

impl Topic {
    pub fn parse(name: &str) -> Result<Self, NameError> {
        let (family, instance) = match name.split_once(':') {
            Some((family, instance)) => (family, Some(instance)),
            None => (name, None),
        };
        let instance_ok = instance.is_none_or(|i| {
            !i.is_empty() && i.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
        });
        if name.len() <= MAX_TOPIC_LEN && is_word(family) && instance_ok {
            Ok(Self(name.to_string()))
        } else {
            Err(NameError::Topic(name.to_string()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `chat` for `chat:42`; the whole name when it has no instance.
    fn family(&self) -> &str {
        self.0.split_once(':').map_or(&self.0, |(family, _)| family)
    }

    fn has_instance(&self) -> bool {
        self.0.contains(':')
    }
}

/// What happened, e.g. `job.progress` or `transcription.approved`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Kind(String);

impl Kind {
    pub fn parse(name: &str) -> Result<Self, NameError> {
        if name.len() <= MAX_KIND_LEN && name.split('.').all(is_word) {
            Ok(Self(name.to_string()))
        } else {
            Err(NameError::Kind(name.to_string()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn is_word(s: &str) -> bool {
    s.bytes().next().is_some_and(|b| b.is_ascii_lowercase())
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

macro_rules! string_conversions {
    ($ty:ident) => {
        impl TryFrom<String> for $ty {
            type Error = NameError;
            fn try_from(s: String) -> Result<Self, NameError> {
                Self::parse(&s)
            }
        }

        impl From<$ty> for String {
            fn from(v: $ty) -> String {
                v.0
            }
        }
    };
}
string_conversions!(Topic);
string_conversions!(Kind);

/// An event to be written. `data` holds ids and small state only, never PHI beyond ids; a chat
/// message's event, addressed to one room member, carries its text.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub topic: Topic,
    pub kind: Kind,
    /// Who may receive it; `None`: every signed-in user but guests.
    pub recipient: Option<UserId>,
    pub data: serde_json::Value,
}

/// A written event. Its id orders events and is what a client resumes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub id: u64,
    pub topic: Topic,
    pub kind: Kind,
    pub recipient: Option<UserId>,
    pub data: serde_json::Value,
    pub at: DateTime<Utc>,
}

impl NewEvent {
    /// `job.progress` on topic `job`, for the user who queued the job.
    pub fn job_progress(job_id: &str, queued_by: UserId, pct: u8, message: &str) -> Self {
        Self {
            topic: Topic("job".into()),
            kind: Kind("job.progress".into()),
            recipient: Some(queued_by),
            data: serde_json::json!({ "job_id": job_id, "progress": pct.min(100), "message": message }),
        }
    }

    pub fn written(self, id: u64, at: DateTime<Utc>) -> Event {
        Event { id, topic: self.topic, kind: self.kind, recipient: self.recipient, data: self.data, at }
    }
}

/// An event with a recipient reaches that user alone; one without reaches every signed-in user.
/// Guests, who may see no PHI, receive none.
pub fn may_receive(caller: &Caller, event: &Event) -> bool {
    !caller.is_guest() && event.recipient.is_none_or(|user| user == caller.user_id)
}

/// The topics a client asked for; none means every topic. A family name (`chat`) selects each of
/// its instances (`chat:42`).
#[derive(Debug, Clone, Default)]
pub struct TopicFilter(Vec<Topic>);

impl TopicFilter {
    /// Longer lists are refused: each entry is checked against every event.
    const MAX_TOPICS: usize = 32;

    pub fn parse<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<Self, NameError> {
        let topics: Vec<Topic> =
            names.into_iter().map(|n| Topic::parse(n.trim())).collect::<Result<_, _>>()?;
        if topics.len() > Self::MAX_TOPICS {
            return Err(NameError::TooManyTopics);
        }
        Ok(Self(topics))
    }

    /// The instances asked for by name in `family` (`42` for `chat:42`).
    pub fn instances<'a>(&'a self, family: &'a str) -> impl Iterator<Item = &'a str> {
        self.0
            .iter()
            .filter(move |t| t.family() == family)
            .filter_map(|t| t.0.split_once(':').map(|(_, i)| i))
    }

    pub fn matches(&self, topic: &Topic) -> bool {
        self.0.is_empty()
            || self.0.iter().any(|t| t == topic || (!t.has_instance() && t.family() == topic.family()))
    }
}

/// The ids a stream sent most recently, so an event that reaches it both from a replay and live
/// is sent once. Overlaps only involve recent events, so a bounded window suffices.
#[derive(Debug)]
pub struct Delivered {
    recent: VecDeque<u64>,
    ids: HashSet<u64>,
    highest: u64,
}

impl Delivered {
    const WINDOW: usize = 4096;

    /// A stream whose client has everything up to `after`.
    pub fn after(after: u64) -> Self {
        Self { recent: VecDeque::new(), ids: HashSet::new(), highest: after }
    }

    /// Records `id`; false when it was already sent.
    pub fn first_time(&mut self, id: u64) -> bool {
        if !self.ids.insert(id) {
            return false;
        }
        self.recent.push_back(id);
        if self.recent.len() > Self::WINDOW
            && let Some(oldest) = self.recent.pop_front()
        {
            self.ids.remove(&oldest);
        }
        self.highest = self.highest.max(id);
        true
    }

    /// Where a replay resumes: the newest id sent, or the client's own starting point.
    pub fn highest(&self) -> u64 {
        self.highest
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::user::SignInMethod;

    fn caller(id: i64, method: SignInMethod) -> Caller {
        Caller {
            user_id: UserId(id),
            username: format!("user{id}"),
            first_name: String::new(),
            last_name: String::new(),
            auth_group: "Default".into(),
            facility_id: 0,
            facility: None,
            provider: false,
            method,
            token_family: None,
            credential: None,
        }
    }

    fn event(recipient: Option<i64>, topic: &str) -> Event {
        NewEvent {
            topic: Topic::parse(topic).unwrap(),
            kind: Kind::parse("job.progress").unwrap(),
            recipient: recipient.map(UserId),
            data: serde_json::json!({}),
        }
        .written(1, Utc::now())
    }

    #[test]
    fn an_event_with_a_recipient_reaches_that_user_only() {
        let e = event(Some(7), "job");
        assert!(may_receive(&caller(7, SignInMethod::Password), &e));
        assert!(may_receive(&caller(7, SignInMethod::OpenEmrSession), &e));
        assert!(!may_receive(&caller(8, SignInMethod::Password), &e));
    }

    #[test]
    fn an_event_without_a_recipient_reaches_everyone_but_guests() {
        let e = event(None, "notification");
        assert!(may_receive(&caller(7, SignInMethod::Password), &e));
        assert!(may_receive(&caller(8, SignInMethod::Password), &e));
        assert!(!may_receive(&caller(0, SignInMethod::Guest), &e));
    }

    #[test]
    fn guests_receive_nothing_even_when_named() {
        assert!(!may_receive(&caller(0, SignInMethod::Guest), &event(Some(0), "job")));
    }

    #[test]
    fn topics_and_kinds_are_checked() {
        for ok in ["job", "notification", "chat:42", "chat:room_a.b-c", "appointment"] {
            assert_eq!(Topic::parse(ok).unwrap().as_str(), ok);
        }
        for bad in ["", "Job", "1job", "job:", ":x", "chat:a:b", "chat:a b", "jöb", &"j".repeat(129)] {
            assert!(Topic::parse(bad).is_err(), "{bad:?}");
        }
        for ok in ["job.progress", "transcription.approved", "ping"] {
            assert_eq!(Kind::parse(ok).unwrap().as_str(), ok);
        }
        for bad in ["", "job.", ".job", "Job.Progress", "job progress", &"k".repeat(65)] {
            assert!(Kind::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_topic_filter_selects_topics_and_whole_families() {
        let topic = |t| Topic::parse(t).unwrap();
        assert!(TopicFilter::default().matches(&topic("chat:1")));
        let filter = TopicFilter::parse(["job", " chat "]).unwrap();
        assert!(filter.matches(&topic("job")));
        assert!(filter.matches(&topic("chat:1")));
        assert!(!filter.matches(&topic("notification")));
        let room = TopicFilter::parse(["chat:1"]).unwrap();
        assert!(room.matches(&topic("chat:1")));
        assert!(!room.matches(&topic("chat:2")));
        assert!(!room.matches(&topic("chat")));
        assert_eq!(
            TopicFilter::parse(["chat:1", "job", "chat", "chat:x"])
                .unwrap()
                .instances("chat")
                .collect::<Vec<_>>(),
            ["1", "x"]
        );
        assert!(TopicFilter::parse(["job", "Bad"]).is_err());
        assert_eq!(TopicFilter::parse(["job"; 33]).unwrap_err(), NameError::TooManyTopics);
    }

    #[test]
    fn delivered_sends_each_id_once_and_remembers_a_bounded_window() {
        let mut d = Delivered::after(10);
        assert_eq!(d.highest(), 10);
        assert!(d.first_time(12));
        assert!(d.first_time(11));
        assert!(!d.first_time(12));
        assert_eq!(d.highest(), 12);
        for id in 100..100 + Delivered::WINDOW as u64 {
            assert!(d.first_time(id));
        }
        assert!(d.first_time(11), "the oldest ids leave the window");
        assert_eq!(d.ids.len(), Delivered::WINDOW);
    }

    #[test]
    fn events_round_trip_through_json_and_refuse_bad_names() {
        let e = event(Some(3), "chat:9");
        let json = serde_json::to_string(&e).unwrap();
        assert_eq!(serde_json::from_str::<Event>(&json).unwrap(), e);
        let bad = json.replace("chat:9", "Chat 9");
        assert!(serde_json::from_str::<Event>(&bad).is_err());
    }
}
