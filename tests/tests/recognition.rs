//! Fruit recognition end to end on the tuxpaint-derived set, the default tier's sibling of
//! `bench/recognition` (fewer views, the same code): `fruits dataset build` (plain and
//! phone-like views) -> MobileNetV2 embeddings -> labelled shards from 4 phones, each
//! with its own photos -> `aggregator run` (PCA + recognition head calibrated on the
//! phones it never trained on) -> the phone's `Recognizer` on held-out views, on new
//! phone-like renders of the training photos, on things that are not fruit and with a
//! taught class -> `aggregator report`.
//!
//! Every test shares one fixture (the data set is embedded once per process).

use std::path::Path;
use std::sync::OnceLock;

use fruits_aggregator::pipeline::PublishOptions;
use fruits_aggregator::run::{RunOptions, run};
use fruits_aggregator::storage::{LocalDir, Storage};
use fruits_core::recognizer::Recognizer;
use fruits_core::taught::TaughtClasses;
use fruits_core::{Embedder, EmbedderOptions};
use fruits_e2e::repo_root;
use fruits_formats::{Encoding, ModelId, ProjectionArtifact, Shard, ShardHeader, layout};
use fruits_head::{self as head, HeadOptions, HeadTraining, LabelledSet};
use fruits_pca::eigen::Solver;
use fruits_sim::dataset::augment::Families;
use fruits_sim::dataset::{self, BuildOptions, LabelledImage, plan::Side};
use fruits_sim::measure::{self, ViewSet};

/// Views per training photo, of each kind (the bench renders 40 of each).
const VIEWS: u32 = 10;
/// Components of the projection (the demo publishes 192).
const K: u32 = 64;

/// Embeddings of a set of images, with their classes.
struct Embedded {
    classes: Vec<String>,
    paths: Vec<std::path::PathBuf>,
    rows: Vec<Vec<f32>>,
}

struct Fixture {
    _tmp: tempfile::TempDir,
    store: LocalDir,
    /// The projection published at `K`, with its head.
    artifact: ProjectionArtifact,
    /// What the run reported.
    run: fruits_aggregator::run::Report,
    train: Embedded,
    test: Embedded,
    /// New phone-like renders of every training photo (seeds training never uses).
    hard: Embedded,
    /// Views of vegetables and other things (not fruit).
    not_fruit: Embedded,
    /// Phone-like views of the vegetables, for teaching.
    teach: Embedded,
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

/// Simulated phones: each photo's views come from one of them, so that the head is
/// calibrated on photos it never trained on.
const PHONES: usize = 4;

/// The phone that took `photo`: photos dealt round-robin in name order.
fn phone_of(photo: &str, photos: &[String]) -> String {
    format!("phone-{}", photos.binary_search_by(|p| p.as_str().cmp(photo)).unwrap() % PHONES)
}

fn labelled_shard(model: ModelId, device: &str, set: &Embedded, batch: usize, rows: &[usize]) -> Shard {
    let mut vocabulary: Vec<String> = rows.iter().map(|&i| set.classes[i].clone()).collect();
    vocabulary.sort();
    vocabulary.dedup();
    let labels = rows.iter().map(|&i| vocabulary.binary_search(&set.classes[i]).unwrap() as u16).collect();
    let header = ShardHeader {
        model_id: model,
        dim: 1280,
        rows: rows.len() as u32,
        encoding: Encoding::F32,
        device_id: device.into(),
        batch_id: format!("b{batch:04}"),
        created_unix_ms: 0,
        label_vocabulary: vocabulary,
    };
    Shard::new(header, rows.iter().flat_map(|&i| set.rows[i].iter().copied()).collect(), Some(labels)).unwrap()
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

/// Embeds views rendered in memory, labelled with their photo's class.
fn embed_rendered(
    embedder: &Embedder,
    photos: &[measure::SourcePhoto],
    set: &ViewSet,
    clutter: &[image::RgbaImage],
) -> Embedded {
    let named: Vec<(&str, &image::RgbaImage)> = photos.iter().map(|p| (p.name.as_str(), &p.image)).collect();
    let views = measure::render(&named, set, clutter).unwrap();
    let rows = std::thread::scope(|s| {
        let halves: Vec<_> = views
            .chunks(views.len().div_ceil(2).max(1))
            .map(|chunk| s.spawn(move || chunk.iter().map(|v| embedder.embed(&v.jpeg).unwrap()).collect::<Vec<_>>()))
            .collect();
        halves.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    Embedded {
        classes: views.iter().map(|v| photos[v.photo].class.clone()).collect(),
        paths: views.iter().map(|v| format!("{}_{}", photos[v.photo].name, v.phone).into()).collect(),
        rows,
    }
}

fn view_set(plain: u32, phone: u32, purpose: &str) -> ViewSet<'_> {
    ViewSet { plain, phone, purpose, families: Families::all(), plain_size: 100, phone_size: 224 }
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        // The fixture lives as long as the process (statics are never dropped): only
        // the store is kept on disk, the rendered views are removed once embedded.
        let tmp = tempfile::tempdir().unwrap();
        let views = tempfile::tempdir().unwrap();
        let root = repo_root();
        let data = root.join("data/tuxpaint");
        let options = BuildOptions {
            views: VIEWS,
            phone_views: VIEWS,
            clutter: Some(data.join("clutter")),
            ..BuildOptions::default()
        };
        let images = dataset::build(&data.join("fruit"), &views.path().join("fruit"), &options)
            .unwrap_or_else(|e| panic!("{e}: run scripts/setup.sh (it fetches data/tuxpaint)"));
        let embedder = Embedder::from_manifest_path(
            &root.join("models/mobilenetv2-1.0-224-embed.json"),
            EmbedderOptions::default(),
        )
        .unwrap();
        let (train, test): (Vec<LabelledImage>, Vec<LabelledImage>) =
            images.into_iter().partition(|i| i.side == Side::Training);
        let (train, test) = (embed(&embedder, &train), embed(&embedder, &test));
        let fruit = measure::fruit_photos(&data.join("fruit")).unwrap();
        let clutter = measure::photo_cutouts(&data.join("clutter")).unwrap();
        let hard = embed_rendered(&embedder, &fruit, &view_set(0, 4, "hard-test"), &clutter);
        let others: Vec<measure::SourcePhoto> = ["vegetables", "objects"]
            .iter()
            .flat_map(|folder| {
                measure::photo_cutouts(&data.join(folder)).unwrap().into_iter().map(move |image| (folder, image))
            })
            .enumerate()
            .map(|(i, (folder, image))| measure::SourcePhoto {
                name: format!("{folder}-{i}"),
                class: folder.to_string(),
                image,
            })
            .collect();
        let not_fruit = embed_rendered(&embedder, &others, &view_set(1, 1, "not-fruit"), &clutter);
        let vegetables: Vec<measure::SourcePhoto> =
            others.iter().filter(|o| o.class == "vegetables").cloned().collect();
        let teach = embed_rendered(&embedder, &vegetables, &view_set(0, 4, "teach"), &clutter);
        let model: ModelId = embedder.model_id().parse().unwrap();
        let store = LocalDir::new(tmp.path().join("store"));
        let mut photos: Vec<String> = train.paths.iter().map(|p| photo_of(p)).collect();
        photos.sort();
        photos.dedup();
        for phone in 0..PHONES {
            let device = format!("phone-{phone}");
            let rows: Vec<usize> =
                (0..train.rows.len()).filter(|&i| phone_of(&photo_of(&train.paths[i]), &photos) == device).collect();
            for (batch, chunk) in rows.chunks(64).enumerate() {
                let shard = labelled_shard(model, &device, &train, batch, chunk);
                store.put(&layout::incoming_key(&device, &format!("b{batch:04}")), &shard.encode().unwrap()).unwrap();
            }
        }
        let run = aggregate(&store, model, K, "at-k");
        assert_eq!(run.head_skipped, None);
        let key = &run.published.as_ref().unwrap().manifest.key;
        let artifact = ProjectionArtifact::decode(&store.get(key).unwrap()).unwrap();
        eprintln!(
            "{} training, {} test, {} hard, {} not-fruit views; k = {K}",
            train.rows.len(),
            test.rows.len(),
            hard.rows.len(),
            not_fruit.rows.len()
        );
        Fixture { _tmp: tmp, store, artifact, run, train, test, hard, not_fruit, teach }
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

fn rate((ok, n): (usize, usize)) -> f64 {
    ok as f64 / n.max(1) as f64
}

/// Two measurements on `Test/`: held-out views (plain and phone-like) of photos the head
/// was trained on, and views of photos held out whole (a class with several photos keeps
/// one apart), which `bench/recognition` measures in full (leave-one-photo-out): with one
/// or two training photos per class, an unseen photo of another variety (a Seville
/// orange, a halved apricot) is often taken for another fruit. The floors below guard
/// against regressions, from this fixture's figures (`-- --nocapture` prints them).
#[test]
fn held_out_views_are_recognised() {
    let f = fixture();
    assert_eq!(f.artifact.k, K);
    let r = recognizer();
    let trained_on: std::collections::HashSet<String> = f.train.paths.iter().map(|p| photo_of(p)).collect();
    let (mut seen, mut unseen) = ((0, 0), (0, 0));
    for ((row, class), path) in f.test.rows.iter().zip(&f.test.classes).zip(&f.test.paths) {
        let answer = r.recognize(row).unwrap();
        let tally = if trained_on.contains(&photo_of(path)) { &mut seen } else { &mut unseen };
        tally.0 += usize::from(answer.top[0].0 == *class);
        tally.1 += 1;
    }
    let overall = rate((seen.0 + unseen.0, seen.1 + unseen.1));
    eprintln!(
        "top-1 at k = {K}: {:.2}% on {} held-out views of training photos, {:.2}% on {} views of held-out photos, {:.2}% overall",
        rate(seen) * 100.0,
        seen.1,
        rate(unseen) * 100.0,
        unseen.1,
        overall * 100.0
    );
    assert!(seen.1 >= 40 && unseen.1 >= 10, "{seen:?} {unseen:?}");
    // Measured 2026-12-04: 82.5% of 63 and 62.5% of 16.
    assert!(rate(seen) >= 0.75, "held-out views of training photos: {seen:?}");
    assert!(rate(unseen) >= 0.3, "views of held-out photos: {unseen:?}");
    // The catalogue travels with the head: the first Apple view answered "Apple" (one exists,
    // given the accuracy above) carries the apple's entry.
    let apple = (0..f.test.rows.len())
        .filter(|&i| f.test.classes[i] == "Apple")
        .map(|i| r.recognize(&f.test.rows[i]).unwrap())
        .find(|answer| answer.label.as_deref() == Some("Apple"))
        .expect("an Apple view recognised as Apple");
    assert_eq!(apple.info.expect("a catalogue entry").name_fr, "Pomme");
}

/// New phone-like renders (clutter, fingers, blur, tilt, JPEG 30-95) of the training photos,
/// with seeds training never uses.
#[test]
fn hard_views_of_the_training_photos_are_recognised() {
    let f = fixture();
    let r = recognizer();
    let right =
        f.hard.rows.iter().zip(&f.hard.classes).filter(|(row, c)| r.recognize(row).unwrap().top[0].0 == **c).count();
    eprintln!("hard views: top-1 {:.1}% of {}", rate((right, f.hard.rows.len())) * 100.0, f.hard.rows.len());
    // Measured 2026-12-04: 77.9% of 104 (the bench, trained on 4x the views: 90.2%).
    assert!(rate((right, f.hard.rows.len())) >= 0.7, "{right} of {}", f.hard.rows.len());
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

/// On this small fixture (377 training views) the full head, with 20 times the inputs of
/// the k = 64 one, fits them a little worse (measured 2026-12-04: 73.8% against 78.1%);
/// the bench, on 2,080 views and k = 192, holds the two within a point. This guards
/// against the two drifting apart.
#[test]
fn the_full_1280_d_head_and_the_projected_head_agree_within_six_points() {
    let f = fixture();
    let mut photos: Vec<String> = f.train.paths.iter().map(|p| photo_of(p)).collect();
    photos.sort();
    photos.dedup();
    let mut set = LabelledSet::new(1280);
    for ((row, class), path) in f.train.rows.iter().zip(&f.train.classes).zip(&f.train.paths) {
        set.push(row, class, &phone_of(&photo_of(path), &photos));
    }
    let full = head::train(&head::embedding_features(&set), &HeadOptions::default()).unwrap().head;
    let projected = f.artifact.head.as_ref().unwrap();
    // The full head reads centred embeddings, as the projected one reads centred codes.
    let centred = |row: &[f32]| row.iter().zip(&f.artifact.mean).map(|(x, m)| x - m).collect();
    let mut rows = f.test.rows.clone();
    rows.extend(f.hard.rows.iter().cloned());
    let mut classes = f.test.classes.clone();
    classes.extend(f.hard.classes.iter().cloned());
    let full_accuracy = accuracy_of(&full, &rows, &classes, centred);
    let projected_accuracy = accuracy_of(projected, &rows, &classes, |row| f.artifact.project(row).unwrap());
    eprintln!(
        "held-out and hard views, top-1: full 1280-d head {:.2}%, k = {K} head {:.2}% ({} views)",
        full_accuracy * 100.0,
        projected_accuracy * 100.0,
        rows.len()
    );
    assert!((full_accuracy - projected_accuracy).abs() <= 0.06, "{full_accuracy} vs {projected_accuracy}");
}

/// Vegetables and other things: mostly "unknown"; the fruit answers given stay right.
#[test]
fn things_that_are_not_fruit_mostly_come_back_unknown() {
    let f = fixture();
    let r = recognizer();
    let answers: Vec<_> = f.not_fruit.rows.iter().map(|row| r.recognize(row).unwrap()).collect();
    let unknown = answers.iter().filter(|a| a.label.is_none()).count();
    let fruit: Vec<_> = f.hard.rows.iter().map(|row| r.recognize(row).unwrap()).collect();
    let given = fruit.iter().filter(|a| a.label.is_some()).count();
    let right = fruit.iter().zip(&f.hard.classes).filter(|(a, c)| a.label.as_deref() == Some(c.as_str())).count();
    eprintln!(
        "not fruit: {:.1}% unknown ({} views); hard fruit views: {:.1}% answered, {:.1}% of the answers right",
        rate((unknown, answers.len())) * 100.0,
        answers.len(),
        rate((given, fruit.len())) * 100.0,
        rate((right, given)) * 100.0
    );
    // Measured 2026-12-04: 100% of 442 unknown; 16 hard views answered, all right.
    assert!(rate((unknown, answers.len())) >= 0.9, "{unknown} of {}", answers.len());
    assert!(given >= 5 && rate((right, given)) >= 0.9, "{right} of {given}");
}

/// A vegetable the head never saw, taught with 4 phone-like photos: other views of it
/// come back as the taught class.
#[test]
fn a_taught_class_is_recognised_on_new_views() {
    let f = fixture();
    let r = recognizer();
    let (mut right, mut total) = (0, 0);
    for vegetable in f.teach.paths.iter().map(|p| photo_of(p)).collect::<std::collections::BTreeSet<_>>() {
        let of = |set: &Embedded| -> Vec<Vec<f32>> {
            set.rows.iter().zip(&set.paths).filter(|(_, p)| photo_of(p) == vegetable).map(|(r, _)| r.clone()).collect()
        };
        let mut taught = TaughtClasses::new(1280);
        of(&f.teach).iter().for_each(|row| {
            taught.teach("Taught", row).unwrap();
        });
        let with = r.with_taught(&taught).unwrap();
        for row in of(&f.not_fruit) {
            right += usize::from(with.recognize(&row).unwrap().top[0].0 == "Taught");
            total += 1;
        }
    }
    eprintln!("taught vegetables: top-1 {:.1}% of {total} new views", rate((right, total)) * 100.0);
    // Measured 2026-12-04: 77.8% of 36.
    assert!(total >= 20 && rate((right, total)) >= 0.6, "{right} of {total}");
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
    let written =
        fruits_aggregator::report::write(&f.store, &f.store, "test", None, font, &HeadOptions::default()).unwrap();
    assert_eq!(written.keys.len(), 5);
    for name in ["pca_3d", "variance", "accuracy"] {
        let png = image::load_from_memory(&f.store.get(&layout::report_key("test", &format!("{name}.png"))).unwrap())
            .unwrap();
        assert!(png.width() >= 800 && png.height() >= 400, "{name}");
    }
    let html = String::from_utf8(f.store.get(&layout::report_key("test", "index.html")).unwrap()).unwrap();
    assert_eq!(unbalanced_tags(&html), Vec::<String>::new());
    assert!(!html.contains("http://") && !html.contains("https://"), "self-contained");
    let start = html.find("id=\"report-data\">").unwrap() + "id=\"report-data\">".len();
    let inline: serde_json::Value =
        serde_json::from_str(&html[start..start + html[start..].find("</script>").unwrap()]).unwrap();
    let json: serde_json::Value =
        serde_json::from_slice(&f.store.get(&layout::report_key("test", "report.json")).unwrap()).unwrap();
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
    let run_k95 = f.run.components_for.iter().find(|t| t.share == 0.95).unwrap().components;
    assert_eq!(k95["components"], run_k95);
    let calibration = &json["head"]["calibration"];
    assert_eq!(calibration["calibration"], "held_out_devices", "{calibration}");
    let ece = calibration["heldout_ece"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&ece) && calibration["folds"] == 4, "{calibration}");
    assert!(json["accuracy"].as_array().unwrap().iter().any(|a| a["full"] == true && a["k"] == 1280));
    // The page as a person sees it: in a real browser (headless Chromium, set up by
    // scripts/setup.sh), the scatter is drawn, turns when dragged, hides a fruit clicked in
    // its legend, and logs no error.
    let page = f._tmp.path().join("store").join(layout::report_key("test", "index.html"));
    let browser = std::process::Command::new("python3")
        .arg(repo_root().join("cloud-aggregator/tests/py/report_in_browser.py"))
        .arg(&page)
        .output()
        .expect("python3 (scripts/setup.sh installs selenium, chromium and chromium-driver)");
    eprintln!("{}{}", String::from_utf8_lossy(&browser.stdout), String::from_utf8_lossy(&browser.stderr));
    assert!(browser.status.success(), "the report's page in Chromium");
    assert!(Path::new(&written.keys[0]).ends_with("pca_3d.png"));
}
