// ApiError carries its problem document by value; it is built at most once per request.
#![allow(clippy::result_large_err)]

pub mod app;
pub mod cli;
pub mod config;
pub mod domain;
pub mod fhir;
pub mod hl7_files;
pub mod http;
pub mod mllp;
pub mod php;
pub mod service;
pub mod storage;
pub mod telemetry;
