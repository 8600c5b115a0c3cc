//! Shared example bodies: one complete, valid body per event type (every optional field
//! set), used by the decode, JSON Schema and codec tests.

#![allow(dead_code)]

use govledger_schemas::EventType;
use serde_json::{json, Value};

/// A 32-byte key, standard base64.
pub const PK_A: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
/// Another 32-byte key.
pub const PK_B: &str = "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=";
/// SHA-256 of the empty string.
pub const DIGEST: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

fn base(id: &str, kind: &str) -> serde_json::Map<String, Value> {
    let mut m = serde_json::Map::new();
    m.insert("v".into(), json!(1));
    m.insert("id".into(), json!(id));
    m.insert("type".into(), json!(kind));
    m.insert("tenant".into(), json!("acme"));
    m
}

fn with(id: &str, kind: &str, fields: Value) -> Value {
    let mut m = base(id, kind);
    if let Value::Object(f) = fields {
        m.extend(f);
    }
    Value::Object(m)
}

/// One example body per event type, in `EventType::ALL` order.
pub fn examples() -> Vec<(EventType, Value)> {
    let actor = json!({"user": "user:alice", "agent": "agent:billing-bot", "service": "gw-1"});
    let session = |id: &str, kind: &str| {
        with(
            id,
            kind,
            json!({"session": "s-1", "actor": actor, "reason": "operator request"}),
        )
    };
    vec![
        (
            EventType::SessionStarted,
            session("e-01", "session.started"),
        ),
        (
            EventType::SessionSuspended,
            session("e-02", "session.suspended"),
        ),
        (
            EventType::SessionResumed,
            session("e-03", "session.resumed"),
        ),
        (EventType::SessionEnded, session("e-04", "session.ended")),
        (
            EventType::ActionProposed,
            with(
                "e-05",
                "action.proposed",
                json!({"proposal": "p-1", "session": "s-1", "actor": {"agent": "agent:billing-bot"},
                       "action": "payments.refund", "resource": "invoice/42",
                       "args_digest": DIGEST, "risk_tier": "high"}),
            ),
        ),
        (
            EventType::PolicyDecided,
            with(
                "e-06",
                "policy.decided",
                json!({"proposal": "p-1", "session": "s-1", "actor": {"service": "opa"},
                       "decision": "require_approval", "policy_id": "refunds",
                       "policy_version": "2024-06-01", "rule_ids": ["r1", "r2"],
                       "reason": "refund above 100 EUR"}),
            ),
        ),
        (
            EventType::ApprovalRequested,
            with(
                "e-07",
                "approval.requested",
                json!({"ticket": "t-1", "proposal": "p-1", "session": "s-1",
                       "actor": {"service": "opa"}, "reason": "needs a human"}),
            ),
        ),
        (
            EventType::ApprovalGranted,
            with(
                "e-08",
                "approval.granted",
                json!({"ticket": "t-1", "proposal": "p-1", "session": "s-1",
                       "approver": "user:bob", "scope": "session", "max_count": 3,
                       "max_cost_micros": 5000000, "resource_ids": ["invoice/42"],
                       "expires_at_ns": 1717200000000000000u64}),
            ),
        ),
        (
            EventType::ApprovalDenied,
            with(
                "e-09",
                "approval.denied",
                json!({"ticket": "t-2", "proposal": "p-2", "session": "s-1",
                       "approver": "user:bob", "reason": "not this one"}),
            ),
        ),
        (
            EventType::ActionExecuted,
            with(
                "e-10",
                "action.executed",
                json!({"proposal": "p-1", "session": "s-1", "actor": {"agent": "agent:billing-bot"},
                       "outcome": "success", "cost_micros": 1250, "tokens": 812, "ticket": "t-1"}),
            ),
        ),
        (
            EventType::BudgetConfigured,
            with(
                "e-11",
                "budget.configured",
                json!({"budget_id": "b-1", "scope": {"org": "acme", "team": "billing",
                       "user": "user:alice", "agent": "agent:billing-bot"},
                       "limit_tokens": 1000000, "limit_cost_micros": 50000000,
                       "window": "month", "warn_thresholds_pct": [50, 80, 100],
                       "kill_on_exceed": true}),
            ),
        ),
        (
            EventType::BudgetIncremented,
            with(
                "e-12",
                "budget.incremented",
                json!({"scope": {"team": "billing", "agent": "agent:billing-bot"},
                       "session": "s-1", "proposal": "p-1", "tokens": 812,
                       "cost_micros": 1250, "model": "gpt-4o-mini"}),
            ),
        ),
        (
            EventType::KillswitchEngaged,
            with(
                "e-13",
                "killswitch.engaged",
                json!({"scope": "agent", "target": "agent:billing-bot",
                       "reason": "runaway spend", "actor": {"user": "user:carol"}}),
            ),
        ),
        (
            EventType::KillswitchReleased,
            with(
                "e-14",
                "killswitch.released",
                json!({"scope": "agent", "target": "agent:billing-bot",
                       "reason": "fixed", "actor": {"user": "user:carol"}}),
            ),
        ),
        (
            EventType::KeyRegistered,
            with(
                "e-15",
                "key.registered",
                json!({"key_id": "acme/ops-1", "public_key": PK_A,
                       "valid_from_ns": 1700000000000000000u64,
                       "valid_until_ns": 1800000000000000000u64}),
            ),
        ),
        (
            EventType::KeyRotated,
            with(
                "e-16",
                "key.rotated",
                json!({"key_id": "acme/ops-1", "new_key_id": "acme/ops-2",
                       "new_public_key": PK_B, "retire_old_at_ns": 1750000000000000000u64}),
            ),
        ),
        (
            EventType::KeyRevoked,
            with(
                "e-17",
                "key.revoked",
                json!({"key_id": "acme/ops-1", "reason": "laptop lost"}),
            ),
        ),
        (
            EventType::Telemetry,
            with(
                "e-18",
                "telemetry",
                json!({"actor": {"agent": "agent:billing-bot"}, "name": "latency",
                       "data": {"p99_ms": 12.5, "tags": ["a", "b"]}}),
            ),
        ),
    ]
}

/// The example body of `kind`, as bytes.
pub fn example_body(kind: EventType) -> Vec<u8> {
    let (_, v) = examples()
        .into_iter()
        .find(|(k, _)| *k == kind)
        .expect("every type has an example");
    serde_json::to_vec(&v).expect("serializable")
}
