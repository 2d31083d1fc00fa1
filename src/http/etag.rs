//! Versions as entity tags: the `ETag` a read answers with and the `If-Match` a write may carry.

use poem::http::StatusCode;

use super::problem::ApiError;

pub fn etag(version: u32) -> String {
    format!("\"{version}\"")
}

/// `"3"`, `W/"3"` or `3`; anything else can never match, so it fails the precondition.
pub fn parse_if_match(raw: Option<String>) -> Result<Option<u32>, ApiError> {
    let Some(raw) = raw else { return Ok(None) };
    raw.trim().trim_start_matches("W/").trim_matches('"').parse::<u32>().map(Some).map_err(|_| {
        ApiError::new(StatusCode::PRECONDITION_FAILED, "If-Match is not an ETag this server issued")
    })
}
