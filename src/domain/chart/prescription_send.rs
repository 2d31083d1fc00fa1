//! E-mailing a prescription: the recipient rules, the message OpenEMR's `email_prescription()`
//! sends (subject, body, attachment name) and the one place that decides a send's state.

use std::fmt;

use chrono::NaiveDateTime;

/// Where a send is: queued until an attempt succeeds or the attempts run out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendState {
    Queued,
    Sent,
    Failed,
}

/// What the job learnt from one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    Delivered,
    Refused { last: bool },
}

impl SendState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Sent => "sent",
            Self::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Queued, Self::Sent, Self::Failed].into_iter().find(|v| v.as_str() == s)
    }

    /// The state after an attempt; only a queued send is attempted, so a finished one stays as it is.
    pub fn after(self, attempt: Attempt) -> Self {
        match (self, attempt) {
            (Self::Queued, Attempt::Delivered) => Self::Sent,
            (Self::Queued, Attempt::Refused { last: true }) => Self::Failed,
            (state, _) => state,
        }
    }
}

impl fmt::Display for SendState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The longest address `mmt_prescription_sends.recipient` and RFC 5321 allow.
pub const MAX_RECIPIENT: usize = 254;

/// A recipient address: one mailbox, no display name, no header tricks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient(String);

impl Recipient {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let addr = raw.trim();
        if addr.is_empty() {
            return Err("give the address to send the prescription to".into());
        }
        if addr.len() > MAX_RECIPIENT {
            return Err(format!("at most {MAX_RECIPIENT} characters"));
        }
        addr.parse::<lettre::Address>()
            .map(|_| Self(addr.to_string()))
            .map_err(|_| "not an e-mail address (expected name@example.org)".into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part after `@`, which is all the sidecar's own logs may name.
    pub fn domain(&self) -> &str {
        self.0.rsplit_once('@').map_or("", |(_, d)| d)
    }
}

/// Subject and body as `C_Prescription::email_prescription()` writes them when sending a PDF.
pub fn subject(openemr_name: &str) -> String {
    format!("{openemr_name} Prescription")
}

pub fn body(openemr_name: &str, patient_name: &str) -> String {
    format!("{openemr_name} Prescription attached to this email. Patient {patient_name}")
}

/// `Prescription-YYYY-mm-dd_H_i_s.pdf`, stamped with the time the e-mail is made.
pub fn attachment_name(at: NaiveDateTime) -> String {
    format!("Prescription-{}.pdf", at.format("%Y-%m-%d_%H_%M_%S"))
}

/// The practice's name as OpenEMR's `openemr_name` global gives it.
pub fn practice_name(global: Option<&str>) -> &str {
    global.map(str::trim).filter(|n| !n.is_empty()).unwrap_or("OpenEMR")
}

/// `rx_send_email` (default on) lets users e-mail prescriptions from OpenEMR's screens.
pub fn sending_enabled(global: Option<&str>) -> bool {
    global.is_none_or(|v| !matches!(v.trim(), "0" | ""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_queued_send_changes_state() {
        use Attempt::*;
        use SendState::*;
        assert_eq!(Queued.after(Delivered), Sent);
        assert_eq!(Queued.after(Refused { last: false }), Queued);
        assert_eq!(Queued.after(Refused { last: true }), Failed);
        for done in [Sent, Failed] {
            assert_eq!(done.after(Delivered), done);
            assert_eq!(done.after(Refused { last: true }), done);
        }
        for s in [Queued, Sent, Failed] {
            assert_eq!(SendState::parse(s.as_str()), Some(s));
        }
        assert_eq!(SendState::parse("sending"), None);
    }

    #[test]
    fn recipients_are_single_plain_addresses() {
        let ok = Recipient::parse("  pharmacy@chemist.example.au ").unwrap();
        assert_eq!((ok.as_str(), ok.domain()), ("pharmacy@chemist.example.au", "chemist.example.au"));
        for bad in [
            "",
            "   ",
            "pharmacy",
            "Chemist <pharmacy@chemist.example>",
            "a@b.example, c@d.example",
            "a@b.example\r\nBcc: x@y.example",
        ] {
            assert!(Recipient::parse(bad).is_err(), "{bad:?} accepted");
        }
        let long = format!("{}@example.org", "a".repeat(250));
        assert!(Recipient::parse(&long).unwrap_err().contains("254"));
    }

    #[test]
    fn message_follows_openemr() {
        let at = NaiveDateTime::parse_from_str("2026-11-30 09:05:07", "%Y-%m-%d %H:%M:%S").unwrap();
        assert_eq!(attachment_name(at), "Prescription-2026-11-30_09_05_07.pdf");
        assert_eq!(subject(practice_name(Some(" "))), "OpenEMR Prescription");
        assert_eq!(
            body(practice_name(Some("Harbour Clinic")), "Ann Lee"),
            "Harbour Clinic Prescription attached to this email. Patient Ann Lee"
        );
        assert!(sending_enabled(None) && sending_enabled(Some("1")));
        assert!(!sending_enabled(Some("0")) && !sending_enabled(Some("")));
    }
}
