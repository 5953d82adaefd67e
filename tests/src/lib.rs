//! Support for the end-to-end tests in `tests/tests/`: a throwaway Garage S3 server,
//! the ingest service on a free loopback port, and the repository's paths.

use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::Arc;

use fruits_aggregator::ingest::Ingest;

#[path = "../../cloud-aggregator/tests/garage/mod.rs"]
pub mod garage;

/// The repository root (models, data, scripts live there).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ has a parent").to_path_buf()
}

/// Starts `ingest` on a free loopback port in a runtime thread of its own, for the
/// life of the test process; returns its base URL.
pub fn start_ingest(ingest: Arc<Ingest>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let url = format!("http://{}", listener.local_addr().expect("local addr"));
    listener.set_nonblocking(true).expect("non-blocking");
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
            fruits_aggregator::ingest::serve(listener, ingest).await.expect("ingest serves");
        });
    });
    url
}

/// Lays the real fruit photos (data/tuxpaint/fruit) out as a Fruits-360 tree,
/// `root/Training/<Class>/<photo>.png`, one class per photo; returns the count.
pub fn fruits360_tree(root: &std::path::Path) -> usize {
    let photos = repo_root().join("data/tuxpaint/fruit");
    let entries =
        std::fs::read_dir(&photos).unwrap_or_else(|e| panic!("{}: {e}. Run scripts/setup.sh", photos.display()));
    let mut count = 0;
    for entry in entries {
        let path = entry.expect("directory entry").path();
        if path.extension().is_some_and(|e| e == "png") {
            let class = root.join("Training").join(path.file_stem().expect("file name"));
            std::fs::create_dir_all(&class).expect("class folder");
            std::fs::copy(&path, class.join(path.file_name().expect("file name"))).expect("copy photo");
            count += 1;
        }
    }
    assert!(count >= 20, "expected the tuxpaint fruit photos, found {count}");
    count
}
