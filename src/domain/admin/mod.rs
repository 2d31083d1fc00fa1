//! Practice administration over OpenEMR's own administration tables.

pub mod facility;
pub mod user_account;
