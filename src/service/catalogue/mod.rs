//! Suppliers' product catalogues: imports from their spreadsheets and the search prescribers use.

pub mod imports;
pub mod products;
pub mod workbook;

use crate::{
    domain::{catalogue::product::Supplier, validation::Issues},
    service::acl::AclError,
    storage::StorageError,
};

#[derive(Debug, thiserror::Error)]
pub enum CatalogueError {
    #[error("{0}")]
    NotFound(String),
    #[error("invalid input")]
    Invalid(Issues),
    /// The file cannot be read as a workbook.
    #[error("{0}")]
    Unreadable(String),
    #[error("the workbook does not match {}'s layout: no column for {}", .supplier.display_name(), .missing.join(", "))]
    Layout { supplier: Supplier, missing: Vec<&'static str> },
    #[error(transparent)]
    Acl(#[from] AclError),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl CatalogueError {
    /// Worth trying again later: the database, not the workbook, was the trouble.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Storage(e) if e.is_transient())
    }

    pub fn missing_columns(&self) -> Vec<&'static str> {
        match self {
            Self::Layout { missing, .. } => missing.clone(),
            _ => Vec::new(),
        }
    }
}

impl From<Issues> for CatalogueError {
    fn from(issues: Issues) -> Self {
        Self::Invalid(issues)
    }
}

pub type Result<T> = std::result::Result<T, CatalogueError>;
