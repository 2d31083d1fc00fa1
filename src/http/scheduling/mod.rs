//! Scheduling operations: appointments, free slots, a provider's schedule, categories.

pub mod appointments_api;
pub mod schedule_api;
