//! The map, reduce and publish steps over a [`Storage`], shared by `aggregator run`
//! and the separate `sketch` / `merge` / `finalize` commands: [`sketch_shards`],
//! [`merge_sketches`] and the one [`publish`] step.

use crate::clock::elapsed_ms as ms;
use crate::error::AggregatorError;
use crate::storage::Storage;
use crate::validate::{self, Expected, Rejection};
use ed25519_dalek::SigningKey;
use fruits_formats::ModelId;
use fruits_formats::layout;
use fruits_formats::{ProjectionManifest, sign_artifact};
use fruits_head::{self as head, HeadMetrics, HeadTraining, LabelledSet};
use fruits_pca::eigen::Solver;
use fruits_pca::finalize::{self, Pca, VarianceThreshold};
use fruits_pca::sketch::{BLOCK_ROWS, ScatterSketch, merge_in_fixed_tree};
use indicatif::ProgressBar;
use serde::{Deserialize, Serialize};
use sha2::Digest;
use std::time::Instant;

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
pub fn list_shards(input: &dyn Storage, prefix: &str) -> Result<Vec<String>, AggregatorError> {
    let mut keys = input.list(prefix).map_err(AggregatorError::storage(format!("listing shards under {prefix:?}")))?;
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
) -> Result<SketchStage, AggregatorError> {
    let leaf = |i: usize| -> Result<SketchStage, AggregatorError> {
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
    let merge = |a: Result<SketchStage, AggregatorError>,
                 b: Result<SketchStage, AggregatorError>|
     -> Result<SketchStage, AggregatorError> {
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
        // check_view has matched the dimension; a mismatch is still a refusal, not a panic.
        sketch.add_rows(block).map_err(|_| Rejection::WrongDim { expected: expected.dim, found: view.header().dim })?;
    }
    Ok(sketch)
}

/// Merges two optional sketches (`None` is the empty sketch).
pub fn merge_pair(
    a: Option<ScatterSketch>,
    b: Option<ScatterSketch>,
) -> Result<Option<ScatterSketch>, AggregatorError> {
    Ok(match (a, b) {
        (Some(mut a), Some(b)) => {
            a.merge(&b)?;
            Some(a)
        }
        (a, b) => a.or(b),
    })
}

/// Merges stored sketches in the given order over the fixed tree.
pub fn merge_sketches(blobs: &[Vec<u8>]) -> Result<ScatterSketch, AggregatorError> {
    let leaf =
        |i: usize| ScatterSketch::decode(&blobs[i]).map(Some).map_err(AggregatorError::format(format!("sketch #{i}")));
    let merge = |a: Result<Option<ScatterSketch>, AggregatorError>,
                 b: Result<Option<ScatterSketch>, AggregatorError>| { merge_pair(a?, b?) };
    merge_in_fixed_tree(blobs.len(), &leaf, &merge)
        .ok_or(AggregatorError::NoSketches)??
        .ok_or(AggregatorError::NoSketches)
}

fn quarantine(
    output: &dyn Storage,
    prefix: &str,
    key: &str,
    bytes: Option<&[u8]>,
    rejection: &Rejection,
) -> Result<RejectionRecord, AggregatorError> {
    let copy = format!("{prefix}{key}");
    if let Some(bytes) = bytes {
        output.put(&copy, bytes).map_err(AggregatorError::storage(format!("quarantining {key}")))?;
    }
    let record = RejectionRecord {
        key: key.to_owned(),
        kind: rejection.kind(),
        detail: rejection.to_string(),
        quarantined_as: bytes.map(|_| copy.clone()),
    };
    let reason = format!("{copy}.reason.json");
    output
        .put(&reason, &serde_json::to_vec_pretty(&record)?)
        .map_err(AggregatorError::storage(format!("writing {reason}")))?;
    tracing::warn!(key, reason = %rejection, "shard quarantined");
    Ok(record)
}

/// The second pass for the recognition head: the labelled rows of every valid
/// full-embedding shard among `keys` (refused shards were quarantined by the first
/// pass and are skipped here), in key order.
pub fn labelled_rows(
    input: &dyn Storage,
    keys: &[String],
    expected: &Expected,
) -> Result<LabelledSet, AggregatorError> {
    let mut set = LabelledSet::new(expected.dim as usize);
    let mut buffers = ReadBuffers::default();
    for key in keys {
        input.get_into(key, &mut buffers.bytes).map_err(AggregatorError::storage(format!("reading {key}")))?;
        if let Ok(shard) = validate::check_shard(&buffers.bytes, expected, std::mem::take(&mut buffers.values)) {
            set.add_shard(&shard);
            buffers.values = shard.into_parts().1;
        }
    }
    Ok(set)
}

/// `model`'s published `latest.json`, if there is one; [`publish`] and the report read it.
/// It is read, never listed: the aggregator's IAM role may read
/// `models/projection/*/latest.json` but not list `models/` (deploy/policies/emr-instance.json).
pub fn read_latest(output: &dyn Storage, model: &ModelId) -> Result<Option<Latest>, AggregatorError> {
    let key = layout::latest_key(model);
    match output.get(&key) {
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| AggregatorError::Latest(e.to_string())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(AggregatorError::storage(format!("reading {key}"))(e)),
    }
}

/// What `models/projection/<model>/latest.json` says: the signed manifest phones verify
/// ([`ProjectionManifest`]) plus variance statistics for people.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
    pub components_for: Vec<VarianceThreshold>,
    /// What it was computed from ([`publish`]): a publication of the same inputs finds
    /// it here and publishes nothing new.
    pub source: String,
    /// The recognition head's training measurements, when the artifact carries one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head: Option<HeadMetrics>,
}

/// How [`publish`] turns a sketch into a publication.
#[derive(Debug, Clone)]
pub struct PublishOptions {
    /// Components to publish.
    pub k: u32,
    /// Eigensolver.
    pub solver: Solver,
    /// Train a recognition head on the labelled rows, if any (`None`: never).
    pub head: Option<HeadTraining>,
    /// The publisher's key; `None` publishes unsigned (refused by phones).
    pub signing_key: Option<SigningKey>,
    /// The artifact's creation time, Unix milliseconds: the clock is the caller's, so the
    /// same inputs at the same time give the same bytes.
    pub created_unix_ms: u64,
}

/// The shards whose labelled rows train the head: `keys` of `input` (the sketch's shards).
#[derive(Clone, Copy)]
pub struct HeadRows<'a> {
    /// Storage holding the shards.
    pub input: &'a dyn Storage,
    /// Their keys, in order.
    pub keys: &'a [String],
}

/// What [`publish`] did.
#[derive(Debug, Clone, Serialize)]
pub struct Publication {
    /// The current `latest.json`.
    pub latest: Latest,
    /// `false` when the current projection already came from the same inputs (a retried
    /// or resumed job): nothing was written.
    pub new: bool,
    /// Why labelled rows were seen but no head was published.
    pub head_skipped: Option<String>,
    /// Milliseconds of the eigendecomposition and artifact assembly.
    pub finalize_ms: u64,
    /// Milliseconds reading the labelled rows, training and calibrating the head.
    pub head_ms: u64,
    /// Milliseconds writing the artifact and `latest.json`.
    pub publish_ms: u64,
}

/// The one publish step, of `aggregator run`, `aggregator finalize` and the emulator:
/// sketch + options -> top-k components -> the head trained on `rows`' labelled rows (when
/// asked and there are some; a head that cannot be trained is skipped with its reason) ->
/// the artifact as `models/projection/<model>/v<next>.bin` (the next version of the
/// sketch's model's own series), signed -> that model's `latest.json` (artifact
/// first, so `latest.json` never names a missing object). Nothing is written when the
/// current projection came from the same sketch, k, solver and head rows. With no signing
/// key the signature is empty: phones refuse such a publication, which is only for local
/// experiments.
pub fn publish(
    output: &dyn Storage,
    sketch: &ScatterSketch,
    rows: Option<HeadRows<'_>>,
    opts: &PublishOptions,
) -> Result<Publication, AggregatorError> {
    let head_start = Instant::now();
    let sketch_bytes = sketch.encode().map_err(AggregatorError::format("the merged sketch"))?;
    let mut source = source_of(&sketch_bytes, opts.k, opts.solver, None);
    let labelled = match (&opts.head, rows) {
        (Some(training), Some(rows)) => {
            let expected = Expected { model_id: sketch.model_id(), dim: sketch.dim() };
            let set = labelled_rows(rows.input, rows.keys, &expected)?;
            if !set.is_empty() {
                source = source_of(&sketch_bytes, opts.k, opts.solver, Some(rows.keys));
            }
            Some((set, training))
        }
        _ => None,
    };
    let mut head_ms = ms(head_start);
    let published = read_latest(output, &sketch.model_id())?;
    if let Some(latest) = published.as_ref().filter(|l| l.source == source) {
        let latest = latest.clone();
        return Ok(Publication { latest, new: false, head_skipped: None, finalize_ms: 0, head_ms, publish_ms: 0 });
    }
    let version = match &published {
        Some(latest) => {
            latest.manifest.version.checked_add(1).ok_or(AggregatorError::Latest("version overflow".into()))?
        }
        None => 1,
    };
    let finalize_start = Instant::now();
    let mut pca = finalize::finalize(sketch, opts.k, opts.solver, version, opts.created_unix_ms)?;
    let finalize_ms = ms(finalize_start);
    let (mut head_skipped, mut metrics) = (None, None);
    if let Some((set, training)) = labelled {
        let train_start = Instant::now();
        match head::attach(&mut pca.artifact, &set, training) {
            Ok(measured) => metrics = measured,
            Err(e) => {
                tracing::warn!(error = %e, "no recognition head published");
                head_skipped = Some(e.to_string());
            }
        }
        head_ms += ms(train_start);
    }
    let publish_start = Instant::now();
    let latest = write_publication(output, &pca, metrics, opts.signing_key.as_ref(), source)?;
    Ok(Publication { latest, new: true, head_skipped, finalize_ms, head_ms, publish_ms: ms(publish_start) })
}

/// Identifies a publication's inputs: sha256 of the sketch's bytes, `k`, the solver and,
/// when a head is trained, the keys of its rows.
fn source_of(sketch_bytes: &[u8], k: u32, solver: Solver, head_keys: Option<&[String]>) -> String {
    let mut h = sha2::Sha256::new();
    h.update(sketch_bytes);
    h.update(k.to_le_bytes());
    h.update(format!("{solver:?}").as_bytes());
    if let Some(keys) = head_keys {
        h.update(b"head");
        keys.iter().for_each(|k| h.update(k.as_bytes()));
    }
    hex::encode(h.finalize())
}

/// Writes the artifact, then `latest.json`.
fn write_publication(
    output: &dyn Storage,
    pca: &Pca,
    head: Option<HeadMetrics>,
    signing_key: Option<&SigningKey>,
    source: String,
) -> Result<Latest, AggregatorError> {
    let a = &pca.artifact;
    let key = layout::projection_key(&a.model_id, a.version);
    let bytes = a.encode().map_err(AggregatorError::format(key.clone()))?;
    output.put(&key, &bytes).map_err(AggregatorError::storage(format!("writing {key}")))?;
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
        head,
    };
    let latest_key = layout::latest_key(&a.model_id);
    output
        .put(&latest_key, &serde_json::to_vec_pretty(&latest)?)
        .map_err(AggregatorError::storage(format!("writing {latest_key}")))?;
    Ok(latest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use fruits_formats::codec;
    use fruits_formats::layout::{INCOMING_PREFIX, QUARANTINE_PREFIX};
    use fruits_formats::shard::SHARD_FRAME;
    use fruits_formats::{Encoding, FormatError, Shard, ShardHeader};

    const DIM: usize = 8;

    #[test]
    fn the_aggregators_own_output_is_never_input() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::storage::LocalDir::new(dir.path());
        // An older deployment's dated key (`incoming/<date>/<device>/<batch>.shard`) is input too.
        let dated = |batch: &str| format!("{INCOMING_PREFIX}2026-01-01/{}", layout::device_batch_key("d", batch));
        let quarantined = format!("{}{}", layout::quarantine_prefix("r1"), dated("b2"));
        for key in [
            dated("b1"),
            "b0.shard".to_string(),
            quarantined.clone(),
            format!("{}{quarantined}", layout::quarantine_prefix("r2")),
            format!("{}p0.shard", layout::run_sketches_prefix("r1")),
            format!("{}v1.shard", layout::projection_prefix(&expected().model_id)),
            layout::report_key("r1", "x.shard"),
            layout::codes_key(&expected().model_id, 1, "d", "b3"),
            format!("{INCOMING_PREFIX}2026-01-01/d/notes.json"),
        ] {
            store.put(&key, b"x").unwrap();
        }
        assert_eq!(list_shards(&store, "").unwrap(), ["b0.shard".to_string(), dated("b1")]);
        assert_eq!(list_shards(&store, QUARANTINE_PREFIX).unwrap(), Vec::<String>::new());
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
        let bytes = Shard::new(header, values, None).unwrap().encode().unwrap();
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
        store.put("incoming/a-old/d/old.shard", &old.encode().unwrap()).unwrap();
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
