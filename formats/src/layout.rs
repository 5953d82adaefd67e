//! Where objects and endpoints live: the storage keys and HTTP routes that phones, ingest
//! and the aggregator share, each defined once (pure: strings in, strings out).
//!
//! Storage, one bucket or directory:
//!
//! ```text
//! incoming/<device>/<batch>.shard                         full embeddings: the PCA's input
//! codes/<model>/v<projection>/<device>/<batch>.shard      projected codes, kept apart
//! models/projection/<model>/v<n>.bin, .../<model>/latest.json  published projections
//! runs/<run>/report.json, quarantine/<run>/, reports/<run>/  the aggregator's own output
//! ```
//!
//! `<model>` is a [`ModelId`] (64 hex digits): every embedding model has its own series
//! of projections and its own codes, so a fleet moving from one model to another (the f32
//! MobileNetV2 to the int8 one) never mixes two embedding spaces. Full embeddings carry
//! their model in each shard's header, and the aggregator sketches one model per run.
//!
//! A batch's identity is its device and batch id alone: nothing of the device's clock is in
//! its key, so a retry days later, or from a device whose clock moved, rewrites the same
//! object. (Keys of older deployments, `incoming/<date>/<device>/<batch>.shard`, are still
//! read as input: everything under `incoming/` is.)
//!
//! HTTP, served by `aggregator ingest`: `PUT /v1/batches/<batch>` uploads one shard, and
//! `GET /models/projection/<model>/<file>` serves the published files under their storage
//! keys (a phone fetches its own model's `latest.json`, then the artifact it names).

use crate::model_id::ModelId;

/// Full embeddings uploaded by phones: what the aggregator's PCA reads.
pub const INCOMING_PREFIX: &str = "incoming/";

/// Projected codes uploaded by phones after a sync (not PCA input).
pub const CODES_PREFIX: &str = "codes/";

/// Everything published for phones (read-only to them, through ingest).
pub const MODELS_PREFIX: &str = "models/";

/// Published projection artifacts and their signed manifests, one series per model below.
pub const PROJECTION_PREFIX: &str = "models/projection/";

/// Copies of the shards a run refused, with their reasons.
pub const QUARANTINE_PREFIX: &str = "quarantine/";

/// A run's own state: its report and, on EMR, its partial sketches.
pub const RUNS_PREFIX: &str = "runs/";

/// The PCA and recognition reports.
pub const REPORTS_PREFIX: &str = "reports/";

/// The signed manifest's file name in a model's series ([`latest_key`]).
pub const LATEST_FILE: &str = "latest.json";

/// Top-level prefixes that are never PCA input, even when the aggregator reads and writes
/// one bucket: its own output (quarantined copies, run state, published models, reports) and
/// the phones' projected codes.
pub const NOT_INPUT_PREFIXES: [&str; 5] = [QUARANTINE_PREFIX, RUNS_PREFIX, MODELS_PREFIX, REPORTS_PREFIX, CODES_PREFIX];

/// The route serving published files under their storage keys (a slash, then
/// [`PROJECTION_PREFIX`], the model and the file), in the router's `{parameter}` syntax:
/// phones fetch a slash and the [`latest_key`] of their model.
pub const MODEL_FILE_ROUTE: &str = "/models/projection/{model}/{file}";

/// The upload route, in the router's `{parameter}` syntax.
pub const BATCH_ROUTE: &str = "/v1/batches/{batch_id}";

/// The HTTP path a batch is uploaded to (and signed over).
pub fn batch_path(batch_id: &str) -> String {
    format!("/v1/batches/{batch_id}")
}

/// The file-name suffix of every shard.
pub const SHARD_SUFFIX: &str = ".shard";

/// A device's batch below any prefix: `<device>/<batch>.shard` (what `fruits embed --format
/// shard` writes under its output directory).
pub fn device_batch_key(device: &str, batch_id: &str) -> String {
    format!("{device}/{batch_id}{SHARD_SUFFIX}")
}

/// The key of a device's batch of full embeddings.
pub fn incoming_key(device: &str, batch_id: &str) -> String {
    format!("{INCOMING_PREFIX}{}", device_batch_key(device, batch_id))
}

/// The prefix of the codes of `model`'s projection `version`.
pub fn codes_prefix(model: &ModelId, version: u32) -> String {
    format!("{CODES_PREFIX}{model}/v{version}/")
}

/// The key of a device's batch of codes of `model`'s projection `version`.
pub fn codes_key(model: &ModelId, version: u32, device: &str, batch_id: &str) -> String {
    format!("{}{}", codes_prefix(model, version), device_batch_key(device, batch_id))
}

/// The prefix of `model`'s series of published projections.
pub fn projection_prefix(model: &ModelId) -> String {
    format!("{PROJECTION_PREFIX}{model}/")
}

/// The key of the published file `file` in `model`'s series (what [`MODEL_FILE_ROUTE`]
/// serves for that model and file).
pub fn published_key(model: &ModelId, file: &str) -> String {
    format!("{}{file}", projection_prefix(model))
}

/// The key of `model`'s projection artifact `version`.
pub fn projection_key(model: &ModelId, version: u32) -> String {
    published_key(model, &format!("v{version}.bin"))
}

/// The key of the signed manifest naming `model`'s current projection, as stored and as
/// served over HTTP.
pub fn latest_key(model: &ModelId) -> String {
    published_key(model, LATEST_FILE)
}

/// The file name of a key published directly in `model`'s series (what a phone of that
/// model fetches and installs), or `None` for any other key.
pub fn projection_file<'k>(model: &ModelId, key: &'k str) -> Option<&'k str> {
    key.strip_prefix(&projection_prefix(model))
        .filter(|name| !name.is_empty() && !name.contains('/') && !name.contains(".."))
}

/// Where run `run` copies the shards it refuses.
pub fn quarantine_prefix(run: &str) -> String {
    format!("{QUARANTINE_PREFIX}{run}/")
}

/// Where the parallel tasks of run `run` (Spark on EMR) keep their partial sketches.
pub fn run_sketches_prefix(run: &str) -> String {
    format!("{RUNS_PREFIX}{run}/sketches/")
}

/// The report of run `run` (`aggregator run`'s JSON).
pub fn run_report_key(run: &str) -> String {
    format!("{RUNS_PREFIX}{run}/report.json")
}

/// The file `name` of report `run` (`aggregator report`).
pub fn report_key(run: &str, name: &str) -> String {
    format!("{REPORTS_PREFIX}{run}/{name}")
}

/// Whether `key` may be PCA input: a shard outside [`NOT_INPUT_PREFIXES`].
pub fn is_input_shard(key: &str) -> bool {
    key.ends_with(SHARD_SUFFIX) && !NOT_INPUT_PREFIXES.iter().any(|p| key.starts_with(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_routes_agree_with_each_other() {
        let m = ModelId([0xab; 32]);
        let other = ModelId([0xcd; 32]);
        let hex = "ab".repeat(32);
        assert_eq!(incoming_key("d", "b"), "incoming/d/b.shard");
        assert_eq!(codes_key(&m, 3, "d", "b"), format!("codes/{hex}/v3/d/b.shard"));
        assert_eq!(projection_key(&m, 2), format!("models/projection/{hex}/v2.bin"));
        assert_eq!(latest_key(&m), format!("models/projection/{hex}/latest.json"));
        assert_eq!(projection_file(&m, &projection_key(&m, 2)), Some("v2.bin"));
        assert_eq!(projection_file(&other, &projection_key(&m, 2)), None, "another model's series");
        assert_eq!(projection_file(&m, &format!("models/projection/{hex}/../x")), None);
        assert_eq!(projection_file(&m, "models/projection/v2.bin"), None);
        assert_eq!(device_batch_key("d", "b"), "d/b.shard");
        assert_eq!(codes_prefix(&m, 3), format!("codes/{hex}/v3/"));
        assert_ne!(codes_prefix(&m, 3), codes_prefix(&other, 3));
        assert_eq!(quarantine_prefix("r1"), "quarantine/r1/");
        assert_eq!(run_report_key("r1"), "runs/r1/report.json");
        assert_eq!(run_sketches_prefix("r1"), "runs/r1/sketches/");
        assert_eq!(report_key("r1", "index.html"), "reports/r1/index.html");
        assert_eq!(BATCH_ROUTE.replace("{batch_id}", "b1"), batch_path("b1"));
        let route = MODEL_FILE_ROUTE.replace("{model}", &m.to_string()).replace("{file}", LATEST_FILE);
        assert_eq!(route, format!("/{}", latest_key(&m)));
        assert!(is_input_shard(&incoming_key("d", "b")));
        assert!(!is_input_shard(&codes_key(&m, 3, "d", "b")));
        assert!(!is_input_shard(&format!("quarantine/r1/{}", incoming_key("d", "b"))));
        assert!(!is_input_shard("incoming/2026-12-03/d/b.json"));
        assert!(is_input_shard("b0.shard"), "a directory of shards is input too");
    }
}
