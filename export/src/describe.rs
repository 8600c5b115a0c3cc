//! Descriptions shared by the formats: a one-line summary, the acting identity, a
//! display name per record kind. All read the (already redacted) record only.

use govledger_schemas::EventType;

use crate::record::{Record, RecordKind};

/// Who acted, as far as the body says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Actor<'a> {
    /// The identity.
    pub id: &'a str,
    /// What it is.
    pub role: ActorRole,
}

/// The role of an [`Actor`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActorRole {
    /// An AI agent (`actor.agent`).
    Agent,
    /// A human (`actor.user`, or an approver).
    User,
    /// A relaying service (`actor.service`).
    Service,
    /// Only the signing key is known.
    Key,
}

impl ActorRole {
    /// Lowercase name.
    pub const fn as_str(self) -> &'static str {
        match self {
            ActorRole::Agent => "agent",
            ActorRole::User => "user",
            ActorRole::Service => "service",
            ActorRole::Key => "key",
        }
    }
}

/// The acting identity: the approver for approval decisions, else the actor chain's
/// agent, user or service (in that order), else for a budget increment the agent or
/// user of its scope, else the signing key.
pub fn actor(record: &Record) -> Option<Actor<'_>> {
    if let Some(id) = record.body_str("approver") {
        return Some(Actor {
            id,
            role: ActorRole::User,
        });
    }
    for (field, role) in [
        ("agent", ActorRole::Agent),
        ("user", ActorRole::User),
        ("service", ActorRole::Service),
    ] {
        if let Some(id) = record.actor_str(field) {
            return Some(Actor { id, role });
        }
    }
    // Spend is attributed to the identity it is counted against.
    if record.kind() == RecordKind::Accepted(EventType::BudgetIncremented) {
        let scope = record.body.as_ref().and_then(|b| b.get("scope"));
        for (field, role) in [("agent", ActorRole::Agent), ("user", ActorRole::User)] {
            if let Some(id) = scope.and_then(|s| s.get(field)).and_then(|v| v.as_str()) {
                return Some(Actor { id, role });
            }
        }
    }
    record.key_id.as_deref().map(|id| Actor {
        id,
        role: ActorRole::Key,
    })
}

/// Every distinct identity the record names (actor chain, approver, budget scope
/// user/agent), sorted.
pub fn related_users(record: &Record) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for f in ["user", "agent", "service"] {
        if let Some(v) = record.actor_str(f) {
            out.push(v.to_owned());
        }
    }
    if let Some(v) = record.body_str("approver") {
        out.push(v.to_owned());
    }
    if let Some(scope) = record.body.as_ref().and_then(|b| b.get("scope")) {
        for f in ["user", "agent"] {
            if let Some(v) = scope.get(f).and_then(|v| v.as_str()) {
                out.push(v.to_owned());
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// A short display name: `Action proposed`, `Rejected: bad_signature`, ….
pub fn title(record: &Record) -> String {
    match record.kind() {
        RecordKind::Rejected(reason) => format!("Rejected: {reason}"),
        RecordKind::AcceptedUnknown => format!(
            "Event {}",
            record.event_type.as_deref().unwrap_or("of unknown type")
        ),
        RecordKind::Accepted(t) => match t {
            EventType::SessionStarted => "Session started",
            EventType::SessionSuspended => "Session suspended",
            EventType::SessionResumed => "Session resumed",
            EventType::SessionEnded => "Session ended",
            EventType::ActionProposed => "Action proposed",
            EventType::PolicyDecided => "Policy decided",
            EventType::ApprovalRequested => "Approval requested",
            EventType::ApprovalGranted => "Approval granted",
            EventType::ApprovalDenied => "Approval denied",
            EventType::ActionExecuted => "Action executed",
            EventType::BudgetConfigured => "Budget configured",
            EventType::BudgetIncremented => "Budget incremented",
            EventType::KillswitchEngaged => "Kill switch engaged",
            EventType::KillswitchReleased => "Kill switch released",
            EventType::KeyRegistered => "Key registered",
            EventType::KeyRotated => "Key rotated",
            EventType::KeyRevoked => "Key revoked",
            EventType::Telemetry => "Telemetry",
        }
        .to_owned(),
    }
}

/// A one-line human summary of the record.
pub fn summary(record: &Record) -> String {
    let f = |name: &str| record.body_str(name).unwrap_or("?").to_owned();
    let n = |name: &str| {
        record
            .body
            .as_ref()
            .and_then(|b| b.get(name))
            .and_then(|v| v.as_u64())
            .map_or_else(|| "?".to_owned(), |v| v.to_string())
    };
    let who = actor(record).map_or_else(|| "?".to_owned(), |a| a.id.to_owned());
    let event_id = record.event_id.as_deref().unwrap_or("?");
    match record.kind() {
        RecordKind::Rejected(reason) => {
            let mut s = "rejected".to_owned();
            for part in [record.event_type.as_deref(), record.event_id.as_deref()]
                .into_iter()
                .flatten()
            {
                s.push(' ');
                s.push_str(part);
            }
            format!("{s} ({reason}): {}", record.reject_detail().unwrap_or(""))
        }
        RecordKind::AcceptedUnknown => format!(
            "{} {} accepted",
            record.event_type.as_deref().unwrap_or("event"),
            event_id
        ),
        RecordKind::Accepted(t) => match t {
            EventType::SessionStarted
            | EventType::SessionSuspended
            | EventType::SessionResumed
            | EventType::SessionEnded => {
                let verb = t.as_str().trim_start_matches("session.");
                let mut s = format!("session {} {verb} by {who}", f("session"));
                if let Some(r) = record.body_str("reason") {
                    s.push_str(": ");
                    s.push_str(r);
                }
                s
            }
            EventType::ActionProposed => format!(
                "{who} proposed {} on {} (risk {}) as {}",
                f("action"),
                f("resource"),
                f("risk_tier"),
                f("proposal")
            ),
            EventType::PolicyDecided => format!(
                "policy {} {} decided {} on proposal {}",
                f("policy_id"),
                f("policy_version"),
                f("decision"),
                f("proposal")
            ),
            EventType::ApprovalRequested => format!(
                "approval {} requested by {who} for proposal {}",
                f("ticket"),
                f("proposal")
            ),
            EventType::ApprovalGranted => format!(
                "approval {} granted by {who} for proposal {} (scope {})",
                f("ticket"),
                f("proposal"),
                f("scope")
            ),
            EventType::ApprovalDenied => format!(
                "approval {} denied by {who} for proposal {}: {}",
                f("ticket"),
                f("proposal"),
                f("reason")
            ),
            EventType::ActionExecuted => format!(
                "proposal {} executed by {who}: {}",
                f("proposal"),
                f("outcome")
            ),
            EventType::BudgetConfigured => format!(
                "budget {} configured ({} window)",
                f("budget_id"),
                f("window")
            ),
            EventType::BudgetIncremented => format!(
                "{} tokens and {} micros spent on model {}",
                n("tokens"),
                n("cost_micros"),
                f("model")
            ),
            EventType::KillswitchEngaged | EventType::KillswitchReleased => format!(
                "kill switch {} on {} {} by {who}: {}",
                t.as_str().trim_start_matches("killswitch."),
                f("scope"),
                f("target"),
                f("reason")
            ),
            EventType::KeyRegistered => format!("key {} registered", f("key_id")),
            EventType::KeyRotated => {
                format!("key {} rotated to {}", f("key_id"), f("new_key_id"))
            }
            EventType::KeyRevoked => format!("key {} revoked: {}", f("key_id"), f("reason")),
            EventType::Telemetry => format!("telemetry {} from {who}", f("name")),
        },
    }
}

/// `success` or `failure`, from the producer's point of view: rejected entries and
/// executions that failed or errored are failures.
pub fn outcome(record: &Record) -> &'static str {
    match record.kind() {
        RecordKind::Rejected(_) => "failure",
        RecordKind::Accepted(EventType::ActionExecuted) => match record.body_str("outcome") {
            Some("success") => "success",
            Some(_) => "failure",
            None => "unknown",
        },
        _ => "success",
    }
}
