//! `fruits emulate`: simulated phones against a local cloud ([`fruits_sim::emulate`]).

use std::process::ExitCode;

use anyhow::Result;
use fruits_core::client::ModelSource;

use crate::args::EmulateArgs;
use crate::model_dir;
use fruits_sim::emulate::{self, EmulateConfig};

/// Runs `fruits emulate`: the report as JSON on stdout, one line per phone on stderr.
/// Fails when a phone's uploads did not all arrive exactly once or a phone is not on
/// the latest projection.
pub fn run(args: &EmulateArgs) -> Result<ExitCode> {
    let location = model_dir::resolve(None, args.manifest.as_deref())?;
    let config = EmulateConfig {
        dataset: args.dataset.clone(),
        workdir: args.workdir.clone(),
        model: ModelSource::ManifestPath(location.manifest),
        phones: args.phones as usize,
        photos_before_sync: args.photos_before_sync,
        photos_after_sync: args.photos_after_sync,
        k: args.k,
        batch_rows: args.batch_rows as usize,
    };
    let report = emulate::run(&config)?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    let mut consistent = true;
    for p in &report.phones {
        let ok = p.embeddings_stored == p.embeddings_queued
            && p.codes_stored == p.codes_queued
            && p.still_queued == 0
            && p.projection_version == report.latest_projection;
        consistent &= ok;
        eprintln!(
            "{}: {} photos, {} embeddings + {} codes uploaded in {} batches, stored {} + {}, projection {:?}, recognised {} ({} correct){}",
            p.device_id,
            p.photos,
            p.embeddings_queued,
            p.codes_queued,
            p.batches_uploaded,
            p.embeddings_stored,
            p.codes_stored,
            p.projection_version,
            p.recognised,
            p.recognised_correctly,
            if ok { "" } else { "  <- MISMATCH" }
        );
    }
    Ok(if consistent { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
