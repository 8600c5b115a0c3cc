//! `examples/python-bundle-verifier` (PyNaCl, written from the README's bundle
//! format alone, without reading govledger's Rust) verifies a bundle that
//! `govledger bundle` writes, and fails every copy with one byte changed, naming
//! the same line as `govledger verify-bundle`: the README is enough to write a
//! verifier in another language.
//!
//! Needs `python3` with PyNaCl (`.ci/run` installs it). Without it the test
//! fails under CI (`CI` set) and is skipped with a notice elsewhere.

mod common;

use common::Env;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("examples/python-bundle-verifier/verify_bundle.py")
}

fn python_ready() -> bool {
    Command::new("python3")
        .args(["-c", "import nacl.signing"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The Python verifier's verdict: `None` when it passes, else the line it names.
fn python_verdict(bundle: &Path, key: &str) -> Option<u64> {
    let out = Command::new("python3")
        .arg(script())
        .arg(bundle)
        .args(["--key", key])
        .output()
        .expect("run verify_bundle.py");
    let stdout = String::from_utf8_lossy(&out.stdout);
    match out.status.code() {
        Some(0) => None,
        Some(1) => {
            let line = stdout
                .split(": line ")
                .nth(1)
                .and_then(|rest| rest.split(' ').next())
                .and_then(|n| n.parse().ok());
            Some(line.unwrap_or_else(|| panic!("no line named: {stdout}")))
        }
        other => panic!(
            "verify_bundle.py exited {other:?}: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

/// `govledger verify-bundle`'s verdict, the same way.
fn govledger_verdict(env: &Env, bundle: &Path, key: &str) -> Option<u64> {
    let out = env.run(&[
        "--json",
        "verify-bundle",
        bundle.to_str().unwrap(),
        "--key",
        key,
    ]);
    let v: Value = serde_json::from_slice(&out.stdout).expect("verify-bundle --json");
    match out.status.code() {
        Some(0) => None,
        Some(1) => Some(v["problem"]["line"].as_u64().expect("a problem line")),
        other => panic!("verify-bundle exited {other:?}: {v}"),
    }
}

#[test]
fn a_verifier_written_from_the_readme_agrees_with_verify_bundle() {
    if !python_ready() {
        assert!(
            std::env::var_os("CI").is_none(),
            "python3 with PyNaCl is required under CI"
        );
        eprintln!("skipped: pip install PyNaCl to run");
        return;
    }
    let env = Env::new();
    let lines = env.init_with_events(1_200, 9, 2);
    env.json(&["append", lines.to_str().unwrap()]);
    let key = env.json(&["key", "show"])["verifier_key"]
        .as_str()
        .unwrap()
        .to_owned();
    let file = env.path("acme.bundle");
    let b = env.json(&["bundle", "--tenant", "acme", "-o", file.to_str().unwrap()]);
    assert!(b["entries"].as_u64().unwrap() > 100, "{b}");
    assert_eq!(python_verdict(&file, &key), None, "the bundle as written");
    assert_eq!(govledger_verdict(&env, &file, &key), None);

    // One byte changed at 40 places spread over the whole file.
    let bytes = std::fs::read(&file).unwrap();
    let copy = env.path("changed.bundle");
    for i in 0..40 {
        let at = i * (bytes.len() - 1) / 39;
        let mut changed = bytes.clone();
        changed[at] = if changed[at] == b'A' { b'B' } else { b'A' };
        std::fs::write(&copy, &changed).unwrap();
        let ours = govledger_verdict(&env, &copy, &key);
        assert!(ours.is_some(), "byte {at} changed, verify-bundle passed");
        assert_eq!(python_verdict(&copy, &key), ours, "byte {at} changed");
    }
}
