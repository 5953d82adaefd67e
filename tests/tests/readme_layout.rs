//! The README's layout table lists every workspace member, in its folder, under its
//! package name, and says first what its `Cargo.toml` description says.

use fruits_e2e::repo_root;
use std::collections::BTreeMap;

/// `(folder/, package)` -> description, from `cargo metadata`.
fn members() -> BTreeMap<(String, String), String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = std::process::Command::new(cargo)
        .args(["metadata", "--no-deps", "--format-version", "1", "--offline"])
        .current_dir(repo_root())
        .output()
        .expect("cargo metadata runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let metadata: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let root = repo_root();
    metadata["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let manifest = std::path::Path::new(p["manifest_path"].as_str().unwrap());
            let folder = manifest.parent().unwrap().strip_prefix(&root).unwrap().display().to_string();
            let description = p["description"].as_str().unwrap_or_else(|| panic!("{folder}: no description"));
            ((format!("{folder}/"), p["name"].as_str().unwrap().to_owned()), description.to_owned())
        })
        .collect()
}

/// The rows of the table under `## Layout` that name a package: `(folder, package)` -> text.
fn readme_rows() -> BTreeMap<(String, String), String> {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    let section = &readme[readme.find("## Layout").expect("a Layout section")..];
    let section = &section[..section[3..].find("\n## ").map_or(section.len(), |i| i + 3)];
    section
        .lines()
        .filter(|l| l.starts_with("| `"))
        .filter_map(|l| {
            let cells: Vec<&str> = l.trim().trim_matches('|').split('|').map(str::trim).collect();
            let package = cells.get(1)?.trim_matches('`');
            (!package.is_empty())
                .then(|| ((cells[0].trim_matches('`').to_owned(), package.to_owned()), cells[2..].join("|")))
        })
        .collect()
}

#[test]
fn the_readme_layout_table_is_the_workspace() {
    let (members, rows) = (members(), readme_rows());
    assert_eq!(members.keys().collect::<Vec<_>>(), rows.keys().collect::<Vec<_>>(), "members vs README rows");
    for (key, description) in &members {
        assert!(
            rows[key].starts_with(description.as_str()),
            "{key:?}: the README row does not start with {description:?}"
        );
    }
}
