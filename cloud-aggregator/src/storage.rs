//! Object storage behind one small trait: a local directory or S3 ([`crate::s3`]), with the
//! same `/`-separated keys ([`fruits_formats::layout`]).
//!
//! What a `put` guarantees, per backend:
//! - **whole objects**: a reader sees the old bytes or the new ones, never a mix or a cut-off
//!   copy. A directory writes each `put` through [`fruits_durable::replace_file`] (a
//!   temporary file of its own, renamed over the object); S3 replaces objects atomically by
//!   itself.
//! - **durable once acknowledged**: [`fruits_durable::replace_file`] fsyncs the file before
//!   the rename and the directory after it, so a `put` that returned survives a power loss;
//!   S3 acknowledges a PUT once the object is stored.
//! - **no leftovers**: a directory's temporary files (`.tmp-*`) are hidden from `list`, and
//!   [`Storage::sweep_temp`] removes those a killed writer left behind; S3 has none.
//! - **no hidden keys**: no key segment may start with `.` ([`check_key`]), so no client can
//!   store an object under a temporary file's name, where `list` would never show it.

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// Temporary files older than this are leftovers of killed writes, not writes in progress:
/// what `aggregator ingest` sweeps at start.
pub const STALE_TEMP_AGE: Duration = Duration::from_secs(3600);

/// A flat key -> bytes store, as S3 or a directory.
pub trait Storage: Sync {
    /// Every key that starts with `prefix`, recursively, sorted.
    fn list(&self, prefix: &str) -> io::Result<Vec<String>>;
    /// The bytes stored under `key`.
    fn get(&self, key: &str) -> io::Result<Vec<u8>>;
    /// The bytes stored under `key`, into `buf` (replacing its contents). Stores that
    /// can fill a buffer in place reuse its capacity: a reader of many large objects
    /// then allocates (and page-faults) once instead of once per object.
    fn get_into(&self, key: &str, buf: &mut Vec<u8>) -> io::Result<()> {
        *buf = self.get(key)?;
        Ok(())
    }
    /// Stores `bytes` under `key`, replacing it atomically and durably (module docs).
    fn put(&self, key: &str, bytes: &[u8]) -> io::Result<()>;
    /// Removes the temporary files of writes that were killed more than `older_than` ago;
    /// the number removed. Stores without temporary files (S3) have nothing to do.
    fn sweep_temp(&self, older_than: Duration) -> io::Result<usize> {
        let _ = older_than;
        Ok(0)
    }
}

/// A directory whose files are the objects; keys are paths relative to it.
#[derive(Debug, Clone)]
pub struct LocalDir {
    root: PathBuf,
}

impl LocalDir {
    /// Storage rooted at `root` (created on the first `put`).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    fn path(&self, key: &str) -> io::Result<PathBuf> {
        check_key(key)?;
        Ok(self.root.join(key))
    }
}

/// Refuses keys that are empty, absolute, or have an empty segment, a segment starting with
/// `.` (among them `.`, `..` and temporary files' names) or a backslash: the same keys are
/// valid in every backend, none escapes its root and none is hidden from `list`.
pub fn check_key(key: &str) -> io::Result<()> {
    let bad =
        key.is_empty() || key.split('/').any(|part| part.is_empty() || part.starts_with('.')) || key.contains('\\');
    if bad {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("invalid storage key {key:?}")));
    }
    Ok(())
}

/// Calls `f` with the key (`key_prefix` + relative path) and entry of every file under `dir`,
/// temporary ones included; a missing `dir` holds nothing.
fn for_each_file(
    dir: &Path,
    key_prefix: &str,
    f: &mut dyn FnMut(String, &fs::DirEntry) -> io::Result<()>,
) -> io::Result<()> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else { continue };
        let key = format!("{key_prefix}{name}");
        if entry.file_type()?.is_dir() {
            for_each_file(&entry.path(), &format!("{key}/"), f)?;
        } else {
            f(key, &entry)?;
        }
    }
    Ok(())
}

fn is_temp(key: &str) -> bool {
    key.rsplit('/').next().is_some_and(fruits_durable::is_temp_name)
}

impl Storage for LocalDir {
    fn list(&self, prefix: &str) -> io::Result<Vec<String>> {
        let dir_part = &prefix[..prefix.rfind('/').map_or(0, |i| i + 1)];
        let mut keys = Vec::new();
        let start = if dir_part.is_empty() { self.root.clone() } else { self.path(dir_part.trim_end_matches('/'))? };
        for_each_file(&start, dir_part, &mut |key, _| {
            if !is_temp(&key) {
                keys.push(key);
            }
            Ok(())
        })?;
        keys.retain(|k| k.starts_with(prefix));
        keys.sort();
        Ok(keys)
    }

    fn get(&self, key: &str) -> io::Result<Vec<u8>> {
        fs::read(self.path(key)?)
    }

    fn get_into(&self, key: &str, buf: &mut Vec<u8>) -> io::Result<()> {
        let mut file = fs::File::open(self.path(key)?)?;
        buf.clear();
        buf.reserve(file.metadata()?.len() as usize);
        file.read_to_end(buf).map(drop)
    }

    fn put(&self, key: &str, bytes: &[u8]) -> io::Result<()> {
        fruits_durable::replace_file(&self.path(key)?, bytes)
    }

    fn sweep_temp(&self, older_than: Duration) -> io::Result<usize> {
        let cutoff = SystemTime::now().checked_sub(older_than).unwrap_or(SystemTime::UNIX_EPOCH);
        let mut removed = 0;
        for_each_file(&self.root, "", &mut |key, entry| {
            if !is_temp(&key) || entry.metadata()?.modified()? >= cutoff {
                return Ok(());
            }
            match fs::remove_file(entry.path()) {
                Ok(()) => removed += 1,
                // Renamed into place or swept by another process meanwhile.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
            Ok(())
        })?;
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_recursively_sorted_under_a_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let s = LocalDir::new(dir.path());
        for key in ["in/b/2.bin", "in/a/1.bin", "out/x.bin", "in2/z"] {
            s.put(key, key.as_bytes()).unwrap();
        }
        assert_eq!(s.list("in/").unwrap(), ["in/a/1.bin", "in/b/2.bin"]);
        assert_eq!(s.list("in").unwrap().len(), 3);
        assert_eq!(s.list("").unwrap().len(), 4);
        assert_eq!(s.list("nothing/").unwrap(), Vec::<String>::new());
        assert_eq!(s.get("out/x.bin").unwrap(), b"out/x.bin");
        let mut buf = b"previous contents, longer than the object".to_vec();
        s.get_into("out/x.bin", &mut buf).unwrap();
        assert_eq!(buf, b"out/x.bin");
    }

    #[test]
    fn refuses_keys_that_escape_the_root() {
        let s = LocalDir::new("/nonexistent");
        for key in ["../x", "a//b", "/abs", "a/./b", "", "d/.tmp-1-0", "a/.hidden"] {
            assert_eq!(s.get(key).unwrap_err().kind(), io::ErrorKind::InvalidInput, "{key}");
        }
    }

    #[test]
    fn concurrent_puts_of_one_key_never_tear_it() {
        let dir = tempfile::tempdir().unwrap();
        let s = LocalDir::new(dir.path());
        let versions: Vec<Vec<u8>> = (0..6u8).map(|i| vec![i; 256 * 1024]).collect();
        std::thread::scope(|scope| {
            for v in &versions {
                let s = &s;
                scope.spawn(move || {
                    for _ in 0..15 {
                        s.put("d/b.bin", v).unwrap();
                    }
                });
            }
            let (s, versions) = (&s, &versions);
            scope.spawn(move || {
                for _ in 0..200 {
                    match s.get("d/b.bin") {
                        Ok(bytes) => assert!(versions.contains(&bytes), "torn read: {} bytes", bytes.len()),
                        Err(e) => assert_eq!(e.kind(), io::ErrorKind::NotFound),
                    }
                }
            });
        });
        assert_eq!(s.list("").unwrap(), ["d/b.bin"]);
        let names: Vec<_> = fs::read_dir(dir.path().join("d")).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["b.bin"], "no temporary file left");
    }

    #[test]
    fn sweeps_only_old_temporary_files() {
        let dir = tempfile::tempdir().unwrap();
        let s = LocalDir::new(dir.path());
        s.put("d/b.bin", b"kept").unwrap();
        let orphan = dir.path().join("d/.tmp-999-0");
        fs::write(&orphan, b"killed mid-write").unwrap();
        assert_eq!(s.sweep_temp(Duration::from_secs(3600)).unwrap(), 0, "a recent one may be a live write");
        fs::File::options()
            .write(true)
            .open(&orphan)
            .unwrap()
            .set_modified(SystemTime::now() - Duration::from_secs(7200))
            .unwrap();
        assert_eq!(s.sweep_temp(Duration::from_secs(3600)).unwrap(), 1);
        assert!(!orphan.exists());
        assert_eq!(s.get("d/b.bin").unwrap(), b"kept");
    }
}
