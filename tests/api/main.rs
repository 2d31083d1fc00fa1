//! One integration-test binary (faster to link); each module covers one capability.

// The app type nests every middleware and API, deeper than the default limit when a cold build
// computes its layout.
#![recursion_limit = "256"]

mod acl;
mod admin_users;
mod audio;
mod audit_log;
mod auth;
mod billing;
mod bridge;
mod care_team;
mod chart;
mod chat;
mod checkout;
mod cli;
mod connections;
mod dashboard;
mod documents;
mod encounters;
mod encryption;
mod events;
mod explorer_and_spec;
mod facilities;
mod faults;
mod fhir;
mod fhir_documents;
mod fhir_export;
mod fhir_messages;
mod hardening;
mod health;
mod helpers;
mod hl7_export;
mod hl7_import;
mod hostile;
mod housekeeping;
mod jobs;
mod malformed;
mod messaging;
mod metrics;
mod patient_access;
mod patients;
mod permissions;
mod problems;
mod products;
mod real_schema;
mod replicas;
mod scheduling;
mod security;
mod session_table;
mod shutdown;
mod transcriptions;
mod webhooks;
mod workbooks;
