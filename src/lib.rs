pub mod app;
pub mod cli;
pub mod config;
pub mod domain;
pub mod http;
pub mod service;
pub mod storage;
pub mod telemetry;
