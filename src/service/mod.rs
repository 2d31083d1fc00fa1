//! Use cases: each combines domain rules with storage calls for one thing the sidecar does.

pub mod status;
