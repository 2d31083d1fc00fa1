//! The sidecar's own `mmt_`-prefixed tables.

pub mod migrations;
