//! `aggregator`: the command line ([`cli`]) over the `fruits_aggregator` library.

mod cli;

use clap::Parser;
use cli::{Cli, execute};

fn main() -> anyhow::Result<()> {
    keep_freed_memory();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    execute(Cli::parse())
}

/// Tells glibc's allocator to keep what the job frees for its next allocations instead
/// of handing it back to the kernel: every shard allocates the same large buffers (a
/// 13 MB sketch in 128 KB tiles, block panels) and frees them at its merge, and with
/// glibc's defaults (mmap above 128 KB, heap trimmed above 256 KB free) each cycle
/// page-faulted them in again. On the 200,000-row benchmark: 1.32 -> 1.14 s, system
/// time 0.50 -> 0.22 s, peak RSS 299 -> 240 MB (`bench/pca/run.sh`, BENCHMARKS.md).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn keep_freed_memory() {
    const MIB: libc::c_int = 1 << 20;
    // SAFETY: mallopt only changes allocator parameters; called before any thread
    // starts. A refused value (return 0) leaves the default, which is still correct.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 * MIB);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1024 * MIB);
        libc::mallopt(libc::M_TOP_PAD, 64 * MIB);
    }
}

/// Other allocators keep their defaults.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn keep_freed_memory() {}
