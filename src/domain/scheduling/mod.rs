//! Scheduling on OpenEMR's calendar: repeating events, a provider's day, appointment status.

pub mod appointment;
pub mod availability;
pub mod recurrence;
pub mod status;
