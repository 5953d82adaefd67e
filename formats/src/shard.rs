//! Embedding shards: one device's batch of embeddings, as uploaded and as stored.
//!
//! A shard is one [`codec`](crate::codec) frame whose body is
//!
//! ```text
//! header length u32 LE | header (bincode ShardHeader) | payload | labels
//! ```
//!
//! The payload is `rows x dim` little-endian values in row-major order, `f32` or
//! IEEE `f16` bits per [`Encoding`]. Labels, present only when the header carries a
//! label vocabulary, are one `u16` per row indexing it ([`NO_LABEL`] for none).
//! Every declared size is checked against its limit and against the real length
//! before the payload is allocated, and every value must be finite.

use crate::codec::{self, FrameKind};
use crate::error::FormatError;
use crate::model_id::ModelId;
use serde::{Deserialize, Serialize};

/// Largest dimension accepted (MobileNetV2 gives 1280).
pub const MAX_DIM: u32 = 8192;
/// Most rows in one shard.
pub const MAX_ROWS: u32 = 1 << 18;
/// Longest device id or batch id, in bytes.
pub const MAX_ID_LEN: usize = 128;
/// Most distinct labels in one shard's vocabulary.
pub const MAX_LABELS: usize = 4096;
/// Longest label, in bytes.
pub const MAX_LABEL_LEN: usize = 128;
/// Largest encoded header.
pub const MAX_HEADER_LEN: u32 = 1 << 20;
/// The label index meaning "this row has no label".
pub const NO_LABEL: u16 = u16::MAX;

/// The frame kind of a shard.
pub const SHARD_FRAME: FrameKind = FrameKind {
    name: "shard",
    magic: *b"FRUITSHD",
    version: 1,
    max_body_len: 4 + MAX_HEADER_LEN as u64 + (MAX_ROWS as u64) * (MAX_DIM as u64) * 4,
};

/// How the values of a shard are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Encoding {
    /// Full embeddings, 32-bit floats.
    F32,
    /// Full embeddings, IEEE half precision.
    F16,
    /// Codes projected by the published projection of this version, half precision.
    ProjectedF16 {
        /// The [`ProjectionArtifact`](crate::ProjectionArtifact) version that made the codes.
        projection_version: u32,
    },
}

impl Encoding {
    /// Bytes per stored value.
    pub fn value_size(self) -> usize {
        match self {
            Encoding::F32 => 4,
            Encoding::F16 | Encoding::ProjectedF16 { .. } => 2,
        }
    }
}

/// Everything about a shard but its values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardHeader {
    /// The model that produced the embeddings.
    pub model_id: ModelId,
    /// Values per row.
    pub dim: u32,
    /// Number of rows.
    pub rows: u32,
    /// How values are stored.
    pub encoding: Encoding,
    /// The device that made the batch.
    pub device_id: String,
    /// The device's id for this batch; with the device id, it names the shard.
    pub batch_id: String,
    /// When the batch was sealed on the device, Unix milliseconds.
    pub created_unix_ms: u64,
    /// Distinct labels used by the rows; empty when the rows are unlabelled.
    pub label_vocabulary: Vec<String>,
}

/// A decoded shard: header, values widened to `f32`, and optional labels.
#[derive(Debug, Clone, PartialEq)]
pub struct Shard {
    header: ShardHeader,
    values: Vec<f32>,
    labels: Option<Vec<u16>>,
}

impl Shard {
    /// Builds a shard, checking that values and labels agree with the header.
    ///
    /// `labels` must be given exactly when the header has a label vocabulary.
    pub fn new(header: ShardHeader, values: Vec<f32>, labels: Option<Vec<u16>>) -> Result<Self, FormatError> {
        check_header(&header)?;
        let expected = header.rows as usize * header.dim as usize;
        if values.len() != expected {
            return Err(inconsistent(format!(
                "{} values for {} rows of dim {}",
                values.len(),
                header.rows,
                header.dim
            )));
        }
        check_finite(&values, header.dim)?;
        match (&labels, header.label_vocabulary.is_empty()) {
            (None, true) => {}
            (Some(l), false) => check_labels(l, &header)?,
            (Some(_), true) => return Err(inconsistent("labels without a vocabulary".into())),
            (None, false) => return Err(inconsistent("a vocabulary without labels".into())),
        }
        Ok(Self { header, values, labels })
    }

    /// The header.
    pub fn header(&self) -> &ShardHeader {
        &self.header
    }

    /// All values, row-major, `rows x dim`.
    pub fn values(&self) -> &[f32] {
        &self.values
    }

    /// One row.
    pub fn row(&self, i: usize) -> &[f32] {
        let d = self.header.dim as usize;
        &self.values[i * d..(i + 1) * d]
    }

    /// The label of row `i`, if the row has one.
    pub fn label(&self, i: usize) -> Option<&str> {
        let index = *self.labels.as_ref()?.get(i)?;
        self.header.label_vocabulary.get(index as usize).map(String::as_str)
    }

    /// Consumes the shard, returning header, values and label indices.
    pub fn into_parts(self) -> (ShardHeader, Vec<f32>, Option<Vec<u16>>) {
        (self.header, self.values, self.labels)
    }

    /// Encodes the shard into its stored form.
    pub fn encode(&self) -> Result<Vec<u8>, FormatError> {
        let header = codec::to_bincode("shard header", &self.header)?;
        let size = self.header.encoding.value_size();
        let label_bytes = self.labels.as_ref().map_or(0, |l| l.len() * 2);
        let mut body = Vec::with_capacity(4 + header.len() + self.values.len() * size + label_bytes);
        body.extend_from_slice(&(header.len() as u32).to_le_bytes());
        body.extend_from_slice(&header);
        match self.header.encoding {
            Encoding::F32 => self.values.iter().for_each(|v| body.extend_from_slice(&v.to_le_bytes())),
            Encoding::F16 | Encoding::ProjectedF16 { .. } => {
                self.values.iter().for_each(|v| body.extend_from_slice(&half::f16::from_f32(*v).to_le_bytes()))
            }
        }
        for label in self.labels.iter().flatten() {
            body.extend_from_slice(&label.to_le_bytes());
        }
        Ok(codec::seal_frame(&SHARD_FRAME, &body))
    }

    /// Decodes a stored shard, refusing anything malformed, oversized or non-finite.
    pub fn decode(bytes: &[u8]) -> Result<Self, FormatError> {
        Self::decode_into(bytes, Vec::new())
    }

    /// [`decode`](Self::decode), with the values written into `values` (cleared
    /// first): a caller decoding shard after shard hands back the buffer of the last
    /// one ([`into_parts`](Self::into_parts)) and allocates nothing more.
    pub fn decode_into(bytes: &[u8], mut values: Vec<f32>) -> Result<Self, FormatError> {
        let view = ShardView::parse(bytes)?;
        view.rows_into(0..view.header.rows as usize, &mut values)?;
        let ShardView { header, labels, .. } = view;
        Ok(Self { header, values, labels })
    }

    /// Reads only the header of a stored shard (its frame and checksum are verified).
    pub fn decode_header(bytes: &[u8]) -> Result<ShardHeader, FormatError> {
        decode_header(codec::open_frame(&SHARD_FRAME, bytes)?)
    }
}

/// A stored shard checked in everything but its values (frame, checksum, header,
/// declared lengths, labels), borrowing the payload: a reader decodes the rows it
/// wants when it wants them ([`rows_into`](Self::rows_into)), block by block while
/// they are in cache, instead of the whole shard at once.
#[derive(Debug, Clone)]
pub struct ShardView<'a> {
    header: ShardHeader,
    payload: &'a [u8],
    labels: Option<Vec<u16>>,
}

impl<'a> ShardView<'a> {
    /// Parses `bytes`, refusing anything malformed or oversized; values are not read.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, FormatError> {
        let body = codec::open_frame(&SHARD_FRAME, bytes)?;
        let header = decode_header(body)?;
        let (header_len, rest) = (4 + read_u32(body) as usize, body.len() as u64);
        let payload_len = header.rows as u64 * header.dim as u64 * header.encoding.value_size() as u64;
        let label_len = if header.label_vocabulary.is_empty() { 0 } else { header.rows as u64 * 2 };
        let declared = header_len as u64 + payload_len + label_len;
        if declared != rest {
            return Err(FormatError::LengthMismatch { declared, actual: rest });
        }
        let payload = &body[header_len..header_len + payload_len as usize];
        let labels = (label_len > 0).then(|| {
            body[header_len + payload_len as usize..]
                .chunks_exact(2)
                .map(|b| u16::from_le_bytes([b[0], b[1]]))
                .collect::<Vec<u16>>()
        });
        if let Some(l) = &labels {
            check_labels(l, &header)?;
        }
        Ok(Self { header, payload, labels })
    }

    /// The header.
    pub fn header(&self) -> &ShardHeader {
        &self.header
    }

    /// Rows `rows` widened to `f32` into `out` (cleared first), refusing a non-finite
    /// value (its position is counted from the shard's first row) and a range that
    /// goes past the shard's row count.
    pub fn rows_into(&self, rows: std::ops::Range<usize>, out: &mut Vec<f32>) -> Result<(), FormatError> {
        if rows.start > rows.end || rows.end > self.header.rows as usize {
            return Err(FormatError::LimitExceeded {
                what: "row range end",
                value: rows.end as u64,
                limit: u64::from(self.header.rows),
            });
        }
        let dim = self.header.dim as usize;
        let size = self.header.encoding.value_size();
        let bytes = &self.payload[rows.start * dim * size..rows.end * dim * size];
        out.clear();
        match self.header.encoding {
            Encoding::F32 => out.extend(bytes.as_chunks::<4>().0.iter().map(|b| f32::from_le_bytes(*b))),
            Encoding::F16 | Encoding::ProjectedF16 { .. } => {
                out.extend(bytes.as_chunks::<2>().0.iter().map(|b| half::f16::from_le_bytes(*b).to_f32()))
            }
        }
        check_finite(out, self.header.dim).map_err(|e| match e {
            FormatError::NonFinite { row, col } => FormatError::NonFinite { row: row + rows.start as u32, col },
            other => other,
        })
    }
}

/// The little-endian `u32` at the start of `body`, which holds at least 4 bytes.
fn read_u32(body: &[u8]) -> u32 {
    u32::from_le_bytes([body[0], body[1], body[2], body[3]])
}

fn decode_header(body: &[u8]) -> Result<ShardHeader, FormatError> {
    if body.len() < 4 {
        return Err(FormatError::Truncated { needed: 4, actual: body.len() as u64 });
    }
    let header_len = read_u32(body);
    if header_len > MAX_HEADER_LEN {
        return Err(FormatError::LimitExceeded {
            what: "header length",
            value: header_len as u64,
            limit: MAX_HEADER_LEN as u64,
        });
    }
    let end = 4 + header_len as usize;
    if end > body.len() {
        return Err(FormatError::LengthMismatch { declared: end as u64, actual: body.len() as u64 });
    }
    let header: ShardHeader = codec::from_bincode("shard header", &body[4..end])?;
    check_header(&header)?;
    Ok(header)
}

fn limit(what: &'static str, value: usize, max: usize) -> Result<(), FormatError> {
    if value > max {
        return Err(FormatError::LimitExceeded { what, value: value as u64, limit: max as u64 });
    }
    Ok(())
}

fn inconsistent(reason: String) -> FormatError {
    FormatError::Inconsistent { kind: "shard", reason }
}

fn check_header(h: &ShardHeader) -> Result<(), FormatError> {
    limit("dim", h.dim as usize, MAX_DIM as usize)?;
    limit("rows", h.rows as usize, MAX_ROWS as usize)?;
    limit("device id length", h.device_id.len(), MAX_ID_LEN)?;
    limit("batch id length", h.batch_id.len(), MAX_ID_LEN)?;
    limit("label vocabulary size", h.label_vocabulary.len(), MAX_LABELS)?;
    for label in &h.label_vocabulary {
        limit("label length", label.len(), MAX_LABEL_LEN)?;
    }
    if h.dim == 0 {
        return Err(inconsistent("dim is 0".into()));
    }
    if h.device_id.is_empty() || h.batch_id.is_empty() {
        return Err(inconsistent("empty device or batch id".into()));
    }
    Ok(())
}

fn check_finite(values: &[f32], dim: u32) -> Result<(), FormatError> {
    // A branch-free pass first (it vectorises); the position only when it fails.
    if values.iter().fold(true, |all, v| all & v.is_finite()) {
        return Ok(());
    }
    match values.iter().position(|v| !v.is_finite()) {
        None => Ok(()),
        Some(i) => Err(FormatError::NonFinite { row: (i / dim as usize) as u32, col: (i % dim as usize) as u32 }),
    }
}

fn check_labels(labels: &[u16], h: &ShardHeader) -> Result<(), FormatError> {
    if labels.len() != h.rows as usize {
        return Err(inconsistent(format!("{} labels for {} rows", labels.len(), h.rows)));
    }
    match labels.iter().position(|&l| l != NO_LABEL && l as usize >= h.label_vocabulary.len()) {
        None => Ok(()),
        Some(row) => Err(inconsistent(format!("row {row} has label index {} out of range", labels[row]))),
    }
}

mod builder;
pub use builder::{Push, ShardBuilder};

#[cfg(test)]
mod tests;
