//! The patient's chart: vitals (within encounters) and the issue lists.

pub mod clinical_notes;
pub mod issues;
pub mod prescription_pdf;
pub mod prescription_send;
pub mod prescriptions;
pub mod vitals;

use crate::{domain::validation::Issues, service::acl::AclError, storage::StorageError};

#[derive(Debug, thiserror::Error)]
pub enum ChartError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// Turned off by one of OpenEMR's settings.
    #[error("{0}")]
    Disabled(String),
    /// Needs a part of the server that is not configured.
    #[error("{0}")]
    Unavailable(String),
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
