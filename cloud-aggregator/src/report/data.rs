//! The numbers of the report, computed from the published artifact and the
//! embeddings (pure: no I/O, no drawing).

use fruits_formats::{Encoding, ModelId, ProjectionArtifact, Shard, ShardHeader};
use fruits_head::{self as head, HeadMetrics, HeadOptions, LabelledSet};
use fruits_pca::finalize::VarianceThreshold;
use serde::Serialize;

/// Rows per shard the phones upload (the batch size behind bytes per photo).
pub const PHONE_BATCH_ROWS: u32 = 64;

/// One embedding on the first three principal components.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Point {
    /// Codes on PC1, PC2, PC3.
    pub pc: [f32; 3],
    /// Index into [`ReportData::classes`].
    pub class: u32,
}

/// Explained variance of one component.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ScreePoint {
    /// Component number, from 1.
    pub component: u32,
    /// Its share of the total variance.
    pub ratio: f64,
    /// Share of the first `component` components together.
    pub cumulative: f64,
}

/// Recognition accuracy of a head trained on the first `k` codes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AccuracyAtK {
    /// Codes the head reads (the embedding dimension for the full head).
    pub k: u32,
    /// `true` for the head on the full embeddings, without PCA.
    pub full: bool,
    /// Top-1 accuracy on the held-out rows (rows of devices the head never trained on,
    /// whose class it knew; see `fruits_head`).
    pub accuracy: f64,
    /// Held-out rows it was measured on.
    pub heldout_rows: usize,
}

/// Upload size of one photo at a given width.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BytesAtK {
    /// Values per photo (`k` codes, or the embedding dimension).
    pub k: u32,
    /// How values are stored: `f16 codes`, `f16 embedding` or `f32 embedding`.
    pub encoding: &'static str,
    /// Bytes per photo in a shard of [`PHONE_BATCH_ROWS`] photos, framing included.
    pub bytes_per_photo: f64,
}

/// Everything the report shows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReportData {
    /// The artifact's version.
    pub projection_version: u32,
    /// Its number of components.
    pub k: u32,
    /// Embedding dimension.
    pub dim: u32,
    /// Rows the PCA was computed from.
    pub pca_rows: u64,
    /// Components needed for 90/95/99% of the variance (from the full spectrum).
    pub components_for: Vec<VarianceThreshold>,
    /// Explained variance of each of the `k` components.
    pub scree: Vec<ScreePoint>,
    /// Class names; "(unlabelled)" last when some embeddings carry no label.
    pub classes: Vec<String>,
    /// Every embedding on PC1-3.
    pub points: Vec<Point>,
    /// Accuracy of heads over growing `k`, then of the full-embedding head.
    pub accuracy: Vec<AccuracyAtK>,
    /// Bytes per photo uploaded at each width.
    pub bytes: Vec<BytesAtK>,
    /// The published head's classes, temperature and unknown threshold, if any.
    pub head: Option<PublishedHead>,
}

/// What the artifact's head says about itself.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PublishedHead {
    /// Its classes.
    pub classes: Vec<String>,
    /// Its temperature.
    pub temperature: f32,
    /// Its unknown threshold.
    pub unknown_threshold: f32,
    /// What its training measured on held-out devices (calibration error among it),
    /// as the publication recorded it.
    pub calibration: Option<HeadMetrics>,
}

/// Name of the class of unlabelled embeddings in the scatter.
pub const UNLABELLED: &str = "(unlabelled)";

/// The widths at which accuracy and bytes are reported: powers of two up to `k`,
/// the variance thresholds that fit, and `k` itself, sorted and distinct.
pub fn widths(k: u32, thresholds: &[VarianceThreshold]) -> Vec<u32> {
    let mut widths: Vec<u32> = std::iter::successors(Some(1u32), |w| w.checked_mul(2)).take_while(|&w| w < k).collect();
    widths.extend(thresholds.iter().map(|t| t.components).filter(|&c| c >= 1 && c <= k));
    widths.push(k);
    widths.sort_unstable();
    widths.dedup();
    widths
}

/// Bytes per photo of a shard of [`PHONE_BATCH_ROWS`] rows of `width` values.
pub fn bytes_per_photo(width: u32, encoding: Encoding) -> f64 {
    let header = ShardHeader {
        model_id: ModelId([0; 32]),
        dim: width,
        rows: PHONE_BATCH_ROWS,
        encoding,
        device_id: "phone-0001".into(),
        batch_id: "b-000001".into(),
        created_unix_ms: 0,
        label_vocabulary: Vec::new(),
    };
    let values = vec![0.0; (width * PHONE_BATCH_ROWS) as usize];
    match Shard::new(header, values, None).and_then(|s| s.encode()) {
        Ok(bytes) => bytes.len() as f64 / f64::from(PHONE_BATCH_ROWS),
        Err(_) => f64::NAN,
    }
}

/// Computes the report. `labelled` trains the heads of the accuracy curve;
/// `unlabelled` rows only appear in the scatter.
pub fn compute(
    artifact: &ProjectionArtifact,
    components_for: &[VarianceThreshold],
    labelled: &LabelledSet,
    unlabelled: &[f32],
    options: &HeadOptions,
    head_metrics: Option<&HeadMetrics>,
) -> ReportData {
    let d = artifact.dim as usize;
    let mut classes = labelled.classes().to_vec();
    let unlabelled_class = classes.len() as u32;
    if !unlabelled.is_empty() {
        classes.push(UNLABELLED.into());
    }
    let pc3 = |row: &[f32]| {
        let codes = artifact.project(row).unwrap_or_default();
        [0, 1, 2].map(|i| codes.get(i).copied().unwrap_or(0.0))
    };
    let mut points: Vec<Point> = labelled
        .rows()
        .chunks_exact(d)
        .zip(labelled.labels())
        .map(|(row, &class)| Point { pc: pc3(row), class })
        .collect();
    points.extend(unlabelled.chunks_exact(d).map(|row| Point { pc: pc3(row), class: unlabelled_class }));
    let mut cumulative = 0.0;
    let scree = artifact
        .explained_variance_ratio
        .iter()
        .enumerate()
        .map(|(i, &ratio)| {
            cumulative += ratio;
            ScreePoint { component: i as u32 + 1, ratio, cumulative }
        })
        .collect();
    let widths = widths(artifact.k, components_for);
    let accuracy = accuracy_curve(artifact, labelled, &widths, options);
    let mut bytes: Vec<BytesAtK> = widths
        .iter()
        .map(|&k| BytesAtK {
            k,
            encoding: "f16 codes",
            bytes_per_photo: bytes_per_photo(k, Encoding::ProjectedF16 { projection_version: 1 }),
        })
        .collect();
    bytes.push(BytesAtK {
        k: artifact.dim,
        encoding: "f16 embedding",
        bytes_per_photo: bytes_per_photo(artifact.dim, Encoding::F16),
    });
    bytes.push(BytesAtK {
        k: artifact.dim,
        encoding: "f32 embedding",
        bytes_per_photo: bytes_per_photo(artifact.dim, Encoding::F32),
    });
    ReportData {
        projection_version: artifact.version,
        k: artifact.k,
        dim: artifact.dim,
        pca_rows: artifact.rows,
        components_for: components_for.to_vec(),
        scree,
        classes,
        points,
        accuracy,
        bytes,
        head: artifact.head.as_ref().map(|h| PublishedHead {
            classes: h.classes.clone(),
            temperature: h.temperature,
            unknown_threshold: h.unknown_threshold,
            calibration: head_metrics.cloned(),
        }),
    }
}

/// Held-out accuracy of heads on the first `w` codes for each width, then on the
/// full embeddings; empty when the labelled rows cannot train a head.
fn accuracy_curve(
    artifact: &ProjectionArtifact,
    set: &LabelledSet,
    widths: &[u32],
    options: &HeadOptions,
) -> Vec<AccuracyAtK> {
    if set.is_empty() {
        return Vec::new();
    }
    let Ok(all_codes) = head::codes(artifact, set, artifact.k as usize) else { return Vec::new() };
    let k = artifact.k as usize;
    let point = |k: u32, full: bool, t: head::TrainedHead| AccuracyAtK {
        k,
        full,
        accuracy: t.metrics.heldout_accuracy,
        heldout_rows: t.metrics.heldout_rows,
    };
    let mut curve = Vec::new();
    for &w in widths {
        let codes: Vec<f32> = all_codes.chunks_exact(k).flat_map(|c| c[..w as usize].iter().copied()).collect();
        let features = head::Features { values: &codes, dim: w as usize, ..head::embedding_features(set) };
        if let Ok(t) = head::train(&features, options) {
            curve.push(point(w, false, t));
        }
    }
    if let Ok(t) = head::train(&head::embedding_features(set), options) {
        curve.push(point(artifact.dim, true, t));
    }
    curve
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widths_cover_powers_of_two_thresholds_and_k() {
        let t = |components| VarianceThreshold { share: 0.9, components };
        assert_eq!(widths(40, &[t(12), t(27), t(300)]), [1, 2, 4, 8, 12, 16, 27, 32, 40]);
        assert_eq!(widths(1, &[]), [1]);
    }

    #[test]
    fn codes_cost_two_bytes_each_plus_a_small_share_of_the_frame() {
        let at_50 = bytes_per_photo(50, Encoding::ProjectedF16 { projection_version: 1 });
        let f32_full = bytes_per_photo(1280, Encoding::F32);
        assert!(at_50 > 100.0 && at_50 < 104.0, "{at_50}");
        assert!(f32_full > 5120.0 && f32_full < 5124.0, "{f32_full}");
    }
}
