//! `fruits recognize`: "what is this fruit?" on the desktop, through the very code a
//! phone runs (embed -> installed projection -> head, with the classes taught on that
//! phone), offline.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Args;
use fruits_core::EmbedError;
use fruits_core::client::{ClientError, DeviceConfig, FruitsClient, ModelSource, load_embedder};
use fruits_core::recognizer::Recognition;
use fruits_formats::FruitInfo;
use serde::Serialize;

use crate::commands::embed::collect_inputs;
use crate::model_dir;

/// Arguments of `fruits recognize`.
#[derive(Debug, Args)]
pub struct RecognizeArgs {
    /// Photos (JPEG, PNG, WebP, GIF, BMP), or folders walked recursively.
    #[arg(required = true)]
    pub photos: Vec<PathBuf>,
    /// A phone's storage folder with an installed projection (and the classes taught
    /// on it), as `fruits demo` and `fruits emulate` leave them
    /// (`<workdir>/phones/phone-00`).
    #[arg(long, conflicts_with = "artifact", required_unless_present = "artifact")]
    pub phone: Option<PathBuf>,
    /// A published projection artifact (`models/projection/v<N>.bin` of the aggregator's
    /// storage), verified and installed like a sync would.
    #[arg(long)]
    pub artifact: Option<PathBuf>,
    /// The artifact's signed manifest (default: `latest.json` next to the artifact).
    #[arg(long, requires = "artifact")]
    pub latest: Option<PathBuf>,
    /// The publisher's Ed25519 public key: a file of 64 hex digits (`publisher.key.pub`)
    /// or the digits themselves. Default with `--phone`: the `publisher.key.pub` of the
    /// emulator folder the phone is in.
    #[arg(long)]
    pub public_key: Option<String>,
    /// One JSON line per photo instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Model manifest (default: models/ as for `fruits embed`).
    #[arg(long)]
    pub model: Option<PathBuf>,
}

/// One photo's answer, as `--json` prints it.
#[derive(Debug, Serialize)]
struct Answer<'a> {
    path: &'a str,
    label: Option<&'a str>,
    confidence: f32,
    taught: bool,
    top: Vec<Candidate<'a>>,
    info: Option<&'a FruitInfo>,
}

#[derive(Debug, Serialize)]
struct Candidate<'a> {
    label: &'a str,
    probability: f32,
}

/// Where the emulator keeps the publisher's public key, relative to a phone's folder.
const EMULATOR_PUBLIC_KEY: &str = "../../publisher.key.pub";

fn public_key(arg: Option<&str>, phone: Option<&Path>) -> Result<[u8; 32]> {
    let text = match (arg, phone) {
        (Some(arg), _) if Path::new(arg).is_file() => {
            fs::read_to_string(arg).with_context(|| format!("reading the public key {arg}"))?
        }
        (Some(arg), _) => arg.to_owned(),
        (None, Some(phone)) => {
            let path = phone.join(EMULATOR_PUBLIC_KEY);
            fs::read_to_string(&path)
                .with_context(|| format!("no --public-key given and no {} to read", path.display()))?
        }
        (None, None) => bail!("--public-key is needed with --artifact"),
    };
    let mut key = [0u8; 32];
    hex::decode_to_slice(text.trim(), &mut key).context("the public key is not 64 hex digits")?;
    Ok(key)
}

/// A client over `storage`, offline: recognition needs neither ingest nor a device secret.
fn client(storage: &Path, key: [u8; 32], model: &ModelSource) -> Result<FruitsClient> {
    let device = DeviceConfig::new(storage, "http://127.0.0.1:9", "desktop", Vec::new(), key);
    Ok(FruitsClient::with_embedder(device, load_embedder(model, None)?)?)
}

/// Runs `fruits recognize`: a table (or JSON lines) on stdout, errors per photo on
/// stderr; fails when any photo could not be recognised.
pub fn run(args: &RecognizeArgs) -> Result<ExitCode> {
    let location = model_dir::resolve(None, args.model.as_deref())?;
    let model = ModelSource::ManifestPath(location.manifest);
    let key = public_key(args.public_key.as_deref(), args.phone.as_deref())?;
    let scratch;
    let client = match (&args.phone, &args.artifact) {
        (Some(phone), _) => {
            if !phone.is_dir() {
                bail!("{} is not a phone's storage folder", phone.display());
            }
            client(phone, key, &model)?
        }
        (None, Some(artifact)) => {
            let latest = args.latest.clone().unwrap_or_else(|| artifact.with_file_name("latest.json"));
            let bytes = fs::read(artifact).with_context(|| format!("reading {}", artifact.display()))?;
            let manifest = fs::read(&latest).with_context(|| format!("reading {}", latest.display()))?;
            scratch = Scratch::new()?;
            let client = client(&scratch.0, key, &model)?;
            client.install_projection(&bytes, &manifest).context("installing the projection")?;
            client
        }
        (None, None) => bail!("give --phone or --artifact"),
    };
    let (files, _) = collect_inputs(&args.photos)?;
    let mut failures = 0;
    if !args.json {
        println!("{:<40} {:<14} {:>10}  top 3", "photo", "answer", "confidence");
    }
    for path in &files {
        let shown = path.to_string_lossy();
        let answer =
            fs::read(path).map_err(|e| ClientError::Embed(EmbedError::io(path, e))).and_then(|b| client.recognize(&b));
        match answer {
            Ok(r) if args.json => println!("{}", serde_json::to_string(&json_answer(&shown, &r))?),
            Ok(r) => print!("{}", table_rows(&shown, &r)),
            Err(e) => {
                failures += 1;
                // The same words and kinds as `fruits embed` for what is wrong with a photo.
                let kind = match &e {
                    ClientError::Embed(e) => e.kind(),
                    _ => "not_recognised",
                };
                eprintln!("error: {shown}: {e} [{kind}]");
            }
        }
    }
    if failures > 0 {
        eprintln!("{failures} of {} photos failed", files.len());
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

fn json_answer<'a>(path: &'a str, r: &'a Recognition) -> Answer<'a> {
    Answer {
        path,
        label: r.label.as_deref(),
        confidence: r.confidence,
        taught: r.taught,
        top: r.top.iter().map(|(label, probability)| Candidate { label, probability: *probability }).collect(),
        info: r.info.as_ref(),
    }
}

/// The photo's line of the table, and a second line with the fruit's facts.
fn table_rows(path: &str, r: &Recognition) -> String {
    let answer = match (&r.label, r.taught) {
        (Some(label), true) => format!("{label} (taught)"),
        (Some(label), false) => label.clone(),
        (None, _) => "unknown".into(),
    };
    let top: Vec<String> = r.top.iter().map(|(l, p)| format!("{l} {:.0}%", p * 100.0)).collect();
    let mut out = format!("{path:<40} {answer:<14} {:>9.1}%  {}\n", r.confidence * 100.0, top.join(", "));
    if let Some(i) = &r.info {
        let n = &i.nutrition;
        out.push_str(&format!(
            "{:<40} {} / {} ({}), in season {}; per 100 g: {:.0} kcal, {:.1} g sugars, {:.1} g fibre, {:.1} mg vitamin C, {:.0} mg potassium\n",
            "", i.name_en, i.name_fr, i.family, i.season, n.energy_kcal, n.sugars_g, n.fiber_g, n.vitamin_c_mg, n.potassium_mg
        ));
    }
    out
}

/// A folder of this process's own under the system's temporary folder, removed on drop:
/// the storage of the client an `--artifact` is installed into.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Result<Scratch> {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let dir = std::env::temp_dir().join(format!("fruits-recognize-{}-{nanos}", std::process::id()));
        fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(Scratch(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}
