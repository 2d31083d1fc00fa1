//! A `pnotes.body`: the whole conversation of one thread as OpenEMR's `addPnote` and
//! `updatePnote` (library/pnotes.inc.php) write it. Each entry starts a line with
//! `YYYY-mm-dd HH:MM (sender to recipient) ` and the next entry follows after a `\n`.

use chrono::NaiveDateTime;

const STAMP: &str = "%Y-%m-%d %H:%M";
/// `YYYY-mm-dd HH:MM`
const STAMP_LEN: usize = 16;

/// The text `addPnote` writes for a new thread, and `updatePnote` appends after a `\n`.
pub fn entry_text(at: NaiveDateTime, author: &str, recipient: &str, text: &str) -> String {
    let mut out = format!("{} ({author}", at.format(STAMP));
    if !recipient.is_empty() {
        out.push_str(" to ");
        out.push_str(recipient);
    }
    out.push_str(") ");
    out.push_str(text);
    out
}

/// `updatePnote`'s new body: the old one, a line break and the new entry.
pub fn appended(body: &str, at: NaiveDateTime, author: &str, recipient: &str, text: &str) -> String {
    format!("{body}\n{}", entry_text(at, author, recipient, text))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Absent for text before the first stamped line (OpenEMR's REST API starts bodies with `\n`).
    pub at: Option<NaiveDateTime>,
    pub author: Option<String>,
    pub recipient: Option<String>,
    pub text: String,
}

/// Splits a body into its entries. A line is a new entry when it starts with OpenEMR's stamp and
/// a parenthesised header; other lines continue the entry before them (multi-line text).
pub fn parse(body: &str) -> Vec<Entry> {
    let mut entries: Vec<Entry> = Vec::new();
    for line in body.split('\n') {
        match header(line) {
            Some(entry) => entries.push(entry),
            None => match entries.last_mut() {
                Some(last) => {
                    last.text.push('\n');
                    last.text.push_str(line);
                }
                None if line.trim().is_empty() => {}
                None => entries.push(Entry { at: None, author: None, recipient: None, text: line.into() }),
            },
        }
    }
    entries
}

fn header(line: &str) -> Option<Entry> {
    let stamp = line.get(..STAMP_LEN)?;
    let at = NaiveDateTime::parse_from_str(stamp, STAMP).ok()?;
    let rest = line[STAMP_LEN..].strip_prefix(" (")?;
    let close = rest.find(')')?;
    let who = &rest[..close];
    let after = &rest[close + 1..];
    let text = after.strip_prefix(' ').unwrap_or(after).to_string();
    let (author, recipient) = match who.split_once(" to ") {
        Some((author, recipient)) => (author, Some(recipient.to_string())),
        None => (who, None),
    };
    Some(Entry { at: Some(at), author: Some(author.to_string()), recipient, text })
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;

    use super::*;

    fn at(h: u32, m: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(2026, 11, 29).unwrap().and_hms_opt(h, m, 7).unwrap()
    }

    #[test]
    fn writes_and_reads_back_openemr_entries() {
        let body = entry_text(at(9, 5), "drgarcia", "nkim", "Please call Mrs. Doe (re: labs).\nThanks");
        assert_eq!(body, "2026-11-29 09:05 (drgarcia to nkim) Please call Mrs. Doe (re: labs).\nThanks");
        let body = appended(&body, at(9, 30), "nkim", "drgarcia", "Done");
        let entries = parse(&body);
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].author.as_deref(), Some("drgarcia"));
        assert_eq!(entries[0].recipient.as_deref(), Some("nkim"));
        assert_eq!(entries[0].text, "Please call Mrs. Doe (re: labs).\nThanks");
        assert_eq!(entries[1].at, NaiveDate::from_ymd_opt(2026, 11, 29).unwrap().and_hms_opt(9, 30, 0));
        assert_eq!(entries[1].text, "Done");
    }

    #[test]
    fn reads_rest_api_and_patient_set_entries() {
        let body = "\n2026-01-02 10:00 (admin to drgarcia) hi\n2026-01-02 10:01 (patient set by admin)";
        let entries = parse(body);
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[1].author.as_deref(), Some("patient set by admin"));
        assert_eq!(entries[1].recipient, None);
        assert_eq!(entries[1].text, "");
        assert_eq!(parse("free text, no stamp")[0].author, None);
    }
}
