//! A backlog of 1M events published while `serve` is down is consumed on start with
//! memory that stays bounded: serve's peak resident memory stays under
//! [`MEMORY_BOUND`] (the bound README's "Memory" section states), far below the
//! backlog's own size, so nothing holds the backlog in memory.
//!
//! `GOVLEDGER_BACKLOG_EVENTS` changes the count (default 1,000,000).

mod common;

use common::nats::NatsServer;
use common::Env;
use std::process::Command;

/// The documented bound on `serve`'s peak RSS at default settings.
const MEMORY_BOUND: u64 = 384 << 20;

#[test]
fn a_million_event_backlog_is_consumed_in_bounded_memory() {
    let n: u64 = std::env::var("GOVLEDGER_BACKLOG_EVENTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let nats = NatsServer::start();
    let env = Env::new();
    let events = env.init_with_events(n, 31, 8);
    let backlog_bytes = std::fs::metadata(&events).expect("events file").len();

    let published = env.json(&[
        "publish",
        "--nats-url",
        &nats.url(),
        "--max-in-flight",
        "1024",
        events.to_str().expect("utf-8 path"),
    ]);
    assert_eq!(published["published"], n);

    // serve starts with the whole backlog waiting, consumes it and stops.
    let out = Command::new(common::BIN)
        .arg("--data")
        .arg(env.data())
        .args([
            "--json",
            "serve",
            "--http",
            "off",
            "--nats-url",
            &nats.url(),
        ])
        .args(["--stop-at-size", &n.to_string(), "--checkpoint-ms", "0"])
        .output()
        .expect("run serve");
    assert!(
        out.status.success(),
        "serve failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).expect("serve --json");
    assert_eq!(summary["size"], n, "{summary}");
    assert_eq!(summary["accepted"], n, "{summary}");
    let peak = summary["peak_rss_bytes"]
        .as_u64()
        .expect("serve reports its peak RSS on Linux");
    eprintln!(
        "backlog of {n} events ({} MiB of lines): serve peak RSS {} MiB (bound {} MiB)",
        backlog_bytes >> 20,
        peak >> 20,
        MEMORY_BOUND >> 20
    );
    assert!(
        peak < MEMORY_BOUND,
        "serve peaked at {} MiB, over the {} MiB bound",
        peak >> 20,
        MEMORY_BOUND >> 20
    );
}
