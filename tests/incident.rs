//! The incident commands on the demo's ledger, through the real binary: `timeline`
//! (and its page, drawn by a headless browser), `explain`, `replay --agent`, and an
//! incident bundle checked offline by `verify-bundle`, with a changed byte named by
//! its line.

mod common;

use common::Env;
use serde_json::Value;

fn items(v: &Value) -> &Vec<Value> {
    v["items"].as_array().expect("items")
}

fn find(items: &[Value], pred: impl Fn(&Value) -> bool) -> &Value {
    items
        .iter()
        .find(|i| pred(i))
        .expect("an item as described")
}

#[test]
fn the_timeline_shows_what_was_in_force_at_each_step() {
    let env = Env::demo();
    let tl = env.json(&["timeline", "--agent", "agent-7"]);
    let it = items(&tl);
    let types: Vec<&str> = it.iter().filter_map(|i| i["event_type"].as_str()).collect();
    for t in [
        "budget.configured",
        "session.started",
        "action.proposed",
        "policy.decided",
        "approval.requested",
        "approval.granted",
        "action.executed",
        "budget.incremented",
        "killswitch.engaged",
    ] {
        assert!(types.contains(&t), "{t} missing from {types:?}");
    }
    // Seqs ascend; every item has a verdict and a summary.
    let seqs: Vec<u64> = it.iter().map(|i| i["seq"].as_u64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    assert!(it
        .iter()
        .all(|i| i["summary"].is_string() && i["verdict"].is_string()));

    // The deny decision names its policy and reason.
    let deny = find(it, |i| {
        i["event_type"] == "policy.decided" && i["decision"]["decision"] == "deny"
    });
    assert_eq!(deny["decision"]["policy_id"], "payments");
    assert!(deny["decision"]["reason"]
        .as_str()
        .unwrap()
        .contains("$500"));
    // The execution ran under bob's grant, now used once.
    let run = find(it, |i| i["event_type"] == "action.executed");
    let grant = &run["approvals"][0];
    assert_eq!(grant["status"], "granted");
    assert_eq!(grant["approver"], "bob");
    assert_eq!(grant["used_count"], 1);
    // The spend shows the budget after it: $1.40 of $2.00.
    let spend = find(it, |i| {
        i["event_type"] == "budget.incremented" && i["verdict"] == "accepted"
    });
    assert_eq!(spend["budgets"][0]["budget_id"], "agent-7-daily");
    assert_eq!(spend["budgets"][0]["cost_micros"], 1_400_000);
    assert_eq!(spend["budgets"][0]["limit_cost_micros"], 2_000_000);
    // The refused spend keeps its reason.
    let refused = find(it, |i| i["reason"] == "budget_exceeded");
    assert_eq!(refused["verdict"], "rejected");
    assert!(refused["summary"].as_str().unwrap().starts_with("REFUSED"));

    // The rejected proposal under the kill switch keeps no body: only a tenant
    // filter can include it.
    assert!(!it.iter().any(|i| i["reason"] == "invariant_violation"));
    let tenant = env.json(&["timeline", "--tenant", "acme"]);
    assert!(items(&tenant)
        .iter()
        .any(|i| i["reason"] == "invariant_violation"));

    // A time range narrows it; text output is one headline per event.
    let t_run = run["time"].as_str().unwrap();
    let later = env.json(&["timeline", "--agent", "agent-7", "--from", t_run]);
    assert_eq!(items(&later)[0]["seq"], run["seq"]);
    let text = env.run(&["timeline", "--agent", "agent-7"]);
    assert!(text.status.success());
    let out = String::from_utf8_lossy(&text.stdout);
    assert!(out.contains("approval t-1 granted by bob"), "{out}");
    assert!(out.contains("budget agent-7-daily: "), "{out}");
    // No filter, or a backwards range: clear errors.
    let out = env.run(&["timeline"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("needs --agent"));
    let out = env.run(&[
        "timeline",
        "--tenant",
        "acme",
        "--from",
        "2030-01-01T00:00:00Z",
        "--to",
        "2020-01-01T00:00:00Z",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is before --from"));
}

/// The page is drawn by a real browser: every row and mark has a size on screen.
/// Skipped (saying so) where no Chromium is installed, unless
/// `GOVLEDGER_REQUIRE_BROWSER` is set, as CI does.
#[test]
fn the_timeline_page_renders_in_a_headless_browser() {
    let env = Env::demo();
    let page = env.path("incident.html");
    let tl = env.json(&[
        "timeline",
        "--agent",
        "agent-7",
        "--html",
        page.to_str().unwrap(),
    ]);
    let n = items(&tl).len();
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.contains("agent-7") && html.contains("<svg"));
    let browser = ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|b| {
            std::process::Command::new(b)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        });
    let Some(browser) = browser else {
        assert!(
            std::env::var_os("GOVLEDGER_REQUIRE_BROWSER").is_none(),
            "GOVLEDGER_REQUIRE_BROWSER is set but no chromium is on PATH"
        );
        eprintln!("SKIPPED: no chromium on PATH to render the timeline page");
        return;
    };
    let profile = env.path("chrome-profile");
    let out = std::process::Command::new(browser)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--dump-dom"])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("run chromium");
    let dom = String::from_utf8_lossy(&out.stdout);
    let rendered = dom
        .split("data-rendered=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap_or_else(|| {
            panic!(
                "the page did not record its rendering: {}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    assert_eq!(
        rendered,
        (2 * n).to_string(),
        "every row and every mark is laid out"
    );
}

#[test]
fn explain_names_the_entries_behind_a_verdict() {
    let env = Env::demo();
    let tl = env.json(&["timeline", "--agent", "agent-7"]);
    let it = items(&tl);
    let refused = find(it, |i| i["reason"] == "budget_exceeded");
    let id = refused["event_id"].as_str().unwrap();
    let x = env.json(&["explain", "--event", id]);
    assert_eq!(x["verdict"], "rejected");
    assert_eq!(x["reason"], "budget_exceeded");
    let because = x["because"].as_array().unwrap();
    let relations: Vec<&str> = because
        .iter()
        .filter_map(|b| b["relation"].as_str())
        .collect();
    assert!(
        relations.contains(&"configured a budget that applies"),
        "{relations:?}"
    );
    assert!(
        relations.contains(&"registered the signing key"),
        "{relations:?}"
    );
    assert!(because
        .iter()
        .all(|b| b["seq"].as_u64() < x["seq"].as_u64()));

    let run = find(it, |i| i["event_type"] == "action.executed");
    let x = env.json(&["explain", "--seq", &run["seq"].to_string()]);
    assert_eq!(x["verdict"], "accepted");
    let relations: Vec<&str> = x["because"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|b| b["relation"].as_str())
        .collect();
    for r in [
        "started the session",
        "proposed it",
        "the policy decision",
        "granted an approval",
    ] {
        assert!(relations.contains(&r), "{r} missing from {relations:?}");
    }
    let text = env.run(&["explain", "--seq", &run["seq"].to_string()]);
    assert!(String::from_utf8_lossy(&text.stdout).contains("ACCEPTED"));
    // Unknown ids and seqs are clear errors.
    let out = env.run(&["explain", "--event", "no-such-event"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no entry carries event id"));
    let out = env.run(&["explain", "--seq", "999"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn replay_lists_what_concerns_an_agent_while_checking_every_digest() {
    let env = Env::demo();
    let r = env.json(&["replay", "--from-checkpoint", "0", "--agent", "agent-7"]);
    assert_eq!(r["ok"], true);
    let tl = env.json(&["timeline", "--agent", "agent-7"]);
    let seqs = |v: &Value| -> Vec<u64> {
        items(v)
            .iter()
            .map(|i| i["seq"].as_u64().unwrap())
            .collect()
    };
    assert_eq!(seqs(&r), seqs(&tl));
    let plain = env.json(&["replay", "--from-checkpoint", "0"]);
    assert_eq!(plain["items"], Value::Null);
}

#[test]
fn a_bundle_verifies_offline_and_a_changed_byte_is_named() {
    let env = Env::demo();
    let key = env.json(&["key", "show"])["verifier_key"]
        .as_str()
        .unwrap()
        .to_owned();
    let file = env.path("incident.bundle");
    let b = env.json(&["bundle", "--agent", "agent-7", "-o", file.to_str().unwrap()]);
    let n = b["entries"].as_u64().unwrap();
    assert!(n >= 10, "{b}");
    assert_eq!(b["log_key"], key.as_str());
    // Offline: the ledger is gone.
    std::fs::remove_dir_all(env.data()).unwrap();
    let v = env.json(&["verify-bundle", file.to_str().unwrap(), "--key", &key]);
    assert_eq!(v["ok"], true);
    assert_eq!(v["key_source"], "given");
    assert_eq!(v["entries"].as_array().unwrap().len() as u64, n);
    assert!(v["signatures_checked"].as_u64().unwrap() >= n - 1);
    let text = env.run(&["verify-bundle", file.to_str().unwrap()]);
    assert!(text.status.success());
    assert!(String::from_utf8_lossy(&text.stdout)
        .contains("WARNING: checked with the log key written in the bundle"));

    // One byte of the fourth entry line changed.
    let bytes = std::fs::read(&file).unwrap();
    let text = String::from_utf8(bytes.clone()).unwrap();
    let (idx, line) = text
        .lines()
        .enumerate()
        .filter(|(_, l)| l.starts_with("entry "))
        .nth(3)
        .unwrap();
    let offset = text.lines().take(idx).map(|l| l.len() + 1).sum::<usize>() + line.len() / 2;
    let mut bad = bytes;
    bad[offset] = if bad[offset] == b'A' { b'B' } else { b'A' };
    let tampered = env.path("tampered.bundle");
    std::fs::write(&tampered, &bad).unwrap();
    let out = env.run(&[
        "--json",
        "verify-bundle",
        tampered.to_str().unwrap(),
        "--key",
        &key,
    ]);
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ok"], false);
    assert_eq!(v["problem"]["line"], idx as u64 + 1, "{v}");
    assert_eq!(v["problem"]["section"], "entry");
    let out = env.run(&["verify-bundle", tampered.to_str().unwrap(), "--key", &key]);
    assert!(String::from_utf8_lossy(&out.stderr).contains(&format!(
        "BUNDLE INVALID: {}: line {}",
        tampered.display(),
        idx + 1
    )));
}

#[test]
fn bundle_refuses_what_it_cannot_prove() {
    let env = Env::demo();
    let file = env.path("x.bundle");
    let out = env.run(&[
        "bundle",
        "--agent",
        "agent-99",
        "-o",
        file.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no entry concerns agent agent-99"));
    assert!(!file.exists(), "nothing written");
    let out = env.run(&["bundle", "-o", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("needs --agent"));
}

#[test]
fn the_stepper_moves_through_the_incident_from_a_command_file() {
    let env = Env::demo();
    let cmds = env.path("steps.txt");
    std::fs::write(
        &cmds,
        "# walk the demo incident\nnext 3\nwhere\nfind agent-7\njump 12\nstate killswitches\n\
         back 2\nstate killswitches\nnext\nbogus\njump 999\nquit\nnext\n",
    )
    .unwrap();
    let out = env.run(&[
        "--json",
        "replay",
        "--from-checkpoint",
        "0",
        "--step",
        "--commands",
        cmds.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "two commands failed");
    let answers: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        answers.len(),
        10,
        "one answer per command up to quit: {answers:?}"
    );
    let a = |i: usize| &answers[i];
    assert_eq!(a(0)["pos"], 3);
    assert_eq!(a(0)["entries"].as_array().unwrap().len(), 3);
    assert_eq!(a(0)["entries"][2]["seq"], 2);
    assert!(a(1)["checkpoints_checked"].is_u64());
    // find: the next entry after #2 that concerns agent-7, and the stepper stands on it.
    let found = a(2)["entries"][0]["seq"].as_u64().unwrap();
    assert!(found >= 3);
    assert_eq!(a(2)["pos"], found + 1);
    // jump 12: right after entry 12, agent-7 is under a kill switch.
    assert_eq!(a(3)["pos"], 13);
    let kills = a(4)["state"]["killswitches"].as_array().unwrap();
    assert!(kills.iter().any(|k| k["target"] == "agent-7"), "{kills:?}");
    // back 2: before the over-budget spend, no kill switch.
    assert_eq!(a(5)["pos"], 11);
    assert_eq!(a(6)["state"]["killswitches"], serde_json::json!([]));
    assert_eq!(a(7)["pos"], 12);
    assert_eq!(a(7)["entries"][0]["seq"], 11);
    assert!(a(8)["error"].as_str().unwrap().contains("unknown command"));
    assert!(a(9)["error"].as_str().unwrap().contains("entries 0 to"));
    assert_eq!(a(9)["pos"], 12, "a failed command does not move");
}
