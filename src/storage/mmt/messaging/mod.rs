//! The sidecar's messaging tables.

pub mod notifications;
pub mod receipts;
