//! Shared helpers for the end-to-end tests: run the real `govledger` binary on a real
//! RocksDB store in a temporary directory.

#![allow(dead_code)]

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

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
    rocksdb::DB::open_cf(
        &opts,
        data.join("db"),
        ["entries", "nodes", "checkpoints", "index", "meta"],
    )
    .expect("open raw db")
}
