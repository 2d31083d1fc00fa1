//! Patient documents: OpenEMR's document store, read and written as OpenEMR does.

pub mod context;
pub mod keys;
pub mod ocr;
pub mod records;
pub mod views;
