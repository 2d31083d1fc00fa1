//! The sidecar's chat tables: rooms with their members and read markers, and messages.

pub mod messages;
pub mod rooms;
