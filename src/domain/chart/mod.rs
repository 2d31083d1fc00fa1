//! The patient's chart: vitals and the issue lists (allergies, problems, medications).

pub mod issues;
pub mod vitals;
