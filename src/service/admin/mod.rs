//! Practice administration over OpenEMR's own administration tables.

pub mod facilities;
pub mod users;

use crate::{domain::validation::Issues, service::acl::AclError, storage::StorageError};

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("invalid input")]
    Invalid(Issues),
    #[error(transparent)]
    Acl(#[from] AclError),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl From<Issues> for AdminError {
    fn from(issues: Issues) -> Self {
        Self::Invalid(issues)
    }
}

pub type Result<T> = std::result::Result<T, AdminError>;
