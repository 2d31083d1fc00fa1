//! The chart tables: form_vitals (+ forms, form_vital_details, uuid_mapping) and lists
//! (+ lists_medication, issue_encounter, lists_touch), written as OpenEMR's own screens write them.

pub mod issues;
pub mod list_options;
pub mod prescriptions;
pub mod vitals;
