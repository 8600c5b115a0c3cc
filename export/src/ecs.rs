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
use serde_json::{json, Map, Value};

use crate::describe::{actor, outcome, related_users, summary};
use crate::json;
use crate::jsonl::jsonl_value;
use crate::record::{Record, RecordKind};
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

fn put(map: &mut Map<String, Value>, key: &str, value: Value) {
    map.insert(key.to_owned(), value);
}

/// The ECS document of `record` as a JSON value.
pub fn ecs_value(record: &Record, opts: &ExportOptions) -> Value {
    let (kind, category, etype) = ecs_categories(record);
    let mut event = Map::new();
    put(&mut event, "kind", json!(kind));
    put(&mut event, "category", json!([category]));
    put(&mut event, "type", json!([etype]));
    let action = match record.reject_reason() {
        Some(_) => "rejected".to_owned(),
        None => record.event_type.clone().unwrap_or_default(),
    };
    put(&mut event, "action", json!(action));
    put(&mut event, "outcome", json!(outcome(record)));
    if let Some(reason) = record.reject_reason() {
        put(&mut event, "reason", json!(reason.as_str()));
    }
    put(&mut event, "severity", json!(severity(record).ocsf_id()));
    if let Some(id) = &record.event_id {
        put(&mut event, "id", json!(id));
    }
    put(&mut event, "sequence", json!(record.seq));
    put(&mut event, "hash", json!(record.leaf_hash_hex()));
    put(&mut event, "dataset", json!("govledger.ledger"));
    put(&mut event, "module", json!("govledger"));
    put(&mut event, "provider", json!(record.origin));

    let mut doc = Map::new();
    put(&mut doc, "@timestamp", json!(record.time_rfc3339()));
    put(&mut doc, "ecs", json!({"version": ECS_VERSION}));
    put(&mut doc, "event", Value::Object(event));
    put(&mut doc, "message", json!(summary(record)));
    put(
        &mut doc,
        "observer",
        json!({
            "vendor": opts.vendor,
            "product": opts.product,
            "version": opts.product_version,
            "type": "ledger",
            "name": record.origin,
        }),
    );
    if let Some(tenant) = &record.tenant {
        put(&mut doc, "organization", json!({"id": tenant}));
    }
    if let Some(who) = actor(record) {
        put(
            &mut doc,
            "user",
            json!({"id": who.id, "name": who.id, "roles": [who.role.as_str()]}),
        );
    }
    let related = related_users(record);
    if !related.is_empty() {
        put(&mut doc, "related", json!({"user": related}));
    }
    match record.kind() {
        RecordKind::Rejected(reason) => {
            put(
                &mut doc,
                "rule",
                json!({"id": reason.as_str(), "name": reason.as_str(), "ruleset": "govledger-admission"}),
            );
        }
        RecordKind::Accepted(EventType::PolicyDecided) => {
            if let Some(policy) = record.body_str("policy_id") {
                let mut rule = Map::new();
                put(&mut rule, "id", json!(policy));
                put(&mut rule, "name", json!(policy));
                if let Some(v) = record.body_str("policy_version") {
                    put(&mut rule, "version", json!(v));
                }
                put(&mut doc, "rule", Value::Object(rule));
            }
        }
        _ => {}
    }
    let mut ledger = jsonl_value(record);
    if let Some(m) = ledger.as_object_mut() {
        if let Some(body) = m.remove("body") {
            m.insert("event".to_owned(), body);
        }
    }
    put(&mut doc, "govledger", ledger);
    Value::Object(doc)
}

/// `record` as one ECS JSON line, without the trailing newline.
pub fn to_ecs(record: &Record, opts: &ExportOptions) -> String {
    json::to_string(&ecs_value(record, opts), false)
}
