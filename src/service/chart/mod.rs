//! The patient's chart: vitals (within encounters) and the issue lists.

pub mod issues;
pub mod prescription_pdf;
pub mod prescriptions;
pub mod vitals;

use crate::{domain::validation::Issues, service::acl::AclError, storage::StorageError};

#[derive(Debug, thiserror::Error)]
pub enum ChartError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("invalid chart entry")]
    Invalid(Issues),
    #[error(transparent)]
    Acl(#[from] AclError),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl From<Issues> for ChartError {
    fn from(issues: Issues) -> Self {
        Self::Invalid(issues)
    }
}

impl From<sqlx::Error> for ChartError {
    fn from(e: sqlx::Error) -> Self {
        Self::Storage(StorageError::from_sqlx(e))
    }
}
