//! Clinician messaging endpoints.

pub mod messages_api;
pub mod notifications_api;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use poem::http::StatusCode;

use crate::{http::problem::ApiError, service::messaging::messages::MessageError};

impl From<MessageError> for ApiError {
    fn from(err: MessageError) -> Self {
        match err {
            MessageError::NotFound(_) | MessageError::NoNotification(_) => {
                Self::new(StatusCode::NOT_FOUND, err.to_string())
            }
            MessageError::Guest => Self::new(StatusCode::FORBIDDEN, err.to_string()),
            MessageError::Invalid(issues) => issues.into(),
            MessageError::Conflict(_) => Self::new(StatusCode::CONFLICT, err.to_string()),
            MessageError::Acl(inner) => inner.into(),
            MessageError::Storage(inner) => inner.into(),
        }
    }
}

/// The id a page continues below, from a `cursor` this server issued.
fn cursor_before(raw: Option<&str>) -> Result<Option<i64>, ApiError> {
    let Some(raw) = raw else { return Ok(None) };
    let decoded = URL_SAFE_NO_PAD.decode(raw).ok().and_then(|b| String::from_utf8(b).ok());
    decoded
        .and_then(|s| s.strip_prefix("before:").and_then(|id| id.parse().ok()))
        .map(Some)
        .ok_or_else(|| ApiError::new(StatusCode::BAD_REQUEST, "`cursor` is not one this server issued"))
}

/// The cursor after a full page whose last item has `last_id`; none after a short page.
fn next_cursor(last_id: Option<i64>, full_page: bool) -> Option<String> {
    last_id.filter(|_| full_page).map(|id| URL_SAFE_NO_PAD.encode(format!("before:{id}")))
}
