//! OpenEMR's own tables. The sidecar never creates, alters or drops any of them.

pub mod columns;
pub mod requirements;
pub mod version;
