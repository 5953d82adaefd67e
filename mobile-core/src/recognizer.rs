//! Offline recognition on the phone: embedding -> PCA codes -> recognition head ->
//! the fruit's name, a calibrated confidence and its catalogue entry.
//!
//! Everything published comes from one verified [`ProjectionArtifact`]: the projection,
//! the [`RecognitionHead`] trained by the aggregator over its codes, and the
//! [`FruitInfo`] catalogue. No network, no allocation beyond the answer.
//!
//! **Classes taught on the device** ([`TaughtClasses`]) join the published head as
//! extra rows of its weights, "imprinted" (Qi et al. 2018, "Low-Shot Learning with
//! Imprinted Weights"): a taught class's weight vector is the mean direction of its
//! examples' unit-length codes, scaled to the mean length of the published classes'
//! weight vectors, with their mean bias. One softmax at the head's calibrated
//! temperature then covers published and taught classes, and the head's unknown
//! threshold applies to both: one calibrated answer. A taught class named like a
//! published one adds its probability to it (teaching a fruit the head gets wrong
//! corrects it). [`Recognizer::with_taught`] builds this once per change, not per photo.
//!
//! **Before the first sync** (or with a projection that has no head) there is no
//! calibration to share: [`Recognizer::taught_only`] answers the taught class whose
//! mean direction is closest to the embedding (cosine similarity of the embeddings
//! themselves), its confidence that similarity, "unknown" below
//! [`TAUGHT_ONLY_MIN_SIMILARITY`].

use crate::taught::TaughtClasses;
use fruits_formats::head::{dot, softmax, unit};
use fruits_formats::{FruitInfo, HeadError, ProjectionArtifact, RecognitionHead};

/// How many classes [`Recognition::top`] lists.
pub const TOP: usize = 3;

/// Before any head is installed, a taught class is named only when the photo's
/// embedding is at least this similar (cosine) to the class's mean direction.
/// MobileNetV2's embeddings are non-negative, so any two photos score 0.4-0.6;
/// views of one fruit score 0.8 and more (`bench/recognition`).
pub const TAUGHT_ONLY_MIN_SIMILARITY: f32 = 0.8;

/// What the phone answers for one photo.
#[derive(Debug, Clone, PartialEq)]
pub struct Recognition {
    /// The recognised class, `None` for "unknown" (confidence below the head's threshold).
    pub label: Option<String>,
    /// Calibrated probability of the most likely class (even when unknown); before any
    /// head is installed, the cosine similarity to the closest taught class.
    pub confidence: f32,
    /// The most likely classes with their probabilities, best first (at most [`TOP`]).
    pub top: Vec<(String, f32)>,
    /// The catalogue entry of `label`, when the artifact describes it.
    pub info: Option<FruitInfo>,
    /// Whether `label` is (or includes) a class taught on this device.
    pub taught: bool,
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

/// What a recogniser scores with.
#[derive(Debug, Clone)]
enum Scorer {
    /// The published head, with taught classes imprinted as extra rows.
    Head {
        /// The projection and catalogue (its head moved into `head`).
        artifact: Box<ProjectionArtifact>,
        /// The published head alone (what `with_taught` extends).
        published: RecognitionHead,
        /// `published` plus one row per taught class (labels may repeat).
        head: RecognitionHead,
    },
    /// Taught classes only: their mean directions in embedding space, unit length.
    TaughtOnly {
        /// `(label, unit mean direction)`, by label.
        directions: Vec<(String, Vec<f32>)>,
        /// Embedding dimension.
        dim: usize,
    },
}

/// A projection with a recognition head (and classes taught on the device), ready to
/// recognise embeddings.
#[derive(Debug, Clone)]
pub struct Recognizer {
    scorer: Scorer,
    /// Per row of the scorer: whether it is a taught class.
    taught_rows: Vec<bool>,
}

fn check_finite(embedding: &[f32]) -> Result<(), RecognizeError> {
    match embedding.iter().position(|v| !v.is_finite()) {
        Some(index) => Err(RecognizeError::NonFinite { index }),
        None => Ok(()),
    }
}

impl Recognizer {
    /// A recogniser over a verified artifact; `None` when the artifact has no head
    /// (the aggregator saw no labelled embeddings).
    pub fn from_artifact(artifact: &ProjectionArtifact) -> Option<Recognizer> {
        let head = artifact.head.clone()?;
        let taught_rows = vec![false; head.num_classes()];
        let artifact = Box::new(ProjectionArtifact { head: None, ..artifact.clone() });
        Some(Recognizer { scorer: Scorer::Head { artifact, published: head.clone(), head }, taught_rows })
    }

    /// A recogniser over the taught classes alone (no head installed); `None` when
    /// nothing is taught.
    pub fn taught_only(taught: &TaughtClasses, dim: usize) -> Option<Recognizer> {
        let directions: Vec<(String, Vec<f32>)> = taught
            .classes()
            .iter()
            .filter_map(|c| Some((c.label.clone(), unit(&c.mean_direction()?))))
            .filter(|(_, d)| d.len() == dim)
            .collect();
        if directions.is_empty() {
            return None;
        }
        let taught_rows = vec![true; directions.len()];
        Some(Recognizer { scorer: Scorer::TaughtOnly { directions, dim }, taught_rows })
    }

    /// This recogniser's published head with `taught` imprinted (see the module docs);
    /// a taught-only recogniser is rebuilt from `taught`.
    pub fn with_taught(&self, taught: &TaughtClasses) -> Option<Recognizer> {
        let Scorer::Head { artifact, published, .. } = &self.scorer else {
            let dim = match &self.scorer {
                Scorer::TaughtOnly { dim, .. } => *dim,
                Scorer::Head { .. } => 0,
            };
            return Recognizer::taught_only(taught, dim);
        };
        let d = published.input_dim as usize;
        let rows = published.num_classes().max(1) as f32;
        let scale = published.weights.chunks_exact(d.max(1)).map(|w| dot(w, w).sqrt()).sum::<f32>() / rows;
        let bias = published.bias.iter().sum::<f32>() / rows;
        let mut head = published.clone();
        let mut taught_rows = vec![false; published.num_classes()];
        for class in taught.classes() {
            let mut direction = vec![0f32; d];
            for example in &class.examples {
                let Some(codes) = artifact.project(example) else { continue };
                direction.iter_mut().zip(unit(&codes)).for_each(|(s, u)| *s += u);
            }
            if direction.iter().all(|v| *v == 0.0) {
                continue;
            }
            head.classes.push(class.label.clone());
            head.weights.extend(unit(&direction).into_iter().map(|v| v * scale));
            head.bias.push(bias);
            taught_rows.push(true);
        }
        let scorer = Scorer::Head { artifact: artifact.clone(), published: published.clone(), head };
        Some(Recognizer { scorer, taught_rows })
    }

    /// The projection version the recogniser comes from (`None` for taught classes only).
    pub fn version(&self) -> Option<u32> {
        match &self.scorer {
            Scorer::Head { artifact, .. } => Some(artifact.version),
            Scorer::TaughtOnly { .. } => None,
        }
    }

    /// The classes it can recognise, published then taught (a label may repeat).
    pub fn classes(&self) -> Vec<String> {
        match &self.scorer {
            Scorer::Head { head, .. } => head.classes.clone(),
            Scorer::TaughtOnly { directions, .. } => directions.iter().map(|(l, _)| l.clone()).collect(),
        }
    }

    /// Recognises one 1280-d embedding (as [`Embedder`](crate::Embedder) returns it).
    pub fn recognize(&self, embedding: &[f32]) -> Result<Recognition, RecognizeError> {
        let (labels, scores, threshold, artifact): (Vec<&String>, Vec<f32>, f32, Option<&ProjectionArtifact>) =
            match &self.scorer {
                Scorer::Head { artifact, head, .. } => {
                    let expected = artifact.dim as usize;
                    let codes = artifact
                        .project(embedding)
                        .ok_or(RecognizeError::WrongDimension { expected, found: embedding.len() })?;
                    check_finite(embedding)?;
                    // The codes have the head's width by construction (the artifact checks
                    // `input_dim == k`), so the only error left is an overflow to infinity.
                    let logits = head.logits(&codes).map_err(|_: HeadError| RecognizeError::Overflow)?;
                    let probabilities = softmax(&logits, head.temperature);
                    (head.classes.iter().collect(), probabilities, head.unknown_threshold, Some(artifact))
                }
                Scorer::TaughtOnly { directions, dim } => {
                    if embedding.len() != *dim {
                        return Err(RecognizeError::WrongDimension { expected: *dim, found: embedding.len() });
                    }
                    check_finite(embedding)?;
                    let x = unit(embedding);
                    let similarities = directions.iter().map(|(_, d)| dot(d, &x)).collect();
                    (directions.iter().map(|(l, _)| l).collect(), similarities, TAUGHT_ONLY_MIN_SIMILARITY, None)
                }
            };
        // One entry per label: the probabilities of repeated labels add up.
        let mut ranked: Vec<(String, f32, bool)> = Vec::with_capacity(labels.len());
        for ((label, score), taught) in labels.into_iter().zip(scores).zip(&self.taught_rows) {
            match ranked.iter_mut().find(|(l, _, _)| l == label) {
                Some(entry) if artifact.is_some() => (entry.1, entry.2) = (entry.1 + score, entry.2 || *taught),
                Some(entry) => (entry.1, entry.2) = (entry.1.max(score), true),
                None => ranked.push((label.clone(), score, *taught)),
            }
        }
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        let (best, confidence, taught) = ranked.first().cloned().unwrap_or_default();
        let label = (confidence >= threshold && !ranked.is_empty()).then_some(best);
        let info = label.as_deref().and_then(|l| artifact.and_then(|a| a.info(l))).cloned();
        let top = ranked.into_iter().take(TOP).map(|(l, p, _)| (l, p)).collect();
        Ok(Recognition { taught: taught && label.is_some(), label, confidence, top, info })
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
            input: fruits_formats::HeadInput::Codes,
        };
        // Only the names matter here (the catalogue's own tests check real entries).
        let zero = Nutrition {
            energy_kcal: 0.0,
            water_g: 0.0,
            protein_g: 0.0,
            fat_g: 0.0,
            carbohydrate_g: 0.0,
            fiber_g: 0.0,
            sugars_g: 0.0,
            vitamin_c_mg: 0.0,
            potassium_mg: 0.0,
        };
        let apple = FruitInfo {
            class: "Apple".into(),
            name_en: "Apple".into(),
            name_fr: "Pomme".into(),
            family: String::new(),
            season: String::new(),
            nutrition: zero,
            source: String::new(),
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
        assert!(!apple.taught);
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
    fn taught_classes_join_the_published_head_in_one_softmax() {
        let r = Recognizer::from_artifact(&artifact()).unwrap();
        let mut taught = TaughtClasses::new(3);
        // "Feijoa" lies along (1, 1) in code space, between Apple and Pear.
        taught.teach("Feijoa", &[3.0, 3.0, 0.0]).unwrap();
        taught.teach("Feijoa", &[2.0, 2.2, 5.0]).unwrap();
        let with = r.with_taught(&taught).unwrap();
        assert_eq!(with.classes(), ["Apple", "Pear", "Kiwi", "Feijoa"]);
        let feijoa = with.recognize(&[3.0, 3.0, 1.0]).unwrap();
        assert_eq!((feijoa.label.as_deref(), feijoa.taught, feijoa.info), (Some("Feijoa"), true, None));
        assert!((feijoa.top.iter().map(|(_, p)| p).sum::<f32>() - 1.0).abs() < 1e-5, "one softmax");
        // Published answers are unchanged where the taught class is far.
        assert_eq!(with.recognize(&[2.0, 0.0, 7.0]).unwrap().label.as_deref(), Some("Apple"));
        assert!(!with.recognize(&[2.0, 0.0, 7.0]).unwrap().taught);
        // Forgetting it (an empty set) gives the published head back.
        let back = with.with_taught(&TaughtClasses::new(3)).unwrap();
        assert_eq!(back.classes(), ["Apple", "Pear", "Kiwi"]);
    }

    #[test]
    fn a_taught_class_named_like_a_published_one_adds_to_it() {
        let r = Recognizer::from_artifact(&artifact()).unwrap();
        let unsure = r.recognize(&[0.1, 0.05, 0.0]).unwrap();
        assert_eq!(unsure.label, None);
        let mut taught = TaughtClasses::new(3);
        taught.teach("Apple", &[1.0, 0.5, 0.0]).unwrap();
        let with = r.with_taught(&taught).unwrap();
        assert_eq!(with.classes().iter().filter(|c| *c == "Apple").count(), 2);
        let sure = with.recognize(&[0.1, 0.05, 0.0]).unwrap();
        assert_eq!(sure.top.iter().filter(|(l, _)| l == "Apple").count(), 1, "one entry per label");
        assert!(sure.confidence > unsure.confidence);
        assert_eq!(sure.top[0].0, "Apple");
    }

    #[test]
    fn before_any_head_taught_classes_answer_by_similarity() {
        let mut taught = TaughtClasses::new(3);
        assert!(Recognizer::taught_only(&taught, 3).is_none());
        taught.teach("Feijoa", &[1.0, 0.1, 0.0]).unwrap();
        taught.teach("Chayote", &[0.0, 0.1, 1.0]).unwrap();
        let r = Recognizer::taught_only(&taught, 3).unwrap();
        assert_eq!(r.version(), None);
        let near = r.recognize(&[2.0, 0.3, 0.1]).unwrap();
        assert_eq!((near.label.as_deref(), near.taught), (Some("Feijoa"), true));
        assert!(near.confidence > TAUGHT_ONLY_MIN_SIMILARITY);
        let between = r.recognize(&[1.0, 0.0, 1.0]).unwrap();
        assert_eq!(between.label, None, "{between:?}");
        assert_eq!(r.recognize(&[1.0, 0.0]).unwrap_err(), RecognizeError::WrongDimension { expected: 3, found: 2 });
        assert_eq!(r.recognize(&[1.0, f32::NAN, 0.0]).unwrap_err(), RecognizeError::NonFinite { index: 1 });
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
