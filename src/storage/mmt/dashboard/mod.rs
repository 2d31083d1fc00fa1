//! The dashboard's own tables: recently viewed patients, and signed-in devices (token families).

pub mod recent;
pub mod sessions;
