//! `aggregator run`: list, sketch (map), merge (reduce), finalize, train the
//! recognition head on the labelled rows (a second pass), publish, report, all in
//! one process, composed of the [`pipeline`](crate::pipeline) steps.

use crate::clock::{self, elapsed_ms as ms};
use crate::error::AggregatorError;
use crate::pipeline::{self, HeadRows, Latest, PublishOptions, RejectionRecord};
use crate::storage::Storage;
use crate::validate::Expected;
use fruits_formats::{ModelId, layout};
use fruits_pca::eigen::Solver;
use fruits_pca::finalize::VarianceThreshold;
use indicatif::ProgressBar;
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Instant;

/// What to run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Key prefix of the shards in the input storage (`""` for all).
    pub input_prefix: String,
    /// The model every shard must come from; by default the one most rows carry.
    pub model_id: Option<ModelId>,
    /// The run's name, used in `runs/<run>/` and `quarantine/<run>/`.
    pub run_id: String,
    /// How the merged sketch is published (the head is trained on the run's shards).
    pub publish: PublishOptions,
}

/// Milliseconds spent in each phase.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Timings {
    /// Listing the input.
    pub list_ms: u64,
    /// Reading, validating, sketching and merging the shards.
    pub sketch_ms: u64,
    /// Eigendecomposition and artifact assembly.
    pub finalize_ms: u64,
    /// Reading the labelled rows again, training and calibrating the head.
    pub head_ms: u64,
    /// Writing the artifact and `latest.json`.
    pub publish_ms: u64,
    /// Everything.
    pub total_ms: u64,
}

/// `runs/<run>/report.json`.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The run's name.
    pub run: String,
    /// When it started, ISO 8601 UTC.
    pub started: String,
    /// The model and dimension shards were held to (none if no shard was valid).
    pub expected: Option<Expected>,
    /// Shards listed.
    pub shards_read: usize,
    /// Shards sketched.
    pub shards_accepted: usize,
    /// Shards quarantined.
    pub shards_rejected: usize,
    /// Quarantined shards per rejection kind.
    pub rejected_by_kind: BTreeMap<&'static str, usize>,
    /// Every quarantined shard with its reason.
    pub rejected: Vec<RejectionRecord>,
    /// Rows sketched.
    pub rows: u64,
    /// Time per phase.
    pub timings: Timings,
    /// Rows sketched per second of the sketch phase.
    pub sketch_rows_per_second: f64,
    /// Solver used, e.g. `randomized(seed=0)`.
    pub solver: String,
    /// Components needed for 90/95/99% of the variance.
    pub components_for: Vec<VarianceThreshold>,
    /// What was published (none when no shard was accepted).
    pub published: Option<Latest>,
    /// Whether this run published a new version (not when the current one came from the
    /// same shards and options).
    pub published_new: bool,
    /// Why labelled rows were seen but no head was published.
    pub head_skipped: Option<String>,
}

/// Runs the whole aggregation and writes its report; fails (after writing the
/// report) when no shard could be accepted.
pub fn run(
    input: &dyn Storage,
    output: &dyn Storage,
    opts: &RunOptions,
    progress: &ProgressBar,
) -> Result<Report, AggregatorError> {
    let start = Instant::now();
    let started = clock::iso8601(clock::now_unix_ms());
    let keys = pipeline::list_shards(input, &opts.input_prefix)?;
    let list_ms = ms(start);
    let expected = pipeline::expectation(input, &keys, opts.model_id);
    progress.set_length(keys.len() as u64);
    let sketch_start = Instant::now();
    let quarantine = layout::quarantine_prefix(&opts.run_id);
    // With no valid shard at all, every shard is refused against an impossible model.
    let against = expected.unwrap_or(Expected { model_id: ModelId([0; 32]), dim: 0 });
    let stage = pipeline::sketch_shards(input, output, &keys, &against, &quarantine, progress)?;
    progress.finish_and_clear();
    let sketch_ms = ms(sketch_start);
    let rejected: Vec<RejectionRecord> = stage.outcomes.iter().filter_map(|o| o.rejection.clone()).collect();
    let mut rejected_by_kind = BTreeMap::new();
    rejected.iter().for_each(|r| *rejected_by_kind.entry(r.kind).or_insert(0) += 1);
    let rows = stage.outcomes.iter().map(|o| o.rows).sum::<u64>();
    let mut report = Report {
        run: opts.run_id.clone(),
        started,
        expected,
        shards_read: keys.len(),
        shards_accepted: keys.len() - rejected.len(),
        shards_rejected: rejected.len(),
        rejected_by_kind,
        rejected,
        rows,
        timings: Timings { list_ms, sketch_ms, ..Timings::default() },
        sketch_rows_per_second: rows as f64 / sketch_start.elapsed().as_secs_f64().max(1e-9),
        solver: match opts.publish.solver {
            Solver::Exact => "exact".into(),
            Solver::Randomized { seed } => format!("randomized(seed={seed})"),
        },
        components_for: Vec::new(),
        published: None,
        published_new: false,
        head_skipped: None,
    };
    let outcome = stage.sketch.ok_or(AggregatorError::NoShardAccepted).and_then(|sketch| {
        let rows = HeadRows { input, keys: &keys };
        let publication = pipeline::publish(output, &sketch, Some(rows), &opts.publish)?;
        report.timings.finalize_ms = publication.finalize_ms;
        report.timings.head_ms = publication.head_ms;
        report.timings.publish_ms = publication.publish_ms;
        report.components_for = publication.latest.components_for.clone();
        report.head_skipped = publication.head_skipped;
        report.published_new = publication.new;
        report.published = Some(publication.latest);
        Ok(())
    });
    report.timings.total_ms = ms(start);
    let key = layout::run_report_key(&opts.run_id);
    output
        .put(&key, &serde_json::to_vec_pretty(&report)?)
        .map_err(AggregatorError::storage(format!("writing {key}")))?;
    outcome.map(|()| report)
}
