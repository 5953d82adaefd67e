//! [`ShardBuilder`]: the one way a batch of rows becomes a shard, used by the phone's
//! upload queue, `fruits embed --format shard` and `aggregator synth`.
//!
//! Every limit is applied here, the same way for every caller: a row of the wrong width, a
//! non-finite value or an invalid label is refused ([`FormatError`]); a row that would take
//! the batch past its row limit (the caller's, at most [`MAX_ROWS`]) or past [`MAX_LABELS`]
//! distinct labels is not added, and [`ShardBuilder::push`] answers [`Push::Full`]: the
//! caller seals the batch and starts the next one with that row. The label vocabulary is in
//! order of first use.

use super::{Encoding, MAX_LABEL_LEN, MAX_LABELS, MAX_ROWS, NO_LABEL, Shard, ShardHeader};
use crate::error::FormatError;
use crate::model_id::ModelId;

/// What [`ShardBuilder::push`] did with a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum Push {
    /// The row is in the batch.
    Added,
    /// The batch is full (rows or distinct labels); the row was not added.
    Full,
}

/// Rows and labels being gathered into one shard.
#[derive(Debug, Clone)]
pub struct ShardBuilder {
    model_id: ModelId,
    dim: u32,
    encoding: Encoding,
    device_id: String,
    max_rows: usize,
    created_unix_ms: u64,
    values: Vec<f32>,
    vocabulary: Vec<String>,
    labels: Vec<u16>,
}

impl ShardBuilder {
    /// An empty batch of `dim`-wide rows from `device_id`, made by `model_id`, stored as
    /// `encoding`, of at most [`MAX_ROWS`] rows.
    pub fn new(model_id: ModelId, dim: u32, encoding: Encoding, device_id: impl Into<String>) -> Self {
        Self {
            model_id,
            dim,
            encoding,
            device_id: device_id.into(),
            max_rows: MAX_ROWS as usize,
            created_unix_ms: 0,
            values: Vec::new(),
            vocabulary: Vec::new(),
            labels: Vec::new(),
        }
    }

    /// The same batch holding at most `rows` rows (at least 1, at most [`MAX_ROWS`]).
    pub fn with_max_rows(mut self, rows: usize) -> Self {
        self.max_rows = rows.clamp(1, MAX_ROWS as usize);
        self
    }

    /// Rows added so far.
    pub fn rows(&self) -> usize {
        self.labels.len()
    }

    /// Whether no row was added.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Adds one row made at `created_unix_ms` (the shard's time is its newest row's), or
    /// answers [`Push::Full`] without adding it; refuses a row that no shard may hold.
    pub fn push(&mut self, values: &[f32], label: Option<&str>, created_unix_ms: u64) -> Result<Push, FormatError> {
        if values.len() != self.dim as usize {
            return Err(inconsistent(format!("a row of {} values, the batch's rows have {}", values.len(), self.dim)));
        }
        if let Some(col) = values.iter().position(|v| !v.is_finite()) {
            let row = u32::try_from(self.rows()).unwrap_or(u32::MAX);
            return Err(FormatError::NonFinite { row, col: u32::try_from(col).unwrap_or(u32::MAX) });
        }
        if self.rows() == self.max_rows {
            return Ok(Push::Full);
        }
        let index = match label {
            None => NO_LABEL,
            Some(label) if label.is_empty() || label.len() > MAX_LABEL_LEN => {
                return Err(inconsistent(format!("a label of {} bytes (1 to {MAX_LABEL_LEN} allowed)", label.len())));
            }
            Some(label) => match self.vocabulary.iter().position(|l| l == label) {
                Some(i) => index_of(i),
                None if self.vocabulary.len() == MAX_LABELS => return Ok(Push::Full),
                None => {
                    self.vocabulary.push(label.to_owned());
                    index_of(self.vocabulary.len() - 1)
                }
            },
        };
        self.values.extend_from_slice(values);
        self.labels.push(index);
        self.created_unix_ms = self.created_unix_ms.max(created_unix_ms);
        Ok(Push::Added)
    }

    /// The shard of the rows added (at least one), named `batch_id`; labels only when some
    /// row has one.
    pub fn finish(self, batch_id: impl Into<String>) -> Result<Shard, FormatError> {
        if self.is_empty() {
            return Err(inconsistent("a batch of no rows".into()));
        }
        let rows = u32::try_from(self.rows()).map_err(|_| inconsistent("too many rows".into()))?;
        let labels = (!self.vocabulary.is_empty()).then_some(self.labels);
        let header = ShardHeader {
            model_id: self.model_id,
            dim: self.dim,
            rows,
            encoding: self.encoding,
            device_id: self.device_id,
            batch_id: batch_id.into(),
            created_unix_ms: self.created_unix_ms,
            label_vocabulary: self.vocabulary,
        };
        Shard::new(header, self.values, labels)
    }
}

/// A vocabulary position as a label index: below [`MAX_LABELS`], which fits a `u16`
/// short of [`NO_LABEL`].
fn index_of(position: usize) -> u16 {
    u16::try_from(position).unwrap_or(NO_LABEL - 1)
}

fn inconsistent(reason: String) -> FormatError {
    FormatError::Inconsistent { kind: "shard", reason }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn builder() -> ShardBuilder {
        ShardBuilder::new(ModelId::of_bytes(b"m"), 2, Encoding::F32, "dev")
    }

    #[test]
    fn labels_index_a_vocabulary_in_order_of_first_use() {
        let mut b = builder();
        for (i, label) in [Some("pear"), None, Some("apple"), Some("pear")].into_iter().enumerate() {
            assert_eq!(b.push(&[i as f32, 0.0], label, 10 + i as u64).unwrap(), Push::Added);
        }
        let shard = b.finish("b1").unwrap();
        assert_eq!(shard.header().label_vocabulary, ["pear", "apple"]);
        assert_eq!(shard.header().created_unix_ms, 13, "the newest row's time");
        assert_eq!(
            (0..4).map(|i| shard.label(i)).collect::<Vec<_>>(),
            [Some("pear"), None, Some("apple"), Some("pear")]
        );
        let mut unlabelled = builder();
        assert_eq!(unlabelled.push(&[1.0, 2.0], None, 0).unwrap(), Push::Added);
        assert_eq!(unlabelled.finish("b2").unwrap().into_parts().2, None, "no label, no label table");
    }

    #[test]
    fn a_full_batch_refuses_the_row_that_would_overflow_it_by_rows_or_labels() {
        let mut b = builder().with_max_rows(2);
        assert_eq!(b.push(&[0.0; 2], None, 0).unwrap(), Push::Added);
        assert_eq!(b.push(&[0.0; 2], None, 0).unwrap(), Push::Added);
        assert_eq!(b.push(&[0.0; 2], None, 0).unwrap(), Push::Full);
        assert_eq!(b.rows(), 2);
        let mut b = builder();
        for i in 0..MAX_LABELS {
            assert_eq!(b.push(&[0.0; 2], Some(&format!("l{i}")), 0).unwrap(), Push::Added);
        }
        assert_eq!(b.push(&[0.0; 2], Some("l0"), 0).unwrap(), Push::Added, "a known label still fits");
        assert_eq!(b.push(&[0.0; 2], Some("one more"), 0).unwrap(), Push::Full);
        assert_eq!(b.push(&[0.0; 2], None, 0).unwrap(), Push::Added, "an unlabelled row still fits");
        assert_eq!(b.finish("b").unwrap().header().label_vocabulary.len(), MAX_LABELS);
    }

    #[test]
    fn rows_no_shard_may_hold_are_refused_with_a_typed_error() {
        let mut b = builder();
        assert!(matches!(b.push(&[0.0; 3], None, 0), Err(FormatError::Inconsistent { .. })));
        assert_eq!(b.push(&[0.0, f32::NAN], None, 0), Err(FormatError::NonFinite { row: 0, col: 1 }));
        assert!(b.push(&[0.0; 2], Some(""), 0).is_err());
        assert!(b.push(&[0.0; 2], Some(&"x".repeat(MAX_LABEL_LEN + 1)), 0).is_err());
        assert!(b.is_empty(), "nothing refused was added");
        assert!(b.finish("b").is_err(), "an empty batch is no shard");
    }
}
