//! The patient's chart: vitals, the allergy, problem and medication lists, and prescriptions.

pub mod issues_api;
pub mod prescription_sends_api;
pub mod prescriptions_api;
pub mod vitals_api;
