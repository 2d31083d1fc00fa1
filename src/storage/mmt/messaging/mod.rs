//! The sidecar's messaging tables.

pub mod receipts;
