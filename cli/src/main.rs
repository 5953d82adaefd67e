//! `fruits`: the desktop command line of the Fruits engine (embed photos, build a
//! data set, emulate phones, the demo), a thin shell over the crates.

mod args;
mod commands;
mod demo;
mod model_dir;
mod output;

use std::process::ExitCode;

use args::Cli;
use clap::Parser;
use commands::run;

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
