//! Property-based fuzzing of the decode path: arbitrary and mutated bytes never
//! panic, whatever error they produce. Bounded: a few hundred cases per property.

mod common;

use common::*;
use fruits_core::{PreprocessOptions, Preprocessor};
use proptest::prelude::*;

fn preprocessor() -> Preprocessor {
    // A small pixel limit bounds memory and time per case.
    Preprocessor::new(manifest().input, PreprocessOptions { max_pixels: 4_000_000, ..Default::default() })
}

fn seeds() -> Vec<Vec<u8>> {
    let png = photo("strawberry.png");
    let img = image::load_from_memory(&png).unwrap();
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 80).encode_image(&img.to_rgb8()).unwrap();
    let mut gif = std::io::Cursor::new(Vec::new());
    img.write_to(&mut gif, image::ImageFormat::Gif).unwrap();
    let mut webp = std::io::Cursor::new(Vec::new());
    img.write_to(&mut webp, image::ImageFormat::WebP).unwrap();
    let mut bmp = std::io::Cursor::new(Vec::new());
    img.write_to(&mut bmp, image::ImageFormat::Bmp).unwrap();
    // Large enough (short side 900) for the DCT-scaled path through libjpeg-turbo.
    let big = image::imageops::resize(&img.to_rgb8(), 1200, 900, image::imageops::FilterType::Triangle);
    let mut big_jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut big_jpeg, 80).encode_image(&big).unwrap();
    vec![png, jpeg, gif.into_inner(), webp.into_inner(), bmp.into_inner(), big_jpeg]
}

proptest! {
    // `FRUITS_FUZZ_CASES` raises the count for a longer run (BENCHMARKS.md).
    #![proptest_config(ProptestConfig { cases: fuzz_cases(300), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        let _ = preprocessor().preprocess(&bytes);
    }

    #[test]
    fn magic_prefix_then_random_never_panics(
        which in 0usize..6,
        tail in proptest::collection::vec(any::<u8>(), 0..1024),
    ) {
        let magic: [&[u8]; 6] = [b"\xFF\xD8\xFF", b"\x89PNG\r\n\x1a\n", b"GIF89a", b"RIFF\0\0\0\0WEBPVP8 ", b"BM", b"\xFF\xD8\xFF\xC0\0\x11\x08"];
        let mut bytes = magic[which].to_vec();
        bytes.extend(tail);
        let _ = preprocessor().preprocess(&bytes);
    }

    #[test]
    fn mutated_real_images_never_panic(
        which in 0usize..6,
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..24),
        cut in proptest::option::of(any::<prop::sample::Index>()),
    ) {
        let bytes = mutated(which, &flips, cut);
        let _ = preprocessor().preprocess(&bytes);
    }

    #[test]
    fn the_header_reader_never_panics_and_counts_one_to_eight_bytes_per_pixel(
        which in 0usize..6,
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..24),
        cut in proptest::option::of(any::<prop::sample::Index>()),
    ) {
        let bytes = mutated(which, &flips, cut);
        if let Ok(info) = fruits_core::header::read_header(&bytes) {
            // The pixel budget is checked against width x height x bytes per pixel: one to
            // four channels of one or two bytes each, whatever the damaged header says.
            prop_assert!((1..=8).contains(&info.bytes_per_pixel), "{info:?}");
        }
    }
}

/// Seed image `which` with bytes overwritten at `flips` and cut at `cut`.
fn mutated(which: usize, flips: &[(prop::sample::Index, u8)], cut: Option<prop::sample::Index>) -> Vec<u8> {
    let mut bytes = SEEDS.with(|s| s[which].clone());
    for (at, v) in flips {
        let i = at.index(bytes.len());
        bytes[i] = *v;
    }
    if let Some(cut) = cut {
        bytes.truncate(cut.index(bytes.len() + 1));
    }
    bytes
}

/// Cases per property: `default`, or `FRUITS_FUZZ_CASES` for a longer run.
fn fuzz_cases(default: u32) -> u32 {
    std::env::var("FRUITS_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

thread_local! {
    static SEEDS: Vec<Vec<u8>> = seeds();
}
