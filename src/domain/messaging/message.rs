//! Message rules: what a new message, a reply and a change must hold, and OpenEMR's rules for
//! activity and deletion (library/pnotes.inc.php).

use crate::domain::validation::Issues;

/// `pnotes.title`, `assigned_to` and `user` are varchar(255).
pub const NAME_CHARS: usize = 255;
/// One entry's text; the whole thread lives in a LONGTEXT.
pub const TEXT_CHARS: usize = 20_000;
pub const TEXT_BYTES: usize = 65_535;
pub const DONE: &str = "Done";
pub const NEW: &str = "New";
pub const READ: &str = "Read";

/// Which side of a thread the caller is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mailbox {
    /// Threads assigned to the user (OpenEMR's Messages inbox).
    Inbox,
    /// Threads the user started (`pnotes.user`).
    Sent,
    All,
}

/// The values of the OpenEMR lists a message is checked against.
pub struct Lists<'a> {
    pub note_types: &'a [String],
    pub statuses: &'a [String],
}

impl Lists<'_> {
    fn title(&self, issues: &mut Issues, value: Option<String>) -> String {
        let title = value.unwrap_or_else(|| "Unassigned".into());
        if title.chars().count() > NAME_CHARS {
            issues.add("title", format!("must be at most {NAME_CHARS} characters"));
        } else if !self.note_types.contains(&title) {
            issues
                .add("title", format!("must be one of OpenEMR's note types: {}", self.note_types.join(", ")));
        }
        title
    }

    pub fn status(&self, issues: &mut Issues, value: &str) {
        if !self.statuses.iter().any(|s| s == value) {
            issues.add(
                "status",
                format!("must be one of OpenEMR's message statuses: {}", self.statuses.join(", ")),
            );
        }
    }
}

fn text(issues: &mut Issues, value: Option<String>) -> String {
    let text = issues.prose("text", value.as_deref().unwrap_or(""), 1, TEXT_CHARS);
    issues.within_bytes("text", &text, TEXT_BYTES);
    text
}

fn username(issues: &mut Issues, field: &str, value: &str) -> String {
    issues.text(field, value, 1, NAME_CHARS)
}

/// A new message as the client sent it.
pub struct MessageInput {
    pub to: Vec<String>,
    pub pid: Option<i64>,
    pub title: Option<String>,
    pub text: Option<String>,
    pub status: Option<String>,
}

/// A valid new message: one `pnotes` row per recipient.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub to: Vec<String>,
    /// 0 for a message about no patient, as OpenEMR stores it.
    pub pid: i64,
    pub title: String,
    pub text: String,
    pub status: String,
}

impl MessageInput {
    pub fn validate(self, lists: &Lists<'_>) -> Result<NewMessage, Issues> {
        let mut issues = Issues::default();
        let mut to: Vec<String> = Vec::new();
        for (i, name) in self.to.iter().enumerate() {
            let name = username(&mut issues, &format!("to[{i}]"), name);
            if !to.contains(&name) {
                to.push(name);
            }
        }
        if to.is_empty() {
            issues.add("to", "needs at least one recipient (OpenEMR username)");
        }
        let pid = self.pid.unwrap_or(0);
        if pid < 0 {
            issues.add("pid", "must be a patient's pid, or absent for a message about no patient");
        }
        let title = lists.title(&mut issues, self.title);
        let text = text(&mut issues, self.text);
        let status = self.status.unwrap_or_else(|| NEW.into());
        lists.status(&mut issues, &status);
        issues.into_result(NewMessage { to, pid, title, text, status })
    }
}

/// A reply: appended to the thread, which is then assigned to `to`.
#[derive(Debug, Clone)]
pub struct Reply {
    pub to: Option<String>,
    pub text: String,
    pub status: String,
}

impl Reply {
    pub fn validate(
        to: Option<String>,
        text_in: Option<String>,
        status: Option<String>,
        lists: &Lists<'_>,
    ) -> Result<Self, Issues> {
        let mut issues = Issues::default();
        let to = to.map(|t| username(&mut issues, "to", &t));
        let text = text(&mut issues, text_in);
        // The thread is new again for whoever it now waits on.
        let status = status.unwrap_or_else(|| NEW.into());
        lists.status(&mut issues, &status);
        issues.into_result(Self { to, text, status })
    }
}

/// A change of status and/or recipient.
#[derive(Debug, Clone)]
pub struct Change {
    pub status: Option<String>,
    pub assigned_to: Option<String>,
}

impl Change {
    pub fn validate(
        status: Option<String>,
        assigned_to: Option<String>,
        lists: &Lists<'_>,
    ) -> Result<Self, Issues> {
        let mut issues = Issues::default();
        if let Some(status) = &status {
            lists.status(&mut issues, status);
        }
        let assigned_to = assigned_to.map(|a| username(&mut issues, "assigned_to", &a));
        if status.is_none() && assigned_to.is_none() {
            issues.add("status", "give `status`, `assigned_to` or both");
        }
        issues.into_result(Self { status, assigned_to })
    }
}

/// `pnotes.activity`: a `Done` thread leaves the inbox.
pub fn activity(status: &str) -> i8 {
    i8::from(status != DONE)
}

/// `deletePnote`: the recipient may delete a thread, and anyone once it is `Done`.
pub fn may_delete(me: &str, assigned_to: &str, status: &str) -> bool {
    assigned_to == me || status == DONE
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lists() -> (Vec<String>, Vec<String>) {
        (
            ["Unassigned", "Lab Results"].map(String::from).to_vec(),
            ["Done", "Forwarded", "New", "Read"].map(String::from).to_vec(),
        )
    }

    #[test]
    fn new_message_names_every_bad_field() {
        let (note_types, statuses) = lists();
        let lists = Lists { note_types: &note_types, statuses: &statuses };
        let input = MessageInput {
            to: vec![],
            pid: Some(-1),
            title: Some("Gossip".into()),
            text: Some("  ".into()),
            status: Some("Urgent".into()),
        };
        let issues = input.validate(&lists).unwrap_err();
        let fields: Vec<_> = issues.0.iter().map(|i| i.field.as_str()).collect();
        assert_eq!(fields, ["to", "pid", "title", "text", "status"]);
        assert!(issues.0[2].message.contains("Lab Results"));
        let ok = MessageInput {
            to: vec!["nkim".into(), "nkim".into(), "drokafor".into()],
            pid: None,
            title: None,
            text: Some("Hello".into()),
            status: None,
        }
        .validate(&lists)
        .unwrap();
        assert_eq!((ok.to.len(), ok.pid, ok.title.as_str(), ok.status.as_str()), (2, 0, "Unassigned", "New"));
    }

    #[test]
    fn openemr_activity_and_delete_rules() {
        assert_eq!((activity("Done"), activity("Read")), (0, 1));
        assert!(may_delete("nkim", "nkim", "New"));
        assert!(may_delete("drgarcia", "nkim", "Done"));
        assert!(!may_delete("drgarcia", "nkim", "Read"));
    }
}
