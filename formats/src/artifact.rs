//! The projection artifact: what the aggregator publishes and phones apply.
//!
//! It carries the PCA of all embeddings seen (mean, top-k unit components, their
//! explained variance) for one model, under a version number. Phones use it to turn
//! a 1280-d embedding into k-d codes ([`ProjectionArtifact::project`]) and upload
//! those instead. When the aggregator saw labelled embeddings it also carries the
//! [`RecognitionHead`] over those codes and the [`FruitInfo`] catalogue of its
//! classes, so a phone recognises a fruit and describes it offline. It is one
//! [`codec`](crate::codec) frame with a bincode body. Format version 3 says how the
//! head reads the codes ([`HeadInput`]); version 2 artifacts (heads over the codes as
//! they are) are still read; version 1 (neither head nor catalogue) is refused.

use crate::catalogue::{self, FruitInfo};
use crate::codec::{self, FrameKind};
use crate::error::FormatError;
use crate::head::{HeadInput, MAX_CLASSES, RecognitionHead};
use crate::model_id::ModelId;
use crate::shard::{MAX_DIM, MAX_LABEL_LEN};
use serde::{Deserialize, Serialize};

/// Most components an artifact may carry.
pub const MAX_K: u32 = 1024;

/// Largest encoded head: labels, weights, bias and scalars.
const MAX_HEAD_LEN: u64 = 64 + (MAX_CLASSES as u64) * (8 + MAX_LABEL_LEN as u64 + (MAX_K as u64 + 1) * 4);
/// Largest encoded catalogue: six bounded texts and nine amounts per class.
const MAX_CATALOGUE_LEN: u64 = 8 + (MAX_CLASSES as u64) * (6 * (8 + catalogue::MAX_TEXT_LEN as u64) + 9 * 4);

/// Largest encoded artifact body.
const MAX_BODY_LEN: u64 =
    64 + (MAX_DIM as u64) * (MAX_K as u64 + 1) * 4 + (MAX_K as u64) * 16 + 4096 + MAX_HEAD_LEN + MAX_CATALOGUE_LEN;

/// The frame kind of a projection artifact (the version written).
pub const ARTIFACT_FRAME: FrameKind =
    FrameKind { name: "projection artifact", magic: *b"FRUITPRJ", version: 3, max_body_len: MAX_BODY_LEN };

/// The frame of format version 2, still read (its heads read the codes as they are).
const ARTIFACT_FRAME_V2: FrameKind = FrameKind { version: 2, ..ARTIFACT_FRAME };

/// A published PCA projection for one embedding model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProjectionArtifact {
    /// Monotonic version; codes are tagged with it.
    pub version: u32,
    /// The model whose embeddings this projects.
    pub model_id: ModelId,
    /// When it was computed, Unix milliseconds.
    pub created_unix_ms: u64,
    /// Embedding dimension.
    pub dim: u32,
    /// Number of components.
    pub k: u32,
    /// Number of embeddings the PCA was computed from.
    pub rows: u64,
    /// Mean embedding, `dim` values.
    pub mean: Vec<f32>,
    /// Unit principal components, `k x dim` row-major, by decreasing variance.
    pub components: Vec<f32>,
    /// Variance along each component (sample variance, `n - 1` denominator).
    pub explained_variance: Vec<f64>,
    /// Each component's share of the total variance.
    pub explained_variance_ratio: Vec<f64>,
    /// Total variance of the data (trace of the covariance).
    pub total_variance: f64,
    /// The classifier over the `k` codes, when labelled embeddings were seen.
    pub head: Option<RecognitionHead>,
    /// What the app shows about each class of the head (at most one entry per class).
    pub catalogue: Vec<FruitInfo>,
}

impl ProjectionArtifact {
    /// Encodes the artifact into its stored form, after checking it.
    pub fn encode(&self) -> Result<Vec<u8>, FormatError> {
        self.validate()?;
        codec::encode_framed(&ARTIFACT_FRAME, self)
    }

    /// Decodes a stored artifact (format 3, or 2), refusing anything truncated,
    /// altered or inconsistent.
    pub fn decode(bytes: &[u8]) -> Result<Self, FormatError> {
        let artifact: Self = match codec::frame_version(&ARTIFACT_FRAME, bytes) {
            Some(2) => codec::decode_framed::<v2::Artifact>(&ARTIFACT_FRAME_V2, bytes)?.into(),
            _ => codec::decode_framed(&ARTIFACT_FRAME, bytes)?,
        };
        artifact.validate()?;
        Ok(artifact)
    }

    /// Component `i` as a unit vector of `dim` values.
    pub fn component(&self, i: usize) -> &[f32] {
        let d = self.dim as usize;
        &self.components[i * d..(i + 1) * d]
    }

    /// Projects one embedding onto the components: `k` codes, or `None` when
    /// `embedding` does not have `dim` values.
    pub fn project(&self, embedding: &[f32]) -> Option<Vec<f32>> {
        if embedding.len() != self.dim as usize {
            return None;
        }
        let centred: Vec<f32> = embedding.iter().zip(&self.mean).map(|(x, m)| x - m).collect();
        Some((0..self.k as usize).map(|i| self.component(i).iter().zip(&centred).map(|(c, x)| c * x).sum()).collect())
    }

    /// Maps codes back into embedding space (mean plus the components' span).
    pub fn reconstruct(&self, codes: &[f32]) -> Vec<f32> {
        let mut out = self.mean.clone();
        for (i, code) in codes.iter().enumerate().take(self.k as usize) {
            for (o, c) in out.iter_mut().zip(self.component(i)) {
                *o += code * c;
            }
        }
        out
    }

    /// Checks that sizes agree and every number is finite.
    pub fn validate(&self) -> Result<(), FormatError> {
        let bad = |reason: String| Err(FormatError::Inconsistent { kind: "projection artifact", reason });
        if self.dim == 0 || self.dim > MAX_DIM || self.k == 0 || self.k > MAX_K || self.k > self.dim {
            return bad(format!("dim {} and k {} out of range", self.dim, self.k));
        }
        let (d, k) = (self.dim as usize, self.k as usize);
        if self.mean.len() != d || self.components.len() != k * d {
            return bad(format!(
                "mean has {} values and components {}, expected {d} and {}",
                self.mean.len(),
                self.components.len(),
                k * d
            ));
        }
        if self.explained_variance.len() != k || self.explained_variance_ratio.len() != k {
            return bad("explained variance length differs from k".into());
        }
        let all_finite = self.mean.iter().chain(&self.components).all(|v| v.is_finite())
            && self.explained_variance.iter().chain(&self.explained_variance_ratio).all(|v| v.is_finite())
            && self.total_variance.is_finite();
        if !all_finite {
            return bad("non-finite number".into());
        }
        self.validate_head_and_catalogue()
    }

    /// The head must read exactly the `k` codes; every catalogue entry must be valid
    /// and describe a distinct class of the head.
    fn validate_head_and_catalogue(&self) -> Result<(), FormatError> {
        let bad = |reason: String| Err(FormatError::Inconsistent { kind: "projection artifact", reason });
        let Some(head) = &self.head else {
            return match self.catalogue.is_empty() {
                true => Ok(()),
                false => bad("a catalogue without a recognition head".into()),
            };
        };
        head.validate()?;
        if head.input_dim != self.k {
            return bad(format!("head reads {} codes, the projection has k = {}", head.input_dim, self.k));
        }
        let mut described: Vec<&str> = Vec::with_capacity(self.catalogue.len());
        for info in &self.catalogue {
            info.validate()?;
            if !head.classes.contains(&info.class) {
                return bad(format!("catalogue describes {:?}, which the head does not know", info.class));
            }
            if described.contains(&info.class.as_str()) {
                return bad(format!("catalogue describes {:?} twice", info.class));
            }
            described.push(&info.class);
        }
        Ok(())
    }

    /// The catalogue entry of `class`, if the artifact describes it.
    pub fn info(&self, class: &str) -> Option<&FruitInfo> {
        self.catalogue.iter().find(|info| info.class == class)
    }
}

/// Format version 2: the same fields, and heads without [`HeadInput`].
mod v2 {
    use super::*;

    #[derive(Deserialize)]
    pub(super) struct Head {
        classes: Vec<String>,
        input_dim: u32,
        weights: Vec<f32>,
        bias: Vec<f32>,
        temperature: f32,
        unknown_threshold: f32,
    }

    #[derive(Deserialize)]
    pub(super) struct Artifact {
        version: u32,
        model_id: ModelId,
        created_unix_ms: u64,
        dim: u32,
        k: u32,
        rows: u64,
        mean: Vec<f32>,
        components: Vec<f32>,
        explained_variance: Vec<f64>,
        explained_variance_ratio: Vec<f64>,
        total_variance: f64,
        head: Option<Head>,
        catalogue: Vec<FruitInfo>,
    }

    impl From<Artifact> for ProjectionArtifact {
        fn from(a: Artifact) -> Self {
            let head = a.head.map(|h| RecognitionHead {
                classes: h.classes,
                input_dim: h.input_dim,
                input: HeadInput::Codes,
                weights: h.weights,
                bias: h.bias,
                temperature: h.temperature,
                unknown_threshold: h.unknown_threshold,
            });
            ProjectionArtifact {
                version: a.version,
                model_id: a.model_id,
                created_unix_ms: a.created_unix_ms,
                dim: a.dim,
                k: a.k,
                rows: a.rows,
                mean: a.mean,
                components: a.components,
                explained_variance: a.explained_variance,
                explained_variance_ratio: a.explained_variance_ratio,
                total_variance: a.total_variance,
                head,
                catalogue: a.catalogue,
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A 2-component projection of 3-d space onto its first two axes.
    pub(crate) fn axes() -> ProjectionArtifact {
        ProjectionArtifact {
            version: 4,
            model_id: ModelId::of_bytes(b"m"),
            created_unix_ms: 1,
            dim: 3,
            k: 2,
            rows: 10,
            mean: vec![1.0, 2.0, 3.0],
            components: vec![1.0, 0.0, 0.0, 0.0, 1.0, 0.0],
            explained_variance: vec![5.0, 2.0],
            explained_variance_ratio: vec![0.625, 0.25],
            total_variance: 8.0,
            head: None,
            catalogue: Vec::new(),
        }
    }

    /// [`axes`] with the two-class head of `head::tests` and an apple entry.
    pub(crate) fn with_head() -> ProjectionArtifact {
        ProjectionArtifact {
            head: Some(crate::head::tests::two_classes()),
            catalogue: vec![crate::catalogue::tests::apple()],
            ..axes()
        }
    }

    #[test]
    fn round_trips() {
        let a = axes();
        assert_eq!(ProjectionArtifact::decode(&a.encode().unwrap()).unwrap(), a);
    }

    #[test]
    fn head_and_catalogue_round_trip_and_are_checked_against_the_projection() {
        let a = with_head();
        assert_eq!(ProjectionArtifact::decode(&a.encode().unwrap()).unwrap(), a);
        assert_eq!(a.info("Apple").unwrap().name_fr, "Pomme");
        assert!(a.info("Pear").is_none());
        let mut wrong_k = with_head();
        wrong_k.head.as_mut().unwrap().input_dim = 3;
        assert!(wrong_k.encode().is_err());
        let mut stranger = with_head();
        stranger.catalogue[0].class = "Kiwi".into();
        assert!(stranger.encode().is_err());
        let mut twice = with_head();
        twice.catalogue.push(twice.catalogue[0].clone());
        assert!(twice.encode().is_err());
        let orphan = ProjectionArtifact { head: None, ..with_head() };
        assert!(orphan.encode().is_err());
        let mut nan = with_head();
        nan.head.as_mut().unwrap().weights[0] = f32::NAN;
        assert!(nan.encode().is_err());
    }

    proptest::proptest! {
        // `FRUITS_FUZZ_CASES` raises the count for a longer run (BENCHMARKS.md).
        #![proptest_config(proptest::prelude::ProptestConfig {
            cases: crate::fuzz_cases(512),
            failure_persistence: None,
            ..Default::default()
        })]

        #[test]
        fn arbitrary_bytes_and_frames_never_panic(body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
            let _ = ProjectionArtifact::decode(&body);
            let _ = ProjectionArtifact::decode(&crate::codec::seal_frame(&ARTIFACT_FRAME, &body));
        }

        #[test]
        fn mutated_artifacts_never_panic_and_resealed_ones_stay_checked(
            flips in proptest::collection::vec((proptest::prelude::any::<proptest::sample::Index>(), proptest::prelude::any::<u8>()), 1..8),
            cut in proptest::option::of(proptest::prelude::any::<proptest::sample::Index>()),
        ) {
            let bytes = with_head().encode().unwrap();
            let mut body = crate::codec::open_frame(&ARTIFACT_FRAME, &bytes).unwrap().to_vec();
            for (at, v) in flips {
                let i = at.index(body.len());
                body[i] = v;
            }
            if let Some(cut) = cut {
                body.truncate(cut.index(body.len() + 1));
            }
            // Resealed, so that the checksum passes and the decoder's own checks are reached.
            if let Ok(a) = ProjectionArtifact::decode(&crate::codec::seal_frame(&ARTIFACT_FRAME, &body)) {
                proptest::prop_assert!(a.encode().is_ok(), "a decoded artifact is a valid one");
            }
        }
    }

    #[test]
    fn version_1_and_future_artifacts_are_refused_with_a_typed_error() {
        for version in [1u8, 4] {
            let mut bytes = axes().encode().unwrap();
            bytes[8] = version;
            assert!(matches!(
                ProjectionArtifact::decode(&bytes),
                Err(FormatError::UnsupportedVersion { found, supported: 3, .. }) if found == u16::from(version)
            ));
        }
    }

    #[test]
    fn version_2_artifacts_are_read_with_heads_over_the_codes_as_they_are() {
        // `with_head()` as the format-2 code wrote it (before format 3; its head reads raw codes).
        let old = include_bytes!("../tests/fixtures/artifact-v2-with-head.bin").to_vec();
        let a = with_head();
        assert_eq!(u16::from_le_bytes([old[8], old[9]]), 2);
        assert_eq!(ProjectionArtifact::decode(&old).unwrap(), a);
        assert_ne!(old, a.encode().unwrap(), "format 3 is written");
        let mut cut = old.clone();
        cut.truncate(old.len() - 5);
        assert!(ProjectionArtifact::decode(&cut).is_err());
    }

    #[test]
    fn projects_centred_embeddings_and_reconstructs_their_span() {
        let a = axes();
        assert_eq!(a.project(&[2.0, 0.0, 9.0]), Some(vec![1.0, -2.0]));
        assert_eq!(a.project(&[2.0, 0.0]), None, "a wrong dimension is refused, not a panic");
        assert_eq!(a.reconstruct(&[1.0, -2.0]), vec![2.0, 0.0, 3.0]);
    }

    #[test]
    fn tampered_or_inconsistent_artifacts_are_refused() {
        let bytes = axes().encode().unwrap();
        let mut tampered = bytes.clone();
        tampered[30] ^= 0x40;
        assert!(matches!(ProjectionArtifact::decode(&tampered), Err(FormatError::ChecksumMismatch { .. })));
        assert!(ProjectionArtifact::decode(&bytes[..bytes.len() - 3]).is_err());
        let mut short = axes();
        short.components.pop();
        assert!(short.encode().is_err());
        let mut nan = axes();
        nan.mean[1] = f32::NAN;
        assert!(nan.encode().is_err());
    }
}
