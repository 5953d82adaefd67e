//! Monthly cost model of the Fruits upload path and the EMR aggregation job.
//!
//! Pure arithmetic over an [`EstimateInput`], for three upload modes:
//! one PUT per photo (the original prototype), full f32 embeddings in batched
//! shards, and projected f16 codes in batched shards.
//!
//! Prices are eu-west-3 (Paris) on-demand list prices as recorded by the original
//! design; they are assumptions to re-check against the AWS price list:
//! - S3 PUT/COPY/POST/LIST: $0.0053 per 1,000 requests;
//! - S3 GET: $0.0042 per 10,000 requests;
//! - S3 Standard storage: $0.024 per GB-month (GB = 2^30 bytes, first tier);
//! - m5.xlarge: $0.224/h EC2 + $0.048/h EMR uplift.
//!
//! Model (each rule is one line of arithmetic in [`estimate_mode`]):
//! - rows = devices x photos per device per month;
//! - PUTs: one per photo, or ceil(photos per device / batch size) shards per device
//!   (each device flushes its own partial last batch);
//! - GETs: the aggregator reads every uploaded object once per run;
//! - LISTs: ceil(objects / 1000) per run (1,000 keys per ListObjectsV2 page),
//!   billed at the PUT rate;
//! - storage: the month's uploads held for one full month (no lifecycle on
//!   `incoming/`; the cost of older months accumulates and is not modelled);
//! - EMR: primary + core nodes, all m5.xlarge, billed for
//!   runs x startup overhead + rows / (rows per second per node x core nodes).
//!   The throughputs are parameters to be replaced by measured values.

use serde::{Deserialize, Serialize};
use std::fmt;

/// S3 PUT, COPY, POST or LIST requests, USD per 1,000 (eu-west-3).
pub const PUT_USD_PER_1000: f64 = 0.0053;
/// S3 GET requests, USD per 10,000 (eu-west-3).
pub const GET_USD_PER_10000: f64 = 0.0042;
/// S3 Standard storage, USD per GB-month (eu-west-3, first 50 TB), GB = 2^30 bytes.
pub const STORAGE_USD_PER_GB_MONTH: f64 = 0.024;
/// m5.xlarge on-demand EC2 price, USD per hour (eu-west-3).
pub const EC2_M5_XLARGE_USD_PER_HOUR: f64 = 0.224;
/// EMR uplift for m5.xlarge, USD per hour (eu-west-3).
pub const EMR_M5_XLARGE_USD_PER_HOUR: f64 = 0.048;
/// Keys returned by one ListObjectsV2 page.
pub const KEYS_PER_LIST: u64 = 1000;

const BYTES_PER_GB: f64 = 1_073_741_824.0;

/// How phones upload what they collected.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum UploadMode {
    /// One object per JPEG photo; the cluster must run the embedder itself.
    Photos,
    /// Shards of full `dim`-wide f32 embeddings.
    EmbeddingsF32,
    /// Shards of `k`-wide f16 codes projected on the phone.
    ProjectedF16,
}

impl UploadMode {
    /// The three modes, in report order.
    pub const ALL: [UploadMode; 3] = [UploadMode::Photos, UploadMode::EmbeddingsF32, UploadMode::ProjectedF16];
}

/// What the estimate depends on. Every field has a documented default.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(default)]
pub struct EstimateInput {
    /// Active devices uploading in the month.
    pub devices: u64,
    /// Photos taken (rows produced) per device per month.
    pub photos_per_device_month: u64,
    /// Number of principal components kept (width of projected codes).
    pub k: u32,
    /// Embedding width: 1280 for MobileNetV2 without its classifier.
    pub dim: u32,
    /// Mean bytes per uploaded JPEG. Default 100,000: not measured here (no
    /// representative photo set); a typical resized phone JPEG. Replace with
    /// the measured mean.
    pub photo_bytes: u64,
    /// Rows (embeddings or codes) per shard, i.e. per PUT, in batched modes.
    pub batch_size: u64,
    /// Shard header + checksum bytes (the rest of a shard is the payload).
    /// Default 128, an estimate of the format's fixed fields.
    pub shard_overhead_bytes: u64,
    /// Aggregator throughput on one m5.xlarge core node, embedding rows per
    /// second (sketch step). Default 200,000: the sketch measured 222,000 rows/s on 2
    /// cores at d = 1280 (BENCHMARKS.md, "PCA aggregator"), an m5.xlarge has 2 cores;
    /// not yet measured on EMR.
    pub rows_per_sec_per_node: f64,
    /// Photos embedded per second on one m5.xlarge core node (Photos mode only).
    /// Default 200: tract measured 14.5 ms per image on one thread (DESIGN.md),
    /// so 4 vCPUs give at most ~275/s; rounded down for decode and I/O.
    pub photos_per_sec_per_node: f64,
    /// Core nodes doing the work (the primary node is billed, not counted here).
    pub core_nodes: u32,
    /// Aggregation runs per month (each pays the startup overhead and re-reads
    /// the month's objects).
    pub runs_per_month: u32,
    /// Cluster startup + bootstrap + shutdown per run, hours. Default 0.25.
    pub overhead_hours_per_run: f64,
}

impl Default for EstimateInput {
    fn default() -> Self {
        EstimateInput {
            devices: 10_000,
            photos_per_device_month: 30,
            k: 50,
            dim: 1280,
            photo_bytes: 100_000,
            batch_size: 64,
            shard_overhead_bytes: 128,
            rows_per_sec_per_node: 200_000.0,
            photos_per_sec_per_node: 200.0,
            core_nodes: 2,
            runs_per_month: 1,
            overhead_hours_per_run: 0.25,
        }
    }
}

/// An input the model cannot price.
#[derive(Debug, Clone, PartialEq)]
pub struct EstimateError(pub String);

impl fmt::Display for EstimateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid estimate input: {}", self.0)
    }
}

impl std::error::Error for EstimateError {}

/// The monthly figures of one upload mode.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct ModeEstimate {
    /// The upload mode these figures are for.
    pub mode: UploadMode,
    /// Rows (photos or embeddings) uploaded in the month.
    pub rows: u64,
    /// Objects uploaded = PUT requests from phones (through ingest).
    pub objects: u64,
    /// Bytes stored by the month's uploads.
    pub bytes: u64,
    /// PUT requests in the month.
    pub put_requests: u64,
    /// GET requests in the month (the aggregator's reads).
    pub get_requests: u64,
    /// LIST requests in the month.
    pub list_requests: u64,
    /// PUT + LIST at the PUT rate, plus GET.
    pub request_usd: f64,
    /// Gigabyte-months of storage held.
    pub storage_gb_month: f64,
    /// Storage cost in US dollars.
    pub storage_usd: f64,
    /// Wall-clock cluster hours over the month's runs.
    pub emr_hours: f64,
    /// Billed instance-hours (primary + core nodes).
    pub emr_instance_hours: f64,
    /// EMR cost in US dollars.
    pub emr_usd: f64,
    /// Requests + storage + EMR, in US dollars.
    pub total_usd: f64,
}

/// The three modes side by side, with the input they were computed from.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Estimate {
    /// The input the figures were computed from.
    pub input: EstimateInput,
    /// One estimate per upload mode.
    pub modes: Vec<ModeEstimate>,
}

fn validate(input: &EstimateInput) -> Result<(), EstimateError> {
    let positive = |x: f64| x.is_finite() && x > 0.0;
    if input.batch_size == 0 {
        return Err(EstimateError("batch_size must be at least 1".into()));
    }
    if input.core_nodes == 0 {
        return Err(EstimateError("core_nodes must be at least 1".into()));
    }
    if !positive(input.rows_per_sec_per_node) || !positive(input.photos_per_sec_per_node) {
        return Err(EstimateError("throughputs must be finite and positive".into()));
    }
    if !(input.overhead_hours_per_run.is_finite() && input.overhead_hours_per_run >= 0.0) {
        return Err(EstimateError("overhead_hours_per_run must be >= 0".into()));
    }
    Ok(())
}

/// The monthly cost of one upload mode.
pub fn estimate_mode(input: &EstimateInput, mode: UploadMode) -> Result<ModeEstimate, EstimateError> {
    validate(input)?;
    let rows = input.devices * input.photos_per_device_month;
    let (objects, bytes, rate) = match mode {
        UploadMode::Photos => (rows, rows * input.photo_bytes, input.photos_per_sec_per_node),
        UploadMode::EmbeddingsF32 | UploadMode::ProjectedF16 => {
            let row_bytes = match mode {
                UploadMode::EmbeddingsF32 => u64::from(input.dim) * 4,
                _ => u64::from(input.k) * 2,
            };
            let shards = input.devices * input.photos_per_device_month.div_ceil(input.batch_size);
            (shards, rows * row_bytes + shards * input.shard_overhead_bytes, input.rows_per_sec_per_node)
        }
    };
    let runs = u64::from(input.runs_per_month);
    let put_requests = objects;
    let get_requests = objects * runs;
    let list_requests = objects.div_ceil(KEYS_PER_LIST) * runs;
    let request_usd = (put_requests + list_requests) as f64 / 1000.0 * PUT_USD_PER_1000
        + get_requests as f64 / 10_000.0 * GET_USD_PER_10000;
    let storage_gb_month = bytes as f64 / BYTES_PER_GB;
    let storage_usd = storage_gb_month * STORAGE_USD_PER_GB_MONTH;
    let compute_hours = (rows * runs) as f64 / (rate * f64::from(input.core_nodes)) / 3600.0;
    let emr_hours = f64::from(input.runs_per_month) * input.overhead_hours_per_run + compute_hours;
    let emr_instance_hours = emr_hours * f64::from(input.core_nodes + 1);
    let emr_usd = emr_instance_hours * (EC2_M5_XLARGE_USD_PER_HOUR + EMR_M5_XLARGE_USD_PER_HOUR);
    Ok(ModeEstimate {
        mode,
        rows,
        objects,
        bytes,
        put_requests,
        get_requests,
        list_requests,
        request_usd,
        storage_gb_month,
        storage_usd,
        emr_hours,
        emr_instance_hours,
        emr_usd,
        total_usd: request_usd + storage_usd + emr_usd,
    })
}

/// The monthly cost of the three upload modes.
pub fn estimate(input: &EstimateInput) -> Result<Estimate, EstimateError> {
    let modes = UploadMode::ALL.iter().map(|&m| estimate_mode(input, m)).collect::<Result<Vec<_>, _>>()?;
    Ok(Estimate { input: input.clone(), modes })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(got: f64, want: f64) {
        assert!((got - want).abs() <= 1e-9 * want.abs().max(1.0), "got {got}, want {want}");
    }

    /// 1,000 devices x 30 photos, batch 64, k 50, 2 core nodes, one run.
    fn small() -> EstimateInput {
        // 5,000 rows/s keeps the aggregation time of the hand computations non-trivial.
        EstimateInput { devices: 1_000, rows_per_sec_per_node: 5_000.0, ..EstimateInput::default() }
    }

    #[test]
    fn photos_mode_by_hand() {
        let e = estimate_mode(&small(), UploadMode::Photos).unwrap();
        // rows = 1,000 x 30 = 30,000 photos = 30,000 PUTs and 30,000 GETs.
        assert_eq!((e.rows, e.put_requests, e.get_requests), (30_000, 30_000, 30_000));
        // LIST = ceil(30,000 / 1,000) = 30.
        assert_eq!(e.list_requests, 30);
        // (30,000 + 30) / 1,000 x 0.0053 = 0.159159; 30,000 / 10,000 x 0.0042 = 0.0126.
        close(e.request_usd, 0.159159 + 0.0126);
        // 30,000 x 100,000 B = 3e9 B = 3e9 / 2^30 GB = 2.7939677238 GB; x 0.024.
        assert_eq!(e.bytes, 3_000_000_000);
        close(e.storage_usd, 3e9 / 1_073_741_824.0 * 0.024);
        // 30,000 / (200 x 2) = 75 s; 0.25 h + 75/3600 h = 0.2708333 h;
        // x 3 instances = 0.8125 h; x (0.224 + 0.048) = 0.221 USD.
        close(e.emr_instance_hours, 0.8125);
        close(e.emr_usd, 0.221);
        close(e.total_usd, 0.171759 + 3e9 / 1_073_741_824.0 * 0.024 + 0.221);
    }

    #[test]
    fn f32_embeddings_by_hand() {
        let e = estimate_mode(&small(), UploadMode::EmbeddingsF32).unwrap();
        // ceil(30 / 64) = 1 shard per device -> 1,000 PUTs, 1,000 GETs, 1 LIST.
        assert_eq!((e.objects, e.get_requests, e.list_requests), (1_000, 1_000, 1));
        // 1,001 / 1,000 x 0.0053 + 1,000 / 10,000 x 0.0042 = 0.0053053 + 0.00042.
        close(e.request_usd, 0.0057253);
        // 30,000 x 1280 x 4 B + 1,000 x 128 B = 153,600,000 + 128,000.
        assert_eq!(e.bytes, 153_728_000);
        close(e.storage_usd, 153_728_000.0 / 1_073_741_824.0 * 0.024);
        // 30,000 / (5,000 x 2) = 3 s; (0.25 + 3/3600) h x 3 = 0.7525 h; x 0.272.
        close(e.emr_instance_hours, 0.7525);
        close(e.emr_usd, 0.204_68);
    }

    #[test]
    fn projected_f16_by_hand() {
        let e = estimate_mode(&small(), UploadMode::ProjectedF16).unwrap();
        // 30,000 x 50 x 2 B + 1,000 x 128 B = 3,000,000 + 128,000.
        assert_eq!(e.bytes, 3_128_000);
        close(e.request_usd, 0.0057253);
        close(e.storage_gb_month, 3_128_000.0 / 1_073_741_824.0);
    }

    #[test]
    fn partial_batches_and_runs() {
        let input = EstimateInput {
            devices: 10,
            photos_per_device_month: 100,
            batch_size: 32,
            runs_per_month: 4,
            rows_per_sec_per_node: 5_000.0,
            ..EstimateInput::default()
        };
        let e = estimate_mode(&input, UploadMode::EmbeddingsF32).unwrap();
        // ceil(100 / 32) = 4 shards per device -> 40 PUTs; read by 4 runs: 160 GETs,
        // 4 x ceil(40 / 1,000) = 4 LISTs.
        assert_eq!((e.put_requests, e.get_requests, e.list_requests), (40, 160, 4));
        // (40 + 4) / 1,000 x 0.0053 + 160 / 10,000 x 0.0042 = 0.0002332 + 0.0000672.
        close(e.request_usd, 0.0003004);
        // 4 runs x 0.25 h + 4 x 1,000 rows / 10,000 rows/s / 3600 = 1 h + 0.4 s.
        close(e.emr_hours, 1.0 + 0.4 / 3600.0);
    }

    #[test]
    fn a_million_devices_photos_cost_puts() {
        let input = EstimateInput { devices: 1_000_000, photos_per_device_month: 100, ..EstimateInput::default() };
        let all = estimate(&input).unwrap();
        let photos = &all.modes[0];
        // 1e8 PUTs x 0.0053 / 1,000 = 530; 1e5 LISTs -> 0.53; 1e8 GETs x 0.0042 / 1e4 = 42.
        close(photos.request_usd, 530.0 + 0.53 + 42.0);
        // Batching 64 per PUT: ceil(100/64) = 2 shards per device, 2e6 PUTs -> 10.6 USD,
        // 2,000 LISTs -> 0.0106; 2e6 GETs -> 0.84.
        close(all.modes[1].request_usd, 10.6 + 0.0106 + 0.84);
        assert!(all.modes.iter().all(|m| m.total_usd <= photos.total_usd));
        assert!(all.modes[2].storage_usd < all.modes[1].storage_usd);
    }

    #[test]
    fn rejects_inputs_it_cannot_price() {
        for bad in [
            EstimateInput { batch_size: 0, ..EstimateInput::default() },
            EstimateInput { core_nodes: 0, ..EstimateInput::default() },
            EstimateInput { rows_per_sec_per_node: 0.0, ..EstimateInput::default() },
            EstimateInput { photos_per_sec_per_node: f64::NAN, ..EstimateInput::default() },
            EstimateInput { overhead_hours_per_run: -1.0, ..EstimateInput::default() },
        ] {
            assert!(estimate(&bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn reports_the_three_modes_and_is_serde() {
        fn serde_both<T: Serialize + for<'de> Deserialize<'de>>() {}
        serde_both::<Estimate>();
        let e = estimate(&EstimateInput::default()).unwrap();
        let modes: Vec<_> = e.modes.iter().map(|m| m.mode).collect();
        assert_eq!(modes, UploadMode::ALL);
    }
}
