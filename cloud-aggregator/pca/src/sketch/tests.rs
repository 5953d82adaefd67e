use super::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const D: usize = 150;

/// Rows with a large positive mean and small, correlated spread.
fn rows(n: usize, seed: u64) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n)
        .flat_map(|_| {
            let z: f32 = rng.random::<f32>() - 0.5;
            (0..D).map(|j| 10.0 + j as f32 * 0.01 + z * 0.3 + 0.05 * (rng.random::<f32>() - 0.5)).collect::<Vec<_>>()
        })
        .collect()
}

/// Two-pass f64 covariance: the reference.
fn reference_covariance(x: &[f32]) -> (Vec<f64>, Vec<f64>) {
    let n = x.len() / D;
    let mut mean = vec![0.0; D];
    for r in x.chunks(D) {
        mean.iter_mut().zip(r).for_each(|(m, &v)| *m += v as f64 / n as f64);
    }
    let mut cov = vec![0.0; D * D];
    for r in x.chunks(D) {
        for i in 0..D {
            for j in 0..D {
                cov[i * D + j] += (r[i] as f64 - mean[i]) * (r[j] as f64 - mean[j]) / (n - 1) as f64;
            }
        }
    }
    (mean, cov)
}

fn id(tag: &[u8]) -> ModelId {
    ModelId::of_bytes(tag)
}

#[test]
fn f32_block_path_matches_an_f64_two_pass_covariance() {
    let x = rows(3 * BLOCK_ROWS + 77, 1);
    let mut s = ScatterSketch::new(id(b"m"), D as u32);
    s.add_rows(&x).unwrap();
    let (mean, cov) = reference_covariance(&x);
    let got = s.covariance().unwrap();
    let scale = (0..D).map(|i| cov[i * D + i]).fold(0.0, f64::max);
    let worst = got.iter().zip(&cov).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
    assert!(worst / scale < 1e-6, "relative covariance error {}", worst / scale);
    let mean_err = s.mean().iter().zip(&mean).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
    assert!(mean_err < 1e-9, "mean error {mean_err}");
    assert_eq!(s.rows(), (3 * BLOCK_ROWS + 77) as u64);
}

#[test]
fn merged_pieces_equal_the_whole() {
    let x = rows(1000, 2);
    let mut whole = ScatterSketch::new(id(b"m"), D as u32);
    whole.add_rows(&x).unwrap();
    let mut merged = ScatterSketch::new(id(b"m"), D as u32);
    for piece in x.chunks(D * 137) {
        let mut s = ScatterSketch::new(id(b"m"), D as u32);
        s.add_rows(piece).unwrap();
        merged.merge(&s).unwrap();
    }
    let (a, b) = (whole.covariance().unwrap(), merged.covariance().unwrap());
    let worst = a.iter().zip(&b).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
    assert!(worst < 1e-8, "max diff {worst}");
    assert_eq!(whole.rows(), merged.rows());
}

#[test]
fn round_trips_through_its_frame_and_refuses_corruption() {
    let mut s = ScatterSketch::new(id(b"m"), D as u32);
    s.add_rows(&rows(300, 3)).unwrap();
    let bytes = s.encode().unwrap();
    assert_eq!(&bytes[..8], b"FRUITSKT");
    assert_eq!(ScatterSketch::decode(&bytes).unwrap(), s);
    assert!(ScatterSketch::decode(&bytes[..bytes.len() - 1]).is_err());
    let mut flipped = bytes.clone();
    flipped[40] ^= 1;
    assert!(ScatterSketch::decode(&flipped).is_err());
}

#[test]
fn refuses_to_merge_other_models_or_dimensions() {
    let mut a = ScatterSketch::new(id(b"a"), D as u32);
    let b = ScatterSketch::new(id(b"b"), D as u32);
    assert_eq!(a.merge(&b), Err(SketchError::ModelMismatch { expected: id(b"a"), found: id(b"b") }));
    let c = ScatterSketch::new(id(b"a"), 3);
    assert_eq!(a.merge(&c), Err(SketchError::DimMismatch { expected: D as u32, found: 3 }));
    assert!(a.add_rows(&[1.0; D + 1]).is_err());
}

#[test]
fn fixed_tree_merges_in_order_with_a_fixed_shape() {
    let leaf = |i: usize| i.to_string();
    let merge = |a: String, b: String| format!("({a} {b})");
    assert_eq!(merge_in_fixed_tree(5, &leaf, &merge).unwrap(), "((0 1) (2 (3 4)))");
    assert_eq!(merge_in_fixed_tree(0, &leaf, &merge), None);
}
