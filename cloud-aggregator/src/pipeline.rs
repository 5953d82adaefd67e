//! The map, reduce and publish steps over a [`Storage`], shared by `aggregator run`
//! and the separate `sketch` / `merge` / `finalize` commands.

use crate::finalize::Pca;
use crate::head::LabelledSet;
use crate::sketch::{BLOCK_ROWS, ScatterSketch, merge_in_fixed_tree};
use crate::storage::Storage;
use crate::validate::{self, Expected, Rejection};
use anyhow::Context;
use ed25519_dalek::SigningKey;
use fruits_formats::ModelId;
use fruits_formats::layout::{self, LATEST_MANIFEST};
use fruits_formats::{ProjectionManifest, sign_artifact};
use indicatif::ProgressBar;
use serde::Serialize;
use sha2::Digest;

/// What happened to one shard.
#[derive(Debug, Clone, Serialize)]
pub struct ShardOutcome {
    /// The shard's key in the input storage.
    pub key: String,
    /// Rows it contributed (0 when rejected).
    pub rows: u64,
    /// Why it was refused, if it was.
    pub rejection: Option<RejectionRecord>,
}

/// A refused shard's reason, as written next to its quarantined copy.
#[derive(Debug, Clone, Serialize)]
pub struct RejectionRecord {
    /// The shard's key in the input storage.
    pub key: String,
    /// Stable short kind (see [`Rejection::kind`]).
    pub kind: &'static str,
    /// Human-readable detail.
    pub detail: String,
    /// Where the copy was put, if the bytes could be read.
    pub quarantined_as: Option<String>,
}

/// The result of sketching a list of shards.
#[derive(Debug)]
pub struct SketchStage {
    /// The merged sketch of every accepted shard (`None` if none was).
    pub sketch: Option<ScatterSketch>,
    /// One outcome per key, in key order.
    pub outcomes: Vec<ShardOutcome>,
}

/// A worker thread's buffers for one shard's bytes and decoded values (a block of
/// them when sketching), reused from shard to shard. Shards are tens of MB:
/// allocating both afresh for each one cost a quarter of `aggregator run`'s CPU time
/// in page faults (`perf`, 200,000 x 1280).
#[derive(Default)]
struct ReadBuffers {
    bytes: Vec<u8>,
    values: Vec<f32>,
}

thread_local! {
    /// Taken while a shard is processed and put back after, never borrowed across
    /// the sketch: rayon may run another shard on this thread while it waits.
    static READ_BUFFERS: std::cell::Cell<ReadBuffers> = std::cell::Cell::default();
}

/// Keys of every shard under `prefix` that may be PCA input ([`layout::is_input_shard`]),
/// sorted: a run never reads its own quarantine, so reruns over one bucket do not multiply it.
pub fn list_shards(input: &dyn Storage, prefix: &str) -> anyhow::Result<Vec<String>> {
    let mut keys = input.list(prefix).context("listing shards")?;
    keys.retain(|k| layout::is_input_shard(k));
    Ok(keys)
}

/// Splits sorted `keys` into at most `parts` contiguous, non-empty partitions of
/// near-equal size (the first ones one key larger), in order: the same keys always
/// give the same partitions, so a retried or resumed task sketches the same shards.
pub fn partition(keys: &[String], parts: usize) -> Vec<Vec<String>> {
    let parts = parts.clamp(1, keys.len().max(1));
    let (base, extra) = (keys.len() / parts, keys.len() % parts);
    let mut rest = keys;
    (0..parts)
        .map(|i| {
            let (head, tail) = rest.split_at(base + usize::from(i < extra));
            rest = tail;
            head.to_vec()
        })
        .filter(|p| !p.is_empty())
        .collect()
}

/// What shards are held to: the (model, dimension) that most rows of valid embedding
/// shards carry, among all of them or, with `model_id`, among that model's (an impossible
/// dimension when no shard of it exists, so that every shard is refused with a reason).
/// Never the first shard in key order: an old model's shards under an earlier key must not
/// turn a run against the current ones. Ties go to the (model, dimension) seen first. The
/// choice and its runners-up are logged.
pub fn expectation(input: &dyn Storage, keys: &[String], model_id: Option<ModelId>) -> Option<Expected> {
    let mut rows: Vec<(Expected, u64)> = Vec::new();
    for key in keys {
        let Ok(bytes) = input.get(key) else { continue };
        let Some((found, n)) = validate::expectation_of(&bytes) else { continue };
        if model_id.is_some_and(|m| m != found.model_id) {
            continue;
        }
        match rows.iter_mut().find(|(e, _)| *e == found) {
            Some((_, total)) => *total += n,
            None => rows.push((found, n)),
        }
    }
    // `max_by_key` keeps the last of equal maxima: reversed, the first seen wins ties.
    let chosen = rows.iter().rev().max_by_key(|(_, n)| *n).map(|(e, _)| *e);
    for (e, n) in &rows {
        tracing::info!(model = %e.model_id, dim = e.dim, rows = n, chosen = chosen == Some(*e), "expected model");
    }
    match (chosen, model_id) {
        (Some(e), _) => Some(e),
        (None, Some(model_id)) => Some(Expected { model_id, dim: 0 }),
        (None, None) => None,
    }
}

/// Reads, validates and sketches `keys` in parallel, merging in a fixed tree over
/// the given order; refused shards are copied to `quarantine_prefix` in `output`
/// with a `.reason.json` beside them.
pub fn sketch_shards(
    input: &dyn Storage,
    output: &dyn Storage,
    keys: &[String],
    expected: &Expected,
    quarantine_prefix: &str,
    progress: &ProgressBar,
) -> anyhow::Result<SketchStage> {
    let leaf = |i: usize| -> anyhow::Result<SketchStage> {
        let key = &keys[i];
        let mut buffers = READ_BUFFERS.take();
        let read = input.get_into(key, &mut buffers.bytes);
        let sketched = match &read {
            Ok(()) => sketch_shard(&buffers.bytes, expected, &mut buffers.values),
            Err(e) => Err(Rejection::Unreadable(e.to_string())),
        };
        progress.inc(1);
        let stage = match sketched {
            Ok(sketch) => {
                let rows = sketch.rows();
                SketchStage {
                    sketch: Some(sketch),
                    outcomes: vec![ShardOutcome { key: key.clone(), rows, rejection: None }],
                }
            }
            Err(rejection) => {
                let bytes = read.is_ok().then_some(buffers.bytes.as_slice());
                let record = quarantine(output, quarantine_prefix, key, bytes, &rejection)?;
                SketchStage {
                    sketch: None,
                    outcomes: vec![ShardOutcome { key: key.clone(), rows: 0, rejection: Some(record) }],
                }
            }
        };
        READ_BUFFERS.set(buffers);
        Ok(stage)
    };
    let merge = |a: anyhow::Result<SketchStage>, b: anyhow::Result<SketchStage>| -> anyhow::Result<SketchStage> {
        let (mut a, b) = (a?, b?);
        a.sketch = merge_pair(a.sketch, b.sketch)?;
        a.outcomes.extend(b.outcomes);
        Ok(a)
    };
    merge_in_fixed_tree(keys.len(), &leaf, &merge).unwrap_or(Ok(SketchStage { sketch: None, outcomes: Vec::new() }))
}

/// The sketch of one stored shard, its rows decoded [`BLOCK_ROWS`] at a time into
/// `block` and sketched while they are in cache; a shard refused anywhere (a
/// non-finite value in its last row included) gives no sketch at all.
fn sketch_shard(bytes: &[u8], expected: &Expected, block: &mut Vec<f32>) -> Result<ScatterSketch, Rejection> {
    let view = validate::check_view(bytes, expected)?;
    let mut sketch = ScatterSketch::new(expected.model_id, expected.dim);
    let rows = view.header().rows as usize;
    for start in (0..rows).step_by(BLOCK_ROWS) {
        view.rows_into(start..(start + BLOCK_ROWS).min(rows), block)?;
        sketch.add_rows(block).expect("rows of the expected dimension");
    }
    Ok(sketch)
}

/// Merges two optional sketches (`None` is the empty sketch).
pub fn merge_pair(a: Option<ScatterSketch>, b: Option<ScatterSketch>) -> anyhow::Result<Option<ScatterSketch>> {
    Ok(match (a, b) {
        (Some(mut a), Some(b)) => {
            a.merge(&b)?;
            Some(a)
        }
        (a, b) => a.or(b),
    })
}

/// Merges stored sketches in the given order over the fixed tree.
pub fn merge_sketches(blobs: &[Vec<u8>]) -> anyhow::Result<ScatterSketch> {
    let leaf = |i: usize| ScatterSketch::decode(&blobs[i]).map(Some).with_context(|| format!("sketch #{i}"));
    let merge = |a: anyhow::Result<Option<ScatterSketch>>, b: anyhow::Result<Option<ScatterSketch>>| merge_pair(a?, b?);
    merge_in_fixed_tree(blobs.len(), &leaf, &merge).context("no sketches to merge")??.context("no sketches to merge")
}

fn quarantine(
    output: &dyn Storage,
    prefix: &str,
    key: &str,
    bytes: Option<&[u8]>,
    rejection: &Rejection,
) -> anyhow::Result<RejectionRecord> {
    let copy = format!("{prefix}{key}");
    if let Some(bytes) = bytes {
        output.put(&copy, bytes).with_context(|| format!("quarantining {key}"))?;
    }
    let record = RejectionRecord {
        key: key.to_owned(),
        kind: rejection.kind(),
        detail: rejection.to_string(),
        quarantined_as: bytes.map(|_| copy.clone()),
    };
    output.put(&format!("{copy}.reason.json"), &serde_json::to_vec_pretty(&record)?)?;
    tracing::warn!(key, reason = %rejection, "shard quarantined");
    Ok(record)
}

/// The second pass for the recognition head: the labelled rows of every valid
/// full-embedding shard among `keys` (refused shards were quarantined by the first
/// pass and are skipped here), in key order.
pub fn labelled_rows(input: &dyn Storage, keys: &[String], expected: &Expected) -> anyhow::Result<LabelledSet> {
    let mut set = LabelledSet::new(expected.dim as usize);
    let mut buffers = ReadBuffers::default();
    for key in keys {
        input.get_into(key, &mut buffers.bytes).with_context(|| format!("reading {key}"))?;
        if let Ok(shard) = validate::check_shard(&buffers.bytes, expected, std::mem::take(&mut buffers.values)) {
            set.add_shard(&shard);
            buffers.values = shard.into_parts().1;
        }
    }
    Ok(set)
}

/// The `source` of a projection whose head was trained on the labelled rows of
/// `keys`: distinct from the same PCA without a head.
pub fn source_with_head(source: &str, keys: &[String]) -> String {
    let mut h = sha2::Sha256::new();
    h.update(source.as_bytes());
    h.update(b"head");
    keys.iter().for_each(|k| h.update(k.as_bytes()));
    hex::encode(h.finalize())
}

/// The version after the one `latest.json` names (1 for the first). Read, not listed:
/// the aggregator's IAM role may read `models/projection/latest.json` but not list
/// `models/` (deploy/policies/emr-instance.json).
pub fn next_version(output: &dyn Storage) -> anyhow::Result<u32> {
    let latest = match output.get(LATEST_MANIFEST) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(1),
        Err(e) => return Err(e).context("reading the published latest.json"),
    };
    let value: serde_json::Value = serde_json::from_slice(&latest).context("latest.json is not JSON")?;
    let version =
        value["version"].as_u64().and_then(|v| u32::try_from(v).ok()).context("latest.json has no version")?;
    Ok(version + 1)
}

/// What `models/projection/latest.json` says: the signed manifest phones verify
/// ([`ProjectionManifest`]) plus variance statistics for people.
#[derive(Debug, Clone, Serialize)]
pub struct Latest {
    /// Version, key, size, sha256, signature, created, k and model id.
    #[serde(flatten)]
    pub manifest: ProjectionManifest,
    /// Rows the PCA was computed from.
    pub rows: u64,
    /// Total variance (trace of the covariance).
    pub total_variance: f64,
    /// Share of variance explained by all k components.
    pub explained_variance_ratio_total: f64,
    /// Share of variance of each component.
    pub explained_variance_ratio: Vec<f64>,
    /// Components needed for 90/95/99% of the variance.
    pub components_for: Vec<crate::finalize::VarianceThreshold>,
    /// What it was computed from ([`finalize_source`]): a `finalize` of the same
    /// inputs finds it here and publishes nothing new.
    pub source: String,
    /// The recognition head's training measurements, when the artifact carries one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub head: Option<crate::head::HeadMetrics>,
}

/// Identifies a finalize's inputs: sha256 of the sketch's bytes, `k` and the solver.
pub fn finalize_source(sketch_bytes: &[u8], k: u32, solver: crate::eigen::Solver) -> String {
    let mut h = sha2::Sha256::new();
    h.update(sketch_bytes);
    h.update(k.to_le_bytes());
    h.update(format!("{solver:?}").as_bytes());
    hex::encode(h.finalize())
}

/// The published `latest.json` if it was computed from `source` (a retried or
/// resumed finalize), else `None`.
pub fn published_from(output: &dyn Storage, source: &str) -> anyhow::Result<Option<serde_json::Value>> {
    match output.get(LATEST_MANIFEST) {
        Ok(bytes) => {
            let latest: serde_json::Value = serde_json::from_slice(&bytes).context("latest.json is not JSON")?;
            Ok((latest["source"] == source).then_some(latest))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).context("reading the published latest.json"),
    }
}

/// Writes the artifact as `models/projection/v<version>.bin`, then `latest.json`
/// (artifact first, so `latest.json` never names a missing object). With no
/// signing key the signature is empty: phones refuse such a publication, which is
/// only for local experiments.
pub fn publish(
    output: &dyn Storage,
    pca: &Pca,
    signing_key: Option<&SigningKey>,
    source: String,
) -> anyhow::Result<Latest> {
    let a = &pca.artifact;
    let bytes = a.encode()?;
    let key = layout::projection_key(a.version);
    output.put(&key, &bytes).with_context(|| format!("writing {key}"))?;
    let created = crate::clock::iso8601(a.created_unix_ms);
    let manifest = match signing_key {
        Some(signing_key) => sign_artifact(&bytes, a, &key, &created, signing_key),
        None => {
            tracing::warn!("publishing without --signing-key: phones will refuse this projection");
            let mut m = sign_artifact(&bytes, a, &key, &created, &SigningKey::from_bytes(&[0; 32]));
            m.signature.clear();
            m
        }
    };
    let latest = Latest {
        manifest,
        rows: a.rows,
        total_variance: a.total_variance,
        explained_variance_ratio_total: a.explained_variance_ratio.iter().sum(),
        explained_variance_ratio: a.explained_variance_ratio.clone(),
        components_for: pca.components_for.clone(),
        source,
        head: pca.head.clone(),
    };
    output.put(LATEST_MANIFEST, &serde_json::to_vec_pretty(&latest)?)?;
    Ok(latest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use fruits_formats::codec;
    use fruits_formats::shard::SHARD_FRAME;
    use fruits_formats::{Encoding, FormatError, Shard, ShardHeader};

    const DIM: usize = 8;

    #[test]
    fn the_aggregators_own_output_is_never_input() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::storage::LocalDir::new(dir.path());
        for key in [
            "incoming/2026-01-01/d/b1.shard",
            "b0.shard",
            "quarantine/r1/incoming/2026-01-01/d/b2.shard",
            "quarantine/r2/quarantine/r1/incoming/2026-01-01/d/b2.shard",
            "runs/r1/sketches/p0.shard",
            "models/projection/v1.shard",
            "reports/r1/x.shard",
            "codes/v1/2026-01-01/d/b3.shard",
            "incoming/2026-01-01/d/notes.json",
        ] {
            store.put(key, b"x").unwrap();
        }
        assert_eq!(list_shards(&store, "").unwrap(), ["b0.shard", "incoming/2026-01-01/d/b1.shard"]);
        assert_eq!(list_shards(&store, "quarantine/").unwrap(), Vec::<String>::new());
    }

    fn expected() -> Expected {
        Expected { model_id: ModelId([3; 32]), dim: DIM as u32 }
    }

    /// An encoded shard of `rows` rows; with `poison`, that row's value 5 is a NaN
    /// behind a valid checksum (as a buggy phone would send it).
    fn shard_bytes(rows: usize, poison: Option<usize>) -> Vec<u8> {
        let values: Vec<f32> = (0..rows * DIM).map(|i| ((i * 7919) % 113) as f32 / 50.0).collect();
        let header = ShardHeader {
            model_id: expected().model_id,
            dim: DIM as u32,
            rows: rows as u32,
            encoding: Encoding::F32,
            device_id: "phone".into(),
            batch_id: "b1".into(),
            created_unix_ms: 0,
            label_vocabulary: Vec::new(),
        };
        let bytes = Shard::new(header, values, None).unwrap().encode();
        let Some(row) = poison else { return bytes };
        let mut body = codec::open_frame(&SHARD_FRAME, &bytes).unwrap().to_vec();
        let at = body.len() - (rows * DIM - (row * DIM + 5)) * 4;
        body[at..at + 4].copy_from_slice(&f32::NAN.to_le_bytes());
        codec::seal_frame(&SHARD_FRAME, &body)
    }

    #[test]
    fn the_expected_model_is_the_one_most_rows_carry_or_the_one_given() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::storage::LocalDir::new(dir.path());
        let other = ModelId([9; 32]);
        let mut old = Shard::decode(&shard_bytes(2, None)).unwrap();
        let header = ShardHeader { model_id: other, dim: 4, rows: 4, ..old.header().clone() };
        old = Shard::new(header, old.into_parts().1, None).unwrap();
        // The old model's shard sorts first, but most rows carry the current model.
        store.put("incoming/a-old/d/old.shard", &old.encode()).unwrap();
        store.put("incoming/b/d/new1.shard", &shard_bytes(3, None)).unwrap();
        store.put("incoming/b/d/new2.shard", &shard_bytes(3, None)).unwrap();
        let keys = list_shards(&store, "").unwrap();
        assert_eq!(expectation(&store, &keys, None), Some(expected()), "the majority by rows");
        assert_eq!(expectation(&store, &keys, Some(expected().model_id)), Some(expected()));
        assert_eq!(expectation(&store, &keys, Some(other)), Some(Expected { model_id: other, dim: 4 }));
        let absent = ModelId([1; 32]);
        assert_eq!(expectation(&store, &keys, Some(absent)), Some(Expected { model_id: absent, dim: 0 }));
        assert_eq!(expectation(&store, &[], None), None);
    }

    #[test]
    fn a_shard_is_sketched_block_by_block_as_if_whole() {
        let rows = 2 * BLOCK_ROWS + 77;
        let bytes = shard_bytes(rows, None);
        let streamed = sketch_shard(&bytes, &expected(), &mut Vec::new()).unwrap();
        let mut whole = ScatterSketch::new(expected().model_id, DIM as u32);
        whole.add_rows(Shard::decode(&bytes).unwrap().values()).unwrap();
        assert_eq!(streamed, whole);
    }

    #[test]
    fn a_non_finite_value_in_the_last_block_refuses_the_whole_shard() {
        let rows = 2 * BLOCK_ROWS + 77;
        let err = sketch_shard(&shard_bytes(rows, Some(rows - 1)), &expected(), &mut Vec::new()).unwrap_err();
        assert_eq!(err, Rejection::Invalid(FormatError::NonFinite { row: rows as u32 - 1, col: 5 }));
    }

    #[test]
    fn partitions_are_contiguous_balanced_and_cover_every_key_once() {
        let keys: Vec<String> = (0..10).map(|i| format!("k{i:02}")).collect();
        let parts = partition(&keys, 4);
        assert_eq!(parts.iter().map(Vec::len).collect::<Vec<_>>(), [3, 3, 2, 2]);
        assert_eq!(parts.concat(), keys);
        assert_eq!(partition(&keys, 50).len(), 10, "at most one partition per key");
        assert_eq!(partition(&keys, 0), std::slice::from_ref(&keys));
        assert!(partition(&[], 3).is_empty());
    }
}
