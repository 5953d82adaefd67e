//! The local cloud the simulated phones talk to: ingest on a loopback port over a
//! local storage directory, and the aggregator run in-process, signing what it
//! publishes with a key of its own.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use super::EmulateError;
use ed25519_dalek::SigningKey;
use fruits_aggregator::AggregatorError;
use fruits_aggregator::ingest::{Ingest, check::Policy};
use fruits_aggregator::pipeline::PublishOptions;
use fruits_aggregator::run::{RunOptions, run};
use fruits_aggregator::storage::{LocalDir, Storage};
use fruits_formats::{ModelId, Shard, layout};
use fruits_head::{HeadOptions, HeadTraining};
use fruits_pca::eigen::Solver;

/// Ingest serving `store`; dropping the stack stops it (with its runtime).
pub struct LocalStack {
    /// The storage ingest writes to and the aggregator reads.
    pub store: Arc<LocalDir>,
    /// Ingest's base URL, `http://127.0.0.1:<port>`.
    pub url: String,
    signing_key: SigningKey,
    model_id: ModelId,
    /// Runs ingest; dropping it stops the server.
    _runtime: tokio::runtime::Runtime,
}

impl LocalStack {
    /// Starts ingest for `devices` (id -> secret) over `<dir>/store`, with a new
    /// publisher key in `<dir>/publisher.key` (and `.pub`).
    pub fn start(
        dir: &Path,
        devices: HashMap<String, Vec<u8>>,
        model_id: ModelId,
        dim: u32,
    ) -> Result<Self, EmulateError> {
        let store = Arc::new(LocalDir::new(dir.join("store")));
        let signing_key = fruits_aggregator::signing::keygen(&dir.join("publisher.key"))
            .map_err(|e| EmulateError::Setup(format!("publisher key: {e}")))?;
        let policy =
            Policy { max_body: 8 << 20, rate_per_second: 1000.0, rate_burst: 1000.0, ..Policy::new(model_id, dim) };
        let ingest = Ingest::new(store.clone(), devices, policy);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(super::io("starting ingest's runtime"))?;
        let listener =
            runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).map_err(super::io("binding ingest"))?;
        let url = format!("http://{}", listener.local_addr().map_err(super::io("ingest's address"))?);
        runtime.spawn(async move {
            if let Err(e) = fruits_aggregator::ingest::serve(listener, ingest).await {
                tracing::error!("ingest stopped: {e}");
            }
        });
        Ok(Self { store, url, signing_key, model_id, _runtime: runtime })
    }

    /// The key phones verify projections with.
    pub fn public_key(&self) -> [u8; 32] {
        self.signing_key.verifying_key().to_bytes()
    }

    /// Runs the aggregator over every embedding received and publishes the
    /// projection, with a recognition head trained on the labelled rows and the
    /// bundled fruit catalogue; returns the version published.
    pub fn aggregate(&self, run_id: &str, k: u32) -> Result<Option<u32>, EmulateError> {
        let catalogue =
            fruits_aggregator::catalogue::bundled().map_err(|e| EmulateError::Setup(format!("catalogue: {e}")))?;
        let opts = RunOptions {
            input_prefix: layout::INCOMING_PREFIX.into(),
            model_id: Some(self.model_id),
            run_id: run_id.into(),
            publish: PublishOptions {
                k,
                solver: Solver::Randomized { seed: 0 },
                head: Some(HeadTraining { options: HeadOptions::default(), catalogue }),
                signing_key: Some(self.signing_key.clone()),
                created_unix_ms: fruits_aggregator::clock::now_unix_ms(),
            },
        };
        let report = run(&*self.store, &*self.store, &opts, &indicatif::ProgressBar::hidden())?;
        Ok(report.published.map(|p| p.manifest.version))
    }

    /// Rows stored under `prefix` per device (read back from the shards).
    pub fn rows_by_device(&self, prefix: &str) -> Result<HashMap<String, usize>, AggregatorError> {
        let mut rows = HashMap::new();
        let keys = self.store.list(prefix).map_err(AggregatorError::storage(format!("listing {prefix}")))?;
        for key in keys {
            let bytes = self.store.get(&key).map_err(AggregatorError::storage(format!("reading {key}")))?;
            let shard = Shard::decode(&bytes).map_err(AggregatorError::format(key.clone()))?;
            *rows.entry(shard.header().device_id.clone()).or_default() += shard.header().rows as usize;
        }
        Ok(rows)
    }
}
