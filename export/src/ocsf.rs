//! `ocsf`: Open Cybersecurity Schema Framework events, schema version [`OCSF_VERSION`].
//!
//! Each record becomes one event of the class that fits it ([`ocsf_class`], the table
//! is in docs/EXPORT.md with the reasons for each choice):
//!
//! - session, action, policy, approval and budget events: **API Activity** (6003):
//!   every one of them is a call by an agent, gateway or control plane on the
//!   governance API; the decision of a policy or an approver is written as the
//!   actor's `authorizations` (OCSF's Authorization Result: decision + policy);
//! - `killswitch.*`: **Remediation Activity** (7001), Isolate / Restore: a kill switch
//!   is a containment countermeasure;
//! - `key.*`: **Account Change** (3001): a signing key is the credential of a
//!   producer principal (`user.credential_uid` is OCSF's "AWS access key id" slot);
//! - rejected entries: **Detection Finding** (2004): the ledger detected a message
//!   that breaks its rules, the reject reason is the analytic;
//! - `telemetry` (and a type this version does not know): **Base Event** (0), which
//!   OCSF defines for events that fit no category.
//!
//! Every event has the required base attributes (`activity_id`, `category_uid`,
//! `class_uid`, `type_uid` = `class_uid * 100 + activity_id`, `severity_id`, `time` in
//! epoch milliseconds, `metadata.product.vendor_name`, `metadata.version`) plus the
//! class's required objects. The ledger coordinates are in `metadata`: `uid` = leaf
//! hash, `sequence` = seq, `tenant_uid` = tenant, `log_name` = origin,
//! `original_time` = the nanosecond RFC 3339 time; `unmapped.govledger` repeats them
//! with the rest of the entry, and `unmapped.event` holds the whole (redacted) body.
//! No profile is applied. `tests/ocsf_validate.py` checks the golden output against
//! the published 1.3.0 schema.

use govledger_schemas::EventType;
use serde_json::{json, Map, Value};

use crate::describe::{actor, outcome, summary, ActorRole};
use crate::json;
use crate::jsonl::jsonl_value;
use crate::record::{Record, RecordKind};
use crate::severity::severity;
use crate::ExportOptions;

/// The OCSF schema version written in `metadata.version`.
pub const OCSF_VERSION: &str = "1.3.0";

/// The class, category and activity a record maps to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OcsfClass {
    /// `class_uid`.
    pub class_uid: u32,
    /// `class_name`.
    pub class_name: &'static str,
    /// `category_uid`.
    pub category_uid: u32,
    /// `category_name`.
    pub category_name: &'static str,
    /// `activity_id`.
    pub activity_id: u32,
    /// `activity_name`: the schema's caption of `activity_id`, or ours for 99 (Other).
    pub activity_name: &'static str,
}

impl OcsfClass {
    /// `type_uid` = `class_uid * 100 + activity_id`.
    pub const fn type_uid(&self) -> u32 {
        self.class_uid * 100 + self.activity_id
    }
}

const API: (u32, &str, u32, &str) = (6003, "API Activity", 6, "Application Activity");
const REMEDIATION: (u32, &str, u32, &str) = (7001, "Remediation Activity", 7, "Remediation");
const ACCOUNT: (u32, &str, u32, &str) = (3001, "Account Change", 3, "Identity & Access Management");
const FINDING: (u32, &str, u32, &str) = (2004, "Detection Finding", 2, "Findings");
const BASE: (u32, &str, u32, &str) = (0, "Base Event", 0, "Uncategorized");

const fn class(
    c: (u32, &'static str, u32, &'static str),
    id: u32,
    name: &'static str,
) -> OcsfClass {
    OcsfClass {
        class_uid: c.0,
        class_name: c.1,
        category_uid: c.2,
        category_name: c.3,
        activity_id: id,
        activity_name: name,
    }
}

/// The OCSF class of a record kind.
pub fn ocsf_class(kind: RecordKind) -> OcsfClass {
    match kind {
        RecordKind::Rejected(_) => class(FINDING, 1, "Create"),
        RecordKind::AcceptedUnknown => class(BASE, 99, "Other"),
        RecordKind::Accepted(t) => match t {
            EventType::SessionStarted => class(API, 1, "Create"),
            EventType::SessionSuspended => class(API, 3, "Update"),
            EventType::SessionResumed => class(API, 3, "Update"),
            EventType::SessionEnded => class(API, 4, "Delete"),
            EventType::ActionProposed => class(API, 1, "Create"),
            EventType::PolicyDecided => class(API, 99, "Authorize"),
            EventType::ApprovalRequested => class(API, 1, "Create"),
            EventType::ApprovalGranted => class(API, 3, "Update"),
            EventType::ApprovalDenied => class(API, 3, "Update"),
            EventType::ActionExecuted => class(API, 99, "Execute"),
            EventType::BudgetConfigured => class(API, 3, "Update"),
            EventType::BudgetIncremented => class(API, 1, "Create"),
            EventType::KillswitchEngaged => class(REMEDIATION, 1, "Isolate"),
            EventType::KillswitchReleased => class(REMEDIATION, 3, "Restore"),
            EventType::KeyRegistered => class(ACCOUNT, 1, "Create"),
            EventType::KeyRotated => class(ACCOUNT, 3, "Password Change"),
            EventType::KeyRevoked => class(ACCOUNT, 5, "Disable"),
            EventType::Telemetry => class(BASE, 99, "Other"),
        },
    }
}

fn put(map: &mut Map<String, Value>, key: &str, value: Value) {
    map.insert(key.to_owned(), value);
}

/// An OCSF `user` object for an identity.
fn user_obj(id: &str, role: ActorRole) -> Value {
    let (type_id, type_name) = match role {
        ActorRole::User => (1, "User"),
        ActorRole::Agent => (99, "Agent"),
        ActorRole::Service => (3, "System"),
        ActorRole::Key => (99, "Signing Key"),
    };
    json!({"uid": id, "name": id, "type_id": type_id, "type": type_name})
}

/// The OCSF `actor`: the acting identity as `user`, a relaying service (if it is not
/// the actor itself) as `invoked_by`, the session, and decisions as `authorizations`.
fn actor_obj(record: &Record) -> Value {
    let mut a = Map::new();
    let who = actor(record);
    if let Some(who) = &who {
        put(&mut a, "user", user_obj(who.id, who.role));
    }
    if let Some(service) = record.actor_str("service") {
        if who.as_ref().map(|w| w.id) != Some(service) {
            put(&mut a, "invoked_by", json!(service));
        }
    }
    if let Some(session) = record.session() {
        put(&mut a, "session", json!({"uid": session}));
    }
    let decision = match record.kind() {
        RecordKind::Accepted(EventType::PolicyDecided) => record.body_str("decision"),
        RecordKind::Accepted(EventType::ApprovalGranted) => Some("granted"),
        RecordKind::Accepted(EventType::ApprovalDenied) => Some("denied"),
        _ => None,
    };
    if let Some(decision) = decision {
        let mut auth = Map::new();
        put(&mut auth, "decision", json!(decision));
        if let Some(policy) = record.body_str("policy_id") {
            let mut p = Map::new();
            put(&mut p, "uid", json!(policy));
            put(&mut p, "name", json!(policy));
            if let Some(v) = record.body_str("policy_version") {
                put(&mut p, "version", json!(v));
            }
            put(&mut auth, "policy", Value::Object(p));
        }
        put(&mut a, "authorizations", json!([Value::Object(auth)]));
    }
    if a.is_empty() {
        // Actor requires at least one of user, process, session, app...: say it is
        // the ledger itself (never reached for bodies that passed ingest).
        put(&mut a, "app_name", json!("govledger"));
    }
    Value::Object(a)
}

/// The producer endpoint: named by its signing key id (the only identity the ledger
/// verified), with the relaying service as `svc_name`.
fn src_endpoint(record: &Record) -> Value {
    let mut e = Map::new();
    put(
        &mut e,
        "name",
        json!(record.key_id.as_deref().unwrap_or("unknown")),
    );
    if let Some(service) = record.actor_str("service") {
        put(&mut e, "svc_name", json!(service));
    }
    Value::Object(e)
}

/// The object the API call acts on.
fn resources(record: &Record, t: EventType) -> Option<Value> {
    let (field, kind) = match t {
        EventType::SessionStarted
        | EventType::SessionSuspended
        | EventType::SessionResumed
        | EventType::SessionEnded => ("session", "session"),
        EventType::ActionProposed => ("resource", "resource"),
        EventType::PolicyDecided
        | EventType::ApprovalRequested
        | EventType::ApprovalGranted
        | EventType::ApprovalDenied
        | EventType::ActionExecuted => ("proposal", "proposal"),
        EventType::BudgetConfigured => ("budget_id", "budget"),
        EventType::BudgetIncremented => ("model", "model"),
        _ => return None,
    };
    let uid = record.body_str(field)?;
    let mut r = Map::new();
    put(&mut r, "uid", json!(uid));
    put(&mut r, "type", json!(kind));
    if t == EventType::ActionProposed {
        if let Some(action) = record.body_str("action") {
            put(&mut r, "name", json!(action));
        }
    }
    Some(json!([Value::Object(r)]))
}

/// The OCSF event of `record` as a JSON value.
pub fn ocsf_value(record: &Record, opts: &ExportOptions) -> Value {
    let kind = record.kind();
    let c = ocsf_class(kind);
    let sev = severity(record);
    let mut ev = Map::new();
    put(&mut ev, "activity_id", json!(c.activity_id));
    put(&mut ev, "activity_name", json!(c.activity_name));
    put(&mut ev, "category_uid", json!(c.category_uid));
    put(&mut ev, "category_name", json!(c.category_name));
    put(&mut ev, "class_uid", json!(c.class_uid));
    put(&mut ev, "class_name", json!(c.class_name));
    put(&mut ev, "type_uid", json!(c.type_uid()));
    put(
        &mut ev,
        "type_name",
        json!(format!("{}: {}", c.class_name, c.activity_name)),
    );
    put(&mut ev, "severity_id", json!(sev.ocsf_id()));
    put(&mut ev, "severity", json!(sev.ocsf_caption()));
    put(&mut ev, "time", json!(record.time_ms()));
    put(&mut ev, "message", json!(summary(record)));

    let mut metadata = Map::new();
    put(&mut metadata, "version", json!(OCSF_VERSION));
    put(
        &mut metadata,
        "product",
        json!({
            "name": opts.product,
            "vendor_name": opts.vendor,
            "version": opts.product_version,
        }),
    );
    put(&mut metadata, "uid", json!(record.leaf_hash_hex()));
    put(&mut metadata, "sequence", json!(record.seq));
    put(&mut metadata, "log_name", json!(record.origin));
    put(&mut metadata, "log_provider", json!(opts.product));
    put(&mut metadata, "original_time", json!(record.time_rfc3339()));
    if let Some(tenant) = &record.tenant {
        put(&mut metadata, "tenant_uid", json!(tenant));
    }
    let event_code = match record.reject_reason() {
        Some(reason) => reason.as_str().to_owned(),
        None => record.event_type.clone().unwrap_or_default(),
    };
    if !event_code.is_empty() {
        put(&mut metadata, "event_code", json!(event_code));
    }
    if let Some(session) = record.session() {
        put(&mut metadata, "correlation_uid", json!(session));
    }
    put(&mut ev, "metadata", Value::Object(metadata));

    // Status: whether the activity succeeded (Detection Finding uses its own enum).
    match kind {
        RecordKind::Rejected(_) => {
            put(&mut ev, "status_id", json!(1));
            put(&mut ev, "status", json!("New"));
        }
        _ => {
            if outcome(record) == "failure" {
                put(&mut ev, "status_id", json!(2));
                put(&mut ev, "status", json!("Failure"));
                if let Some(o) = record.body_str("outcome") {
                    put(&mut ev, "status_detail", json!(o));
                }
            } else {
                put(&mut ev, "status_id", json!(1));
                put(&mut ev, "status", json!("Success"));
            }
        }
    }

    match kind {
        RecordKind::Rejected(reason) => {
            let title = format!(
                "govledger rejected {}: {}",
                record.event_type.as_deref().unwrap_or("message"),
                reason
            );
            let mut info = Map::new();
            put(&mut info, "uid", json!(record.leaf_hash_hex()));
            put(&mut info, "title", json!(title));
            if let Some(detail) = record.reject_detail() {
                put(&mut info, "desc", json!(detail));
            }
            put(
                &mut info,
                "types",
                json!([format!("govledger.rejected.{reason}")]),
            );
            put(
                &mut info,
                "analytic",
                json!({"type_id": 1, "type": "Rule", "uid": reason.as_str(), "name": reason.as_str()}),
            );
            put(&mut info, "created_time", json!(record.time_ms()));
            put(&mut ev, "finding_info", Value::Object(info));
        }
        RecordKind::Accepted(EventType::KillswitchEngaged | EventType::KillswitchReleased) => {
            let command = record
                .event_id
                .clone()
                .unwrap_or_else(|| record.leaf_hash_hex());
            put(&mut ev, "command_uid", json!(command));
        }
        RecordKind::Accepted(
            t @ (EventType::KeyRegistered | EventType::KeyRotated | EventType::KeyRevoked),
        ) => {
            let key = record.body_str("key_id").unwrap_or("unknown");
            put(
                &mut ev,
                "user",
                json!({"uid": key, "name": key, "credential_uid": key, "type_id": 99, "type": "Signing Key"}),
            );
            if t == EventType::KeyRotated {
                if let Some(new) = record.body_str("new_key_id") {
                    put(
                        &mut ev,
                        "user_result",
                        json!({"uid": new, "name": new, "credential_uid": new, "type_id": 99, "type": "Signing Key"}),
                    );
                }
            }
            if let Some(signer) = record.key_id.as_deref() {
                put(
                    &mut ev,
                    "actor",
                    json!({"user": {"uid": signer, "name": signer, "type_id": 2, "type": "Admin"}}),
                );
            }
            put(&mut ev, "src_endpoint", src_endpoint(record));
        }
        RecordKind::Accepted(EventType::Telemetry) | RecordKind::AcceptedUnknown => {}
        RecordKind::Accepted(t) => {
            put(&mut ev, "actor", actor_obj(record));
            let mut api = Map::new();
            put(&mut api, "operation", json!(t.as_str()));
            put(&mut api, "service", json!({"name": opts.product}));
            if let Some(id) = &record.event_id {
                put(&mut api, "request", json!({"uid": id}));
            }
            put(&mut ev, "api", Value::Object(api));
            put(&mut ev, "src_endpoint", src_endpoint(record));
            if let Some(r) = resources(record, t) {
                put(&mut ev, "resources", r);
            }
        }
    }

    // Everything else, in the ledger's own vocabulary.
    let mut ledger = jsonl_value(record);
    let body = ledger
        .as_object_mut()
        .and_then(|m| m.remove("body"))
        .unwrap_or(Value::Null);
    put(
        &mut ev,
        "unmapped",
        json!({"govledger": ledger, "event": body}),
    );
    Value::Object(ev)
}

/// `record` as one OCSF JSON line, without the trailing newline.
pub fn to_ocsf(record: &Record, opts: &ExportOptions) -> String {
    json::to_string(&ocsf_value(record, opts), false)
}
