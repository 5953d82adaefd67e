//! Framing and bincode: the only module that knows how bytes are laid out.
//!
//! Every stored object is one frame:
//!
//! ```text
//! magic [8] | format version u16 LE | body length u64 LE | body | crc32 of all before u32 LE
//! ```
//!
//! [`open_frame`] checks magic, version, the declared body length against the real
//! length and its kind's limit, and the checksum, before anything is decoded or
//! allocated. Structured parts of a body are bincode 2 (little endian, fixed-width
//! integers) through [`to_bincode`] and [`from_bincode`].

use crate::error::FormatError;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Bytes before the body: magic, version, body length.
pub const PREFIX_LEN: usize = 8 + 2 + 8;
/// Bytes after the body: the crc32.
pub const CHECKSUM_LEN: usize = 4;

/// Upper bound on any bincode-decoded structure; real ones are far smaller and are
/// also bounded by their frame's body limit.
const BINCODE_LIMIT: usize = 1 << 30;

/// What kind of object a frame holds.
#[derive(Debug, Clone, Copy)]
pub struct FrameKind {
    /// Human name used in errors.
    pub name: &'static str,
    /// The eight bytes every object of this kind starts with.
    pub magic: [u8; 8],
    /// The format version this build writes and reads.
    pub version: u16,
    /// The largest body accepted, checked before reading it.
    pub max_body_len: u64,
}

fn bincode_config() -> impl bincode::config::Config {
    bincode::config::standard().with_little_endian().with_fixed_int_encoding().with_limit::<BINCODE_LIMIT>()
}

/// Encodes a structured value of `kind` with the project's bincode configuration.
pub fn to_bincode<T: Serialize>(kind: &'static str, value: &T) -> Result<Vec<u8>, FormatError> {
    bincode::serde::encode_to_vec(value, bincode_config())
        .map_err(|e| FormatError::Unencodable { kind, reason: e.to_string() })
}

/// Decodes a structured value that must fill `bytes` exactly.
pub fn from_bincode<T: DeserializeOwned>(kind: &'static str, bytes: &[u8]) -> Result<T, FormatError> {
    let (value, read) = bincode::serde::decode_from_slice(bytes, bincode_config())
        .map_err(|e| FormatError::Malformed { kind, reason: e.to_string() })?;
    if read != bytes.len() {
        return Err(FormatError::Malformed { kind, reason: format!("{} trailing bytes", bytes.len() - read) });
    }
    Ok(value)
}

/// Wraps `body` in a frame of `kind`.
pub fn seal_frame(kind: &FrameKind, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(PREFIX_LEN + body.len() + CHECKSUM_LEN);
    out.extend_from_slice(&kind.magic);
    out.extend_from_slice(&kind.version.to_le_bytes());
    out.extend_from_slice(&(body.len() as u64).to_le_bytes());
    out.extend_from_slice(body);
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// Checks a frame of `kind` and returns its body.
pub fn open_frame<'a>(kind: &FrameKind, bytes: &'a [u8]) -> Result<&'a [u8], FormatError> {
    let actual = bytes.len() as u64;
    let overhead = (PREFIX_LEN + CHECKSUM_LEN) as u64;
    if actual < 8 || bytes[..8] != kind.magic {
        let found = &bytes[..bytes.len().min(8)];
        return Err(FormatError::BadMagic {
            expected: String::from_utf8_lossy(&kind.magic).into_owned(),
            found: String::from_utf8_lossy(found).into_owned(),
        });
    }
    if actual < overhead {
        return Err(FormatError::Truncated { needed: overhead, actual });
    }
    let version = u16::from_le_bytes([bytes[8], bytes[9]]);
    if version != kind.version {
        return Err(FormatError::UnsupportedVersion { kind: kind.name, found: version, supported: kind.version });
    }
    let mut body_len = [0; 8];
    body_len.copy_from_slice(&bytes[10..18]);
    let body_len = u64::from_le_bytes(body_len);
    if body_len > kind.max_body_len {
        return Err(FormatError::LimitExceeded { what: "body length", value: body_len, limit: kind.max_body_len });
    }
    if body_len + overhead != actual {
        return Err(FormatError::LengthMismatch { declared: body_len + overhead, actual });
    }
    let (content, trailer) = bytes.split_at(bytes.len() - CHECKSUM_LEN);
    let stored = u32::from_le_bytes([trailer[0], trailer[1], trailer[2], trailer[3]]);
    let computed = crc32fast::hash(content);
    if stored != computed {
        return Err(FormatError::ChecksumMismatch { stored, computed });
    }
    Ok(&content[PREFIX_LEN..])
}

/// The version a frame of `kind` declares, or `None` when `bytes` does not start like
/// one (wrong magic, too short); [`open_frame`] still checks everything else.
pub fn frame_version(kind: &FrameKind, bytes: &[u8]) -> Option<u16> {
    match bytes.get(..10) {
        Some([m0, m1, m2, m3, m4, m5, m6, m7, v0, v1]) if [*m0, *m1, *m2, *m3, *m4, *m5, *m6, *m7] == kind.magic => {
            Some(u16::from_le_bytes([*v0, *v1]))
        }
        _ => None,
    }
}

/// Encodes `value` as the body of a frame of `kind`.
pub fn encode_framed<T: Serialize>(kind: &FrameKind, value: &T) -> Result<Vec<u8>, FormatError> {
    Ok(seal_frame(kind, &to_bincode(kind.name, value)?))
}

/// Decodes a frame of `kind` whose body is one bincode value.
pub fn decode_framed<T: DeserializeOwned>(kind: &FrameKind, bytes: &[u8]) -> Result<T, FormatError> {
    from_bincode(kind.name, open_frame(kind, bytes)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEST: FrameKind = FrameKind { name: "test", magic: *b"FRUITTST", version: 3, max_body_len: 64 };

    #[test]
    fn frame_round_trips() {
        let framed = encode_framed(&TEST, &(7u32, "pear".to_string())).unwrap();
        let back: (u32, String) = decode_framed(&TEST, &framed).unwrap();
        assert_eq!(back, (7, "pear".to_string()));
    }

    #[test]
    fn a_value_the_encoder_refuses_is_a_typed_error() {
        struct Refuses;
        impl Serialize for Refuses {
            fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
                Err(serde::ser::Error::custom("not today"))
            }
        }
        let err = encode_framed(&TEST, &Refuses).unwrap_err();
        assert!(
            matches!(&err, FormatError::Unencodable { kind: "test", reason } if reason.contains("not today")),
            "{err}"
        );
    }

    #[test]
    fn every_corruption_is_typed() {
        let framed = encode_framed(&TEST, &vec![1u8, 2, 3]).unwrap();
        let open = |b: &[u8]| open_frame(&TEST, b).unwrap_err();
        assert!(matches!(open(&framed[..4]), FormatError::BadMagic { .. }));
        assert!(matches!(open(&framed[..12]), FormatError::Truncated { .. }));
        assert!(matches!(open(&framed[..framed.len() - 1]), FormatError::LengthMismatch { .. }));
        let mut flipped = framed.clone();
        flipped[PREFIX_LEN] ^= 1;
        assert!(matches!(open(&flipped), FormatError::ChecksumMismatch { .. }));
        let mut version = framed.clone();
        version[8] = 9;
        assert!(matches!(open(&version), FormatError::UnsupportedVersion { found: 9, .. }));
        let mut huge = framed.clone();
        huge[10..18].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(matches!(open(&huge), FormatError::LimitExceeded { .. }));
    }

    #[test]
    fn trailing_bytes_in_a_body_are_refused() {
        let body = [to_bincode("test", &5u32).unwrap(), vec![0]].concat();
        let framed = seal_frame(&TEST, &body);
        assert!(matches!(decode_framed::<u32>(&TEST, &framed), Err(FormatError::Malformed { .. })));
    }
}
