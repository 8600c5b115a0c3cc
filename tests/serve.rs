//! `govledger serve` against a real nats-server started by the test: events
//! published to JetStream become entries in stream order, each receipted; bad
//! messages become rejected entries with an alert and never stall the consumer;
//! republishing after the duplicate window is a `duplicate` rejection; /healthz and
//! /metrics report what happened.

mod common;

use async_nats::jetstream;
use async_nats::HeaderMap;
use common::nats::{round_trip, subscribed, NatsServer};
use common::{Env, Serve};
use futures::StreamExt;
use serde_json::Value;
use std::collections::BTreeSet;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(120);

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Collects `n` messages from `sub` (as JSON), failing after [`WAIT`] with what
/// did arrive and serve's log.
async fn take_json(sub: &mut async_nats::Subscriber, n: usize, serve: &Serve) -> Vec<Value> {
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let m = tokio::time::timeout(WAIT, sub.next())
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "only {} of {n} messages arrived: {out:?}\nserve's log:\n{}",
                    out.len(),
                    serve.log()
                )
            })
            .expect("subscription open");
        out.push(serde_json::from_slice(&m.payload).expect("a JSON message"));
    }
    out
}

fn lines_of(path: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .expect("read events")
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

/// `govledger publish --json` of the lines in `file` to `nats`.
fn publish(env: &Env, nats: &NatsServer, file: &std::path::Path) -> Value {
    env.json(&[
        "publish",
        "--nats-url",
        &nats.url(),
        file.to_str().expect("utf-8 path"),
    ])
}

/// The event id in a generated line's body.
fn event_id(line: &Value) -> String {
    let body: Value =
        serde_json::from_str(line["body"].as_str().expect("body")).expect("body is JSON");
    body["id"].as_str().expect("id").to_string()
}

#[test]
fn published_events_become_entries_in_stream_order_with_receipts_and_checkpoints() {
    const N: u64 = 600;
    let nats = NatsServer::start();
    let env = Env::new();
    let events = env.init_with_events(N, 11, 3);
    let rt = rt();
    let client = rt.block_on(async { async_nats::connect(nats.url()).await.expect("connect") });
    let [mut receipts, mut checkpoints] =
        rt.block_on(subscribed(&client, ["gov.receipts.>", "gov.checkpoints"]));

    let mut serve = env.spawn_serve(
        &nats.url(),
        &[
            "--stop-at-size",
            &N.to_string(),
            "--checkpoint-every",
            "200",
            "--checkpoint-ms",
            "0",
            "--batch-max",
            "64",
        ],
    );
    let published = publish(&env, &nats, &events);
    assert_eq!(published["published"], N);
    assert_eq!(published["duplicates"], 0);
    let status = serve.wait_exit(WAIT);
    assert!(status.success(), "serve failed: {}", serve.log());

    // One receipt per event, after the entry is durable, matching the entry.
    let receipts = rt.block_on(take_json(&mut receipts, N as usize, &serve));
    let want: BTreeSet<String> = lines_of(&events).iter().map(event_id).collect();
    let got: BTreeSet<String> = receipts
        .iter()
        .map(|r| r["event_id"].as_str().expect("event_id").to_string())
        .collect();
    assert_eq!(got, want, "every event receipted exactly once");
    for r in receipts.iter().step_by(37) {
        assert_eq!(r["verdict"], "accepted", "{r}");
        assert_eq!(r["reason"], Value::Null);
        let e = env.json(&["entry", "--seq", &r["seq"].to_string()]);
        assert_eq!(e["leaf_hash"], r["leaf_hash"]);
        assert_eq!(e["event_id"], r["event_id"]);
    }

    // Stream order: entry i holds the i-th event the stream delivered.
    let mut last = 0;
    for seq in 0..N {
        let e = env.json(&["entry", "--seq", &seq.to_string()]);
        let s = e["stream_seq"].as_u64().expect("stream_seq");
        assert!(s > last, "entry {seq}: stream_seq {s} after {last}");
        last = s;
    }

    // Checkpoints by count, the last one at the final size, as `checkpoint` shows it.
    let notes: Vec<String> = rt.block_on(async {
        let mut v = Vec::new();
        loop {
            // Once seen to time out (Debian's nats-server, 1 run in many): say what
            // did arrive and what the ledger holds, to tell a lost publication from
            // a missing checkpoint.
            let Ok(m) = tokio::time::timeout(WAIT, checkpoints.next()).await else {
                let sizes: Vec<Option<&str>> = v.iter().map(|n: &String| n.lines().nth(1)).collect();
                panic!(
                    "no checkpoint at size {N} published within {WAIT:?}; sizes received: {sizes:?}; the ledger's latest: {}; serve's log:\n{}",
                    env.json(&["checkpoint"]),
                    serve.log()
                );
            };
            let m = m.expect("subscription open");
            let note = String::from_utf8(m.payload.to_vec()).expect("utf-8 note");
            let size: u64 = note
                .lines()
                .nth(1)
                .expect("size line")
                .parse()
                .expect("size");
            v.push(note);
            if size == N {
                return v;
            }
        }
    });
    assert!(
        notes.len() >= 3,
        "a checkpoint at least every 200 entries: {notes:?}"
    );
    let cp = env.json(&["checkpoint"]);
    assert_eq!(cp["checkpoint"].as_str(), notes.last().map(String::as_str));
    // The cursor is the last stream message consumed: our own receipts and
    // checkpoints, which the gov.> stream stores too, come after the last event.
    let cursor = env.status()["cursor"].as_u64().expect("cursor");
    assert!(
        cursor >= last,
        "cursor {cursor} behind the last entry's {last}"
    );
    env.json(&["verify"]);
}

/// A JetStream publish with headers; returns the ack.
async fn js_publish(
    js: &jetstream::Context,
    subject: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> jetstream::publish::PublishAck {
    let mut h = HeaderMap::new();
    for (k, v) in headers {
        h.insert(*k, *v);
    }
    js.publish_with_headers(subject.to_string(), h, body.into())
        .await
        .expect("publish")
        .await
        .expect("ack")
}

#[test]
fn bad_messages_are_rejected_entries_with_alerts_and_the_consumer_goes_on() {
    let nats = NatsServer::start();
    let env = Env::new();
    let events = env.init_with_events(3, 5, 1);
    let lines = lines_of(&events);
    let rt = rt();
    let client = rt.block_on(async { async_nats::connect(nats.url()).await.expect("connect") });
    let _in_runtime = rt.enter();
    let js = jetstream::new(client.clone());
    let [mut receipts, mut alerts, mut reply] = rt.block_on(subscribed(
        &client,
        ["gov.receipts.>", "gov.alerts.>", "test.reply.1"],
    ));
    let mut serve = env.spawn_serve(&nats.url(), &["--stop-at-size", "7"]);
    serve.wait_for_line("consuming", WAIT);

    let good = |i: usize| {
        let l = &lines[i];
        (
            l["subject"].as_str().expect("subject").to_string(),
            l["key"].as_str().expect("key").to_string(),
            l["sig"].as_str().expect("sig").to_string(),
            l["body"].as_str().expect("body").as_bytes().to_vec(),
        )
    };
    let (s0, k0, g0, b0) = good(0);
    let (s1, k1, g1, b1) = good(1);
    let (s2, k2, g2, b2) = good(2);
    // Still valid JSON of the right schema, but not the bytes that were signed.
    let id1 = event_id(&lines[1]);
    let forged = String::from_utf8(b1.clone())
        .expect("utf-8")
        .replacen(&id1, &format!("{id1}x"), 1)
        .into_bytes();
    rt.block_on(async {
        js_publish(&js, &s0, &[("Gov-Key", &k0), ("Gov-Sig", &g0)], b0).await;
        js_publish(
            &js,
            &s1,
            &[("Gov-Key", &k1), ("Gov-Sig", &g1)],
            b"{not json".to_vec(),
        )
        .await;
        js_publish(
            &js,
            &s1,
            &[("Gov-Key", &k1), ("Gov-Sig", &g1)],
            vec![0xff, 0xfe, 0x00],
        )
        .await;
        js_publish(&js, &s1, &[], b1.clone()).await;
        js_publish(&js, &s1, &[("Gov-Key", &k1), ("Gov-Sig", &g1)], forged).await;
        js_publish(&js, &s1, &[("Gov-Key", &k1), ("Gov-Sig", &g1)], b1).await;
        js_publish(
            &js,
            &s2,
            &[
                ("Gov-Key", &k2),
                ("Gov-Sig", &g2),
                ("Gov-Reply", "test.reply.1"),
            ],
            b2,
        )
        .await;
    });
    assert!(serve.wait_exit(WAIT).success(), "{}", serve.log());

    let receipts = rt.block_on(take_json(&mut receipts, 7, &serve));
    let verdicts: Vec<(&str, Option<&str>)> = receipts
        .iter()
        .map(|r| {
            (
                r["verdict"].as_str().expect("verdict"),
                r["reason"].as_str(),
            )
        })
        .collect();
    assert_eq!(
        verdicts,
        [
            ("accepted", None),
            ("rejected", Some("malformed_json")),
            ("rejected", Some("not_utf8")),
            ("rejected", Some("missing_header")),
            ("rejected", Some("bad_signature")),
            ("accepted", None),
            ("accepted", None),
        ]
    );
    let seqs: Vec<u64> = receipts
        .iter()
        .map(|r| r["seq"].as_u64().expect("seq"))
        .collect();
    assert_eq!(seqs, (0..7).collect::<Vec<_>>());

    let alerts = rt.block_on(take_json(&mut alerts, 4, &serve));
    let reasons: Vec<&str> = alerts
        .iter()
        .map(|a| a["reason"].as_str().expect("reason"))
        .collect();
    assert_eq!(
        reasons,
        [
            "malformed_json",
            "not_utf8",
            "missing_header",
            "bad_signature"
        ]
    );
    for a in &alerts {
        assert!(a["detail"].as_str().is_some_and(|d| !d.is_empty()), "{a}");
    }

    // The producer that asked for a reply got the receipt of its event there.
    let r = rt.block_on(take_json(&mut reply, 1, &serve));
    assert_eq!(r[0], receipts[6]);

    // A rejected entry keeps the digest and size of the body, not the body.
    let e = env.json(&["entry", "--seq", "2"]);
    assert_eq!(e["verdict"], "rejected");
    assert_eq!(e["body_len"], 3);
    assert_eq!(e["body"], Value::Null);
    assert_eq!(e.get("event"), Some(&Value::Null), "{e}");
    env.json(&["verify"]);
}

#[test]
fn republishing_an_accepted_event_after_the_duplicate_window_is_a_duplicate_rejection() {
    let nats = NatsServer::start();
    let env = Env::new();
    let events = env.init_with_events(1, 9, 1);
    let line = &lines_of(&events)[0];
    let (subject, key, sig, body) = (
        line["subject"].as_str().expect("subject"),
        line["key"].as_str().expect("key"),
        line["sig"].as_str().expect("sig"),
        line["body"].as_str().expect("body").as_bytes().to_vec(),
    );
    let id = format!("{}:{}", "acme", event_id(line));
    let rt = rt();
    let client = rt.block_on(async { async_nats::connect(nats.url()).await.expect("connect") });
    let _in_runtime = rt.enter();
    let js = jetstream::new(client.clone());
    rt.block_on(async {
        js.create_stream(jetstream::stream::Config {
            name: "GOV".into(),
            subjects: vec!["gov.>".into()],
            storage: jetstream::stream::StorageType::File,
            duplicate_window: Duration::from_secs(1),
            ..Default::default()
        })
        .await
        .expect("create stream");
        let headers = [
            ("Gov-Key", key),
            ("Gov-Sig", sig),
            ("Nats-Msg-Id", id.as_str()),
        ];
        let first = js_publish(&js, subject, &headers, body.clone()).await;
        assert!(!first.duplicate);
        // Within the window JetStream drops the copy itself.
        let again = js_publish(&js, subject, &headers, body.clone()).await;
        assert!(
            again.duplicate,
            "a republish within the window is deduplicated"
        );
        assert_eq!(again.sequence, first.sequence);
        // Once the window has passed, JetStream stores it again: the ledger must
        // catch it. Try until JetStream takes it (backing off between tries).
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let ack = js_publish(&js, subject, &headers, body.clone()).await;
            if !ack.duplicate {
                assert!(ack.sequence > first.sequence);
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "window never passed"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    let mut serve = env.spawn_serve(&nats.url(), &["--stop-at-size", "2"]);
    assert!(serve.wait_exit(WAIT).success(), "{}", serve.log());
    let first = env.json(&["entry", "--seq", "0"]);
    let second = env.json(&["entry", "--seq", "1"]);
    assert_eq!(first["verdict"], "accepted");
    assert_eq!(second["verdict"], "rejected");
    assert_eq!(second["reason"], "duplicate");
    assert_eq!(second["body_sha256"], first["body_sha256"]);
}

fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no metric {name} in:\n{text}"))
        .trim()
        .parse::<f64>()
        .expect("a number") as u64
}

#[test]
fn healthz_and_metrics_report_the_consumer() {
    const N: u64 = 40;
    let mut nats = NatsServer::start();
    let env = Env::new();
    let events = env.init_with_events(N, 4, 2);
    let rt = rt();
    let client = rt.block_on(async { async_nats::connect(nats.url()).await.expect("connect") });
    let [mut receipts] = rt.block_on(subscribed(&client, ["gov.receipts.>"]));
    let mut serve = env.spawn_serve(
        &nats.url(),
        &["--checkpoint-ms", "0", "--checkpoint-every", "0"],
    );
    serve.wait_for_line("consuming", WAIT);
    assert_eq!(serve.http_get("/healthz"), (200, "ok\n".to_string()));
    assert_eq!(serve.http_get("/nope").0, 404);
    // govledger turns transparent huge pages off for itself (README, "Operations").
    #[cfg(target_os = "linux")]
    {
        let status = std::fs::read_to_string(format!("/proc/{}/status", serve.child.id()))
            .expect("serve's /proc status");
        let thp = status
            .lines()
            .find_map(|l| l.strip_prefix("THP_enabled:"))
            .expect("a kernel that reports THP_enabled (Linux 5.0 or newer)");
        assert_eq!(thp.trim(), "0", "serve runs with transparent huge pages on");
    }

    publish(&env, &nats, &events);
    rt.block_on(async {
        client
            .publish("gov.acme.action", "{}".into())
            .await
            .expect("publish");
        round_trip(&client).await;
    });
    rt.block_on(take_json(&mut receipts, N as usize + 1, &serve));

    // The HTTP state API answers with exactly what `state --json` prints.
    for view in ["sessions", "budgets", "keys", "approvals", "killswitches"] {
        let (code, body) = serve.http_get(&format!("/v1/state/acme/{view}"));
        assert_eq!(code, 200, "{body}");
        let http: Value = serde_json::from_str(&body).expect("JSON");
        assert_eq!(
            http,
            env.json(&["state", view, "--tenant", "acme"]),
            "{view}"
        );
    }
    let (code, body) = serve.http_get("/v1/state/acme/nope");
    assert_eq!(code, 404);
    assert!(
        body.contains("unknown view") && body.contains("sessions"),
        "{body}"
    );
    assert_eq!(serve.http_get("/v1/state/Not%20A%20Tenant/keys").0, 400);

    // Read-only commands work while serve holds the store.
    let e = env.json(&["entry", "--seq", "0"]);
    assert_eq!(e["verdict"], "accepted");
    assert_eq!(env.json(&["verify"])["ok"], true);
    assert_eq!(env.status()["size"], N + 1);

    let (code, text) = serve.http_get("/metrics");
    assert_eq!(code, 200);
    assert_eq!(metric(&text, "govledger_consumed_total"), N + 1);
    assert_eq!(metric(&text, "govledger_accepted_total"), N);
    assert_eq!(
        metric(
            &text,
            "govledger_rejected_total{reason=\"schema_violation\"}"
        ),
        1
    );
    assert_eq!(
        metric(&text, "govledger_rejected_total{reason=\"bad_signature\"}"),
        0
    );
    assert_eq!(
        metric(&text, "govledger_alerts_total{kind=\"rejected\"}"),
        1
    );
    // Detections depend on the generated stream (risk escalations); the counter is
    // there, and the detection test checks the alerts themselves.
    metric(&text, "govledger_alerts_total{kind=\"detection\"}");
    metric(&text, "govledger_alerts_total{kind=\"budget_warning\"}");
    let batches = metric(&text, "govledger_batches_total");
    assert!(batches >= 1);
    assert_eq!(metric(&text, "govledger_batch_seconds_count"), batches);
    // Every message consumed was timed on its way in and to its receipt.
    assert_eq!(metric(&text, "govledger_delivery_seconds_count"), N + 1);
    assert_eq!(metric(&text, "govledger_receipt_seconds_count"), N + 1);
    // serve also reads back its own receipts, which the gov.> stream stores; once
    // it has caught up with them the lag it reports is 0.
    let deadline = std::time::Instant::now() + WAIT;
    while metric(&serve.http_get("/metrics").1, "govledger_consumer_lag") != 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the lag never reached 0"
        );
        std::thread::sleep(Duration::from_millis(20)); // poll interval
    }
    assert_eq!(
        metric(&text, "govledger_checkpoint_size"),
        0,
        "no checkpoint by count or time"
    );
    // serve's own receipts, read back, append nothing and are no batch: the
    // last batch is the last one of entries.
    let text = serve.http_get("/metrics").1;
    assert!(metric(&text, "govledger_batch_size") > 0, "{text}");
    assert_eq!(metric(&text, "govledger_batches_total"), batches);
    assert_eq!(metric(&text, "govledger_nats_connected"), 1);

    // A graceful stop signs a last checkpoint over everything appended.
    assert!(serve.terminate().success(), "{}", serve.log());
    assert_eq!(env.status()["last_checkpoint"], N + 1);

    // Started again, serve shows the newest checkpoint before it signs one.
    let mut serve = env.spawn_serve(
        &nats.url(),
        &["--checkpoint-ms", "0", "--checkpoint-every", "0"],
    );
    serve.wait_for_line("consuming", WAIT);
    let text = serve.http_get("/metrics").1;
    assert_eq!(metric(&text, "govledger_checkpoint_size"), N + 1);

    // With NATS gone, /healthz says so (a load balancer or probe stops
    // counting on this serve) until the connection is back.
    nats.kill();
    let until = |code: u16, body: &str| {
        let deadline = std::time::Instant::now() + WAIT;
        while serve.http_get("/healthz") != (code, body.to_string()) {
            assert!(
                std::time::Instant::now() < deadline,
                "/healthz never answered {code} {body:?}: {:?}",
                serve.http_get("/healthz")
            );
            std::thread::sleep(Duration::from_millis(20)); // poll interval
        }
    };
    until(503, "nats disconnected\n");
    assert_eq!(
        metric(&serve.http_get("/metrics").1, "govledger_nats_connected"),
        0
    );
    nats.restart();
    until(200, "ok\n");
    assert!(serve.terminate().success(), "{}", serve.log());
}

/// `--checkpoint-ms` holds while no message comes: the entries of a burst are
/// signed once the interval has passed, without another message to wake serve.
#[test]
fn an_idle_serve_signs_its_last_entries_when_the_interval_has_passed() {
    const N: u64 = 30;
    let nats = NatsServer::start();
    let env = Env::new();
    let events = env.init_with_events(N, 6, 1);
    let rt = rt();
    let client = rt.block_on(async { async_nats::connect(nats.url()).await.expect("connect") });
    let [mut checkpoints] = rt.block_on(subscribed(&client, ["gov.checkpoints"]));
    let mut serve = env.spawn_serve(
        &nats.url(),
        &["--checkpoint-ms", "300", "--checkpoint-every", "0"],
    );
    serve.wait_for_line("consuming", WAIT);
    publish(&env, &nats, &events);
    // Nothing more is published: the checkpoint over all N comes by time alone.
    let size = rt.block_on(async {
        loop {
            let Ok(m) = tokio::time::timeout(WAIT, checkpoints.next()).await else {
                panic!(
                    "no checkpoint at size {N} within {WAIT:?}; serve's log:\n{}",
                    serve.log()
                );
            };
            let note = String::from_utf8(m.expect("subscribed").payload.to_vec()).unwrap();
            let size: u64 = note.lines().nth(1).unwrap().parse().unwrap();
            if size >= N {
                return size;
            }
        }
    });
    assert_eq!(size, N);
    assert_eq!(env.status()["last_checkpoint"], N);
    let text = serve.http_get("/metrics").1;
    assert_eq!(metric(&text, "govledger_checkpoint_size"), N);
    assert!(serve.terminate().success(), "{}", serve.log());
}

#[test]
fn serve_and_publish_authenticate_from_flags_env_or_config_and_fail_clearly_without() {
    const N: u64 = 5;
    let nats = NatsServer::start_with(&["--auth", "s3cret-token"]);
    let env = Env::new();
    let events = env.init_with_events(N, 2, 1);
    let events = events.to_str().expect("utf-8 path");

    // No credentials: a clear error and exit code 2, nothing consumed.
    let out = env.run(&[
        "serve",
        "--http",
        "off",
        "--nats-url",
        &nats.url(),
        "--stop-at-size",
        "1",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("cannot connect to NATS at"), "{err}");
    assert!(err.to_lowercase().contains("authorization"), "{err}");

    // The token from the environment.
    let out = std::process::Command::new(common::BIN)
        .args(["--json", "publish", "--nats-url", &nats.url(), events])
        .env("NATS_TOKEN", "s3cret-token")
        .output()
        .expect("publish");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A config file with an unknown key is refused, naming the file and the key.
    let bad = env.path("bad.toml");
    std::fs::write(&bad, "[serve]\nbatch_maxx = 3\n").expect("write");
    let out = env.run(&["serve", "--config", bad.to_str().expect("path")]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("bad.toml") && err.contains("batch_maxx"),
        "{err}"
    );

    // The token and everything else from the config file.
    let cfg = env.path("govledger.toml");
    std::fs::write(
        &cfg,
        format!(
            "[nats]\nurl = \"{}\"\ntoken = \"s3cret-token\"\n\n[serve]\nhttp = \"off\"\nbatch_max = 2\n",
            nats.url()
        ),
    )
    .expect("write");
    let out = env.run(&[
        "--json",
        "serve",
        "--config",
        cfg.to_str().expect("path"),
        "--stop-at-size",
        &N.to_string(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: Value = serde_json::from_slice(&out.stdout).expect("serve --json");
    assert_eq!(summary["size"], N);
    assert_eq!(summary["accepted"], N);
}

#[test]
fn detection_rules_from_the_config_file_raise_alerts() {
    let nats = NatsServer::start();
    let env = Env::new();
    env.init_with_events(1, 8, 1);
    // acme's admin key (a trust root) signs a session and three denied proposals.
    let admin = govledger_ingest::gen::derive_key(8, "acme/admin");
    let actor = serde_json::json!({"user": "u-1", "agent": "agent-9"});
    let mut lines = vec![govledger_ingest::gen::signed_line(
        &admin,
        "acme/admin",
        "acme",
        "session.started",
        "e-0",
        serde_json::json!({"session": "s-1", "actor": actor}),
        0,
    )];
    for i in 1..=3 {
        lines.push(govledger_ingest::gen::signed_line(
            &admin,
            "acme/admin",
            "acme",
            "action.proposed",
            &format!("e-p{i}"),
            serde_json::json!({"proposal": format!("p-{i}"), "session": "s-1", "actor": actor,
                               "action": "db.drop", "resource": "db:prod",
                               "args_digest": "ab".repeat(32), "risk_tier": "critical"}),
            0,
        ));
        lines.push(govledger_ingest::gen::signed_line(
            &admin,
            "acme/admin",
            "acme",
            "policy.decided",
            &format!("e-d{i}"),
            serde_json::json!({"proposal": format!("p-{i}"), "session": "s-1", "actor": actor,
                               "decision": "deny", "policy_id": "db", "policy_version": "1",
                               "rule_ids": [], "reason": "no"}),
            0,
        ));
    }
    let file = env.path("denied.jsonl");
    let text: Vec<String> = lines
        .iter()
        .map(|l| serde_json::to_string(l).expect("json"))
        .collect();
    std::fs::write(&file, text.join("\n")).expect("write");
    let cfg = env.path("detect.toml");
    std::fs::write(&cfg, "[detect]\ndenials_max = 2\nvelocity_max = 0\n").expect("write");

    let rt = rt();
    let client = rt.block_on(async { async_nats::connect(nats.url()).await.expect("connect") });
    let [mut alerts] = rt.block_on(subscribed(&client, ["gov.alerts.acme"]));
    let size = lines.len().to_string();
    let mut serve = env.spawn_serve(
        &nats.url(),
        &[
            "--config",
            cfg.to_str().expect("path"),
            "--stop-at-size",
            &size,
        ],
    );
    publish(&env, &nats, &file);
    assert!(serve.wait_exit(WAIT).success(), "{}", serve.log());
    let got = rt.block_on(take_json(&mut alerts, 1, &serve));
    assert_eq!(got[0]["kind"], "detection");
    assert_eq!(got[0]["rule"], "repeated_denials");
    assert_eq!(got[0]["agent"], "agent-9");
    assert_eq!(got[0]["event_id"], "e-d2");
    let seq = got[0]["seq"].as_u64().expect("seq");
    assert_eq!(
        env.json(&["entry", "--seq", &seq.to_string()])["event_id"],
        "e-d2"
    );
}

/// `serve` writes snapshots at checkpoints by its policy, keeps the newest few,
/// restarts from the newest (not from entry 0), and the state it reaches is the one
/// a fold of the whole log gives.
#[test]
fn serve_writes_snapshots_and_restarts_from_the_newest() {
    const N: u64 = 600;
    let nats = NatsServer::start();
    let env = Env::new();
    let events = env.init_with_events(N, 12, 3);
    let published = publish(&env, &nats, &events);
    assert_eq!(published["published"], N);
    let args = |stop: u64| {
        vec![
            "--stop-at-size".to_string(),
            stop.to_string(),
            "--checkpoint-every".into(),
            "100".into(),
            "--checkpoint-ms".into(),
            "0".into(),
            "--batch-max".into(),
            "50".into(),
            "--snapshot-every".into(),
            "200".into(),
            "--snapshot-keep".into(),
            "2".into(),
        ]
    };
    let run = |stop: u64| {
        let a = args(stop);
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        let mut serve = env.spawn_serve(&nats.url(), &a);
        let status = serve.wait_exit(WAIT);
        assert!(status.success(), "serve failed: {}", serve.log());
        serve.log()
    };

    // Batches (and so checkpoints) end where the consumer runs dry, not at round
    // numbers: read the sizes back instead of predicting them.
    let first = run(300);
    assert!(!first.contains("restored from a snapshot"), "{first}");
    let sizes = |v: &Value| -> Vec<u64> {
        v["snapshots"]
            .as_array()
            .expect("snapshots")
            .iter()
            .map(|s| {
                assert_eq!(s["ok"], true, "{s}");
                s["size"].as_u64().expect("size")
            })
            .collect()
    };
    let after_first = sizes(&env.json(&["snapshot", "list"]));
    let newest = *after_first.last().expect("a snapshot after 300 entries");
    assert!(after_first.len() == 1 && newest >= 200, "{after_first:?}");

    let second = run(N);
    let restored = second
        .lines()
        .find(|l| l.contains("restored from a snapshot"))
        .unwrap_or_else(|| panic!("serve did not start from the snapshot: {second}"));
    assert!(restored.contains(&format!("size={newest}")), "{restored}");
    let list = env.json(&["snapshot", "list"]);
    let after_second = sizes(&list);
    // At least one more was written (the log grew by more than 200 since the
    // newest), and no more than two are kept.
    assert!(
        after_second.len() <= 2 && *after_second.last().expect("snapshots") > newest,
        "{after_second:?} after {newest}"
    );
    assert_eq!(list["log_size"], N);

    for view in ["budgets", "approvals", "killswitches", "sessions", "keys"] {
        let from_snapshot = env.json(&["state", view]);
        let from_zero = env.json(&["state", view, "--no-snapshots"]);
        assert_eq!(from_snapshot, from_zero, "view {view}");
        let at = env.json(&["state", view, "--at", "450"]);
        let at_zero = env.json(&["state", view, "--at", "450", "--no-snapshots"]);
        assert_eq!(at, at_zero, "view {view} at 450");
    }
    assert_eq!(env.json(&["verify"])["ok"], true);
}

/// What `serve` relies on before it stops, and the tests before they start it:
/// once `round_trip` returns, the server has routed every message the client
/// published before it, so another client's round trip finds them all already
/// delivered to its subscription.
#[test]
fn a_round_trip_returns_after_the_server_routed_every_earlier_publication() {
    const N: usize = 5_000;
    let nats = NatsServer::start();
    let rt = rt();
    rt.block_on(async {
        let reader = async_nats::connect(nats.url()).await.expect("connect");
        let writer = async_nats::connect(nats.url()).await.expect("connect");
        let [mut sub] = subscribed(&reader, ["t.round"]).await;
        for i in 0..N {
            writer
                .publish("t.round", i.to_string().into())
                .await
                .expect("publish");
        }
        round_trip(&writer).await;
        // The server queued all N for `reader` before answering `writer`, and
        // answers `reader` after them on the same connection.
        round_trip(&reader).await;
        // Unconstrained: tokio's cooperative budget would otherwise make the
        // receiver say "not ready" after 128 messages, there or not.
        tokio::task::unconstrained(async {
            for i in 0..N {
                let m = futures::FutureExt::now_or_never(sub.next())
                    .unwrap_or_else(|| panic!("message {i} of {N} was not there yet"))
                    .expect("subscription open");
                assert_eq!(m.payload, i.to_string().as_bytes(), "in order");
            }
        })
        .await;
    });
}

/// With no server to answer, the round trip gives up with an error after its
/// timeout instead of waiting for ever (serve then logs it and stops anyway).
#[test]
fn a_round_trip_without_a_server_fails_instead_of_waiting() {
    let mut nats = NatsServer::start();
    let rt = rt();
    let client = rt.block_on(async { async_nats::connect(nats.url()).await.expect("connect") });
    nats.kill();
    let err = rt
        .block_on(async {
            tokio::time::timeout(WAIT, govledger_ingest::nats::round_trip(&client)).await
        })
        .expect("the round trip gives up by itself")
        .expect_err("no server, no answer");
    assert!(
        err.to_string().contains("no answer to a round trip"),
        "{err}"
    );
}
