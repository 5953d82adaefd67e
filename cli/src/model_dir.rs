//! Finding the model and its manifest.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// File name of the default model manifest.
pub const DEFAULT_MANIFEST: &str = "mobilenetv2-1.0-224-embed.json";

/// Environment variable naming the directory holding the default manifest.
pub const MODEL_DIR_ENV: &str = "FRUITS_MODEL_DIR";

/// Where the model comes from: a manifest path, plus an optional model path
/// overriding the manifest's `file`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelLocation {
    /// Manifest (JSON) path.
    pub manifest: PathBuf,
    /// Model path, if given explicitly.
    pub model: Option<PathBuf>,
}

/// Resolves `--model` / `--manifest` / defaults into a [`ModelLocation`].
pub fn resolve(model: Option<&Path>, manifest: Option<&Path>) -> Result<ModelLocation> {
    let manifest = match (manifest, model) {
        (Some(m), _) => m.to_path_buf(),
        (None, Some(model)) => model.with_extension("json"),
        (None, None) => find_default()?,
    };
    Ok(ModelLocation { manifest, model: model.map(Path::to_path_buf) })
}

/// Candidate directories, in order: `$FRUITS_MODEL_DIR`, `models/` in the
/// current directory and its ancestors, `models/` next to the executable and
/// its ancestors.
fn candidates() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(dir) = std::env::var_os(MODEL_DIR_ENV) {
        dirs.push(PathBuf::from(dir));
    }
    let mut roots = Vec::new();
    if let Ok(cwd) = std::env::current_dir() {
        roots.push(cwd);
    }
    if let Some(exe_dir) = std::env::current_exe().ok().and_then(|e| e.parent().map(Path::to_path_buf)) {
        roots.push(exe_dir);
    }
    for root in roots {
        dirs.extend(root.ancestors().map(|a| a.join("models")));
    }
    dirs
}

fn find_default() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os(MODEL_DIR_ENV) {
        let path = PathBuf::from(dir).join(DEFAULT_MANIFEST);
        return path
            .is_file()
            .then_some(path.clone())
            .with_context(|| format!("{MODEL_DIR_ENV} is set but {} does not exist", path.display()));
    }
    let tried = candidates();
    for dir in &tried {
        let path = dir.join(DEFAULT_MANIFEST);
        if path.is_file() {
            return Ok(path);
        }
    }
    bail!(
        "cannot find models/{DEFAULT_MANIFEST} (looked in the current directory, next to the executable and their parents); pass --manifest or set {MODEL_DIR_ENV}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_flag_implies_sibling_manifest() {
        let loc = resolve(Some(Path::new("m/x.onnx")), None).unwrap();
        assert_eq!(loc.manifest, PathBuf::from("m/x.json"));
        let loc = resolve(Some(Path::new("m/x.onnx")), Some(Path::new("y.json"))).unwrap();
        assert_eq!(loc.manifest, PathBuf::from("y.json"));
    }
}
