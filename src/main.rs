use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    mmt_sidecar::cli::run(mmt_sidecar::cli::Cli::parse()).await
}
