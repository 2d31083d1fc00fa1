//! Use cases: each combines domain rules with storage calls for one thing the sidecar does.

pub mod acl;
pub mod admin;
pub mod audio;
pub mod audit;
pub mod billing;
pub mod cached;
pub mod care_team;
pub mod catalogue;
pub mod chart;
pub mod chat;
pub mod credentials;
pub mod dashboard;
pub mod documents;
pub mod encounters;
pub mod events;
pub mod fhir_export;
pub mod group_commit;
pub mod hl7;
pub mod hl7_import;
pub mod housekeeping;
pub mod jobs;
pub mod key_rotation;
pub mod mail;
pub mod messaging;
pub mod mfa;
pub mod mirrored;
pub mod patient_access;
pub mod patient_index;
pub mod patients;
pub mod pdf;
pub mod permission;
pub mod scheduling;
pub mod session_bridge;
pub mod sign_in;
pub mod status;
pub mod transcriptions;
pub mod webhooks;

/// Now, as OpenEMR's PHP writes DATETIME columns: local wall-clock time.
pub fn wall_clock_now() -> chrono::NaiveDateTime {
    chrono::Local::now().naive_local()
}
