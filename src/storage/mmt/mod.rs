//! The sidecar's own `mmt_`-prefixed tables.

pub mod appointments;
pub mod break_glass;
pub mod chat;
pub mod checkouts;
pub mod dashboard;
pub mod data_keys;
pub mod documents;
pub mod events;
pub mod hl7_messages;
pub mod jobs;
pub mod login_failures;
pub mod messaging;
pub mod mfa;
pub mod migrations;
pub mod patient_index;
pub mod payments;
pub mod prescription_sends;
pub mod products;
pub mod sealed;
pub mod tokens;
pub mod transcriptions;
pub mod visit_prices;
pub mod webhooks;
