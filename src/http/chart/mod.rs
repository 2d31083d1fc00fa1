//! The patient's chart: vitals and the allergy, problem and medication lists.

pub mod issues_api;
pub mod vitals_api;
