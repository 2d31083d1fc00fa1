//! OpenEMR's own tables. The sidecar never creates, alters or drops any of them.

pub mod acl;
pub mod audit_log;
pub mod billing;
pub mod care_teams;
pub mod chart;
pub mod clinical_notes;
pub mod columns;
pub mod dashboard;
pub mod documents;
pub mod encounters;
pub mod facilities;
pub mod globals;
pub mod login_counters;
pub mod messaging;
pub mod mfa;
pub mod patient_access;
pub mod patients;
pub mod php_sessions;
pub mod providers;
pub mod requirements;
pub mod scheduling;
pub mod sequences;
pub mod session_tracker;
pub mod users;
pub mod uuid_registry;
pub mod version;
