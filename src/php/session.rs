//! Reads the login state out of a PHP session written by OpenEMR (facts §3.2–3.3).
//!
//! Accepts both `session.serialize_handler`s (`php`: `name|value…`, `php_serialize`: one array) and both
//! layouts (OpenEMR ≤ 7 keys at the top level; OpenEMR 8 Symfony bag under `OpenEMR` plus `_sf2_meta`).

use muesli::{ArrayKey, Value};

/// Sessions are a few KiB; anything far larger is not OpenEMR's.
pub const MAX_LEN: usize = 256 * 1024;
/// muesli recurses once per array or object with no limit of its own (about 7 KiB of stack per level in
/// a debug build), so more openings than this are refused before parsing.
pub const MAX_OPENINGS: usize = 128;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenEmrSession {
    pub auth_user: String,
    pub auth_user_id: i64,
    /// Copy of `users_secure.password`, compared on every request.
    pub auth_pass: String,
    pub auth_provider: Option<String>,
    pub site_id: Option<String>,
    /// Raw 16 bytes, the key of `session_tracker.uuid`.
    pub session_database_uuid: Option<Vec<u8>>,
    /// `_sf2_meta.u` (unix seconds), only in Symfony-managed sessions.
    pub last_used: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    #[error("session data is larger than {MAX_LEN} bytes")]
    TooLarge,
    #[error("session data opens more than {MAX_OPENINGS} arrays or objects")]
    TooDeep,
    #[error("session data is not PHP-serialized")]
    Malformed,
    #[error("session has no logged-in user ({0} is missing)")]
    NotLoggedIn(&'static str),
    #[error("session field {0} has an unexpected type")]
    BadField(&'static str),
}

type Entries<'a> = [(ArrayKey<'a>, Value<'a>)];

pub fn decode(raw: &[u8]) -> Result<OpenEmrSession, SessionError> {
    if raw.len() > MAX_LEN {
        return Err(SessionError::TooLarge);
    }
    // Every array or object opens with ":{", so this count bounds the nesting depth; strings
    // containing ":{" only make it stricter.
    if raw.windows(2).filter(|w| w == b":{").count() > MAX_OPENINGS {
        return Err(SessionError::TooDeep);
    }
    let top = top_level(raw)?;
    let bag: &Entries = match get(&top, "OpenEMR") {
        Some(Value::Array(items)) => items,
        _ => &top,
    };
    let last_used = match get(&top, "_sf2_meta") {
        Some(Value::Array(meta)) => match get(meta, "u") {
            Some(Value::Integer(u)) => Some(*u),
            _ => None,
        },
        _ => None,
    };
    Ok(OpenEmrSession {
        auth_user: required(text(bag, "authUser")?, "authUser")?,
        auth_user_id: required(user_id(bag)?, "authUserID")?,
        auth_pass: required(text(bag, "authPass")?, "authPass")?,
        auth_provider: text(bag, "authProvider")?,
        site_id: text(bag, "site_id")?,
        session_database_uuid: bytes(bag, "session_database_uuid")?.map(<[u8]>::to_vec),
        last_used,
    })
}

/// Whether a row of a PDO session handler (`sess_time`, `sess_lifetime`) is past its lifetime at
/// `now`: PHP's collector deletes such rows only when it happens to run, so they may still be read.
pub fn row_expired(time: i64, lifetime: i64, now: i64) -> bool {
    time.saturating_add(lifetime) < now
}

/// PHP's session id alphabet check as OpenEMR configures it: `^[a-zA-Z0-9,-]{22,250}$`.
pub fn is_valid_session_id(id: &str) -> bool {
    (22..=250).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b',' || b == b'-')
}

fn top_level(raw: &[u8]) -> Result<Vec<(ArrayKey<'_>, Value<'_>)>, SessionError> {
    // A `php`-handler session never parses as one whole array, so trying php_serialize first is safe.
    if let Ok(Value::Array(items)) = muesli::unserialize(raw) {
        return Ok(items);
    }
    let entries = muesli::session_decode(raw).map_err(|_| SessionError::Malformed)?;
    Ok(entries.into_iter().map(|e| (ArrayKey::String(e.key), e.value)).collect())
}

/// The last duplicate wins, as in PHP.
fn get<'i, 'a>(items: &'i Entries<'a>, name: &str) -> Option<&'i Value<'a>> {
    let key = ArrayKey::String(name.as_bytes());
    items.iter().rev().find(|(k, _)| *k == key).map(|(_, v)| v)
}

fn bytes<'i>(items: &'i Entries<'_>, name: &'static str) -> Result<Option<&'i [u8]>, SessionError> {
    match get(items, name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(b)) => Ok(Some(b)),
        Some(_) => Err(SessionError::BadField(name)),
    }
}

fn text(items: &Entries<'_>, name: &'static str) -> Result<Option<String>, SessionError> {
    bytes(items, name)?
        .map(|b| String::from_utf8(b.to_vec()).map_err(|_| SessionError::BadField(name)))
        .transpose()
}

/// PHP stores the id as int or numeric string.
fn user_id(items: &Entries<'_>) -> Result<Option<i64>, SessionError> {
    let bad = SessionError::BadField("authUserID");
    match get(items, "authUserID") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Integer(id)) => Ok(Some(*id)),
        Some(Value::String([])) => Ok(None),
        Some(Value::String(b)) => std::str::from_utf8(b)
            .ok()
            .filter(|s| s.bytes().all(|c| c.is_ascii_digit()))
            .and_then(|s| s.parse().ok())
            .map(Some)
            .ok_or(bad),
        Some(_) => Err(bad),
    }
}

/// OpenEMR checks these with PHP's empty(), which also rejects "", "0" and 0.
fn required<T: Default + PartialEq>(value: Option<T>, name: &'static str) -> Result<T, SessionError> {
    value.filter(|v| *v != T::default()).ok_or(SessionError::NotLoggedIn(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    const FLAT: &[u8] = b"site_id|s:7:\"default\";note|s:15:\"authUserID|i:1;\";authUser|s:5:\"admin\";authPass|s:3:\"xyz\";authUserID|i:5;authProvider|s:7:\"Default\";";

    fn ok(raw: &[u8]) -> OpenEmrSession {
        decode(raw).expect("decodes")
    }

    #[test]
    fn flat_php_handler() {
        let s = ok(FLAT);
        assert_eq!((s.auth_user.as_str(), s.auth_user_id, s.auth_pass.as_str()), ("admin", 5, "xyz"));
        assert_eq!(s.auth_provider.as_deref(), Some("Default"));
        assert_eq!(s.site_id.as_deref(), Some("default"));
        assert_eq!((s.session_database_uuid, s.last_used), (None, None));
    }

    #[test]
    fn key_text_inside_a_value_is_not_a_key() {
        let trap = r#"authUser|s:1:"a";authUserID|i:1;authPass|s:1:"p";"#;
        let raw = format!("x|s:{}:\"{trap}\";", trap.len());
        assert_eq!(decode(raw.as_bytes()), Err(SessionError::NotLoggedIn("authUser")));
    }

    #[test]
    fn nested_symfony_layout_with_binary_values() {
        let mut raw = b"OpenEMR|a:5:{s:8:\"authUser\";s:1:\"u\";s:8:\"authPass\";s:1:\"p\";s:10:\"authUserID\";s:2:\"42\";s:16:\"csrf_private_key\";s:4:\"".to_vec();
        raw.extend_from_slice(b"\xff\x00|}");
        raw.extend_from_slice(b"\";s:21:\"session_database_uuid\";s:2:\"\x80\x81\";}_symfony_flashes|a:0:{}_sf2_meta|a:3:{s:1:\"u\";i:1700000001;s:1:\"c\";i:1700000000;s:1:\"l\";i:0;}");
        let s = ok(&raw);
        assert_eq!((s.auth_user_id, s.last_used), (42, Some(1_700_000_001)));
        assert_eq!(s.session_database_uuid, Some(vec![0x80, 0x81]));
    }

    #[test]
    fn php_serialize_handler() {
        let s = ok(b"a:3:{s:8:\"authUser\";s:1:\"u\";s:8:\"authPass\";s:1:\"p\";s:10:\"authUserID\";i:7;}");
        assert_eq!(s.auth_user_id, 7);
    }

    #[test]
    fn missing_empty_and_mistyped_fields() {
        assert_eq!(decode(b""), Err(SessionError::NotLoggedIn("authUser")));
        let no_id = b"authUser|s:1:\"u\";authPass|s:1:\"p\";authUserID|s:0:\"\";";
        assert_eq!(decode(no_id), Err(SessionError::NotLoggedIn("authUserID")));
        let zero = b"authUser|s:1:\"u\";authPass|s:1:\"p\";authUserID|i:0;";
        assert_eq!(decode(zero), Err(SessionError::NotLoggedIn("authUserID")));
        let odd_id = b"authUser|s:1:\"u\";authPass|s:1:\"p\";authUserID|s:2:\"1x\";";
        assert_eq!(decode(odd_id), Err(SessionError::BadField("authUserID")));
        let array_user = b"authUser|a:0:{}authPass|s:1:\"p\";authUserID|i:1;";
        assert_eq!(decode(array_user), Err(SessionError::BadField("authUser")));
        let latin1 = b"authUser|s:1:\"\xe9\";authPass|s:1:\"p\";authUserID|i:1;";
        assert_eq!(decode(latin1), Err(SessionError::BadField("authUser")));
    }

    #[test]
    fn limits() {
        let deep = "a:1:{i:0;".repeat(100_000);
        assert_eq!(decode(deep.as_bytes()), Err(SessionError::TooLarge));
        let deep = "a:1:{i:0;".repeat(MAX_OPENINGS + 1) + "N;" + &"}".repeat(MAX_OPENINGS + 1);
        assert_eq!(decode(deep.as_bytes()), Err(SessionError::TooDeep));
        let mut within = format!("x|{}N;{}", "a:1:{i:0;".repeat(MAX_OPENINGS), "}".repeat(MAX_OPENINGS));
        within.push_str("authUser|s:1:\"u\";authPass|s:1:\"p\";authUserID|i:1;");
        assert_eq!(ok(within.as_bytes()).auth_user_id, 1);
        assert_eq!(decode(b"x|a:4294967295:{i:0;N;}"), Err(SessionError::Malformed));
        assert_eq!(decode(b"x|s:99999999999999:\"\";"), Err(SessionError::Malformed));
    }

    #[test]
    fn session_ids() {
        assert!(is_valid_session_id("abcdefghijklmnopqrstuv"));
        assert!(is_valid_session_id(&"a,-Z9".repeat(50)));
        assert!(!is_valid_session_id("abcdefghijklmnopqrstu"));
        assert!(!is_valid_session_id(&"a".repeat(251)));
        assert!(!is_valid_session_id("abcdefghijklmnopqrstu/"));
        assert!(!is_valid_session_id("abcdefghijklmnopqrstuü"));
        assert!(!is_valid_session_id("../../../../etc/passwd00"));
    }

    mod props {
        use super::super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn decode_never_panics(raw in proptest::collection::vec(any::<u8>(), 0..512)) {
                let _ = decode(&raw);
            }

            #[test]
            fn decode_never_panics_on_mutated_sessions(pos in 0usize..200, byte in any::<u8>(), cut in 0usize..200) {
                let mut raw = super::FLAT.to_vec();
                let pos = pos % raw.len();
                raw[pos] = byte;
                raw.truncate(raw.len() - cut % raw.len());
                let _ = decode(&raw);
            }

            #[test]
            fn values_never_become_keys(value in "[a-zA-Z0-9|;:\"{}]{0,40}") {
                let raw = format!("v|s:{}:\"{value}authUserID|i:9;\";authUser|s:1:\"u\";authPass|s:1:\"p\";authUserID|i:3;", value.len() + 15);
                prop_assert_eq!(decode(raw.as_bytes()).map(|s| s.auth_user_id), Ok(3));
            }

            #[test]
            fn session_id_matches_the_regex(id in "[a-zA-Z0-9,\\-/+. ü]{0,260}") {
                let expected = (22..=250).contains(&id.len())
                    && id.chars().all(|c| c.is_ascii_alphanumeric() || c == ',' || c == '-');
                prop_assert_eq!(is_valid_session_id(&id), expected);
            }
        }
    }

    #[test]
    fn a_row_expires_once_its_lifetime_has_passed() {
        assert!(!row_expired(1000, 60, 1060));
        assert!(row_expired(1000, 60, 1061));
        assert!(!row_expired(i64::MAX, i64::MAX, i64::MAX), "no overflow");
        assert!(row_expired(0, 0, 1));
    }
}
