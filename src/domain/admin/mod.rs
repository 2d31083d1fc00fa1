//! Practice administration over OpenEMR's own administration tables.

pub mod facility;
