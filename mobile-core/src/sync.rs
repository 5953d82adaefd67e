//! Projection sync: fetch the signed projection the aggregator published, verify
//! it, install it atomically on the device, and project embeddings with it.
//!
//! HTTP is `reqwest::blocking` (rustls, Mozilla's root certificates bundled by webpki-roots). Sync runs
//! rarely and off the main thread like inference does, so a blocking call is the
//! simplest API that needs no async runtime from the caller (reqwest runs its own
//! internal one; do not call it from inside an async task).
//!
//! Each embedding model has its own series of projections ([`fruits_formats::layout`]):
//! a device fetches its model's `latest.json` and never installs another model's.
//!
//! On the device, `<dir>/projection/<model>/` holds `v<N>.bin` + `v<N>.json` (the
//! artifact and its manifest) for the current and the previous version, `current` (the
//! current version number, replaced by write-temp + fsync + rename, so a crash
//! leaves either the old or the new version installed, never a mix) and `etag`
//! (the ETag of the last `latest.json` seen, sent as `If-None-Match`). Installing a
//! version removes what other models left in `<dir>/projection/` (an app that moved
//! from the f32 model to the int8 one starts that model's series afresh).

use fruits_durable::replace_file;
use fruits_formats::{ModelId, ProjectionArtifact, ProjectionManifest, VerifyError, verify_published};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where to sync from and what to trust.
#[derive(Debug, Clone)]
pub struct SyncConfig {
    /// Server root, e.g. `https://ingest.example.com` (serves `models/projection/<model>/...`).
    pub server_url: String,
    /// The publisher's Ed25519 public key.
    pub public_key: [u8; 32],
    /// The model this device embeds with: its series is the one synced, and projections
    /// for other models are refused.
    pub model_id: ModelId,
    /// The app's private storage directory.
    pub dir: PathBuf,
}

/// Why a sync failed; the installed projection is unchanged in every case.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// Network failure or an unexpected HTTP status.
    #[error("http: {0}")]
    Http(String),
    /// `latest.json` is not a manifest.
    #[error("malformed latest.json: {0}")]
    Manifest(String),
    /// The published projection is for another embedding model.
    #[error("projection is for model {published}, this device runs {local}")]
    WrongModel {
        /// The manifest's model.
        published: String,
        /// The local model.
        local: String,
    },
    /// Nothing is published for this device's model yet (HTTP 404 for its `latest.json`).
    #[error("no projection is published for model {0} yet")]
    NothingPublished(String),
    /// The server offers an older version than the one installed.
    #[error("server offers version {offered}, older than installed {installed}")]
    Rollback {
        /// Offered version.
        offered: u32,
        /// Installed version.
        installed: u32,
    },
    /// The manifest names a key outside this model's series.
    #[error("manifest key {0:?} is outside this model's models/projection/<model>/")]
    BadKey(String),
    /// Verification failed (digest, signature, size, decoding).
    #[error("verification failed: {0}")]
    Verify(#[from] VerifyError),
    /// Device storage failure.
    #[error("device storage: {0}")]
    Io(#[from] io::Error),
}

/// What a sync did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncOutcome {
    /// Nothing new (HTTP 304 or the same version).
    Unchanged {
        /// The installed version, if any.
        version: Option<u32>,
    },
    /// A new version is installed.
    Updated {
        /// The new version.
        version: u32,
        /// The version it replaced, kept on disk.
        previous: Option<u32>,
    },
}

fn http<E: std::fmt::Display>(e: E) -> SyncError {
    SyncError::Http(e.to_string())
}

/// Syncs projections for one device; holds the HTTP client.
#[derive(Debug)]
pub struct ModelSync {
    config: SyncConfig,
    client: reqwest::blocking::Client,
}

impl ModelSync {
    /// A syncer with 10 s connect and 60 s request timeouts.
    pub fn new(config: SyncConfig) -> Result<Self, SyncError> {
        let client = reqwest::blocking::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(http)?;
        Ok(Self { config, client })
    }

    fn dir(&self) -> PathBuf {
        model_dir(&self.config.dir, &self.config.model_id)
    }

    fn url(&self, key: &str) -> String {
        format!("{}/{key}", self.config.server_url.trim_end_matches('/'))
    }

    /// Fetches `latest.json` (conditional on the stored ETag) and, when it names a
    /// new version, the artifact; verifies both and installs them atomically.
    pub fn sync_model(&self) -> Result<SyncOutcome, SyncError> {
        let dir = self.dir();
        let model = &self.config.model_id;
        let mut request = self.client.get(self.url(&fruits_formats::layout::latest_key(model)));
        if let Ok(etag) = fs::read_to_string(dir.join("etag")) {
            request = request.header(reqwest::header::IF_NONE_MATCH, etag.trim());
        }
        let response = request.send().map_err(http)?;
        if response.status() == reqwest::StatusCode::NOT_MODIFIED {
            return Ok(SyncOutcome::Unchanged { version: installed_version(&self.config.dir, model)? });
        }
        if response.status() == reqwest::StatusCode::NOT_FOUND {
            return Err(SyncError::NothingPublished(model.to_string()));
        }
        if !response.status().is_success() {
            return Err(SyncError::Http(format!("latest.json: HTTP {}", response.status())));
        }
        let etag = response.headers().get(reqwest::header::ETAG).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let manifest_bytes = response.bytes().map_err(http)?;
        let outcome = self.offer(&manifest_bytes, |key| {
            let response = self.client.get(self.url(key)).send().map_err(http)?;
            if !response.status().is_success() {
                return Err(SyncError::Http(format!("{key}: HTTP {}", response.status())));
            }
            Ok(response.bytes().map_err(http)?.to_vec())
        })?;
        if let Some(etag) = etag {
            replace_file(&dir.join("etag"), etag.as_bytes())?;
        }
        Ok(outcome)
    }

    /// Installs a published artifact and its `latest.json` obtained another way (bundled
    /// with an app, copied from a publisher's storage), with every check of a sync.
    pub fn install_published(&self, artifact: &[u8], manifest_json: &[u8]) -> Result<SyncOutcome, SyncError> {
        self.offer(manifest_json, |_| Ok(artifact.to_vec()))
    }

    /// Checks a manifest (model, no rollback, key) and, when it names a new version,
    /// verifies the artifact `fetch` returns for its key and installs both.
    fn offer(
        &self,
        manifest_bytes: &[u8],
        fetch: impl FnOnce(&str) -> Result<Vec<u8>, SyncError>,
    ) -> Result<SyncOutcome, SyncError> {
        let dir = self.dir();
        fs::create_dir_all(&dir)?;
        let model = &self.config.model_id;
        let installed = installed_version(&self.config.dir, model)?;
        let manifest: ProjectionManifest =
            serde_json::from_slice(manifest_bytes).map_err(|e| SyncError::Manifest(e.to_string()))?;
        if manifest.model_id != model.to_string() {
            return Err(SyncError::WrongModel { published: manifest.model_id, local: model.to_string() });
        }
        match installed {
            Some(v) if v == manifest.version => Ok(SyncOutcome::Unchanged { version: installed }),
            Some(v) if v > manifest.version => Err(SyncError::Rollback { offered: manifest.version, installed: v }),
            _ => {
                fruits_formats::layout::projection_file(model, &manifest.key)
                    .ok_or_else(|| SyncError::BadKey(manifest.key.clone()))?;
                let bytes = fetch(&manifest.key)?;
                verify_published(&bytes, &manifest, &self.config.public_key)?;
                install(&dir, manifest.version, &bytes, manifest_bytes, installed)?;
                remove_other_models(&self.config.dir, model)?;
                Ok(SyncOutcome::Updated { version: manifest.version, previous: installed })
            }
        }
    }

    /// The installed projection, re-verified from device storage.
    pub fn current(&self) -> Result<Option<Projector>, SyncError> {
        load_installed(&self.config.dir, &self.config.model_id, &self.config.public_key).map(|a| a.map(Projector))
    }
}

/// Where `model`'s projections are installed below the app's directory `dir`.
fn model_dir(dir: &Path, model: &ModelId) -> PathBuf {
    dir.join("projection").join(model.to_string())
}

/// Removes everything in `dir/projection/` but `model`'s own directory.
fn remove_other_models(dir: &Path, model: &ModelId) -> io::Result<()> {
    let keep = model.to_string();
    for entry in fs::read_dir(dir.join("projection"))? {
        let entry = entry?;
        if entry.file_name().to_string_lossy() != keep {
            match entry.file_type()?.is_dir() {
                true => fs::remove_dir_all(entry.path())?,
                false => fs::remove_file(entry.path())?,
            }
        }
    }
    Ok(())
}

/// The version of `model`'s projection installed in the app's directory `dir`, if any.
pub fn installed_version(dir: &Path, model: &ModelId) -> io::Result<Option<u32>> {
    match fs::read_to_string(model_dir(dir, model).join("current")) {
        Ok(text) => Ok(text.trim().parse().ok()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Loads and re-verifies `model`'s projection installed in the app's directory `dir`.
pub fn load_installed(
    dir: &Path,
    model: &ModelId,
    public_key: &[u8; 32],
) -> Result<Option<ProjectionArtifact>, SyncError> {
    let Some(version) = installed_version(dir, model)? else { return Ok(None) };
    let d = model_dir(dir, model);
    let manifest: ProjectionManifest = serde_json::from_slice(&fs::read(d.join(format!("v{version}.json")))?)
        .map_err(|e| SyncError::Manifest(e.to_string()))?;
    Ok(Some(verify_published(&fs::read(d.join(format!("v{version}.bin")))?, &manifest, public_key)?))
}

/// Writes the new version's files, switches `current` to it, then deletes versions
/// older than the previous one.
fn install(dir: &Path, version: u32, artifact: &[u8], manifest: &[u8], previous: Option<u32>) -> io::Result<()> {
    replace_file(&dir.join(format!("v{version}.bin")), artifact)?;
    replace_file(&dir.join(format!("v{version}.json")), manifest)?;
    replace_file(&dir.join("current"), version.to_string().as_bytes())?;
    for entry in fs::read_dir(dir)? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        let v = name.strip_prefix('v').and_then(|n| n.split('.').next()).and_then(|n| n.parse::<u32>().ok());
        if v.is_some_and(|v| v != version && Some(v) != previous) {
            fs::remove_file(dir.join(&name))?;
        }
    }
    Ok(())
}

/// A verified projection, ready to turn embeddings into k-d codes.
#[derive(Debug, Clone)]
pub struct Projector(pub ProjectionArtifact);

impl Projector {
    /// The projection's version (tag codes with it).
    pub fn version(&self) -> u32 {
        self.0.version
    }

    /// `k` codes for one embedding, or `None` if its dimension is wrong.
    pub fn project(&self, embedding: &[f32]) -> Option<Vec<f32>> {
        self.0.project(embedding)
    }
}
