//! Clinician messaging over OpenEMR's `pnotes`: the thread text format and the message rules.

pub mod message;
pub mod notification;
pub mod thread;
