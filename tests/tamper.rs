//! Tampering with a real RocksDB store behind the ledger's back: `verify` must fail
//! and name the first bad seq; a truncated log must fail against a checkpoint kept
//! outside the store.

mod common;

use common::{raw_db, Env};
use serde_json::Value;

fn ledger_with(events: u64) -> Env {
    let env = Env::new();
    let lines = env.init_with_events(events, 11, 2);
    env.json(&["append", lines.to_str().unwrap()]);
    assert_eq!(env.json(&["verify"])["ok"], true);
    env
}

fn verify_fails(env: &Env, extra: &[&str]) -> Value {
    let mut args = vec!["--json", "verify"];
    args.extend_from_slice(extra);
    let out = env.run(&args);
    assert_eq!(
        out.status.code(),
        Some(1),
        "verify must fail: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ok"], false);
    v
}

fn key(seq: u64) -> [u8; 8] {
    seq.to_be_bytes()
}

#[test]
fn an_edited_entry_is_named() {
    let env = ledger_with(400);
    {
        let db = raw_db(&env.data());
        let cf = db.cf_handle("entries").unwrap();
        let mut leaf = db.get_cf(cf, key(123)).unwrap().unwrap();
        // Change one byte inside the stored body (a cost, an id, anything).
        let at = leaf.len() / 2;
        leaf[at] ^= 0x01;
        db.put_cf(cf, key(123), leaf).unwrap();
    }
    let v = verify_fails(&env, &[]);
    assert_eq!(v["problem"]["seq"], 123, "{v}");
}

#[test]
fn a_deleted_entry_is_named() {
    let env = ledger_with(400);
    {
        let db = raw_db(&env.data());
        db.delete_cf(db.cf_handle("entries").unwrap(), key(77))
            .unwrap();
    }
    let v = verify_fails(&env, &[]);
    assert_eq!(v["problem"]["kind"], "missing_entry");
    assert_eq!(v["problem"]["seq"], 77);
}

#[test]
fn swapped_entries_are_named() {
    let env = ledger_with(400);
    {
        let db = raw_db(&env.data());
        let cf = db.cf_handle("entries").unwrap();
        let a = db.get_cf(cf, key(10)).unwrap().unwrap();
        let b = db.get_cf(cf, key(250)).unwrap().unwrap();
        db.put_cf(cf, key(10), b).unwrap();
        db.put_cf(cf, key(250), a).unwrap();
    }
    let v = verify_fails(&env, &[]);
    assert_eq!(v["problem"]["kind"], "misplaced_entry");
    assert_eq!(v["problem"]["seq"], 10);
}

#[test]
fn an_entry_appended_behind_the_back_is_found() {
    let env = ledger_with(100);
    {
        let db = raw_db(&env.data());
        let cf = db.cf_handle("entries").unwrap();
        let a = db.get_cf(cf, key(5)).unwrap().unwrap();
        db.put_cf(cf, key(100), a).unwrap();
    }
    let v = verify_fails(&env, &[]);
    assert_eq!(v["problem"]["kind"], "entry_beyond_size");
    assert_eq!(v["problem"]["seq"], 100);
}

/// An outside checkpoint is checked whole: one that does not verify with the
/// log's key is a failed check (exit 1), and one the log's key did sign, with
/// the root of the log's own checkpoint at that size but another state digest,
/// is a fork of the state the roots alone would not show.
#[test]
fn an_outside_checkpoint_must_verify_and_sign_the_same_state() {
    use govledger_ledger::checkpoint::Checkpoint;
    use govledger_ledger::note::NoteSigner;
    let env = ledger_with(50);
    let note = env.json(&["checkpoint", "--latest"])["checkpoint"]
        .as_str()
        .unwrap()
        .to_owned();
    let saved = env.path("seen.txt");

    // Edited: the size line no longer matches its signature.
    std::fs::write(&saved, note.replacen("\n50\n", "\n49\n", 1)).unwrap();
    let v = verify_fails(&env, &["--against", saved.to_str().unwrap()]);
    assert_eq!(v["problem"]["kind"], "against_bad_signature", "{v}");

    // Signed by the log's own key: same size and root, another state.
    let key = std::fs::read_to_string(env.data().join("log.key")).unwrap();
    let signer = NoteSigner::from_key_string(key.trim()).unwrap();
    let mut cp = Checkpoint::open(&note, &signer.verifier()).unwrap();
    let digest = cp.state_digest.as_mut().expect("a state digest line");
    digest.hash[0] ^= 1;
    std::fs::write(&saved, cp.sign(&signer).unwrap()).unwrap();
    let v = verify_fails(&env, &["--against", saved.to_str().unwrap()]);
    assert_eq!(v["problem"]["kind"], "against_state_mismatch", "{v}");
    let message = v["problem"]["message"].as_str().unwrap();
    assert!(
        message.contains("signed two states at one size"),
        "{message}"
    );
}

#[test]
fn a_truncated_tail_fails_against_an_outside_checkpoint() {
    let env = ledger_with(300);
    // A client keeps the checkpoint it was shown.
    let cp = env.json(&["checkpoint", "--latest"]);
    let saved = env.path("seen-checkpoint.txt");
    std::fs::write(&saved, cp["checkpoint"].as_str().unwrap()).unwrap();
    let v = env.json(&["verify", "--against", saved.to_str().unwrap()]);
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["against_checked"], 1);

    // Cut the last 40 entries, their tree nodes and every checkpoint past the cut,
    // and fix the size: a self-consistent shorter log.
    let keep = 260u64;
    {
        let db = raw_db(&env.data());
        let entries = db.cf_handle("entries").unwrap();
        for seq in keep..300 {
            db.delete_cf(entries, key(seq)).unwrap();
        }
        let nodes = db.cf_handle("nodes").unwrap();
        for level in 0u8..=9 {
            for index in 0u64..=300 {
                if (index + 1) << level > keep {
                    let mut k = vec![level];
                    k.extend_from_slice(&index.to_be_bytes());
                    db.delete_cf(nodes, k).unwrap();
                }
            }
        }
        let cps = db.cf_handle("checkpoints").unwrap();
        db.delete_cf(cps, key(300)).unwrap();
        db.put_cf(db.cf_handle("meta").unwrap(), b"size", keep.to_be_bytes())
            .unwrap();
    }
    // On its own the shortened log is consistent...
    assert_eq!(env.json(&["verify"])["ok"], true);
    // ...but not with what the client saw.
    let v = verify_fails(&env, &["--against", saved.to_str().unwrap()]);
    assert_eq!(v["problem"]["kind"], "against_beyond_log", "{v}");
    assert_eq!(v["problem"]["seq"], keep);
}
