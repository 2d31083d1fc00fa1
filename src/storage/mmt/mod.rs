//! The sidecar's own `mmt_`-prefixed tables.

pub mod login_failures;
pub mod mfa;
pub mod migrations;
pub mod patient_index;
pub mod tokens;
pub mod transcriptions;
