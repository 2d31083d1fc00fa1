//! Clinician messaging endpoints.

pub mod messages_api;
pub mod notifications_api;

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
