//! OpenEMR's messaging tables.

pub mod pnotes;
