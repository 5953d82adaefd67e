//! The views recognition is measured on, rendered in memory: what the recognition
//! benchmark (`bench/recognition`) and its cheaper sibling test share.
//!
//! Every set has a purpose of its own, which seeds its views, so that no measured view
//! is one a head trained on: training views are the data set's (`phone` seeds, as
//! [`dataset::build`](crate::dataset::build) renders them), augmentation choices are
//! measured on `validation` views, and the hard-views measure uses `hard-test` views.

use crate::dataset::augment::{self, Families, PhoneView, SplitMix, View};
use crate::dataset::{self, DatasetError, plan};
use image::RgbaImage;
use rayon::prelude::*;
use std::path::Path;

/// One real photo: its name, class and cut-out pixels.
#[derive(Debug, Clone)]
pub struct SourcePhoto {
    /// File stem (`apple_fuji`).
    pub name: String,
    /// Class from the file name (`Apple`).
    pub class: String,
    /// The cut-out.
    pub image: RgbaImage,
}

/// The photos of `dir` whose file names give a class (as the data-set builder reads them).
pub fn fruit_photos(dir: &Path) -> Result<Vec<SourcePhoto>, DatasetError> {
    dataset::photos_in(dir)?
        .into_par_iter()
        .map(|(name, class, path)| {
            let image = image::open(&path).map_err(|source| DatasetError::Image { path, source })?.to_rgba8();
            Ok(SourcePhoto { name, class, image })
        })
        .collect()
}

/// The cut-outs of `dir` (recursively) that look like photos ([`dataset::is_photo`]).
pub fn photo_cutouts(dir: &Path) -> Result<Vec<RgbaImage>, DatasetError> {
    Ok(dataset::load_cutouts(dir)?.into_iter().filter(dataset::is_photo).collect())
}

/// Which views of each photo to render.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ViewSet<'a> {
    /// Plain views (the first is the photo itself when `purpose` is the data set's).
    pub plain: u32,
    /// Phone-like views.
    pub phone: u32,
    /// Seeds the views: `phone` for the data set's training views, or a name of its own.
    pub purpose: &'a str,
    /// The phone conditions.
    pub families: Families,
    /// Side of plain views, pixels.
    pub plain_size: u32,
    /// Side of phone-like views, pixels.
    pub phone_size: u32,
}

/// The purpose whose views are the data set's training views.
pub const TRAINING: &str = "phone";

/// One rendered view, encoded as the phone would receive it.
#[derive(Debug, Clone)]
pub struct RenderedView {
    /// Index of its photo in the list rendered.
    pub photo: usize,
    /// Phone-like (or plain).
    pub phone: bool,
    /// The JPEG bytes.
    pub jpeg: Vec<u8>,
    /// The same view mirrored left-right, for flip test-time averaging.
    pub mirrored: Vec<u8>,
}

/// Renders `set` for each `(seed name, cut-out)` of `photos` (the data set seeds by
/// file stem), in photo order then view order, in parallel and deterministically: the
/// data set's training views when `set.purpose` is [`TRAINING`], fresh ones otherwise.
pub fn render(
    photos: &[(&str, &RgbaImage)],
    set: &ViewSet,
    clutter: &[RgbaImage],
) -> Result<Vec<RenderedView>, image::ImageError> {
    let jobs: Vec<(usize, bool, u32)> = (0..photos.len())
        .flat_map(|p| (0..set.plain).map(move |v| (p, false, v)).chain((0..set.phone).map(move |v| (p, true, v))))
        .collect();
    jobs.par_iter()
        .map(|&(photo, phone, view)| {
            let (name, pixels) = photos[photo];
            let (image, quality) = render_one(name, pixels, set, phone, view, clutter);
            let mirrored = image::imageops::flip_horizontal(&image);
            Ok(RenderedView {
                photo,
                phone,
                jpeg: augment::encode_jpeg(&image, quality)?,
                mirrored: augment::encode_jpeg(&mirrored, quality)?,
            })
        })
        .collect()
}

/// One view: the data set's own (plain view 0 is the photo itself) for [`TRAINING`].
fn render_one(
    name: &str,
    pixels: &RgbaImage,
    set: &ViewSet,
    phone: bool,
    view: u32,
    clutter: &[RgbaImage],
) -> (image::RgbImage, u8) {
    let training = set.purpose == TRAINING;
    if phone {
        let params = PhoneView::random(&mut plan::phone_seed(name, set.purpose, view), set.families);
        (augment::render_phone(pixels, &params, set.phone_size, clutter), params.jpeg_quality)
    } else {
        let params = match (training, view) {
            (true, 0) => View::IDENTITY,
            (true, _) => View::random(&mut SplitMix::for_view(name, view)),
            (false, _) => View::random(&mut plan::phone_seed(name, &format!("{}-plain", set.purpose), view)),
        };
        (augment::render(pixels, &params, set.plain_size), augment::PLAIN_JPEG_QUALITY)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgba;

    #[test]
    fn training_views_are_the_data_sets_and_other_purposes_differ() {
        let disc = RgbaImage::from_fn(30, 30, |x, y| {
            let inside = (x as i32 - 15).pow(2) + (y as i32 - 15).pow(2) < 100;
            if inside { Rgba([200, 30, 30, 255]) } else { Rgba([0, 0, 0, 0]) }
        });
        let set = ViewSet {
            plain: 2,
            phone: 2,
            purpose: TRAINING,
            families: Families::all(),
            plain_size: 32,
            phone_size: 48,
        };
        let training = render(&[("kiwi", &disc)], &set, &[]).unwrap();
        assert_eq!(training.len(), 4);
        assert_eq!((training[0].phone, training[2].phone), (false, true));
        let identity = augment::render(&disc, &View::IDENTITY, 32);
        assert_eq!(training[0].jpeg, augment::encode_jpeg(&identity, augment::PLAIN_JPEG_QUALITY).unwrap());
        let params = PhoneView::random(&mut plan::phone_seed("kiwi", "phone", 1), Families::all());
        let expected =
            augment::encode_jpeg(&augment::render_phone(&disc, &params, 48, &[]), params.jpeg_quality).unwrap();
        assert_eq!(training[3].jpeg, expected, "the data set's phone view 1");
        let other = render(&[("kiwi", &disc)], &ViewSet { purpose: "hard-test", ..set }, &[]).unwrap();
        assert!(other.iter().zip(&training).all(|(a, b)| a.jpeg != b.jpeg));
        assert_ne!(training[1].jpeg, training[1].mirrored);
    }
}
