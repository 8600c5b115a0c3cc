//! Exactly once under faults: a steady publisher runs while `govledger serve` is
//! killed with SIGKILL at random moments (at least 20 times) and restarted, and while
//! nats-server itself is killed and restarted twice under a running serve, which
//! must carry on. Afterwards every published
//! event is in the ledger exactly once, in stream order, and `verify` passes.

mod common;

use common::nats::NatsServer;
use common::{Env, Rng, BIN};
use govledger_ledger::store::{OpenMode, RocksStore};
use govledger_ledger::Ledger;
use govledger_schemas::Verdict;
use serde_json::Value;
use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::time::Duration;

const EVENTS: u64 = 3000;
const KILLS: usize = 24;
/// The steady publisher's events and the two markers.
const TOTAL: u64 = EVENTS + 2;

fn size_and_cursor(env: &Env) -> (u64, Option<u64>) {
    let s = env.status();
    (s["size"].as_u64().expect("size"), s["cursor"].as_u64())
}

#[test]
fn every_event_exactly_once_in_stream_order_through_serve_kills_and_nats_restarts() {
    let seed = std::env::var("GOVLEDGER_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_0001_u64);
    eprintln!("kill schedule seed {seed} (set GOVLEDGER_CRASH_SEED to repeat)");
    let mut rng = Rng(seed | 1);

    let mut nats = NatsServer::start();
    let env = Env::new();
    // EVENTS for the steady publisher; and two markers that the test publishes
    // itself right after each nats-server restart: telemetry signed by acme's admin
    // key (a trust root), valid at any point of the stream.
    let events = env.init_with_events(EVENTS, 21, 4);
    let admin = govledger_ingest::gen::derive_key(21, "acme/admin");
    let markers: Vec<std::path::PathBuf> = (0..2)
        .map(|i| {
            let line = govledger_ingest::gen::signed_line(
                &admin,
                "acme/admin",
                "acme",
                "telemetry",
                &format!("marker-{i}"),
                serde_json::json!({"name": "marker", "data": {"restart": i}}),
                0,
            );
            let p = env.path(&format!("marker-{i}.jsonl"));
            std::fs::write(&p, serde_json::to_string(&line).expect("json")).expect("write");
            p
        })
        .collect();

    // The steady publisher: ~200 events/s for ~15 s, retrying through nats restarts.
    let publisher = Command::new(BIN)
        .args([
            "--json",
            "publish",
            "--rate",
            "200",
            // One publish at a time: a retried publish cannot be overtaken, so the
            // stream keeps the file's order and every event passes the ledger's
            // stateful checks (sessions, flows).
            "--max-in-flight",
            "1",
            "--nats-url",
            &nats.url(),
        ])
        .arg(&events)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn publisher");

    let mut grew_mid_stream = 0;
    let mut last = size_and_cursor(&env);
    for round in 0..KILLS {
        let mut serve = env.spawn_serve(
            &nats.url(),
            &["--batch-max", "32", "--checkpoint-every", "100"],
        );
        if round == 8 || round == 16 {
            // nats-server dies under a running serve and comes back; serve must
            // carry on consuming (the marker event proves it) before its own kill.
            serve.wait_for_line("consuming", Duration::from_secs(60));
            nats.kill();
            nats.restart();
            let marker = &markers[usize::from(round == 16)];
            env.json(&[
                "publish",
                "--nats-url",
                &nats.url(),
                marker.to_str().expect("path"),
            ]);
            let before = size_and_cursor(&env).0;
            let deadline = std::time::Instant::now() + Duration::from_secs(60);
            while size_and_cursor(&env).0 <= before {
                assert!(
                    std::time::Instant::now() < deadline,
                    "serve did not resume after the nats-server restart:\n{}",
                    serve.log()
                );
                std::thread::sleep(Duration::from_millis(50)); // poll interval
            }
        } else if rng.below(2) == 0 {
            // Half the other kills land while it starts up, half while it consumes.
            serve.wait_for_line("consuming", Duration::from_secs(60));
        }
        // The random moment itself (a kill time, not a wait for anything).
        std::thread::sleep(Duration::from_millis(rng.below(250)));
        serve.kill();

        // After every kill: the store opens, nothing partial is visible, the cursor
        // is the stream position of the last whole batch.
        let now = size_and_cursor(&env);
        eprintln!("round {round}: size {} -> {}", last.0, now.0);
        assert!(now.0 >= last.0, "round {round}: the log shrank");
        if now.0 > 0 {
            let tail = env.json(&["entry", "--seq", &(now.0 - 1).to_string()]);
            let cursor = now.1.expect("a cursor once entries exist");
            assert!(
                tail["stream_seq"].as_u64().expect("stream_seq") <= cursor,
                "round {round}: the cursor {cursor} is behind the last entry {tail}"
            );
        }
        if now.0 > last.0 && now.0 < TOTAL {
            grew_mid_stream += 1;
        }
        last = now;
    }
    eprintln!("{KILLS} kills, {grew_mid_stream} of them while the log was growing");
    assert!(
        grew_mid_stream >= 8,
        "only {grew_mid_stream} kills landed while events were being appended"
    );

    let out = publisher.wait_with_output().expect("publisher");
    assert!(
        out.status.success(),
        "publisher failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).expect("publish --json");
    assert_eq!(report["published"], EVENTS, "{report}");

    // Catch up to the end, then check.
    let mut serve = env.spawn_serve(&nats.url(), &["--stop-at-size", &TOTAL.to_string()]);
    assert!(
        serve.wait_exit(Duration::from_secs(120)).success(),
        "{}",
        serve.log()
    );
    drop(serve);

    let ledger = Ledger::open(
        RocksStore::open(&env.data().join("db"), OpenMode::ReadOnly).expect("open store"),
    )
    .expect("open ledger");
    assert_eq!(
        ledger.size(),
        TOTAL,
        "one entry per published event, no more"
    );
    let mut ids = BTreeSet::new();
    let mut last_stream_seq = 0;
    for e in govledger_replay::entries_from(&ledger, 0) {
        let e = e.expect("entry");
        assert!(
            e.stream_seq > last_stream_seq,
            "entry {}: stream seq {} after {last_stream_seq}",
            e.seq.0,
            e.stream_seq
        );
        last_stream_seq = e.stream_seq;
        match &e.verdict {
            Verdict::Accepted {
                event_id, tenant, ..
            } => assert!(
                ids.insert((tenant.clone(), event_id.clone())),
                "{event_id} twice"
            ),
            Verdict::Rejected { reason, detail, .. } => {
                panic!("entry {} rejected ({reason:?}): {detail}", e.seq.0)
            }
        }
    }
    assert_eq!(ids.len() as u64, TOTAL);
    let cursor = ledger.cursor().expect("cursor").expect("a cursor");
    assert!(
        cursor >= last_stream_seq,
        "cursor {cursor} behind entry stream seq {last_stream_seq}"
    );
    drop(ledger);
    env.json(&["verify"]);
}
