//! Clinician messaging.

pub mod messages;
pub mod notifications;
