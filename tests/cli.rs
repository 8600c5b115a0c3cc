//! End to end through the real binary and a real RocksDB store: gen → init → append
//! → entry / prove / checkpoint / verify, the JSON contracts, and read-only access
//! while another process holds the store.

mod common;

use common::{hash, Env};
use govledger_ledger::checkpoint::Checkpoint;
use govledger_ledger::note::NoteVerifier;
use govledger_ledger::tree;

#[test]
fn generated_stream_is_accepted_end_to_end_and_verifies() {
    let env = Env::new();
    let lines = env.init_with_events(1500, 42, 3);
    let out = env.json(&["append", lines.to_str().unwrap()]);
    assert_eq!(out["appended"], 1500);
    assert_eq!(
        out["accepted"], 1500,
        "every generated event must be accepted: {out}"
    );
    assert_eq!(out["size"], 1500);

    let v = env.json(&["verify"]);
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["entries_checked"], 1500);
    // init's empty checkpoint and append's final one.
    assert_eq!(v["checkpoints_checked"], 2);
    let deep = env.json(&["verify", "--deep"]);
    assert_eq!(deep["ok"], true, "{deep}");
    assert_eq!(deep["root"], v["root"]);
}

#[test]
fn gen_is_deterministic() {
    let env = Env::new();
    let a = env.run(&["gen", "--events", "300", "--seed", "9", "--tenants", "2"]);
    let b = env.run(&["gen", "--events", "300", "--seed", "9", "--tenants", "2"]);
    let c = env.run(&["gen", "--events", "300", "--seed", "10", "--tenants", "2"]);
    assert!(a.status.success());
    assert_eq!(a.stdout, b.stdout);
    assert_ne!(a.stdout, c.stdout);
    assert_eq!(a.stdout.iter().filter(|&&b| b == b'\n').count(), 300);
}

#[test]
fn json_contracts_and_proofs_verify_against_the_signed_checkpoint() {
    let env = Env::new();
    let lines = env.init_with_events(300, 5, 2);
    let first = env.json(&["checkpoint", "--latest"]);
    assert_eq!(first["tree_size"], 0);
    env.json(&["append", lines.to_str().unwrap()]);

    let key = env.json(&["key", "show"]);
    assert_eq!(key["origin"], "test.govledger/log");
    let verifier = NoteVerifier::from_key_string(key["verifier_key"].as_str().unwrap()).unwrap();

    let cp = env.json(&["checkpoint", "--latest"]);
    assert_eq!(cp["tree_size"], 300);
    let opened = Checkpoint::open(cp["checkpoint"].as_str().unwrap(), &verifier).unwrap();
    assert_eq!(opened.size, 300);
    assert_eq!(opened.root, hash(&cp["root"]));
    assert!(
        opened.state_digest.is_some(),
        "checkpoint must carry a state digest"
    );

    let e = env.json(&["entry", "--seq", "17"]);
    assert_eq!(e["seq"], 17);
    let leaf = common::b64d(&e["leaf"]);
    assert_eq!(tree::leaf_hash(&leaf), hash(&e["leaf_hash"]));
    assert_eq!(e["verdict"], "accepted");
    assert!(e["event"]["id"].is_string());

    let inc = env.json(&["prove", "inclusion", "--seq", "17"]);
    assert_eq!(inc["leaf_index"], 17);
    assert_eq!(inc["tree_size"], 300);
    assert_eq!(inc["leaf_hash"], e["leaf_hash"]);
    let proof: Vec<[u8; 32]> = inc["proof"].as_array().unwrap().iter().map(hash).collect();
    let signed = Checkpoint::open(inc["checkpoint"].as_str().unwrap(), &verifier).unwrap();
    tree::verify_inclusion(&hash(&inc["leaf_hash"]), 17, 300, &proof, &signed.root).unwrap();

    let cons = env.json(&["prove", "consistency", "--from", "0", "--to", "300"]);
    assert_eq!(cons["proof"].as_array().unwrap().len(), 0);
    let cons = env.json(&["prove", "consistency", "--from", "123", "--to", "300"]);
    let proof: Vec<[u8; 32]> = cons["proof"].as_array().unwrap().iter().map(hash).collect();
    assert_eq!(hash(&cons["new_root"]), signed.root);
    tree::verify_consistency(123, 300, &hash(&cons["old_root"]), &signed.root, &proof).unwrap();
}

#[test]
fn bad_requests_are_clear_errors() {
    let env = Env::new();
    let out = env.run(&["verify"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("govledger init"));

    let lines = env.init_with_events(10, 1, 1);
    let again = env.run(&["init", "--origin", "x"]);
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("refusing to overwrite"));

    env.json(&["append", lines.to_str().unwrap()]);
    let out = env.run(&["entry", "--seq", "10"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("the log has 10 entries"));
    let out = env.run(&["prove", "consistency", "--from", "9", "--to", "11"]);
    assert_eq!(out.status.code(), Some(2));
    let out = env.run(&["prove", "inclusion", "--seq", "10"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("entry 10 does not exist: the log has 10 entries"),
        "{err}"
    );

    // `serve` and `append --resume` cannot share a cursor: the first claims it.
    let resumed = Env::new();
    let lines = resumed.init_with_events(5, 2, 1);
    resumed.json(&["append", lines.to_str().unwrap(), "--resume"]);
    let nats = "nats://127.0.0.1:1"; // refused before any connection is tried
    let out = resumed.run(&["serve", "--nats-url", nats, "--http", "off"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cursor counts the lines of an input file"),
        "{err}"
    );
    let served = Env::new();
    let lines = served.init_with_events(5, 2, 1);
    let out = served.run(&["serve", "--nats-url", nats, "--http", "off"]);
    assert_eq!(out.status.code(), Some(2), "no nats-server there");
    let out = served.run(&["append", lines.to_str().unwrap(), "--resume"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cursor counts stream sequences"), "{err}");
    served.json(&["append", lines.to_str().unwrap()]);

    // The stepper moves with its own commands: the flags that end or list a
    // replay are refused with it, not ignored.
    for flag in [["--to", "5"], ["--agent", "agent-1"], ["--session", "s-1"]] {
        let args = [
            "replay",
            "--from-checkpoint",
            "0",
            "--step",
            flag[0],
            flag[1],
        ];
        let out = env.run(&args);
        assert_eq!(out.status.code(), Some(2), "{flag:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!("{} does not apply to --step", flag[0])),
            "{err}"
        );
    }

    std::fs::write(env.path("bad.jsonl"), "{\"subject\": 1}\n").unwrap();
    let out = env.run(&["append", env.path("bad.jsonl").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("input line 1"));
}

#[test]
fn read_only_commands_work_while_a_writer_holds_the_store() {
    let env = Env::new();
    let lines = env.init_with_events(50, 3, 1);
    env.json(&["append", lines.to_str().unwrap()]);
    // Hold the store open for writing, as `serve` does.
    let writer = common::raw_db(&env.data());
    let v = env.json(&["verify"]);
    assert_eq!(v["ok"], true);
    let e = env.json(&["entry", "--seq", "3"]);
    assert_eq!(e["seq"], 3);
    env.json(&["prove", "inclusion", "--seq", "3"]);
    env.json(&["key", "show"]);
    // A second writer is refused with a clear message.
    let out = env.run(&["append", lines.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot open"));
    drop(writer);
}

#[test]
fn key_file_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::new();
    env.json(&["init", "--origin", "perm.test/log"]);
    let mode = std::fs::metadata(env.data().join("log.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn demo_runs_and_verifies() {
    let out = std::process::Command::new(common::BIN)
        .args(["--json", "demo"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["verified"], true);
    assert_eq!(v["replay_checkpoints_checked"], 3);
    // The incident bundle of agent-7: its 13 entries (the body-less rejections
    // cannot be tied to it), kept nowhere without --keep.
    assert_eq!(v["bundle"]["entries"], 13, "{v}");
    assert_eq!(v["bundle"]["file"], serde_json::Value::Null);
    // The spend past the budget, the forgery, and the proposal made under the
    // engaged kill switch are refused.
    let rejected: Vec<(u64, &str)> = v["rejected"]
        .as_array()
        .expect("rejected")
        .iter()
        .map(|r| {
            (
                r["seq"].as_u64().expect("seq"),
                r["reason"].as_str().expect("reason"),
            )
        })
        .collect();
    assert_eq!(
        rejected,
        [
            (11, "budget_exceeded"),
            (13, "bad_signature"),
            (14, "invariant_violation")
        ]
    );
    // The kept variant leaves a ledger the other commands can open, and its
    // bundle, which verifies with the log's key.
    let env = Env::demo();
    let v = env.json(&["verify"]);
    assert_eq!(v["ok"], true);
    let key = env.json(&["key", "show"])["verifier_key"].clone();
    let bundle = env.data().join("agent-7.bundle");
    let b = env.json(&[
        "verify-bundle",
        bundle.to_str().unwrap(),
        "--key",
        key.as_str().unwrap(),
    ]);
    assert_eq!(b["entries"].as_array().map(Vec::len), Some(13));
}

/// `state VIEW` on the demo's ledger: the state the incident left, and `--at` for
/// the state part-way through.
#[test]
fn state_views_show_what_the_incident_left() {
    let env = Env::demo();
    let state = |args: &[&str]| env.json(&[&["state"], args].concat());

    let s = state(&["sessions"]);
    assert_eq!(s["entries_folded"], 16);
    assert_eq!(s["items"][0]["session"], "s-1");
    assert_eq!(s["items"][0]["status"], "ended");

    let k = state(&["killswitches", "--tenant", "acme"]);
    assert_eq!(k["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(k["items"][0]["scope"], "agent");
    assert_eq!(k["items"][0]["target"], "agent-7");

    // The over-budget increment was refused, so only the first one counts.
    let b = state(&["budgets"]);
    assert_eq!(b["items"][0]["budget_id"], "agent-7-daily");
    assert_eq!(b["items"][0]["cost_micros"], 1_400_000);
    assert_eq!(b["items"][0]["limit_cost_micros"], 2_000_000);
    assert_eq!(b["items"][0]["scope"]["agent"], "agent-7");

    let a = state(&["approvals"]);
    assert_eq!(a["items"][0]["ticket"], "t-1");
    assert_eq!(a["items"][0]["status"], "granted");
    assert_eq!(a["items"][0]["used_count"], 1);
    assert_eq!(a["items"][0]["used_cost_micros"], 1_400_000);

    let keys = state(&["keys"]);
    let roles: Vec<(&str, &str)> = keys["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| (k["key_id"].as_str().unwrap(), k["role"].as_str().unwrap()))
        .collect();
    assert_eq!(
        roles,
        [("acme/admin", "admin"), ("acme/gateway", "producer")]
    );

    // The refused over-budget increment (#11) engaged agent-7's switch by itself
    // (kill_on_exceed); the guardian's engagement (#12) then replaced the reason.
    let k = state(&["killswitches", "--at", "11"]);
    assert_eq!(k["items"][0]["target"], "agent-7");
    assert_eq!(
        k["items"][0]["reason"],
        "budget agent-7-daily exceeded by event evt-0012"
    );
    assert_eq!(
        state(&["killswitches", "--at", "10"])["items"],
        serde_json::json!([])
    );
    assert_eq!(
        state(&["killswitches", "--at", "12"])["items"][0]["reason"],
        "budget exceeded"
    );

    // Right after the grant (#8): nothing used yet, no kill switch, session active.
    let a = state(&["approvals", "--at", "8"]);
    assert_eq!(a["entries_folded"], 9);
    assert_eq!(a["items"][0]["used_count"], 0);
    assert_eq!(
        state(&["killswitches", "--at", "8"])["items"],
        serde_json::json!([])
    );
    assert_eq!(
        state(&["sessions", "--at", "8"])["items"][0]["status"],
        "active"
    );
    // --at TIME: nothing had happened in 2000; everything by 2100.
    let s = state(&["sessions", "--at", "2000-01-01T00:00:00Z"]);
    assert_eq!(s["entries_folded"], 0);
    assert_eq!(s["items"], serde_json::json!([]));
    assert_eq!(s["at_time_ns"], 946_684_800_000_000_000u64);
    let s = state(&["sessions", "--at", "2100-01-01T00:00:00+01:00"]);
    assert_eq!(s["entries_folded"], 16);
    let out = env.run(&["state", "sessions", "--at", "2026-02-30T00:00:00Z"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("RFC 3339"));
    // Another tenant sees nothing; a seq past the end is a clear error.
    assert_eq!(
        state(&["sessions", "--tenant", "globex"])["items"],
        serde_json::json!([])
    );
    let out = env.run(&["state", "sessions", "--at", "99"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("entries 0 to 15 only"));
}

/// `check`: the pre-check answers from the demo's final state without writing.
#[test]
fn check_answers_whether_a_spend_fits_and_no_kill_switch_covers_it() {
    let env = Env::demo();
    // Exit 1 (not allowed) still prints the JSON answer.
    let check = |args: &[&str]| -> (Option<i32>, serde_json::Value) {
        let out = env.run(
            &[
                &["--json", "check", "--tenant", "acme", "--org", "acme"],
                args,
            ]
            .concat(),
        );
        let v = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
        (out.status.code(), v)
    };
    let size_before = env.status()["size"].clone();
    // agent-7 is under a kill switch, and $0.70 more passes its $2.00 budget. Event
    // time is the JetStream timestamp: judge the budget's day at the kill switch's.
    let kills = env.json(&["state", "killswitches"]);
    let day = kills["items"][0]["since_ns"].to_string();
    let day = day.as_str();
    let (code, v) = check(&[
        "--agent",
        "agent-7",
        "--cost-micros",
        "700000",
        "--at-ns",
        day,
    ]);
    assert_eq!(code, Some(1));
    assert_eq!(v["allowed"], false);
    let reasons = v["reasons"].to_string();
    assert!(
        reasons.contains("agent kill switch on agent-7"),
        "{reasons}"
    );
    assert!(
        reasons.contains("budget agent-7-daily would be exceeded"),
        "{reasons}"
    );
    assert_eq!(v["budgets"][0]["cost_micros_after"], 2_100_000);
    // Another agent has no budget and no kill switch.
    let (code, v) = check(&[
        "--agent",
        "agent-8",
        "--cost-micros",
        "700000",
        "--at-ns",
        day,
    ]);
    assert_eq!(code, Some(0));
    assert_eq!(v["allowed"], true);
    assert_eq!(v["budgets"], serde_json::json!([]));
    // In an ended session nothing may run.
    let (code, v) = check(&["--agent", "agent-8", "--session", "s-1", "--at-ns", day]);
    assert_eq!(code, Some(1));
    assert!(v["reasons"][0]
        .as_str()
        .unwrap()
        .contains("session s-1 is ended"));
    assert_eq!(env.status()["size"], size_before, "check writes nothing");
}

/// Splits the event lines in `lines` into `head.jsonl` (the first `n`) and
/// `tail.jsonl` (the rest), for appending in two runs.
fn split_lines(
    env: &Env,
    lines: &std::path::Path,
    n: usize,
) -> (std::path::PathBuf, std::path::PathBuf) {
    let all = std::fs::read_to_string(lines).unwrap();
    let v: Vec<&str> = all.lines().collect();
    let (head, tail) = (env.path("head.jsonl"), env.path("tail.jsonl"));
    std::fs::write(&head, v[..n].join("\n")).unwrap();
    std::fs::write(&tail, v[n..].join("\n")).unwrap();
    (head, tail)
}

/// `append --snapshot-every`, `snapshot take` and `snapshot list`: snapshots land at
/// checkpoints, check out against them, and `state` reads the same with and
/// without them.
#[test]
fn snapshots_are_taken_listed_and_read_the_same() {
    let env = Env::new();
    let lines = env.init_with_events(1_500, 21, 2);
    let (head, tail) = split_lines(&env, &lines, 1_000);

    let out = env.json(&["append", head.to_str().unwrap(), "--snapshot-every", "600"]);
    assert_eq!(out["snapshot"]["size"], 1_000);
    assert!(out["snapshot"]["bytes"].as_u64().unwrap() > 1_000);
    // 500 more: below the policy's 600, so no snapshot ...
    let out = env.json(&["append", tail.to_str().unwrap(), "--snapshot-every", "600"]);
    assert_eq!(out["snapshot"], serde_json::Value::Null);
    // ... until one is asked for.
    let out = env.json(&["snapshot", "take", "--keep", "5"]);
    assert_eq!(out["size"], 1_500);
    let out = env.json(&["snapshot", "take"]);
    assert_eq!(out["existing"], true);
    let list = env.json(&["snapshot", "list"]);
    assert_eq!(list["log_size"], 1_500);
    let snaps = list["snapshots"].as_array().unwrap();
    assert_eq!(snaps.len(), 2);
    for (s, size) in snaps.iter().zip([1_000, 1_500]) {
        assert_eq!(s["size"], size);
        assert_eq!(s["ok"], true);
        // Written by this build at checkpoints it signed: format 2, state
        // digest v3, so a writer can start from either.
        assert_eq!(
            (
                &s["format"],
                &s["state_digest_version"],
                &s["ordinals_trusted"]
            ),
            (
                &serde_json::json!(2),
                &serde_json::json!(3),
                &serde_json::json!(true)
            ),
            "{s}"
        );
        let cp = env.json(&[
            "prove",
            "inclusion",
            "--seq",
            "0",
            "--size",
            &size.to_string(),
        ]);
        let note = cp["checkpoint"].as_str().unwrap();
        assert!(
            note.contains(&format!(
                "state-digest v{} sha256:{}",
                s["state_digest_version"],
                s["state_digest"].as_str().unwrap()
            )),
            "{note}"
        );
    }
    for view in ["budgets", "approvals", "killswitches", "sessions", "keys"] {
        for at in [None, Some("999"), Some("1200")] {
            let mut a = vec!["state", view];
            a.extend(at.iter().flat_map(|s| ["--at", *s]));
            let with = env.json(&a);
            a.push("--no-snapshots");
            assert_eq!(with, env.json(&a), "state {view} at {at:?}");
        }
    }
    // With one at the current size already, --keep still prunes the older.
    let out = env.json(&["snapshot", "take", "--keep", "1"]);
    assert_eq!(out["existing"], true);
    assert_eq!(out["dropped"], serde_json::json!([1_000]));
    let list = env.json(&["snapshot", "list"]);
    assert_eq!(list["snapshots"].as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list["snapshots"][0]["size"], 1_500);
    // An empty log has nothing to snapshot.
    let empty = Env::new();
    empty.init_with_events(1, 1, 1);
    let out = empty.run(&["snapshot", "take"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("empty"));
}

/// A ledger of 1,500 generated events (seed `seed`, 2 tenants) appended in two
/// runs: the first 1,000 with a snapshot at their checkpoint, then the rest,
/// checkpoints at 0, 1,000 and 1,500.
fn appended_in_two(seed: u64) -> Env {
    let env = Env::new();
    let lines = env.init_with_events(1_500, seed, 2);
    let (a, b) = split_lines(&env, &lines, 1_000);
    env.json(&["append", a.to_str().unwrap(), "--snapshot-every", "600"]);
    env.json(&["append", b.to_str().unwrap()]);
    env
}

/// `replay --from-checkpoint K`: from the start or from a snapshot, the state digest
/// derived from the entries matches every signed checkpoint; a checkpoint signed
/// with the log's own key over a different state is named, with the entry before
/// it, and exits 1.
#[test]
fn replay_checks_the_signed_state_digest_at_every_checkpoint() {
    let env = appended_in_two(22);

    let r = env.json(&["replay", "--from-checkpoint", "0"]);
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(
        (r["snapshot"].as_u64(), r["to"].as_u64()),
        (Some(0), Some(1_500))
    );
    assert_eq!(r["entries_folded"], 1_500);
    // Checkpoints at 0 (init), 1,000 and 1,500, all with whole-state digests.
    assert_eq!(r["checkpoints_checked"], 3, "{r}");
    let latest = env.json(&["checkpoint", "--latest"]);
    let note = latest["checkpoint"].as_str().unwrap();
    assert!(note.contains(&format!("sha256:{}", r["state_digest"].as_str().unwrap())));

    let r = env.json(&["replay", "--from-checkpoint", "1000", "--to", "1199"]);
    assert_eq!(r["snapshot"], 1_000, "{r}");
    assert_eq!(r["entries_folded"], 200);
    assert_eq!(
        r["checkpoints_checked"], 0,
        "the snapshot's own was matched to use it"
    );

    let out = env.run(&["replay", "--from-checkpoint", "999"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("no checkpoint was signed at size 999; the nearest are 0 below and 1000 above"));

    // Re-sign the checkpoint at 1,000 with the log's key over another state digest.
    let signer = govledger_ledger::note::NoteSigner::from_key_string(
        std::fs::read_to_string(env.data().join("log.key"))
            .unwrap()
            .trim(),
    )
    .unwrap();
    let p = env.json(&["prove", "inclusion", "--seq", "0", "--size", "1000"]);
    let mut cp = Checkpoint::open(p["checkpoint"].as_str().unwrap(), &signer.verifier()).unwrap();
    let resign = |cp: &mut Checkpoint, version| {
        cp.state_digest = Some(govledger_ledger::checkpoint::StateDigest {
            version,
            hash: [7; 32],
        });
        let forged = cp.sign(&signer).unwrap();
        let db = common::raw_db(&env.data());
        let cf = db.cf_handle("checkpoints").unwrap();
        db.put_cf(cf, 1_000u64.to_be_bytes(), forged.as_bytes())
            .unwrap();
    };
    resign(&mut cp, 2);
    let out = env.run(&["--json", "replay", "--from-checkpoint", "0"]);
    assert_eq!(out.status.code(), Some(1));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["ok"], false);
    assert_eq!(r["problem"]["kind"], "state_digest_mismatch");
    assert_eq!(r["problem"]["checkpoint"], 1_000);
    assert_eq!(r["problem"]["seq"], 999);
    assert!(r["problem"]["message"]
        .as_str()
        .unwrap()
        .contains(&format!("signed sha256:{}", "07".repeat(32))));
    // The snapshot at 1,000 no longer matches its checkpoint, so it is not used.
    let list = env.run(&["--json", "snapshot", "list"]);
    assert_eq!(list.status.code(), Some(1));
    let r = env.run(&["--json", "replay", "--from-checkpoint", "1000"]);
    assert_eq!(
        r.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&r.stdout)
    );

    // A digest of a version this build does not know stops the replay with an
    // error that says so, rather than passing it unchecked.
    resign(&mut cp, 4);
    let out = env.run(&["replay", "--from-checkpoint", "0"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("the checkpoint of size 1000 carries a state digest this build cannot check")
            && err.contains("state-digest v4 sha256:0707")
            && err.contains("upgrade govledger"),
        "{err}"
    );
}

/// Changes, behind the ledger's back, the cost of the first budget increment at
/// or after `from`: one digit of its stored body, whose recorded length and
/// SHA-256 stay as they were. Returns its seq.
fn change_a_cost(env: &Env, from: u64) -> u64 {
    change_a_number(env, from, "budget.incremented", "cost_micros")
}

/// Changes the last digit of the number under `name` in the stored body of the
/// first event of type `kind` at or after `from`, its recorded length and
/// SHA-256 left as they were. Returns its seq.
fn change_a_number(env: &Env, from: u64, kind: &str, name: &str) -> u64 {
    let db = common::raw_db(&env.data());
    let cf = db.cf_handle("entries").unwrap();
    let has = |leaf: &[u8], needle: &[u8]| leaf.windows(needle.len()).position(|w| w == needle);
    for seq in from.. {
        let mut leaf = db.get_cf(cf, seq.to_be_bytes()).unwrap().expect("an entry");
        if has(&leaf, format!("\"type\":\"{kind}\"").as_bytes()).is_none() {
            continue;
        }
        let key = format!("\"{name}\":");
        let key = key.as_bytes();
        let at = has(&leaf, key).expect("the number") + key.len();
        let end = at + leaf[at..].iter().take_while(|b| b.is_ascii_digit()).count();
        let d = &mut leaf[end - 1];
        *d = if *d == b'9' { b'8' } else { *d + 1 };
        db.put_cf(cf, seq.to_be_bytes(), &leaf).unwrap();
        return seq;
    }
    unreachable!("the log ends")
}

/// `replay` names an entry whose body was changed behind its recorded hash, and
/// exits 1: one that a later signed whole-state digest covers (read without its
/// hash, found when that digest does not match, the entries since the last
/// matched checkpoint then read again with every check), and one after the
/// last checkpoint of the range (read with its hash).
#[test]
fn replay_names_an_entry_whose_body_was_changed_behind_its_hash() {
    let env = appended_in_two(24);
    let problem = |args: &[&str]| {
        let out = env.run(args);
        let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(out.status.code(), Some(1), "{r}");
        assert_eq!(r["ok"], false);
        r["problem"].clone()
    };

    let covered = change_a_cost(&env, 600);
    assert!(covered < 1_000, "under the checkpoint at 1,000: {covered}");
    let p = problem(&["--json", "replay", "--from-checkpoint", "0"]);
    assert_eq!(p["kind"], "entry_body_changed", "{p}");
    assert_eq!(p["seq"], covered);
    assert_eq!(
        p["checkpoint"], 1_000,
        "found through the digest signed at 1,000"
    );
    let message = p["message"].as_str().unwrap();
    assert!(
        message.starts_with(&format!("entry {covered}: its stored body does not match"))
            && message.contains("checkpoint of size 1000"),
        "{message}"
    );

    // From the snapshot at 1,000 to 1,300: no checkpoint after the start.
    let tail = change_a_cost(&env, 1_100);
    assert!(tail < 1_300, "{tail}");
    let p = problem(&[
        "--json",
        "replay",
        "--from-checkpoint",
        "1000",
        "--to",
        "1300",
    ]);
    assert_eq!(p["kind"], "entry_body_changed", "{p}");
    assert_eq!(p["seq"], tail);
    assert!(p.get("checkpoint").is_none(), "found by reading it: {p}");

    // Without --json: loud, on stderr.
    let out = env.run(&["replay", "--from-checkpoint", "0"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("REPLAY FAILED: entry {covered}:")),
        "{err}"
    );

    // The stepper, folding on from its start, names it as it reads it.
    let cmds = env.path("steps.txt");
    std::fs::write(&cmds, "next 10\njump 1300\n").unwrap();
    let args = [
        "--json",
        "replay",
        "--from-checkpoint",
        "1000",
        "--step",
        "--commands",
    ];
    let out = env.run(&[&args[..], &[cmds.to_str().unwrap()]].concat());
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(last["ok"], false, "{stdout}");
    let problem = last["problem"].as_str().unwrap();
    assert!(
        problem.starts_with(&format!("entry {tail}: its stored body")),
        "{problem}"
    );
}

/// The entries read again after a digest fails are those since the last
/// checkpoint that matched: a body changed under the checkpoint at 1,000 in a
/// way the state does not show (a telemetry event's number) is not the one
/// named when the digest at 1,500 fails over a changed cost.
#[test]
fn a_failed_digest_names_a_changed_body_since_the_last_matched_checkpoint() {
    let env = appended_in_two(25);
    assert_eq!(env.json(&["snapshot", "take"])["size"], 1_500);
    let harmless = change_a_number(&env, 100, "telemetry", "ms");
    assert!(harmless < 1_000, "{harmless}");
    let r = env.json(&["replay", "--from-checkpoint", "0", "--to", "1000"]);
    assert_eq!(r["ok"], true, "the state does not show it: {r}");
    let cost = change_a_cost(&env, 1_100);
    assert!(cost < 1_500, "{cost}");
    let out = env.run(&["--json", "replay", "--from-checkpoint", "0"]);
    assert_eq!(out.status.code(), Some(1));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["problem"]["kind"], "entry_body_changed", "{r}");
    assert_eq!(r["problem"]["seq"], cost);
    assert_eq!(r["problem"]["checkpoint"], 1_500);

    // A signed note moved to another size's place is refused there, whatever
    // its digest: the signed digests are what vouch for those bodies (and for
    // the snapshot there).
    {
        let db = common::raw_db(&env.data());
        let cf = db.cf_handle("checkpoints").unwrap();
        let at_1000 = db.get_cf(cf, 1_000u64.to_be_bytes()).unwrap().unwrap();
        db.put_cf(cf, 1_500u64.to_be_bytes(), at_1000).unwrap();
    }
    let out = env.run(&["--json", "replay", "--from-checkpoint", "0"]);
    assert_eq!(out.status.code(), Some(1));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["problem"]["kind"], "bad_checkpoint_signature", "{r}");
    assert_eq!(r["problem"]["checkpoint"], 1_500);
    let message = r["problem"]["message"].as_str().unwrap();
    assert!(message.contains("signed for size 1000"), "{message}");
    let out = env.run(&["--json", "snapshot", "list"]);
    assert_eq!(out.status.code(), Some(1));
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let at_1500 = list["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["size"] == 1_500)
        .expect("the snapshot at 1,500");
    assert_eq!(at_1500["ok"], false);
    let why = at_1500["problem"].as_str().unwrap();
    assert!(why.contains("signed for size 1000"), "{why}");
}

/// `replay --from-checkpoint K` starts from the newest usable snapshot at or below
/// K: a damaged one is passed over for the one below it, and the replay still
/// checks every checkpoint after its start.
#[test]
fn replay_passes_over_a_damaged_snapshot_for_an_older_one() {
    let env = appended_in_two(23);
    assert_eq!(env.json(&["snapshot", "take"])["size"], 1_500);
    let r = env.json(&["replay", "--from-checkpoint", "1500"]);
    assert_eq!(
        (r["snapshot"].as_u64(), r["entries_folded"].as_u64()),
        (Some(1_500), Some(0)),
        "{r}"
    );
    let intact = r["state_digest"].clone();

    // One byte of the newest snapshot's first chunk flipped.
    {
        let db = common::raw_db(&env.data());
        let cf = db.cf_handle("snapshots").unwrap();
        let key = govledger_ledger::store::keys::snapshot(1_500, 0);
        let mut chunk = db
            .get_cf(cf, key)
            .unwrap()
            .expect("chunk 0 of the snapshot");
        let at = chunk.len() / 2;
        chunk[at] ^= 0x20;
        db.put_cf(cf, key, &chunk).unwrap();
    }
    let r = env.json(&["replay", "--from-checkpoint", "1500"]);
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(
        (r["snapshot"].as_u64(), r["entries_folded"].as_u64()),
        (Some(1_000), Some(500)),
        "{r}"
    );
    assert_eq!(r["checkpoints_checked"], 1, "the checkpoint at 1,500: {r}");
    assert_eq!(r["state_digest"], intact);
}

/// `diff --from X --to Y`: what the incident changed between two points, by view.
#[test]
fn diff_shows_what_changed_between_two_points() {
    let env = Env::demo();
    // From right after the grant (#8) to right after the guardian's kill (#12).
    let d = env.json(&["diff", "--from", "8", "--to", "12"]);
    assert_eq!(
        (d["from_entries"].as_u64(), d["to_entries"].as_u64()),
        (Some(9), Some(13))
    );
    let v = &d["views"];
    let kills = &v["killswitches"];
    assert_eq!(kills["added"].as_array().map(Vec::len), Some(1), "{kills}");
    assert_eq!(kills["added"][0]["target"], "agent-7");
    assert_eq!(kills["removed"], serde_json::json!([]));
    let approvals = &v["approvals"]["changed"];
    assert_eq!(approvals[0]["key"], "acme/t-1");
    assert_eq!(approvals[0]["before"]["used_count"], 0);
    assert_eq!(approvals[0]["after"]["used_count"], 1);
    assert_eq!(v["budgets"]["changed"][0]["before"]["cost_micros"], 0);
    assert_eq!(
        v["budgets"]["changed"][0]["after"]["cost_micros"],
        1_400_000
    );
    for quiet in ["sessions", "keys"] {
        for k in ["added", "removed", "changed"] {
            assert_eq!(v[quiet][k], serde_json::json!([]), "{quiet} {k}");
        }
    }
    // One view only; the session's end shows as a change up to the end of the log.
    let d = env.json(&["diff", "--from", "12", "--view", "sessions"]);
    assert_eq!(d["views"].as_object().map(|m| m.len()), Some(1));
    assert_eq!(
        d["views"]["sessions"]["changed"][0]["before"]["status"],
        "active"
    );
    assert_eq!(
        d["views"]["sessions"]["changed"][0]["after"]["status"],
        "ended"
    );
    let text = env.run(&["diff", "--from", "12", "--view", "sessions"]);
    assert!(String::from_utf8_lossy(&text.stdout).contains("status: \"active\" → \"ended\""));
    // Backwards or past the end: clear errors.
    let out = env.run(&["diff", "--from", "12", "--to", "3"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is before --from"));
    let out = env.run(&["diff", "--from", "99"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("entries 0 to 15 only"));
}
