//! Large JPEGs decoded at a reduced DCT scale by libjpeg-turbo (the `mozjpeg`
//! crate builds it from source, with its SIMD kernels: NEON on ARM, SSE2/AVX2 on
//! x86-64 where `nasm` is installed at build time).
//!
//! A 12-megapixel photo is mostly entropy-coded data, so Huffman decoding sets
//! the cost of a scaled decode. With jpeg-decoder 0.3 our 1/4-scale decode took
//! 1.84x Pillow's (libjpeg-turbo at 1/8); with libjpeg-turbo it takes 1.14x
//! (BENCHMARKS.md, issue 2). zune-jpeg, the faster pure-Rust decoder, has no
//! scaled decoding.
//!
//! libjpeg reports errors through a callback that must not return. `mozjpeg`
//! builds the C code with `-fexceptions` and unwinds out of it, so every call is
//! made inside [`std::panic::catch_unwind`] and the unwind becomes
//! [`EmbedError::Decode`]. libjpeg only *warns* about damaged data (a truncated
//! file comes out padded with grey), so the warnings that mean lost or corrupt
//! data are made fatal here; benign ones (extraneous bytes between markers, a
//! newer JFIF version, a bad ICC profile) are ignored, as every viewer does.

use std::os::raw::{c_char, c_int};
use std::panic::{self, AssertUnwindSafe};

use image::RgbImage;
use image::metadata::Orientation;
use mozjpeg::{Decompress, Marker};
use mozjpeg_sys::{self as ffi, jpeg_common_struct, jpeg_error_mgr};

use super::decode_err;
use crate::error::Result;
use crate::header::ImageFormat;

/// libjpeg's `JMSG_LENGTH_MAX`: the buffer `format_message` writes into.
const MESSAGE_LEN: usize = 200;

/// Warnings that mean the decoded pixels are not the image's.
const DATA_LOSS_WARNINGS: [ffi::J_MESSAGE_CODE; 7] = [
    ffi::JWRN_JPEG_EOF,
    ffi::JWRN_HIT_MARKER,
    ffi::JWRN_HUFF_BAD_CODE,
    ffi::JWRN_MUST_RESYNC,
    ffi::JWRN_NOT_SEQUENTIAL,
    ffi::JWRN_BOGUS_PROGRESSION,
    ffi::JWRN_TOO_MUCH_DATA,
];

/// Decodes `bytes` at `scale_num / 8` of its size (1, 2 or 4 eighths) to RGB, and
/// returns the EXIF orientation found in its APP1 segment (not yet applied).
///
/// Memory is bounded by the pixel limit the caller checked in the header: a
/// sequential JPEG needs a few rows of blocks, a progressive one all of its DCT
/// coefficients (2 bytes each, at most 6 bytes a pixel), less than the 8 bytes a
/// pixel the full-size decoder is allowed.
pub(super) fn decode(bytes: &[u8], scale_num: u8) -> Result<(RgbImage, Orientation)> {
    match panic::catch_unwind(AssertUnwindSafe(|| decode_unguarded(bytes, scale_num))) {
        Ok(Ok(decoded)) => Ok(decoded),
        Ok(Err(io)) => Err(decode_err(ImageFormat::Jpeg, io)),
        Err(payload) => {
            let message = match payload.downcast::<String>() {
                Ok(message) => *message,
                Err(payload) => payload.downcast_ref::<&str>().map_or("libjpeg failed", |s| s).to_owned(),
            };
            Err(decode_err(ImageFormat::Jpeg, message))
        }
    }
}

fn decode_unguarded(bytes: &[u8], scale_num: u8) -> std::io::Result<(RgbImage, Orientation)> {
    let mut decompress =
        Decompress::builder().with_err(strict_error_manager()).with_markers(&[Marker::APP(1)]).from_mem(bytes)?;
    decompress.scale(scale_num);
    let orientation = decompress
        .markers()
        .find_map(|m| m.data.strip_prefix(b"Exif\0\0").and_then(Orientation::from_exif_chunk))
        .unwrap_or(Orientation::NoTransforms);
    let mut started = decompress.rgb()?;
    let (width, height) = (started.width(), started.height());
    let mut pixels = vec![0u8; width * height * 3];
    started.read_scanlines_into(&mut pixels)?;
    started.finish()?;
    let image = RgbImage::from_raw(width as u32, height as u32, pixels)
        .ok_or_else(|| std::io::Error::other(format!("no {width}x{height} image fits the pixel buffer")))?;
    Ok((image, orientation))
}

/// libjpeg's standard error manager with fatal errors and data-loss warnings
/// turned into an unwind, and every other message silenced.
fn strict_error_manager() -> jpeg_error_mgr {
    // SAFETY: `jpeg_std_error` fills in every field of a zeroed manager (the
    // all-zero bit pattern is valid for this plain C struct of integers,
    // pointers and optional function pointers).
    let mut manager = unsafe {
        let mut manager: jpeg_error_mgr = std::mem::zeroed();
        ffi::jpeg_std_error(&mut manager);
        manager
    };
    manager.error_exit = Some(unwind_on_error);
    manager.emit_message = Some(unwind_on_data_loss);
    manager
}

extern "C-unwind" fn unwind_on_error(cinfo: &mut jpeg_common_struct) {
    panic::resume_unwind(Box::new(message(cinfo)));
}

/// `msg_level` -1 is a warning; 0 and above are trace messages.
extern "C-unwind" fn unwind_on_data_loss(cinfo: &mut jpeg_common_struct, msg_level: c_int) {
    // SAFETY: libjpeg calls this with the struct whose `err` points at our manager.
    let code = unsafe { cinfo.err.as_ref() }.map_or(0, |err| err.msg_code);
    if msg_level < 0 && DATA_LOSS_WARNINGS.contains(&code) {
        unwind_on_error(cinfo);
    }
}

/// libjpeg's text for the message it is reporting (e.g. "Premature end of JPEG file").
fn message(cinfo: &mut jpeg_common_struct) -> String {
    // SAFETY: `err` is the manager `jpeg_std_error` filled in; its `format_message`
    // writes at most JMSG_LENGTH_MAX bytes, NUL included. mozjpeg-sys declares the
    // buffer as a shared `&[u8; 80]`; the same function is called through a pointer
    // type that says what it does (ABI-identical: both are a data pointer).
    unsafe {
        let Some(format) = cinfo.err.as_ref().and_then(|err| err.format_message) else {
            return "libjpeg error".to_owned();
        };
        let format: unsafe extern "C-unwind" fn(&mut jpeg_common_struct, *mut c_char) = std::mem::transmute(format);
        let mut buffer = [0u8; MESSAGE_LEN];
        format(cinfo, buffer.as_mut_ptr().cast());
        let text = buffer.split(|&b| b == 0).next().unwrap_or_default();
        String::from_utf8_lossy(text).into_owned()
    }
}
