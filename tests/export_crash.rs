//! Crash test of the exactly-once file sink: the real `govledger export --sink`
//! binary is killed with SIGKILL mid-stream, again and again, and restarted; the
//! file must end with every entry exactly once, in order, byte for byte what one
//! uninterrupted export writes.

mod common;

use common::{Env, Rng};
use govledger_export::cursor::SinkCursor;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

#[test]
fn sigkill_mid_stream_leaves_every_entry_exactly_once_in_order() {
    const ENTRIES: u64 = 60_000;
    const KILLS: u32 = 12;
    let env = Env::new();
    let events = env.init_with_events(ENTRIES, 21, 3);
    env.json(&["append", events.to_str().unwrap()]);

    let seed = std::env::var("GOVLEDGER_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    println!("kill points from seed {seed} (GOVLEDGER_CRASH_SEED)");
    let mut rng = Rng(seed);

    let out = env.path("siem.ocsf");
    let cursor_dir = env.data().join("sinks").join("crash");
    // Small batches and a small sync threshold: many fsyncs and cursor commits
    // (each sync on the pipeline's second thread, as with the default threshold)
    // to land a kill between.
    let args = [
        "export",
        "--format",
        "ocsf",
        "--sink",
        "crash",
        "--batch",
        "20",
        "--sync-bytes",
        "32768",
        "--to",
    ];
    let (mut kills, mut torn) = (0u32, 0u32);
    let deadline = Instant::now() + Duration::from_secs(300);
    while kills < KILLS {
        assert!(
            Instant::now() < deadline,
            "only {kills} kills landed mid-stream"
        );
        let before = std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0);
        let mut child = Command::new(common::BIN)
            .arg("--data")
            .arg(env.data())
            .args(args)
            .arg(&out)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Kill once it is writing, at a random point after that.
        let mut finished = false;
        loop {
            if child.try_wait().unwrap().is_some() {
                finished = true;
                break;
            }
            if std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0) > before {
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        if finished {
            panic!("the export finished after {kills} kills: make the ledger bigger");
        }
        std::thread::sleep(Duration::from_millis(rng.below(80)));
        child.kill().unwrap(); // SIGKILL
        let status = child.wait().unwrap();
        if status.success() {
            panic!("the export finished after {kills} kills: make the ledger bigger");
        }
        kills += 1;
        // What the killed run left: the cursor's committed length, and the file,
        // which may hold records written after it (cut back on restart).
        let pos = SinkCursor::open(&cursor_dir)
            .unwrap()
            .position()
            .unwrap()
            .expect("a started sink has a position");
        let len = std::fs::metadata(&out).unwrap().len();
        assert!(len >= pos.sink_len, "the file lost committed bytes");
        if len > pos.sink_len {
            torn += 1;
        }
    }
    println!("{kills} kills, {torn} with records written after the committed cursor");
    assert!(
        torn > 0,
        "no kill landed between a write and its cursor commit"
    );

    let mut last = args.to_vec();
    last.push(out.to_str().unwrap());
    let done = env.json(&last);
    assert_eq!(done["next_seq"].as_u64(), Some(ENTRIES));
    let (got, want) = (std::fs::read(&out).unwrap(), env.export_whole("ocsf"));
    assert_eq!(
        got.len(),
        want.len(),
        "same length as one uninterrupted export"
    );
    assert!(got == want, "same bytes as one uninterrupted export");
    // And so: every seq once, in order.
    for (i, line) in std::str::from_utf8(&got).unwrap().lines().enumerate() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["metadata"]["sequence"].as_u64(), Some(i as u64));
    }
}
