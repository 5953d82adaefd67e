//! The `aggregator` command line (clap derive) and its dispatch onto the library.

use anyhow::Context;
use clap::{Parser, Subcommand};
use fruits_aggregator::ingest::check::Policy;
use fruits_aggregator::pipeline::{self, HeadRows, PublishOptions};
use fruits_aggregator::run::{self, RunOptions};
use fruits_aggregator::storage_url::{ObjectUrl, StorageUrl};
use fruits_aggregator::synth::Synthetic;
use fruits_aggregator::{catalogue, clock, estimate, inspect, signing};
use fruits_formats::{ModelId, layout};
use fruits_head::{HeadOptions, HeadTraining};
use fruits_pca::eigen::Solver;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::fs;
use std::path::PathBuf;

/// The Fruits aggregator: shards of embeddings in, a published PCA projection out.
#[derive(Debug, Parser)]
#[command(name = "aggregator", version)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Eigensolver choice shared by `run` and `finalize`.
#[derive(Debug, clap::Args)]
pub struct SolverArgs {
    /// Components to publish.
    #[arg(long)]
    pub k: u32,
    /// Use the exact (full) eigendecomposition instead of the randomized solver.
    #[arg(long)]
    pub exact: bool,
    /// Seed of the randomized solver.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

impl SolverArgs {
    fn solver(&self) -> Solver {
        if self.exact { Solver::Exact } else { Solver::Randomized { seed: self.seed } }
    }
}

/// What `run` and `finalize` publish, and how.
#[derive(Debug, clap::Args)]
pub struct PublishArgs {
    /// Solver options.
    #[command(flatten)]
    pub solver: SolverArgs,
    /// Ed25519 key file from `aggregator keygen` signing the published artifact.
    #[arg(long)]
    pub signing_key: Option<PathBuf>,
    /// Recognition head options.
    #[command(flatten)]
    pub head: HeadArgs,
    /// Creation time stamped into the artifact, Unix milliseconds (default: now); the same
    /// shards, options and time give byte-identical artifacts.
    #[arg(long)]
    pub created_unix_ms: Option<u64>,
}

impl PublishArgs {
    fn options(&self) -> anyhow::Result<PublishOptions> {
        Ok(PublishOptions {
            k: self.solver.k,
            solver: self.solver.solver(),
            head: self.head.training()?,
            signing_key: self.signing_key.as_deref().map(signing::read_signing_key).transpose()?,
            created_unix_ms: self.created_unix_ms.unwrap_or_else(clock::now_unix_ms),
        })
    }
}

/// Recognition head options shared by `run` and `finalize`.
#[derive(Debug, clap::Args)]
pub struct HeadArgs {
    /// Do not train a recognition head, even when shards carry labels.
    #[arg(long)]
    pub no_head: bool,
    /// Fruit catalogue (JSON list of entries) published with the head; default: the
    /// bundled one (cloud-aggregator/data/catalogue.json).
    #[arg(long)]
    pub catalogue: Option<PathBuf>,
    /// L2 penalty of the head's logistic regression (on unit-length codes).
    #[arg(long, default_value_t = HeadOptions::default().l2)]
    pub head_l2: f64,
}

impl HeadArgs {
    fn training(&self) -> anyhow::Result<Option<HeadTraining>> {
        if self.no_head {
            return Ok(None);
        }
        let catalogue = match &self.catalogue {
            Some(path) => catalogue::parse(&fs::read(path).with_context(|| format!("reading {}", path.display()))?)?,
            None => catalogue::bundled()?,
        };
        let options = HeadOptions { l2: self.head_l2, ..HeadOptions::default() };
        Ok(Some(HeadTraining { options, catalogue }))
    }
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Sketch every shard under --input, finalize and publish to --output.
    Run {
        /// Input storage: a directory or s3://bucket/prefix (shards are every `*.shard` below it).
        #[arg(long)]
        input: StorageUrl,
        /// Output storage: a directory or s3://bucket/prefix (models/, runs/, quarantine/).
        #[arg(long)]
        output: StorageUrl,
        /// Model every shard must come from (default: the one most rows carry).
        #[arg(long)]
        model_id: Option<ModelId>,
        /// Run name (default: run-<unix ms>).
        #[arg(long)]
        run_id: Option<String>,
        /// What to publish, and how.
        #[command(flatten)]
        publish: PublishArgs,
    },
    /// Sketch the given shard keys (default: all) into one stored sketch.
    Sketch {
        /// Input storage: a directory or s3://bucket/prefix.
        #[arg(long)]
        input: StorageUrl,
        /// Output storage (directory or s3://), for quarantined shards.
        #[arg(long)]
        output: StorageUrl,
        /// Run name, for `quarantine/<run>/`.
        #[arg(long)]
        run_id: String,
        /// Model every shard must come from (pass it when sketching in parallel tasks).
        #[arg(long)]
        model_id: Option<ModelId>,
        /// Where to write the sketch: a file or s3://bucket/key. The shards' outcomes
        /// (accepted, or quarantined and why) go beside it as `<out>.outcomes.json`.
        #[arg(long)]
        out: ObjectUrl,
        /// Do nothing if `--out` and its outcomes already exist (a resumed or
        /// retried task): the sketch of the same keys is the same bytes.
        #[arg(long)]
        resume: bool,
        /// Shard keys relative to --input.
        keys: Vec<String>,
    },
    /// Split the shards under --input into partitions for parallel `sketch` tasks
    /// (JSON: the model and dimension they are held to, and the keys per partition).
    Plan {
        /// Input storage: a directory or s3://bucket/prefix.
        #[arg(long)]
        input: StorageUrl,
        /// Model every shard must come from (default: the one most rows carry).
        #[arg(long)]
        model_id: Option<ModelId>,
        /// Number of partitions (at most one per shard).
        #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..))]
        partitions: u32,
    },
    /// Merge stored sketches (in path order, fixed tree) into one.
    Merge {
        /// Where to write the merged sketch: a file or s3://bucket/key.
        #[arg(long)]
        out: ObjectUrl,
        /// Sketches: files or s3://bucket/key objects.
        #[arg(required = true)]
        sketches: Vec<ObjectUrl>,
    },
    /// Finalize a sketch and publish the projection to --output (nothing new is
    /// published when the current projection came from the same sketch, k and solver).
    Finalize {
        /// The sketch: a file or s3://bucket/key.
        #[arg(long)]
        sketch: ObjectUrl,
        /// Output storage: a directory or s3://bucket/prefix.
        #[arg(long)]
        output: StorageUrl,
        /// The shards the sketch came from (a directory or s3://bucket/prefix): when
        /// given, their labelled rows train the recognition head (a second pass).
        #[arg(long)]
        input: Option<StorageUrl>,
        /// What to publish, and how (the head options apply with --input).
        #[command(flatten)]
        publish: PublishArgs,
    },
    /// Write the PCA and recognition report (3-D scatter, explained variance, accuracy
    /// and bytes per photo vs k; PNG, self-contained HTML, JSON) under `reports/<run>/`.
    Report {
        /// Storage holding the shards (`incoming/`) and the published projection
        /// (`models/projection/`); the report is written here too.
        #[arg(long)]
        storage: StorageUrl,
        /// Run name: the report goes to `reports/<run>/` (default: report-<unix ms>).
        #[arg(long)]
        run_id: Option<String>,
        /// The model whose projection and embeddings to report on (default: the one most
        /// rows carry).
        #[arg(long)]
        model_id: Option<ModelId>,
        /// TrueType font for the charts' text.
        #[arg(long, default_value = fruits_aggregator::report::DEBIAN_FONT)]
        font: PathBuf,
    },
    /// Generate the publisher's Ed25519 key pair: `<out>` (secret, hex) and `<out>.pub`.
    Keygen {
        /// Secret key file to create (never overwritten).
        #[arg(long)]
        out: PathBuf,
    },
    /// Serve authenticated shard uploads from phones and the published projections.
    Ingest {
        /// Address to listen on, e.g. 127.0.0.1:8080.
        #[arg(long)]
        listen: String,
        /// Storage: a directory or s3://bucket/prefix.
        #[arg(long)]
        storage: StorageUrl,
        /// Registered devices and their HMAC secrets (JSON).
        #[arg(long)]
        devices: PathBuf,
        /// A model uploads may come from; repeat it for a fleet moving between models
        /// (each model's shards, codes and projections are kept apart).
        #[arg(long = "model-id", required = true)]
        model_ids: Vec<ModelId>,
        /// The embedding dimension (of every model).
        #[arg(long, default_value_t = 1280)]
        dim: u32,
        /// Largest upload, bytes.
        #[arg(long, default_value_t = Policy::DEFAULT_MAX_BODY)]
        max_body: usize,
        /// Sustained uploads per second per device.
        #[arg(long, default_value_t = Policy::DEFAULT_RATE_PER_SECOND)]
        rate_per_second: f64,
        /// Burst of uploads per device.
        #[arg(long, default_value_t = Policy::DEFAULT_RATE_BURST)]
        rate_burst: f64,
        /// Most connections open at once (more are answered 503 with Retry-After).
        #[arg(long, default_value_t = Policy::DEFAULT_MAX_CONNECTIONS)]
        max_connections: usize,
        /// Seconds allowed for a request's headers, and for an idle connection.
        #[arg(long, default_value_t = Policy::DEFAULT_HEADER_TIMEOUT_SECS)]
        header_timeout_secs: u64,
        /// Seconds allowed for an authenticated request's body.
        #[arg(long, default_value_t = Policy::DEFAULT_BODY_TIMEOUT_SECS)]
        body_timeout_secs: u64,
    },
    /// Describe a shard, sketch or projection artifact.
    Inspect {
        /// The file, or s3://bucket/key.
        file: ObjectUrl,
        /// Print everything as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Price a month of uploads and aggregation on AWS (eu-west-3) for each upload mode.
    Estimate {
        /// Active devices uploading in the month.
        #[arg(long, default_value_t = 10_000)]
        devices: u64,
        /// Photos per device per month.
        #[arg(long, default_value_t = 30)]
        photos_per_device_month: u64,
        /// Components kept (width of projected codes).
        #[arg(long, default_value_t = 50)]
        k: u32,
        /// Rows per shard (per PUT) in batched modes.
        #[arg(long, default_value_t = 64)]
        batch_size: u64,
        /// Mean bytes of one uploaded photo.
        #[arg(long, default_value_t = 100_000)]
        photo_bytes: u64,
        /// Aggregator rows per second on one core node.
        #[arg(long, default_value_t = estimate::EstimateInput::default().rows_per_sec_per_node)]
        rows_per_sec_per_node: f64,
        /// EMR core nodes.
        #[arg(long, default_value_t = 2)]
        core_nodes: u32,
    },
    /// Write synthetic shards (spectrum 1/i, large positive mean) for tests and benchmarks.
    Synth {
        /// Total rows.
        #[arg(long)]
        rows: usize,
        /// Embedding dimension.
        #[arg(long, default_value_t = 1280)]
        dim: usize,
        /// Number of shards.
        #[arg(long)]
        shards: usize,
        /// Output storage, a directory or s3://bucket/prefix (shards go under incoming/).
        #[arg(long)]
        out: StorageUrl,
        /// Seed naming the data set.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
}

fn progress_bar(len: u64) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("{elapsed_precise} [{bar:40}] {pos}/{len} shards ({per_sec})")
            .expect("valid template"),
    );
    bar
}

fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// Runs one parsed command.
pub fn execute(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Run { input, output, model_id, run_id, publish } => {
            let opts = RunOptions {
                input_prefix: String::new(),
                model_id,
                run_id: run_id.unwrap_or_else(|| format!("run-{}", clock::now_unix_ms())),
                publish: publish.options()?,
            };
            let (input, output) = (input.open()?, output.open()?);
            let report = run::run(&*input, &*output, &opts, &progress_bar(0))?;
            print_json(&report)
        }
        Command::Sketch { input, output, run_id, model_id, out, resume, keys } => {
            let outcomes_url = ObjectUrl { key: format!("{}.outcomes.json", out.key), ..out.clone() };
            if resume && let (Ok(_), Ok(outcomes)) = (out.read(), outcomes_url.read()) {
                println!("{}", String::from_utf8_lossy(&outcomes));
                return Ok(());
            }
            let (input, output) = (input.open()?, output.open()?);
            let (input, output) = (&*input, &*output);
            let mut keys = if keys.is_empty() { pipeline::list_shards(input, "")? } else { keys };
            keys.sort();
            let expected =
                pipeline::expectation(input, &keys, model_id).context("no valid embedding shard among the keys")?;
            let bar = progress_bar(keys.len() as u64);
            let quarantine = layout::quarantine_prefix(&run_id);
            let stage = pipeline::sketch_shards(input, output, &keys, &expected, &quarantine, &bar)?;
            bar.finish_and_clear();
            let sketch = stage.sketch.context("no shard was accepted")?;
            out.write(&sketch.encode()?).with_context(|| format!("writing {out}"))?;
            let outcomes = serde_json::to_string_pretty(&stage.outcomes)?;
            outcomes_url.write(outcomes.as_bytes()).with_context(|| format!("writing {outcomes_url}"))?;
            println!("{outcomes}");
            Ok(())
        }
        Command::Plan { input, model_id, partitions } => {
            let input = input.open()?;
            let keys = pipeline::list_shards(&*input, "")?;
            let expected =
                pipeline::expectation(&*input, &keys, model_id).context("no valid embedding shard under --input")?;
            print_json(&serde_json::json!({
                "model_id": expected.model_id.to_string(),
                "dim": expected.dim,
                "partitions": pipeline::partition(&keys, partitions as usize),
            }))
        }
        Command::Merge { out, mut sketches } => {
            sketches.sort_by_key(ToString::to_string);
            let blobs = sketches
                .iter()
                .map(|url| url.read().with_context(|| format!("reading {url}")))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let merged = pipeline::merge_sketches(&blobs)?;
            let bytes = merged.encode()?;
            out.write(&bytes).with_context(|| format!("writing {out}"))?;
            print_json(&inspect::describe(&bytes)?)
        }
        Command::Finalize { sketch, output, input, publish } => {
            let opts = publish.options()?;
            let bytes = sketch.read().with_context(|| format!("reading {sketch}"))?;
            let sketch = fruits_pca::sketch::ScatterSketch::decode(&bytes)?;
            let output = output.open()?;
            let input = input.map(|input| input.open()).transpose()?;
            let keys = match &input {
                Some(input) => pipeline::list_shards(&**input, "")?,
                None => Vec::new(),
            };
            let rows = input.as_deref().map(|input| HeadRows { input, keys: &keys });
            let publication = pipeline::publish(&*output, &sketch, rows, &opts)?;
            if let Some(reason) = &publication.head_skipped {
                eprintln!("no recognition head published: {reason}");
            }
            print_json(&publication.latest)
        }
        Command::Report { storage, run_id, model_id, font } => {
            let font = fs::read(&font).with_context(|| {
                format!("reading the font {} (Debian: apt-get install fonts-dejavu-core)", font.display())
            })?;
            let storage = storage.open()?;
            let run = run_id.unwrap_or_else(|| format!("report-{}", clock::now_unix_ms()));
            let options = HeadOptions::default();
            print_json(&fruits_aggregator::report::write(&*storage, &*storage, &run, model_id, font, &options)?)
        }
        Command::Keygen { out } => {
            let key = signing::keygen(&out)?;
            println!(
                "{{\"secret\": {:?}, \"public\": {:?}, \"public_key\": \"{}\"}}",
                out.display().to_string(),
                signing::public_path(&out).display().to_string(),
                hex::encode(key.verifying_key().to_bytes())
            );
            Ok(())
        }
        Command::Ingest {
            listen,
            storage,
            devices,
            model_ids,
            dim,
            max_body,
            rate_per_second,
            rate_burst,
            max_connections,
            header_timeout_secs,
            body_timeout_secs,
        } => {
            let devices: fruits_aggregator::ingest::DevicesFile =
                serde_json::from_slice(&fs::read(&devices).with_context(|| format!("reading {}", devices.display()))?)?;
            let policy = Policy {
                max_body,
                rate_per_second,
                rate_burst,
                max_connections,
                header_timeout: std::time::Duration::from_secs(header_timeout_secs),
                body_timeout: std::time::Duration::from_secs(body_timeout_secs),
                models: model_ids.iter().map(|&m| (m, dim)).collect(),
                ..Policy::new(model_ids[0], dim)
            };
            let store = storage.open()?;
            // Temporary files of writes a killed ingest left behind (local storage only).
            let swept = store.sweep_temp(fruits_aggregator::storage::STALE_TEMP_AGE)?;
            if swept > 0 {
                eprintln!("ingest: removed {swept} temporary files of interrupted writes");
            }
            let ingest = fruits_aggregator::ingest::Ingest::new(store.into(), devices.secrets()?, policy);
            let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            runtime.block_on(async {
                let listener = tokio::net::TcpListener::bind(&listen).await?;
                eprintln!("ingest listening on {}", listener.local_addr()?);
                fruits_aggregator::ingest::serve(listener, ingest).await
            })?;
            Ok(())
        }
        Command::Inspect { file, json } => {
            let bytes = file.read().with_context(|| format!("reading {file}"))?;
            let value = inspect::describe(&bytes)?;
            if json {
                print_json(&value)
            } else {
                println!("{}", inspect::summary(&value));
                Ok(())
            }
        }
        Command::Estimate {
            devices,
            photos_per_device_month,
            k,
            batch_size,
            photo_bytes,
            rows_per_sec_per_node,
            core_nodes,
        } => {
            let input = estimate::EstimateInput {
                devices,
                photos_per_device_month,
                k,
                batch_size,
                photo_bytes,
                rows_per_sec_per_node,
                core_nodes,
                ..Default::default()
            };
            print_json(&estimate::estimate(&input)?)
        }
        Command::Synth { rows, dim, shards, out, seed } => {
            anyhow::ensure!(shards > 0 && dim > 0, "--shards and --dim must be positive");
            let storage = out.open()?;
            let model = ModelId::of_bytes(format!("synthetic-{dim}").as_bytes());
            for (key, shard) in Synthetic::new(dim, seed).shards(model, rows, shards, seed)? {
                storage.put(&key, &shard.encode()?)?;
            }
            println!("{{\"model_id\": \"{model}\", \"rows\": {rows}, \"shards\": {shards}}}");
            Ok(())
        }
    }
}
