//! A store written by an earlier version stays in `tests/data/store-v1/` and every
//! later version must open it, verify it, and read the same bytes from it.

mod common;

use serde_json::Value;
use std::path::{Path, PathBuf};

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

#[test]
fn the_v1_store_fixture_still_opens_and_verifies() {
    let data = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let expected: Value = serde_json::from_str(
        &std::fs::read_to_string(data.join("store-v1.expected.json")).unwrap(),
    )
    .unwrap();
    let env = common::Env::new();
    // Work on a copy: opening may replay the WAL, and the fixture must stay as it is.
    copy_dir(&data.join("store-v1"), &env.data());

    let v = env.json(&["verify", "--deep"]);
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["size"], expected["tree_size"]);
    assert_eq!(v["root"], expected["root"]);

    let cp = env.json(&["checkpoint", "--latest"]);
    assert_eq!(cp["checkpoint"], expected["checkpoint"]);
    let e = env.json(&["entry", "--seq", "7"]);
    assert_eq!(e["leaf"], expected["entry_7"]["leaf"]);
    assert_eq!(e["leaf_hash"], expected["entry_7"]["leaf_hash"]);
    assert_eq!(e["event_id"], expected["entry_7"]["event_id"]);
    let key = env.json(&["key", "show"]);
    assert_eq!(key["origin"], expected["origin"]);
    // Its checkpoints predate whole-state digests: replay matches what they carry
    // (the key ring's digest) and counts them as legacy, not as failures.
    let r = env.json(&["replay", "--from-checkpoint", "0"]);
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(r["checkpoints_checked"], 0, "{r}");
    assert!(r["legacy_checkpoints"].as_u64().unwrap() >= 1, "{r}");

    // It also accepts new appends, and stays verifiable.
    let lines = env.path("more.jsonl");
    let out = std::process::Command::new(common::BIN)
        .args([
            "gen",
            "--events",
            "320",
            "--seed",
            "2026",
            "--tenants",
            "2",
            "-o",
        ])
        .arg(&lines)
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = std::fs::read_to_string(&lines).unwrap();
    let tail: String = text.lines().skip(300).map(|l| format!("{l}\n")).collect();
    std::fs::write(&lines, tail).unwrap();
    let a = env.json(&["append", lines.to_str().unwrap()]);
    assert_eq!(a["accepted"], 20, "{a}");
    assert_eq!(env.json(&["verify"])["ok"], true);
}
