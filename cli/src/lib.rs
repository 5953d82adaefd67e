//! The desktop `fruits` command line, as a library so that end-to-end tests drive
//! exactly what the binary runs.

pub mod args;
pub mod commands;
pub mod demo;
mod model_dir;
pub mod output;

pub use args::Cli;
pub use commands::run;
