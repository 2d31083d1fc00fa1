//! Live chat endpoints: rooms, members, history, posting, read markers, typing, transcripts.

pub mod chat_api;

use poem::http::StatusCode;

use crate::{http::problem::ApiError, service::chat::ChatError};

impl From<ChatError> for ApiError {
    fn from(err: ChatError) -> Self {
        match err {
            ChatError::NotMember(_) | ChatError::Forbidden(_) | ChatError::Guest => {
                Self::new(StatusCode::FORBIDDEN, err.to_string())
            }
            ChatError::NotFound(_) | ChatError::NoMember(..) => {
                Self::new(StatusCode::NOT_FOUND, err.to_string())
            }
            ChatError::Invalid(issues) => issues.into(),
            ChatError::TooLarge => Self::new(StatusCode::PAYLOAD_TOO_LARGE, err.to_string()),
            ChatError::RateLimited(secs) => Self::too_many_requests(err.to_string(), secs),
            ChatError::Conflict(_) => Self::new(StatusCode::CONFLICT, err.to_string()),
            ChatError::Acl(inner) => inner.into(),
            ChatError::Message(inner) => inner.into(),
            ChatError::Storage(inner) => inner.into(),
        }
    }
}
