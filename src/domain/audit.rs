//! What the sidecar records in OpenEMR's audit log for each PHI access, sign-in and change.

use crate::domain::user::Caller;

/// One audit event, acted by an OpenEMR user; `comments` is plain text (storage encodes it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub event: String,
    pub category: String,
    pub user: String,
    pub groupname: String,
    pub comments: String,
    pub patient_id: Option<i64>,
    pub success: bool,
}

impl AuditEntry {
    /// Something the sidecar itself did about a patient (a scheduled job, a delivery), not a user.
    pub fn system(event: &str, category: &str, patient_id: i64, comments: String) -> Self {
        Self {
            event: event.into(),
            category: category.into(),
            user: "mmt-sidecar".into(),
            groupname: String::new(),
            comments,
            patient_id: Some(patient_id),
            success: true,
        }
    }

    /// A PHI read or write by `caller`, under one of OpenEMR's audit categories.
    pub fn phi(
        caller: &Caller,
        event: &str,
        category: &str,
        patient_id: Option<i64>,
        comments: String,
    ) -> Self {
        Self {
            event: event.into(),
            category: category.into(),
            user: caller.username.clone(),
            groupname: caller.auth_group.clone(),
            comments,
            patient_id,
            success: true,
        }
    }
}
