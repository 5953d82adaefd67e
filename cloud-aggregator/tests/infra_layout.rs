//! The IAM policies, the CloudFormation template and the PySpark driver cannot call
//! `fruits_formats::layout`: this test holds every storage path they name to it, and
//! checks that each role is granted what the code it runs writes and reads.

use fruits_formats::ModelId;
use fruits_formats::layout::{self, LATEST_FILE, PROJECTION_PREFIX};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::PathBuf;

fn deploy(path: &str) -> String {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(root.join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Every prefix of the data bucket the layout defines.
fn layout_prefixes() -> BTreeSet<&'static str> {
    BTreeSet::from([
        layout::INCOMING_PREFIX,
        layout::CODES_PREFIX,
        layout::MODELS_PREFIX,
        layout::PROJECTION_PREFIX,
        layout::QUARANTINE_PREFIX,
        layout::RUNS_PREFIX,
        layout::REPORTS_PREFIX,
    ])
}

/// Paths in the data bucket named after `marker` (`fruits-data-ACCOUNT/` in the policies,
/// `${DataBucket.Arn}/` in the template), up to the closing quote.
fn data_paths(text: &str, marker: &str) -> Vec<String> {
    text.match_indices(marker)
        .map(|(i, _)| {
            let rest = &text[i + marker.len()..];
            rest[..rest.find('"').expect("a quoted resource")].to_owned()
        })
        .collect()
}

/// The object paths of `s3:prefix` conditions (`["a/", "a/*"]` lists).
fn listed_prefixes(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (i, _) in text.match_indices("s3:prefix") {
        let rest = &text[i..];
        let list = &rest[rest.find('[').unwrap() + 1..rest.find(']').unwrap()];
        out.extend(list.split(',').map(|p| p.trim().trim_matches('"').to_owned()));
    }
    out
}

/// Every model's signed manifest, as an IAM resource pattern (`*` for the model).
fn every_latest() -> String {
    format!("{PROJECTION_PREFIX}*/{LATEST_FILE}")
}

/// A path is the whole bucket (`*`), a layout prefix (`<prefix>*` or `<prefix>`), or the
/// manifests' keys; "releases/" is the ops bucket's (the binary the nodes install).
fn assert_in_layout(path: &str, source: &str) {
    let prefixes = layout_prefixes();
    let prefix = path.strip_suffix('*').unwrap_or(path);
    let ok = path == "*" || path == every_latest() || prefixes.contains(prefix) || prefix == "releases/";
    assert!(ok, "{source} names {path:?}, which is not in fruits_formats::layout");
}

#[test]
fn policies_and_the_template_name_only_layout_paths() {
    for file in ["client-read", "emr-instance", "ingest", "operator"] {
        let source = format!("deploy/policies/{file}.json");
        let text = deploy(&source);
        let paths = data_paths(&text, "fruits-data-ACCOUNT/");
        assert!(!paths.is_empty() || file == "operator", "{source} names no data path");
        for path in paths.iter().chain(&listed_prefixes(&text)) {
            assert_in_layout(path, &source);
        }
    }
    let template = deploy("deploy/fruits.yaml");
    let paths = data_paths(&template, "${DataBucket.Arn}/");
    assert!(paths.len() > 5, "the template's data paths: {paths:?}");
    for path in paths.iter().chain(&listed_prefixes(&template)) {
        assert_in_layout(path, "deploy/fruits.yaml");
    }
}

/// The resources a policy grants `action` on, in the data bucket.
fn granted(policy: &str, action: &str) -> BTreeSet<String> {
    let policy: Value = serde_json::from_str(&deploy(&format!("deploy/policies/{policy}.json"))).unwrap();
    let mut out = BTreeSet::new();
    for statement in policy["Statement"].as_array().unwrap() {
        let actions = match &statement["Action"] {
            Value::String(a) => vec![a.clone()],
            Value::Array(a) => a.iter().map(|a| a.as_str().unwrap().to_owned()).collect(),
            _ => Vec::new(),
        };
        if !actions.iter().any(|a| a == action) {
            continue;
        }
        let resources = match &statement["Resource"] {
            Value::String(r) => vec![r.clone()],
            Value::Array(r) => r.iter().map(|r| r.as_str().unwrap().to_owned()).collect(),
            _ => Vec::new(),
        };
        out.extend(
            resources.iter().filter_map(|r| r.strip_prefix("arn:aws:s3:::fruits-data-ACCOUNT/")).map(str::to_owned),
        );
    }
    out
}

fn all_of(prefix: &str) -> String {
    format!("{prefix}*")
}

#[test]
fn each_role_may_do_what_its_code_does_and_no_more() {
    // Ingest writes shards, embeddings and codes, and nothing else.
    assert_eq!(
        granted("ingest", "s3:PutObject"),
        BTreeSet::from([all_of(layout::INCOMING_PREFIX), all_of(layout::CODES_PREFIX)])
    );
    assert!(granted("ingest", "s3:GetObject").is_empty());
    // The aggregator reads shards and each model's manifest (to number its next version), keeps
    // its run state, and writes quarantined copies, publications and reports.
    assert_eq!(
        granted("emr-instance", "s3:GetObject"),
        BTreeSet::from([all_of(layout::INCOMING_PREFIX), all_of(layout::RUNS_PREFIX), every_latest()])
    );
    assert_eq!(
        granted("emr-instance", "s3:PutObject"),
        BTreeSet::from([
            all_of(layout::QUARANTINE_PREFIX),
            all_of(layout::MODELS_PREFIX),
            all_of(layout::REPORTS_PREFIX),
            all_of(layout::RUNS_PREFIX)
        ])
    );
    // What phones are served, through ingest's model reader.
    assert_eq!(granted("client-read", "s3:GetObject"), BTreeSet::from([all_of(layout::MODELS_PREFIX)]));
    let model = ModelId([7; 32]);
    assert!(
        layout::latest_key(&model) == every_latest().replace('*', &model.to_string())
            && layout::projection_key(&model, 1).starts_with(layout::MODELS_PREFIX)
    );
}

#[test]
fn the_spark_driver_keeps_its_sketches_where_the_layout_says() {
    let driver = deploy("emr/driver.py");
    // The driver formats the run id into the very prefix the layout builds.
    let prefix = layout::run_sketches_prefix("{args.run_id}");
    assert!(driver.contains(&format!("f\"{{output}}{prefix}\"")), "driver.py does not build {prefix:?}");
    assert!(driver.contains(&format!("lists `{}` shards", layout::INCOMING_PREFIX)));
}
