//! Fixed ledger entries shared by the export tests: every event type, rejected
//! entries, and a damaged body. Nothing is signed: the formatter does not verify.

#![allow(dead_code)]

use govledger_export::{ExportOptions, RedactionConfig};
use govledger_schemas::{
    body_digest, decode_body, DecodeLimits, Entry, RejectReason, Seq, Verdict,
};

/// The ledger origin used by every fixture.
pub const ORIGIN: &str = "govledger.example/log";

/// 2026-01-01T00:00:00Z in unix ns.
pub const T0: u64 = 1_767_225_600_000_000_000;

/// A stand-in leaf hash: SHA-256 of the seq, big-endian (the real one is the
/// RFC 6962 leaf hash of the entry, which the formatter takes as given).
pub fn leaf_hash(seq: u64) -> [u8; 32] {
    body_digest(&seq.to_be_bytes())
}

/// Options with a pinned product version, so golden files do not change with the
/// crate version.
pub fn options() -> ExportOptions {
    ExportOptions {
        product_version: "0.1.0".to_owned(),
        ..ExportOptions::default()
    }
}

/// The default redaction settings.
pub fn redaction() -> RedactionConfig {
    RedactionConfig::default()
}

/// An accepted entry with `body`.
pub fn accepted(seq: u64, subject: &str, key: &str, body: &str) -> Entry {
    let v: serde_json::Value = serde_json::from_str(body).expect("fixture body is JSON");
    let s = |f: &str| v.get(f).and_then(|x| x.as_str()).unwrap_or("").to_owned();
    Entry {
        seq: Seq(seq),
        stream_seq: seq + 100,
        time_ns: T0 + seq * 1_000_123_457,
        subject: subject.to_owned(),
        key_id: Some(key.to_owned()),
        signature: Some(vec![7u8; 64]),
        body_sha256: body_digest(body.as_bytes()),
        body_len: body.len() as u64,
        body: Some(body.as_bytes().to_vec()),
        verdict: Verdict::Accepted {
            event_id: s("id"),
            event_type: s("type"),
            tenant: s("tenant"),
        },
    }
}

/// A rejected entry; `kept_body` only for the `budget_exceeded` + kill switch case.
#[allow(clippy::too_many_arguments)]
pub fn rejected(
    seq: u64,
    subject: &str,
    key: Option<&str>,
    raw_body: &[u8],
    kept_body: bool,
    reason: RejectReason,
    detail: &str,
    event_id: Option<&str>,
    tenant: Option<&str>,
) -> Entry {
    Entry {
        seq: Seq(seq),
        stream_seq: seq + 100,
        time_ns: T0 + seq * 1_000_123_457,
        subject: subject.to_owned(),
        key_id: key.map(str::to_owned),
        signature: key.map(|_| vec![9u8; 64]),
        body_sha256: body_digest(raw_body),
        body_len: raw_body.len() as u64,
        body: kept_body.then(|| raw_body.to_vec()),
        verdict: Verdict::Rejected {
            reason,
            detail: detail.to_owned(),
            event_id: event_id.map(str::to_owned),
            tenant: tenant.map(str::to_owned),
        },
    }
}

const ACTOR: &str = r#"{"user":"alice","agent":"agent-7","service":"gateway"}"#;

/// The accepted bodies of the golden fixtures, one per event type (some twice),
/// each valid for `govledger_schemas::decode_body`.
pub fn accepted_bodies() -> Vec<(&'static str, String)> {
    let a = ACTOR;
    vec![
        ("gov.acme.session", format!(r#"{{"v":1,"id":"ev-001","type":"session.started","tenant":"acme","session":"sess-1","actor":{a}}}"#)),
        ("gov.acme.action", format!(r#"{{"v":1,"id":"ev-002","type":"action.proposed","tenant":"acme","proposal":"prop-123","session":"sess-1","actor":{a},"action":"payments.refund","resource":"order-991","args_digest":"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08","risk_tier":"high"}}"#)),
        ("gov.acme.policy", r#"{"v":1,"id":"ev-003","type":"policy.decided","tenant":"acme","proposal":"prop-123","session":"sess-1","actor":{"service":"opa"},"decision":"require_approval","policy_id":"refunds","policy_version":"v12","rule_ids":["refund-over-100"],"reason":"amount above 100 EUR"}"#.to_owned()),
        ("gov.acme.approval", format!(r#"{{"v":1,"id":"ev-004","type":"approval.requested","tenant":"acme","ticket":"tck-55","proposal":"prop-123","session":"sess-1","actor":{a},"reason":"refund needs a human"}}"#)),
        ("gov.acme.approval", r#"{"v":1,"id":"ev-005","type":"approval.granted","tenant":"acme","ticket":"tck-55","proposal":"prop-123","session":"sess-1","approver":"bob","scope":"once","max_count":1,"max_cost_micros":150000000,"resource_ids":["order-991"],"expires_at_ns":1767229200000000000}"#.to_owned()),
        ("gov.acme.action", format!(r#"{{"v":1,"id":"ev-006","type":"action.executed","tenant":"acme","proposal":"prop-123","session":"sess-1","actor":{a},"outcome":"success","cost_micros":120000000,"tokens":1200,"ticket":"tck-55"}}"#)),
        ("gov.acme.action", format!(r#"{{"v":1,"id":"ev-007","type":"action.proposed","tenant":"acme","proposal":"prop-124","session":"sess-1","actor":{a},"action":"db.drop_table","resource":"customers","args_digest":"2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae","risk_tier":"critical"}}"#)),
        ("gov.acme.policy", r#"{"v":1,"id":"ev-008","type":"policy.decided","tenant":"acme","proposal":"prop-124","session":"sess-1","actor":{"service":"opa"},"decision":"deny","policy_id":"destructive","policy_version":"v3","rule_ids":[],"reason":"dropping tables is never allowed"}"#.to_owned()),
        ("gov.acme.approval", r#"{"v":1,"id":"ev-009","type":"approval.denied","tenant":"acme","ticket":"tck-56","proposal":"prop-124","session":"sess-1","approver":"bob","reason":"no"}"#.to_owned()),
        ("gov.acme.budget", r#"{"v":1,"id":"ev-010","type":"budget.configured","tenant":"acme","budget_id":"team-daily","scope":{"org":"acme","team":"payments"},"limit_tokens":1000000,"limit_cost_micros":50000000,"window":"day","warn_thresholds_pct":[50,90],"kill_on_exceed":true}"#.to_owned()),
        ("gov.acme.budget", r#"{"v":1,"id":"ev-011","type":"budget.incremented","tenant":"acme","scope":{"org":"acme","team":"payments","agent":"agent-7"},"session":"sess-1","proposal":"prop-123","tokens":1200,"cost_micros":4200,"model":"gpt-4o"}"#.to_owned()),
        ("gov.acme.telemetry", format!(r#"{{"v":1,"id":"ev-012","type":"telemetry","tenant":"acme","actor":{a},"name":"latency","data":{{"p99_ms":412,"route":"/refund|v2","note":"caf\u00e9 \"quoted\" a=b [x] back\\slash\nline2","nested":{{"ok":true,"list":[1,2.5,null]}}}}}}"#)),
        ("gov.acme.session", format!(r#"{{"v":1,"id":"ev-013","type":"session.suspended","tenant":"acme","session":"sess-1","actor":{a},"reason":"operator review"}}"#)),
        ("gov.acme.session", format!(r#"{{"v":1,"id":"ev-014","type":"session.resumed","tenant":"acme","session":"sess-1","actor":{a}}}"#)),
        ("gov.acme.killswitch", r#"{"v":1,"id":"ev-015","type":"killswitch.engaged","tenant":"acme","scope":"agent","target":"agent-7","reason":"runaway refunds","actor":{"user":"carol"}}"#.to_owned()),
        ("gov.acme.killswitch", r#"{"v":1,"id":"ev-016","type":"killswitch.released","tenant":"acme","scope":"agent","target":"agent-7","reason":"fixed","actor":{"user":"carol"}}"#.to_owned()),
        ("gov.acme.key", r#"{"v":1,"id":"ev-017","type":"key.registered","tenant":"acme","key_id":"acme/ci-2","public_key":"GB9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=","valid_from_ns":1767225600000000000}"#.to_owned()),
        ("gov.acme.key", r#"{"v":1,"id":"ev-018","type":"key.rotated","tenant":"acme","key_id":"acme/ci-2","new_key_id":"acme/ci-3","new_public_key":"A3uJ7QkQ0lS3zJ2c1y8s3vY8jWq7fH1lX0n4bXgYt5E=","retire_old_at_ns":1767312000000000000}"#.to_owned()),
        ("gov.acme.key", r#"{"v":1,"id":"ev-019","type":"key.revoked","tenant":"acme","key_id":"acme/ci-3","reason":"laptop lost"}"#.to_owned()),
        ("gov.acme.action", format!(r#"{{"v":1,"id":"ev-020","type":"action.executed","tenant":"acme","proposal":"prop-125","session":"sess-1","actor":{a},"outcome":"error"}}"#)),
        ("gov.acme.session", format!(r#"{{"v":1,"id":"ev-021","type":"session.ended","tenant":"acme","session":"sess-1","actor":{a}}}"#)),
    ]
}

/// The golden fixture entries, in seq order.
pub fn golden_entries() -> Vec<Entry> {
    let limits = DecodeLimits::default();
    let mut out = Vec::new();
    for (i, (subject, body)) in accepted_bodies().into_iter().enumerate() {
        decode_body(body.as_bytes(), &limits)
            .unwrap_or_else(|e| panic!("fixture {i} is not a valid body: {e}"));
        let key = if subject.ends_with(".key") {
            "acme/admin"
        } else {
            "acme/gateway"
        };
        out.push(accepted(i as u64, subject, key, &body));
    }
    let mut seq = out.len() as u64;
    let mut next = || {
        seq += 1;
        seq - 1
    };
    let forged = br#"{"v":1,"id":"ev-900","type":"action.executed","tenant":"acme","proposal":"prop-123","session":"sess-1","actor":{"agent":"agent-7"},"outcome":"success"}"#;
    out.push(rejected(
        next(),
        "gov.acme.action",
        Some("acme/gateway"),
        forged,
        false,
        RejectReason::BadSignature,
        "signature does not verify with key acme/gateway",
        Some("ev-900"),
        Some("acme"),
    ));
    out.push(rejected(
        next(),
        "gov.acme.action",
        None,
        b"{not json",
        false,
        RejectReason::MalformedJson,
        "body is not well-formed JSON: key must be a string at line 1 column 2",
        None,
        Some("acme"),
    ));
    let over = br#"{"v":1,"id":"ev-901","type":"budget.incremented","tenant":"acme","scope":{"org":"acme","agent":"agent-7"},"session":"sess-1","tokens":900000,"cost_micros":60000000,"model":"gpt-4o"}"#;
    out.push(rejected(
        next(),
        "gov.acme.budget",
        Some("acme/gateway"),
        over,
        true,
        RejectReason::BudgetExceeded,
        "budget team-daily exceeded (cost 60000000 > 50000000 left); kill switch engaged on agent agent-7: budget team-daily exceeded by event ev-901",
        Some("ev-901"),
        Some("acme"),
    ));
    out.push(rejected(
        next(),
        "gov.acme.action",
        Some("acme/gateway"),
        br#"{"v":1,"id":"ev-902","type":"action.proposed"}"#,
        false,
        RejectReason::InvariantViolation,
        "action in session sess-1 refused: kill switch on agent agent-7 is engaged",
        Some("ev-902"),
        Some("acme"),
    ));
    out.push(rejected(
        next(),
        "gov.unknown!.x",
        Some("nobody/k"),
        b"\xff\xfe",
        false,
        RejectReason::NotUtf8,
        "body is not valid UTF-8",
        None,
        None,
    ));
    // A damaged log: an accepted entry whose body is not JSON. Exported from the
    // verdict alone.
    let mut damaged = accepted(
        next(),
        "gov.acme.telemetry",
        "acme/gateway",
        r#"{"v":1,"id":"ev-903","type":"telemetry","tenant":"acme","name":"x","data":{}}"#,
    );
    damaged.body = Some(b"\x00garbage".to_vec());
    out.push(damaged);
    out
}
