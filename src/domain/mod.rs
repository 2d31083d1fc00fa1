//! Rules and states, free of HTTP and SQL.

pub mod acl;
pub mod audio;
pub mod audit;
pub mod care_team;
pub mod chart;
pub mod chat;
pub mod compatibility;
pub mod dashboard;
pub mod documents;
pub mod encounter;
pub mod event;
pub mod job;
pub mod lockout;
pub mod messaging;
pub mod migration_state;
pub mod openemr_version;
pub mod patient;
pub mod patient_access;
pub mod patient_search;
pub mod scheduling;
pub mod throttle;
pub mod token;
pub mod transcription;
pub mod user;
pub mod validation;
pub mod webhook;
