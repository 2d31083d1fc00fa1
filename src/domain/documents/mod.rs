//! Patient documents in OpenEMR's own store.

pub mod category;
pub mod document;
pub mod ocr;
