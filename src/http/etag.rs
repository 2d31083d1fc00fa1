//! Versions as entity tags: the `ETag` a read answers with and the `If-Match` a write may carry.

pub fn etag(version: u32) -> String {
    format!("\"{version}\"")
}

/// A tag no version carries (they start at 1): what an `If-Match` this server did not issue
/// stands for, so it fails the precondition as a stale tag does, once the request's content has
/// been checked (a malformed body is a 422 whatever the tag).
const NEVER_ISSUED: u32 = 0;

/// `"3"`, `W/"3"` or `3`; anything else can never match.
pub fn parse_if_match(raw: Option<String>) -> Option<u32> {
    raw.map(|raw| {
        raw.trim().trim_start_matches("W/").trim_matches('"').parse::<u32>().unwrap_or(NEVER_ISSUED)
    })
}
