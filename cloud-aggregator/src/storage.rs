//! Object storage behind one small trait: a local directory or S3 ([`crate::s3`]), with the
//! same `/`-separated keys ([`fruits_formats::layout`]).
//!
//! What a `put` guarantees, per backend:
//! - **whole objects**: a reader sees the old bytes or the new ones, never a mix or a cut-off
//!   copy. A directory writes each `put` to its own temporary file (a name no other write,
//!   in this process or another, uses) and renames it over the object; S3 replaces objects
//!   atomically by itself.
//! - **durable once acknowledged**: a directory fsyncs the file before the rename and the
//!   directory after it, so a `put` that returned survives a power loss; S3 acknowledges a
//!   PUT once the object is stored.
//! - **no leftovers**: a directory's temporary files (`.tmp-*`) are hidden from `list`, and
//!   [`Storage::sweep_temp`] removes those a killed writer left behind; S3 has none.
//! - **no hidden keys**: no key segment may start with `.` ([`check_key`]), so no client can
//!   store an object under a temporary file's name, where `list` would never show it.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

/// The prefix of a directory's temporary files, which `list` hides.
const TEMP_PREFIX: &str = ".tmp-";

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
    key.rsplit('/').next().is_some_and(|name| name.starts_with(TEMP_PREFIX))
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
        write_durably(&self.path(key)?, bytes, &mut |file: &File| file.sync_all())
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

/// Replaces `path` with `bytes`: a temporary file of its own beside it, written and synced,
/// renamed over `path`, then the directory synced so that the rename is durable too. `sync`
/// is `File::sync_all` (a parameter so that tests can see the order of the calls).
fn write_durably(path: &Path, bytes: &[u8], sync: &mut dyn FnMut(&File) -> io::Result<()>) -> io::Result<()> {
    let dir = path.parent().ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "a key has a directory"))?;
    fs::create_dir_all(dir)?;
    // One name per write: process id (other processes on the same directory) and a counter
    // (other threads of this one).
    static WRITES: AtomicU64 = AtomicU64::new(0);
    let n = WRITES.fetch_add(1, Ordering::Relaxed);
    let tmp = dir.join(format!("{TEMP_PREFIX}{}-{n}", std::process::id()));
    let written = (|| {
        let mut file = File::create(&tmp)?;
        file.write_all(bytes)?;
        sync(&file)?;
        fs::rename(&tmp, path)
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    sync(&File::open(dir)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_recursively_sorted_under_a_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let s = LocalDir::new(dir.path());
        for key in ["incoming/b/2.shard", "incoming/a/1.shard", "models/x.bin", "incoming2/z"] {
            s.put(key, key.as_bytes()).unwrap();
        }
        assert_eq!(s.list("incoming/").unwrap(), ["incoming/a/1.shard", "incoming/b/2.shard"]);
        assert_eq!(s.list("incoming").unwrap().len(), 3);
        assert_eq!(s.list("").unwrap().len(), 4);
        assert_eq!(s.list("nothing/").unwrap(), Vec::<String>::new());
        assert_eq!(s.get("models/x.bin").unwrap(), b"models/x.bin");
        let mut buf = b"previous contents, longer than the object".to_vec();
        s.get_into("models/x.bin", &mut buf).unwrap();
        assert_eq!(buf, b"models/x.bin");
    }

    #[test]
    fn refuses_keys_that_escape_the_root() {
        let s = LocalDir::new("/nonexistent");
        for key in ["../x", "a//b", "/abs", "a/./b", "", "incoming/d/.tmp-1-0", "a/.hidden"] {
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
                        s.put("incoming/d/b.shard", v).unwrap();
                    }
                });
            }
            let (s, versions) = (&s, &versions);
            scope.spawn(move || {
                for _ in 0..200 {
                    match s.get("incoming/d/b.shard") {
                        Ok(bytes) => assert!(versions.contains(&bytes), "torn read: {} bytes", bytes.len()),
                        Err(e) => assert_eq!(e.kind(), io::ErrorKind::NotFound),
                    }
                }
            });
        });
        assert_eq!(s.list("").unwrap(), ["incoming/d/b.shard"]);
        let names: Vec<_> =
            fs::read_dir(dir.path().join("incoming/d")).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["b.shard"], "no temporary file left");
    }

    #[test]
    fn a_put_syncs_the_file_before_the_rename_and_the_directory_after() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("incoming/d/b.shard");
        let mut seen = Vec::new();
        write_durably(&path, b"new", &mut |file: &File| {
            let meta = file.metadata()?;
            // The file synced first is the written temporary one, while the key does not
            // exist yet; the directory is synced once the key holds the new bytes.
            seen.push((meta.is_dir(), meta.len(), fs::read(&path).ok()));
            file.sync_all()
        })
        .unwrap();
        assert_eq!(seen, [(false, 3, None), (true, seen[1].1, Some(b"new".to_vec()))]);
        let mut failing = |_: &File| Err(io::Error::other("disk full"));
        assert!(write_durably(&path, b"newer", &mut failing).is_err());
        assert_eq!(fs::read(&path).unwrap(), b"new", "a failed sync leaves the old object");
        let names: Vec<_> = fs::read_dir(path.parent().unwrap()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["b.shard"], "and no temporary file");
    }

    #[test]
    fn sweeps_only_old_temporary_files() {
        let dir = tempfile::tempdir().unwrap();
        let s = LocalDir::new(dir.path());
        s.put("incoming/d/b.shard", b"kept").unwrap();
        let orphan = dir.path().join("incoming/d/.tmp-999-0");
        fs::write(&orphan, b"killed mid-write").unwrap();
        assert_eq!(s.sweep_temp(Duration::from_secs(3600)).unwrap(), 0, "a recent one may be a live write");
        File::options()
            .write(true)
            .open(&orphan)
            .unwrap()
            .set_modified(SystemTime::now() - Duration::from_secs(7200))
            .unwrap();
        assert_eq!(s.sweep_temp(Duration::from_secs(3600)).unwrap(), 1);
        assert!(!orphan.exists());
        assert_eq!(s.get("incoming/d/b.shard").unwrap(), b"kept");
    }
}
