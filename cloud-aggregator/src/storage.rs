//! Object storage behind one small trait: a local directory or S3 ([`crate::s3`]), with the
//! same `/`-separated keys (`incoming/<date>/<device>/<batch>.shard`, ...).

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

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
    /// Stores `bytes` under `key`, replacing it atomically.
    fn put(&self, key: &str, bytes: &[u8]) -> io::Result<()>;
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

/// Refuses keys that are empty, absolute, or have empty, `.` or `..` segments or a
/// backslash: the same keys are valid in every backend and none escapes its root.
pub fn check_key(key: &str) -> io::Result<()> {
    let bad = key.is_empty()
        || key.split('/').any(|part| part.is_empty() || part == "." || part == "..")
        || key.contains('\\');
    if bad {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("invalid storage key {key:?}")));
    }
    Ok(())
}

fn walk(dir: &Path, key_prefix: &str, out: &mut Vec<String>) -> io::Result<()> {
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
            walk(&entry.path(), &format!("{key}/"), out)?;
        } else if !name.starts_with(".tmp-") {
            out.push(key);
        }
    }
    Ok(())
}

impl Storage for LocalDir {
    fn list(&self, prefix: &str) -> io::Result<Vec<String>> {
        let dir_part = &prefix[..prefix.rfind('/').map_or(0, |i| i + 1)];
        let mut keys = Vec::new();
        let start = if dir_part.is_empty() { self.root.clone() } else { self.path(dir_part.trim_end_matches('/'))? };
        walk(&start, dir_part, &mut keys)?;
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
        let path = self.path(key)?;
        let dir = path.parent().expect("a key has a parent directory");
        fs::create_dir_all(dir)?;
        let name = path.file_name().and_then(|n| n.to_str()).expect("keys are UTF-8");
        let tmp = dir.join(format!(".tmp-{}-{name}", std::process::id()));
        fs::write(&tmp, bytes)?;
        fs::rename(&tmp, &path)
    }
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
        for key in ["../x", "a//b", "/abs", "a/./b", ""] {
            assert_eq!(s.get(key).unwrap_err().kind(), io::ErrorKind::InvalidInput, "{key}");
        }
    }
}
