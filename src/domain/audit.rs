//! What the sidecar records in OpenEMR's audit log for each PHI access, sign-in and change.

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
