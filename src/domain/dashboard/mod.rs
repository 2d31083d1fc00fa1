//! Rules of the clinician's dashboard and profile.

pub mod profile;
