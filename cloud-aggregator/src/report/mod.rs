//! `aggregator report`: the pictures of the PCA and of recognition, written under
//! `reports/<run>/` of the storage.
//!
//! * `pca_3d.png`: every embedding on PC1-3, coloured by fruit;
//! * `variance.png`: scree and cumulative explained variance, with the k for 90/95/99%;
//! * `accuracy.png`: held-out recognition accuracy vs k (and of the full 1280-d
//!   head), and upload bytes per photo at each k;
//! * `index.html`: all of it in one self-contained interactive page;
//! * `report.json`: the numbers ([`data::ReportData`]).
//!
//! [`data`] computes (pure), [`png`] and [`html`] render (pure, bytes out); this
//! module reads the storage and writes the files.

pub mod data;
pub mod html;
pub mod png;

use crate::error::AggregatorError;
use crate::pipeline;
use crate::storage::Storage;
use crate::validate::{self, Expected};
use data::ReportData;
use fruits_formats::layout::{self, INCOMING_PREFIX};
use fruits_formats::{ModelId, ProjectionArtifact};
use fruits_head::{HeadOptions, LabelledSet};
use fruits_pca::finalize::VarianceThreshold;
use serde::Serialize;

/// Where Debian's fonts-dejavu-core puts the font the charts use by default.
pub const DEBIAN_FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";

/// What was written, and the headline numbers.
#[derive(Debug, Clone, Serialize)]
pub struct Written {
    /// Storage keys of the files, `reports/<run>/...`.
    pub keys: Vec<String>,
    /// The projection version reported on.
    pub projection_version: u32,
    /// Embeddings plotted.
    pub points: usize,
    /// Components for 90/95/99% of the variance.
    pub components_for: Vec<VarianceThreshold>,
    /// Held-out accuracy at each k, then of the full head.
    pub accuracy: Vec<data::AccuracyAtK>,
}

/// Reads `model`'s published projection (default: the model most of `input`'s rows
/// carry, as `aggregator run` chooses) and every embedding shard of `input` from that
/// model, and writes the report under `reports/<run>/` of `output`. `font` is a TrueType
/// file.
pub fn write(
    input: &dyn Storage,
    output: &dyn Storage,
    run: &str,
    model: Option<ModelId>,
    font: Vec<u8>,
    options: &HeadOptions,
) -> Result<Written, AggregatorError> {
    png::register_font(font)?;
    let model = match model {
        Some(model) => model,
        None => {
            let keys = pipeline::list_shards(input, INCOMING_PREFIX)?;
            let missing = std::io::Error::from(std::io::ErrorKind::NotFound);
            let expected = pipeline::expectation(input, &keys, None).ok_or_else(|| {
                AggregatorError::storage(format!("{INCOMING_PREFIX}: no valid embedding shard"))(missing)
            })?;
            expected.model_id
        }
    };
    let latest_key = layout::latest_key(&model);
    let latest = pipeline::read_latest(output, &model)?.ok_or_else(|| {
        let missing = std::io::Error::from(std::io::ErrorKind::NotFound);
        AggregatorError::storage(format!("reading {latest_key} (run the aggregator first)"))(missing)
    })?;
    let key = &latest.manifest.key;
    let bytes = output.get(key).map_err(AggregatorError::storage(format!("reading {key}")))?;
    let artifact = ProjectionArtifact::decode(&bytes).map_err(AggregatorError::format(key.clone()))?;
    let (labelled, unlabelled) = embeddings(input, &artifact)?;
    let report =
        data::compute(&artifact, &latest.components_for, &labelled, &unlabelled, options, latest.head.as_ref());
    write_files(output, run, &report)
}

/// Every valid embedding shard's rows for the artifact's model: labelled ones, and
/// the unlabelled rows apart.
fn embeddings(input: &dyn Storage, artifact: &ProjectionArtifact) -> Result<(LabelledSet, Vec<f32>), AggregatorError> {
    let expected = Expected { model_id: artifact.model_id, dim: artifact.dim };
    let mut labelled = LabelledSet::new(artifact.dim as usize);
    let mut unlabelled = Vec::new();
    for key in pipeline::list_shards(input, INCOMING_PREFIX)? {
        let bytes = input.get(&key).map_err(AggregatorError::storage(format!("reading {key}")))?;
        let Ok(shard) = validate::check_shard(&bytes, &expected, Vec::new()) else { continue };
        labelled.add_shard(&shard);
        for i in (0..shard.header().rows as usize).filter(|&i| shard.label(i).is_none()) {
            unlabelled.extend_from_slice(shard.row(i));
        }
    }
    Ok((labelled, unlabelled))
}

fn write_files(output: &dyn Storage, run: &str, report: &ReportData) -> Result<Written, AggregatorError> {
    let scatter = png::scatter_3d(report)?;
    let variance = png::variance(report)?;
    let accuracy = png::accuracy(report)?;
    let page = html::page(report, run, &variance, &accuracy)?;
    let files: [(&str, Vec<u8>); 5] = [
        ("pca_3d.png", scatter),
        ("variance.png", variance),
        ("accuracy.png", accuracy),
        ("index.html", page.into_bytes()),
        ("report.json", serde_json::to_vec_pretty(report)?),
    ];
    let mut keys = Vec::new();
    for (name, bytes) in files {
        let key = layout::report_key(run, name);
        output.put(&key, &bytes).map_err(AggregatorError::storage(format!("writing {key}")))?;
        keys.push(key);
    }
    Ok(Written {
        keys,
        projection_version: report.projection_version,
        points: report.points.len(),
        components_for: report.components_for.clone(),
        accuracy: report.accuracy.clone(),
    })
}
