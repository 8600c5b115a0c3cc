//! `examples/python-producer` (nats-py + PyNaCl, written from the README's wire-format
//! section alone) publishes to a real nats-server and `govledger serve` accepts its
//! events and rejects its forgery, with receipts sent to its `Gov-Reply` subject.
//!
//! Needs `python3` with the packages of `examples/python-producer/requirements.txt`
//! (`.ci/run` installs them). Without them the test fails under CI (`CI` set) and is
//! skipped with a notice elsewhere.

mod common;

use common::nats::NatsServer;
use common::Env;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/python-producer/producer.py")
}

fn python_ready() -> bool {
    Command::new("python3")
        .args(["-c", "import nats, nacl.signing"])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn the_python_producer_is_receipted_by_serve() {
    if !python_ready() {
        assert!(
            std::env::var_os("CI").is_none(),
            "python3 with nats-py and PyNaCl is required under CI"
        );
        eprintln!("skipped: pip install -r examples/python-producer/requirements.txt to run");
        return;
    }
    let nats = NatsServer::start();
    let env = Env::new();
    let keys = env.path("keys");
    let out = Command::new("python3")
        .arg(script())
        .args(["keygen", "--tenant", "acme", "--dir"])
        .arg(&keys)
        .output()
        .expect("run producer.py keygen");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let trust = keys.join("trust.json");
    env.json(&[
        "init",
        "--origin",
        "test.govledger/py",
        "--trust",
        trust.to_str().expect("utf-8 path"),
    ]);
    let mut serve = env.spawn_serve(&nats.url(), &["--stop-at-size", "4"]);
    serve.wait_for_line("consuming", Duration::from_secs(60));

    let out = Command::new("python3")
        .arg(script())
        .args(["run", "--tenant", "acme", "--nats", &nats.url(), "--dir"])
        .arg(&keys)
        .output()
        .expect("run producer.py run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "producer failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout.lines().count(), 4, "{stdout}");
    assert!(
        serve.wait_exit(Duration::from_secs(60)).success(),
        "{}",
        serve.log()
    );

    let rejected = env.json(&["entry", "--seq", "3"]);
    assert_eq!(rejected["reason"], "bad_signature");
    let accepted = env.json(&["entry", "--seq", "2"]);
    assert_eq!(accepted["event_type"], "action.proposed");
    env.json(&["verify"]);
}
