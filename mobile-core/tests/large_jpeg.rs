//! Large photos: JPEG DCT-domain downscaling vs full-size decode, and EXIF
//! orientation on both paths.

mod common;

use std::time::Instant;

use common::*;
use fruits_core::{PreprocessOptions, Preprocessor, cosine_similarity};
use image::RgbImage;

/// DCT-scaled vs full decode, normalised units (2/255 = one grey level).
/// Measured on the 12 MP photo: max 0.024, p99 0.008, mean 0.0012, cosine 0.99976.
const MEAN_TOLERANCE: f32 = 0.005;
const P99_TOLERANCE: f32 = 0.02;
const MAX_TOLERANCE: f32 = 0.08;
const MIN_COSINE: f32 = 0.999;

fn upscaled_jpeg(name: &str, width: u32, height: u32, exif_orientation: Option<u16>) -> (RgbImage, Vec<u8>) {
    let small = fruits_core::preprocess::flatten_on_white(image::load_from_memory(&photo(name)).unwrap());
    let big = image::imageops::resize(&small, width, height, image::imageops::FilterType::Triangle);
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 90).encode_image(&big).unwrap();
    if let Some(o) = exif_orientation {
        jpeg = with_exif_orientation(&jpeg, o);
    }
    (big, jpeg)
}

/// Inserts an EXIF APP1 segment (big-endian TIFF, one IFD0 entry: Orientation).
fn with_exif_orientation(jpeg: &[u8], orientation: u16) -> Vec<u8> {
    let mut tiff = b"MM\0*\0\0\0\x08\0\x01".to_vec();
    tiff.extend([0x01, 0x12, 0x00, 0x03, 0, 0, 0, 1]);
    tiff.extend(orientation.to_be_bytes());
    tiff.extend([0, 0, 0, 0, 0, 0]);
    let mut app1 = b"Exif\0\0".to_vec();
    app1.extend(tiff);
    let mut out = jpeg[..2].to_vec();
    out.extend([0xFF, 0xE1]);
    out.extend(((app1.len() + 2) as u16).to_be_bytes());
    out.extend(app1);
    out.extend(&jpeg[2..]);
    out
}

fn preprocessors() -> (Preprocessor, Preprocessor) {
    let spec = manifest().input;
    (
        Preprocessor::new(spec.clone(), PreprocessOptions { jpeg_dct_scaling: true, ..Default::default() }),
        Preprocessor::new(spec, PreprocessOptions { jpeg_dct_scaling: false, ..Default::default() }),
    )
}

#[test]
fn twelve_megapixel_jpeg_dct_path_matches_full_decode() {
    let (_, jpeg) = upscaled_jpeg("orange_seville.png", 4000, 3000, None);
    let (dct, full) = preprocessors();

    let t = Instant::now();
    let decoded = dct.decode(&jpeg).unwrap();
    let dct_decode = t.elapsed();
    assert_eq!(decoded.dimensions(), (1000, 750), "1/4 scale keeps the short side >= 2 x 224");
    let t = Instant::now();
    let decoded_full = full.decode(&jpeg).unwrap();
    let full_decode = t.elapsed();
    assert_eq!(decoded_full.dimensions(), (4000, 3000));

    let t = Instant::now();
    let a = dct.preprocess(&jpeg).unwrap();
    let dct_total = t.elapsed();
    let t = Instant::now();
    let b = full.preprocess(&jpeg).unwrap();
    let full_total = t.elapsed();
    let (max, mean) = diff(&a.data, &b.data);
    let mut d: Vec<f32> = a.data.iter().zip(&b.data).map(|(x, y)| (x - y).abs()).collect();
    d.sort_by(f32::total_cmp);
    let p99 = d[d.len() * 99 / 100];
    eprintln!(
        "12 MP JPEG ({} KB): decode DCT 1/4 {dct_decode:?} vs full {full_decode:?}; preprocess {dct_total:?} vs {full_total:?}; \
         tensor diff max {max:.4} p99 {p99:.4} mean {mean:.5}",
        jpeg.len() / 1024
    );
    assert!(mean <= MEAN_TOLERANCE, "mean abs diff {mean}");
    assert!(p99 <= P99_TOLERANCE, "p99 abs diff {p99}");
    assert!(max <= MAX_TOLERANCE, "max abs diff {max}");

    let e = embedder();
    let cos = cosine_similarity(&e.embed_tensor(&a).unwrap(), &e.embed_tensor(&b).unwrap()).unwrap();
    eprintln!("embedding cosine DCT vs full: {cos:.6}");
    assert!(cos > MIN_COSINE, "cosine {cos}");
}

#[test]
fn exif_orientation_applied_on_both_paths() {
    let (dct, full) = preprocessors();
    let (_, upright) = upscaled_jpeg("avocado.png", 1600, 1200, None);
    let (_, rotated) = upscaled_jpeg("avocado.png", 1600, 1200, Some(6));
    assert_eq!(dct.decode(&rotated).unwrap().dimensions(), (600, 800), "1/2 scale, then turned upright");
    assert_eq!(full.decode(&rotated).unwrap().dimensions(), (1200, 1600));

    // Orientation 6 means "rotate 90 degrees clockwise to display".
    let expected = image::imageops::rotate90(&full.prepare(&upright).unwrap());
    let expected = fruits_core::preprocess::normalise(&expected, &manifest().input).unwrap();
    let unrotated = full.preprocess(&upright).unwrap();
    for (name, p) in [("dct", &dct), ("full", &full)] {
        let got = p.preprocess(&rotated).unwrap();
        let (max, mean) = diff(&got.data, &expected.data);
        let (_, mean_wrong) = diff(&got.data, &unrotated.data);
        eprintln!("orientation 6, {name}: vs expected max {max:.4} mean {mean:.5}; vs unrotated mean {mean_wrong:.4}");
        assert!(mean <= MEAN_TOLERANCE && max <= MAX_TOLERANCE, "{name}: max {max} mean {mean}");
        assert!(mean_wrong > 4.0 * mean, "{name}: orientation seems ignored");
    }
}

#[test]
fn small_jpeg_takes_the_full_path() {
    let (dct, full) = preprocessors();
    let (_, jpeg) = upscaled_jpeg("kiwi.png", 400, 300, None);
    assert_eq!(dct.decode(&jpeg).unwrap(), full.decode(&jpeg).unwrap());
}
