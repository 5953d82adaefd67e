//! Views of one photo, rendered to a square image. Pure and deterministic: the same
//! seed gives the same view, pixel for pixel.
//!
//! * [`View`]: rotation, scale (zoom in crops), shift, mirror, lighting and a plain
//!   background, like Fruits-360's 100 x 100 frames;
//! * [`PhoneView`]: what a phone photo adds, by [`Family`]: a cluttered background of
//!   real photos of other things, the fruit off-centre and at several scales, fingers
//!   over it, defocus and motion blur, colour temperature and exposure, a tilt, and
//!   JPEG compression at phone qualities (30-95).

use super::scene::{Canvas, Light, Placement};
use image::{RgbImage, RgbaImage};
use serde::Serialize;

/// A small deterministic generator (SplitMix64): enough for choosing view
/// parameters, and it keeps the dataset reproducible without a seed file.
#[derive(Debug, Clone)]
pub struct SplitMix(u64);

impl SplitMix {
    /// A generator from a seed.
    pub fn from_seed(seed: u64) -> Self {
        Self(seed)
    }

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

/// Where the fruit of `view` lands in a `size x size` frame: its visible box's centre
/// at the frame's centre plus the shift, its longest side 80% of the frame at scale 1.
fn placement(photo: &RgbaImage, view: &View, size: u32) -> Placement {
    let (x0, y0, x1, y1) = visible_box(photo);
    let extent = (x1 - x0).max(y1 - y0).max(1) as f32;
    Placement {
        at: (size as f32 * (0.5 + view.shift.0), size as f32 * (0.5 + view.shift.1)),
        anchor: ((x0 + x1) as f32 / 2.0, (y0 + y1) as f32 / 2.0),
        zoom: 0.8 * size as f32 / extent * view.scale,
        rotation: view.rotation,
        mirror: view.mirror,
    }
}

fn light(view: &View) -> Light {
    Light { brightness: view.brightness, contrast: view.contrast, warmth: view.warmth }
}

/// Renders `view` of `photo` as a `size x size` RGB image.
pub fn render(photo: &RgbaImage, view: &View, size: u32) -> RgbImage {
    let mut canvas = Canvas::filled(size, size, view.background);
    canvas.composite(photo, &placement(photo, view, size), &light(view));
    canvas.to_rgb()
}

/// The families of phone-photo conditions a [`PhoneView`] can add to a [`View`];
/// each can be left out on its own, to measure what it buys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Family {
    /// A cluttered background made of real photos of other things (kitchen, street).
    Clutter,
    /// The fruit off-centre and smaller or larger in the frame.
    Framing,
    /// Fingers over part of the fruit.
    Occlusion,
    /// Defocus or motion blur.
    Blur,
    /// Colour temperature and exposure beyond the plain views'.
    Light,
    /// The phone held at an angle.
    Perspective,
    /// JPEG compression at phone qualities.
    Jpeg,
}

impl Family {
    /// Every family.
    pub const ALL: [Family; 7] = [
        Family::Clutter,
        Family::Framing,
        Family::Occlusion,
        Family::Blur,
        Family::Light,
        Family::Perspective,
        Family::Jpeg,
    ];

    /// The family's name, as `fruits dataset build --without` takes it.
    pub fn name(self) -> &'static str {
        match self {
            Family::Clutter => "clutter",
            Family::Framing => "framing",
            Family::Occlusion => "occlusion",
            Family::Blur => "blur",
            Family::Light => "light",
            Family::Perspective => "perspective",
            Family::Jpeg => "jpeg",
        }
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

impl std::str::FromStr for Family {
    type Err = String;

    /// A family by [`Family::name`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Family::ALL.into_iter().find(|f| f.name() == s).ok_or_else(|| {
            let names: Vec<&str> = Family::ALL.iter().map(|f| f.name()).collect();
            format!("{s:?} is no family of phone conditions ({})", names.join(", "))
        })
    }
}

/// A set of [`Family`]s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Families(u8);

impl Families {
    /// Every family.
    pub fn all() -> Families {
        Families(Family::ALL.iter().fold(0, |bits, f| bits | f.bit()))
    }

    /// No family: phone views are then plain views.
    pub fn none() -> Families {
        Families(0)
    }

    /// This set without `family`.
    pub fn without(self, family: Family) -> Families {
        Families(self.0 & !family.bit())
    }

    /// Whether `family` is in the set.
    pub fn contains(self, family: Family) -> bool {
        self.0 & family.bit() != 0
    }
}

/// Fingers over the fruit: `count` side by side, entering from one edge of the frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fingers {
    /// How many (1 to 3).
    pub count: u8,
    /// The edge they come from: 0 top, 1 bottom, 2 left, 3 right.
    pub edge: u8,
    /// Width of one finger, in frame widths.
    pub width: f32,
    /// How far into the frame they reach, in frame widths.
    pub reach: f32,
    /// Where along the edge the first one enters, in frame widths.
    pub start: f32,
    /// Skin colour.
    pub skin: [u8; 3],
}

/// Skin tones the fingers are drawn in (light to dark).
const SKIN: [[u8; 3]; 5] = [[255, 219, 172], [241, 194, 160], [224, 172, 140], [198, 134, 96], [141, 85, 36]];

/// A blur, in frame widths so that it means the same at every size.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Blur {
    /// Sharp.
    None,
    /// Out of focus: a Gaussian of this standard deviation.
    Defocus {
        /// Standard deviation, frame widths.
        sigma: f32,
    },
    /// The phone moved: a streak of this length.
    Motion {
        /// Length, frame widths.
        length: f32,
        /// Direction, radians.
        angle: f32,
    },
}

/// A view as a phone would take it: a [`View`] (with framing and light of the phone
/// ranges when those families are on), then a cluttered background, fingers, a tilt,
/// blur and a JPEG quality.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PhoneView {
    /// Framing, mirror, light and the plain background.
    pub view: View,
    /// Seed of the cluttered background; `None`: the plain one.
    pub clutter: Option<u64>,
    /// Fingers over the fruit.
    pub fingers: Option<Fingers>,
    /// Perspective tilt `(gx, gy)` (see [`Canvas::perspective`]).
    pub tilt: (f32, f32),
    /// Blur.
    pub blur: Blur,
    /// JPEG quality the view is saved at.
    pub jpeg_quality: u8,
}

/// JPEG quality of plain views (and of phone views without [`Family::Jpeg`]): the
/// `image` crate's default.
pub const PLAIN_JPEG_QUALITY: u8 = 75;

impl PhoneView {
    /// A random phone view with the conditions of `families`. Every parameter is drawn
    /// whatever the families, in one order, so that leaving a family out changes that
    /// family's conditions only.
    pub fn random(rng: &mut SplitMix, families: Families) -> PhoneView {
        let plain = View::random(rng);
        let scale = rng.uniform(0.55, 1.2);
        let room = (1.0 - 0.8 * scale).max(0.0) / 2.0 * 0.9;
        let shift = (rng.uniform(-room, room), rng.uniform(-room, room));
        let (brightness, contrast, warmth) =
            (rng.uniform(-0.25, 0.2), rng.uniform(0.7, 1.25), rng.uniform(-0.15, 0.15));
        let clutter_seed = rng.next_u64();
        let clutter_draw = rng.uniform(0.0, 1.0);
        let fingers = Fingers {
            count: 1 + (rng.next_u64() % 3) as u8,
            edge: (rng.next_u64() % 4) as u8,
            width: rng.uniform(0.08, 0.16),
            reach: rng.uniform(0.25, 0.55),
            start: rng.uniform(0.2, 0.8),
            skin: SKIN[(rng.next_u64() % SKIN.len() as u64) as usize],
        };
        let fingers_draw = rng.uniform(0.0, 1.0);
        let tilt = (rng.uniform(-0.15, 0.15), rng.uniform(-0.15, 0.15));
        let tilt_draw = rng.uniform(0.0, 1.0);
        let blur_draw = rng.uniform(0.0, 1.0);
        let (sigma, length, angle) =
            (rng.uniform(0.0025, 0.011), rng.uniform(0.014, 0.04), rng.uniform(0.0, std::f32::consts::PI));
        let quality = rng.uniform(30.0, 96.0) as u8;
        let mut view = plain;
        if families.contains(Family::Framing) {
            (view.scale, view.shift) = (scale, shift);
        }
        if families.contains(Family::Light) {
            (view.brightness, view.contrast, view.warmth) = (brightness, contrast, warmth);
        }
        PhoneView {
            view,
            clutter: (families.contains(Family::Clutter) && clutter_draw < 0.8).then_some(clutter_seed),
            fingers: (families.contains(Family::Occlusion) && fingers_draw < 0.4).then_some(fingers),
            tilt: match families.contains(Family::Perspective) && tilt_draw < 0.3 {
                true => tilt,
                false => (0.0, 0.0),
            },
            blur: match (families.contains(Family::Blur), blur_draw) {
                (true, d) if d < 0.3 => Blur::Defocus { sigma },
                (true, d) if d < 0.5 => Blur::Motion { length, angle },
                _ => Blur::None,
            },
            jpeg_quality: if families.contains(Family::Jpeg) { quality } else { PLAIN_JPEG_QUALITY },
        }
    }
}

/// A background of real photos of other things: a blurred, tinted close-up of one, with
/// two to six more scattered over it (seeded by `seed`); the plain colour of `fallback`
/// when there are no such photos.
fn clutter_background(seed: u64, size: u32, clutter: &[RgbaImage], fallback: [u8; 3]) -> Canvas {
    if clutter.is_empty() {
        return Canvas::filled(size, size, fallback);
    }
    let mut rng = SplitMix::from_seed(seed);
    let pick = |rng: &mut SplitMix| &clutter[(rng.next_u64() % clutter.len() as u64) as usize];
    let s = size as f32;
    let base = pick(&mut rng);
    let (x0, y0, x1, y1) = visible_box(base);
    let crop = (x1 - x0).min(y1 - y0).max(1) as f32 * rng.uniform(0.15, 0.5);
    let anchor = (
        rng.uniform(x0 as f32 + crop / 2.0, (x1 as f32 - crop / 2.0).max(x0 as f32 + crop / 2.0 + 1.0)),
        rng.uniform(y0 as f32 + crop / 2.0, (y1 as f32 - crop / 2.0).max(y0 as f32 + crop / 2.0 + 1.0)),
    );
    let tint = [rng.uniform(60.0, 230.0) as u8, rng.uniform(60.0, 230.0) as u8, rng.uniform(60.0, 230.0) as u8];
    let mut canvas = Canvas::filled(size, size, tint);
    let fade = rng.uniform(0.3, 0.8);
    let close_up = Placement { at: (s / 2.0, s / 2.0), anchor, zoom: s / crop, rotation: 0.0, mirror: false };
    canvas.composite(base, &close_up, &Light { brightness: (1.0 - fade) * 0.1, contrast: fade, warmth: 0.0 });
    let mut canvas = canvas.gaussian_blur(rng.uniform(0.0, 3.0) * s / 224.0);
    for _ in 0..2 + rng.next_u64() % 5 {
        let other = pick(&mut rng);
        let (x0, y0, x1, y1) = visible_box(other);
        let extent = (x1 - x0).max(y1 - y0).max(1) as f32;
        let placement = Placement {
            at: (rng.uniform(-0.1, 1.1) * s, rng.uniform(-0.1, 1.1) * s),
            anchor: ((x0 + x1) as f32 / 2.0, (y0 + y1) as f32 / 2.0),
            zoom: rng.uniform(0.25, 0.8) * s / extent,
            rotation: rng.uniform(0.0, std::f32::consts::TAU),
            mirror: rng.next_u64() % 2 == 1,
        };
        canvas.composite(other, &placement, &Light::NONE);
    }
    canvas
}

/// Draws `fingers` over the canvas.
fn draw_fingers(canvas: &mut Canvas, fingers: &Fingers) {
    let s = canvas.dimensions().0 as f32;
    let (w, reach) = (fingers.width * s, fingers.reach * s);
    let skin = fingers.skin.map(|v| f32::from(v) / 255.0);
    for i in 0..fingers.count {
        let along = fingers.start * s + f32::from(i) * w * 1.05;
        let (from, to) = match fingers.edge {
            0 => ((along, -w), (along, reach - w / 2.0)),
            1 => ((along, s + w), (along, s - reach + w / 2.0)),
            2 => ((-w, along), (reach - w / 2.0, along)),
            _ => ((s + w, along), (s - reach + w / 2.0, along)),
        };
        let shade = 0.92 + 0.08 * f32::from(i % 2);
        canvas.capsule(from, to, w / 2.0, skin.map(|c| c * shade));
    }
}

/// Renders `view` of `photo` as a `size x size` RGB image, its cluttered background
/// made of `clutter` (cut-out photos of things that are not fruit).
pub fn render_phone(photo: &RgbaImage, view: &PhoneView, size: u32, clutter: &[RgbaImage]) -> RgbImage {
    let mut canvas = match view.clutter {
        Some(seed) => clutter_background(seed, size, clutter, view.view.background),
        None => Canvas::filled(size, size, view.view.background),
    };
    canvas.composite(photo, &placement(photo, &view.view, size), &light(&view.view));
    if let Some(fingers) = &view.fingers {
        draw_fingers(&mut canvas, fingers);
    }
    if view.tilt != (0.0, 0.0) {
        canvas = canvas.perspective(view.tilt.0, view.tilt.1);
    }
    let s = size as f32;
    match view.blur {
        Blur::None => {}
        Blur::Defocus { sigma } => canvas = canvas.gaussian_blur(sigma * s),
        Blur::Motion { length, angle } => canvas = canvas.motion_blur(length * s, angle),
    }
    canvas.to_rgb()
}

/// `image` as a JPEG of `quality` (1-100).
pub fn encode_jpeg(image: &RgbImage, quality: u8) -> Result<Vec<u8>, image::ImageError> {
    let mut bytes = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, quality).encode_image(image)?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{Rgb, Rgba};

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

    #[test]
    fn phone_views_are_deterministic_and_families_change_only_their_own_conditions() {
        let all = PhoneView::random(&mut SplitMix::for_view("apple", 3), Families::all());
        assert_eq!(all, PhoneView::random(&mut SplitMix::for_view("apple", 3), Families::all()));
        let plain = PhoneView::random(&mut SplitMix::for_view("apple", 3), Families::none());
        assert_eq!(plain.view, View::random(&mut SplitMix::for_view("apple", 3)), "no family: a plain view");
        assert_eq!((plain.clutter, plain.fingers, plain.tilt, plain.blur), (None, None, (0.0, 0.0), Blur::None));
        assert_eq!(plain.jpeg_quality, PLAIN_JPEG_QUALITY);
        let no_jpeg = PhoneView::random(&mut SplitMix::for_view("apple", 3), Families::all().without(Family::Jpeg));
        assert_eq!(PhoneView { jpeg_quality: all.jpeg_quality, ..no_jpeg }, all);
        // Over many views each family shows up, and the framing keeps the fruit's centre in frame.
        let views: Vec<PhoneView> =
            (0..200).map(|i| PhoneView::random(&mut SplitMix::for_view("kiwi", i), Families::all())).collect();
        assert!(views.iter().any(|v| v.clutter.is_some()) && views.iter().any(|v| v.fingers.is_some()));
        assert!(
            views.iter().any(|v| matches!(v.blur, Blur::Motion { .. })) && views.iter().any(|v| v.tilt != (0.0, 0.0))
        );
        assert!(views.iter().all(|v| (30..=95).contains(&v.jpeg_quality)));
        assert!(views.iter().all(|v| v.view.shift.0.abs() < 0.3 && (0.55..1.2).contains(&v.view.scale)));
    }

    #[test]
    fn phone_views_render_clutter_fingers_and_blur() {
        let clutter = vec![RgbaImage::from_pixel(30, 30, Rgba([0, 200, 0, 255]))];
        let mut view = PhoneView::random(&mut SplitMix::for_view("x", 1), Families::none());
        view.view = View::IDENTITY;
        let plain = render_phone(&disc(), &view, 64, &clutter);
        assert_eq!(plain, render(&disc(), &View::IDENTITY, 64), "no condition: the plain render");
        let cluttered = render_phone(&disc(), &PhoneView { clutter: Some(7), ..view }, 64, &clutter);
        assert!(cluttered.get_pixel(1, 1)[1] > cluttered.get_pixel(1, 1)[0], "green clutter behind the fruit");
        assert_eq!(cluttered.get_pixel(32, 32), plain.get_pixel(32, 32), "the fruit stays on top");
        let fingers = Fingers { count: 1, edge: 0, width: 0.2, reach: 0.6, start: 0.45, skin: SKIN[0] };
        let touched = render_phone(&disc(), &PhoneView { fingers: Some(fingers), ..view }, 64, &clutter);
        let (finger, background) = (touched.get_pixel(32, 2), plain.get_pixel(32, 2));
        assert!(finger[2] < 200 && background[2] == 255, "a finger at the top: {finger:?} over {background:?}");
        assert!(touched.get_pixel(32, 30)[1] > 100, "over the red fruit");
        let blurred = render_phone(&disc(), &PhoneView { blur: Blur::Defocus { sigma: 0.05 }, ..view }, 64, &clutter);
        assert_ne!(blurred, plain);
        let jpeg = encode_jpeg(&plain, 30).unwrap();
        assert!(jpeg.len() < encode_jpeg(&plain, 95).unwrap().len());
        assert_eq!(image::load_from_memory(&jpeg).unwrap().width(), 64);
    }
}
