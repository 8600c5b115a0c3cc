//! Detection rules: velocity over a sliding window of event time, risk-tier
//! escalation, repeated denials; each reported once per episode, each off at 0.

mod common;

use common::event;
use govledger_projections::detect::{DetectConfig, Detector};
use govledger_schemas::Envelope;
use serde_json::json;

const MS: u64 = 1_000_000;

fn proposed(tenant: &str, agent: &str, tier: &str) -> Envelope {
    event(
        tenant,
        "action.proposed",
        json!({"proposal": "p", "session": "s", "actor": {"agent": agent}, "action": "db.query",
               "resource": "db:prod", "args_digest": "ab".repeat(32), "risk_tier": tier}),
    )
}

fn decided(agent: &str, decision: &str) -> Envelope {
    event(
        "acme",
        "policy.decided",
        json!({"proposal": "p", "session": "s", "actor": {"agent": agent}, "decision": decision,
               "policy_id": "p", "policy_version": "1", "rule_ids": [], "reason": "r"}),
    )
}

fn rules(d: &mut Detector, e: &Envelope, t: u64) -> Vec<&'static str> {
    d.observe(e, t).iter().map(|x| x.rule).collect()
}

fn config(velocity_max: u32, window_ms: u64, escalation: bool, denials_max: u32) -> DetectConfig {
    DetectConfig {
        velocity_max,
        velocity_window_ns: window_ms * MS,
        risk_escalation: escalation,
        denials_max,
    }
}

#[test]
fn velocity_is_reported_when_an_agent_exceeds_the_limit_in_the_window() {
    let mut d = Detector::new(config(3, 1_000, false, 0));
    let p = proposed("acme", "a-1", "low");
    for i in 0..3 {
        assert!(rules(&mut d, &p, i * 100 * MS).is_empty());
    }
    let found = d.observe(&p, 300 * MS);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].rule, "velocity");
    assert_eq!(found[0].agent, "a-1");
    assert!(
        found[0]
            .detail
            .contains("4 actions within 1000 ms (limit 3)"),
        "{}",
        found[0].detail
    );
    // Still over: not again.
    assert!(rules(&mut d, &p, 400 * MS).is_empty());
    // Another agent, or another tenant's agent of the same name, has its own count.
    assert!(rules(&mut d, &proposed("acme", "a-2", "low"), 400 * MS).is_empty());
    assert!(rules(&mut d, &proposed("globex", "a-1", "low"), 400 * MS).is_empty());
    // The window slides: after a quiet second the rate is back under the limit...
    assert!(rules(&mut d, &p, 2_000 * MS).is_empty());
    // ...and a new burst is a new episode.
    for i in 1..3 {
        assert!(rules(&mut d, &p, 2_000 * MS + i).is_empty());
    }
    assert_eq!(rules(&mut d, &p, 2_000 * MS + 3), ["velocity"]);
}

#[test]
fn a_risk_tier_above_any_used_before_is_reported() {
    let mut d = Detector::new(config(0, 0, true, 0));
    assert!(
        rules(&mut d, &proposed("acme", "a-1", "medium"), 1).is_empty(),
        "the first sets the baseline"
    );
    assert!(rules(&mut d, &proposed("acme", "a-1", "low"), 2).is_empty());
    let found = d.observe(&proposed("acme", "a-1", "critical"), 3);
    assert_eq!(found.len(), 1);
    assert!(found[0]
        .detail
        .contains("risk tier critical, above any it used before (medium)"));
    assert!(rules(&mut d, &proposed("acme", "a-1", "high"), 4).is_empty());
    assert!(rules(&mut d, &proposed("acme", "a-1", "critical"), 5).is_empty());
}

#[test]
fn repeated_denials_are_reported_once_per_run() {
    let mut d = Detector::new(config(0, 0, false, 3));
    assert!(rules(&mut d, &decided("a-1", "deny"), 1).is_empty());
    assert!(rules(&mut d, &decided("a-1", "require_approval"), 2).is_empty());
    assert!(rules(&mut d, &decided("a-1", "deny"), 3).is_empty());
    assert_eq!(
        rules(&mut d, &decided("a-1", "deny"), 4),
        ["repeated_denials"]
    );
    assert!(rules(&mut d, &decided("a-1", "deny"), 5).is_empty());
    assert!(rules(&mut d, &decided("a-1", "allow"), 6).is_empty());
    for t in 7..9 {
        assert!(rules(&mut d, &decided("a-1", "deny"), t).is_empty());
    }
    assert_eq!(
        rules(&mut d, &decided("a-1", "deny"), 9),
        ["repeated_denials"]
    );
}

#[test]
fn rules_at_zero_are_off() {
    let mut d = Detector::new(config(0, 1_000, false, 0));
    for i in 0..100 {
        assert!(rules(
            &mut d,
            &proposed("acme", "a-1", if i % 2 == 0 { "low" } else { "critical" }),
            i
        )
        .is_empty());
        assert!(rules(&mut d, &decided("a-1", "deny"), i).is_empty());
    }
}
