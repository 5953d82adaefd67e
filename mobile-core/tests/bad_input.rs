//! Hostile and broken inputs: each gets its own typed error, none panics.

mod common;

use std::time::Instant;

use common::*;
use fruits_core::{EmbedError, PreprocessOptions, Preprocessor};

fn preprocessor() -> Preprocessor {
    Preprocessor::new(manifest().input, PreprocessOptions::default())
}

fn png_header(width: u32, height: u32) -> Vec<u8> {
    png_header_with(width, height, 8)
}

fn png_header_with(width: u32, height: u32, bit_depth: u8) -> Vec<u8> {
    // Signature + a well-formed IHDR chunk (RGBA of `bit_depth`) with a valid CRC, then an
    // IDAT claiming 1 GB: only the header is honest about being huge.
    let mut ihdr = b"IHDR".to_vec();
    ihdr.extend(width.to_be_bytes());
    ihdr.extend(height.to_be_bytes());
    ihdr.extend([bit_depth, 6, 0, 0, 0]);
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend(13u32.to_be_bytes());
    png.extend(&ihdr);
    png.extend(crc32(&ihdr).to_be_bytes());
    png.extend((1u32 << 30).to_be_bytes());
    png.extend(b"IDAT\x78\x9c");
    png
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

fn jpeg_bytes() -> Vec<u8> {
    let img = image::load_from_memory(&photo("kiwi.png")).unwrap().to_rgb8();
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90).encode_image(&img).unwrap();
    out
}

#[test]
fn empty_input() {
    assert!(matches!(preprocessor().preprocess(b""), Err(EmbedError::EmptyInput)));
}

#[test]
fn text_file_is_unknown_format() {
    let err = preprocessor().preprocess(b"Bananas are berries; strawberries are not.\n").unwrap_err();
    assert!(matches!(err, EmbedError::UnknownFormat { .. }), "{err:?}");
}

#[test]
fn tiff_is_unsupported_format() {
    let tiff = b"II*\0\x08\0\0\0\x01\0\x00\x01\x03\0\x01\0\0\0\x10\0\0\0\0\0\0\0";
    let err = preprocessor().preprocess(tiff).unwrap_err();
    assert!(matches!(err, EmbedError::UnsupportedFormat { format: "TIFF" }), "{err:?}");
}

#[test]
fn truncated_jpeg_is_decode_error() {
    let jpeg = jpeg_bytes();
    for cut in [4, 20, jpeg.len() / 3, jpeg.len() - 10] {
        let err = preprocessor().preprocess(&jpeg[..cut]).err().unwrap_or_else(|| panic!("cut at {cut} decoded"));
        assert!(matches!(err, EmbedError::Decode { format: "JPEG", .. }), "cut at {cut}: {err:?}");
    }
}

#[test]
fn truncated_png_is_decode_error() {
    let png = photo("kiwi.png");
    let err = preprocessor().preprocess(&png[..png.len() / 2]).unwrap_err();
    assert!(matches!(err, EmbedError::Decode { format: "PNG", .. }), "{err:?}");
}

#[test]
fn png_bomb_refused_before_allocation() {
    let bomb = png_header(60000, 60000);
    let start = Instant::now();
    let err = preprocessor().preprocess(&bomb).unwrap_err();
    match err {
        EmbedError::ImageTooLarge { width: 60000, height: 60000, limit } => assert_eq!(limit, 100_000_000),
        other => panic!("expected ImageTooLarge, got {other:?}"),
    }
    // 14.4 GB of RGBA would take far longer than this to allocate and touch.
    assert!(start.elapsed().as_millis() < 50);
}

#[test]
fn limit_is_configurable_and_exact() {
    let tight = Preprocessor::new(manifest().input, PreprocessOptions { max_pixels: 1024, ..Default::default() });
    assert!(matches!(tight.preprocess(&png_header(32, 33)), Err(EmbedError::ImageTooLarge { .. })));
    // 32x32 passes the limit and then fails on the bogus data instead.
    assert!(matches!(tight.preprocess(&png_header(32, 32)), Err(EmbedError::Decode { .. })));
}

#[test]
fn the_byte_budget_counts_channels_and_bit_depth() {
    // 100 megapixels is within the pixel limit; as 16-bit RGBA it would take 800 MB.
    let start = Instant::now();
    match preprocessor().preprocess(&png_header_with(10_000, 10_000, 16)).unwrap_err() {
        EmbedError::DecodedTooLarge { width: 10_000, height: 10_000, bytes, limit } => {
            assert_eq!((bytes, limit), (800_000_000, 400_000_000));
        }
        other => panic!("expected DecodedTooLarge, got {other:?}"),
    }
    assert!(start.elapsed().as_millis() < 50, "refused before decoding");
    // The same frame in 8-bit RGBA is within budget: it reaches the decoder (bogus data).
    assert!(matches!(preprocessor().preprocess(&png_header_with(10_000, 10_000, 8)), Err(EmbedError::Decode { .. })));
    let tight =
        Preprocessor::new(manifest().input, PreprocessOptions { max_decoded_bytes: 4096, ..Default::default() });
    assert!(matches!(tight.preprocess(&png_header_with(32, 32, 8)), Err(EmbedError::Decode { .. })));
    assert!(matches!(tight.preprocess(&png_header_with(32, 32, 16)), Err(EmbedError::DecodedTooLarge { .. })));
}

/// `jpeg` with its frame header's dimensions replaced.
fn with_frame(jpeg: &[u8], width: u16, height: u16) -> Vec<u8> {
    let mut out = jpeg.to_vec();
    let sof = out.windows(2).position(|w| w == [0xFF, 0xC0]).expect("a baseline JPEG");
    out[sof + 5..sof + 7].copy_from_slice(&height.to_be_bytes());
    out[sof + 7..sof + 9].copy_from_slice(&width.to_be_bytes());
    out
}

#[test]
fn degenerate_frames_are_no_photo() {
    let jpeg = jpeg_bytes();
    for (w, h) in [(65535, 1), (1, 65535), (31, 400), (2101, 100)] {
        let err = preprocessor().preprocess(&with_frame(&jpeg, w, h)).unwrap_err();
        assert!(
            matches!(err, EmbedError::NotAPhoto { width, height } if (width, height) == (w.into(), h.into())),
            "{w}x{h}: {err:?}"
        );
        assert_eq!(err.kind(), "not_a_photo");
    }
    for (w, h) in [(32, 32), (2000, 100), (100, 2000)] {
        let err = preprocessor().preprocess(&png_header(w, h)).unwrap_err();
        assert!(matches!(err, EmbedError::Decode { .. }), "{w}x{h} is within the policy: {err:?}");
    }
    // The real photo is untouched by the policy.
    assert_eq!(preprocessor().preprocess(&jpeg).unwrap().shape, [224, 224, 3]);
}

#[test]
fn zero_dimension_is_decode_error() {
    assert!(matches!(preprocessor().preprocess(&png_header(0, 10)), Err(EmbedError::Decode { .. })));
}

#[test]
fn other_formats_decode() {
    // WebP-less sanity: the same photo as BMP and GIF goes through.
    let img = image::load_from_memory(&photo("kiwi.png")).unwrap();
    for fmt in [image::ImageFormat::Bmp, image::ImageFormat::Gif, image::ImageFormat::Jpeg, image::ImageFormat::WebP] {
        let mut out = std::io::Cursor::new(Vec::new());
        let img =
            if fmt == image::ImageFormat::Jpeg { image::DynamicImage::ImageRgb8(img.to_rgb8()) } else { img.clone() };
        img.write_to(&mut out, fmt).unwrap();
        let t = preprocessor().preprocess(out.get_ref()).unwrap_or_else(|e| panic!("{fmt:?}: {e}"));
        assert_eq!(t.shape, [224, 224, 3]);
    }
}

#[test]
fn each_case_has_a_distinct_error_kind() {
    let p = preprocessor();
    let jpeg = jpeg_bytes();
    let kinds: Vec<&str> =
        [&b""[..], b"plain text, not an image", &jpeg[..jpeg.len() / 2], &png_header(60000, 60000), b"MM\0*\0\0\0\x08"]
            .iter()
            .map(|b| p.preprocess(b).err().map_or("ok", |e| e.kind()))
            .collect();
    assert_eq!(kinds, ["empty_input", "unknown_format", "decode", "image_too_large", "unsupported_format"]);
}
