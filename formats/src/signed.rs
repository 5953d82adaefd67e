//! Signed publication of a projection artifact, shared by the aggregator (which
//! signs) and phones (which verify).
//!
//! The aggregator signs the exact artifact bytes with Ed25519 and writes a
//! [`ProjectionManifest`] (`models/projection/<model>/latest.json`) naming the version, the
//! object key, size, sha256 and signature. [`verify_published`] is pure: bytes,
//! manifest and public key in, a decoded artifact or a [`VerifyError`] saying
//! precisely what is wrong out.

use crate::artifact::ProjectionArtifact;
use crate::error::FormatError;
use crate::model_id::ModelId;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// What `latest.json` promises about the current artifact. Extra fields (the
/// aggregator adds variance statistics) are ignored when parsing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProjectionManifest {
    /// The artifact's version.
    pub version: u32,
    /// Its storage key, e.g. `models/projection/<model>/v3.bin` ([`crate::layout::projection_key`]).
    pub key: String,
    /// Its length in bytes.
    pub size: u64,
    /// sha256 of its bytes, hex.
    pub sha256: String,
    /// Ed25519 signature of its exact bytes, hex (64 bytes).
    pub signature: String,
    /// When it was computed, Unix milliseconds.
    pub created_unix_ms: u64,
    /// The same instant, ISO 8601 UTC.
    pub created: String,
    /// Number of components.
    pub k: u32,
    /// The embedding model, sha256 hex.
    pub model_id: String,
}

/// Why a published artifact is refused. Each case is distinct so that a phone can
/// report (and a test can check) exactly what went wrong.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum VerifyError {
    /// The manifest's sha256, signature or model id is not well-formed hex.
    #[error("malformed manifest field {field}")]
    MalformedManifest {
        /// The field.
        field: &'static str,
    },
    /// The public key is not a valid Ed25519 point.
    #[error("invalid public key")]
    InvalidPublicKey,
    /// Fewer or more bytes than the manifest says: an interrupted download.
    #[error("artifact has {actual} bytes, manifest says {expected}")]
    SizeMismatch {
        /// Bytes the manifest announces.
        expected: u64,
        /// Bytes received.
        actual: u64,
    },
    /// The bytes match neither the digest nor the signature: they were altered.
    #[error("artifact bytes altered: sha256 {actual} differs from the manifest's and the signature fails")]
    Tampered {
        /// sha256 of the bytes received.
        actual: String,
    },
    /// The signature is valid for the bytes but the manifest's sha256 is not theirs.
    #[error("manifest sha256 {manifest} is not the artifact's ({actual})")]
    ManifestDigestMismatch {
        /// What the manifest says.
        manifest: String,
        /// What the bytes hash to.
        actual: String,
    },
    /// The digest matches but the signature does not verify under this key.
    #[error("signature does not verify under the trusted key")]
    BadSignature,
    /// Authentic bytes that do not decode (a format this build cannot read).
    #[error("artifact does not decode: {0}")]
    Format(#[from] FormatError),
    /// The artifact disagrees with its manifest on version, k or model.
    #[error("artifact {field} is {artifact}, manifest says {manifest}")]
    ManifestMismatch {
        /// The field.
        field: &'static str,
        /// The artifact's value.
        artifact: String,
        /// The manifest's value.
        manifest: String,
    },
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Signs `bytes` (the encoded `artifact`) and describes them in a manifest.
pub fn sign_artifact(
    bytes: &[u8],
    artifact: &ProjectionArtifact,
    key: &str,
    created: &str,
    signing_key: &SigningKey,
) -> ProjectionManifest {
    ProjectionManifest {
        version: artifact.version,
        key: key.to_owned(),
        size: bytes.len() as u64,
        sha256: sha256_hex(bytes),
        signature: hex::encode(signing_key.sign(bytes).to_bytes()),
        created_unix_ms: artifact.created_unix_ms,
        created: created.to_owned(),
        k: artifact.k,
        model_id: artifact.model_id.to_string(),
    }
}

/// Checks size, sha256 and signature of `bytes` against `manifest` and the trusted
/// 32-byte Ed25519 `public_key`, decodes them and checks that the artifact agrees
/// with the manifest. Pure: no I/O, no clock.
pub fn verify_published(
    bytes: &[u8],
    manifest: &ProjectionManifest,
    public_key: &[u8; 32],
) -> Result<ProjectionArtifact, VerifyError> {
    let key = VerifyingKey::from_bytes(public_key).map_err(|_| VerifyError::InvalidPublicKey)?;
    let mut sig = [0u8; 64];
    hex::decode_to_slice(&manifest.signature, &mut sig)
        .map_err(|_| VerifyError::MalformedManifest { field: "signature" })?;
    let mut digest = [0u8; 32];
    hex::decode_to_slice(&manifest.sha256, &mut digest)
        .map_err(|_| VerifyError::MalformedManifest { field: "sha256" })?;
    let model_id: ModelId =
        manifest.model_id.parse().map_err(|_| VerifyError::MalformedManifest { field: "model_id" })?;
    if bytes.len() as u64 != manifest.size {
        return Err(VerifyError::SizeMismatch { expected: manifest.size, actual: bytes.len() as u64 });
    }
    let actual: [u8; 32] = Sha256::digest(bytes).into();
    let signed = key.verify_strict(bytes, &Signature::from_bytes(&sig)).is_ok();
    match (actual == digest, signed) {
        (true, true) => {}
        (false, false) => return Err(VerifyError::Tampered { actual: hex::encode(actual) }),
        (false, true) => {
            return Err(VerifyError::ManifestDigestMismatch {
                manifest: manifest.sha256.clone(),
                actual: hex::encode(actual),
            });
        }
        (true, false) => return Err(VerifyError::BadSignature),
    }
    let artifact = ProjectionArtifact::decode(bytes)?;
    let mismatch = |field, a: String, m: String| Err(VerifyError::ManifestMismatch { field, artifact: a, manifest: m });
    if artifact.version != manifest.version {
        return mismatch("version", artifact.version.to_string(), manifest.version.to_string());
    }
    if artifact.k != manifest.k {
        return mismatch("k", artifact.k.to_string(), manifest.k.to_string());
    }
    if artifact.model_id != model_id {
        return mismatch("model_id", artifact.model_id.to_string(), manifest.model_id.clone());
    }
    Ok(artifact)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::artifact::tests::axes as artifact;

    fn published() -> (Vec<u8>, ProjectionManifest, [u8; 32]) {
        let key = SigningKey::from_bytes(&[7u8; 32]);
        let a = artifact();
        let bytes = a.encode().unwrap();
        let manifest =
            sign_artifact(&bytes, &a, &crate::layout::projection_key(&a.model_id, 4), "1970-01-01T00:00:00.001Z", &key);
        (bytes, manifest, key.verifying_key().to_bytes())
    }

    #[test]
    fn authentic_artifacts_verify_and_the_manifest_round_trips_through_json() {
        let (bytes, manifest, public) = published();
        assert_eq!(verify_published(&bytes, &manifest, &public).unwrap(), artifact());
        let json = serde_json::to_string(&manifest).unwrap();
        let mut value: serde_json::Value = serde_json::from_str(&json).unwrap();
        value["rows"] = 10.into(); // extra fields are ignored
        assert_eq!(serde_json::from_value::<ProjectionManifest>(value).unwrap(), manifest);
    }

    #[test]
    fn each_kind_of_bad_publication_has_its_own_error() {
        let (bytes, manifest, public) = published();
        let mut tampered = bytes.clone();
        tampered[40] ^= 1;
        assert!(matches!(verify_published(&tampered, &manifest, &public), Err(VerifyError::Tampered { .. })));
        assert!(matches!(
            verify_published(&bytes[..bytes.len() - 1], &manifest, &public),
            Err(VerifyError::SizeMismatch { .. })
        ));
        let other = SigningKey::from_bytes(&[8u8; 32]).verifying_key().to_bytes();
        assert_eq!(verify_published(&bytes, &manifest, &other), Err(VerifyError::BadSignature));
        let mut wrong_sha = manifest.clone();
        wrong_sha.sha256 = "00".repeat(32);
        assert!(matches!(
            verify_published(&bytes, &wrong_sha, &public),
            Err(VerifyError::ManifestDigestMismatch { .. })
        ));
        let mut bad_hex = manifest.clone();
        bad_hex.signature = "zz".into();
        assert_eq!(
            verify_published(&bytes, &bad_hex, &public),
            Err(VerifyError::MalformedManifest { field: "signature" })
        );
        let mut wrong_version = manifest.clone();
        wrong_version.version = 5;
        assert!(matches!(
            verify_published(&bytes, &wrong_version, &public),
            Err(VerifyError::ManifestMismatch { field: "version", .. })
        ));
    }
}
