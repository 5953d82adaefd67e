//! Helpers shared by the CLI's integration tests (each test binary uses some of them).
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// The repository's root (the workspace folder).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// Every `.shard` file below `dir`, sorted.
pub fn shard_files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(shard_files(&path));
        } else if path.extension().is_some_and(|e| e == "shard") {
            found.push(path);
        }
    }
    found.sort();
    found
}
