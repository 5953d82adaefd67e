//! The desktop `fruits` command line, as a library so that end-to-end tests drive
//! exactly what the binary runs.

// No panic reachable from input or from another request's failure (tests exempt).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod args;
pub mod commands;
pub mod demo;
mod model_dir;
pub mod output;

pub use args::Cli;
pub use commands::run;
