//! SIEM sinks run inside `govledger serve` from its config file (`[[serve.sinks]]`),
//! with the real binary, a real nats-server and real receivers: a file sink gets
//! every entry exactly once, in order, across a SIGTERM and a restart; a bad sink
//! table stops serve before it consumes anything; a HEC receiver answering 503
//! does not hold up ingest, and the sink catches up once it recovers.

mod common;

use base64::Engine;
use common::nats::{subscribed, NatsServer};
use common::{Env, Serve};
use futures::StreamExt;
use serde_json::Value;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(120);

/// Polls `cond` until it holds; fails naming `what` (with serve's log) after [`WAIT`].
fn wait_until(what: &str, serve: &Serve, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; serve's log:\n{}",
            serve.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The complete (newline-terminated) lines of `path`; none when it is missing.
fn complete_lines(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let whole = text.rfind('\n').map_or("", |i| &text[..=i]);
    whole.lines().map(str::to_owned).collect()
}

/// Writes `events` (lines of `gen` output) `[from, to)` to `name` and returns it.
fn slice_of(env: &Env, events: &Path, from: usize, to: usize, name: &str) -> PathBuf {
    let all = std::fs::read_to_string(events).expect("read events");
    let lines: Vec<&str> = all.lines().collect();
    let path = env.path(name);
    std::fs::write(&path, lines[from..to].join("\n") + "\n").expect("write slice");
    path
}

fn publish(env: &Env, nats: &NatsServer, file: &Path) {
    let out = env.json(&[
        "publish",
        "--nats-url",
        &nats.url(),
        "--max-in-flight",
        "1",
        file.to_str().expect("utf-8 path"),
    ]);
    assert_eq!(out["duplicates"], 0, "{out}");
}

fn size(env: &Env) -> u64 {
    env.status()["size"].as_u64().expect("size")
}

fn write_config(env: &Env, name: &str, text: &str) -> PathBuf {
    let path = env.path(name);
    std::fs::write(&path, text).expect("write config");
    path
}

/// SIGTERM, exit 0, and the `--json` summary serve printed.
fn terminate_with_summary(serve: &mut Serve) -> Value {
    let status = serve.terminate();
    assert!(status.success(), "serve failed: {}", serve.log());
    let mut out = String::new();
    serve
        .child
        .stdout
        .take()
        .expect("piped stdout")
        .read_to_string(&mut out)
        .expect("read serve's stdout");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("no JSON summary ({e}): {out}"))
}

#[test]
fn a_file_sink_inside_serve_gets_every_entry_once_in_order_across_a_restart() {
    const N: usize = 400;
    const FIRST: usize = 250;
    let nats = NatsServer::start();
    let env = Env::new();
    let events = env.init_with_events(N as u64, 21, 3);
    let head = slice_of(&env, &events, 0, FIRST, "head.jsonl");
    let tail = slice_of(&env, &events, FIRST, N, "tail.jsonl");
    let out = env.path("siem.ocsf");
    let cfg = write_config(
        &env,
        "serve.toml",
        &format!(
            "[serve]\nbatch_max = 16\n\n[[serve.sinks]]\nname = \"siem-file\"\nformat = \"ocsf\"\nto = \"{}\"\npoll_ms = 20\nbatch = 7\n",
            out.display()
        ),
    );
    let cfg = cfg.to_str().expect("utf-8 path");

    // First run: the sink follows what serve appends; SIGTERM as soon as the
    // ledger holds the first events, whether or not the sink has caught up.
    let mut serve = env.spawn_serve(&nats.url(), &["--json", "--config", cfg]);
    serve.wait_for_line("consuming", WAIT);
    publish(&env, &nats, &head);
    wait_until("the first events in the ledger", &serve, || {
        size(&env) == FIRST as u64
    });
    let summary = terminate_with_summary(&mut serve);
    let sink = &summary["sinks"][0];
    assert_eq!(sink["name"], "siem-file", "{summary}");
    assert_eq!(sink["error"], Value::Null, "{summary}");
    let resumes = sink["next_seq"].as_u64().expect("next_seq");
    assert!(resumes <= FIRST as u64, "{summary}");
    // A file sink stops between batches: the file holds exactly what it committed.
    assert_eq!(complete_lines(&out).len() as u64, resumes);
    assert!(serve.log().contains("sink stopped"), "{}", serve.log());

    // Second run: resumes at the cursor, then follows the rest.
    let mut serve = env.spawn_serve(&nats.url(), &["--json", "--config", cfg]);
    serve.wait_for_line("consuming", WAIT);
    publish(&env, &nats, &tail);
    wait_until("every entry in the sink's file", &serve, || {
        complete_lines(&out).len() >= N
    });
    let summary = terminate_with_summary(&mut serve);
    let sink = &summary["sinks"][0];
    assert_eq!(sink["error"], Value::Null, "{summary}");
    assert_eq!(sink["next_seq"].as_u64(), Some(N as u64), "{summary}");
    assert_eq!(sink["exported"].as_u64(), Some(N as u64 - resumes));
    assert_eq!(size(&env), N as u64);

    // Every entry once, in order, with the ledger's seq and leaf hash.
    let got = complete_lines(&out);
    assert_eq!(got.len(), N);
    for (seq, line) in got.iter().enumerate() {
        let v: Value = serde_json::from_str(line).expect("an OCSF line");
        assert_eq!(v["metadata"]["sequence"].as_u64(), Some(seq as u64));
        let e = env.json(&["entry", "--seq", &seq.to_string()]);
        let leaf: String = base64::engine::general_purpose::STANDARD
            .decode(e["leaf_hash"].as_str().expect("leaf_hash"))
            .expect("base64")
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(v["metadata"]["uid"].as_str(), Some(leaf.as_str()), "{seq}");
    }
    // Byte for byte what one export of the whole log writes.
    assert_eq!(
        std::fs::read(&out).expect("sink file"),
        env.export_whole("ocsf")
    );
    // The cursor was committed at the stop: the same sink has nothing left to do.
    let s = env.json(&[
        "export",
        "--format",
        "ocsf",
        "--to",
        out.to_str().unwrap(),
        "--sink",
        "siem-file",
    ]);
    assert_eq!(
        (s["from"].as_u64(), s["exported"].as_u64()),
        (Some(N as u64), Some(0))
    );
}

#[test]
fn a_bad_sink_table_stops_serve_before_it_consumes_anything() {
    let nats = NatsServer::start();
    let env = Env::new();
    let events = env.init_with_events(3, 4, 1);
    // Events are waiting: a serve that accepted its config would consume one and
    // exit 0 (--stop-at-size 1) instead of failing.
    publish(&env, &nats, &events);
    let file = env.path("out.jsonl");
    let file = file.display();
    let sink = |body: &str| format!("[[serve.sinks]]\n{body}\n");
    let cases: Vec<(String, &[&str])> = vec![
        (
            sink(&format!("name = \"s1\"\nformat = \"xml\"\nto = \"{file}\"")),
            &["sink \"s1\"", "format = \"xml\"", "unknown export format"],
        ),
        (
            sink("name = \"s2\"\nformat = \"ocsf\"\nto = \"ftp://h/x\""),
            &["sink \"s2\"", "to = \"ftp://h/x\"", "unknown destination"],
        ),
        (
            sink("name = \"s3\"\nformat = \"ocsf\"\nto = \"syslog+tcp://h\""),
            &["sink \"s3\"", "to = \"syslog+tcp://h\"", "port is missing"],
        ),
        (
            sink("name = \"s4\"\nformat = \"ocsf\"\nto = \"http://127.0.0.1:1\"\nhec_token_env = \"GOVLEDGER_TEST_NO_SUCH_TOKEN\""),
            &["sink \"s4\"", "hec_token_env = \"GOVLEDGER_TEST_NO_SUCH_TOKEN\"", "not set"],
        ),
        (
            sink(&format!("name = \"../x\"\nformat = \"ocsf\"\nto = \"{file}\"")),
            &["sink \"../x\"", "name:", "is invalid"],
        ),
        (
            format!(
                "{}{}",
                sink(&format!("name = \"twice\"\nformat = \"ocsf\"\nto = \"{file}\"")),
                sink(&format!("name = \"twice\"\nformat = \"ecs\"\nto = \"{file}.ecs\""))
            ),
            &["sink \"twice\"", "name:", "two sinks have this name"],
        ),
        (
            format!(
                "{}{}",
                sink(&format!("name = \"a\"\nformat = \"ocsf\"\nto = \"{file}\"")),
                sink(&format!("name = \"b\"\nformat = \"ecs\"\nto = \"{file}\""))
            ),
            &["sink \"b\"", "sink \"a\" writes this file too"],
        ),
        (
            sink(&format!("name = \"s5\"\nformat = \"ocsf\"\nto = \"{file}\"\nbatch = 0")),
            &["sink \"s5\"", "batch = 0"],
        ),
        (
            sink(&format!("name = \"s6\"\nformat = \"ocsf\"\nto = \"{file}\"\nredact = [\"nope\"]")),
            &["sink \"s6\"", "redact = \"nope\"", "NAME=REGEX"],
        ),
        (
            sink(&format!("name = \"s7\"\nformat = \"ocsf\"\nto = \"{file}\"\ntoken = \"x\"")),
            &["bad.toml", "token"],
        ),
        (
            sink("name = \"s8\"\nformat = \"ocsf\"\nto = \"syslog+tcp://127.0.0.1:1\"\nsync_bytes = 0"),
            &["sink \"s8\"", "--sync-bytes applies to file destinations only"],
        ),
    ];
    let url = nats.url();
    let run_serve = |cfg: &std::path::Path| {
        let cfg = cfg.to_str().unwrap();
        let args = [
            "serve",
            "--config",
            cfg,
            "--nats-url",
            &url,
            "--http",
            "off",
        ];
        env.run(&[&args[..], &["--stop-at-size", "1"]].concat())
    };
    for (text, needles) in &cases {
        let cfg = write_config(&env, "bad.toml", text);
        let out = run_serve(&cfg);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{text}: {err}");
        for n in *needles {
            assert!(err.contains(n), "{text}: no {n:?} in {err}");
        }
    }
    assert_eq!(size(&env), 0, "nothing was consumed");
    assert!(!env.data().join("sinks").join("s4").exists());

    // A sink whose cursor was made for another format: serve says what to do
    // with its own means (export's --reset and --sink are no flags of serve's).
    let made = env.run(&[
        "export",
        "--sink",
        "s9",
        "--format",
        "ocsf",
        "--to",
        &format!("{file}.s9"),
    ]);
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let cfg = write_config(
        &env,
        "bad.toml",
        &sink(&format!(
            "name = \"s9\"\nformat = \"ecs\"\nto = \"{file}.s9\""
        )),
    );
    let out = run_serve(&cfg);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    for n in [
        "sink \"s9\"",
        "format, to:",
        "give the table a new name",
        "sinks/s9",
    ] {
        assert!(err.contains(n), "no {n:?} in {err}");
    }
    assert!(!err.contains("--reset"), "{err}");
    assert_eq!(size(&env), 0, "nothing was consumed");
}

/// A Splunk HEC stand-in (`common::hec`) that answers `refusal` (503 or 403)
/// while `down` is set, else 200.
fn hec_server(refusal: u16, down: Arc<AtomicBool>) -> common::hec::HecStandIn {
    common::hec::start(None, move |_| {
        if !down.load(Ordering::SeqCst) {
            common::hec::SUCCESS
        } else if refusal == 503 {
            common::hec::BUSY
        } else {
            common::hec::BAD_TOKEN
        }
    })
}

#[test]
fn a_hec_sink_answered_503_does_not_hold_up_ingest_and_catches_up() {
    const N: usize = 300;
    const TOKEN_ENV: &str = "GOVLEDGER_SERVE_SINKS_TEST_HEC_TOKEN";
    // Only this test reads it; serve inherits it.
    std::env::set_var(TOKEN_ENV, "11111111-2222-3333-4444-555555555555");
    let nats = NatsServer::start();
    let env = Env::new();
    let events = env.init_with_events(N as u64, 8, 2);
    let down = Arc::new(AtomicBool::new(true));
    let hec = hec_server(503, down.clone());
    let port = hec.port;
    let cfg = write_config(
        &env,
        "serve.toml",
        &format!(
            "[[serve.sinks]]\nname = \"splunk\"\nformat = \"jsonl\"\nto = \"http://127.0.0.1:{port}\"\nhec_token_env = \"{TOKEN_ENV}\"\npoll_ms = 20\nbatch = 50\n"
        ),
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let client = rt.block_on(async { async_nats::connect(nats.url()).await.expect("connect") });
    let [mut receipts] = rt.block_on(subscribed(&client, ["gov.receipts.>"]));

    let mut serve = env.spawn_serve(&nats.url(), &["--json", "--config", cfg.to_str().unwrap()]);
    serve.wait_for_line("consuming", WAIT);
    publish(&env, &nats, &events);
    // Every event is appended and receipted while HEC refuses every batch.
    rt.block_on(async {
        for i in 0..N {
            tokio::time::timeout(WAIT, receipts.next())
                .await
                .unwrap_or_else(|_| panic!("only {i} of {N} receipts"))
                .expect("subscription open");
        }
    });
    assert_eq!(size(&env), N as u64);
    wait_until("a retried 503", &serve, || hec.refused() >= 2);
    assert!(hec.delivered().is_empty());

    // HEC recovers: the sink catches up, every entry once, in order.
    down.store(false, Ordering::SeqCst);
    let seqs = || -> Vec<u64> {
        hec.delivered()
            .iter()
            .flat_map(|b| {
                b.lines()
                    .map(|l| {
                        let v: Value = serde_json::from_str(l).expect("an envelope");
                        v["event"]["seq"].as_u64().expect("seq")
                    })
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    wait_until("every entry delivered to HEC", &serve, || seqs().len() >= N);
    assert_eq!(seqs(), (0..N as u64).collect::<Vec<_>>());
    let summary = terminate_with_summary(&mut serve);
    let sink = &summary["sinks"][0];
    assert_eq!(sink["next_seq"].as_u64(), Some(N as u64), "{summary}");
    // Deliveries retried (one batch, however many attempts).
    assert!(sink["retries"].as_u64() >= Some(1), "{summary}");
    let log = serve.log();
    assert!(
        log.contains("503") && log.contains("retrying") && log.contains("splunk"),
        "the retries are logged with the sink's name: {log}"
    );
}

#[test]
fn a_hec_403_stops_that_sink_with_an_alert_and_serve_goes_on_ingesting() {
    const N: usize = 40;
    const TOKEN_ENV: &str = "GOVLEDGER_SERVE_SINKS_TEST_BAD_HEC_TOKEN";
    std::env::set_var(TOKEN_ENV, "wrong");
    let nats = NatsServer::start();
    let env = Env::new();
    let events = env.init_with_events(N as u64, 9, 1);
    let head = slice_of(&env, &events, 0, N / 2, "head.jsonl");
    let tail = slice_of(&env, &events, N / 2, N, "tail.jsonl");
    let stand_in = hec_server(403, Arc::new(AtomicBool::new(true)));
    let port = stand_in.port;
    let file = env.path("beside.jsonl");
    let cfg = write_config(
        &env,
        "serve.toml",
        &format!(
            "[[serve.sinks]]\nname = \"splunk\"\nformat = \"ocsf\"\nto = \"http://127.0.0.1:{port}\"\nhec_token_env = \"{TOKEN_ENV}\"\npoll_ms = 20\n\n[[serve.sinks]]\nname = \"file\"\nformat = \"jsonl\"\nto = \"{}\"\npoll_ms = 20\n",
            file.display()
        ),
    );
    let mut serve = env.spawn_serve(&nats.url(), &["--json", "--config", cfg.to_str().unwrap()]);
    serve.wait_for_line("consuming", WAIT);
    publish(&env, &nats, &head);
    serve.wait_for_line("export_sink_failed", WAIT);
    assert_eq!(stand_in.refused(), 1, "no retry after a 403");
    // Ingest and the other sink go on.
    publish(&env, &nats, &tail);
    wait_until("every entry in the other sink's file", &serve, || {
        complete_lines(&file).len() >= N
    });
    assert_eq!(size(&env), N as u64);
    // /metrics shows each sink: the failed one down, the other caught up.
    wait_until("the file sink's figures on /metrics", &serve, || {
        serve
            .http_get("/metrics")
            .1
            .contains(&format!("govledger_export_next_seq{{sink=\"file\"}} {N}"))
    });
    let (_, metrics) = serve.http_get("/metrics");
    for line in [
        "govledger_export_up{sink=\"splunk\"} 0",
        "govledger_export_up{sink=\"file\"} 1",
        "govledger_export_next_seq{sink=\"splunk\"} 0",
        &format!("govledger_export_records_total{{sink=\"file\"}} {N}"),
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "{line} not in {metrics}"
        );
    }
    let summary = terminate_with_summary(&mut serve);
    let sinks = summary["sinks"].as_array().expect("sinks");
    let hec = sinks
        .iter()
        .find(|s| s["name"] == "splunk")
        .expect("splunk");
    let error = hec["error"].as_str().unwrap_or_else(|| panic!("{summary}"));
    assert!(
        error.contains("answered 403") && error.contains("Invalid token"),
        "{summary}"
    );
    assert_eq!(hec["next_seq"].as_u64(), Some(0), "nothing committed");
    let other = sinks.iter().find(|s| s["name"] == "file").expect("file");
    assert_eq!(other["next_seq"].as_u64(), Some(N as u64), "{summary}");
    assert!(stand_in.delivered().is_empty());
}
