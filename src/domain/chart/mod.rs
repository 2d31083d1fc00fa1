//! The patient's chart: vitals, the issue lists (allergies, problems, medications) and prescriptions.

pub mod issues;
pub mod prescription;
pub mod prescription_send;
pub mod vitals;
