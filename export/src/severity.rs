//! One severity table shared by every format.
//!
//! [`severity`] grades a record on a five-step scale; each format then writes the
//! step in its own vocabulary ([`Severity::ocsf_id`], [`Severity::cef`],
//! [`Severity::syslog`], [`Severity::as_str`]), so a record has the same severity
//! everywhere. The table (also in docs/EXPORT.md):
//!
//! | record | severity |
//! |---|---|
//! | `telemetry`, `session.started/resumed/ended`, `budget.incremented`, `approval.requested` | informational |
//! | `action.proposed` | by `risk_tier`: low, medium → informational; high → low; critical → medium |
//! | `policy.decided` | `allow` → informational; `require_approval` → low; `deny` → medium |
//! | `approval.granted`, `approval.denied`, `session.suspended`, `budget.configured`, `key.registered`, `key.rotated` | low |
//! | `action.executed` | `success` → informational; `failure` → low; `error` → medium |
//! | `key.revoked`, `killswitch.released` | medium |
//! | `killswitch.engaged` | high (critical when its scope is `system`) |
//! | rejected: `duplicate` and the malformed-input reasons (`oversized`, `not_utf8`, `malformed_json`, `unsupported_version`, `unknown_type`, `schema_violation`, `missing_header`, `bad_header`) | low |
//! | rejected: `unknown_key`, `invariant_violation` | medium |
//! | rejected: `bad_signature`, `revoked_key`, `tenant_mismatch`, `unauthorized_key`, `budget_exceeded` | high |
//! | an accepted type this version does not know | informational |

use govledger_schemas::{EventType, RejectReason};

use crate::record::{Record, RecordKind};

/// A five-step severity scale.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// Normal operation.
    Informational,
    /// Worth a look in aggregate.
    Low,
    /// Worth a look.
    Medium,
    /// Act on it.
    High,
    /// Act on it now.
    Critical,
}

impl Severity {
    /// Lowercase name: `informational`, `low`, `medium`, `high`, `critical`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Severity::Informational => "informational",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    /// OCSF `severity_id` (1 Informational … 5 Critical).
    pub const fn ocsf_id(self) -> u8 {
        match self {
            Severity::Informational => 1,
            Severity::Low => 2,
            Severity::Medium => 3,
            Severity::High => 4,
            Severity::Critical => 5,
        }
    }

    /// OCSF `severity` caption matching [`Severity::ocsf_id`].
    pub const fn ocsf_caption(self) -> &'static str {
        match self {
            Severity::Informational => "Informational",
            Severity::Low => "Low",
            Severity::Medium => "Medium",
            Severity::High => "High",
            Severity::Critical => "Critical",
        }
    }

    /// CEF header severity, 0..=10 (CEF bands: 0-3 low, 4-6 medium, 7-8 high,
    /// 9-10 very high).
    pub const fn cef(self) -> u8 {
        match self {
            Severity::Informational => 1,
            Severity::Low => 3,
            Severity::Medium => 5,
            Severity::High => 8,
            Severity::Critical => 10,
        }
    }

    /// RFC 5424 severity (0 emergency … 7 debug): 6 informational, 5 notice,
    /// 4 warning, 3 error, 2 critical.
    pub const fn syslog(self) -> u8 {
        match self {
            Severity::Informational => 6,
            Severity::Low => 5,
            Severity::Medium => 4,
            Severity::High => 3,
            Severity::Critical => 2,
        }
    }
}

/// The severity of `record` (see the module table).
pub fn severity(record: &Record) -> Severity {
    use Severity::*;
    match record.kind() {
        RecordKind::AcceptedUnknown => Informational,
        RecordKind::Rejected(reason) => match reason {
            RejectReason::Duplicate
            | RejectReason::Oversized
            | RejectReason::NotUtf8
            | RejectReason::MalformedJson
            | RejectReason::UnsupportedVersion
            | RejectReason::UnknownType
            | RejectReason::SchemaViolation
            | RejectReason::MissingHeader
            | RejectReason::BadHeader => Low,
            RejectReason::UnknownKey | RejectReason::InvariantViolation => Medium,
            RejectReason::BadSignature
            | RejectReason::RevokedKey
            | RejectReason::TenantMismatch
            | RejectReason::UnauthorizedKey
            | RejectReason::BudgetExceeded => High,
        },
        RecordKind::Accepted(t) => match t {
            EventType::Telemetry
            | EventType::SessionStarted
            | EventType::SessionResumed
            | EventType::SessionEnded
            | EventType::BudgetIncremented
            | EventType::ApprovalRequested => Informational,
            EventType::ActionProposed => match record.body_str("risk_tier") {
                Some("critical") => Medium,
                Some("high") => Low,
                _ => Informational,
            },
            EventType::PolicyDecided => match record.body_str("decision") {
                Some("deny") => Medium,
                Some("require_approval") => Low,
                _ => Informational,
            },
            EventType::ApprovalGranted
            | EventType::ApprovalDenied
            | EventType::SessionSuspended
            | EventType::BudgetConfigured
            | EventType::KeyRegistered
            | EventType::KeyRotated => Low,
            EventType::ActionExecuted => match record.body_str("outcome") {
                Some("error") => Medium,
                Some("failure") => Low,
                _ => Informational,
            },
            EventType::KeyRevoked | EventType::KillswitchReleased => Medium,
            EventType::KillswitchEngaged => match record.body_str("scope") {
                Some("system") => Critical,
                _ => High,
            },
        },
    }
}
