//! Event types of wire format version 1.
//!
//! A body is a JSON object `{"v":1,"id":…,"type":"<type>","tenant":…, …type fields}`.
//! [`Envelope`] holds the common fields and [`Event`] the type-specific part, one variant
//! per `type` string (see [`EventType`] for the list).
//!
//! The types here can only be *built from bytes* through [`crate::decode_body`], which
//! enforces every rule of the schema (unknown fields, ranges, patterns, cross-field
//! rules). They implement `Serialize` so producers and tests can write bodies
//! ([`Envelope::to_body`]); that output always decodes back to an equal value.
//!
//! Conventions: money is integer micro-units (`cost_micros`, `u64`), never floats; token
//! counts are `u64`; times are unix nanoseconds in `u64` fields named `*_ns`. Optional
//! fields may be absent or `null`; they are omitted on output when `None`.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

use crate::ids::{EventId, Ident, KeyId, TenantId};

/// The only wire format version this crate understands.
pub const WIRE_VERSION: u32 = 1;

/// Who acted: the user on whose behalf, the agent that acted, the service that relayed.
/// At least one is set.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize)]
pub struct ActorChain {
    /// The human user, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<Ident>,
    /// The AI agent, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent: Option<Ident>,
    /// The service (gateway, control plane), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<Ident>,
}

/// `session.started`, `session.suspended`, `session.resumed`, `session.ended`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SessionChange {
    /// The session.
    pub session: Ident,
    /// Who changed it.
    pub actor: ActorChain,
    /// Free-text reason (at most 1024 characters).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// How risky a proposed action is. Ordered `Low < Medium < High < Critical`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RiskTier {
    /// `low`
    Low,
    /// `medium`
    Medium,
    /// `high`
    High,
    /// `critical`
    Critical,
}

/// `action.proposed`: an agent asks to perform an action.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ActionProposed {
    /// The proposal id.
    pub proposal: Ident,
    /// The session the proposal belongs to.
    pub session: Ident,
    /// Who proposes; `agent` is always set.
    pub actor: ActorChain,
    /// The action name, 1..=256 characters (e.g. `payments.refund`).
    pub action: String,
    /// The resource acted on.
    pub resource: Ident,
    /// SHA-256 of the canonical arguments, 64 lowercase hex digits.
    pub args_digest: String,
    /// The risk tier.
    pub risk_tier: RiskTier,
}

/// A policy engine's decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// `allow`
    Allow,
    /// `deny`
    Deny,
    /// `require_approval`
    RequireApproval,
}

/// `policy.decided`: a policy engine decided on a proposal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PolicyDecided {
    /// The proposal decided on.
    pub proposal: Ident,
    /// Its session.
    pub session: Ident,
    /// Who decided (usually a service).
    pub actor: ActorChain,
    /// The decision.
    pub decision: Decision,
    /// The policy id.
    pub policy_id: Ident,
    /// The policy version, 1..=64 characters.
    pub policy_version: String,
    /// The rules that matched (may be empty).
    pub rule_ids: Vec<Ident>,
    /// Why, at most 1024 characters (may be empty).
    pub reason: String,
}

/// `approval.requested`: a human approval ticket was opened for a proposal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ApprovalRequested {
    /// The ticket id.
    pub ticket: Ident,
    /// The proposal needing approval.
    pub proposal: Ident,
    /// Its session.
    pub session: Ident,
    /// Who requested.
    pub actor: ActorChain,
    /// Free-text reason (at most 1024 characters).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// How far an approval reaches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ApprovalScope {
    /// `once`: this proposal only.
    Once,
    /// `session`: matching proposals for the rest of the session.
    Session,
}

/// `approval.granted`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ApprovalGranted {
    /// The ticket granted.
    pub ticket: Ident,
    /// The proposal.
    pub proposal: Ident,
    /// Its session.
    pub session: Ident,
    /// The approving user.
    pub approver: Ident,
    /// How far the approval reaches.
    pub scope: ApprovalScope,
    /// At most this many executions (at least 1 when set).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_count: Option<u32>,
    /// At most this much spend, in micro-units.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_cost_micros: Option<u64>,
    /// Resources covered; empty means any.
    pub resource_ids: Vec<Ident>,
    /// Expiry, unix ns.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at_ns: Option<u64>,
}

/// `approval.denied`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ApprovalDenied {
    /// The ticket denied.
    pub ticket: Ident,
    /// The proposal.
    pub proposal: Ident,
    /// Its session.
    pub session: Ident,
    /// The denying user.
    pub approver: Ident,
    /// Why, at most 1024 characters.
    pub reason: String,
}

/// The outcome of an executed action.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// `success`
    Success,
    /// `failure`: the action ran and failed.
    Failure,
    /// `error`: the action could not run.
    Error,
}

/// `action.executed`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ActionExecuted {
    /// The proposal executed.
    pub proposal: Ident,
    /// Its session.
    pub session: Ident,
    /// Who executed.
    pub actor: ActorChain,
    /// The outcome.
    pub outcome: Outcome,
    /// Spend, micro-units.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost_micros: Option<u64>,
    /// Tokens used.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tokens: Option<u64>,
    /// The approval ticket relied on, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ticket: Option<Ident>,
}

/// Who a budget applies to. At least one level is set; a budget applies to spend that
/// matches every level that is set.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct BudgetScope {
    /// Organization.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub org: Option<Ident>,
    /// Team.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub team: Option<Ident>,
    /// User.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<Ident>,
    /// Agent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent: Option<Ident>,
}

/// The accounting window of a budget.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BudgetWindow {
    /// `day`
    Day,
    /// `week`
    Week,
    /// `month`
    Month,
    /// `total`: never resets.
    Total,
}

/// `budget.configured`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BudgetConfigured {
    /// The budget id.
    pub budget_id: Ident,
    /// Who it applies to.
    pub scope: BudgetScope,
    /// Token limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit_tokens: Option<u64>,
    /// Spend limit, micro-units. At least one of the two limits is set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit_cost_micros: Option<u64>,
    /// The accounting window.
    pub window: BudgetWindow,
    /// Warning thresholds in percent, each 1..=100, strictly ascending (may be empty).
    pub warn_thresholds_pct: Vec<u8>,
    /// Engage the kill switch when exceeded. Defaults to `false` when absent.
    pub kill_on_exceed: bool,
}

/// `budget.incremented`: spend was recorded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BudgetIncremented {
    /// Whose spend.
    pub scope: BudgetScope,
    /// The session, if known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session: Option<Ident>,
    /// The proposal, if known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proposal: Option<Ident>,
    /// Tokens.
    pub tokens: u64,
    /// Spend, micro-units.
    pub cost_micros: u64,
    /// The model used.
    pub model: Ident,
}

/// What a kill switch stops.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KillScope {
    /// `session`: one session.
    Session,
    /// `agent`: one agent.
    Agent,
    /// `tenant`: the whole tenant.
    Tenant,
    /// `system`: everything (operator only).
    System,
}

/// `killswitch.engaged` and `killswitch.released`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct KillSwitchChange {
    /// What it stops.
    pub scope: KillScope,
    /// The session/agent/tenant id, or a name for `system`.
    pub target: Ident,
    /// Why, at most 1024 characters.
    pub reason: String,
    /// Who.
    pub actor: ActorChain,
}

/// `key.registered`: a signing key was added.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct KeyRegistered {
    /// The key id.
    pub key_id: KeyId,
    /// Standard base64 of the 32-byte Ed25519 public key.
    pub public_key: String,
    /// Valid from, unix ns.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub valid_from_ns: Option<u64>,
    /// Valid until, unix ns (not before `valid_from_ns`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub valid_until_ns: Option<u64>,
}

/// `key.rotated`: a key is replaced by a new one of the same tenant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct KeyRotated {
    /// The old key.
    pub key_id: KeyId,
    /// The new key (same tenant, different id).
    pub new_key_id: KeyId,
    /// Standard base64 of the new 32-byte Ed25519 public key.
    pub new_public_key: String,
    /// When the old key stops being valid, unix ns.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retire_old_at_ns: Option<u64>,
}

/// `key.revoked`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct KeyRevoked {
    /// The key revoked.
    pub key_id: KeyId,
    /// Why, at most 1024 characters.
    pub reason: String,
}

/// `telemetry`: free-form, non-state-bearing data.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Telemetry {
    /// Who, if known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor: Option<ActorChain>,
    /// The metric or signal name.
    pub name: Ident,
    /// Arbitrary JSON object (empty when absent).
    pub data: serde_json::Map<String, serde_json::Value>,
}

/// An event's type-specific part.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Event {
    /// `session.started`
    SessionStarted(SessionChange),
    /// `session.suspended`
    SessionSuspended(SessionChange),
    /// `session.resumed`
    SessionResumed(SessionChange),
    /// `session.ended`
    SessionEnded(SessionChange),
    /// `action.proposed`
    ActionProposed(ActionProposed),
    /// `policy.decided`
    PolicyDecided(PolicyDecided),
    /// `approval.requested`
    ApprovalRequested(ApprovalRequested),
    /// `approval.granted`
    ApprovalGranted(ApprovalGranted),
    /// `approval.denied`
    ApprovalDenied(ApprovalDenied),
    /// `action.executed`
    ActionExecuted(ActionExecuted),
    /// `budget.configured`
    BudgetConfigured(BudgetConfigured),
    /// `budget.incremented`
    BudgetIncremented(BudgetIncremented),
    /// `killswitch.engaged`
    KillswitchEngaged(KillSwitchChange),
    /// `killswitch.released`
    KillswitchReleased(KillSwitchChange),
    /// `key.registered`
    KeyRegistered(KeyRegistered),
    /// `key.rotated`
    KeyRotated(KeyRotated),
    /// `key.revoked`
    KeyRevoked(KeyRevoked),
    /// `telemetry`
    Telemetry(Telemetry),
}

impl Event {
    /// The event's type.
    pub fn kind(&self) -> EventType {
        match self {
            Event::SessionStarted(_) => EventType::SessionStarted,
            Event::SessionSuspended(_) => EventType::SessionSuspended,
            Event::SessionResumed(_) => EventType::SessionResumed,
            Event::SessionEnded(_) => EventType::SessionEnded,
            Event::ActionProposed(_) => EventType::ActionProposed,
            Event::PolicyDecided(_) => EventType::PolicyDecided,
            Event::ApprovalRequested(_) => EventType::ApprovalRequested,
            Event::ApprovalGranted(_) => EventType::ApprovalGranted,
            Event::ApprovalDenied(_) => EventType::ApprovalDenied,
            Event::ActionExecuted(_) => EventType::ActionExecuted,
            Event::BudgetConfigured(_) => EventType::BudgetConfigured,
            Event::BudgetIncremented(_) => EventType::BudgetIncremented,
            Event::KillswitchEngaged(_) => EventType::KillswitchEngaged,
            Event::KillswitchReleased(_) => EventType::KillswitchReleased,
            Event::KeyRegistered(_) => EventType::KeyRegistered,
            Event::KeyRotated(_) => EventType::KeyRotated,
            Event::KeyRevoked(_) => EventType::KeyRevoked,
            Event::Telemetry(_) => EventType::Telemetry,
        }
    }
}

/// A decoded v1 body: the common fields plus the typed event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Envelope {
    /// Schema version; always [`WIRE_VERSION`] after decoding.
    pub v: u32,
    /// The event id (unique per tenant).
    pub id: EventId,
    /// The tenant the event belongs to.
    pub tenant: TenantId,
    /// The type-specific part.
    pub event: Event,
}

impl Envelope {
    /// The event's type.
    pub fn kind(&self) -> EventType {
        self.event.kind()
    }

    /// Serializes to a JSON body: `v`, `id`, `type`, `tenant`, then the type's fields in
    /// declaration order. Decoding the result gives back an equal envelope.
    pub fn to_body(&self) -> Vec<u8> {
        // Cannot fail: every map key is a string and JSON numbers held in
        // `serde_json::Value` are always finite.
        serde_json::to_vec(self).expect("serializing an Envelope to a Vec cannot fail")
    }
}

impl Serialize for Envelope {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Wire<'a> {
            v: u32,
            id: &'a EventId,
            #[serde(rename = "type")]
            kind: &'static str,
            tenant: &'a TenantId,
            #[serde(flatten)]
            event: &'a Event,
        }
        Wire {
            v: self.v,
            id: &self.id,
            kind: self.kind().as_str(),
            tenant: &self.tenant,
            event: &self.event,
        }
        .serialize(s)
    }
}

/// The `type` of an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EventType {
    /// `session.started`
    SessionStarted,
    /// `session.suspended`
    SessionSuspended,
    /// `session.resumed`
    SessionResumed,
    /// `session.ended`
    SessionEnded,
    /// `action.proposed`
    ActionProposed,
    /// `policy.decided`
    PolicyDecided,
    /// `approval.requested`
    ApprovalRequested,
    /// `approval.granted`
    ApprovalGranted,
    /// `approval.denied`
    ApprovalDenied,
    /// `action.executed`
    ActionExecuted,
    /// `budget.configured`
    BudgetConfigured,
    /// `budget.incremented`
    BudgetIncremented,
    /// `killswitch.engaged`
    KillswitchEngaged,
    /// `killswitch.released`
    KillswitchReleased,
    /// `key.registered`
    KeyRegistered,
    /// `key.rotated`
    KeyRotated,
    /// `key.revoked`
    KeyRevoked,
    /// `telemetry`
    Telemetry,
}

/// A string is not a known event type.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown event type {0:?}")]
pub struct UnknownEventType(pub String);

impl EventType {
    /// Every event type.
    pub const ALL: &'static [EventType] = &[
        EventType::SessionStarted,
        EventType::SessionSuspended,
        EventType::SessionResumed,
        EventType::SessionEnded,
        EventType::ActionProposed,
        EventType::PolicyDecided,
        EventType::ApprovalRequested,
        EventType::ApprovalGranted,
        EventType::ApprovalDenied,
        EventType::ActionExecuted,
        EventType::BudgetConfigured,
        EventType::BudgetIncremented,
        EventType::KillswitchEngaged,
        EventType::KillswitchReleased,
        EventType::KeyRegistered,
        EventType::KeyRotated,
        EventType::KeyRevoked,
        EventType::Telemetry,
    ];

    /// The dotted wire name, e.g. `action.proposed`.
    pub const fn as_str(self) -> &'static str {
        match self {
            EventType::SessionStarted => "session.started",
            EventType::SessionSuspended => "session.suspended",
            EventType::SessionResumed => "session.resumed",
            EventType::SessionEnded => "session.ended",
            EventType::ActionProposed => "action.proposed",
            EventType::PolicyDecided => "policy.decided",
            EventType::ApprovalRequested => "approval.requested",
            EventType::ApprovalGranted => "approval.granted",
            EventType::ApprovalDenied => "approval.denied",
            EventType::ActionExecuted => "action.executed",
            EventType::BudgetConfigured => "budget.configured",
            EventType::BudgetIncremented => "budget.incremented",
            EventType::KillswitchEngaged => "killswitch.engaged",
            EventType::KillswitchReleased => "killswitch.released",
            EventType::KeyRegistered => "key.registered",
            EventType::KeyRotated => "key.rotated",
            EventType::KeyRevoked => "key.revoked",
            EventType::Telemetry => "telemetry",
        }
    }

    /// Whether accepted events of this type change projected state. Only `telemetry`
    /// does not.
    pub const fn is_state_bearing(self) -> bool {
        !matches!(self, EventType::Telemetry)
    }

    /// Whether this is a `key.*` event (which manages signing keys).
    pub const fn is_key_event(self) -> bool {
        matches!(
            self,
            EventType::KeyRegistered | EventType::KeyRotated | EventType::KeyRevoked
        )
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EventType {
    type Err = UnknownEventType;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .iter()
            .copied()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| UnknownEventType(s.to_owned()))
    }
}

impl Serialize for EventType {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_type_names_round_trip() {
        assert_eq!(EventType::ALL.len(), 18);
        for t in EventType::ALL {
            assert_eq!(t.as_str().parse::<EventType>(), Ok(*t));
        }
        assert!("Telemetry".parse::<EventType>().is_err());
        assert!(!EventType::Telemetry.is_state_bearing());
        assert!(EventType::ActionProposed.is_state_bearing());
        let keys: Vec<_> = EventType::ALL.iter().filter(|t| t.is_key_event()).collect();
        assert_eq!(keys.len(), 3);
    }

    #[test]
    fn risk_tier_orders() {
        assert!(RiskTier::Low < RiskTier::Medium);
        assert!(RiskTier::High < RiskTier::Critical);
    }
}
