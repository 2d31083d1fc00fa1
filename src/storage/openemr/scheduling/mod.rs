//! OpenEMR's calendar: `openemr_postcalendar_events` and `_categories`, the `apptstat` list, and
//! the patient flow board (`patient_tracker`, `patient_tracker_element`).

pub mod categories;
pub mod events;
pub mod tracker;
