//! Photo bytes -> normalised input tensor, following the model manifest.
//!
//! Pipeline (the same formula as `scripts/ort_reference.py`):
//! 1. sniff the container format from magic bytes;
//! 2. read the declared dimensions from the header and refuse, before any pixel buffer
//!    exists, images above [`PreprocessOptions::max_pixels`], images whose full-size
//!    buffer would be over [`PreprocessOptions::max_decoded_bytes`] (16-bit and alpha
//!    channels count), and frames that are no usable photo (short side under
//!    [`MIN_SHORT_SIDE`] or longer than [`MAX_ASPECT_RATIO`] times it);
//! 3. decode (large JPEGs: DCT-domain downscaling by libjpeg-turbo to a short
//!    side of at least twice the input's, see [`jpeg_idct_scale`]),
//!    apply the EXIF orientation;
//! 4. composite alpha on white: `round(c * a / 255 + 255 * (1 - a / 255))`;
//! 5. centre-crop to the input's aspect ratio (square for 224x224), offsets
//!    rounded down, then resize with a bilinear convolution (triangle filter whose
//!    support widens when downscaling: Pillow's `Image.BILINEAR`);
//! 6. normalise per channel: `value = pixel * scale + offset`, in the manifest's
//!    channel order and layout.

mod jpeg_scaled;

use std::io::Cursor;

use fast_image_resize as fr;
use image::{DynamicImage, ImageDecoder, RgbImage, RgbaImage, metadata::Orientation};

use crate::error::{EmbedError, Result};
use crate::header::{self, ImageFormat};
use crate::manifest::{ChannelOrder, InputSpec, Layout};

/// DCT-scaled JPEGs keep a short side of at least this many times the model
/// input's, so the final bilinear resize is still a real downscale: at 1x the
/// 8x8-block averaging of 1/8 scaling moved a 12 MP photo's embedding to cosine
/// 0.9986 against the full decode; at 2x it stays above 0.999.
pub const JPEG_DCT_OVERSAMPLE: u32 = 2;

/// Whether the linked libjpeg-turbo decodes with its SIMD kernels (x86: assembled with
/// `nasm` when mozjpeg-sys was built; ARM: NEON, always). Without them a large JPEG decodes
/// about 3x slower; the build warns (`build.rs`) and `fruits embed --verbose` says so.
pub const JPEG_SIMD: bool = cfg!(jpeg_simd);

/// Default pixel limit: 100 megapixels.
pub const DEFAULT_MAX_PIXELS: u64 = 100_000_000;

/// Default limit of a full-size decoded buffer: 100 megapixels of 8-bit RGBA. The peak of
/// a decode is this buffer plus its 8-bit RGB copy (3 bytes per pixel).
pub const DEFAULT_MAX_DECODED_BYTES: u64 = 400_000_000;

/// The shortest side, in pixels, of an image that can be a photo of a fruit: the model
/// would see a smear of a few rows upscaled to 224.
pub const MIN_SHORT_SIDE: u32 = 32;

/// The longest side may be at most this many times the short one (a panorama of 1:20
/// still has a centre square worth embedding; a 65535 x 1 frame has not).
pub const MAX_ASPECT_RATIO: u32 = 20;

/// Tunables of preprocessing (not part of the model contract).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PreprocessOptions {
    /// Largest `width * height` accepted from an image header.
    pub max_pixels: u64,
    /// Largest full-size decoded buffer accepted, in bytes (`width * height * channels *
    /// bytes per channel`, from the header). JPEGs decoded at a reduced DCT scale count
    /// their reduced size.
    pub max_decoded_bytes: u64,
    /// Decode large baseline/progressive 8-bit JPEGs at 1/2, 1/4 or 1/8 scale in
    /// the DCT domain (short side never below [`JPEG_DCT_OVERSAMPLE`] times the
    /// model input's), so a 12 MP photo is never decoded at full size.
    pub jpeg_dct_scaling: bool,
}

impl Default for PreprocessOptions {
    fn default() -> Self {
        Self { max_pixels: DEFAULT_MAX_PIXELS, max_decoded_bytes: DEFAULT_MAX_DECODED_BYTES, jpeg_dct_scaling: true }
    }
}

/// One preprocessed image in the manifest's layout, without the batch axis.
#[derive(Debug, Clone, PartialEq)]
pub struct InputTensor {
    /// Shape: `[H, W, C]` for NHWC models, `[C, H, W]` for NCHW.
    pub shape: [usize; 3],
    /// Values in row-major order.
    pub data: Vec<f32>,
}

/// Turns encoded photos into model input tensors.
#[derive(Debug, Clone)]
pub struct Preprocessor {
    spec: InputSpec,
    options: PreprocessOptions,
}

impl Preprocessor {
    /// Creates a preprocessor for the given input contract.
    pub fn new(spec: InputSpec, options: PreprocessOptions) -> Self {
        Self { spec, options }
    }

    /// The input contract.
    pub fn spec(&self) -> &InputSpec {
        &self.spec
    }

    /// The options in use.
    pub fn options(&self) -> PreprocessOptions {
        self.options
    }

    /// Decodes `bytes` into an upright RGB image composited on white.
    ///
    /// Large JPEGs come back DCT-downscaled (short side still >= the model
    /// input's) when [`PreprocessOptions::jpeg_dct_scaling`] is on.
    pub fn decode(&self, bytes: &[u8]) -> Result<RgbImage> {
        let info = header::read_header(bytes)?;
        let pixels = u64::from(info.width) * u64::from(info.height);
        if pixels > self.options.max_pixels || info.width == 0 || info.height == 0 {
            if pixels > self.options.max_pixels {
                return Err(EmbedError::ImageTooLarge {
                    width: info.width,
                    height: info.height,
                    limit: self.options.max_pixels,
                });
            }
            return Err(decode_err(info.format, "zero image dimension"));
        }
        let (short, long) = (info.width.min(info.height), info.width.max(info.height));
        if short < MIN_SHORT_SIDE || u64::from(long) > u64::from(short) * u64::from(MAX_ASPECT_RATIO) {
            return Err(EmbedError::NotAPhoto { width: info.width, height: info.height });
        }
        if info.format == ImageFormat::Jpeg && self.options.jpeg_dct_scaling {
            let target = self.spec.height.min(self.spec.width).saturating_mul(JPEG_DCT_OVERSAMPLE);
            let scale = jpeg_idct_scale(info.width, info.height, target);
            if scale < 8 && info.jpeg_dct_capable {
                return decode_jpeg_scaled(bytes, scale);
            }
        }
        if info.decoded_bytes() > self.options.max_decoded_bytes {
            return Err(EmbedError::DecodedTooLarge {
                width: info.width,
                height: info.height,
                bytes: info.decoded_bytes(),
                limit: self.options.max_decoded_bytes,
            });
        }
        decode_generic(bytes, info.format, self.max_alloc())
    }

    /// Decodes, crops and resizes `bytes` to the model's input size (u8 RGB).
    pub fn prepare(&self, bytes: &[u8]) -> Result<RgbImage> {
        let img = self.decode(bytes)?;
        resize_centre_crop(&img, self.spec.width, self.spec.height)
    }

    /// Full pipeline: encoded bytes -> normalised tensor.
    pub fn preprocess(&self, bytes: &[u8]) -> Result<InputTensor> {
        let img = self.prepare(bytes)?;
        normalise(&img, &self.spec)
    }

    fn max_alloc(&self) -> u64 {
        // The decoded buffer the header allowed, plus slack for metadata and palettes.
        self.options.max_decoded_bytes.saturating_add(64 << 20)
    }
}

/// Numerator of the eighths (1, 2, 4 or 8, meaning 1/8 .. 8/8) that libjpeg
/// should decode a `width x height` JPEG at so that the short side is the
/// smallest that still reaches `target` pixels (`ceil(side * s / 8) >= target`).
pub fn jpeg_idct_scale(width: u32, height: u32, target: u32) -> u8 {
    let short = u64::from(width.min(height));
    [1u8, 2, 4].into_iter().find(|&s| (short * u64::from(s)).div_ceil(8) >= u64::from(target)).unwrap_or(8)
}

fn decode_err(format: ImageFormat, message: impl ToString) -> EmbedError {
    EmbedError::Decode { format: format.name(), message: message.to_string() }
}

fn image_format(format: ImageFormat) -> image::ImageFormat {
    match format {
        ImageFormat::Jpeg => image::ImageFormat::Jpeg,
        ImageFormat::Png => image::ImageFormat::Png,
        ImageFormat::WebP => image::ImageFormat::WebP,
        ImageFormat::Gif => image::ImageFormat::Gif,
        ImageFormat::Bmp => image::ImageFormat::Bmp,
    }
}

/// Full-resolution decode through the `image` crate (all formats).
fn decode_generic(bytes: &[u8], format: ImageFormat, max_alloc: u64) -> Result<RgbImage> {
    let mut limits = image::Limits::default();
    limits.max_alloc = Some(max_alloc);
    let mut reader = image::ImageReader::with_format(Cursor::new(bytes), image_format(format));
    reader.limits(limits);
    let mut decoder = reader.into_decoder().map_err(|e| decode_err(format, e))?;
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    let mut img = DynamicImage::from_decoder(decoder).map_err(|e| decode_err(format, e))?;
    img.apply_orientation(orientation);
    Ok(flatten_on_white(img))
}

/// JPEG decode at a reduced DCT scale (`scale_num` eighths), turned upright by
/// its EXIF orientation.
fn decode_jpeg_scaled(bytes: &[u8], scale_num: u8) -> Result<RgbImage> {
    let (img, orientation) = jpeg_scaled::decode(bytes, scale_num)?;
    let mut img = DynamicImage::ImageRgb8(img);
    img.apply_orientation(orientation);
    Ok(img.into_rgb8())
}

/// Drops alpha by compositing on white; images without alpha convert directly.
pub fn flatten_on_white(img: DynamicImage) -> RgbImage {
    if img.color().has_alpha() { composite_on_white(&img.into_rgba8()) } else { img.into_rgb8() }
}

/// Composites RGBA on an opaque white background:
/// `round((c * a + 255 * (255 - a)) / 255)` per channel.
pub fn composite_on_white(rgba: &RgbaImage) -> RgbImage {
    let mut out = RgbImage::new(rgba.width(), rgba.height());
    for (dst, src) in out.pixels_mut().zip(rgba.pixels()) {
        let a = u32::from(src[3]);
        for c in 0..3 {
            let v = u32::from(src[c]) * a + 255 * (255 - a);
            dst[c] = ((v + 127) / 255) as u8;
        }
    }
    out
}

/// Centre crop box `(left, top, width, height)` with the aspect ratio
/// `out_w : out_h`, offsets rounded down.
pub fn centre_crop_box(width: u32, height: u32, out_w: u32, out_h: u32) -> (u32, u32, u32, u32) {
    let (w, h, ow, oh) = (u64::from(width), u64::from(height), u64::from(out_w), u64::from(out_h));
    // Largest crop with w' / h' == ow / oh that fits.
    let (cw, ch) = if w * oh >= h * ow { ((h * ow / oh).max(1), h) } else { (w, (w * oh / ow).max(1)) };
    (((w - cw) / 2) as u32, ((h - ch) / 2) as u32, cw as u32, ch as u32)
}

/// Centre-crops `img` to the output aspect ratio and resizes it to
/// `out_w x out_h` with a bilinear (triangle) convolution.
pub fn resize_centre_crop(img: &RgbImage, out_w: u32, out_h: u32) -> Result<RgbImage> {
    let resize_err = |e: &dyn std::fmt::Display| EmbedError::Decode { format: "resize", message: e.to_string() };
    let (l, t, cw, ch) = centre_crop_box(img.width(), img.height(), out_w, out_h);
    // Copy the crop first: fast_image_resize's own crop lets the filter read
    // pixels outside the box, Pillow's crop-then-resize clamps at its edges.
    let cropped = image::imageops::crop_imm(img, l, t, cw, ch).to_image();
    let src = fr::images::ImageRef::new(cw, ch, cropped.as_raw(), fr::PixelType::U8x3).map_err(|e| resize_err(&e))?;
    let mut dst = fr::images::Image::new(out_w, out_h, fr::PixelType::U8x3);
    let opts = fr::ResizeOptions::new().resize_alg(fr::ResizeAlg::Convolution(fr::FilterType::Bilinear));
    fr::Resizer::new().resize(&src, &mut dst, &opts).map_err(|e| resize_err(&e))?;
    RgbImage::from_raw(out_w, out_h, dst.into_vec()).ok_or_else(|| resize_err(&"buffer size"))
}

/// Normalises an RGB image of exactly the input size into a tensor, following
/// the manifest's channel order, scale/offset and layout.
pub fn normalise(img: &RgbImage, spec: &InputSpec) -> Result<InputTensor> {
    let shape = spec.image_shape();
    if img.width() != spec.width || img.height() != spec.height {
        return Err(EmbedError::TensorShape {
            expected: shape.to_vec(),
            actual: vec![img.height() as usize, img.width() as usize, 3],
        });
    }
    let order: [usize; 3] = match spec.channel_order {
        ChannelOrder::Rgb => [0, 1, 2],
        ChannelOrder::Bgr => [2, 1, 0],
    };
    let (scale, offset) = (&spec.normalization.scale, &spec.normalization.offset);
    let plane = img.width() as usize * img.height() as usize;
    let mut data = vec![0f32; plane * 3];
    for (i, px) in img.pixels().enumerate() {
        for (c, &src) in order.iter().enumerate() {
            let v = f32::from(px[src]) * scale[c] + offset[c];
            match spec.layout {
                Layout::Nhwc => data[i * 3 + c] = v,
                Layout::Nchw => data[c * plane + i] = v,
            }
        }
    }
    Ok(InputTensor { shape, data })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idct_scale_keeps_short_side_at_least_target() {
        assert_eq!(jpeg_idct_scale(4000, 3000, 224), 1); // 375 >= 224
        assert_eq!(jpeg_idct_scale(1600, 1200, 224), 2); // 1/8 -> 150, 1/4 -> 300
        assert_eq!(jpeg_idct_scale(448, 448, 224), 4);
        assert_eq!(jpeg_idct_scale(447, 600, 224), 4); // ceil(223.5) = 224
        assert_eq!(jpeg_idct_scale(446, 600, 224), 8);
        assert_eq!(jpeg_idct_scale(100, 100, 224), 8);
        for (w, h) in [(4000, 3000), (3000, 4000), (1000, 5000), (900, 901)] {
            let s = jpeg_idct_scale(w, h, 224);
            assert!((u64::from(w.min(h)) * u64::from(s)).div_ceil(8) >= 224);
        }
    }

    #[test]
    fn crop_box_is_centred_square() {
        assert_eq!(centre_crop_box(32, 50, 224, 224), (0, 9, 32, 32));
        assert_eq!(centre_crop_box(400, 273, 224, 224), (63, 0, 273, 273));
        assert_eq!(centre_crop_box(10, 10, 224, 224), (0, 0, 10, 10));
        assert_eq!(centre_crop_box(1, 1000, 2, 1), (0, 499, 1, 1));
    }

    #[test]
    fn composite_rounds_like_the_reference() {
        let img = RgbaImage::from_raw(3, 1, vec![0, 0, 0, 0, 0, 0, 0, 255, 100, 50, 200, 128]).unwrap();
        let out = composite_on_white(&img);
        assert_eq!(out.as_raw()[..6], [255, 255, 255, 0, 0, 0]);
        // 100*128/255 + 255*127/255 = 50.2 + 127 = 177.2 -> 177
        assert_eq!(out.as_raw()[6], 177);
    }

    #[test]
    fn normalise_follows_layout_and_order() {
        let spec = |layout, order| InputSpec {
            name: "x".into(),
            layout,
            height: 1,
            width: 2,
            channels: 3,
            channel_order: order,
            normalization: crate::manifest::Normalization { scale: vec![1.0, 2.0, 3.0], offset: vec![0.0, 0.0, 1.0] },
        };
        let img = RgbImage::from_raw(2, 1, vec![1, 2, 3, 4, 5, 6]).unwrap();
        let t = normalise(&img, &spec(Layout::Nhwc, ChannelOrder::Rgb)).unwrap();
        assert_eq!(t.shape, [1, 2, 3]);
        assert_eq!(t.data, [1.0, 4.0, 10.0, 4.0, 10.0, 19.0]);
        let t = normalise(&img, &spec(Layout::Nchw, ChannelOrder::Bgr)).unwrap();
        assert_eq!(t.shape, [3, 1, 2]);
        assert_eq!(t.data, [3.0, 6.0, 4.0, 10.0, 4.0, 13.0]);
        assert!(normalise(&RgbImage::new(3, 3), &spec(Layout::Nhwc, ChannelOrder::Rgb)).is_err());
    }
}
