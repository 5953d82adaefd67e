//! A persistent offline queue of embeddings waiting for upload, batched into shards.
//!
//! One file, `<dir>/upload-queue.bin`, format version 3:
//!
//! ```text
//! header: magic "FRUITQ03" | instance id u64 LE | first sequence number u64 LE
//! record: sync F5 'Q' 'R' 03 | payload length u32 LE | crc32(length | payload) u32 LE | payload
//! payload: created unix ms u64 LE | label length u16 LE | label UTF-8 | dim x f32 LE
//! ```
//!
//! A label length of 0 means "no label" (empty labels are refused). Version 2 files
//! (magic `FRUITQ02`, records without the sync marker, the crc over the payload only) and
//! version 1 files (magic `FRUITQ01`, payload without the label fields) are read and
//! rewritten as version 3 on [`UploadQueue::open`], atomically, keeping instance id,
//! sequence numbers and entries, so an app update never loses or renumbers a batch.
//!
//! * **Atomic appends.** [`UploadQueue::push`] appends one record and `fsync`s
//!   before returning. A record torn by a kill or power loss fails its length or
//!   crc check; [`UploadQueue::open`] truncates the torn tail, so an entry is either
//!   fully queued or not at all. A failed write is rolled back in-process the same way.
//! * **A corrupt record costs one record.** A record damaged in the middle of the file
//!   (a flipped bit, a bad sector) fails its crc; reading resumes at the next sync marker
//!   whose record checks out, the damaged stretch is dropped and counted
//!   ([`UploadQueue::corrupt_records_skipped`]), and the file is rewritten without it. The
//!   head batch keeps its id (the first sequence number is in the header).
//! * **Frozen batches.** [`UploadQueue::next_batch`] always returns the same
//!   shard (same rows, same bytes, same batch id) until [`UploadQueue::ack`] removes it,
//!   however many entries arrive meanwhile and across restarts, so a retried upload
//!   carries the same idempotency key and the same content: the head batch's row count
//!   is written durably beside the queue (`upload-queue.head`: first sequence number,
//!   rows, crc32) when it is first handed out. (Only a damaged record inside a handed-out
//!   batch, dropped on open, changes its bytes: the batch is then rebuilt from what is left.) The batch id is
//!   `<instance>-<first sequence number>`: sequence numbers keep growing across
//!   acks and restarts (the header carries them), and the random-ish instance id
//!   separates reinstalls of the app on one device. Labelled entries give the shard
//!   a label vocabulary (in order of first use) and one label index per row.
//! * **Bounded.** At most `max_entries` entries. When full, [`UploadQueue::push`]
//!   refuses new entries with [`QueueError::Full`] (never drops queued ones): the
//!   file stays append-only, batches already handed to the uploader keep their ids,
//!   and the app decides whether to skip the photo or wait for connectivity.
//! * **Ack compacts.** Removing a batch rewrites the remaining records into a
//!   temporary file, `fsync`s it, and renames it over the queue (atomic on POSIX).

use fruits_durable::replace_file;
use fruits_formats::shard::{MAX_LABEL_LEN, Push};
use fruits_formats::{Encoding, ModelId, ShardBuilder};
use sha2::{Digest, Sha256};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Magic of the current format (version 3: records start with a sync marker).
const MAGIC: &[u8; 8] = b"FRUITQ03";
/// Magic of version 2 (labels, no sync marker), migrated on open.
const MAGIC_V2: &[u8; 8] = b"FRUITQ02";
/// Magic of version 1 (no labels), migrated on open.
const MAGIC_V1: &[u8; 8] = b"FRUITQ01";
const HEADER_LEN: u64 = 8 + 8 + 8;
/// The first bytes of every version 3 record, where reading resumes after a corrupt one.
const SYNC: [u8; 4] = [0xF5, b'Q', b'R', 0x03];
/// Sync marker, length and crc of a version 3 record.
const RECORD_PREFIX: usize = 12;
/// Length and crc of a version 1 or 2 record.
const RECORD_PREFIX_V1_V2: usize = 8;

/// The record layouts this module reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordVersion {
    /// `length | crc | created | values` (no label).
    V1,
    /// `length | crc | created | label length | label | values`.
    V2,
    /// `sync | length | crc | created | label length | label | values`, the crc over the
    /// length and the payload.
    V3,
}

/// What [`decode_records`] read from the records of a queue file.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DecodedRecords {
    /// The valid records' entries, in order.
    pub entries: Vec<Entry>,
    /// Bytes up to the end of the last valid record: what follows is a torn tail.
    pub valid_len: usize,
    /// Damaged stretches between valid records that were skipped (one per damaged record,
    /// unless neighbouring records were damaged together). Always 0 before version 3,
    /// whose records cannot be resynchronised: reading stops at the first bad one.
    pub skipped: usize,
}

/// What a queue holds and how much.
#[derive(Debug, Clone)]
pub struct QueueConfig {
    /// The device's id, written into every shard.
    pub device_id: String,
    /// The model every queued embedding comes from.
    pub model_id: ModelId,
    /// Values per entry: the embedding dimension, or `k` for projected codes.
    pub dim: u32,
    /// How entries are encoded in the shards: full embeddings ([`Encoding::F32`] or
    /// [`Encoding::F16`]) or codes of one projection version. A device keeps one
    /// queue per encoding (in its own directory), so a batch never mixes them.
    pub encoding: Encoding,
    /// Most entries held; see the module docs for the policy when full.
    pub max_entries: usize,
    /// Most rows per shard.
    pub batch_rows: usize,
}

/// Why the queue refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// File system failure.
    #[error("queue I/O: {0}")]
    Io(#[from] io::Error),
    /// The queue holds `max_entries` entries already.
    #[error("queue full ({0} entries): entry refused")]
    Full(usize),
    /// The embedding has the wrong number of values.
    #[error("embedding has {actual} values, queue expects {expected}")]
    WrongDim {
        /// The queue's dimension.
        expected: u32,
        /// Values given.
        actual: usize,
    },
    /// The embedding holds NaN or infinity.
    #[error("embedding holds a non-finite value")]
    NonFinite,
    /// The label is empty or longer than a shard allows.
    #[error("label must be 1 to {MAX_LABEL_LEN} bytes, got {0}")]
    BadLabel(usize),
    /// The file is not a queue (bad magic).
    #[error("{0} is not an upload queue")]
    NotAQueue(PathBuf),
    /// The acknowledged batch is not the one at the head of the queue.
    #[error("batch {0} is not at the head of the queue")]
    NotHead(String),
    /// A shard could not be built.
    #[error("shard: {0}")]
    Format(#[from] fruits_formats::FormatError),
}

/// One queued embedding.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// When it was queued, Unix milliseconds.
    pub created_unix_ms: u64,
    /// What the photo shows, when the user or the dataset says so.
    pub label: Option<String>,
    /// The embedding.
    pub values: Vec<f32>,
}

/// A sealed batch: what the uploader sends, and what [`UploadQueue::ack`] removes.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// The idempotency key: the same for every retry of this batch.
    pub batch_id: String,
    /// Entries it covers (from the head of the queue).
    pub rows: usize,
    /// The encoded shard.
    pub shard: Vec<u8>,
}

/// The queue file and its in-memory index.
#[derive(Debug)]
pub struct UploadQueue {
    config: QueueConfig,
    path: PathBuf,
    file: File,
    instance: u64,
    first_seq: u64,
    entries: Vec<Entry>,
    len_bytes: u64,
    corrupt_skipped: usize,
    /// Rows of the head batch once it was handed out, until it is acknowledged.
    frozen_rows: Option<usize>,
}

/// Encodes one record in the current format (pure).
pub fn encode_record(entry: &Entry) -> Vec<u8> {
    let label = entry.label.as_deref().unwrap_or("").as_bytes();
    let mut payload = Vec::with_capacity(10 + label.len() + entry.values.len() * 4);
    payload.extend_from_slice(&entry.created_unix_ms.to_le_bytes());
    payload.extend_from_slice(&(label.len() as u16).to_le_bytes());
    payload.extend_from_slice(label);
    entry.values.iter().for_each(|v| payload.extend_from_slice(&v.to_le_bytes()));
    let len = (payload.len() as u32).to_le_bytes();
    let mut crc = crc32fast::Hasher::new();
    crc.update(&len);
    crc.update(&payload);
    let mut out = Vec::with_capacity(RECORD_PREFIX + payload.len());
    out.extend_from_slice(&SYNC);
    out.extend_from_slice(&len);
    out.extend_from_slice(&crc.finalize().to_le_bytes());
    out.extend_from_slice(&payload);
    out
}

/// Decodes one checksummed payload, `None` if its layout is inconsistent.
fn decode_payload(p: &[u8], dim: u32, version: RecordVersion) -> Option<Entry> {
    let values_len = dim as usize * 4;
    let created_unix_ms = u64::from_le_bytes(p.get(..8)?.try_into().ok()?);
    let (label, values) = match version {
        RecordVersion::V1 => (None, p.get(8..)?),
        RecordVersion::V2 | RecordVersion::V3 => {
            let label_len = u16::from_le_bytes(p.get(8..10)?.try_into().ok()?) as usize;
            let label = std::str::from_utf8(p.get(10..10 + label_len)?).ok()?;
            ((label_len > 0).then(|| label.to_owned()), p.get(10 + label_len..)?)
        }
    };
    (values.len() == values_len).then(|| Entry {
        created_unix_ms,
        label,
        values: values.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect(),
    })
}

/// Decodes the records that follow a queue file's header (pure). Version 3 skips damaged
/// records and resumes at the next sync marker whose record checks out; versions 1 and 2
/// stop at the first torn or corrupt record.
pub fn decode_records(bytes: &[u8], dim: u32, version: RecordVersion) -> DecodedRecords {
    let mut out = DecodedRecords::default();
    if version != RecordVersion::V3 {
        let mut at = 0;
        while bytes.len() - at >= RECORD_PREFIX_V1_V2 {
            let (Some(len), Some(crc)) = (le_u32_at(bytes, at), le_u32_at(bytes, at + 4)) else { break };
            let len = len as usize;
            let start = at + RECORD_PREFIX_V1_V2;
            if bytes.len() - start < len || crc32fast::hash(&bytes[start..start + len]) != crc {
                break;
            }
            let Some(entry) = decode_payload(&bytes[start..start + len], dim, version) else { break };
            out.entries.push(entry);
            at = start + len;
        }
        out.valid_len = at;
        return out;
    }
    let max_payload = 10 + MAX_LABEL_LEN + dim as usize * 4;
    let (mut at, mut in_gap) = (0, false);
    while at < bytes.len() {
        if let Some((entry, end)) = record_at(bytes, at, dim, max_payload) {
            out.skipped += usize::from(in_gap);
            in_gap = false;
            out.entries.push(entry);
            out.valid_len = end;
            at = end;
            continue;
        }
        in_gap = true;
        match bytes[at + 1..].windows(SYNC.len()).position(|w| w == SYNC) {
            Some(i) => at += 1 + i,
            None => break,
        }
    }
    out
}

/// The version 3 record starting at `at`, if it is whole and checks out, and its end.
fn record_at(bytes: &[u8], at: usize, dim: u32, max_payload: usize) -> Option<(Entry, usize)> {
    let prefix = bytes.get(at..at + RECORD_PREFIX)?;
    if prefix[..4] != SYNC {
        return None;
    }
    let len = u32::from_le_bytes(prefix[4..8].try_into().ok()?) as usize;
    if len > max_payload {
        return None;
    }
    let payload = bytes.get(at + RECORD_PREFIX..at + RECORD_PREFIX + len)?;
    let mut crc = crc32fast::Hasher::new();
    crc.update(&prefix[4..8]);
    crc.update(payload);
    if crc.finalize() != u32::from_le_bytes(prefix[8..12].try_into().ok()?) {
        return None;
    }
    Some((decode_payload(payload, dim, RecordVersion::V3)?, at + RECORD_PREFIX + len))
}

fn header(instance: u64, first_seq: u64) -> Vec<u8> {
    [&MAGIC[..], &instance.to_le_bytes(), &first_seq.to_le_bytes()].concat()
}

/// Where the head batch's record lives beside the queue file: `upload-queue.head`.
fn head_path(queue: &Path) -> PathBuf {
    queue.with_extension("head")
}

/// The head batch's record: first sequence number, rows and their crc32.
fn frozen_record(first_seq: u64, rows: usize) -> Vec<u8> {
    let mut bytes = [first_seq.to_le_bytes().as_slice(), &(rows as u64).to_le_bytes()].concat();
    let crc = crc32fast::hash(&bytes);
    bytes.extend_from_slice(&crc.to_le_bytes());
    bytes
}

/// The rows of the head batch recorded in `bytes`, if it is the batch starting at
/// `first_seq` and the queue still holds them.
fn read_frozen(bytes: &[u8], first_seq: u64, held: usize) -> Option<usize> {
    let (body, crc) = (bytes.get(..16)?, bytes.get(16..20)?);
    let seq = u64::from_le_bytes(body[..8].try_into().ok()?);
    let rows = usize::try_from(u64::from_le_bytes(body[8..].try_into().ok()?)).ok()?;
    let valid = bytes.len() == 20 && crc32fast::hash(body).to_le_bytes() == crc;
    (valid && seq == first_seq && (1..=held).contains(&rows)).then_some(rows)
}

/// The little-endian `u32` at byte `at`, if `bytes` holds it.
fn le_u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    bytes.get(at..)?.first_chunk().map(|b| u32::from_le_bytes(*b))
}

/// The little-endian `u64` at byte `at`, if `bytes` holds it.
fn le_u64_at(bytes: &[u8], at: usize) -> Option<u64> {
    bytes.get(at..)?.first_chunk().map(|b| u64::from_le_bytes(*b))
}

fn new_instance_id(path: &Path) -> u64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let seed = format!("{}|{}|{:?}", path.display(), std::process::id(), now);
    let digest: [u8; 32] = Sha256::digest(seed.as_bytes()).into();
    let [a, b, c, d, e, f, g, h, ..] = digest;
    u64::from_le_bytes([a, b, c, d, e, f, g, h])
}

impl UploadQueue {
    /// Opens (or creates) the queue in `dir`, truncating a torn tail, skipping damaged
    /// records and migrating a version 1 or 2 file to the current format.
    pub fn open(dir: &Path, config: QueueConfig) -> Result<Self, QueueError> {
        fs::create_dir_all(dir)?;
        let path = dir.join("upload-queue.bin");
        if !path.exists() {
            replace_file(&path, &header(new_instance_id(&path), 0))?;
        }
        let mut bytes = Vec::new();
        File::open(&path)?.read_to_end(&mut bytes)?;
        let version = match bytes.get(..8) {
            Some(m) if bytes.len() >= HEADER_LEN as usize && m == MAGIC => RecordVersion::V3,
            Some(m) if bytes.len() >= HEADER_LEN as usize && m == MAGIC_V2 => RecordVersion::V2,
            Some(m) if bytes.len() >= HEADER_LEN as usize && m == MAGIC_V1 => RecordVersion::V1,
            _ => return Err(QueueError::NotAQueue(path)),
        };
        let (Some(instance), Some(first_seq)) = (le_u64_at(&bytes, 8), le_u64_at(&bytes, 16)) else {
            return Err(QueueError::NotAQueue(path));
        };
        let decoded = decode_records(&bytes[HEADER_LEN as usize..], config.dim, version);
        let len_bytes = HEADER_LEN + decoded.valid_len as u64;
        if decoded.skipped > 0 {
            tracing::warn!(skipped = decoded.skipped, "upload queue: damaged records skipped");
        }
        if len_bytes < bytes.len() as u64 {
            tracing::warn!(dropped = bytes.len() as u64 - len_bytes, "upload queue: torn tail truncated");
        }
        let entries = decoded.entries;
        let len_bytes = if version != RecordVersion::V3 || decoded.skipped > 0 || len_bytes < bytes.len() as u64 {
            rewrite(&path, instance, first_seq, &entries)?
        } else {
            len_bytes
        };
        let file = OpenOptions::new().read(true).write(true).open(&path)?;
        let frozen_rows = match fs::read(head_path(&path)) {
            Ok(bytes) => read_frozen(&bytes, first_seq, entries.len()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(e.into()),
        };
        Ok(Self {
            config,
            path,
            file,
            instance,
            first_seq,
            entries,
            len_bytes,
            corrupt_skipped: decoded.skipped,
            frozen_rows,
        })
    }

    /// Damaged records skipped when this queue was opened (their entries are lost; the
    /// records after them are kept).
    pub fn corrupt_records_skipped(&self) -> usize {
        self.corrupt_skipped
    }

    /// Entries queued.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Queued entries, oldest first.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// Appends one unlabelled embedding durably (written and fsynced before returning).
    pub fn push(&mut self, values: &[f32], created_unix_ms: u64) -> Result<(), QueueError> {
        self.push_labelled(values, None, created_unix_ms)
    }

    /// Appends one embedding with an optional label durably (written and fsynced
    /// before returning).
    pub fn push_labelled(
        &mut self,
        values: &[f32],
        label: Option<&str>,
        created_unix_ms: u64,
    ) -> Result<(), QueueError> {
        if values.len() != self.config.dim as usize {
            return Err(QueueError::WrongDim { expected: self.config.dim, actual: values.len() });
        }
        if !values.iter().all(|v| v.is_finite()) {
            return Err(QueueError::NonFinite);
        }
        if let Some(len) = label.map(str::len).filter(|&l| l == 0 || l > MAX_LABEL_LEN) {
            return Err(QueueError::BadLabel(len));
        }
        if self.entries.len() >= self.config.max_entries {
            return Err(QueueError::Full(self.entries.len()));
        }
        let entry = Entry { created_unix_ms, label: label.map(str::to_owned), values: values.to_vec() };
        let record = encode_record(&entry);
        let written = self
            .file
            .seek(SeekFrom::Start(self.len_bytes))
            .and_then(|_| self.file.write_all(&record))
            .and_then(|()| self.file.sync_data());
        if let Err(e) = written {
            // Roll back a partial record so later appends stay readable.
            let _ = self.file.set_len(self.len_bytes);
            return Err(e.into());
        }
        self.len_bytes += record.len() as u64;
        self.entries.push(entry);
        Ok(())
    }

    /// The batch at the head of the queue (up to `batch_rows` entries, and no more
    /// distinct labels than a shard holds), frozen the first time it is handed out: the
    /// same rows and bytes every time until it is acknowledged; `None` when empty.
    pub fn next_batch(&mut self) -> Result<Option<Batch>, QueueError> {
        let limit = self.frozen_rows.unwrap_or(self.config.batch_rows);
        let config = &self.config;
        let mut builder = ShardBuilder::new(config.model_id, config.dim, config.encoding, config.device_id.as_str())
            .with_max_rows(limit);
        for entry in &self.entries {
            if builder.push(&entry.values, entry.label.as_deref(), entry.created_unix_ms)? == Push::Full {
                break;
            }
        }
        let rows = builder.rows();
        if rows == 0 {
            return Ok(None);
        }
        if self.frozen_rows != Some(rows) {
            replace_file(&head_path(&self.path), &frozen_record(self.first_seq, rows))?;
            self.frozen_rows = Some(rows);
        }
        let batch_id = format!("{:016x}-{:010}", self.instance, self.first_seq);
        let shard = builder.finish(batch_id.as_str())?.encode()?;
        Ok(Some(Batch { batch_id, rows, shard }))
    }

    /// Removes an uploaded batch (which must be the head) and compacts the file.
    pub fn ack(&mut self, batch: &Batch) -> Result<(), QueueError> {
        let head = format!("{:016x}-{:010}", self.instance, self.first_seq);
        if batch.batch_id != head || batch.rows > self.entries.len() {
            return Err(QueueError::NotHead(batch.batch_id.clone()));
        }
        let len_bytes =
            rewrite(&self.path, self.instance, self.first_seq + batch.rows as u64, &self.entries[batch.rows..])?;
        self.file = OpenOptions::new().read(true).write(true).open(&self.path)?;
        self.first_seq += batch.rows as u64;
        self.entries.drain(..batch.rows);
        self.len_bytes = len_bytes;
        // The record names the old first sequence number: stale even if this removal fails.
        self.frozen_rows = None;
        match fs::remove_file(head_path(&self.path)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }
}

/// Replaces the queue file with `entries` in the current format (crash-safe);
/// returns its length.
fn rewrite(path: &Path, instance: u64, first_seq: u64, entries: &[Entry]) -> io::Result<u64> {
    let mut bytes = header(instance, first_seq);
    entries.iter().for_each(|e| bytes.extend_from_slice(&encode_record(e)));
    replace_file(path, &bytes)?;
    Ok(bytes.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use fruits_formats::Shard;

    /// Cases per fuzz property: `default`, or `FRUITS_FUZZ_CASES` for a longer run.
    fn fuzz_cases(default: u32) -> u32 {
        std::env::var("FRUITS_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(default)
    }

    fn config(max_entries: usize) -> QueueConfig {
        QueueConfig {
            device_id: "dev-1".into(),
            model_id: ModelId::of_bytes(b"m"),
            dim: 4,
            encoding: Encoding::F32,
            max_entries,
            batch_rows: 3,
        }
    }

    fn row(i: u64) -> Vec<f32> {
        vec![i as f32, 1.0, 2.0, 3.0]
    }

    #[test]
    fn entries_survive_reopen_and_batches_are_deterministic_until_acked() {
        let dir = tempfile::tempdir().unwrap();
        let mut q = UploadQueue::open(dir.path(), config(100)).unwrap();
        (0..5).for_each(|i| q.push(&row(i), 1000 + i).unwrap());
        let first = q.next_batch().unwrap().unwrap();
        drop(q);
        let mut q = UploadQueue::open(dir.path(), config(100)).unwrap();
        assert_eq!(q.len(), 5);
        assert_eq!(q.next_batch().unwrap().unwrap(), first, "a retry after restart sends the same bytes");
        let shard = Shard::decode(&first.shard).unwrap();
        assert_eq!((shard.header().rows, shard.header().batch_id.as_str()), (3, first.batch_id.as_str()));
        q.ack(&first).unwrap();
        assert!(matches!(q.ack(&first), Err(QueueError::NotHead(_))));
        let second = q.next_batch().unwrap().unwrap();
        assert_ne!(second.batch_id, first.batch_id);
        assert_eq!(Shard::decode(&second.shard).unwrap().row(0), &row(3)[..]);
        drop(q);
        let mut q = UploadQueue::open(dir.path(), config(100)).unwrap();
        assert_eq!(q.next_batch().unwrap().unwrap(), second);
        q.ack(&second).unwrap();
        assert!(q.next_batch().unwrap().is_none());
        q.push(&row(9), 9).unwrap();
        let third = q.next_batch().unwrap().unwrap();
        assert!(third.batch_id.ends_with("-0000000005"), "sequence numbers keep growing: {}", third.batch_id);
    }

    #[test]
    fn a_handed_out_batch_keeps_its_rows_and_bytes_as_entries_arrive_and_across_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let mut q = UploadQueue::open(dir.path(), config(100)).unwrap();
        (0..2).for_each(|i| q.push(&row(i), 1000 + i).unwrap());
        let first = q.next_batch().unwrap().unwrap();
        assert_eq!(first.rows, 2);
        // Stored but not acknowledged: new entries arrive before the retry.
        q.push(&row(2), 5000).unwrap();
        assert_eq!(q.next_batch().unwrap().unwrap(), first, "same rows, same bytes");
        drop(q);
        let mut q = UploadQueue::open(dir.path(), config(100)).unwrap();
        q.push(&row(3), 6000).unwrap();
        assert_eq!(q.next_batch().unwrap().unwrap(), first, "frozen across a restart");
        q.ack(&first).unwrap();
        let second = q.next_batch().unwrap().unwrap();
        assert_eq!((second.rows, Shard::decode(&second.shard).unwrap().row(0)), (2, &row(2)[..]));
    }

    #[test]
    fn a_record_torn_by_a_kill_is_dropped_on_reopen_and_appends_continue() {
        let dir = tempfile::tempdir().unwrap();
        let mut q = UploadQueue::open(dir.path(), config(100)).unwrap();
        (0..3).for_each(|i| q.push(&row(i), i).unwrap());
        drop(q);
        let path = dir.path().join("upload-queue.bin");
        let full = fs::metadata(&path).unwrap().len();
        let record = encode_record(&Entry { created_unix_ms: 0, label: None, values: row(0) }).len() as u64;
        // Kill mid-write of the third record: every cut point inside it.
        for cut in 1..record {
            let f = OpenOptions::new().write(true).open(&path).unwrap();
            f.set_len(full - cut).unwrap();
            drop(f);
            let q = UploadQueue::open(dir.path(), config(100)).unwrap();
            assert_eq!(q.len(), 2, "cut {cut}");
            assert_eq!(fs::metadata(&path).unwrap().len(), full - record);
            let mut q = q;
            q.push(&row(2), 2).unwrap();
            assert_eq!(fs::metadata(&path).unwrap().len(), full);
        }
        // A flipped bit in the last record is detected by its crc.
        let mut bytes = fs::read(&path).unwrap();
        let n = bytes.len();
        bytes[n - 2] ^= 0x10;
        fs::write(&path, &bytes).unwrap();
        let q = UploadQueue::open(dir.path(), config(100)).unwrap();
        assert_eq!(
            q.entries(),
            &[
                Entry { created_unix_ms: 0, label: None, values: row(0) },
                Entry { created_unix_ms: 1, label: None, values: row(1) }
            ]
        );
    }

    #[test]
    fn a_corrupt_record_in_the_middle_is_skipped_and_counted_not_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let mut q = UploadQueue::open(dir.path(), config(100)).unwrap();
        (0..5).for_each(|i| q.push(&row(i), i).unwrap());
        let head = q.next_batch().unwrap().unwrap().batch_id;
        drop(q);
        let path = dir.path().join("upload-queue.bin");
        let record = encode_record(&Entry { created_unix_ms: 0, label: None, values: row(0) }).len();
        let clean = fs::read(&path).unwrap();
        // Damage the third record in each of its parts: sync marker, length, crc, payload.
        for at in [0, 5, 9, record - 3] {
            let mut bytes = clean.clone();
            bytes[HEADER_LEN as usize + 2 * record + at] ^= 0x10;
            fs::write(&path, &bytes).unwrap();
            let mut q = UploadQueue::open(dir.path(), config(100)).unwrap();
            let kept: Vec<u64> = q.entries().iter().map(|e| e.created_unix_ms).collect();
            assert_eq!(kept, [0, 1, 3, 4], "byte {at} of the third record damaged");
            assert_eq!(q.corrupt_records_skipped(), 1);
            assert_eq!(q.next_batch().unwrap().unwrap().batch_id, head, "the head batch keeps its id");
            drop(q);
            let q = UploadQueue::open(dir.path(), config(100)).unwrap();
            assert_eq!((q.len(), q.corrupt_records_skipped()), (4, 0), "rewritten without the damage");
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: fuzz_cases(256), failure_persistence: None, ..Default::default() })]

        /// Any one damaged byte costs exactly the record it is in; arbitrary bytes decode
        /// to whatever checks out, without a panic.
        #[test]
        fn one_damaged_byte_costs_one_record(at in 0usize..6 * 38, bit in 0u8..8, noise in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600)) {
            let entries: Vec<Entry> = (0..6).map(|i| Entry { created_unix_ms: i, label: None, values: row(i) }).collect();
            let mut bytes: Vec<u8> = entries.iter().flat_map(encode_record).collect();
            let record = bytes.len() / 6;
            proptest::prop_assert_eq!(record, 38);
            bytes[at] ^= 1 << bit;
            let decoded = decode_records(&bytes, 4, RecordVersion::V3);
            let mut kept = entries.clone();
            kept.remove(at / record);
            proptest::prop_assert_eq!(&decoded.entries, &kept);
            proptest::prop_assert_eq!(decoded.skipped, usize::from(at / record < 5));
            for version in [RecordVersion::V1, RecordVersion::V2, RecordVersion::V3] {
                let d = decode_records(&noise, 4, version);
                proptest::prop_assert!(d.valid_len <= noise.len());
            }
        }
    }

    #[test]
    fn a_version_2_queue_is_migrated_with_its_ids_and_entries() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("upload-queue.bin");
        let mut bytes = [&MAGIC_V2[..], &9u64.to_le_bytes(), &12u64.to_le_bytes()].concat();
        for (i, label) in [(0u64, &b"Kiwi"[..]), (1, b"")] {
            let payload = [
                &(200 + i).to_le_bytes()[..],
                &(label.len() as u16).to_le_bytes(),
                label,
                &row(i).iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>(),
            ]
            .concat();
            bytes.extend_from_slice(&(payload.len() as u32).to_le_bytes());
            bytes.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
            bytes.extend_from_slice(&payload);
        }
        fs::write(&path, &bytes).unwrap();
        let mut q = UploadQueue::open(dir.path(), config(100)).unwrap();
        assert_eq!(
            q.entries(),
            &[
                Entry { created_unix_ms: 200, label: Some("Kiwi".into()), values: row(0) },
                Entry { created_unix_ms: 201, label: None, values: row(1) }
            ]
        );
        assert_eq!(&fs::read(&path).unwrap()[..8], MAGIC, "rewritten in the current format");
        assert_eq!(q.next_batch().unwrap().unwrap().batch_id, "0000000000000009-0000000012");
    }

    #[test]
    fn refuses_when_full_wrong_dim_or_non_finite_without_touching_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut q = UploadQueue::open(dir.path(), config(2)).unwrap();
        q.push(&row(0), 0).unwrap();
        q.push(&row(1), 1).unwrap();
        assert!(matches!(q.push(&row(2), 2), Err(QueueError::Full(2))));
        assert!(matches!(q.push(&[1.0], 2), Err(QueueError::WrongDim { .. })));
        assert!(matches!(q.push(&[f32::NAN, 0.0, 0.0, 0.0], 2), Err(QueueError::NonFinite)));
        assert_eq!(UploadQueue::open(dir.path(), config(2)).unwrap().len(), 2);
        fs::write(dir.path().join("upload-queue.bin"), b"garbage").unwrap();
        assert!(matches!(UploadQueue::open(dir.path(), config(2)), Err(QueueError::NotAQueue(_))));
    }

    #[test]
    fn labels_survive_reopen_and_become_the_shard_vocabulary() {
        let dir = tempfile::tempdir().unwrap();
        let mut q = UploadQueue::open(dir.path(), config(100)).unwrap();
        q.push_labelled(&row(0), Some("Banana"), 0).unwrap();
        q.push(&row(1), 1).unwrap();
        q.push_labelled(&row(2), Some("Banana"), 2).unwrap();
        q.push_labelled(&row(3), Some("Kiwi"), 3).unwrap();
        assert!(matches!(q.push_labelled(&row(4), Some(""), 4), Err(QueueError::BadLabel(0))));
        assert!(matches!(q.push_labelled(&row(4), Some(&"x".repeat(129)), 4), Err(QueueError::BadLabel(129))));
        drop(q);
        let mut q = UploadQueue::open(dir.path(), config(100)).unwrap();
        assert_eq!(q.entries()[2].label.as_deref(), Some("Banana"));
        let shard = Shard::decode(&q.next_batch().unwrap().unwrap().shard).unwrap();
        assert_eq!(shard.header().label_vocabulary, ["Banana"]);
        assert_eq!((shard.label(0), shard.label(1), shard.label(2)), (Some("Banana"), None, Some("Banana")));
        let first = q.next_batch().unwrap().unwrap();
        q.ack(&first).unwrap();
        let shard = Shard::decode(&q.next_batch().unwrap().unwrap().shard).unwrap();
        assert_eq!(
            (shard.header().label_vocabulary.as_slice(), shard.label(0)),
            (&["Kiwi".to_owned()][..], Some("Kiwi"))
        );
    }

    #[test]
    fn unlabelled_batches_carry_no_vocabulary() {
        let dir = tempfile::tempdir().unwrap();
        let mut q = UploadQueue::open(dir.path(), config(100)).unwrap();
        q.push(&row(0), 0).unwrap();
        let shard = Shard::decode(&q.next_batch().unwrap().unwrap().shard).unwrap();
        assert!(shard.header().label_vocabulary.is_empty());
        assert_eq!(shard.label(0), None);
    }

    #[test]
    fn a_version_1_queue_is_migrated_with_its_ids_and_entries() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("upload-queue.bin");
        let mut bytes = [&MAGIC_V1[..], &7u64.to_le_bytes(), &40u64.to_le_bytes()].concat();
        for i in 0..2u64 {
            let payload =
                [&(100 + i).to_le_bytes()[..], &row(i).iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>()]
                    .concat();
            bytes.extend_from_slice(&(payload.len() as u32).to_le_bytes());
            bytes.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
            bytes.extend_from_slice(&payload);
        }
        bytes.extend_from_slice(&[1, 2, 3]); // a torn third record
        fs::write(&path, &bytes).unwrap();
        let mut q = UploadQueue::open(dir.path(), config(100)).unwrap();
        assert_eq!(
            q.entries(),
            &[
                Entry { created_unix_ms: 100, label: None, values: row(0) },
                Entry { created_unix_ms: 101, label: None, values: row(1) }
            ]
        );
        assert_eq!(&fs::read(&path).unwrap()[..8], MAGIC, "rewritten in the current format");
        assert_eq!(q.next_batch().unwrap().unwrap().batch_id, "0000000000000007-0000000040");
        q.push_labelled(&row(2), Some("Pear"), 102).unwrap();
        let q = UploadQueue::open(dir.path(), config(100)).unwrap();
        assert_eq!((q.len(), q.entries()[2].label.as_deref()), (3, Some("Pear")));
    }
}
