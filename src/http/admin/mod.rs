//! Practice administration: OpenEMR's facilities, staff accounts and roles.

pub mod facilities_api;
pub mod users_api;
