//! `ecs`: Elastic Common Schema documents, ECS [`ECS_VERSION`].
//!
//! Categorization (`event.kind`, `event.category`, `event.type`) uses only ECS's
//! allowed values, in the combinations ECS lists as expected ([`ecs_categories`];
//! the table is in docs/EXPORT.md). Rejected entries are `event.kind: alert`
//! (the ledger refused the message: a notable event), everything else `event`.
//! Mapped fields: `@timestamp` (nanosecond RFC 3339), `message`, `event.action` (the
//! event type, or `rejected`), `event.outcome`, `event.reason` (reject reason),
//! `event.severity` (OCSF severity id, 1..5), `event.id` (event id),
//! `event.sequence` (ledger seq), `event.hash` (leaf hash: ECS's field "to
//! demonstrate log integrity"), `event.dataset`/`event.module`/`event.provider`,
//! `observer.*` (the ledger product), `organization.id` (tenant), `user.name`/`user.id`
//! (the acting identity), `related.user`, `rule.*` (the policy of a decision, or the
//! reject reason). Everything in the ledger's own vocabulary, with the whole redacted
//! body under `govledger.event`, is under `govledger`.

use govledger_schemas::EventType;
use serde_json::Value;

use crate::describe::{actor, outcome, related_users, summary};
use crate::json::{self, Obj};
use crate::jsonl::{write_ledger, BodyAs};
use crate::record::{write_rfc3339, Record, RecordKind};
use crate::severity::severity;
use crate::ExportOptions;

/// The ECS version written in `ecs.version`.
pub const ECS_VERSION: &str = "8.17.0";

/// `event.kind`, `event.category` and `event.type` of a record kind.
pub fn ecs_categories(record: &Record) -> (&'static str, &'static str, &'static str) {
    match record.kind() {
        RecordKind::Rejected(_) => ("alert", "intrusion_detection", "denied"),
        RecordKind::AcceptedUnknown => ("event", "api", "info"),
        RecordKind::Accepted(t) => match t {
            EventType::SessionStarted => ("event", "session", "start"),
            EventType::SessionSuspended | EventType::SessionResumed => ("event", "session", "info"),
            EventType::SessionEnded => ("event", "session", "end"),
            EventType::ActionProposed => ("event", "api", "creation"),
            EventType::PolicyDecided => match record.body_str("decision") {
                Some("allow") => ("event", "api", "allowed"),
                Some("deny") => ("event", "api", "denied"),
                _ => ("event", "api", "info"),
            },
            EventType::ApprovalRequested => ("event", "api", "creation"),
            EventType::ApprovalGranted => ("event", "api", "allowed"),
            EventType::ApprovalDenied => ("event", "api", "denied"),
            EventType::ActionExecuted => ("event", "api", "access"),
            EventType::BudgetConfigured => ("event", "configuration", "change"),
            EventType::BudgetIncremented => ("event", "api", "info"),
            EventType::KillswitchEngaged | EventType::KillswitchReleased => {
                ("event", "configuration", "change")
            }
            EventType::KeyRegistered => ("event", "iam", "creation"),
            EventType::KeyRotated => ("event", "iam", "change"),
            EventType::KeyRevoked => ("event", "iam", "deletion"),
            EventType::Telemetry => ("event", "api", "info"),
        },
    }
}

/// Appends the ECS document of `record` to `out`, as one JSON object with its keys
/// sorted; `ascii` escapes every non-ASCII character.
pub fn write_ecs(out: &mut String, record: &Record, opts: &ExportOptions, ascii: bool) {
    let (kind, category, etype) = ecs_categories(record);
    // The members, in byte order of their keys.
    let mut doc = Obj::open(out, ascii);
    let out = doc.key("@timestamp");
    out.push('"');
    write_rfc3339(out, record.time_ns, 9);
    out.push('"');
    let mut ecs = doc.obj("ecs");
    ecs.str("version", ECS_VERSION);
    ecs.close();

    let mut event = doc.obj("event");
    event.str(
        "action",
        match record.reject_reason() {
            Some(_) => "rejected",
            None => record.event_type.as_deref().unwrap_or_default(),
        },
    );
    event.strs("category", [category]);
    event.str("dataset", "govledger.ledger");
    event.hex("hash", &record.leaf_hash);
    if let Some(id) = &record.event_id {
        event.str("id", id);
    }
    event.str("kind", kind);
    event.str("module", "govledger");
    event.str("outcome", outcome(record));
    event.str("provider", &record.origin);
    if let Some(reason) = record.reject_reason() {
        event.str("reason", reason.as_str());
    }
    event.u64("sequence", record.seq);
    event.u64("severity", severity(record).ocsf_id().into());
    event.strs("type", [etype]);
    event.close();

    let mut ledger = doc.obj("govledger");
    write_ledger(&mut ledger, record, BodyAs::Event);
    ledger.close();
    doc.str("message", &summary(record));
    let mut observer = doc.obj("observer");
    observer.str("name", &record.origin);
    observer.str("product", &opts.product);
    observer.str("type", "ledger");
    observer.str("vendor", &opts.vendor);
    observer.str("version", &opts.product_version);
    observer.close();
    if let Some(tenant) = &record.tenant {
        let mut org = doc.obj("organization");
        org.str("id", tenant);
        org.close();
    }
    let related = related_users(record);
    if !related.is_empty() {
        let mut r = doc.obj("related");
        r.strs("user", related.iter().map(String::as_str));
        r.close();
    }
    match record.kind() {
        RecordKind::Rejected(reason) => {
            let mut rule = doc.obj("rule");
            rule.str("id", reason.as_str());
            rule.str("name", reason.as_str());
            rule.str("ruleset", "govledger-admission");
            rule.close();
        }
        RecordKind::Accepted(EventType::PolicyDecided) => {
            if let Some(policy) = record.body_str("policy_id") {
                let mut rule = doc.obj("rule");
                rule.str("id", policy);
                rule.str("name", policy);
                if let Some(v) = record.body_str("policy_version") {
                    rule.str("version", v);
                }
                rule.close();
            }
        }
        _ => {}
    }
    if let Some(who) = actor(record) {
        let mut user = doc.obj("user");
        user.str("id", who.id);
        user.str("name", who.id);
        user.strs("roles", [who.role.as_str()]);
        user.close();
    }
    doc.close();
}

/// The ECS document of `record` as a JSON value (the parsed [`to_ecs`]).
pub fn ecs_value(record: &Record, opts: &ExportOptions) -> Value {
    json::parse(&to_ecs(record, opts))
}

/// `record` as one ECS JSON line, without the trailing newline.
pub fn to_ecs(record: &Record, opts: &ExportOptions) -> String {
    let mut out = String::with_capacity(2048);
    write_ecs(&mut out, record, opts, false);
    out
}
