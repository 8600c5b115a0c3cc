//! `govledger export` end to end: the real binary against real receivers: files,
//! a private rsyslogd (imtcp → omfile), a Splunk HEC stand-in (a std TcpListener
//! that checks the envelope and the token, and answers 503 once), and a rustls
//! server with a private CA for syslog over TLS and https HEC.

mod common;

use base64::Engine;
use common::hec::HecRequest;
use common::nats::free_port;
use common::Env;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(60);

fn ok(out: &Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn failed(out: &Output) -> String {
    assert_eq!(out.status.code(), Some(2), "expected exit 2: {out:?}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A ledger of `events` generated events of which only the first `now` are
/// appended; the rest are in the returned file, for `append` later.
fn ledger_with_more_to_come(events: u64, now: usize) -> (Env, PathBuf) {
    let env = Env::new();
    let lines = env.init_with_events(events, events, 2);
    let all = std::fs::read_to_string(&lines).unwrap();
    let v: Vec<&str> = all.lines().collect();
    let (head, tail) = (env.path("head.jsonl"), env.path("tail.jsonl"));
    std::fs::write(&head, v[..now].join("\n")).unwrap();
    std::fs::write(&tail, v[now..].join("\n")).unwrap();
    env.json(&["append", head.to_str().unwrap()]);
    (env, tail)
}

/// `export --json ARGS` with stdout parsed as the summary.
fn export_json(env: &Env, args: &[&str]) -> Value {
    let mut full = vec!["export"];
    full.extend_from_slice(args);
    env.json(&full)
}

fn export(env: &Env, args: &[&str]) -> Output {
    let mut full = vec!["export"];
    full.extend_from_slice(args);
    env.run(&full)
}

/// The ledger's leaf hashes, hex, as `entry --json` reports them.
fn ledger_leaves(env: &Env) -> Vec<String> {
    let size = env.status()["size"].as_u64().unwrap();
    (0..size)
        .map(|seq| {
            let e = env.json(&["entry", "--seq", &seq.to_string()]);
            let raw = base64::engine::general_purpose::STANDARD
                .decode(e["leaf_hash"].as_str().unwrap())
                .unwrap();
            raw.iter().map(|b| format!("{b:02x}")).collect()
        })
        .collect()
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Polls `cond` until it holds; fails naming `what` after `WAIT`.
fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The SD param `name` of an RFC 5424 message.
fn sd_param<'a>(msg: &'a str, name: &str) -> &'a str {
    let key = format!(" {name}=\"");
    let start = msg
        .find(&key)
        .unwrap_or_else(|| panic!("no {name} in {msg}"))
        + key.len();
    let end = start + msg[start..].find('"').unwrap();
    &msg[start..end]
}

#[test]
fn every_format_to_a_file_carries_seq_leaf_hash_and_tenant_of_every_entry() {
    let env = Env::demo();
    let leaves = ledger_leaves(&env);
    for format in ["jsonl", "ocsf", "ecs", "cef", "syslog", "hec"] {
        let out = env.path(&format!("out.{format}"));
        let s = export_json(&env, &["--format", format, "--to", out.to_str().unwrap()]);
        assert_eq!(
            s["exported"].as_u64(),
            Some(leaves.len() as u64),
            "{format}"
        );
        assert_eq!(s["next_seq"].as_u64(), Some(leaves.len() as u64));
        assert_eq!(s["sink"], Value::Null);
        let got = lines(&out);
        assert_eq!(got.len(), leaves.len(), "{format}: one line per entry");
        for (seq, (line, leaf)) in got.iter().zip(&leaves).enumerate() {
            let (s_seq, s_leaf, tenant) = match format {
                "jsonl" | "ocsf" | "ecs" | "hec" => {
                    let v: Value = serde_json::from_str(line).unwrap();
                    match format {
                        "jsonl" => (
                            v["seq"].to_string(),
                            v["leaf_hash"].clone(),
                            v["tenant"].clone(),
                        ),
                        "ocsf" => (
                            v["metadata"]["sequence"].to_string(),
                            v["metadata"]["uid"].clone(),
                            v["metadata"]["tenant_uid"].clone(),
                        ),
                        "ecs" => (
                            v["event"]["sequence"].to_string(),
                            v["event"]["hash"].clone(),
                            v["organization"]["id"].clone(),
                        ),
                        _ => (
                            v["fields"]["seq"].as_str().unwrap().to_owned(),
                            v["fields"]["leaf_hash"].clone(),
                            v["fields"]["tenant"].clone(),
                        ),
                    }
                }
                "syslog" => (
                    sd_param(line, "seq").to_owned(),
                    Value::from(sd_param(line, "leaf")),
                    Value::from(sd_param(line, "tenant")),
                ),
                _ => {
                    let field = |k: &str| {
                        let key = format!(" {k}=");
                        let i = line.find(&key).unwrap() + key.len();
                        line[i..].split(' ').next().unwrap().to_owned()
                    };
                    (
                        field("cn1"),
                        Value::from(field("cs2")),
                        Value::from(field("cs1")),
                    )
                }
            };
            assert_eq!(s_seq, seq.to_string(), "{format} line {seq}");
            assert_eq!(s_leaf.as_str(), Some(leaf.as_str()), "{format} line {seq}");
            assert_eq!(tenant.as_str(), Some("acme"), "{format} line {seq}");
        }
    }
}

#[test]
fn from_picks_the_first_entry_by_seq_time_or_checkpoint() {
    let env = Env::demo();
    let size = env.status()["size"].as_u64().unwrap();
    let out = env.path("o.jsonl");
    let first_seq = |args: &[&str]| -> Option<u64> {
        let mut a = vec!["--format", "jsonl", "--to", out.to_str().unwrap()];
        a.extend_from_slice(args);
        let s = export_json(&env, &a);
        let got = lines(&out);
        assert_eq!(s["exported"].as_u64(), Some(got.len() as u64));
        got.first().map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["seq"]
                .as_u64()
                .unwrap()
        })
    };
    assert_eq!(first_seq(&["--from", "5"]), Some(5));
    let e7 = env.json(&["entry", "--seq", "7"]);
    let t7 = e7["time_ns"].as_u64().unwrap();
    let e6 = env.json(&["entry", "--seq", "6"]);
    assert!(
        e6["time_ns"].as_u64().unwrap() < t7,
        "demo entries have distinct times"
    );
    let time = govledger_replay::time::format_rfc3339(t7);
    assert_eq!(first_seq(&["--from", &time]), Some(7), "{time}");
    let cp = env.json(&["checkpoint", "--latest"])["tree_size"]
        .as_u64()
        .unwrap();
    assert_eq!(cp, size);
    assert_eq!(first_seq(&["--from", &format!("checkpoint:{cp}")]), None);
    let e = failed(&export(
        &env,
        &["--format", "jsonl", "--from", "checkpoint:3"],
    ));
    assert!(e.contains("no checkpoint was signed at size 3"), "{e}");
    let e = failed(&export(&env, &["--format", "jsonl", "--from", "999"]));
    assert!(e.contains("--from 999"), "{e}");
}

#[test]
fn a_named_sink_resumes_exactly_after_its_cursor_and_refuses_another_format() {
    let (env, tail) = ledger_with_more_to_come(600, 250);
    let out = env.path("siem.ocsf");
    let to = out.to_str().unwrap();
    let s = export_json(
        &env,
        &[
            "--format", "ocsf", "--to", to, "--sink", "siem", "--batch", "64",
        ],
    );
    assert_eq!(s["exported"].as_u64(), Some(250));
    assert_eq!(
        s["sink_len"].as_u64(),
        Some(std::fs::metadata(&out).unwrap().len())
    );
    env.json(&["append", tail.to_str().unwrap()]);
    let s = export_json(&env, &["--format", "ocsf", "--to", to, "--sink", "siem"]);
    assert_eq!(
        (s["from"].as_u64(), s["exported"].as_u64()),
        (Some(250), Some(350))
    );
    // Nothing new: nothing exported; also with the file spelled another way.
    let s = export_json(&env, &["--format", "ocsf", "--to", to, "--sink", "siem"]);
    assert_eq!(s["exported"].as_u64(), Some(0));
    let parent = out.parent().unwrap().to_str().unwrap();
    let spelled = format!("{parent}/.//siem.ocsf");
    let s = export_json(
        &env,
        &["--format", "ocsf", "--to", &spelled, "--sink", "siem"],
    );
    assert_eq!(s["exported"].as_u64(), Some(0), "{s}");
    // The two runs wrote exactly what one run writes.
    assert_eq!(std::fs::read(&out).unwrap(), env.export_whole("ocsf"));

    let e = failed(&export(
        &env,
        &["--format", "ecs", "--to", to, "--sink", "siem"],
    ));
    assert!(
        e.contains("sink \"siem\" exports ocsf to") && e.contains("--reset"),
        "{e}"
    );
    let e = failed(&export(
        &env,
        &["--format", "ocsf", "--to", "other.txt", "--sink", "siem"],
    ));
    assert!(
        e.contains("this run asks for ocsf to") && e.contains("other.txt"),
        "{e}"
    );
    let e = failed(&export(
        &env,
        &[
            "--format", "ocsf", "--to", to, "--sink", "siem", "--from", "3",
        ],
    ));
    assert!(e.contains("resumes at entry 600"), "{e}");
    // --reset forgets the cursor (not the file): a new sink from --from, appended.
    let s = export_json(
        &env,
        &[
            "--format", "ecs", "--to", to, "--sink", "siem", "--reset", "--from", "590",
        ],
    );
    assert_eq!(s["exported"].as_u64(), Some(10));
    assert_eq!(lines(&out).len(), 610);
    // A file cut shorter than the cursor's length is refused, not guessed at.
    let f = std::fs::OpenOptions::new().write(true).open(&out).unwrap();
    f.set_len(10).unwrap();
    let e = failed(&export(
        &env,
        &["--format", "ecs", "--to", to, "--sink", "siem"],
    ));
    assert!(e.contains("fewer than the") && e.contains("--reset"), "{e}");
    let e = failed(&export(&env, &["--format", "ecs", "--sink", "../x"]));
    assert!(e.contains("sink name \"../x\" is invalid"), "{e}");
}

#[test]
fn follow_exports_new_entries_and_stops_cleanly_on_sigterm() {
    let (env, tail) = ledger_with_more_to_come(300, 100);
    let out = env.path("follow.jsonl");
    let child = Command::new(common::BIN)
        .arg("--data")
        .arg(env.data())
        .args([
            "--json",
            "export",
            "--format",
            "jsonl",
            "--follow",
            "--poll-ms",
            "50",
            "--sink",
            "f",
            "--to",
        ])
        .arg(&out)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = child;
    let mut gone = || child.try_wait().unwrap().is_some();
    wait_until("the first 100 records", || {
        assert!(!gone(), "the exporter exited");
        lines(&out).len() == 100
    });
    // The store out of its place: the exporter's reopen fails, and it says so on
    // stderr and tries again.
    let stderr = child.stderr.take().unwrap();
    let (said, heard) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufRead::lines(std::io::BufReader::new(stderr)) {
            let Ok(line) = line else { break };
            if said.send(line).is_err() {
                break;
            }
        }
    });
    let db = env.data().join("db");
    let moved = env.data().join("db.moved");
    std::fs::rename(&db, &moved).unwrap();
    let warned = heard
        .iter()
        .find(|l| l.contains("cannot reopen the ledger to follow it"));
    assert!(
        warned.is_some(),
        "no warning before the exporter's stderr closed"
    );
    std::fs::rename(&moved, &db).unwrap();
    // `append` writes while the exporter holds the ledger read-only.
    env.json(&["append", tail.to_str().unwrap()]);
    let mut gone = || child.try_wait().unwrap().is_some();
    wait_until("all 300 records", || {
        assert!(!gone(), "the exporter exited");
        lines(&out).len() == 300
    });
    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let done = child.wait_with_output().unwrap();
    let s: Value = serde_json::from_str(&ok(&done, "export --follow")).unwrap();
    assert_eq!(s["stopped"], Value::Bool(true));
    assert_eq!(
        (s["exported"].as_u64(), s["next_seq"].as_u64()),
        (Some(300), Some(300))
    );
    for (i, l) in lines(&out).iter().enumerate() {
        assert_eq!(
            serde_json::from_str::<Value>(l).unwrap()["seq"].as_u64(),
            Some(i as u64)
        );
    }
    // The cursor was committed: a new run has nothing to do.
    let s = export_json(
        &env,
        &[
            "--format",
            "jsonl",
            "--to",
            out.to_str().unwrap(),
            "--sink",
            "f",
        ],
    );
    assert_eq!(s["exported"].as_u64(), Some(0));
}

#[test]
fn records_to_stdout_and_the_summary_to_stderr() {
    let env = Env::demo();
    let out = export(&env, &["--json", "--format", "cef"]);
    let stdout = ok(&out, "export to stdout");
    assert_eq!(stdout.lines().count(), 16);
    assert!(stdout
        .lines()
        .all(|l| l.starts_with("CEF:0|govledger|govledger|")));
    let summary: Value = serde_json::from_slice(&out.stderr).unwrap();
    assert_eq!(
        (summary["to"].as_str(), summary["exported"].as_u64()),
        (Some("-"), Some(16))
    );
}

#[test]
fn extra_redaction_patterns_apply_before_any_sink() {
    let env = Env::demo();
    let plain = ok(&export(&env, &["--format", "jsonl"]), "export");
    assert!(plain.contains("gateway"));
    let out = export(
        &env,
        &[
            "--format",
            "jsonl",
            "--redact",
            "internal=gate(?P<secret>way)",
        ],
    );
    let redacted = ok(&out, "export --redact");
    assert!(!redacted.contains("gateway"));
    assert!(redacted.contains("gate[REDACTED:internal]"));
    for l in redacted.lines() {
        let v: Value = serde_json::from_str(l).unwrap();
        // Leaf hashes are of the ledger's entries, untouched by redaction.
        assert_eq!(v["leaf_hash"].as_str().unwrap().len(), 64);
    }
    let e = failed(&export(
        &env,
        &["--format", "jsonl", "--redact", "bearer=x"],
    ));
    assert!(e.contains("bearer"), "{e}");
    let e = failed(&export(
        &env,
        &["--format", "jsonl", "--redact", "nameonly"],
    ));
    assert!(e.contains("NAME=REGEX"), "{e}");
}

#[test]
fn bad_arguments_are_clear_errors() {
    let env = Env::demo();
    let cases: &[(&[&str], &str)] = &[
        (&["--format", "xml"], "unknown export format \"xml\""),
        (
            &["--format", "ocsf", "--to", "ftp://h/x"],
            "unknown destination \"ftp://h/x\"",
        ),
        (
            &["--format", "ocsf", "--to", "syslog+tcp://h"],
            "the port is missing",
        ),
        (
            &["--format", "ocsf", "--to", "syslog+tcp://h:70000"],
            "not a number from 1 to 65535",
        ),
        (
            &["--format", "syslog", "--to", "syslog+tcp://h:1"],
            "--format names their MSG",
        ),
        (
            &["--format", "hec", "--to", "http://h:1"],
            "--format names their event",
        ),
        (
            &["--format", "ocsf", "--to", "http://h:1"],
            "--hec-token or GOVLEDGER_HEC_TOKEN",
        ),
        (
            &["--format", "ocsf", "--to", "https://u:p@h/"],
            "credentials do not go in the URL",
        ),
        (
            &[
                "--format",
                "ocsf",
                "--to",
                "syslog+tls://h:1",
                "--ca-file",
                "/nonexistent.pem",
            ],
            "cannot read CA file /nonexistent.pem",
        ),
        (
            &["--format", "ocsf", "--ca-file", "x.pem"],
            "--ca-file applies to",
        ),
        (
            &["--format", "ocsf", "--sync-bytes", "0"],
            "--sync-bytes applies to file destinations only",
        ),
        (&["--format", "ocsf", "--reset"], "--sink"),
        (
            &["--format", "ocsf", "--syslog-facility", "24"],
            "facility 24 is out of range",
        ),
        (
            &["--format", "ocsf", "--from", "yesterday"],
            "--from yesterday",
        ),
    ];
    for (args, needle) in cases {
        let e = failed(&export(&env, args));
        assert!(e.contains(needle), "{args:?}: {e}");
    }
    let token_file = env.path("not-a-ca.pem");
    std::fs::write(&token_file, "not pem").unwrap();
    let e = failed(&export(
        &env,
        &[
            "--format",
            "ocsf",
            "--to",
            "syslog+tls://h:1",
            "--ca-file",
            token_file.to_str().unwrap(),
        ],
    ));
    assert!(e.contains("holds no PEM certificate"), "{e}");
}

/// A private rsyslogd: imtcp on a free loopback port, every message's raw text
/// written to a file by omfile. Killed (its own pid) when dropped.
struct Rsyslog {
    child: std::process::Child,
    port: u16,
    out: PathBuf,
    _dir: tempfile::TempDir,
}

impl Rsyslog {
    fn start() -> Rsyslog {
        let bin = ["/usr/sbin/rsyslogd", "/sbin/rsyslogd"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .expect("rsyslogd is missing: `apt-get install rsyslog` (.ci/run installs it)");
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let out = dir.path().join("received.log");
        let conf = dir.path().join("rsyslog.conf");
        std::fs::write(
            &conf,
            format!(
                r#"global(workDirectory="{work}" maxMessageSize="256k")
module(load="imtcp")
template(name="raw" type="string" string="%rawmsg%\n")
ruleset(name="govledger") {{ action(type="omfile" file="{out}" template="raw" asyncWriting="off" flushOnTXEnd="on") }}
input(type="imtcp" address="127.0.0.1" port="{port}" ruleset="govledger")
"#,
                work = dir.path().display(),
                out = out.display()
            ),
        )
        .unwrap();
        let child = Command::new(bin)
            .arg("-n")
            .arg("-f")
            .arg(&conf)
            .arg("-i")
            .arg(dir.path().join("rsyslogd.pid"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start rsyslogd");
        wait_until("rsyslogd to listen", || {
            TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        Rsyslog {
            child,
            port,
            out,
            _dir: dir,
        }
    }
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn rsyslog_receives_every_entry_as_rfc5424_over_tcp() {
    let env = Env::demo();
    let leaves = ledger_leaves(&env);
    let rs = Rsyslog::start();
    let to = format!("syslog+tcp://127.0.0.1:{}", rs.port);
    let s = export_json(
        &env,
        &[
            "--format", "jsonl", "--to", &to, "--sink", "rsyslog", "--batch", "5",
        ],
    );
    assert_eq!(s["exported"].as_u64(), Some(leaves.len() as u64));
    assert_eq!(s["to"].as_str(), Some(to.as_str()));
    wait_until("rsyslog to write every message", || {
        lines(&rs.out).len() >= leaves.len()
    });
    let got = lines(&rs.out);
    assert_eq!(got.len(), leaves.len());
    // Byte for byte what the syslog format writes to a file, unframed.
    let reference = env.path("ref.syslog");
    export_json(
        &env,
        &["--format", "syslog", "--to", reference.to_str().unwrap()],
    );
    assert_eq!(got, lines(&reference));
    for (seq, (msg, leaf)) in got.iter().zip(&leaves).enumerate() {
        assert!(msg.starts_with('<') && msg.contains(">1 "), "{msg}");
        assert_eq!(sd_param(msg, "seq"), seq.to_string());
        assert_eq!(sd_param(msg, "leaf"), leaf);
        assert_eq!(sd_param(msg, "tenant"), "acme");
        let json = &msg[msg.find("] {").unwrap() + 2..];
        let v: Value = serde_json::from_str(json).unwrap();
        assert_eq!(v["seq"].as_u64(), Some(seq as u64));
    }
}

/// A HEC stand-in on a free port (`common::hec`): answers each request with the
/// next status of `script` (then 200), over TLS when `tls` is given. Returns the
/// port and the log.
fn hec_server(
    script: Vec<(u16, &'static str)>,
    tls: Option<Arc<rustls::ServerConfig>>,
) -> (u16, Arc<Mutex<Vec<HecRequest>>>) {
    let mut script = script.into_iter();
    let hec = common::hec::start(tls, move |_| script.next().unwrap_or(common::hec::SUCCESS));
    (hec.port, hec.log)
}

#[test]
fn hec_gets_envelopes_with_the_token_and_a_batch_is_retried_after_a_503() {
    let env = Env::demo();
    let leaves = ledger_leaves(&env);
    let (port, log) = hec_server(vec![(503, r#"{"text":"Server is busy","code":9}"#)], None);
    let url = format!("http://127.0.0.1:{port}");
    let out = Command::new(common::BIN)
        .arg("--data")
        .arg(env.data())
        .args([
            "--json", "export", "--format", "ocsf", "--batch", "10", "--to", &url,
        ])
        .env(
            "GOVLEDGER_HEC_TOKEN",
            "11111111-2222-3333-4444-555555555555",
        )
        .output()
        .unwrap();
    let s: Value = serde_json::from_str(&ok(&out, "export to HEC")).unwrap();
    assert_eq!(s["exported"].as_u64(), Some(16));
    assert_eq!(s["retries"].as_u64(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("503") && stderr.contains("retrying"),
        "the retry is logged: {stderr}"
    );
    let reqs = log.lock().unwrap().clone();
    // 503 on the first batch, then that batch again, then the second batch.
    assert_eq!(reqs.len(), 3, "{reqs:#?}");
    assert_eq!(reqs[0].body, reqs[1].body);
    for r in &reqs {
        assert_eq!(r.line, "POST /services/collector/event HTTP/1.1");
        assert_eq!(
            r.header("Authorization"),
            Some("Splunk 11111111-2222-3333-4444-555555555555")
        );
        assert_eq!(r.header("Content-Type"), Some("application/json"));
    }
    let envelopes: Vec<Value> = reqs[1..]
        .iter()
        .flat_map(|r| {
            r.body
                .lines()
                .map(|l| serde_json::from_str::<Value>(l).unwrap())
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(envelopes.len(), leaves.len());
    for (seq, (e, leaf)) in envelopes.iter().zip(&leaves).enumerate() {
        assert_eq!(e["fields"]["seq"].as_str(), Some(seq.to_string().as_str()));
        assert_eq!(e["fields"]["leaf_hash"].as_str(), Some(leaf.as_str()));
        assert_eq!(e["fields"]["tenant"].as_str(), Some("acme"));
        assert_eq!(e["sourcetype"].as_str(), Some("govledger:ocsf"));
        assert_eq!(
            e["event"]["metadata"]["sequence"].as_u64(),
            Some(seq as u64)
        );
        assert!(e["time"].is_f64());
    }
}

#[test]
fn a_hec_4xx_is_a_hard_error_with_the_response_body() {
    let env = Env::demo();
    let (port, log) = hec_server(vec![(403, r#"{"text":"Invalid token","code":4}"#)], None);
    let out = export(
        &env,
        &[
            "--format",
            "jsonl",
            "--sink",
            "h",
            "--hec-token",
            "wrong",
            "--to",
            &format!("http://127.0.0.1:{port}/services/collector/event"),
        ],
    );
    let e = failed(&out);
    assert!(
        e.contains("answered 403") && e.contains("Invalid token"),
        "{e}"
    );
    assert_eq!(log.lock().unwrap().len(), 1, "no retry after a 403");
    // Nothing was committed: the sink starts again at entry 0.
    let (port2, log2) = hec_server(vec![], None);
    let _ = port;
    let s = export_json(
        &env,
        &[
            "--format",
            "jsonl",
            "--sink",
            "h",
            "--reset",
            "--hec-token",
            "right",
            "--to",
            &format!("http://127.0.0.1:{port2}"),
        ],
    );
    assert_eq!(s["exported"].as_u64(), Some(16));
    assert_eq!(log2.lock().unwrap().len(), 1);
}

fn tls_server_config() -> Arc<rustls::ServerConfig> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/tls");
    let certs: Vec<CertificateDer> = CertificateDer::pem_file_iter(dir.join("server.pem"))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(dir.join("server.key")).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Arc::new(
        rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap(),
    )
}

fn ca_file() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/tls/ca.pem")
        .display()
        .to_string()
}

/// Reads octet-counted frames (RFC 6587) from `r` until it closes.
fn read_frames(r: &mut impl BufRead) -> Vec<String> {
    let mut frames = Vec::new();
    loop {
        let mut len = Vec::new();
        if r.read_until(b' ', &mut len).unwrap_or(0) == 0 {
            return frames;
        }
        let n: usize = std::str::from_utf8(&len[..len.len() - 1])
            .unwrap()
            .parse()
            .unwrap();
        let mut msg = vec![0; n];
        r.read_exact(&mut msg).unwrap();
        frames.push(String::from_utf8(msg).unwrap());
    }
}

#[test]
fn syslog_over_tls_and_https_hec_with_a_private_ca() {
    let env = Env::demo();
    let leaves = ledger_leaves(&env);
    let cfg = tls_server_config();
    // syslog+tls: a rustls server that collects frames until the exporter closes.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server_cfg = cfg.clone();
    let received = std::thread::spawn(move || {
        let (sock, _) = listener.accept().unwrap();
        let conn = rustls::ServerConnection::new(server_cfg).unwrap();
        read_frames(&mut BufReader::new(rustls::StreamOwned::new(conn, sock)))
    });
    let to = format!("syslog+tls://localhost:{port}");
    let s = export_json(
        &env,
        &["--format", "cef", "--to", &to, "--ca-file", &ca_file()],
    );
    assert_eq!(s["exported"].as_u64(), Some(16));
    let frames = received.join().unwrap();
    assert_eq!(frames.len(), leaves.len());
    for (seq, (f, leaf)) in frames.iter().zip(&leaves).enumerate() {
        assert_eq!(sd_param(f, "seq"), seq.to_string());
        assert_eq!(sd_param(f, "leaf"), leaf);
        assert!(f.contains("CEF:0|govledger|"), "{f}");
    }
    // https HEC through the same TLS client.
    let (hport, log) = hec_server(vec![], Some(cfg.clone()));
    let s = export_json(
        &env,
        &[
            "--format",
            "ecs",
            "--hec-token",
            "t",
            "--ca-file",
            &ca_file(),
            "--to",
            &format!("https://127.0.0.1:{hport}/services/collector"),
        ],
    );
    assert_eq!(s["exported"].as_u64(), Some(16));
    let reqs = log.lock().unwrap().clone();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].line, "POST /services/collector HTTP/1.1");
    assert_eq!(reqs[0].body.lines().count(), 16);
    // A server the roots do not vouch for is a hard error, not an endless retry.
    let (hport, _log) = hec_server(vec![], Some(cfg));
    let e = failed(&export(
        &env,
        &[
            "--format",
            "ecs",
            "--hec-token",
            "t",
            "--to",
            &format!("https://localhost:{hport}"),
        ],
    ));
    assert!(
        e.contains("TLS to localhost") && e.contains("certificate"),
        "{e}"
    );
}
