//! Fruit recognition end to end on the tuxpaint-derived set (issue 7):
//! `fruits dataset build` -> MobileNetV2 embeddings -> labelled shards ->
//! `aggregator run` (PCA + recognition head, twice: to find the k for 95% of the
//! variance, then at that k) -> the phone's `Recognizer` on held-out views and on
//! vegetables -> `aggregator report`.
//!
//! Every test shares one fixture (the data set is embedded once per process).

use std::path::Path;
use std::sync::OnceLock;

use fruits_aggregator::head::{self, HeadOptions, HeadTraining, LabelledSet};
use fruits_aggregator::pipeline::PublishOptions;
use fruits_aggregator::run::{RunOptions, run};
use fruits_aggregator::storage::{LocalDir, Storage};
use fruits_core::recognizer::Recognizer;
use fruits_core::{Embedder, EmbedderOptions};
use fruits_e2e::repo_root;
use fruits_formats::{Encoding, ModelId, ProjectionArtifact, Shard, ShardHeader, layout};
use fruits_pca::eigen::Solver;
use fruits_sim::dataset::{self, BuildOptions, LabelledImage, plan::Side};

/// Embeddings of a set of images, with their classes.
struct Embedded {
    classes: Vec<String>,
    paths: Vec<std::path::PathBuf>,
    rows: Vec<Vec<f32>>,
}

struct Fixture {
    _tmp: tempfile::TempDir,
    store: LocalDir,
    /// The projection published at the k keeping 95% of the variance, with its head.
    artifact: ProjectionArtifact,
    k95: u32,
    train: Embedded,
    test: Embedded,
    vegetables: Embedded,
}

fn embed(embedder: &Embedder, images: &[LabelledImage]) -> Embedded {
    let rows: Vec<Vec<f32>> = std::thread::scope(|s| {
        let halves: Vec<_> = images
            .chunks(images.len().div_ceil(2).max(1))
            .map(|chunk| {
                s.spawn(move || {
                    chunk.iter().map(|i| embedder.embed(&std::fs::read(&i.path).unwrap()).unwrap()).collect::<Vec<_>>()
                })
            })
            .collect();
        halves.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    Embedded {
        classes: images.iter().map(|i| i.class.clone()).collect(),
        paths: images.iter().map(|i| i.path.clone()).collect(),
        rows,
    }
}

fn labelled_shard(model: ModelId, set: &Embedded, batch: usize, rows: std::ops::Range<usize>) -> Shard {
    let mut vocabulary: Vec<String> = set.classes[rows.clone()].to_vec();
    vocabulary.sort();
    vocabulary.dedup();
    let labels = set.classes[rows.clone()].iter().map(|c| vocabulary.binary_search(c).unwrap() as u16).collect();
    let header = ShardHeader {
        model_id: model,
        dim: 1280,
        rows: rows.len() as u32,
        encoding: Encoding::F32,
        device_id: "test-phone".into(),
        batch_id: format!("b{batch:04}"),
        created_unix_ms: 0,
        label_vocabulary: vocabulary,
    };
    Shard::new(header, set.rows[rows].concat(), Some(labels)).unwrap()
}

fn aggregate(store: &LocalDir, model: ModelId, k: u32, run_id: &str) -> fruits_aggregator::run::Report {
    let opts = RunOptions {
        input_prefix: layout::INCOMING_PREFIX.into(),
        model_id: Some(model),
        run_id: run_id.into(),
        publish: PublishOptions {
            k,
            solver: Solver::Randomized { seed: 0 },
            head: Some(HeadTraining {
                options: HeadOptions::default(),
                catalogue: fruits_aggregator::catalogue::bundled().unwrap(),
            }),
            signing_key: None,
            created_unix_ms: 1,
        },
    };
    run(store, store, &opts, &indicatif::ProgressBar::hidden()).unwrap()
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        // The fixture lives as long as the process (statics are never dropped): only
        // the store is kept on disk, the rendered views are removed once embedded.
        let tmp = tempfile::tempdir().unwrap();
        let views = tempfile::tempdir().unwrap();
        let root = repo_root();
        let images =
            dataset::build(&root.join("data/tuxpaint/fruit"), &views.path().join("fruit"), &BuildOptions::default())
                .unwrap_or_else(|e| panic!("{e}: run scripts/setup.sh (it fetches data/tuxpaint)"));
        let vegetables_opts = BuildOptions { views: 3, test_percent: 0, size: 100 };
        let vegetables =
            dataset::build(&root.join("data/tuxpaint/vegetables"), &views.path().join("veg"), &vegetables_opts)
                .unwrap();
        let embedder = Embedder::from_manifest_path(
            &root.join("models/mobilenetv2-1.0-224-embed.json"),
            EmbedderOptions::default(),
        )
        .unwrap();
        let (train, test): (Vec<LabelledImage>, Vec<LabelledImage>) =
            images.into_iter().partition(|i| i.side == Side::Training);
        let (train, test, vegetables) =
            (embed(&embedder, &train), embed(&embedder, &test), embed(&embedder, &vegetables));
        let model: ModelId = embedder.model_id().parse().unwrap();
        let store = LocalDir::new(tmp.path().join("store"));
        for (batch, start) in (0..train.rows.len()).step_by(64).enumerate() {
            let shard = labelled_shard(model, &train, batch, start..(start + 64).min(train.rows.len()));
            store
                .put(
                    &fruits_formats::layout::incoming_key("test-phone", &format!("b{batch:04}")),
                    &shard.encode().unwrap(),
                )
                .unwrap();
        }
        let first = aggregate(&store, model, 256, "first");
        let k95 = first.components_for.iter().find(|t| t.share == 0.95).unwrap().components;
        assert!(k95 <= 256, "k95 = {k95}");
        let second = aggregate(&store, model, k95, "at-k95");
        assert_eq!(second.head_skipped, None);
        let key = &second.published.as_ref().unwrap().manifest.key;
        let artifact = ProjectionArtifact::decode(&store.get(key).unwrap()).unwrap();
        eprintln!(
            "{} training, {} test, {} vegetable views; k95 = {k95}",
            train.rows.len(),
            test.rows.len(),
            vegetables.rows.len()
        );
        Fixture { _tmp: tmp, store, artifact, k95, train, test, vegetables }
    })
}

fn recognizer() -> Recognizer {
    Recognizer::from_artifact(&fixture().artifact).expect("the published artifact has a head")
}

/// The photo a view was rendered from: `<stem>_<view>.jpg` -> `<stem>`.
fn photo_of(view: &Path) -> String {
    let stem = view.file_stem().unwrap().to_string_lossy();
    stem.rsplit_once('_').map_or(stem.to_string(), |(photo, _)| photo.to_string())
}

/// Two measurements on `Test/`: held-out views of photos the head was trained on
/// (the Fruits-360 protocol; the issue's bar of 95% is asserted there), and views of
/// photos held out whole (a class with several photos keeps one apart). The second
/// is reported, not held to 95%: with one or two training photos per class, an
/// unseen photo of a different variety (a Seville orange, a halved apricot) is
/// often taken for another fruit. Measured 2026-11-24: 99.1% (116 views) and 43.8%
/// (32 views), 87.2% overall; the floor below guards against regressions.
#[test]
fn held_out_views_are_recognised_at_the_k_keeping_95_percent_of_the_variance() {
    let f = fixture();
    assert_eq!(f.artifact.k, f.k95);
    let r = recognizer();
    let trained_on: std::collections::HashSet<String> = f.train.paths.iter().map(|p| photo_of(p)).collect();
    let (mut seen, mut unseen) = ((0, 0), (0, 0));
    for ((row, class), path) in f.test.rows.iter().zip(&f.test.classes).zip(&f.test.paths) {
        let answer = r.recognize(row).unwrap();
        let tally = if trained_on.contains(&photo_of(path)) { &mut seen } else { &mut unseen };
        tally.0 += usize::from(answer.top[0].0 == *class);
        tally.1 += 1;
        if answer.top[0].0 != *class {
            eprintln!("  {} ({class}) taken for {} at {:.2}", path.display(), answer.top[0].0, answer.confidence);
        }
    }
    let rate = |(ok, n): (usize, usize)| ok as f64 / n.max(1) as f64;
    let overall = rate((seen.0 + unseen.0, seen.1 + unseen.1));
    eprintln!(
        "top-1 at k = {}: {:.2}% on {} held-out views of training photos, {:.2}% on {} views of held-out photos, {:.2}% overall",
        f.k95,
        rate(seen) * 100.0,
        seen.1,
        rate(unseen) * 100.0,
        unseen.1,
        overall * 100.0
    );
    assert!(seen.1 >= 100 && unseen.1 >= 20, "{seen:?} {unseen:?}");
    assert!(rate(seen) >= 0.95, "held-out views of training photos: {seen:?}");
    assert!(overall >= 0.85, "whole Test/ split: {overall}");
    // The catalogue travels with the head: the first Apple view answered "Apple" (one exists,
    // given the accuracy above) carries the apple's entry.
    let apple = (0..f.test.rows.len())
        .filter(|&i| f.test.classes[i] == "Apple")
        .map(|i| r.recognize(&f.test.rows[i]).unwrap())
        .find(|answer| answer.label.as_deref() == Some("Apple"))
        .expect("an Apple view recognised as Apple");
    assert_eq!(apple.info.expect("a catalogue entry").name_fr, "Pomme");
}

/// Top-1 accuracy of `head` on `rows` mapped through `features`.
fn accuracy_of(
    head: &fruits_formats::RecognitionHead,
    rows: &[Vec<f32>],
    classes: &[String],
    features: impl Fn(&[f32]) -> Vec<f32>,
) -> f64 {
    let correct = rows
        .iter()
        .zip(classes)
        .filter(|(row, class)| head.classes[head.predict(&features(row)).unwrap().best] == **class)
        .count();
    correct as f64 / rows.len() as f64
}

#[test]
fn the_full_1280_d_head_and_the_projected_head_agree_within_one_point() {
    let f = fixture();
    let mut set = LabelledSet::new(1280);
    f.train.rows.iter().zip(&f.train.classes).for_each(|(row, class)| set.push(row, class));
    let options = HeadOptions::default();
    let heldout = head::heldout_mask(set.rows(), 1280, options.heldout_percent);
    let full = head::train(set.rows(), 1280, set.labels(), set.classes(), &heldout, &options).unwrap().head;
    let projected = f.artifact.head.as_ref().unwrap();
    let full_accuracy = accuracy_of(&full, &f.test.rows, &f.test.classes, <[f32]>::to_vec);
    let projected_accuracy =
        accuracy_of(projected, &f.test.rows, &f.test.classes, |row| f.artifact.project(row).unwrap());
    eprintln!(
        "held-out top-1: full 1280-d head {:.2}%, k = {} head {:.2}%",
        full_accuracy * 100.0,
        f.k95,
        projected_accuracy * 100.0
    );
    assert!((full_accuracy - projected_accuracy).abs() <= 0.01, "{full_accuracy} vs {projected_accuracy}");
}

#[test]
fn vegetables_mostly_come_back_unknown_or_unsure() {
    let f = fixture();
    let r = recognizer();
    let answers: Vec<_> = f.vegetables.rows.iter().map(|row| r.recognize(row).unwrap()).collect();
    let unknown = answers.iter().filter(|a| a.label.is_none()).count();
    let unsure = answers.iter().filter(|a| a.label.is_none() || a.confidence < 0.5).count();
    let n = answers.len() as f64;
    eprintln!(
        "vegetables: {:.1}% unknown, {:.1}% unknown or below 50% confidence ({} photos)",
        100.0 * unknown as f64 / n,
        100.0 * unsure as f64 / n,
        answers.len()
    );
    assert!(unsure as f64 / n > 0.5, "{unsure} of {n}");
}

/// Start tags that are still open where an end tag or the end of the page says
/// they should be closed; void elements need no end tag.
fn unbalanced_tags(html: &str) -> Vec<String> {
    const VOID: [&str; 6] = ["meta", "img", "br", "hr", "input", "link"];
    let mut open: Vec<String> = Vec::new();
    let mut problems = Vec::new();
    let mut rest = html;
    while let Some(at) = rest.find('<') {
        rest = &rest[at + 1..];
        let end = rest.find('>').unwrap_or(rest.len());
        let tag = &rest[..end];
        if tag.starts_with('!') {
            continue;
        }
        let name: String = tag.trim_start_matches('/').chars().take_while(|c| c.is_ascii_alphanumeric()).collect();
        if tag.starts_with('/') {
            if open.pop().as_deref() != Some(name.as_str()) {
                problems.push(format!("</{name}>"));
            }
        } else if name == "script" {
            // Script bodies are not markup: skip to the end tag.
            let close = rest.find("</script>").expect("script closed");
            rest = &rest[close + "</script>".len()..];
        } else if !VOID.contains(&name.as_str()) {
            open.push(name);
        }
    }
    problems.extend(open);
    problems
}

#[test]
fn the_report_files_are_valid_and_agree_with_the_artifact() {
    let f = fixture();
    let font = std::fs::read(fruits_aggregator::report::DEBIAN_FONT).expect("fonts-dejavu-core (scripts/setup.sh)");
    let written = fruits_aggregator::report::write(&f.store, &f.store, "test", font, &HeadOptions::default()).unwrap();
    assert_eq!(written.keys.len(), 5);
    for name in ["pca_3d", "variance", "accuracy"] {
        let png = image::load_from_memory(&f.store.get(&format!("reports/test/{name}.png")).unwrap()).unwrap();
        assert!(png.width() >= 800 && png.height() >= 400, "{name}");
    }
    let html = String::from_utf8(f.store.get("reports/test/index.html").unwrap()).unwrap();
    assert_eq!(unbalanced_tags(&html), Vec::<String>::new());
    assert!(!html.contains("http://") && !html.contains("https://"), "self-contained");
    let start = html.find("id=\"report-data\">").unwrap() + "id=\"report-data\">".len();
    let inline: serde_json::Value =
        serde_json::from_str(&html[start..start + html[start..].find("</script>").unwrap()]).unwrap();
    let json: serde_json::Value = serde_json::from_slice(&f.store.get("reports/test/report.json").unwrap()).unwrap();
    assert_eq!(inline, json);
    let a = &f.artifact;
    assert_eq!(json["projection_version"], a.version);
    assert_eq!(json["k"], a.k);
    assert_eq!(json["points"].as_array().unwrap().len(), f.train.rows.len());
    let scree = json["scree"].as_array().unwrap();
    assert_eq!(scree.len(), a.k as usize);
    for (s, r) in scree.iter().zip(&a.explained_variance_ratio) {
        assert!((s["ratio"].as_f64().unwrap() - r).abs() <= 1e-12 * r.abs(), "{s} vs {r}");
    }
    let head = a.head.as_ref().unwrap();
    assert!((json["head"]["temperature"].as_f64().unwrap() - f64::from(head.temperature)).abs() < 1e-6);
    assert!((json["head"]["unknown_threshold"].as_f64().unwrap() - f64::from(head.unknown_threshold)).abs() < 1e-6);
    let k95 = json["components_for"].as_array().unwrap().iter().find(|t| t["share"] == 0.95).unwrap();
    assert_eq!(k95["components"], f.k95);
    assert!(json["accuracy"].as_array().unwrap().iter().any(|a| a["full"] == true && a["k"] == 1280));
    assert!(Path::new(&written.keys[0]).ends_with("pca_3d.png"));
}
