//! Fruits a user teaches the phone: a few embeddings per class, kept on the device.
//!
//! A fruit missing from the published head (or recognised wrong) can be taught with a
//! few photos: their **embeddings** are kept (not PCA codes, so that a new projection
//! does not invalidate them), in one file of the app's storage (`taught.bin`, replaced
//! crash-safely on every change), and never uploaded unless the app queues them itself.
//! How they join the published head's answer is [`crate::recognizer`]'s business; this
//! module only keeps them. Pure but for [`TaughtClasses::load`] and [`TaughtClasses::save`].

use fruits_formats::FormatError;
use fruits_formats::codec::{self, FrameKind};
use fruits_formats::shard::{MAX_DIM, MAX_LABEL_LEN};
use serde::{Deserialize, Serialize};
use std::io;
use std::path::Path;

/// Most classes a device can be taught.
pub const MAX_TAUGHT_CLASSES: usize = 64;

/// Most examples kept per class: the newest win.
pub const MAX_EXAMPLES_PER_CLASS: usize = 20;

/// The file's frame: magic, version, a bounded body.
const TAUGHT_FRAME: FrameKind = FrameKind {
    name: "taught classes",
    magic: *b"FRUITTCH",
    version: 1,
    max_body_len: 64
        + (MAX_TAUGHT_CLASSES as u64)
            * (16 + MAX_LABEL_LEN as u64 + 8 + (MAX_EXAMPLES_PER_CLASS as u64) * (8 + 4 * MAX_DIM as u64)),
};

/// Why a class cannot be taught, or the taught classes read or written.
#[derive(Debug, thiserror::Error)]
pub enum TaughtError {
    /// The label is empty, too long, or holds control characters.
    #[error("label {0:?} is empty, longer than {MAX_LABEL_LEN} bytes or holds control characters")]
    BadLabel(String),
    /// The embedding does not have the model's dimension or is not finite.
    #[error("embedding has {found} values (expected {expected}) or a non-finite one")]
    BadEmbedding {
        /// The model's dimension.
        expected: usize,
        /// The embedding's length.
        found: usize,
    },
    /// Already [`MAX_TAUGHT_CLASSES`] classes: forget one first.
    #[error("already {MAX_TAUGHT_CLASSES} taught classes: forget one first")]
    TooManyClasses,
    /// The stored file is damaged or of another model's dimension.
    #[error("taught classes file: {0}")]
    Format(#[from] FormatError),
    /// The file could not be read or written.
    #[error("taught classes file: {0}")]
    Io(#[from] io::Error),
}

/// One taught class.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaughtClass {
    /// Its label.
    pub label: String,
    /// Its examples' embeddings, oldest first.
    pub examples: Vec<Vec<f32>>,
}

impl TaughtClass {
    /// The mean of its unit-length examples (the class's direction), `None` without examples.
    pub fn mean_direction(&self) -> Option<Vec<f32>> {
        let first = self.examples.first()?;
        let mut sum = vec![0f32; first.len()];
        for example in &self.examples {
            let unit = fruits_formats::head::unit(example);
            sum.iter_mut().zip(unit).for_each(|(s, u)| *s += u);
        }
        Some(sum)
    }
}

/// Every class taught on one device, sorted by label, for one embedding dimension.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct TaughtClasses {
    dim: usize,
    classes: Vec<TaughtClass>,
}

fn check_label(label: &str) -> Result<(), TaughtError> {
    match label.is_empty() || label.len() > MAX_LABEL_LEN || label.chars().any(char::is_control) {
        true => Err(TaughtError::BadLabel(label.to_owned())),
        false => Ok(()),
    }
}

impl TaughtClasses {
    /// No class yet, for embeddings of `dim` values.
    pub fn new(dim: usize) -> Self {
        Self { dim, classes: Vec::new() }
    }

    /// The classes, sorted by label.
    pub fn classes(&self) -> &[TaughtClass] {
        &self.classes
    }

    /// `true` when nothing is taught.
    pub fn is_empty(&self) -> bool {
        self.classes.is_empty()
    }

    /// Adds one example of `label` (a new class if need be; beyond
    /// [`MAX_EXAMPLES_PER_CLASS`] the oldest example goes); returns the class's examples.
    pub fn teach(&mut self, label: &str, embedding: &[f32]) -> Result<usize, TaughtError> {
        check_label(label)?;
        if embedding.len() != self.dim || !embedding.iter().all(|v| v.is_finite()) {
            return Err(TaughtError::BadEmbedding { expected: self.dim, found: embedding.len() });
        }
        let at = match self.classes.binary_search_by(|c| c.label.as_str().cmp(label)) {
            Ok(at) => at,
            Err(_) if self.classes.len() >= MAX_TAUGHT_CLASSES => return Err(TaughtError::TooManyClasses),
            Err(at) => {
                self.classes.insert(at, TaughtClass { label: label.to_owned(), examples: Vec::new() });
                at
            }
        };
        let examples = &mut self.classes[at].examples;
        if examples.len() >= MAX_EXAMPLES_PER_CLASS {
            examples.remove(0);
        }
        examples.push(embedding.to_vec());
        Ok(examples.len())
    }

    /// Forgets `label`; `false` when it was not taught.
    pub fn forget(&mut self, label: &str) -> bool {
        let before = self.classes.len();
        self.classes.retain(|c| c.label != label);
        self.classes.len() != before
    }

    /// The stored form.
    pub fn encode(&self) -> Result<Vec<u8>, TaughtError> {
        Ok(codec::encode_framed(&TAUGHT_FRAME, self)?)
    }

    /// Reads the stored form, for embeddings of `dim` values, checking every limit.
    pub fn decode(bytes: &[u8], dim: usize) -> Result<Self, TaughtError> {
        let stored: TaughtClasses = codec::decode_framed(&TAUGHT_FRAME, bytes)?;
        let mut checked = TaughtClasses::new(dim);
        for class in stored.classes.iter().take(MAX_TAUGHT_CLASSES) {
            for example in class.examples.iter().rev().take(MAX_EXAMPLES_PER_CLASS).rev() {
                checked
                    .teach(&class.label, example)
                    .map_err(|e| FormatError::Inconsistent { kind: "taught classes", reason: e.to_string() })?;
            }
        }
        Ok(checked)
    }

    /// The classes stored at `path`; none when the file does not exist. A file that does
    /// not decode (damaged, or of another model's dimension) must not keep the app from
    /// starting: it is set aside as `<path>.damaged` (replacing an older one), logged, and
    /// nothing is taught. Only a failure to read or set it aside is an error.
    pub fn load(path: &Path, dim: usize) -> Result<Self, TaughtError> {
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Self::new(dim)),
            Err(e) => return Err(e.into()),
        };
        match Self::decode(&bytes, dim) {
            Err(TaughtError::Format(e)) => {
                let aside = path.with_extension("bin.damaged");
                std::fs::rename(path, &aside)?;
                tracing::warn!(file = %aside.display(), error = %e, "taught classes unreadable: set aside, nothing taught");
                Ok(Self::new(dim))
            }
            decoded => decoded,
        }
    }

    /// Writes them to `path` crash-safely (a reader sees the old or the new file).
    pub fn save(&self, path: &Path) -> Result<(), TaughtError> {
        Ok(fruits_durable::replace_file(path, &self.encode()?)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn teaches_keeps_the_newest_examples_and_forgets() {
        let mut t = TaughtClasses::new(2);
        assert_eq!(t.teach("Feijoa", &[1.0, 0.0]).unwrap(), 1);
        assert_eq!(t.teach("Chayote", &[0.0, 1.0]).unwrap(), 1);
        for i in 0..MAX_EXAMPLES_PER_CLASS {
            t.teach("Feijoa", &[i as f32, 1.0]).unwrap();
        }
        let labels: Vec<&str> = t.classes().iter().map(|c| c.label.as_str()).collect();
        assert_eq!(labels, ["Chayote", "Feijoa"]);
        let feijoa = &t.classes()[1];
        assert_eq!(feijoa.examples.len(), MAX_EXAMPLES_PER_CLASS);
        assert_eq!(feijoa.examples[0], [0.0, 1.0], "the first example went");
        assert!(t.forget("Chayote") && !t.forget("Chayote"));
        assert_eq!(t.classes().len(), 1);
    }

    #[test]
    fn bad_labels_embeddings_and_too_many_classes_are_typed_errors() {
        let mut t = TaughtClasses::new(2);
        for label in ["", "a\nb", &"x".repeat(MAX_LABEL_LEN + 1)] {
            assert!(matches!(t.teach(label, &[1.0, 0.0]), Err(TaughtError::BadLabel(_))), "{label:?}");
        }
        assert!(matches!(t.teach("Kiwi", &[1.0]), Err(TaughtError::BadEmbedding { expected: 2, found: 1 })));
        assert!(matches!(t.teach("Kiwi", &[1.0, f32::NAN]), Err(TaughtError::BadEmbedding { .. })));
        for i in 0..MAX_TAUGHT_CLASSES {
            t.teach(&format!("class {i:02}"), &[1.0, 0.0]).unwrap();
        }
        assert!(matches!(t.teach("one more", &[1.0, 0.0]), Err(TaughtError::TooManyClasses)));
        assert_eq!(t.teach("class 00", &[0.0, 1.0]).unwrap(), 2, "a known class still learns");
        assert!(!t.is_empty() && t.classes().iter().all(|c| !c.examples.is_empty()));
    }

    #[test]
    fn round_trips_through_a_file_and_sets_damaged_ones_aside() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("taught.bin");
        assert!(TaughtClasses::load(&path, 2).unwrap().is_empty(), "no file: nothing taught");
        let mut t = TaughtClasses::new(2);
        t.teach("Feijoa", &[1.0, 0.5]).unwrap();
        t.save(&path).unwrap();
        assert_eq!(TaughtClasses::load(&path, 2).unwrap(), t);
        let bytes = std::fs::read(&path).unwrap();
        assert!(matches!(TaughtClasses::decode(&bytes, 3), Err(TaughtError::Format(_))), "another dimension");
        let mut damaged = bytes.clone();
        let last = damaged.len() - 6;
        damaged[last] ^= 1;
        assert!(matches!(TaughtClasses::decode(&damaged, 2), Err(TaughtError::Format(_))));
        assert!(TaughtClasses::decode(&bytes[..10], 2).is_err());
        // A damaged file does not keep the app from starting: set aside, nothing taught.
        std::fs::write(&path, &damaged).unwrap();
        assert!(TaughtClasses::load(&path, 2).unwrap().is_empty());
        assert_eq!(std::fs::read(dir.path().join("taught.bin.damaged")).unwrap(), damaged, "kept for inspection");
        assert!(!path.exists());
    }

    #[test]
    fn the_mean_direction_weighs_examples_equally_whatever_their_length() {
        let class = TaughtClass { label: "x".into(), examples: vec![vec![10.0, 0.0], vec![0.0, 0.1]] };
        let mean = class.mean_direction().unwrap();
        assert!((mean[0] - mean[1]).abs() < 1e-6);
        assert_eq!(TaughtClass { label: "y".into(), examples: Vec::new() }.mean_direction(), None);
    }
}
