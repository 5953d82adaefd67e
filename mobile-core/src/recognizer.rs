//! Offline recognition on the phone: embedding -> PCA codes -> recognition head ->
//! the fruit's name, a calibrated confidence and its catalogue entry.
//!
//! Everything comes from one verified [`ProjectionArtifact`]: the projection, the
//! [`RecognitionHead`] trained by the aggregator over its codes, and the
//! [`FruitInfo`] catalogue. No network, no allocation beyond the answer.

use fruits_formats::{FruitInfo, HeadError, ProjectionArtifact, RecognitionHead};

/// How many classes [`Recognition::top`] lists.
pub const TOP: usize = 3;

/// What the phone answers for one photo.
#[derive(Debug, Clone, PartialEq)]
pub struct Recognition {
    /// The recognised class, `None` for "unknown" (confidence below the head's threshold).
    pub label: Option<String>,
    /// Calibrated probability of the most likely class (even when unknown).
    pub confidence: f32,
    /// The most likely classes with their probabilities, best first (at most [`TOP`]).
    pub top: Vec<(String, f32)>,
    /// The catalogue entry of `label`, when the artifact describes it.
    pub info: Option<FruitInfo>,
}

/// Why an embedding could not be recognised.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RecognizeError {
    /// The embedding's length is not the projection's dimension.
    #[error("embedding has {found} values, the projection expects {expected}")]
    WrongDimension {
        /// The projection's dimension.
        expected: usize,
        /// The embedding's length.
        found: usize,
    },
    /// The embedding holds NaN or an infinity.
    #[error("embedding value {index} is not finite")]
    NonFinite {
        /// Position of the first bad value.
        index: usize,
    },
    /// Finite values whose PCA codes overflow `f32` (far outside any photo's range).
    #[error("the embedding's PCA codes overflow")]
    Overflow,
}

/// A projection with a recognition head, ready to recognise embeddings.
#[derive(Debug, Clone)]
pub struct Recognizer {
    /// The projection and catalogue (its head moved into `head`).
    artifact: ProjectionArtifact,
    head: RecognitionHead,
}

impl Recognizer {
    /// A recogniser over a verified artifact; `None` when the artifact has no head
    /// (the aggregator saw no labelled embeddings).
    pub fn from_artifact(artifact: &ProjectionArtifact) -> Option<Recognizer> {
        let head = artifact.head.clone()?;
        Some(Recognizer { artifact: ProjectionArtifact { head: None, ..artifact.clone() }, head })
    }

    /// The projection version the recogniser comes from.
    pub fn version(&self) -> u32 {
        self.artifact.version
    }

    /// The classes it can recognise.
    pub fn classes(&self) -> &[String] {
        &self.head.classes
    }

    /// Recognises one 1280-d embedding (as [`Embedder`](crate::Embedder) returns it).
    pub fn recognize(&self, embedding: &[f32]) -> Result<Recognition, RecognizeError> {
        let expected = self.artifact.dim as usize;
        let codes = self
            .artifact
            .project(embedding)
            .ok_or(RecognizeError::WrongDimension { expected, found: embedding.len() })?;
        if let Some(index) = embedding.iter().position(|v| !v.is_finite()) {
            return Err(RecognizeError::NonFinite { index });
        }
        let head = &self.head;
        // The codes have the head's width by construction (the artifact checks
        // `input_dim == k`), so the only error left is an overflow to infinity.
        let prediction = head.predict(&codes).map_err(|_: HeadError| RecognizeError::Overflow)?;
        let mut ranked: Vec<(usize, f32)> = prediction.probabilities.iter().copied().enumerate().collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        let top = ranked.iter().take(TOP).map(|&(i, p)| (head.classes[i].clone(), p)).collect();
        let label = prediction.class.map(|i| head.classes[i].clone());
        let info = label.as_deref().and_then(|l| self.artifact.info(l)).cloned();
        Ok(Recognition { label, confidence: prediction.confidence, top, info })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fruits_formats::{ModelId, Nutrition};

    /// Projection of 3-d space onto its first two axes, with a head that says
    /// "Apple" when x > y, "Pear" when y > x, "Kiwi" when both are negative.
    fn artifact() -> ProjectionArtifact {
        let head = RecognitionHead {
            classes: vec!["Apple".into(), "Pear".into(), "Kiwi".into()],
            input_dim: 2,
            weights: vec![4.0, -4.0, -4.0, 4.0, -2.0, -2.0],
            bias: vec![0.0, 0.0, 0.0],
            temperature: 1.0,
            unknown_threshold: 0.7,
        };
        let apple = FruitInfo {
            class: "Apple".into(),
            name_en: "Apple".into(),
            name_fr: "Pomme".into(),
            family: "Rosaceae".into(),
            season: "August to November".into(),
            nutrition: Nutrition {
                energy_kcal: 52.0,
                water_g: 85.56,
                protein_g: 0.26,
                fat_g: 0.17,
                carbohydrate_g: 13.81,
                fiber_g: 2.4,
                sugars_g: 10.39,
                vitamin_c_mg: 4.6,
                potassium_mg: 107.0,
            },
            source: "USDA FoodData Central, SR Legacy, FDC ID 171688".into(),
        };
        ProjectionArtifact {
            version: 3,
            model_id: ModelId::of_bytes(b"m"),
            created_unix_ms: 0,
            dim: 3,
            k: 2,
            rows: 10,
            mean: vec![0.0; 3],
            components: vec![1.0, 0.0, 0.0, 0.0, 1.0, 0.0],
            explained_variance: vec![2.0, 1.0],
            explained_variance_ratio: vec![0.5, 0.25],
            total_variance: 4.0,
            head: Some(head),
            catalogue: vec![apple],
        }
    }

    #[test]
    fn recognises_describes_and_ranks() {
        let r = Recognizer::from_artifact(&artifact()).unwrap();
        let apple = r.recognize(&[2.0, 0.0, 7.0]).unwrap();
        assert_eq!(apple.label.as_deref(), Some("Apple"));
        assert_eq!(apple.info.as_ref().unwrap().name_fr, "Pomme");
        assert_eq!(apple.top.len(), 3);
        assert_eq!(apple.top[0].0, "Apple");
        assert!(apple.top.windows(2).all(|w| w[0].1 >= w[1].1));
        assert!((apple.confidence - apple.top[0].1).abs() < 1e-7);
        let pear = r.recognize(&[0.0, 2.0, 0.0]).unwrap();
        assert_eq!((pear.label.as_deref(), pear.info), (Some("Pear"), None));
    }

    #[test]
    fn ambiguous_embeddings_are_unknown_but_still_ranked() {
        let r = Recognizer::from_artifact(&artifact()).unwrap();
        let unsure = r.recognize(&[0.05, 0.0, 0.0]).unwrap();
        assert_eq!(unsure.label, None);
        assert!(unsure.confidence < 0.7);
        assert_eq!(unsure.top[0].0, "Apple");
        assert_eq!(unsure.info, None);
    }

    #[test]
    fn no_head_no_recogniser_and_bad_embeddings_are_typed_errors() {
        let bare = ProjectionArtifact { head: None, catalogue: Vec::new(), ..artifact() };
        assert!(Recognizer::from_artifact(&bare).is_none());
        let r = Recognizer::from_artifact(&artifact()).unwrap();
        assert_eq!(r.recognize(&[1.0; 4]).unwrap_err(), RecognizeError::WrongDimension { expected: 3, found: 4 });
        assert_eq!(r.recognize(&[1.0, f32::NAN, 0.0]).unwrap_err(), RecognizeError::NonFinite { index: 1 });
        let mut far = artifact();
        far.mean[0] = -f32::MAX;
        let far = Recognizer::from_artifact(&far).unwrap();
        assert_eq!(far.recognize(&[f32::MAX, 0.0, 0.0]).unwrap_err(), RecognizeError::Overflow);
    }
}
