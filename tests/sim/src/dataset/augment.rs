//! Views of one photo: rotation, scale (zoom in crops), shift, mirror, lighting and
//! background, rendered to a square image like Fruits-360's 100 x 100 frames.
//! Pure and deterministic: the same seed gives the same view, pixel for pixel.

use image::{Rgb, RgbImage, Rgba, RgbaImage};

/// A small deterministic generator (SplitMix64): enough for choosing view
/// parameters, and it keeps the dataset reproducible without a seed file.
#[derive(Debug, Clone)]
pub struct SplitMix(u64);

impl SplitMix {
    /// A generator seeded from `name` (FNV-1a) and `index`.
    pub fn for_view(name: &str, index: u32) -> Self {
        let mut h = 0xcbf2_9ce4_8422_2325u64;
        for b in name.bytes().chain(index.to_le_bytes()) {
            h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
        Self(h)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `[lo, hi)`.
    pub fn uniform(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * ((self.next_u64() >> 40) as f32 / (1u64 << 24) as f32)
    }
}

/// How one view differs from the photo.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct View {
    /// Rotation, radians.
    pub rotation: f32,
    /// Zoom: 1 fits the fruit in 80% of the frame; above 1.25 crops it.
    pub scale: f32,
    /// Shift of the fruit's centre, in frame widths.
    pub shift: (f32, f32),
    /// Mirror left-right.
    pub mirror: bool,
    /// Added to every channel of the fruit (0..1 scale).
    pub brightness: f32,
    /// Contrast factor around mid-grey.
    pub contrast: f32,
    /// Colour temperature: red up and blue down by this share (negative: cooler).
    pub warmth: f32,
    /// Background colour behind the fruit.
    pub background: [u8; 3],
}

impl View {
    /// The photo as it is, centred on white.
    pub const IDENTITY: View = View {
        rotation: 0.0,
        scale: 1.0,
        shift: (0.0, 0.0),
        mirror: false,
        brightness: 0.0,
        contrast: 1.0,
        warmth: 0.0,
        background: [255, 255, 255],
    };

    /// A random view: any rotation, zoom 0.7-1.4 (crops above 1.25), shifts up to
    /// 8%, lighting +-12%, contrast 0.8-1.2, and a white, grey or pastel background.
    pub fn random(rng: &mut SplitMix) -> View {
        let background = match rng.next_u64() % 3 {
            0 => [255, 255, 255],
            1 => [rng.uniform(200.0, 256.0) as u8; 3],
            _ => [rng.uniform(170.0, 256.0) as u8, rng.uniform(170.0, 256.0) as u8, rng.uniform(170.0, 256.0) as u8],
        };
        View {
            rotation: rng.uniform(0.0, std::f32::consts::TAU),
            scale: rng.uniform(0.7, 1.4),
            shift: (rng.uniform(-0.08, 0.08), rng.uniform(-0.08, 0.08)),
            mirror: rng.next_u64() % 2 == 1,
            brightness: rng.uniform(-0.12, 0.12),
            contrast: rng.uniform(0.8, 1.2),
            warmth: rng.uniform(-0.08, 0.08),
            background,
        }
    }
}

/// The box `(x0, y0, x1, y1)` (exclusive ends) around the photo's visible pixels,
/// or the whole image when nothing is opaque.
pub fn visible_box(photo: &RgbaImage) -> (u32, u32, u32, u32) {
    let (mut x0, mut y0, mut x1, mut y1) = (u32::MAX, u32::MAX, 0, 0);
    for (x, y, p) in photo.enumerate_pixels() {
        if p[3] > 16 {
            (x0, y0, x1, y1) = (x0.min(x), y0.min(y), x1.max(x + 1), y1.max(y + 1));
        }
    }
    if x0 == u32::MAX { (0, 0, photo.width(), photo.height()) } else { (x0, y0, x1, y1) }
}

/// Bilinear sample with premultiplied alpha; outside the photo is transparent.
fn sample(photo: &RgbaImage, x: f32, y: f32) -> [f32; 4] {
    let (w, h) = (photo.width() as i64, photo.height() as i64);
    let (fx, fy) = (x - 0.5, y - 0.5);
    let (ix, iy) = (fx.floor() as i64, fy.floor() as i64);
    let (tx, ty) = (fx - fx.floor(), fy - fy.floor());
    let mut out = [0f32; 4];
    for (dx, dy, weight) in
        [(0, 0, (1.0 - tx) * (1.0 - ty)), (1, 0, tx * (1.0 - ty)), (0, 1, (1.0 - tx) * ty), (1, 1, tx * ty)]
    {
        let (px, py) = (ix + dx, iy + dy);
        if px < 0 || py < 0 || px >= w || py >= h {
            continue;
        }
        let Rgba([r, g, b, a]) = *photo.get_pixel(px as u32, py as u32);
        let alpha = f32::from(a) / 255.0;
        out[0] += weight * alpha * f32::from(r) / 255.0;
        out[1] += weight * alpha * f32::from(g) / 255.0;
        out[2] += weight * alpha * f32::from(b) / 255.0;
        out[3] += weight * alpha;
    }
    out
}

/// Renders `view` of `photo` as a `size x size` RGB image.
pub fn render(photo: &RgbaImage, view: &View, size: u32) -> RgbImage {
    let (x0, y0, x1, y1) = visible_box(photo);
    let centre = ((x0 + x1) as f32 / 2.0, (y0 + y1) as f32 / 2.0);
    let extent = (x1 - x0).max(y1 - y0).max(1) as f32;
    let zoom = 0.8 * size as f32 / extent * view.scale;
    let (sin, cos) = view.rotation.sin_cos();
    let frame_centre = (size as f32 * (0.5 + view.shift.0), size as f32 * (0.5 + view.shift.1));
    let light = |c: f32, cast: f32| ((c * (1.0 + cast) - 0.5) * view.contrast + 0.5 + view.brightness).clamp(0.0, 1.0);
    RgbImage::from_fn(size, size, |u, v| {
        let (du, dv) = (u as f32 + 0.5 - frame_centre.0, v as f32 + 0.5 - frame_centre.1);
        // Inverse rotation, then zoom, then the mirror, back into photo pixels.
        let (mut rx, ry) = ((cos * du + sin * dv) / zoom, (-sin * du + cos * dv) / zoom);
        if view.mirror {
            rx = -rx;
        }
        let [r, g, b, a] = sample(photo, centre.0 + rx, centre.1 + ry);
        let fruit =
            if a > 0.0 { [light(r / a, view.warmth), light(g / a, 0.0), light(b / a, -view.warmth)] } else { [0.0; 3] };
        let pixel = |i: usize| {
            (a * fruit[i] * 255.0 + (1.0 - a) * f32::from(view.background[i])).round().clamp(0.0, 255.0) as u8
        };
        Rgb([pixel(0), pixel(1), pixel(2)])
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A red disc of radius 10 in a 40 x 30 transparent image, off-centre.
    fn disc() -> RgbaImage {
        RgbaImage::from_fn(40, 30, |x, y| {
            let (dx, dy) = (x as f32 - 14.5, y as f32 - 14.5);
            if dx * dx + dy * dy <= 100.0 { Rgba([200, 0, 0, 255]) } else { Rgba([0, 0, 0, 0]) }
        })
    }

    #[test]
    fn the_identity_view_centres_the_fruit_on_white() {
        let img = render(&disc(), &View::IDENTITY, 100);
        assert_eq!(img.dimensions(), (100, 100));
        assert_eq!(*img.get_pixel(50, 50), Rgb([200, 0, 0]));
        assert_eq!(*img.get_pixel(2, 2), Rgb([255, 255, 255]));
        // The disc (20 px across) fills 80% of the frame: red at 10 px from the edge + 1.
        assert_eq!(img.get_pixel(50, 12)[1], 0);
        assert_eq!(*img.get_pixel(50, 5), Rgb([255, 255, 255]));
    }

    #[test]
    fn views_are_deterministic_and_differ_from_each_other() {
        let a = View::random(&mut SplitMix::for_view("apple", 3));
        assert_eq!(a, View::random(&mut SplitMix::for_view("apple", 3)));
        assert_ne!(a, View::random(&mut SplitMix::for_view("apple", 4)));
        assert_eq!(render(&disc(), &a, 64), render(&disc(), &a, 64));
        assert!((0.7..1.4).contains(&a.scale) && (0.8..1.2).contains(&a.contrast));
    }

    #[test]
    fn lighting_and_background_apply_where_they_should() {
        let view = View { brightness: 0.1, background: [0, 0, 255], ..View::IDENTITY };
        let img = render(&disc(), &view, 100);
        assert_eq!(*img.get_pixel(1, 1), Rgb([0, 0, 255]));
        let centre = img.get_pixel(50, 50);
        assert!(centre[0] > 220 && centre[1] > 20, "{centre:?}");
        assert_eq!(visible_box(&disc()), (5, 5, 25, 25));
    }
}
