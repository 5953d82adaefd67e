//! The system's spine, end to end on the embedded default (local directories):
//! real fruit photos in the Fruits-360 layout -> the `fruits embed --format shard` binary ->
//! the aggregator's `run` job (with a corrupt shard among the good ones) -> a projection
//! artifact and a run report that agree with the shards.

use std::path::Path;
use std::process::Command;

mod common;
use common::{repo_root, shard_files};

use fruits_aggregator::pipeline::PublishOptions;
use fruits_aggregator::run::{RunOptions, run};
use fruits_aggregator::storage::LocalDir;
use fruits_formats::{ProjectionArtifact, Shard, layout};
use fruits_pca::eigen::Solver;

/// A Fruits-360-style `Training/<Class>/<photo>.png` tree of the real photos.
fn fruits360_tree(root: &Path) -> usize {
    let photos = repo_root().join("data/tuxpaint/fruit");
    let entries =
        std::fs::read_dir(&photos).unwrap_or_else(|e| panic!("{}: {e}. Run scripts/setup.sh", photos.display()));
    let mut count = 0;
    for entry in entries {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "png") {
            let class = root.join("Training").join(path.file_stem().unwrap());
            std::fs::create_dir_all(&class).unwrap();
            std::fs::copy(&path, class.join(path.file_name().unwrap())).unwrap();
            count += 1;
        }
    }
    assert!(count >= 20, "expected the tuxpaint fruit photos, found {count}");
    count
}

fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

#[test]
fn photos_embedded_into_shards_are_aggregated_into_a_projection_and_a_report() {
    let tmp = tempfile::tempdir().unwrap();
    let photos = fruits360_tree(tmp.path());
    let shards = tmp.path().join("store/incoming");
    let embed = Command::new(env!("CARGO_BIN_EXE_fruits"))
        .args(["embed", "--format", "shard", "--shard-rows", "8", "--label-from-dir", "--model"])
        .arg(repo_root().join("models/mobilenetv2-1.0-224-embed.onnx"))
        .arg("--out")
        .arg(&shards)
        .arg(tmp.path().join("Training"))
        .env_remove("FRUITS_MODEL_DIR")
        .output()
        .unwrap();
    assert!(embed.status.success(), "{}", String::from_utf8_lossy(&embed.stderr));

    // What the phones uploaded: every photo once, labelled by its folder.
    let good = shard_files(&shards);
    assert_eq!(good.len(), photos.div_ceil(8));
    let decoded: Vec<Shard> = good.iter().map(|p| Shard::decode(&std::fs::read(p).unwrap()).unwrap()).collect();
    let rows: usize = decoded.iter().map(|s| s.header().rows as usize).sum();
    assert_eq!(rows, photos);
    let mut mean = vec![0f64; 1280];
    for shard in &decoded {
        for (i, row) in shard.values().chunks(1280).enumerate() {
            assert!(shard.label(i).is_some());
            mean.iter_mut().zip(row).for_each(|(m, v)| *m += f64::from(*v) / rows as f64);
        }
    }

    // One corrupt upload among them.
    let bytes = std::fs::read(&good[0]).unwrap();
    std::fs::write(shards.join("desktop/truncated.shard"), &bytes[..bytes.len() / 2]).unwrap();

    let out = tmp.path().join("store");
    let store = LocalDir::new(&out);
    let opts = RunOptions {
        input_prefix: String::new(),
        model_id: None,
        run_id: "e2e".into(),
        publish: PublishOptions {
            k: 5,
            solver: Solver::Randomized { seed: 0 },
            head: None,
            signing_key: None,
            created_unix_ms: 1,
        },
    };
    run(&store, &store, &opts, &indicatif::ProgressBar::hidden()).unwrap();

    let report = read_json(&out.join(layout::run_report_key("e2e")));
    assert_eq!(report["shards_read"], good.len() + 1);
    assert_eq!(report["shards_accepted"], good.len());
    assert_eq!(report["shards_rejected"], 1);
    assert_eq!(report["rows"], photos);
    assert!(out.join(layout::quarantine_prefix("e2e")).join(layout::incoming_key("desktop", "truncated")).exists());

    let model = decoded[0].header().model_id;
    let latest = read_json(&out.join(layout::latest_key(&model)));
    assert_eq!(latest["version"], 1);
    let artifact =
        ProjectionArtifact::decode(&std::fs::read(out.join(layout::projection_key(&model, 1))).unwrap()).unwrap();
    assert_eq!(artifact.rows, photos as u64);
    assert_eq!(artifact.k, 5);
    assert_eq!(artifact.model_id, decoded[0].header().model_id);
    let mean_error = artifact.mean.iter().zip(&mean).map(|(a, b)| (f64::from(*a) - b).abs()).fold(0.0, f64::max);
    assert!(mean_error < 1e-5, "artifact mean off by {mean_error}");
    assert!(artifact.explained_variance.windows(2).all(|w| w[0] >= w[1]));
    // The 5 components explain a real share of the variance of real photos.
    let share: f64 = artifact.explained_variance_ratio.iter().sum();
    assert!(share > 0.2 && share < 1.0, "top-5 share {share}");
}
