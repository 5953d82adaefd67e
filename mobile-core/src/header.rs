//! Format sniffing and header-only dimension reading (pure, allocation-free).
//!
//! The dimensions come from the container header before any decoder runs, so
//! a decompression bomb is refused before a pixel buffer is allocated.

use crate::error::{EmbedError, Result};

/// Image container formats the engine decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ImageFormat {
    /// JPEG (JFIF/EXIF).
    Jpeg,
    /// PNG.
    Png,
    /// WebP (lossy, lossless, extended).
    WebP,
    /// GIF (first frame).
    Gif,
    /// Windows bitmap.
    Bmp,
}

impl ImageFormat {
    /// Upper-case display name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Jpeg => "JPEG",
            Self::Png => "PNG",
            Self::WebP => "WebP",
            Self::Gif => "GIF",
            Self::Bmp => "BMP",
        }
    }
}

/// File-name extensions of the formats the engine decodes (lower case): what a walk of a
/// photo folder picks up.
pub const IMAGE_EXTENSIONS: [&str; 6] = ["jpg", "jpeg", "png", "webp", "gif", "bmp"];

/// Whether `path` names a file of a format the engine decodes, by its extension (any case).
pub fn has_image_extension(path: &std::path::Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.iter().any(|x| x.eq_ignore_ascii_case(e)))
}

/// What the header says about an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderInfo {
    /// Container format.
    pub format: ImageFormat,
    /// Declared width in pixels (before EXIF orientation).
    pub width: u32,
    /// Declared height in pixels (before EXIF orientation).
    pub height: u32,
    /// JPEG only: 8-bit, 1 or 3 components, baseline/extended/progressive DCT,
    /// i.e. eligible for DCT-domain downscaling.
    pub jpeg_dct_capable: bool,
    /// Bytes per pixel of the full-size decoded buffer (channels x bytes per channel) as the
    /// header declares it; 4 where the container does not say (8-bit RGBA, the widest the
    /// decoders produce for it).
    pub bytes_per_pixel: u8,
}

impl HeaderInfo {
    /// Bytes of the full-size decoded pixel buffer: `width x height x bytes_per_pixel`.
    pub fn decoded_bytes(&self) -> u64 {
        u64::from(self.width) * u64::from(self.height) * u64::from(self.bytes_per_pixel)
    }
}

/// Bytes per pixel of a PNG from its IHDR bit depth and colour type (palettes expand to
/// 8-bit RGBA at most).
fn png_bytes_per_pixel(bit_depth: u8, colour_type: u8) -> u8 {
    let channels = match colour_type {
        0 => 1,
        4 => 2,
        2 => 3,
        _ => 4,
    };
    let depth = if bit_depth == 16 && colour_type != 3 { 2 } else { 1 };
    channels * depth
}

/// Identifies the container format from magic bytes.
pub fn sniff(bytes: &[u8]) -> Result<ImageFormat> {
    if bytes.is_empty() {
        return Err(EmbedError::EmptyInput);
    }
    let starts = |m: &[u8]| bytes.starts_with(m);
    let unsupported = |format| Err(EmbedError::UnsupportedFormat { format });
    if starts(&[0xFF, 0xD8, 0xFF]) {
        Ok(ImageFormat::Jpeg)
    } else if starts(b"\x89PNG\r\n\x1a\n") {
        Ok(ImageFormat::Png)
    } else if starts(b"GIF87a") || starts(b"GIF89a") {
        Ok(ImageFormat::Gif)
    } else if bytes.len() >= 12 && starts(b"RIFF") && &bytes[8..12] == b"WEBP" {
        Ok(ImageFormat::WebP)
    } else if starts(b"BM") && bytes.len() >= 14 {
        Ok(ImageFormat::Bmp)
    } else if starts(b"II*\0") || starts(b"MM\0*") {
        unsupported("TIFF")
    } else if bytes.len() >= 12 && &bytes[4..8] == b"ftyp" {
        match &bytes[8..12] {
            b"avif" | b"avis" => unsupported("AVIF"),
            b"heic" | b"heix" | b"hevc" | b"heim" | b"heis" | b"mif1" | b"msf1" => unsupported("HEIC"),
            _ => Err(unknown(bytes)),
        }
    } else if starts(b"8BPS") {
        unsupported("PSD")
    } else if starts(&[0xFF, 0x0A]) || starts(b"\0\0\0\x0cJXL \r\n\x87\n") {
        unsupported("JPEG XL")
    } else if starts(b"qoif") {
        unsupported("QOI")
    } else {
        Err(unknown(bytes))
    }
}

fn unknown(bytes: &[u8]) -> EmbedError {
    let head = &bytes[..bytes.len().min(8)];
    EmbedError::UnknownFormat { head: head.iter().map(|b| format!("{b:02x}")).collect() }
}

fn truncated(format: ImageFormat, what: &str) -> EmbedError {
    EmbedError::Decode { format: format.name(), message: format!("header truncated or malformed: {what}") }
}

fn be16(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from(u16::from_be_bytes(b.get(at..at + 2)?.try_into().ok()?)))
}
fn le16(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?)))
}
fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}
fn le32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}
fn le24(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at + 3)?;
    Some(u32::from(s[0]) | u32::from(s[1]) << 8 | u32::from(s[2]) << 16)
}

/// Sniffs the format and reads the declared dimensions from the header only.
pub fn read_header(bytes: &[u8]) -> Result<HeaderInfo> {
    let format = sniff(bytes)?;
    let info = |width, height| HeaderInfo { format, width, height, jpeg_dct_capable: false, bytes_per_pixel: 4 };
    let err = |what| truncated(format, what);
    match format {
        ImageFormat::Png => {
            if bytes.get(12..16) != Some(b"IHDR") {
                return Err(err("IHDR chunk missing"));
            }
            let (depth, colour) = match bytes.get(24..26) {
                Some(&[depth, colour]) => (depth, colour),
                _ => return Err(err("IHDR")),
            };
            Ok(HeaderInfo {
                bytes_per_pixel: png_bytes_per_pixel(depth, colour),
                ..info(be32(bytes, 16).ok_or(err("IHDR"))?, be32(bytes, 20).ok_or(err("IHDR"))?)
            })
        }
        ImageFormat::Gif => Ok(info(le16(bytes, 6).ok_or(err("screen"))?, le16(bytes, 8).ok_or(err("screen"))?)),
        ImageFormat::Bmp => {
            let dib = le32(bytes, 14).ok_or(err("DIB header"))?;
            if dib == 12 {
                Ok(info(le16(bytes, 18).ok_or(err("core header"))?, le16(bytes, 20).ok_or(err("core header"))?))
            } else {
                let w = le32(bytes, 18).ok_or(err("info header"))? as i32;
                let h = le32(bytes, 22).ok_or(err("info header"))? as i32;
                Ok(info(w.unsigned_abs(), h.unsigned_abs()))
            }
        }
        ImageFormat::WebP => match bytes.get(12..16) {
            Some(b"VP8 ") => {
                if bytes.get(23..26) != Some(&[0x9d, 0x01, 0x2a]) {
                    return Err(err("VP8 start code"));
                }
                Ok(info(le16(bytes, 26).ok_or(err("VP8"))? & 0x3fff, le16(bytes, 28).ok_or(err("VP8"))? & 0x3fff))
            }
            Some(b"VP8L") => {
                if bytes.get(20) != Some(&0x2f) {
                    return Err(err("VP8L signature"));
                }
                let v = le32(bytes, 21).ok_or(err("VP8L"))?;
                Ok(info((v & 0x3fff) + 1, ((v >> 14) & 0x3fff) + 1))
            }
            Some(b"VP8X") => Ok(info(le24(bytes, 24).ok_or(err("VP8X"))? + 1, le24(bytes, 27).ok_or(err("VP8X"))? + 1)),
            _ => Err(err("unknown WebP chunk")),
        },
        ImageFormat::Jpeg => {
            let frame = jpeg_frame(bytes)?;
            // Lenient decoders fill a truncated scan with grey; refuse it instead.
            // After the first SOS every 0xFF in entropy-coded data is stuffed or
            // a restart marker, so FF D9 there is the real end-of-image marker.
            let scan = jpeg_scan_start(bytes).ok_or(err("no scan"))?;
            if !bytes[scan..].windows(2).any(|w| w == [0xFF, 0xD9]) {
                return Err(err("truncated: no end-of-image marker"));
            }
            Ok(frame)
        }
    }
}

/// Offset of the first SOS (start of scan) marker, walking marker segments.
fn jpeg_scan_start(b: &[u8]) -> Option<usize> {
    let mut pos = 2;
    loop {
        while b.get(pos) == Some(&0xFF) && b.get(pos + 1) == Some(&0xFF) {
            pos += 1;
        }
        if b.get(pos) != Some(&0xFF) {
            return None;
        }
        match *b.get(pos + 1)? {
            0xDA => return Some(pos),
            0xD0..=0xD7 | 0x01 => pos += 2,
            0xD9 => return None,
            _ => {
                let len = be16(b, pos + 2)? as usize;
                if len < 2 {
                    return None;
                }
                pos += 2 + len;
            }
        }
    }
}

/// Walks JPEG marker segments up to the first SOFn frame header.
fn jpeg_frame(b: &[u8]) -> Result<HeaderInfo> {
    let err = |what| truncated(ImageFormat::Jpeg, what);
    let mut pos = 2;
    loop {
        // Skip fill bytes before a marker.
        while b.get(pos) == Some(&0xFF) && b.get(pos + 1) == Some(&0xFF) {
            pos += 1;
        }
        if b.get(pos) != Some(&0xFF) {
            return Err(err("no frame header before end of data"));
        }
        let marker = *b.get(pos + 1).ok_or(err("marker"))?;
        match marker {
            0xD0..=0xD7 | 0x01 => pos += 2,
            0xD9 | 0xDA => return Err(err("no frame header before scan")),
            0xC0..=0xCF if !matches!(marker, 0xC4 | 0xC8 | 0xCC) => {
                let precision = *b.get(pos + 4).ok_or(err("SOF"))?;
                let height = be16(b, pos + 5).ok_or(err("SOF"))?;
                let width = be16(b, pos + 7).ok_or(err("SOF"))?;
                let components = *b.get(pos + 9).ok_or(err("SOF"))?;
                let dct_capable = matches!(marker, 0xC0..=0xC2) && precision == 8 && matches!(components, 1 | 3);
                let bytes_per_pixel = components.clamp(1, 4) * if precision > 8 { 2 } else { 1 };
                return Ok(HeaderInfo {
                    format: ImageFormat::Jpeg,
                    width,
                    height,
                    jpeg_dct_capable: dct_capable,
                    bytes_per_pixel,
                });
            }
            _ => {
                let len = be16(b, pos + 2).ok_or(err("segment length"))? as usize;
                if len < 2 {
                    return Err(err("segment length"));
                }
                pos += 2 + len;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_and_reads_png_header() {
        let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
        png.extend(60000u32.to_be_bytes());
        png.extend(50000u32.to_be_bytes());
        png.extend([16, 6]);
        let h = read_header(&png).unwrap();
        assert_eq!((h.format, h.width, h.height, h.bytes_per_pixel), (ImageFormat::Png, 60000, 50000, 8));
        assert_eq!(h.decoded_bytes(), 60000 * 50000 * 8);
    }

    #[test]
    fn png_bytes_per_pixel_follow_depth_and_colour_type() {
        assert_eq!(png_bytes_per_pixel(8, 0), 1);
        assert_eq!(png_bytes_per_pixel(16, 0), 2);
        assert_eq!(png_bytes_per_pixel(8, 2), 3);
        assert_eq!(png_bytes_per_pixel(16, 2), 6);
        assert_eq!(png_bytes_per_pixel(8, 3), 4);
        assert_eq!(png_bytes_per_pixel(16, 4), 4);
        assert_eq!(png_bytes_per_pixel(16, 6), 8);
    }

    #[test]
    fn distinct_errors() {
        assert!(matches!(sniff(b""), Err(EmbedError::EmptyInput)));
        assert!(matches!(sniff(b"hello world"), Err(EmbedError::UnknownFormat { .. })));
        assert!(matches!(sniff(b"II*\0\x08\0\0\0"), Err(EmbedError::UnsupportedFormat { format: "TIFF" })));
        assert!(matches!(sniff(b"\0\0\0\x18ftypheic\0\0\0\0"), Err(EmbedError::UnsupportedFormat { format: "HEIC" })));
        assert!(matches!(read_header(b"\xFF\xD8\xFF\xE0\0"), Err(EmbedError::Decode { .. })));
    }

    #[test]
    fn jpeg_sof_after_app_segments() {
        let mut j = vec![0xFF, 0xD8, 0xFF, 0xE0, 0, 4, 0, 0, 0xFF, 0xC2, 0, 8, 8];
        j.extend(3000u16.to_be_bytes());
        j.extend(4000u16.to_be_bytes());
        j.push(3);
        j.extend([0xFF, 0xDA, 0, 2, 0x12, 0x34]);
        assert!(matches!(read_header(&j), Err(EmbedError::Decode { .. })), "no EOI");
        j.extend([0xFF, 0xD9]);
        let h = read_header(&j).unwrap();
        assert_eq!((h.width, h.height, h.jpeg_dct_capable), (4000, 3000, true));
    }
}
