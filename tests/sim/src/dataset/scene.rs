//! A small float canvas and the operations the views are made of: compositing a
//! cut-out photo (rotated, zoomed, mirrored, relit), a finger over it, a perspective
//! warp, defocus and motion blur. Pure and deterministic.

use image::{Rgb, RgbImage, Rgba, RgbaImage};

/// An RGB image with channels in `0..=1`, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Canvas {
    width: u32,
    height: u32,
    pixels: Vec<[f32; 3]>,
}

/// Where and how a cut-out photo lands on a canvas.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Placement {
    /// The canvas point the photo's `anchor` lands on, pixels.
    pub at: (f32, f32),
    /// The photo point placed at `at`, photo pixels.
    pub anchor: (f32, f32),
    /// Canvas pixels per photo pixel.
    pub zoom: f32,
    /// Rotation, radians.
    pub rotation: f32,
    /// Mirror left-right.
    pub mirror: bool,
}

/// Lighting applied to a photo's colours: `((c * (1 + cast) - 0.5) * contrast + 0.5 +
/// brightness)`, with the cast `+warmth` on red and `-warmth` on blue.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Light {
    /// Added to every channel.
    pub brightness: f32,
    /// Factor around mid-grey.
    pub contrast: f32,
    /// Red up and blue down by this share (negative: cooler).
    pub warmth: f32,
}

impl Light {
    /// No change.
    pub const NONE: Light = Light { brightness: 0.0, contrast: 1.0, warmth: 0.0 };

    fn apply(&self, c: [f32; 3]) -> [f32; 3] {
        let f = |c: f32, cast: f32| ((c * (1.0 + cast) - 0.5) * self.contrast + 0.5 + self.brightness).clamp(0.0, 1.0);
        [f(c[0], self.warmth), f(c[1], 0.0), f(c[2], -self.warmth)]
    }
}

/// Bilinear interpolation at `(x, y)` (pixel centres at half-integers) of the pixels
/// `fetch` gives, `None` counting as zero.
fn bilinear<const N: usize>(x: f32, y: f32, fetch: impl Fn(i64, i64) -> Option<[f32; N]>) -> [f32; N] {
    let (fx, fy) = (x - 0.5, y - 0.5);
    let (ix, iy) = (fx.floor() as i64, fy.floor() as i64);
    let (tx, ty) = (fx - fx.floor(), fy - fy.floor());
    let mut out = [0f32; N];
    for (dx, dy, weight) in
        [(0, 0, (1.0 - tx) * (1.0 - ty)), (1, 0, tx * (1.0 - ty)), (0, 1, (1.0 - tx) * ty), (1, 1, tx * ty)]
    {
        if let Some(p) = fetch(ix + dx, iy + dy) {
            (0..N).for_each(|c| out[c] += weight * p[c]);
        }
    }
    out
}

/// Bilinear sample with premultiplied alpha, in `0..=1`; outside the photo is transparent.
fn sample(photo: &RgbaImage, x: f32, y: f32) -> [f32; 4] {
    let (w, h) = (i64::from(photo.width()), i64::from(photo.height()));
    bilinear(x, y, |px, py| {
        if px < 0 || py < 0 || px >= w || py >= h {
            return None;
        }
        let Rgba([r, g, b, a]) = *photo.get_pixel(px as u32, py as u32);
        let alpha = f32::from(a) / 255.0;
        let premultiplied = |c: u8| alpha * f32::from(c) / 255.0;
        Some([premultiplied(r), premultiplied(g), premultiplied(b), alpha])
    })
}

impl Canvas {
    /// A canvas of one colour (`0..=255` per channel).
    pub fn filled(width: u32, height: u32, colour: [u8; 3]) -> Canvas {
        let c = colour.map(|v| f32::from(v) / 255.0);
        Canvas { width, height, pixels: vec![c; (width * height) as usize] }
    }

    /// Width and height.
    pub fn dimensions(&self) -> (u32, u32) {
        (self.width, self.height)
    }

    fn at(&self, x: i64, y: i64) -> [f32; 3] {
        let x = x.clamp(0, i64::from(self.width) - 1) as usize;
        let y = y.clamp(0, i64::from(self.height) - 1) as usize;
        self.pixels[y * self.width as usize + x]
    }

    /// Bilinear sample, edges clamped.
    fn sample(&self, x: f32, y: f32) -> [f32; 3] {
        bilinear(x, y, |px, py| Some(self.at(px, py)))
    }

    fn map(&self, f: impl Fn(u32, u32) -> [f32; 3]) -> Canvas {
        let pixels =
            (0..self.height).flat_map(|y| (0..self.width).map(move |x| (x, y))).map(|(x, y)| f(x, y)).collect();
        Canvas { width: self.width, height: self.height, pixels }
    }

    /// Draws `photo` (its alpha is its cut-out) over the canvas as `placement` says,
    /// its colours under `light`.
    pub fn composite(&mut self, photo: &RgbaImage, placement: &Placement, light: &Light) {
        let (sin, cos) = placement.rotation.sin_cos();
        let zoom = placement.zoom.max(f32::MIN_POSITIVE);
        let width = self.width;
        for (i, pixel) in self.pixels.iter_mut().enumerate() {
            let (u, v) = ((i as u32 % width) as f32 + 0.5, (i as u32 / width) as f32 + 0.5);
            let (du, dv) = (u - placement.at.0, v - placement.at.1);
            // Inverse rotation, then zoom, then the mirror, back into photo pixels.
            let (mut rx, ry) = ((cos * du + sin * dv) / zoom, (-sin * du + cos * dv) / zoom);
            if placement.mirror {
                rx = -rx;
            }
            let [r, g, b, a] = sample(photo, placement.anchor.0 + rx, placement.anchor.1 + ry);
            if a > 0.0 {
                let lit = light.apply([r / a, g / a, b / a]);
                (0..3).for_each(|c| pixel[c] = a * lit[c] + (1.0 - a) * pixel[c]);
            }
        }
    }

    /// Paints a capsule (a finger seen from above): the segment `from -> to`, `radius`
    /// wide, in `colour`, shaded rounder towards its edges, anti-aliased.
    pub fn capsule(&mut self, from: (f32, f32), to: (f32, f32), radius: f32, colour: [f32; 3]) {
        let (dx, dy) = (to.0 - from.0, to.1 - from.1);
        let len2 = (dx * dx + dy * dy).max(f32::MIN_POSITIVE);
        let width = self.width;
        for (i, pixel) in self.pixels.iter_mut().enumerate() {
            let (x, y) = ((i as u32 % width) as f32 + 0.5, (i as u32 / width) as f32 + 0.5);
            let t = (((x - from.0) * dx + (y - from.1) * dy) / len2).clamp(0.0, 1.0);
            let (px, py) = (from.0 + t * dx - x, from.1 + t * dy - y);
            let distance = (px * px + py * py).sqrt();
            let coverage = (radius + 0.5 - distance).clamp(0.0, 1.0);
            if coverage > 0.0 {
                let edge = (distance / radius).min(1.0);
                let shade = 0.8 + 0.2 * (1.0 - edge * edge).sqrt();
                (0..3).for_each(|c| pixel[c] = coverage * colour[c] * shade + (1.0 - coverage) * pixel[c]);
            }
        }
    }

    /// The canvas seen through a projective tilt: output `(x, y)` shows the point
    /// `(x, y) / (1 + gx x + gy y)`, coordinates in canvas widths from the centre
    /// (so `g` means the same at every size); edges are extended.
    pub fn perspective(&self, gx: f32, gy: f32) -> Canvas {
        let (w, h) = (self.width as f32, self.height as f32);
        self.map(|x, y| {
            let (u, v) = ((x as f32 + 0.5 - w / 2.0) / w, (y as f32 + 0.5 - h / 2.0) / w);
            let d = (1.0 + gx * u + gy * v).max(0.05);
            self.sample(u / d * w + w / 2.0, v / d * w + h / 2.0)
        })
    }

    /// Gaussian defocus of standard deviation `sigma` pixels (separable, edges extended).
    pub fn gaussian_blur(&self, sigma: f32) -> Canvas {
        if sigma <= 0.0 {
            return self.clone();
        }
        let radius = (3.0 * sigma).ceil() as i64;
        let weights: Vec<f32> = (-radius..=radius).map(|i| (-(i * i) as f32 / (2.0 * sigma * sigma)).exp()).collect();
        let total: f32 = weights.iter().sum();
        let pass = |canvas: &Canvas, horizontal: bool| {
            canvas.map(|x, y| {
                let mut out = [0f32; 3];
                for (k, w) in (-radius..=radius).zip(&weights) {
                    let p = match horizontal {
                        true => canvas.at(i64::from(x) + k, i64::from(y)),
                        false => canvas.at(i64::from(x), i64::from(y) + k),
                    };
                    (0..3).for_each(|c| out[c] += w / total * p[c]);
                }
                out
            })
        };
        pass(&pass(self, true), false)
    }

    /// Motion blur: the mean of `length` pixels along a line at `angle` radians.
    pub fn motion_blur(&self, length: f32, angle: f32) -> Canvas {
        let steps = length.round().max(1.0) as usize;
        let (sin, cos) = angle.sin_cos();
        self.map(|x, y| {
            let mut out = [0f32; 3];
            for s in 0..steps {
                let t = s as f32 - (steps - 1) as f32 / 2.0;
                let p = self.sample(x as f32 + 0.5 + t * cos, y as f32 + 0.5 + t * sin);
                (0..3).for_each(|c| out[c] += p[c] / steps as f32);
            }
            out
        })
    }

    /// The canvas as an 8-bit image (rounded, clamped).
    pub fn to_rgb(&self) -> RgbImage {
        let byte = |v: f32| (v * 255.0).round().clamp(0.0, 255.0) as u8;
        RgbImage::from_fn(self.width, self.height, |x, y| {
            let p = self.pixels[(y * self.width + x) as usize];
            Rgb([byte(p[0]), byte(p[1]), byte(p[2])])
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blurs_keep_a_flat_canvas_flat_and_spread_an_edge() {
        let flat = Canvas::filled(20, 10, [100, 150, 200]);
        assert_eq!(flat.gaussian_blur(2.0).to_rgb(), flat.to_rgb());
        assert_eq!(flat.motion_blur(7.0, 0.3).to_rgb(), flat.to_rgb());
        let mut edge = Canvas::filled(20, 10, [0, 0, 0]);
        edge.capsule((15.0, -10.0), (15.0, 20.0), 5.0, [1.0, 1.0, 1.0]);
        let before = edge.to_rgb();
        let after = edge.gaussian_blur(1.5).to_rgb();
        assert_eq!(before.get_pixel(9, 5)[0], 0);
        assert!(after.get_pixel(9, 5)[0] > 0, "the edge spreads left");
        let moved = edge.motion_blur(9.0, 0.0).to_rgb();
        assert!(moved.get_pixel(7, 5)[0] > 0 && moved.get_pixel(2, 5)[0] == 0);
    }

    #[test]
    fn no_tilt_is_the_identity_and_a_tilt_moves_pixels() {
        let mut c = Canvas::filled(16, 16, [0, 0, 0]);
        c.capsule((4.0, 4.0), (4.0, 4.0), 2.0, [1.0, 0.0, 0.0]);
        assert_eq!(c.perspective(0.0, 0.0).to_rgb(), c.to_rgb());
        assert_ne!(c.perspective(0.3, -0.2).to_rgb(), c.to_rgb());
    }
}
