//! Practice administration: OpenEMR's facilities.

pub mod facilities_api;
