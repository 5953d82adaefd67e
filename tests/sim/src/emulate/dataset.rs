//! The photos the simulated phones take: a folder in the Fruits-360 layout.

use std::path::{Path, PathBuf};

use crate::dataset::{DatasetError, sorted_entries};
use fruits_core::has_image_extension;

/// One photo and what it shows (its folder's name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Photo {
    /// The class label, e.g. `Banana`.
    pub label: String,
    /// The image file.
    pub path: PathBuf,
}

/// The photos of `root/Training/<Class>/*` (or `root/<Class>/*` when there is no
/// `Training` folder), sorted by class then file name.
pub fn list_photos(root: &Path) -> Result<Vec<Photo>, DatasetError> {
    let training = root.join("Training");
    let base = if training.is_dir() { training } else { root.to_path_buf() };
    let mut photos = Vec::new();
    for class in sorted_entries(&base)? {
        if !class.is_dir() {
            continue;
        }
        let label = class.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        for path in sorted_entries(&class)? {
            if path.is_file() && has_image_extension(&path) {
                photos.push(Photo { label: label.clone(), path });
            }
        }
    }
    if photos.is_empty() {
        return Err(DatasetError::Empty(format!(
            "no photos in {} (expected <Class>/<photo> folders, optionally under Training/)",
            base.display()
        )));
    }
    Ok(photos)
}

/// How many photos a phone takes in one phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shots {
    /// Each of its own photos once.
    All,
    /// This many, cycling through its own photos (a user photographing a fruit again).
    Count(usize),
}

impl std::str::FromStr for Shots {
    type Err = std::num::ParseIntError;

    /// `all`, or a count.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "all" => Ok(Shots::All),
            n => n.parse().map(Shots::Count),
        }
    }
}

/// The source photo a view was rendered from: the file stem up to its last `_`
/// (`apple_fuji_p3.jpg` -> `apple_fuji`), or the whole stem.
pub fn source_photo(view: &Path) -> String {
    let stem = view.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    stem.rsplit_once('_').map_or(stem.clone(), |(photo, _)| photo.to_owned())
}

/// The views phone `phone` of `phones` owns: source photos are dealt round-robin in
/// name order, so that no two phones hold views of one photo (a person photographs the
/// fruit in front of them, not someone else's), and the head is calibrated on photos it
/// never trained on.
pub fn own_photos(photos: &[Photo], phone: usize, phones: usize) -> Vec<&Photo> {
    let mut sources: Vec<String> = photos.iter().map(|p| source_photo(&p.path)).collect();
    sources.sort();
    sources.dedup();
    photos
        .iter()
        .filter(|p| sources.binary_search(&source_photo(&p.path)).is_ok_and(|i| i % phones.max(1) == phone))
        .collect()
}

/// The photos phone `phone` of `phones` takes in a phase that starts after `start` of
/// its own photos were taken.
pub fn photos_for(photos: &[Photo], phone: usize, phones: usize, start: usize, shots: Shots) -> Vec<&Photo> {
    let own = own_photos(photos, phone, phones);
    let count = match shots {
        Shots::All => own.len(),
        Shots::Count(n) => n,
    };
    if own.is_empty() {
        return Vec::new();
    }
    (0..count).map(|j| own[(start + j) % own.len()]).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn views_of_one_photo_stay_on_one_phone() {
        let photo = |name: &str| Photo { label: "Apple".into(), path: format!("Training/Apple/{name}").into() };
        let photos =
            [photo("fuji_0.jpg"), photo("fuji_p1.jpg"), photo("red_0.jpg"), photo("red_p4.jpg"), photo("x.jpg")];
        assert_eq!(source_photo(&photos[1].path), "fuji");
        assert_eq!(source_photo(&photos[4].path), "x");
        assert_eq!(own_photos(&photos, 0, 2), [&photos[0], &photos[1], &photos[4]]);
        assert_eq!(own_photos(&photos, 1, 2), [&photos[2], &photos[3]]);
    }

    #[test]
    fn lists_training_classes_and_spreads_photos_over_phones() {
        let dir = tempfile::tempdir().unwrap();
        for (class, file) in [("Kiwi", "a.jpg"), ("Kiwi", "b.png"), ("Apple", "c.jpg"), ("Apple", "notes.txt")] {
            fs::create_dir_all(dir.path().join("Training").join(class)).unwrap();
            fs::write(dir.path().join("Training").join(class).join(file), b"x").unwrap();
        }
        let photos = list_photos(dir.path()).unwrap();
        let labels: Vec<&str> = photos.iter().map(|p| p.label.as_str()).collect();
        assert_eq!(labels, ["Apple", "Kiwi", "Kiwi"]);
        // Sources a, b, c (one view each, listed c, a, b): phone 0 owns a and c, phone 1 owns b.
        assert_eq!(own_photos(&photos, 0, 2), [&photos[0], &photos[1]]);
        let first: Vec<&Photo> = photos_for(&photos, 0, 2, 0, Shots::Count(3));
        assert_eq!(first, [&photos[0], &photos[1], &photos[0]], "cycling through its own");
        assert_eq!(photos_for(&photos, 1, 2, 0, Shots::All), [&photos[2]]);
        assert_eq!(photos_for(&photos, 0, 2, 1, Shots::Count(1)), [&photos[1]], "going on where it stopped");
        assert!(
            photos_for(&photos, 0, 3, 0, Shots::All).len() == 1 && photos_for(&photos, 2, 3, 0, Shots::All).len() == 1
        );
        assert!(list_photos(&dir.path().join("Training/Apple")).is_err(), "no class folders");
    }
}
