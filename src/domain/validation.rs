//! Field-by-field validation that reports every problem at once, for 422 answers.

use chrono::NaiveDate;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldIssue {
    pub field: String,
    pub message: String,
}

/// An address with a local part and a dotted domain, no spaces: what OpenEMR's forms accept.
pub fn looks_like_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else { return false };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !s.chars().any(char::is_whitespace)
}

#[derive(Debug, Default)]
pub struct Issues(pub Vec<FieldIssue>);

impl Issues {
    pub fn add(&mut self, field: &str, message: impl Into<String>) {
        self.0.push(FieldIssue { field: field.into(), message: message.into() });
    }

    /// `field: message; field: message`, for answers that are one line of text (an HL7 ACK, the CLI).
    pub fn summary(&self) -> String {
        self.0.iter().map(|i| format!("{}: {}", i.field, i.message)).collect::<Vec<_>>().join("; ")
    }

    pub fn into_result<T>(self, value: T) -> Result<T, Issues> {
        if self.0.is_empty() { Ok(value) } else { Err(self) }
    }

    /// A single-line value: trimmed, length-checked in characters, no control characters.
    pub fn text(&mut self, field: &str, value: &str, min: usize, max: usize) -> String {
        self.checked(field, value, min, max, |_| false)
    }

    /// Multi-line prose (a note, a segment): line breaks and tabs are allowed.
    pub fn prose(&mut self, field: &str, value: &str, min: usize, max: usize) -> String {
        self.checked(field, value, min, max, |c| matches!(c, '\n' | '\r' | '\t'))
    }

    /// A value bound for a byte-limited column (a TEXT column holds 65,535 bytes of UTF-8, which
    /// may be far fewer characters), so an overlong value is refused here, not by the database.
    pub fn within_bytes(&mut self, field: &str, value: &str, max_bytes: usize) {
        if value.len() > max_bytes {
            self.add(
                field,
                format!("must be at most {max_bytes} bytes as UTF-8 (it is {} bytes)", value.len()),
            );
        }
    }

    fn checked(
        &mut self,
        field: &str,
        value: &str,
        min: usize,
        max: usize,
        allowed: fn(char) -> bool,
    ) -> String {
        let trimmed = value.trim();
        let len = trimmed.chars().count();
        if len < min {
            self.add(
                field,
                if min == 1 {
                    "is required".to_string()
                } else {
                    format!("must be at least {min} characters")
                },
            );
        } else if len > max {
            self.add(field, format!("must be at most {max} characters"));
        }
        if trimmed.chars().any(|c| c.is_control() && !allowed(c)) {
            self.add(field, "must not contain control characters");
        }
        trimmed.to_string()
    }

    /// Parses an ISO date if one was given.
    pub fn optional_date(&mut self, field: &str, value: Option<String>) -> Option<NaiveDate> {
        value.and_then(|v| self.date(field, &v))
    }

    /// Parses an ISO date (`YYYY-MM-DD`).
    pub fn date(&mut self, field: &str, value: &str) -> Option<NaiveDate> {
        match NaiveDate::parse_from_str(value.trim(), "%Y-%m-%d") {
            Ok(date) => Some(date),
            Err(_) => {
                self.add(field, "must be a date as YYYY-MM-DD");
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collects_every_issue() {
        let mut issues = Issues::default();
        assert_eq!(issues.text("fname", "  ", 1, 10), "");
        issues.text("lname", &"x".repeat(11), 1, 10);
        issues.text("city", "a\u{0}b", 0, 10);
        assert_eq!(issues.date("dob", "1990-02-30"), None);
        let fields: Vec<_> = issues.0.iter().map(|i| i.field.as_str()).collect();
        assert_eq!(fields, ["fname", "lname", "city", "dob"]);
        let mut prose = Issues::default();
        assert_eq!(prose.prose("note", "Line one.\n\tLine two.", 0, 100), "Line one.\n\tLine two.");
        assert!(prose.0.is_empty());
        prose.within_bytes("note", &"\u{1F600}".repeat(4), 15);
        assert_eq!(prose.0.len(), 1, "four emoji are 16 bytes");
        assert!(issues.into_result(()).is_err());
    }
}
