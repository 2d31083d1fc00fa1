//! Rules and states, free of HTTP and SQL.

pub mod compatibility;
pub mod migration_state;
pub mod openemr_version;
