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
use serde_json::Value;

use crate::describe::{actor, outcome, summary, ActorRole};
use crate::json::{self, write_str_content, Obj};
use crate::jsonl::{write_ledger, BodyAs};
use crate::record::{write_rfc3339, Record, RecordKind};
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

/// An OCSF `user` object for an identity, as the members of `u`.
fn write_user(u: &mut Obj<'_>, id: &str, role: ActorRole) {
    let (type_id, type_name) = match role {
        ActorRole::User => (1, "User"),
        ActorRole::Agent => (99, "Agent"),
        ActorRole::Service => (3, "System"),
        ActorRole::Key => (99, "Signing Key"),
    };
    u.str("name", id);
    u.str("type", type_name);
    u.u64("type_id", type_id);
    u.str("uid", id);
}

/// A signing key as an OCSF `user` (`credential_uid` is OCSF's access key id slot).
fn write_key_user(ev: &mut Obj<'_>, field: &'static str, key: &str) {
    let mut u = ev.obj(field);
    u.str("credential_uid", key);
    u.str("name", key);
    u.str("type", "Signing Key");
    u.u64("type_id", 99);
    u.str("uid", key);
    u.close();
}

/// The OCSF `actor`: the acting identity as `user`, a relaying service (if it is not
/// the actor itself) as `invoked_by`, the session, and decisions as `authorizations`.
fn write_actor(ev: &mut Obj<'_>, record: &Record, kind: RecordKind) {
    let who = actor(record);
    let invoked_by = record
        .actor_str("service")
        .filter(|service| who.as_ref().map(|w| w.id) != Some(*service));
    let session = record.session();
    let decision = match kind {
        RecordKind::Accepted(EventType::PolicyDecided) => record.body_str("decision"),
        RecordKind::Accepted(EventType::ApprovalGranted) => Some("granted"),
        RecordKind::Accepted(EventType::ApprovalDenied) => Some("denied"),
        _ => None,
    };
    let mut a = ev.obj("actor");
    if who.is_none() && invoked_by.is_none() && session.is_none() && decision.is_none() {
        // Actor requires at least one of user, process, session, app...: say it is
        // the ledger itself (never reached for bodies that passed ingest).
        a.str("app_name", "govledger");
    }
    if let Some(decision) = decision {
        let mut auth = a.obj_in_array("authorizations");
        auth.str("decision", decision);
        if let Some(policy) = record.body_str("policy_id") {
            let mut p = auth.obj("policy");
            p.str("name", policy);
            p.str("uid", policy);
            if let Some(v) = record.body_str("policy_version") {
                p.str("version", v);
            }
            p.close();
        }
        auth.close_in_array();
    }
    if let Some(service) = invoked_by {
        a.str("invoked_by", service);
    }
    if let Some(session) = session {
        let mut s = a.obj("session");
        s.str("uid", session);
        s.close();
    }
    if let Some(who) = &who {
        let mut u = a.obj("user");
        write_user(&mut u, who.id, who.role);
        u.close();
    }
    a.close();
}

/// The producer endpoint: named by its signing key id (the only identity the ledger
/// verified), with the relaying service as `svc_name`.
fn write_src_endpoint(ev: &mut Obj<'_>, record: &Record) {
    let mut e = ev.obj("src_endpoint");
    e.str("name", record.key_id.as_deref().unwrap_or("unknown"));
    if let Some(service) = record.actor_str("service") {
        e.str("svc_name", service);
    }
    e.close();
}

/// The object the API call acts on, if any.
fn write_resources(ev: &mut Obj<'_>, record: &Record, t: EventType) {
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
        _ => return,
    };
    let Some(uid) = record.body_str(field) else {
        return;
    };
    let mut r = ev.obj_in_array("resources");
    if t == EventType::ActionProposed {
        if let Some(action) = record.body_str("action") {
            r.str("name", action);
        }
    }
    r.str("type", kind);
    r.str("uid", uid);
    r.close_in_array();
}

/// Appends the OCSF event of `record` to `out`, as one JSON object with its keys
/// sorted; `ascii` escapes every non-ASCII character.
pub fn write_ocsf(out: &mut String, record: &Record, opts: &ExportOptions, ascii: bool) {
    let kind = record.kind();
    let c = ocsf_class(kind);
    let sev = severity(record);
    // The members, in byte order of their keys.
    let mut ev = Obj::open(out, ascii);
    ev.u64("activity_id", c.activity_id.into());
    ev.str("activity_name", c.activity_name);
    match kind {
        RecordKind::Accepted(
            EventType::KeyRegistered | EventType::KeyRotated | EventType::KeyRevoked,
        ) => {
            if let Some(signer) = record.key_id.as_deref() {
                let mut a = ev.obj("actor");
                let mut u = a.obj("user");
                u.str("name", signer);
                u.str("type", "Admin");
                u.u64("type_id", 2);
                u.str("uid", signer);
                u.close();
                a.close();
            }
        }
        RecordKind::Accepted(
            EventType::Telemetry | EventType::KillswitchEngaged | EventType::KillswitchReleased,
        )
        | RecordKind::AcceptedUnknown
        | RecordKind::Rejected(_) => {}
        RecordKind::Accepted(t) => {
            write_actor(&mut ev, record, kind);
            let mut api = ev.obj("api");
            api.str("operation", t.as_str());
            if let Some(id) = &record.event_id {
                let mut r = api.obj("request");
                r.str("uid", id);
                r.close();
            }
            let mut service = api.obj("service");
            service.str("name", &opts.product);
            service.close();
            api.close();
        }
    }
    ev.str("category_name", c.category_name);
    ev.u64("category_uid", c.category_uid.into());
    ev.str("class_name", c.class_name);
    ev.u64("class_uid", c.class_uid.into());
    match kind {
        RecordKind::Accepted(EventType::KillswitchEngaged | EventType::KillswitchReleased) => {
            match &record.event_id {
                Some(id) => ev.str("command_uid", id),
                None => ev.hex("command_uid", &record.leaf_hash),
            }
        }
        RecordKind::Rejected(reason) => {
            let mut info = ev.obj("finding_info");
            let mut analytic = info.obj("analytic");
            analytic.str("name", reason.as_str());
            analytic.str("type", "Rule");
            analytic.u64("type_id", 1);
            analytic.str("uid", reason.as_str());
            analytic.close();
            info.u64("created_time", record.time_ms());
            if let Some(detail) = record.reject_detail() {
                info.str("desc", detail);
            }
            info.str_parts(
                "title",
                &[
                    "govledger rejected ",
                    record.event_type.as_deref().unwrap_or("message"),
                    ": ",
                    reason.as_str(),
                ],
            );
            let out = info.key("types");
            out.push('[');
            out.push('"');
            write_str_content(out, "govledger.rejected.", ascii);
            write_str_content(out, reason.as_str(), ascii);
            out.push_str("\"]");
            info.hex("uid", &record.leaf_hash);
            info.close();
        }
        _ => {}
    }
    ev.str("message", &summary(record));

    let mut metadata = ev.obj("metadata");
    if let Some(session) = record.session() {
        metadata.str("correlation_uid", session);
    }
    let event_code = match record.reject_reason() {
        Some(reason) => reason.as_str(),
        None => record.event_type.as_deref().unwrap_or_default(),
    };
    if !event_code.is_empty() {
        metadata.str("event_code", event_code);
    }
    metadata.str("log_name", &record.origin);
    metadata.str("log_provider", &opts.product);
    let out = metadata.key("original_time");
    out.push('"');
    write_rfc3339(out, record.time_ns, 9);
    out.push('"');
    let mut product = metadata.obj("product");
    product.str("name", &opts.product);
    product.str("vendor_name", &opts.vendor);
    product.str("version", &opts.product_version);
    product.close();
    metadata.u64("sequence", record.seq);
    if let Some(tenant) = &record.tenant {
        metadata.str("tenant_uid", tenant);
    }
    metadata.hex("uid", &record.leaf_hash);
    metadata.str("version", OCSF_VERSION);
    metadata.close();

    if let RecordKind::Accepted(t) = kind {
        write_resources(&mut ev, record, t);
    }
    ev.str("severity", sev.ocsf_caption());
    ev.u64("severity_id", sev.ocsf_id().into());
    if matches!(kind, RecordKind::Accepted(_))
        && !matches!(
            kind,
            RecordKind::Accepted(
                EventType::Telemetry | EventType::KillswitchEngaged | EventType::KillswitchReleased
            )
        )
    {
        write_src_endpoint(&mut ev, record);
    }
    // Status: whether the activity succeeded (Detection Finding uses its own enum).
    if let RecordKind::Rejected(_) = kind {
        ev.str("status", "New");
        ev.u64("status_id", 1);
    } else if outcome(record) == "failure" {
        ev.str("status", "Failure");
        if let Some(o) = record.body_str("outcome") {
            ev.str("status_detail", o);
        }
        ev.u64("status_id", 2);
    } else {
        ev.str("status", "Success");
        ev.u64("status_id", 1);
    }
    ev.u64("time", record.time_ms());
    ev.str_parts("type_name", &[c.class_name, ": ", c.activity_name]);
    ev.u64("type_uid", c.type_uid().into());

    // Everything else, in the ledger's own vocabulary.
    let mut unmapped = ev.obj("unmapped");
    unmapped.value("event", record.body.as_ref().unwrap_or(&Value::Null));
    let mut ledger = unmapped.obj("govledger");
    write_ledger(&mut ledger, record, BodyAs::Omitted);
    ledger.close();
    unmapped.close();

    if let RecordKind::Accepted(
        t @ (EventType::KeyRegistered | EventType::KeyRotated | EventType::KeyRevoked),
    ) = kind
    {
        write_key_user(
            &mut ev,
            "user",
            record.body_str("key_id").unwrap_or("unknown"),
        );
        if t == EventType::KeyRotated {
            if let Some(new) = record.body_str("new_key_id") {
                write_key_user(&mut ev, "user_result", new);
            }
        }
    }
    ev.close();
}

/// The OCSF event of `record` as a JSON value (the parsed [`to_ocsf`]).
pub fn ocsf_value(record: &Record, opts: &ExportOptions) -> Value {
    json::parse(&to_ocsf(record, opts))
}

/// `record` as one OCSF JSON line, without the trailing newline.
pub fn to_ocsf(record: &Record, opts: &ExportOptions) -> String {
    let mut out = String::with_capacity(2048);
    write_ocsf(&mut out, record, opts, false);
    out
}
