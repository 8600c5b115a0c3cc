//! Shared helpers for the end-to-end tests: run the real `govledger` binary on a real
//! RocksDB store in a temporary directory.

#![allow(dead_code)]

pub mod hec;
pub mod nats;

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_govledger");

/// A temporary ledger directory and the files around it.
pub struct Env {
    pub tmp: tempfile::TempDir,
}

impl Env {
    pub fn new() -> Env {
        Env {
            tmp: tempfile::tempdir().expect("tempdir"),
        }
    }

    /// A fresh environment whose data directory holds the demo's ledger
    /// (`govledger demo --keep DIR`).
    pub fn demo() -> Env {
        let env = Env::new();
        let out = Command::new(BIN)
            .args(["demo", "--keep"])
            .arg(env.data())
            .output()
            .expect("run govledger demo");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        env
    }

    pub fn data(&self) -> PathBuf {
        self.tmp.path().join("data")
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    /// Runs `govledger --data DATA <args>` and returns its output.
    pub fn run(&self, args: &[&str]) -> Output {
        Command::new(BIN)
            .arg("--data")
            .arg(self.data())
            .args(args)
            .output()
            .expect("run govledger")
    }

    /// What one uninterrupted `export --format FORMAT` of the whole ledger to a
    /// file writes: what resumed or interrupted exports must equal byte for byte.
    pub fn export_whole(&self, format: &str) -> Vec<u8> {
        let whole = self.path(&format!("whole.{format}"));
        self.json(&[
            "export",
            "--format",
            format,
            "--to",
            whole.to_str().unwrap(),
        ]);
        std::fs::read(&whole).expect("whole export")
    }

    /// Runs a command that must succeed and returns its stdout as JSON.
    pub fn json(&self, args: &[&str]) -> Value {
        let mut full = vec!["--json"];
        full.extend_from_slice(args);
        let out = self.run(&full);
        assert!(
            out.status.success(),
            "govledger {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "govledger {args:?} printed no JSON ({e}): {}",
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }

    /// `gen` N events with `seed` and `tenants` into `events.jsonl` and
    /// `trust.json`, then `init` a ledger that trusts them.
    pub fn init_with_events(&self, events: u64, seed: u64, tenants: u32) -> PathBuf {
        let lines = self.path("events.jsonl");
        let trust = self.path("trust.json");
        let out = self.run(&[
            "gen",
            "--events",
            &events.to_string(),
            "--seed",
            &seed.to_string(),
            "--tenants",
            &tenants.to_string(),
            "--trust-out",
            trust.to_str().unwrap(),
            "-o",
            lines.to_str().unwrap(),
        ]);
        assert!(
            out.status.success(),
            "gen: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        self.json(&[
            "init",
            "--origin",
            "test.govledger/log",
            "--trust",
            trust.to_str().unwrap(),
        ]);
        lines
    }
}

/// A running `govledger serve`, its stderr drained into a log and a line channel.
pub struct Serve {
    pub child: Child,
    pub http: Option<u16>,
    lines: mpsc::Receiver<String>,
    log: Arc<Mutex<String>>,
}

impl Env {
    /// Starts `govledger --data DATA serve --nats-url URL <extra>` with /metrics on a
    /// free port. `RUST_LOG=info` so that its progress lines can be waited on.
    pub fn spawn_serve(&self, url: &str, extra: &[&str]) -> Serve {
        let http = nats::free_port();
        let mut child = Command::new(BIN)
            .arg("--data")
            .arg(self.data())
            .args(["serve", "--nats-url", url, "--http"])
            .arg(format!("127.0.0.1:{http}"))
            .args(extra)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn govledger serve");
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, lines) = mpsc::channel();
        let log: Arc<Mutex<String>> = Arc::default();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Ok(mut l) = sink.lock() {
                    l.push_str(&line);
                    l.push('\n');
                }
                let _ = tx.send(line);
            }
        });
        Serve {
            child,
            http: Some(http),
            lines,
            log,
        }
    }

    /// `status --json`.
    pub fn status(&self) -> Value {
        self.json(&["status"])
    }
}

impl Serve {
    pub fn log(&self) -> String {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Waits until serve writes a line containing `needle`.
    pub fn wait_for_line(&self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) if l.contains(needle) => return l,
                Ok(_) => {}
                Err(_) => panic!(
                    "serve never wrote {needle:?} within {timeout:?}; its log:\n{}",
                    self.log()
                ),
            }
        }
    }

    /// Waits for the process to exit on its own; kills it and fails after `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "serve did not exit within {timeout:?}; its log:\n{}",
                    self.log()
                );
            }
            // Wake on the next log line or after a short while, whichever is first.
            let _ = self.lines.recv_timeout(Duration::from_millis(50));
        }
    }

    /// SIGTERM: a graceful stop.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        self.wait_exit(Duration::from_secs(60))
    }

    /// SIGKILL.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// `GET path` on its HTTP port: (status code, body).
    pub fn http_get(&self, path: &str) -> (u16, String) {
        use std::io::{Read, Write};
        let port = self.http.expect("serve was started with --http");
        let mut s =
            std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect to /metrics port");
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        )
        .expect("send");
        let mut text = String::new();
        s.read_to_string(&mut text).expect("read response");
        let code = text
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or_else(|| panic!("not an HTTP response: {text}"));
        let body = text
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default();
        (code, body)
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn b64d(v: &Value) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(v.as_str().expect("base64 string"))
        .expect("base64")
}

pub fn hash(v: &Value) -> [u8; 32] {
    b64d(v).try_into().expect("32 bytes")
}

/// Opens the ledger's RocksDB directly, as an attacker with disk access would.
pub fn raw_db(data: &Path) -> rocksdb::DB {
    let opts = rocksdb::Options::default();
    let path = data.join("db");
    let cfs = rocksdb::DB::list_cf(&opts, &path).expect("list column families");
    rocksdb::DB::open_cf(&opts, &path, cfs).expect("open raw db")
}

/// A small deterministic generator for the moments of crash tests (xorshift64*):
/// seeded from a printed seed, so a failure can be rerun.
pub struct Rng(pub u64);

impl Rng {
    /// A number below `n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}
