//! A throwaway single-node Garage per test: `scripts/garage.sh start` with its own
//! directory and free loopback ports, stopped (and deleted) on drop.

#![allow(dead_code)]

use fruits_aggregator::s3::{S3Config, S3Storage};
use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Command;

/// A running Garage and the environment that reaches it.
pub struct Garage {
    dir: tempfile::TempDir,
    script_env: Vec<(String, String)>,
    /// `AWS_*` and `FRUITS_S3_*` as printed by the script.
    pub env: BTreeMap<String, String>,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/garage.sh")
}

impl Garage {
    /// Starts a fresh server; panics with the script's output if it cannot.
    pub fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let script_env = vec![
            ("FRUITS_GARAGE_DIR".to_owned(), dir.path().join("garage").display().to_string()),
            ("FRUITS_GARAGE_S3_PORT".to_owned(), free_port().to_string()),
            ("FRUITS_GARAGE_RPC_PORT".to_owned(), free_port().to_string()),
            ("FRUITS_GARAGE_ADMIN_PORT".to_owned(), free_port().to_string()),
        ];
        let out = Command::new("bash").arg(script()).arg("start").envs(script_env.clone()).output().unwrap();
        assert!(out.status.success(), "garage start failed: {}", String::from_utf8_lossy(&out.stderr));
        let env = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.strip_prefix("export ")?.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect::<BTreeMap<_, _>>();
        assert!(env.contains_key("FRUITS_S3_ENDPOINT"), "no endpoint in {env:?}");
        Self { dir, script_env, env }
    }

    /// Kills the server abruptly (SIGKILL), keeping its data, as a crash would.
    pub fn kill(&self) {
        let pid = std::fs::read_to_string(self.dir.path().join("garage/pid")).unwrap();
        let status = Command::new("kill").args(["-9", pid.trim()]).status().unwrap();
        assert!(status.success(), "kill garage {pid}");
        // Wait until the S3 port is closed.
        let endpoint = self.env["FRUITS_S3_ENDPOINT"].trim_start_matches("http://").to_owned();
        for _ in 0..100 {
            if std::net::TcpStream::connect(&endpoint).is_err() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("garage still listening on {endpoint}");
    }

    /// Starts the server again on the same data and ports (after [`Garage::kill`]).
    pub fn restart(&self) {
        let out = Command::new("bash").arg(script()).arg("start").envs(self.script_env.clone()).output().unwrap();
        assert!(out.status.success(), "garage restart failed: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// Configuration for `bucket`/`prefix` on this server, with its static key.
    pub fn config(&self, prefix: &str) -> S3Config {
        S3Config {
            bucket: self.env["FRUITS_S3_BUCKET"].clone(),
            prefix: prefix.to_owned(),
            region: Some(self.env["AWS_REGION"].clone()),
            endpoint: Some(self.env["FRUITS_S3_ENDPOINT"].clone()),
            path_style: true,
            static_credentials: Some((
                self.env["AWS_ACCESS_KEY_ID"].clone(),
                self.env["AWS_SECRET_ACCESS_KEY"].clone(),
            )),
        }
    }

    /// A storage client on this server under `prefix`.
    pub fn storage(&self, prefix: &str) -> S3Storage {
        S3Storage::new(&self.config(prefix)).unwrap()
    }
}

impl Drop for Garage {
    fn drop(&mut self) {
        let _ = Command::new("bash").arg(script()).arg("stop").envs(self.script_env.clone()).output();
        let _ = &self.dir;
    }
}
