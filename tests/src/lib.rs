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
