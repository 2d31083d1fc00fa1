//! Numbered pages: `page` (1-based, default 1) and `page_size` (default 25, at most 100); and
//! cursors for lists read newest first (`before:<id>`, opaque to clients).

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use poem::http::StatusCode;

use crate::http::problem::ApiError;

pub struct Window {
    pub page: u32,
    pub page_size: u32,
    pub offset: u64,
}

pub fn window(page: Option<u32>, page_size: Option<u32>) -> Window {
    let page = page.unwrap_or(1).max(1);
    let page_size = page_size.unwrap_or(25).clamp(1, 100);
    Window { page, page_size, offset: u64::from(page - 1) * u64::from(page_size) }
}

/// The id a page continues below, from a `cursor` this server issued.
pub fn cursor_before(raw: Option<&str>) -> Result<Option<i64>, ApiError> {
    let Some(raw) = raw else { return Ok(None) };
    let decoded = URL_SAFE_NO_PAD.decode(raw).ok().and_then(|b| String::from_utf8(b).ok());
    decoded
        .and_then(|s| s.strip_prefix("before:").and_then(|id| id.parse().ok()))
        .map(Some)
        .ok_or_else(|| ApiError::new(StatusCode::BAD_REQUEST, "`cursor` is not one this server issued"))
}

/// The cursor after a full page whose last item has `last_id`; none after a short page.
pub fn next_cursor(last_id: Option<i64>, full_page: bool) -> Option<String> {
    last_id.filter(|_| full_page).map(|id| URL_SAFE_NO_PAD.encode(format!("before:{id}")))
}
