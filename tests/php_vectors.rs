//! Vectors made by real PHP (scripts/gen-php-vectors.php); regenerate with `php scripts/gen-php-vectors.php`.

use mmt_sidecar::php::{password, session};
use serde::Deserialize;

#[derive(Deserialize)]
struct File<T> {
    vectors: Vec<T>,
}

#[derive(Deserialize)]
struct PasswordVector {
    name: String,
    password: String,
    hash: String,
    expected: bool,
}

#[derive(Deserialize)]
struct SessionVector {
    name: String,
    raw: String,
    expected: Option<Expected>,
    error: Option<String>,
}

#[derive(Deserialize)]
struct Expected {
    auth_user: String,
    auth_user_id: i64,
    auth_pass: String,
    auth_provider: Option<String>,
    site_id: Option<String>,
    session_database_uuid: Option<String>,
    last_used: Option<i64>,
}

fn load<T: for<'de> Deserialize<'de>>(name: &str) -> Vec<T> {
    let path = format!("{}/tests/vectors/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str::<File<T>>(&text).expect("vector file parses").vectors
}

#[test]
fn password_hashes_from_php() {
    let vectors: Vec<PasswordVector> = load("password_hashes.json");
    assert!(vectors.len() > 50);
    let failed: Vec<&str> = vectors
        .iter()
        .filter(|v| password::verify(&v.password, &v.hash) != v.expected)
        .map(|v| v.name.as_str())
        .collect();
    assert!(failed.is_empty(), "mismatches: {failed:?}");
}

#[test]
fn sessions_from_php() {
    let vectors: Vec<SessionVector> = load("sessions.json");
    assert!(vectors.len() >= 12);
    for v in vectors {
        let raw = hex::decode(&v.raw).expect("hex");
        let got = session::decode(&raw);
        match (v.expected, v.error.as_deref()) {
            (Some(e), None) => {
                let expected = session::OpenEmrSession {
                    auth_user: e.auth_user,
                    auth_user_id: e.auth_user_id,
                    auth_pass: e.auth_pass,
                    auth_provider: e.auth_provider,
                    site_id: e.site_id,
                    session_database_uuid: e.session_database_uuid.map(|h| hex::decode(h).expect("hex")),
                    last_used: e.last_used,
                };
                assert_eq!(got, Ok(expected), "{}", v.name);
            }
            (None, Some("missing")) => {
                assert!(matches!(got, Err(session::SessionError::NotLoggedIn(_))), "{}: {got:?}", v.name);
            }
            _ => panic!("{}: vector has neither expected nor a known error", v.name),
        }
    }
}
