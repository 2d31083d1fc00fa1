//! One integration-test binary (faster to link); each module covers one capability.

mod auth;
mod bridge;
mod cli;
mod explorer_and_spec;
mod health;
mod helpers;
mod problems;
mod real_schema;
mod security;
mod shutdown;
