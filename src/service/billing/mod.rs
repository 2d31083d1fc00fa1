//! Billing over OpenEMR's own tables: fee-sheet charges on an encounter, the encounter as an
//! invoice, and patient payments posted into its A/R.

pub mod charges;
pub mod checkout;
pub mod invoice_pdf;
pub mod invoices;
pub mod payments;
pub mod pricing;
pub mod refunds;
pub mod stripe;

use crate::{
    app::AppState,
    domain::{
        acl::{AclLevel, Aco},
        user::Caller,
        validation::Issues,
    },
    service::{acl::AclError, permission},
    storage::StorageError,
};

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
    /// A webhook whose signature does not verify, or whose signed body is not an event.
    #[error("{0}")]
    BadSignature(String),
    /// Stripe is not configured, unreachable, or refused the request.
    #[error("{0}")]
    Unavailable(String),
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

fn entry(caller: &Caller, event: &str, pid: i64, comments: String) -> crate::domain::audit::AuditEntry {
    crate::domain::audit::AuditEntry::phi(caller, event, "Billing", Some(pid), comments)
}

/// OpenEMR shows invoices and payments to `acct|bill` and to `acct|rep_a` (financial reports).
async fn require_reader(state: &AppState, caller: &Caller, pid: Option<i64>) -> Result<(), BillingError> {
    let permissions = state.acl.permissions(&caller.username).await?;
    let aco =
        if permissions.allows(Aco::ACCT_REP_A, AclLevel::View) { Aco::ACCT_REP_A } else { Aco::ACCT_BILL };
    match pid {
        Some(pid) => permission::require_on(state, caller, aco, AclLevel::View, pid).await?,
        None => permission::require(state, caller, aco, AclLevel::View).await?,
    }
    Ok(())
}
