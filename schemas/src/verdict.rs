//! Machine-readable reasons an entry was rejected.
//!
//! The snake_case codes ([`RejectReason::as_str`]) are a public contract: they appear in
//! receipts, alerts, SIEM output and the CLI. The numeric codes ([`RejectReason::code`])
//! are part of the frozen storage encoding of entries (see [`crate::codec`]). Neither may
//! ever be changed or reused; new reasons get new, higher numbers.

use std::fmt;
use std::str::FromStr;

/// Why a consumed message became a rejected entry.
///
/// | code | string | meaning |
/// |---:|---|---|
/// | 0 | `oversized` | body longer than the configured limit |
/// | 1 | `not_utf8` | body is not valid UTF-8 |
/// | 2 | `malformed_json` | body is not well-formed JSON (or has duplicate keys) |
/// | 3 | `unsupported_version` | `v` is not a supported schema version |
/// | 4 | `unknown_type` | `type` is not a known event type |
/// | 5 | `schema_violation` | a field is missing, unknown, of the wrong type or out of range |
/// | 6 | `missing_header` | `Gov-Key` or `Gov-Sig` header absent |
/// | 7 | `bad_header` | a header is present but malformed (e.g. signature not base64) |
/// | 8 | `unknown_key` | the signing key id is not registered |
/// | 9 | `revoked_key` | the signing key is revoked, retired or outside its validity window |
/// | 10 | `bad_signature` | the signature does not verify over the body bytes |
/// | 11 | `tenant_mismatch` | subject, body and key tenants disagree |
/// | 12 | `unauthorized_key` | the key may not sign this event type (e.g. key events need the operator) |
/// | 13 | `duplicate` | an event with the same id was already accepted for the tenant |
/// | 14 | `invariant_violation` | the event is well-formed but contradicts the projected state |
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RejectReason {
    /// Code 0: body longer than the configured limit.
    Oversized,
    /// Code 1: body is not valid UTF-8.
    NotUtf8,
    /// Code 2: body is not well-formed JSON.
    MalformedJson,
    /// Code 3: unsupported schema version.
    UnsupportedVersion,
    /// Code 4: unknown event type.
    UnknownType,
    /// Code 5: schema violation.
    SchemaViolation,
    /// Code 6: a required header is missing.
    MissingHeader,
    /// Code 7: a header is malformed.
    BadHeader,
    /// Code 8: signing key not registered.
    UnknownKey,
    /// Code 9: signing key revoked or not valid at the event time.
    RevokedKey,
    /// Code 10: signature does not verify.
    BadSignature,
    /// Code 11: subject, body and key tenants disagree.
    TenantMismatch,
    /// Code 12: key not authorized for this event.
    UnauthorizedKey,
    /// Code 13: event id already accepted.
    Duplicate,
    /// Code 14: event contradicts the projected state.
    InvariantViolation,
    /// Code 15: a budget increment would take an applicable budget past its limit
    /// (never counted).
    BudgetExceeded,
}

/// A string or number is not a known [`RejectReason`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown reject reason {0:?}")]
pub struct UnknownRejectReason(pub String);

impl RejectReason {
    /// Every reason, in code order.
    pub const ALL: &'static [RejectReason] = &[
        RejectReason::Oversized,
        RejectReason::NotUtf8,
        RejectReason::MalformedJson,
        RejectReason::UnsupportedVersion,
        RejectReason::UnknownType,
        RejectReason::SchemaViolation,
        RejectReason::MissingHeader,
        RejectReason::BadHeader,
        RejectReason::UnknownKey,
        RejectReason::RevokedKey,
        RejectReason::BadSignature,
        RejectReason::TenantMismatch,
        RejectReason::UnauthorizedKey,
        RejectReason::Duplicate,
        RejectReason::InvariantViolation,
        RejectReason::BudgetExceeded,
    ];

    /// The stable snake_case code.
    pub const fn as_str(self) -> &'static str {
        match self {
            RejectReason::Oversized => "oversized",
            RejectReason::NotUtf8 => "not_utf8",
            RejectReason::MalformedJson => "malformed_json",
            RejectReason::UnsupportedVersion => "unsupported_version",
            RejectReason::UnknownType => "unknown_type",
            RejectReason::SchemaViolation => "schema_violation",
            RejectReason::MissingHeader => "missing_header",
            RejectReason::BadHeader => "bad_header",
            RejectReason::UnknownKey => "unknown_key",
            RejectReason::RevokedKey => "revoked_key",
            RejectReason::BadSignature => "bad_signature",
            RejectReason::TenantMismatch => "tenant_mismatch",
            RejectReason::UnauthorizedKey => "unauthorized_key",
            RejectReason::Duplicate => "duplicate",
            RejectReason::InvariantViolation => "invariant_violation",
            RejectReason::BudgetExceeded => "budget_exceeded",
        }
    }

    /// The stable numeric code used in the storage encoding. Never reorder.
    pub const fn code(self) -> u32 {
        match self {
            RejectReason::Oversized => 0,
            RejectReason::NotUtf8 => 1,
            RejectReason::MalformedJson => 2,
            RejectReason::UnsupportedVersion => 3,
            RejectReason::UnknownType => 4,
            RejectReason::SchemaViolation => 5,
            RejectReason::MissingHeader => 6,
            RejectReason::BadHeader => 7,
            RejectReason::UnknownKey => 8,
            RejectReason::RevokedKey => 9,
            RejectReason::BadSignature => 10,
            RejectReason::TenantMismatch => 11,
            RejectReason::UnauthorizedKey => 12,
            RejectReason::Duplicate => 13,
            RejectReason::InvariantViolation => 14,
            RejectReason::BudgetExceeded => 15,
        }
    }

    /// The reason with numeric code `code`, if any.
    pub fn from_code(code: u32) -> Option<RejectReason> {
        Self::ALL.iter().copied().find(|r| r.code() == code)
    }
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RejectReason {
    type Err = UnknownRejectReason;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .iter()
            .copied()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| UnknownRejectReason(s.to_owned()))
    }
}

impl serde::Serialize for RejectReason {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for RejectReason {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Stored as its fixed-width `u32` [`code`](RejectReason::code), not as a derive-assigned
/// variant index, so reordering the enum cannot change stored bytes.
impl bincode::Encode for RejectReason {
    fn encode<E: bincode::enc::Encoder>(
        &self,
        encoder: &mut E,
    ) -> Result<(), bincode::error::EncodeError> {
        bincode::Encode::encode(&self.code(), encoder)
    }
}

impl<Context> bincode::Decode<Context> for RejectReason {
    fn decode<D: bincode::de::Decoder<Context = Context>>(
        decoder: &mut D,
    ) -> Result<Self, bincode::error::DecodeError> {
        let code: u32 = bincode::Decode::decode(decoder)?;
        RejectReason::from_code(code).ok_or(bincode::error::DecodeError::UnexpectedVariant {
            type_name: "RejectReason",
            allowed: &bincode::error::AllowedEnumVariants::Range { min: 0, max: 14 },
            found: code,
        })
    }
}

bincode::impl_borrow_decode!(RejectReason);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_dense_and_stable() {
        for (i, r) in RejectReason::ALL.iter().enumerate() {
            assert_eq!(r.code() as usize, i);
            assert_eq!(RejectReason::from_code(r.code()), Some(*r));
            assert_eq!(r.as_str().parse::<RejectReason>(), Ok(*r));
        }
        assert_eq!(RejectReason::ALL.len(), 16);
        assert_eq!(RejectReason::from_code(16), None);
        assert!("Duplicate".parse::<RejectReason>().is_err());
    }

    #[test]
    fn frozen_strings() {
        let joined: Vec<&str> = RejectReason::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(
            joined.join(","),
            "oversized,not_utf8,malformed_json,unsupported_version,unknown_type,\
             schema_violation,missing_header,bad_header,unknown_key,revoked_key,\
             bad_signature,tenant_mismatch,unauthorized_key,duplicate,invariant_violation,\
             budget_exceeded"
        );
    }
}
