//! Merge invariance, thread-count determinism and sketch storage.

mod common;

use common::*;
use fruits_aggregator::pipeline;
use fruits_aggregator::storage::{LocalDir, Storage};
use fruits_aggregator::synth::Synthetic;
use fruits_formats::{ModelId, ProjectionArtifact};
use fruits_pca::eigen::Solver;
use fruits_pca::finalize::finalize;
use fruits_pca::sketch::{ScatterSketch, SketchError, merge_in_fixed_tree};
use indicatif::ProgressBar;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const DIM: usize = 1280;
const ROWS: usize = 12_800;

fn model() -> ModelId {
    ModelId::of_bytes(b"merge-test")
}

fn sketch_of(rows: &[f32]) -> ScatterSketch {
    let mut s = ScatterSketch::new(model(), DIM as u32);
    s.add_rows(rows).unwrap();
    s
}

fn artifact(s: &ScatterSketch) -> ProjectionArtifact {
    finalize(s, 10, Solver::Randomized { seed: 0 }, 1, 0).unwrap().artifact
}

#[test]
fn one_shard_64_shards_random_tree_and_other_orders_agree() {
    let rows = Synthetic::new(DIM, 11).rows(ROWS, 12);
    let pieces: Vec<ScatterSketch> = rows.chunks(DIM * ROWS / 64).map(sketch_of).collect();
    assert_eq!(pieces.len(), 64);
    let fixed = |order: &[usize]| {
        merge_in_fixed_tree(order.len(), &|i| pieces[order[i]].clone(), &|mut a: ScatterSketch, b| {
            a.merge(&b).unwrap();
            a
        })
        .unwrap()
    };
    let sorted: Vec<usize> = (0..64).collect();
    let reversed: Vec<usize> = (0..64).rev().collect();
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let mut pool = pieces.clone();
    pool.shuffle(&mut rng);
    while pool.len() > 1 {
        let a = pool.swap_remove(rng.random_range(0..pool.len()));
        let mut b = pool.swap_remove(rng.random_range(0..pool.len()));
        b.merge(&a).unwrap();
        pool.push(b);
    }
    let variants = [
        ("64 shards, fixed tree", fixed(&sorted)),
        ("64 shards, reversed", fixed(&reversed)),
        ("random tree", pool.pop().unwrap()),
    ];
    let whole = artifact(&sketch_of(&rows));
    for (name, sketch) in variants {
        assert_eq!(sketch.rows(), ROWS as u64);
        let a = artifact(&sketch);
        let comp = worst_component_diff(&components(&a), &components(&whole));
        let mean = a.mean.iter().zip(&whole.mean).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max);
        let var = worst_relative(&a.explained_variance, &whole.explained_variance);
        eprintln!(
            "{name} vs 1 shard: components max diff {comp:.3e}, mean max diff {mean:.3e}, variance rel diff {var:.3e}"
        );
        assert!(comp <= 1e-6, "{name}: components differ by {comp}");
        assert!(mean <= 2.0 * f32::EPSILON * 2.0, "{name}: mean differs by {mean}");
        assert!(var <= 1e-6, "{name}: variances differ by {var}");
    }
}

#[test]
fn artifacts_are_bit_identical_with_one_or_two_threads() {
    let dir = tempfile::tempdir().unwrap();
    let storage = LocalDir::new(dir.path());
    for (key, shard) in Synthetic::new(DIM, 3).shards(model(), 6000, 7, 4).unwrap() {
        storage.put(&key, &shard.encode().unwrap()).unwrap();
    }
    let keys = pipeline::list_shards(&storage, "incoming/").unwrap();
    let expected = pipeline::expectation(&storage, &keys, None).unwrap();
    let bytes_with = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        pool.install(|| {
            let stage =
                pipeline::sketch_shards(&storage, &storage, &keys, &expected, "quarantine/t/", &ProgressBar::hidden())
                    .unwrap();
            let sketch = stage.sketch.unwrap();
            (
                sketch.encode().unwrap(),
                finalize(&sketch, 16, Solver::Randomized { seed: 42 }, 3, 99).unwrap().artifact.encode().unwrap(),
            )
        })
    };
    let (one, two) = (bytes_with(1), bytes_with(2));
    assert!(one.0 == two.0, "sketch bytes differ between 1 and 2 threads");
    assert!(one.1 == two.1, "artifact bytes differ between 1 and 2 threads");
}

#[test]
fn stored_sketches_round_trip_and_refuse_other_models() {
    let rows = Synthetic::new(64, 1).rows(700, 2);
    let mut s = ScatterSketch::new(model(), 64);
    s.add_rows(&rows).unwrap();
    let back = ScatterSketch::decode(&s.encode().unwrap()).unwrap();
    assert_eq!(back, s);
    assert_eq!(back.encode().unwrap(), s.encode().unwrap());
    let mut other = ScatterSketch::new(ModelId::of_bytes(b"another model"), 64);
    other.add_rows(&rows).unwrap();
    let err = back.clone().merge(&other).unwrap_err();
    assert_eq!(err, SketchError::ModelMismatch { expected: model(), found: other.model_id() });
    assert!(pipeline::merge_sketches(&[s.encode().unwrap(), other.encode().unwrap()]).is_err());
    assert_eq!(pipeline::merge_sketches(&[s.encode().unwrap(), s.encode().unwrap()]).unwrap().rows(), 1400);
}
