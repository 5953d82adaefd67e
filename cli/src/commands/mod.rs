//! Subcommand dispatch.

pub mod dataset;
pub mod demo;
pub mod embed;
pub mod emulate;
pub mod recognize;

use std::process::ExitCode;

use crate::args::Command;

/// Runs one subcommand; `Ok` carries the process exit code.
pub fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Embed(args) => embed::run(&args),
        Command::Dataset(args) => dataset::run(&args),
        Command::Demo(args) => demo::run(&args),
        Command::Emulate(args) => emulate::run(&args),
        Command::Recognize(args) => recognize::run(&args),
    }
}
