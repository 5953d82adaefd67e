//! Crash-safe file replacement, the one way Fruits writes a file it must not lose: the
//! phone's queue, plan cache and installed projection, and the aggregator's local-directory
//! storage.
//!
//! [`replace_file`] writes the new bytes to a temporary file of its own beside the target
//! (a name no other write, in this process or another, uses), fsyncs it, renames it over
//! the target and fsyncs the directory, so a kill or power loss at any point leaves either
//! the old content or the new one, and a call that returned survives a power loss.
//! Temporary files start with [`TEMP_PREFIX`]; one a killed writer left behind is
//! recognised by [`is_temp_name`] and may be removed once it is old.

// No panic reachable from input or from another request's failure (tests exempt).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

/// The prefix of temporary files' names.
pub const TEMP_PREFIX: &str = ".tmp-";

/// Whether a file name is one of [`replace_file`]'s temporary files.
pub fn is_temp_name(name: &str) -> bool {
    name.starts_with(TEMP_PREFIX)
}

/// Replaces `path` with `bytes`, creating its directory if needed (module docs).
pub fn replace_file(path: &Path, bytes: &[u8]) -> io::Result<()> {
    replace_file_syncing_with(path, bytes, &mut |file: &File| file.sync_all())
}

/// [`replace_file`] with the sync call given: `sync` is called on the written temporary
/// file before the rename and on the directory after it (tests see the order through it).
pub fn replace_file_syncing_with(
    path: &Path,
    bytes: &[u8],
    sync: &mut dyn FnMut(&File) -> io::Result<()>,
) -> io::Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
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
        // Best effort: the write already failed, and a leftover is swept later.
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    sync(&File::open(dir)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> =
            fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        names.sort();
        names
    }

    #[test]
    fn syncs_the_file_before_the_rename_and_the_directory_after() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/d/b.bin");
        let mut seen = Vec::new();
        replace_file_syncing_with(&path, b"new", &mut |file: &File| {
            let meta = file.metadata()?;
            // The file synced first is the written temporary one, while the target does not
            // exist yet; the directory is synced once the target holds the new bytes.
            seen.push((meta.is_dir(), meta.len(), fs::read(&path).ok()));
            file.sync_all()
        })
        .unwrap();
        assert_eq!(seen, [(false, 3, None), (true, seen[1].1, Some(b"new".to_vec()))]);
        let mut failing = |_: &File| Err(io::Error::other("disk full"));
        assert!(replace_file_syncing_with(&path, b"newer", &mut failing).is_err());
        assert_eq!(fs::read(&path).unwrap(), b"new", "a failed sync leaves the old content");
        assert_eq!(names(path.parent().unwrap()), ["b.bin"], "and no temporary file");
    }

    #[test]
    fn concurrent_writers_of_one_file_use_distinct_temporary_files() {
        // The phone's durable files used one fixed `<name>.tmp`: two writers of the same file
        // then wrote into one temporary file, and a rename could publish a mix of both.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("current");
        let values: Vec<Vec<u8>> = (0..8u8).map(|i| vec![i; 64 * 1024]).collect();
        let (values, path) = (&values, &path);
        std::thread::scope(|s| {
            for v in values {
                s.spawn(move || {
                    for _ in 0..20 {
                        replace_file(path, v).unwrap();
                        let got = fs::read(path).unwrap();
                        assert!(values.contains(&got), "a torn file of {} bytes", got.len());
                    }
                });
            }
        });
        assert_eq!(names(dir.path()), ["current"]);
        assert!(is_temp_name(".tmp-1-2") && !is_temp_name("current"));
    }
}
