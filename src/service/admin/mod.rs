//! Practice administration over OpenEMR's own administration tables.

pub mod facilities;
pub mod users;

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

/// OpenEMR opens its practice settings (the facility editor among them) to `admin|super` and
/// `admin|practice`; a denial is audited (naming `admin|practice`, the narrower grant that would do).
pub async fn practice_admin(state: &AppState, caller: &Caller) -> std::result::Result<(), AclError> {
    let permissions = state.acl.permissions(&caller.username).await?;
    if permissions.allows(Aco::ADMIN_SUPER, AclLevel::Write) {
        return Ok(());
    }
    permission::require(state, caller, Aco::ADMIN_PRACTICE, AclLevel::Write).await
}
