//! Patient search rules: how names, numbers and dates are normalised into search terms, and how
//! a query is read. Accents, case and apostrophes never decide whether a patient is found.

use chrono::NaiveDate;

/// "Zoë O’Brien-Smith" → "zoe obrien smith".
pub fn normalize(text: &str) -> String {
    let ascii = deunicode::deunicode(text).to_lowercase();
    let joined: String = ascii.chars().filter(|c| !matches!(c, '\'' | '`')).collect();
    joined.split(|c: char| !c.is_ascii_alphanumeric()).filter(|w| !w.is_empty()).collect::<Vec<_>>().join(" ")
}

pub fn digits(text: &str) -> String {
    text.chars().filter(char::is_ascii_digit).collect()
}

/// What the index stores about one patient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatientTerms {
    /// Lower-case ASCII words, each searchable by prefix.
    pub terms: Vec<String>,
    pub sort_last: String,
    pub sort_first: String,
}

pub struct TermSource<'a> {
    pub pid: i64,
    pub first_name: &'a str,
    pub middle_name: &'a str,
    pub last_name: &'a str,
    pub preferred_name: &'a str,
    pub pubpid: &'a str,
    pub email: &'a str,
    pub phones: [&'a str; 3],
}

const MAX_TERM: usize = 64;

pub fn terms_of(p: &TermSource<'_>) -> PatientTerms {
    let mut terms: Vec<String> = [p.first_name, p.middle_name, p.last_name, p.preferred_name]
        .iter()
        .flat_map(|name| normalize(name).split(' ').map(str::to_string).collect::<Vec<_>>())
        .collect();
    // Names are also found with their parts run together ("obrien", "vanderberg").
    terms.push(normalize(p.last_name).replace(' ', ""));
    terms.push(normalize(p.pubpid).replace(' ', ""));
    // The pid is a term like any other, so a number is found by one index range scan.
    terms.push(p.pid.to_string());
    // Terms live in an ASCII column, so non-ASCII emails are transliterated like names are.
    let email = deunicode::deunicode(p.email.trim()).to_lowercase();
    if !email.is_empty() {
        terms.push(email.clone());
        terms.extend(email.split('@').next().map(str::to_string));
    }
    for phone in p.phones {
        let d = digits(phone);
        if d.len() >= 4 {
            // Numbers are typed whole or by their last seven or four digits.
            terms.extend([
                d.clone(),
                d[d.len().saturating_sub(7)..].to_string(),
                d[d.len() - 4..].to_string(),
            ]);
        }
    }
    terms.retain(|t| !t.is_empty());
    for t in &mut terms {
        t.truncate(MAX_TERM);
    }
    terms.sort();
    terms.dedup();
    PatientTerms { terms, sort_last: sort_key(p.last_name), sort_first: sort_key(p.first_name) }
}

/// Where a patient without a birth date sorts by birth date: first.
pub const UNKNOWN_DOB_SORTS_AS: NaiveDate = NaiveDate::from_ymd_opt(1, 1, 1).expect("valid date");

/// Index columns hold this many characters of a name's sort key.
const MAX_SORT_KEY: usize = 128;

/// A name's sort key, bounded: transliteration can make a short name very long (an emoji becomes
/// a word or two), and a key that cannot be stored must not stop the whole index.
fn sort_key(name: &str) -> String {
    let mut key = normalize(name);
    key.truncate(MAX_SORT_KEY);
    key.trim_end().to_string()
}

/// One word of a search query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Needle {
    /// A term prefix: of a name, chart number, pid, phone or email.
    Prefix(String),
    /// A birth date, typed as YYYY-MM-DD or MM/DD/YYYY.
    Dob(NaiveDate),
}

/// A match on one field, for searches that name the field (FHIR's `family=`, `identifier=`…).
/// Name values are normalised as the index normalises names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldMatch {
    /// The start of the last name.
    Family(String),
    /// The start of the first name.
    Given(String),
    /// The start of any word of the first or last name.
    NameWord(String),
    /// The chart number, exactly.
    ChartNumber(String),
    /// A whole indexed term: an email address, or a phone number's digits.
    Term(String),
    /// One patient, by pid.
    Pid(i64),
}

pub fn parse_query(query: &str) -> Vec<Needle> {
    query
        .split_whitespace()
        .take(8)
        .filter_map(|word| {
            if let Some(date) = parse_date(word) {
                return Some(Needle::Dob(date));
            }
            // Emails are matched as typed, whole or by their part before the '@'.
            let is_email = word.contains('@') || word.trim_end_matches('.').contains('.');
            let term = if is_email {
                deunicode::deunicode(word).to_lowercase()
            } else {
                normalize(word).replace(' ', "")
            };
            let digit_form = digits(word);
            let term = if !is_email
                && !digit_form.is_empty()
                && digit_form.len() == word.chars().filter(|c| c.is_ascii_alphanumeric()).count()
            {
                digit_form
            } else {
                term
            };
            if term.is_empty() {
                return None;
            }
            Some(Needle::Prefix(term.chars().take(MAX_TERM).collect()))
        })
        .collect()
}

/// How well a patient's names answer the search words, best first: 0 when a word is the surname or
/// one of its words, 1 when it starts one of them, 2 when it starts a given name, 3 otherwise (a
/// phone, an email, a chart number, a middle name). The best word counts; a search sorted by
/// relevance lists lower ranks first and each rank by name.
pub fn rank(needles: &[Needle], sort_last: &str, sort_first: &str) -> u8 {
    needles
        .iter()
        .filter_map(|n| match n {
            Needle::Prefix(word) => Some(word_rank(word, sort_last, sort_first)),
            Needle::Dob(_) => None,
        })
        .min()
        .unwrap_or(WORST_RANK)
}

pub const WORST_RANK: u8 = 3;

fn word_rank(word: &str, last: &str, first: &str) -> u8 {
    let joined = last.replace(' ', "");
    if joined == word || last.split(' ').any(|w| w == word) {
        0
    } else if joined.starts_with(word) || last.split(' ').any(|w| w.starts_with(word)) {
        1
    } else if first.split(' ').any(|w| w.starts_with(word)) {
        2
    } else {
        WORST_RANK
    }
}

fn parse_date(word: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(word, "%Y-%m-%d").or_else(|_| NaiveDate::parse_from_str(word, "%m/%d/%Y")).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source<'a>(first: &'a str, last: &'a str, phone: &'a str, email: &'a str) -> TermSource<'a> {
        TermSource {
            first_name: first,
            middle_name: "",
            last_name: last,
            preferred_name: "",
            pid: 42,
            pubpid: "MRN-0042",
            email,
            phones: [phone, "", ""],
        }
    }

    #[test]
    fn accents_case_and_apostrophes_normalise_away() {
        assert_eq!(normalize("Zoë O’Brien-Smith"), "zoe obrien smith");
        assert_eq!(normalize("NGUYỄN"), "nguyen");
        assert_eq!(normalize("D'Angelo"), "dangelo");
    }

    #[test]
    fn terms_cover_names_mrn_email_and_phone_endings() {
        let t = terms_of(&source("José", "Muñoz García", "(555) 010-4477", "Jose.M@Example.org"));
        for expected in [
            "jose",
            "munoz",
            "garcia",
            "munozgarcia",
            "mrn0042",
            "jose.m@example.org",
            "jose.m",
            "5550104477",
            "0104477",
            "4477",
        ] {
            assert!(t.terms.contains(&expected.to_string()), "{expected} missing from {:?}", t.terms);
        }
        assert_eq!(t.sort_last, "munoz garcia");
    }

    #[test]
    fn emoji_names_transliterate_into_keys_that_fit_the_index_columns() {
        let name = "\u{1F600}".repeat(20);
        let t = terms_of(&TermSource { pid: 9, ..source(&name, &name, "", "") });
        assert!(t.sort_last.len() <= MAX_SORT_KEY && t.sort_first.len() <= MAX_SORT_KEY);
        assert!(normalize(&name).len() > MAX_SORT_KEY, "the name must overflow before bounding");
        assert!(t.terms.iter().all(|term| term.len() <= MAX_TERM && term.is_ascii()));
    }

    #[test]
    fn the_surname_ranks_before_its_prefix_before_the_given_name() {
        let rank_of = |query: &str, last: &str, first: &str| rank(&parse_query(query), last, first);
        assert_eq!(rank_of("garcia", "munoz garcia", "ana"), 0);
        assert_eq!(rank_of("munoz-garcia", "munoz garcia", "ana"), 0);
        assert_eq!(rank_of("garcia", "garcilaso", "ana"), 3);
        assert_eq!(rank_of("garc", "garcilaso", "ana"), 1);
        assert_eq!(rank_of("garc", "lopez", "garcia"), 2);
        assert_eq!(rank_of("555", "lopez", "garcia"), 3);
        assert_eq!(rank_of("maria go", "gomez", "maria"), 1, "the best word counts");
        assert_eq!(rank_of("1984-02-29", "gomez", "maria"), 3);
    }

    #[test]
    fn queries_read_names_numbers_and_dates() {
        assert_eq!(
            parse_query("O'Brien 1984-02-29 555-0104 42"),
            vec![
                Needle::Prefix("obrien".into()),
                Needle::Dob(NaiveDate::from_ymd_opt(1984, 2, 29).unwrap()),
                Needle::Prefix("5550104".into()),
                Needle::Prefix("42".into()),
            ]
        );
        assert_eq!(
            parse_query("02/29/1984"),
            vec![Needle::Dob(NaiveDate::from_ymd_opt(1984, 2, 29).unwrap())]
        );
        assert_eq!(parse_query("  ' ' "), vec![]);
    }
}
