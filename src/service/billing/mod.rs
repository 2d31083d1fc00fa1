//! Billing over OpenEMR's own tables: fee-sheet charges on an encounter, the encounter as an
//! invoice, and patient payments posted into its A/R.

pub mod charges;
pub mod invoices;
pub mod payments;

use crate::{domain::validation::Issues, service::acl::AclError, storage::StorageError};

#[derive(Debug, thiserror::Error)]
pub enum BillingError {
    #[error("{0}")]
    NotFound(String),
    /// The record is in a state that refuses the change (a billed line, a voided payment).
    #[error("{0}")]
    Conflict(String),
    /// `If-Match` named a version of the visit's charges that is no longer current.
    #[error("{0}")]
    Stale(String),
    #[error("invalid billing request")]
    Invalid(Issues),
    #[error(transparent)]
    Acl(#[from] AclError),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl From<Issues> for BillingError {
    fn from(issues: Issues) -> Self {
        Self::Invalid(issues)
    }
}

impl From<sqlx::Error> for BillingError {
    fn from(e: sqlx::Error) -> Self {
        Self::Storage(StorageError::from_sqlx(e))
    }
}

fn entry(
    caller: &crate::domain::user::Caller,
    event: &str,
    pid: i64,
    comments: String,
) -> crate::domain::audit::AuditEntry {
    crate::domain::audit::AuditEntry::phi(caller, event, "Billing", Some(pid), comments)
}
