//! Clinician messaging.

pub mod messages;
