//! The identity of an embedding model: the sha256 of its ONNX file.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;
use std::str::FromStr;

/// The sha256 of the ONNX model file that produced an embedding. Embeddings from
/// different models live in different spaces and must never be mixed.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ModelId(pub [u8; 32]);

impl ModelId {
    /// The id of a model file, from its exact bytes.
    pub fn of_bytes(model: &[u8]) -> Self {
        Self(Sha256::digest(model).into())
    }
}

impl fmt::Display for ModelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for ModelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ModelId({self})")
    }
}

/// A model id string that is not 64 hex digits.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("model id must be 64 hex digits (sha256), got {0:?}")]
pub struct ParseModelIdError(pub String);

impl FromStr for ModelId {
    type Err = ParseModelIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(s, &mut bytes).map_err(|_| ParseModelIdError(s.to_owned()))?;
        Ok(Self(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_the_sha256_of_the_bytes_and_round_trips_through_hex() {
        let id = ModelId::of_bytes(b"abc");
        assert_eq!(id.to_string(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert_eq!(id.to_string().parse::<ModelId>().unwrap(), id);
    }

    #[test]
    fn rejects_bad_hex() {
        assert!("xyz".parse::<ModelId>().is_err());
        assert!("ab".repeat(31).parse::<ModelId>().is_err());
    }
}
