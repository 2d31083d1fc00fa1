//! Patient documents: OpenEMR's rows and the files under its site folder.

pub mod files;
pub mod rows;
