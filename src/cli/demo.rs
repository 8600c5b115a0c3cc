//! `govledger demo`: the guided tour.
//!
//! A fresh ledger in a temporary directory (or `--keep DIR`), a scripted incident
//! (an agent proposes, is denied, gets an approval, runs over its budget, is killed,
//! and someone tries to slip in a forged event), appended through admission,
//! checkpointed, proven and verified, printed step by step for a person to follow.

use super::init;
use super::natsargs::runtime;
use super::Ctx;
use crate::datadir::DataDir;
use crate::output::{b64, print_json};
use anyhow::{anyhow, ensure, Context, Result};
use futures::StreamExt;
use govledger_ingest::devserver::DevServer;
use govledger_ingest::gen::{derive_key, signed_line};
use govledger_ingest::metrics::Metrics;
use govledger_ingest::nats::{connect, ensure_stream, round_trip, NatsConfig, StreamSettings};
use govledger_ingest::publish::{publish_lines, PublishOptions};
use govledger_ingest::serve::{self, ServeConfig};
use govledger_ingest::{Admission, Line, TenantTrust, Trust, TrustKey};
use govledger_ledger::tree;
use govledger_ledger::verify::{verify, VerifyOptions};
use govledger_replay::bundle::{self, Request};
use govledger_replay::scope::Filter;
use govledger_schemas::{DecodeLimits, Verdict};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// How long the demo collects serve's receipts for each part after serve stops.
const RECEIPT_WAIT: Duration = Duration::from_secs(10);

fn event_id_of(line: &Line) -> String {
    let body = line.body_bytes().unwrap_or_default();
    govledger_schemas::peek_ids(&body, &DecodeLimits::default())
        .0
        .map(|i| i.to_string())
        .unwrap_or_default()
}

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Use this NATS server (its stream GOV must be empty or missing) instead of
    /// starting a private nats-server from PATH ($NATS_SERVER_BIN) on a free port.
    #[arg(long)]
    pub nats_url: Option<String>,
    /// Keep the demo ledger in this directory (must not hold a ledger yet) instead of
    /// a temporary one, to explore it afterwards with the other commands.
    #[arg(long)]
    pub keep: Option<PathBuf>,
}

const SEED: u64 = 7;
const T0: u64 = 1_767_268_800_000_000_000; // 2026-01-01T12:00:00Z

struct Step {
    say: &'static str,
    line: Line,
}

fn script() -> Vec<Step> {
    let admin = derive_key(SEED, "acme/admin");
    let gateway = derive_key(SEED, "acme/gateway");
    let forger = derive_key(SEED, "mallory/stolen");
    let actor = json!({"user": "alice", "agent": "agent-7"});
    let mut t = T0;
    let mut n = 0;
    let mut ev = |say: &'static str,
                  key: &ed25519_dalek::SigningKey,
                  key_id: &str,
                  kind: &str,
                  fields: Value| {
        n += 1;
        t += 1_500_000_000;
        Step {
            say,
            line: signed_line(key, key_id, "acme", kind, &format!("evt-{n:04}"), fields, t),
        }
    };
    let gw_pk = b64(gateway.verifying_key().as_bytes());
    vec![
        ev(
            "acme's admin registers the gateway's signing key",
            &admin,
            "acme/admin",
            "key.registered",
            json!({"key_id": "acme/gateway", "public_key": gw_pk}),
        ),
        ev(
            "a $2.00 budget is set for agent-7",
            &admin,
            "acme/admin",
            "budget.configured",
            json!({"budget_id": "agent-7-daily", "scope": {"org": "acme", "agent": "agent-7"},
                  "limit_cost_micros": 2_000_000u64, "window": "day", "warn_thresholds_pct": [80],
                  "kill_on_exceed": true}),
        ),
        ev(
            "alice starts a session with agent-7",
            &gateway,
            "acme/gateway",
            "session.started",
            json!({"session": "s-1", "actor": actor}),
        ),
        ev(
            "agent-7 proposes a refund",
            &gateway,
            "acme/gateway",
            "action.proposed",
            json!({"proposal": "p-1", "session": "s-1", "actor": actor, "action": "payments.refund",
                  "resource": "svc:payments", "args_digest": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
                  "risk_tier": "high"}),
        ),
        ev(
            "policy denies it: refunds over $500 need a human",
            &gateway,
            "acme/gateway",
            "policy.decided",
            json!({"proposal": "p-1", "session": "s-1", "actor": actor, "decision": "deny",
                  "policy_id": "payments", "policy_version": "v12", "rule_ids": ["refund-limit"],
                  "reason": "refund of $900 exceeds the $500 autonomous limit"}),
        ),
        ev(
            "agent-7 proposes the refund again, asking for approval",
            &gateway,
            "acme/gateway",
            "action.proposed",
            json!({"proposal": "p-2", "session": "s-1", "actor": actor, "action": "payments.refund",
                  "resource": "svc:payments", "args_digest": "60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752",
                  "risk_tier": "high"}),
        ),
        ev(
            "policy requires approval",
            &gateway,
            "acme/gateway",
            "policy.decided",
            json!({"proposal": "p-2", "session": "s-1", "actor": actor, "decision": "require_approval",
                  "policy_id": "payments", "policy_version": "v12", "rule_ids": ["refund-limit"],
                  "reason": "refund above the autonomous limit"}),
        ),
        ev(
            "an approval is requested",
            &gateway,
            "acme/gateway",
            "approval.requested",
            json!({"ticket": "t-1", "proposal": "p-2", "session": "s-1", "actor": actor}),
        ),
        ev(
            "bob grants it, once, up to $1.50",
            &gateway,
            "acme/gateway",
            "approval.granted",
            json!({"ticket": "t-1", "proposal": "p-2", "session": "s-1", "approver": "bob",
                  "scope": "once", "max_count": 1, "max_cost_micros": 1_500_000u64,
                  "resource_ids": ["svc:payments"]}),
        ),
        ev(
            "the refund runs",
            &gateway,
            "acme/gateway",
            "action.executed",
            json!({"proposal": "p-2", "session": "s-1", "actor": actor, "outcome": "success",
                  "cost_micros": 1_400_000u64, "tokens": 52_000, "ticket": "t-1"}),
        ),
        ev(
            "its model spend is counted: $1.40 of $2.00",
            &gateway,
            "acme/gateway",
            "budget.incremented",
            json!({"scope": {"org": "acme", "agent": "agent-7"}, "session": "s-1", "proposal": "p-2",
                  "tokens": 52_000, "cost_micros": 1_400_000u64, "model": "claude-opus-5"}),
        ),
        ev(
            "agent-7 tries to spend $0.90 more, past its $2.00 budget: refused, and the budget's kill_on_exceed stops agent-7",
            &gateway,
            "acme/gateway",
            "budget.incremented",
            json!({"scope": {"org": "acme", "agent": "agent-7"}, "session": "s-1",
                  "tokens": 31_000, "cost_micros": 900_000u64, "model": "claude-opus-5"}),
        ),
        ev(
            "the guardian engages agent-7's kill switch too (its reason now stands)",
            &gateway,
            "acme/gateway",
            "killswitch.engaged",
            json!({"scope": "agent", "target": "agent-7", "reason": "budget exceeded",
                  "actor": {"service": "guardian"}}),
        ),
        ev(
            "someone forges a release of the kill switch with a stolen key",
            &forger,
            "acme/gateway",
            "killswitch.released",
            json!({"scope": "agent", "target": "agent-7", "reason": "all good",
                  "actor": {"user": "mallory"}}),
        ),
        ev(
            "agent-7 tries one more refund while its kill switch is engaged",
            &gateway,
            "acme/gateway",
            "action.proposed",
            json!({"proposal": "p-3", "session": "s-1", "actor": actor, "action": "payments.refund",
                  "resource": "svc:payments", "args_digest": "b1946ac92492d2347c6235b4d2611184a6f0e0ee3b63b0bb5e2f0a37b04a2a5c",
                  "risk_tier": "high"}),
        ),
        ev(
            "alice's session ends",
            &gateway,
            "acme/gateway",
            "session.ended",
            json!({"session": "s-1", "actor": actor, "reason": "agent killed"}),
        ),
    ]
}

pub fn run(ctx: &Ctx, args: Args) -> Result<ExitCode> {
    let tmp;
    let dir = match &args.keep {
        Some(p) => DataDir::new(p),
        None => {
            tmp = tempfile::tempdir().context("cannot create a temporary directory")?;
            DataDir::new(tmp.path())
        }
    };
    let human = !ctx.json;
    let say = |s: String| {
        if human {
            println!("{s}");
        }
    };
    let trust = Trust {
        operator: vec![],
        tenants: [(
            "acme".to_string(),
            TenantTrust {
                admin_keys: vec![TrustKey {
                    key_id: "acme/admin".into(),
                    public_key: b64(derive_key(SEED, "acme/admin").verifying_key().as_bytes()),
                }],
            },
        )]
        .into(),
    };
    say("== govledger demo: an agent incident, recorded so it can be proven ==\n".into());
    let (ledger, signer, first_cp) = init::create(&dir, "demo.govledger.local/acme", &trust)?;
    say(format!("1. A fresh ledger in {}", dir.path.display()));
    say(format!(
        "   log verifier key: {}",
        signer.verifier().to_key_string()
    ));
    say("   trust: acme's admin key; producer keys must be registered by it.\n".into());

    say(
        "2. The incident, as producers publish it to NATS JetStream (each event Ed25519-signed)."
            .into(),
    );
    let (server, url) = match &args.nats_url {
        Some(u) => (None, u.clone()),
        None => {
            let s = DevServer::start(&dir.path.join("nats"))
                .map_err(|e| anyhow!("the demo starts its own nats-server: {e}"))?;
            let url = s.url();
            (Some(s), url)
        }
    };
    say(format!(
        "   nats-server: {url}{}",
        if server.is_some() {
            " (started by the demo, JetStream store in the demo directory)"
        } else {
            ""
        }
    ));
    say(
        "   `serve` consumes the stream; every message becomes exactly one entry and a receipt:"
            .into(),
    );
    let steps = script();
    let (first, second) = steps.split_at(9);
    let says: BTreeMap<String, &str> = steps
        .iter()
        .map(|s| (event_id_of(&s.line), s.say))
        .collect();
    let mut accepted = 0;
    let mut rejected: Vec<Value> = Vec::new();
    let mut checkpoints = vec![first_cp];
    let nats = NatsConfig {
        url,
        name: "govledger demo".into(),
        ..NatsConfig::default()
    };
    let stream = StreamSettings::default();
    let rt = runtime()?;
    let external = args.nats_url.is_some();
    let mut held_ledger = Some(ledger);
    let ledger = rt.block_on(async {
        let mut ledger = held_ledger.take().context("the ledger")?;
        let client = connect(&nats).await?;
        let js = async_nats::jetstream::new(client.clone());
        let mut st = ensure_stream(&js, &stream).await?;
        let held = st.info().await.map(|i| i.state.messages).unwrap_or(0);
        ensure!(
            !(external && held > 0),
            "stream {} on {} already holds {held} messages; the demo needs an empty stream \
             (point --nats-url at a scratch server, or leave it out to let the demo start one)",
            stream.name,
            nats.url
        );
        let mut receipts = client.subscribe("gov.receipts.acme").await?;
        round_trip(&client).await?; // subscribed before serve publishes
        for (part, stop_at) in [(first, 9u64), (second, steps.len() as u64)] {
            let lines = part.iter().map(|s| Ok(s.line.clone()));
            publish_lines(&client, &stream, lines, &PublishOptions::default(), &mut |_| {}).await?;
            let mut adm = Admission::new(&trust, DecodeLimits::default())?;
            govledger_replay::fold(&mut adm, &ledger, 0, ledger.size(), &mut |_| {})?;
            let cfg = ServeConfig {
                nats: nats.clone(),
                stream: stream.clone(),
                checkpoint_every: 0,
                checkpoint_interval: Duration::ZERO,
                stop_at_size: Some(stop_at),
                ..ServeConfig::default()
            };
            let first_seq = ledger.size();
            ledger = serve::run(
                cfg,
                ledger,
                serve::shared(adm),
                signer.clone(),
                Arc::new(Metrics::new()),
                std::future::pending(),
            )
            .await?;
            // Receipts are best effort (core NATS; the ledger is the record): the
            // verdicts shown are the entries' own, and the receipts that serve
            // published are collected for a while and checked against them.
            let mut receipted: BTreeMap<u64, Value> = BTreeMap::new();
            let deadline = tokio::time::Instant::now() + RECEIPT_WAIT;
            while receipted.len() < part.len() {
                match tokio::time::timeout_at(deadline, receipts.next()).await {
                    Ok(Some(m)) => {
                        let r: Value = serde_json::from_slice(&m.payload)?;
                        let seq = r["seq"].as_u64().context("a receipt without a seq")?;
                        // A late one from the part before is not this part's.
                        if (first_seq..ledger.size()).contains(&seq) {
                            receipted.insert(seq, r);
                        }
                    }
                    Ok(None) | Err(_) => break,
                }
            }
            for seq in first_seq..ledger.size() {
                let (_, entry) = ledger.entry(seq)?;
                let id = entry.event_id().unwrap_or_default();
                let reason = entry.reject_reason().map(|r| r.as_str());
                if let Some(r) = receipted.get(&seq) {
                    ensure!(
                        r["event_id"].as_str() == Some(id) && r["reason"].as_str() == reason,
                        "serve's receipt for entry {seq} does not match the entry: {r}"
                    );
                }
                let verdict = match reason {
                    None => {
                        accepted += 1;
                        "accepted".to_string()
                    }
                    Some(reason) => {
                        rejected.push(json!({"seq": seq, "reason": reason}));
                        format!("REJECTED  {reason}")
                    }
                };
                say(format!(
                    "   #{seq:<2} {:<66} {verdict}",
                    says.get(id).copied().unwrap_or("?")
                ));
            }
            if receipted.len() < part.len() {
                tracing::warn!(
                    got = receipted.len(),
                    want = part.len(),
                    "not every receipt arrived"
                );
                say(format!(
                    "   !! {} of {} receipts arrived within {} s; receipts are best effort, the \
                     entries above are the record",
                    receipted.len(),
                    part.len(),
                    RECEIPT_WAIT.as_secs()
                ));
            }
            let cp = ledger
                .latest_checkpoint()?
                .context("serve signed no checkpoint")?;
            say(format!(
                "   -- serve appended {} entries (each batch one atomic, fsynced write), then receipted them; \
                 checkpoint signed at size {}\n",
                part.len(),
                cp.checkpoint.size
            ));
            checkpoints.push(cp);
        }
        Ok::<_, anyhow::Error>(ledger)
    })?;
    drop(server);
    let kill_seq = 12;
    let forged_seq = 13;
    let (mid, cp) = (&checkpoints[1], &checkpoints[2]);

    say(
        "3. The latest signed checkpoint (C2SP tlog-checkpoint; Go's sumdb/note verifies it):"
            .into(),
    );
    for l in cp.note.lines() {
        say(format!("   | {l}"));
    }
    say(String::new());

    let (leaf, _) = ledger.entry(kill_seq)?;
    let lh = tree::leaf_hash(&leaf);
    let proof = ledger.inclusion_proof(kill_seq, cp.checkpoint.size)?;
    tree::verify_inclusion(
        &lh,
        kill_seq,
        cp.checkpoint.size,
        &proof,
        &cp.checkpoint.root,
    )
    .context("the demo's own inclusion proof failed")?;
    say(format!(
        "4. Proof that the kill switch (entry #{kill_seq}) is in that checkpoint: {} hashes, verified.",
        proof.len()
    ));
    let cons = ledger.consistency_proof(mid.checkpoint.size, cp.checkpoint.size)?;
    tree::verify_consistency(
        mid.checkpoint.size,
        cp.checkpoint.size,
        &mid.checkpoint.root,
        &cp.checkpoint.root,
        &cons,
    )
    .context("the demo's own consistency proof failed")?;
    say(format!(
        "   Proof that the log only grew between the checkpoints at {} and {}: {} hashes, verified.",
        mid.checkpoint.size,
        cp.checkpoint.size,
        cons.len()
    ));
    say(format!(
        "   Nothing signed at size 9 can have been changed to produce the size-{} tree.\n",
        cp.checkpoint.size
    ));
    let (_, forged) = ledger.entry(forged_seq)?;
    if let Verdict::Rejected { reason, detail, .. } = &forged.verdict {
        say(format!(
            "5. The forgery is on the record too, as entry #{forged_seq}: {} — {detail}.",
            reason.as_str()
        ));
        say(
            "   Its body is not kept, only its SHA-256 and length; nothing of it was applied.\n"
                .into(),
        );
    }
    let report = verify(
        &ledger,
        &signer.verifier(),
        &VerifyOptions::default(),
        &mut |_| {},
    )?;
    ensure!(report.ok(), "verify failed: {:?}", report.problem);
    say(format!(
        "6. verify re-walked all {} entries, {} tree nodes and {} checkpoints: intact.",
        report.entries_checked, report.nodes_checked, report.checkpoints_checked
    ));
    say("   Edit, delete, reorder or truncate anything in the store and verify names the first bad entry.\n".into());
    let (_, replayed) = govledger_replay::verified::replay(
        &ledger,
        &trust,
        &signer.verifier(),
        0,
        ledger.size(),
        &mut |_| {},
    )?;
    say(format!(
        "7. replay re-derived the governance state from the entries and matched the signed state digest\n   at all {} checkpoints: the budgets, approvals and kill switches above are the ones signed.\n",
        replayed.checkpoints_checked
    ));
    // The incident, as someone outside would receive it: a bundle checked offline.
    let mut from_zero = Admission::new(&trust, DecodeLimits::default())?;
    let request = Request {
        filter: Filter {
            agent: Some("agent-7".into()),
            ..Filter::default()
        },
        from_ns: 0,
        to_ns: u64::MAX,
    };
    let bundle = bundle::build(
        &mut from_zero,
        &ledger,
        &signer.verifier(),
        &request,
        0,
        ledger.size(),
        &mut |_| {},
    )?;
    let checked = bundle::verify(&bundle, Some(&signer.verifier()))
        .map_err(|p| anyhow!("the demo's own bundle does not verify: {p}"))?;
    let bundle_file = args.keep.as_ref().map(|p| p.join("agent-7.bundle"));
    if let Some(f) = &bundle_file {
        crate::datadir::write_file_atomic(f, &bundle, 0o644)?;
    }
    say(format!(
        "8. An incident bundle of everything that concerns agent-7: {} entries with their inclusion\n   proofs, {} signed checkpoints, consistency proofs and the producers' keys ({} bytes);\n   checked offline: every proof, every checkpoint signature, {} producer signatures.\n",
        checked.entries.len(),
        checked.checkpoints.len(),
        bundle.len(),
        checked.signatures_checked
    ));
    if human {
        match &args.keep {
            Some(p) => println!(
                "Explore it: govledger --data {} entry --seq {kill_seq} | prove inclusion --seq {kill_seq} | verify | replay --from-checkpoint 0\n            | timeline --agent agent-7 [--html FILE] | explain --seq 11 | verify-bundle {}",
                p.display(),
                p.join("agent-7.bundle").display()
            ),
            None => println!("Run `govledger demo --keep DIR` to keep this ledger and explore it."),
        }
        println!("Budgets, approvals, sessions and kill switches are checked before append: the over-budget");
        println!(
            "spend (#11), which engaged agent-7's kill switch by itself (kill_on_exceed), and the"
        );
        println!("proposal under the kill switch (#14) were refused, and stay on the record.");
    } else {
        print_json(&json!({
            "data": dir.path.display().to_string(),
            "entries": report.entries_checked,
            "accepted": accepted,
            "rejected": rejected,
            "checkpoint": cp.note,
            "inclusion": {"leaf_index": kill_seq, "tree_size": cp.checkpoint.size, "leaf_hash": b64(&lh),
                          "proof": proof.iter().map(|h| b64(h)).collect::<Vec<_>>()},
            "verified": report.ok(),
            "replay_checkpoints_checked": replayed.checkpoints_checked,
            "bundle": {"entries": checked.entries.len(), "bytes": bundle.len(),
                       "file": bundle_file.map(|f| f.display().to_string())},
        }));
    }
    Ok(ExitCode::SUCCESS)
}
