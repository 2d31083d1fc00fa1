//! What the dashboard and the profile read and write in OpenEMR's tables.

pub mod counts;
pub mod profile;
