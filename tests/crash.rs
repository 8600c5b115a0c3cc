//! Crash safety: a child `govledger append` is killed with SIGKILL at random moments,
//! again and again. After every kill the store opens, `verify` passes, only whole
//! batches are visible and the cursor names the last one; resuming finishes the
//! input exactly once, with the same root as an uninterrupted run.

mod common;

use common::{raw_db, Env};
use std::process::{Command, Stdio};
use std::time::Duration;

const EVENTS: u64 = 30_000;
const BATCH: u64 = 7;
const KILLS: usize = 24;

/// xorshift64*: reproducible kill moments (the seed is printed on failure).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

fn meta_u64(env: &Env, key: &[u8]) -> Option<u64> {
    let db = raw_db(&env.data());
    let v = db.get_cf(db.cf_handle("meta").unwrap(), key).unwrap()?;
    Some(u64::from_be_bytes(v.try_into().unwrap()))
}

fn append_cmd(env: &Env, lines: &std::path::Path) -> Command {
    let mut c = Command::new(common::BIN);
    c.arg("--data")
        .arg(env.data())
        .args([
            "append",
            "--resume",
            "--no-checkpoint",
            "--batch",
            &BATCH.to_string(),
        ])
        .arg(lines)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    c
}

#[test]
fn sigkill_during_append_never_leaves_a_partial_batch() {
    let seed = std::env::var("CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_u64);
    let mut rng = Rng(seed);
    let env = Env::new();
    let lines = env.init_with_events(EVENTS, 3, 2);

    let mut kills_mid_stream = 0;
    for round in 0..KILLS {
        let before = meta_u64(&env, b"size").unwrap_or(0);
        if before == EVENTS {
            break;
        }
        let mut child = append_cmd(&env, &lines).spawn().unwrap();
        // The kill moment is the fault being injected, not a synchronisation.
        std::thread::sleep(Duration::from_micros(5_000 + rng.next() % 60_000));
        let finished = child.try_wait().unwrap().is_some();
        child.kill().ok(); // SIGKILL
        child.wait().unwrap();
        if !finished {
            kills_mid_stream += 1;
        }

        let size = meta_u64(&env, b"size").unwrap_or(0);
        let cursor = meta_u64(&env, b"cursor").unwrap_or(0);
        assert!(size >= before, "seed {seed} round {round}: the log shrank");
        assert!(
            size.is_multiple_of(BATCH) || size == EVENTS,
            "seed {seed} round {round}: {size} entries is not a whole number of batches"
        );
        assert_eq!(
            cursor, size,
            "seed {seed} round {round}: cursor must name the last whole batch"
        );
        let v = env.json(&["verify"]);
        assert_eq!(v["ok"], true, "seed {seed} round {round}: {v}");
    }
    assert!(
        kills_mid_stream >= 20,
        "only {kills_mid_stream} kills landed mid-stream; slow the kills down"
    );

    // Finish, then compare with an uninterrupted run of the same input.
    let status = append_cmd(&env, &lines).status().unwrap();
    assert!(status.success());
    assert_eq!(meta_u64(&env, b"size"), Some(EVENTS));
    let whole = Env::new();
    let whole_lines = whole.init_with_events(EVENTS, 3, 2);
    assert!(append_cmd(&whole, &whole_lines).status().unwrap().success());
    let a = env.json(&[
        "prove",
        "consistency",
        "--from",
        "0",
        "--to",
        &EVENTS.to_string(),
    ]);
    let b = whole.json(&[
        "prove",
        "consistency",
        "--from",
        "0",
        "--to",
        &EVENTS.to_string(),
    ]);
    assert_eq!(
        a["new_root"], b["new_root"],
        "a crashed-and-resumed log must equal an uninterrupted one"
    );
    assert_eq!(env.json(&["verify"])["ok"], true);
}
