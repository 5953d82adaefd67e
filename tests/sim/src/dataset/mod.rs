//! Fruits-360-style data sets: reading the layout (`Training/<Class>/*.jpg`,
//! `Test/<Class>/*.jpg`) and building one offline from real fruit photos: plain views
//! (`<photo>_<n>.jpg`) and views as a phone would take them (`<photo>_p<n>.jpg`).
//!
//! The pure parts are [`augment`] (views of a photo), [`scene`] (the image operations
//! views are made of) and [`plan`] (classes from file names, the train/test split);
//! this module does the file I/O.

pub mod augment;
pub mod plan;
pub mod scene;

use augment::{Families, PhoneView, SplitMix, View};
use image::RgbaImage;
use plan::{Counts, Kind, PlannedView, Side};
use rayon::prelude::*;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Why a data set could not be read or built.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    /// A file or folder could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A photo could not be decoded or a view encoded.
    #[error("{path}: {source}")]
    Image {
        /// The path.
        path: PathBuf,
        /// The cause.
        source: image::ImageError,
    },
    /// Nothing to work with.
    #[error("{0}")]
    Empty(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> DatasetError + '_ {
    move |source| DatasetError::Io { path: path.to_owned(), source }
}

/// One image of a Fruits-360-style layout.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct LabelledImage {
    /// `Training` or `Test`.
    pub side: Side,
    /// The class (folder name).
    pub class: String,
    /// The file.
    pub path: PathBuf,
}

/// The entries of `dir`, sorted by path.
pub(crate) fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>, DatasetError> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io(dir))?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .map_err(io(dir))?;
    paths.sort();
    Ok(paths)
}

/// Every image of a Fruits-360 layout under `root`, sorted by side, class and
/// path. A missing `Test/` (or `Training/`) side is empty; no image at all is an error.
pub fn read_layout(root: &Path) -> Result<Vec<LabelledImage>, DatasetError> {
    let mut images = Vec::new();
    for side in [Side::Training, Side::Test] {
        let dir = root.join(side.folder());
        if !dir.is_dir() {
            continue;
        }
        for class_dir in sorted_entries(&dir)?.into_iter().filter(|p| p.is_dir()) {
            let class = class_dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            for path in sorted_entries(&class_dir)?.into_iter().filter(|p| fruits_core::has_image_extension(p)) {
                images.push(LabelledImage { side, class: class.clone(), path });
            }
        }
    }
    if images.is_empty() {
        return Err(DatasetError::Empty(format!(
            "no Training/<Class>/ or Test/<Class>/ images under {}",
            root.display()
        )));
    }
    Ok(images)
}

/// Images per class and side.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// `class -> (training images, test images)`.
    pub classes: BTreeMap<String, (usize, usize)>,
    /// Training images.
    pub training: usize,
    /// Test images.
    pub test: usize,
}

/// Counts `images` per class and side.
pub fn summarise(images: &[LabelledImage]) -> Summary {
    let mut classes: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for image in images {
        let counts = classes.entry(image.class.clone()).or_default();
        match image.side {
            Side::Training => counts.0 += 1,
            Side::Test => counts.1 += 1,
        }
    }
    let training = classes.values().map(|c| c.0).sum();
    Summary { training, test: images.len() - training, classes }
}

/// How to build a set from photos.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// Plain views rendered per training photo.
    pub views: u32,
    /// Phone-like views rendered per training photo.
    pub phone_views: u32,
    /// Share of views (single-photo classes) or photos (other classes) for `Test/`.
    pub test_percent: u32,
    /// Side of the plain views, pixels (Fruits-360: 100).
    pub size: u32,
    /// Side of the phone-like views, pixels (the model's input: 224).
    pub phone_size: u32,
    /// The conditions phone-like views add.
    pub families: Families,
    /// Cut-out photos of things that are not fruit, for cluttered backgrounds (a folder,
    /// searched recursively; never photos used for testing). Without it, phone-like
    /// views keep a plain background.
    pub clutter: Option<PathBuf>,
}

impl Default for BuildOptions {
    fn default() -> Self {
        Self {
            views: 40,
            phone_views: 40,
            test_percent: 20,
            size: 100,
            phone_size: 224,
            families: Families::all(),
            clutter: None,
        }
    }
}

/// Whether a cut-out looks like a photo rather than a flat drawing: more than 100
/// distinct colours (5 bits a channel) among its opaque pixels. Tux Paint's stamps mix
/// both: every fruit photo has 156 or more, its flags, road signs and letters fewer than
/// 100 (some shaded drawings pass).
pub fn is_photo(cutout: &RgbaImage) -> bool {
    let mut seen = vec![false; 1 << 15];
    let mut distinct = 0;
    for p in cutout.pixels().filter(|p| p[3] > 200) {
        let i = (usize::from(p[0] >> 3) << 10) | (usize::from(p[1] >> 3) << 5) | usize::from(p[2] >> 3);
        distinct += usize::from(!seen[i]);
        seen[i] = true;
    }
    distinct > 100
}

/// Every image below `dir` (recursively, sorted by path), decoded to RGBA.
pub fn load_cutouts(dir: &Path) -> Result<Vec<RgbaImage>, DatasetError> {
    let mut paths = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(next) = pending.pop() {
        for path in sorted_entries(&next)? {
            if path.is_dir() {
                pending.push(path);
            } else if fruits_core::has_image_extension(&path) {
                paths.push(path);
            }
        }
    }
    paths.sort();
    if paths.is_empty() {
        return Err(DatasetError::Empty(format!("no images under {}", dir.display())));
    }
    paths
        .par_iter()
        .map(|path| {
            image::open(path).map(|i| i.to_rgba8()).map_err(|source| DatasetError::Image { path: path.clone(), source })
        })
        .collect()
}

/// The photos in `dir` whose file names give a class, as `(stem, class, path)`.
pub fn photos_in(dir: &Path) -> Result<Vec<(String, String, PathBuf)>, DatasetError> {
    let photos: Vec<(String, String, PathBuf)> = sorted_entries(dir)?
        .into_iter()
        .filter(|p| fruits_core::has_image_extension(p))
        .filter_map(|p| {
            let stem = p.file_stem()?.to_string_lossy().into_owned();
            Some((stem.clone(), plan::class_of(&stem)?, p))
        })
        .collect();
    if photos.is_empty() {
        return Err(DatasetError::Empty(format!("no photos in {}", dir.display())));
    }
    Ok(photos)
}

/// Builds a Fruits-360-style set under `out` from the photos in `photos_dir`
/// (class from each file name), replacing any previous `Training/` and `Test/`.
pub fn build(photos_dir: &Path, out: &Path, options: &BuildOptions) -> Result<Vec<LabelledImage>, DatasetError> {
    let photos = photos_in(photos_dir)?;
    let decoded = photos
        .iter()
        .map(|(_, _, path)| {
            image::open(path).map(|i| i.to_rgba8()).map_err(|source| DatasetError::Image { path: path.clone(), source })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let clutter = match &options.clutter {
        Some(dir) if options.phone_views > 0 => load_cutouts(dir)?.into_iter().filter(is_photo).collect(),
        _ => Vec::new(),
    };
    let names: Vec<(String, String)> = photos.iter().map(|(n, c, _)| (n.clone(), c.clone())).collect();
    let counts = Counts { plain: options.views, phone: options.phone_views, test_percent: options.test_percent };
    let planned = plan::plan(&names, counts);
    for side in [Side::Training, Side::Test] {
        let dir = out.join(side.folder());
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(io(&dir))?;
        }
    }
    let mut images: Vec<LabelledImage> = planned
        .par_iter()
        .map(|PlannedView { photo, view, kind, side }| {
            let (stem, class, _) = &photos[*photo];
            let (img, quality, name) = match kind {
                Kind::Plain => {
                    let params =
                        if *view == 0 { View::IDENTITY } else { View::random(&mut SplitMix::for_view(stem, *view)) };
                    let img = augment::render(&decoded[*photo], &params, options.size);
                    (img, augment::PLAIN_JPEG_QUALITY, format!("{stem}_{view}.jpg"))
                }
                Kind::Phone => {
                    let params = PhoneView::random(&mut plan::phone_seed(stem, "phone", *view), options.families);
                    let img = augment::render_phone(&decoded[*photo], &params, options.phone_size, &clutter);
                    (img, params.jpeg_quality, format!("{stem}_p{view}.jpg"))
                }
            };
            let dir = out.join(side.folder()).join(class);
            std::fs::create_dir_all(&dir).map_err(io(&dir))?;
            let path = dir.join(name);
            let bytes = augment::encode_jpeg(&img, quality)
                .map_err(|source| DatasetError::Image { path: path.clone(), source })?;
            std::fs::write(&path, bytes).map_err(io(&path))?;
            Ok(LabelledImage { side: *side, class: class.clone(), path })
        })
        .collect::<Result<_, DatasetError>>()?;
    images.sort();
    Ok(images)
}
