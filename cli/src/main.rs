//! `fruits`: desktop command line for the Fruits embedding engine.

use std::process::ExitCode;

use clap::Parser;
use fruits_cli::{Cli, run};

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("FRUITS_LOG").unwrap_or_else(|_| "warn".into()))
        .init();
    match run(cli.command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
