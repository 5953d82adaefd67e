//! `aggregator inspect`: any stored object as JSON, its kind told by its magic.

use crate::error::AggregatorError;
use fruits_formats::artifact::ARTIFACT_FRAME;
use fruits_formats::shard::SHARD_FRAME;
use fruits_formats::{ProjectionArtifact, Shard};
use fruits_pca::sketch::{SKETCH_FRAME, ScatterSketch};
use serde_json::{Value, json};

/// Decodes a shard, sketch or projection artifact and describes it as JSON.
pub fn describe(bytes: &[u8]) -> Result<Value, AggregatorError> {
    let magic = bytes.get(..8).unwrap_or(bytes);
    if magic == SHARD_FRAME.magic {
        let shard = Shard::decode(bytes).map_err(AggregatorError::format("shard"))?;
        let h = shard.header();
        let values = shard.values();
        let (min, max) = values.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| (lo.min(v), hi.max(v)));
        let mean = values.iter().map(|&v| v as f64).sum::<f64>() / values.len().max(1) as f64;
        let first_row = if h.rows > 0 { shard.row(0).iter().take(8).copied().collect() } else { Vec::new() };
        Ok(json!({
            "kind": "shard",
            "model_id": h.model_id.to_string(),
            "dim": h.dim,
            "rows": h.rows,
            "encoding": format!("{:?}", h.encoding),
            "device_id": h.device_id,
            "batch_id": h.batch_id,
            "created_unix_ms": h.created_unix_ms,
            "label_vocabulary": h.label_vocabulary,
            "values": { "min": min, "max": max, "mean": mean, "first_row_head": first_row },
        }))
    } else if magic == SKETCH_FRAME.magic {
        let s = ScatterSketch::decode(bytes).map_err(AggregatorError::format("sketch"))?;
        let trace = s.covariance().map(|c| (0..s.dim() as usize).map(|i| c[i * s.dim() as usize + i]).sum::<f64>());
        Ok(json!({
            "kind": "sketch",
            "model_id": s.model_id().to_string(),
            "dim": s.dim(),
            "rows": s.rows(),
            "total_variance": trace,
            "mean_head": s.mean().iter().take(8).collect::<Vec<_>>(),
        }))
    } else if magic == ARTIFACT_FRAME.magic {
        let artifact = ProjectionArtifact::decode(bytes).map_err(AggregatorError::format("projection artifact"))?;
        let mut value = serde_json::to_value(&artifact)?;
        value["kind"] = json!("projection artifact");
        value["model_id"] = json!(artifact.model_id.to_string());
        Ok(value)
    } else {
        Err(AggregatorError::UnknownObject(String::from_utf8_lossy(magic).into_owned()))
    }
}

/// A one-line human summary of [`describe`]'s output.
pub fn summary(value: &Value) -> String {
    format!(
        "{} model={} dim={} rows={}{}",
        value["kind"].as_str().unwrap_or("?"),
        value["model_id"].as_str().unwrap_or("?"),
        value["dim"],
        value["rows"],
        value.get("k").map(|k| format!(" k={k} version={}", value["version"])).unwrap_or_default()
    )
}
