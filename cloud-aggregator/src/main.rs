//! `aggregator`: see [`fruits_aggregator::cli`].

use clap::Parser;
use fruits_aggregator::cli::{Cli, execute};

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    execute(Cli::parse())
}
