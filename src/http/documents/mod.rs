//! Patient document endpoints.

pub mod context_api;
pub mod documents_api;
mod form;

use poem::http::StatusCode;

use crate::{http::problem::ApiError, service::documents::records::DocumentError};

impl From<DocumentError> for ApiError {
    fn from(err: DocumentError) -> Self {
        let status = match err {
            DocumentError::Acl(inner) => return inner.into(),
            DocumentError::Storage(inner) => return inner.into(),
            DocumentError::Invalid(issues) => return issues.into(),
            DocumentError::NotFound(_) | DocumentError::NoPatient(_) | DocumentError::LinkGone => {
                StatusCode::NOT_FOUND
            }
            DocumentError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            DocumentError::CategoryDenied(_) => StatusCode::FORBIDDEN,
            DocumentError::Unavailable(_) | DocumentError::Disk(_) => StatusCode::SERVICE_UNAVAILABLE,
            DocumentError::Unreadable(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        if let DocumentError::Disk(e) = &err {
            tracing::error!(error = %e.kind(), "the document store failed");
        }
        Self::new(status, err.to_string())
    }
}
