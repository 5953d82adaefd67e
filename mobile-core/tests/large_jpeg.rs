//! Large photos: JPEG DCT-domain downscaling (libjpeg-turbo) vs full-size decode,
//! EXIF orientation on both paths, progressive JPEGs, and damaged large JPEGs.

mod common;

use std::time::Instant;

use common::*;
use fruits_core::{EmbedError, PreprocessOptions, Preprocessor, cosine_similarity};
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

/// The same picture as `upscaled_jpeg`, written as a progressive JPEG (mozjpeg's
/// encoder writes progressive scans by default).
fn progressive_jpeg(big: &RgbImage) -> Vec<u8> {
    let mut compress = mozjpeg::Compress::new(mozjpeg::ColorSpace::JCS_RGB);
    compress.set_size(big.width() as usize, big.height() as usize);
    compress.set_quality(90.0);
    let mut started = compress.start_compress(Vec::new()).unwrap();
    started.write_scanlines(big.as_raw()).unwrap();
    let jpeg = started.finish().unwrap();
    assert!(fruits_core::header::read_header(&jpeg).unwrap().jpeg_dct_capable);
    assert!(jpeg.windows(2).any(|m| m == [0xFF, 0xC2]), "not progressive");
    jpeg
}

#[test]
fn progressive_jpeg_takes_the_scaled_path_within_tolerance() {
    let (big, baseline) = upscaled_jpeg("strawberry.png", 2000, 1500, None);
    let progressive = progressive_jpeg(&big);
    let (dct, full) = preprocessors();
    assert_eq!(dct.decode(&progressive).unwrap().dimensions(), (1000, 750), "1/2 scale");
    let a = dct.preprocess(&progressive).unwrap();
    let b = full.preprocess(&baseline).unwrap();
    let (max, mean) = diff(&a.data, &b.data);
    eprintln!("progressive at 1/2 vs baseline full decode: max {max:.4} mean {mean:.5}");
    assert!(mean <= MEAN_TOLERANCE && max <= MAX_TOLERANCE, "max {max} mean {mean}");
}

/// A truncated large JPEG is refused on the scaled path at every cut (the header
/// reader wants the end-of-image marker; past it, libjpeg itself would only warn and
/// pad with grey, which the next test covers).
#[test]
fn truncated_large_jpeg_is_a_decode_error_on_the_scaled_path() {
    let (_, jpeg) = upscaled_jpeg("banana.png", 1800, 1200, None);
    let (dct, _) = preprocessors();
    assert_eq!(dct.decode(&jpeg).unwrap().dimensions(), (900, 600), "1/2 scale");
    for cut in [200, jpeg.len() / 3, jpeg.len() - 300, jpeg.len() - 2] {
        let err = dct.decode(&jpeg[..cut]).err().unwrap_or_else(|| panic!("cut at {cut} of {} decoded", jpeg.len()));
        eprintln!("cut at {cut}: {err}");
        assert!(matches!(err, EmbedError::Decode { format: "JPEG", .. }), "cut at {cut}: {err:?}");
    }
}

/// Scan data cut by an end-of-image marker mid-stream: libjpeg's "premature end of
/// data segment" warning is fatal here (libjpeg alone pads the rest with grey), and
/// the error names what libjpeg found.
#[test]
fn corrupt_scan_in_large_jpeg_is_a_decode_error_with_libjpegs_reason() {
    let (_, mut jpeg) = upscaled_jpeg("banana.png", 1800, 1200, None);
    let (dct, _) = preprocessors();
    let middle = jpeg.len() / 2;
    jpeg[middle..middle + 2].copy_from_slice(&[0xFF, 0xD9]);
    match dct.decode(&jpeg) {
        Err(EmbedError::Decode { format: "JPEG", message }) => {
            eprintln!("{message}");
            assert!(message.contains("Corrupt JPEG data"), "{message}");
        }
        Ok(img) => panic!("decoded to {:?}", img.dimensions()),
        Err(other) => panic!("wrong error: {other:?}"),
    }
}

/// A one-component (grayscale) large JPEG comes back as RGB with equal channels,
/// DCT-scaled, within tolerance of its full decode.
#[test]
fn grayscale_large_jpeg_decodes_to_equal_rgb_channels() {
    let (big, _) = upscaled_jpeg("pear.png", 1800, 1200, None);
    let gray = image::DynamicImage::ImageRgb8(big).into_luma8();
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 90).encode_image(&gray).unwrap();
    let (dct, full) = preprocessors();
    let decoded = dct.decode(&jpeg).unwrap();
    assert_eq!(decoded.dimensions(), (900, 600), "1/2 scale");
    assert!(decoded.pixels().all(|p| p[0] == p[1] && p[1] == p[2]), "channels differ");
    let (max, mean) = diff(&dct.preprocess(&jpeg).unwrap().data, &full.preprocess(&jpeg).unwrap().data);
    eprintln!("grayscale at 1/2 vs full decode: max {max:.4} mean {mean:.5}");
    assert!(mean <= MEAN_TOLERANCE && max <= MAX_TOLERANCE, "max {max} mean {mean}");
}
