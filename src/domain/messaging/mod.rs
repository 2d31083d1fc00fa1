//! Clinician messaging over OpenEMR's `pnotes`: the thread text format and the message rules.

pub mod message;
pub mod thread;
