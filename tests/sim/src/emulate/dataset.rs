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

/// The photos phone `phone` of `phones` takes, `count` of them: phones start at
/// different places and walk the dataset with a stride, so together they cover
/// it evenly and two phones rarely take the same photo.
pub fn photos_for(photos: &[Photo], phone: usize, phones: usize, start: usize, count: usize) -> Vec<&Photo> {
    (0..count).map(|j| &photos[(phone + (start + j) * phones) % photos.len()]).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

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
        let first: Vec<&Photo> = photos_for(&photos, 0, 2, 0, 2);
        let second: Vec<&Photo> = photos_for(&photos, 1, 2, 0, 2);
        assert_eq!((first[0], first[1], second[0]), (&photos[0], &photos[2], &photos[1]));
        assert!(list_photos(&dir.path().join("Training/Apple")).is_err(), "no class folders");
    }
}
