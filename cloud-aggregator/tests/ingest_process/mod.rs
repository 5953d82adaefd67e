//! The `aggregator ingest` binary as a child process on a fixed loopback port, started,
//! SIGKILLed and restarted by the fault tests.
#![allow(dead_code)] // each test binary uses a different subset

use std::collections::BTreeMap;
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// One ingest deployment: its port, arguments and environment, and the running process.
pub struct IngestProcess {
    /// The loopback port it listens on, the same across restarts.
    pub port: u16,
    args: Vec<String>,
    env: BTreeMap<String, String>,
    child: Option<Child>,
}

impl IngestProcess {
    /// `aggregator ingest --listen 127.0.0.1:<a free port>` followed by `args`, run with
    /// `env`; not started yet.
    pub fn new(args: &[&str], env: BTreeMap<String, String>) -> Self {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        Self { port, args: args.iter().map(|a| a.to_string()).collect(), env, child: None }
    }

    /// Starts the process and waits until it accepts connections.
    pub fn start(&mut self) {
        let child = Command::new(env!("CARGO_BIN_EXE_aggregator"))
            .args(["ingest", "--listen", &format!("127.0.0.1:{}", self.port)])
            .args(&self.args)
            .envs(&self.env)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "ingest did not start");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// SIGKILL, as a crash or an instance being reclaimed would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    /// Resident memory of the running process, bytes.
    pub fn rss(&self) -> u64 {
        let pid = self.child.as_ref().expect("ingest is running").id();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() * 1024
    }
}

impl Drop for IngestProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
