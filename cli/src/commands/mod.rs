//! Subcommand dispatch.

pub mod embed;

use std::process::ExitCode;

use crate::args::Command;

/// Runs one subcommand; `Ok` carries the process exit code.
pub fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Embed(args) => embed::run(&args),
    }
}
