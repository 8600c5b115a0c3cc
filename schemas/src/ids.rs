//! Identifier newtypes.
//!
//! Every id that crosses the wire has its own type, so a tenant id cannot be passed where
//! an event id is expected. Each type can only be built through a validating constructor
//! (`TryFrom<String>`, `TryFrom<&str>`, `FromStr`, or serde, which goes through
//! `TryFrom<String>`), so holding a value proves it matches its pattern:
//!
//! | type | pattern |
//! |---|---|
//! | [`TenantId`] | `[a-z0-9_-]{1,64}` |
//! | [`EventId`] | `[A-Za-z0-9._:-]{1,128}` |
//! | [`KeyId`] | `<tenant>/<name>`, tenant a [`TenantId`], name `[A-Za-z0-9._-]{1,64}` |
//! | [`Ident`] | `[A-Za-z0-9._:/@-]{1,128}` (sessions, proposals, actors, tickets, policies, budgets, rules, models, resources) |
//!
//! Patterns are ASCII-only on purpose: ids end up in subjects, RocksDB keys and log lines,
//! where look-alike Unicode would be a hazard. Ordering is byte order of the string.
//!
//! Each holds its string as a `Box<str>` (16 bytes; a `String` is 24): an id never
//! changes once built, and a decoded event holds up to a dozen of them, so the event is
//! smaller to build and to move (280 → 216 bytes) and strict decoding runs about 3%
//! fewer instructions (callgrind, `docs/BENCHMARKS.md`, stop 27). Hashing, ordering,
//! equality and serde are those of the string.

use std::borrow::Borrow;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// An id string did not match the pattern of its type.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind} {value:?}: {reason}")]
pub struct IdError {
    /// Which kind of id was being parsed, e.g. `tenant id`.
    pub kind: &'static str,
    /// The offending value, truncated to 80 characters.
    pub value: String,
    /// What is wrong with it, phrased as the rule it breaks.
    pub reason: String,
}

impl IdError {
    fn new(kind: &'static str, value: &str, reason: impl Into<String>) -> Self {
        let value = if value.chars().count() > 80 {
            let mut s: String = value.chars().take(77).collect();
            s.push_str("...");
            s
        } else {
            value.to_owned()
        };
        Self {
            kind,
            value,
            reason: reason.into(),
        }
    }
}

/// Checks `s` is 1..=`max` bytes long and every byte is in `allowed`.
fn check_chars(
    kind: &'static str,
    s: &str,
    max: usize,
    allowed: &ByteClass,
    pattern: &str,
) -> Result<(), IdError> {
    if s.is_empty() {
        return Err(IdError::new(
            kind,
            s,
            format!("must not be empty (pattern {pattern})"),
        ));
    }
    if s.len() > max {
        return Err(IdError::new(
            kind,
            s,
            format!(
                "is {} bytes long, at most {max} allowed (pattern {pattern})",
                s.len()
            ),
        ));
    }
    // Every byte looked up without a branch per byte (ids are checked on every
    // body of every fold, and nearly all pass); only an id that fails is searched
    // for its first refused byte. `allowed` admits ASCII only, so that byte
    // starts a character (every byte before it is ASCII).
    if !s.bytes().fold(true, |ok, b| ok & allowed.0[usize::from(b)]) {
        let i = s
            .bytes()
            .position(|b| !allowed.0[usize::from(b)])
            .unwrap_or(0);
        let c = s[i..].chars().next().unwrap_or(char::REPLACEMENT_CHARACTER);
        return Err(IdError::new(
            kind,
            s,
            format!("contains {c:?}, which is not allowed (pattern {pattern})"),
        ));
    }
    Ok(())
}

const fn tenant_byte(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-'
}

const fn event_id_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-')
}

const fn key_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')
}

const fn ident_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'/' | b'@' | b'-')
}

/// The bytes an id may hold, as a table: one load per byte instead of a chain of
/// range tests (every id of every body is checked on each fold).
struct ByteClass([bool; 256]);

/// The [`ByteClass`] of the bytes for which the `const fn` `$pred` holds.
macro_rules! byte_class {
    ($pred:ident) => {{
        let mut table = [false; 256];
        let mut b = 0;
        while b < 256 {
            table[b] = $pred(b as u8);
            b += 1;
        }
        ByteClass(table)
    }};
}

static TENANT_BYTES: ByteClass = byte_class!(tenant_byte);
static EVENT_ID_BYTES: ByteClass = byte_class!(event_id_byte);
static KEY_NAME_BYTES: ByteClass = byte_class!(key_name_byte);
static IDENT_BYTES: ByteClass = byte_class!(ident_byte);

/// Implements the shared plumbing of a validated string newtype.
macro_rules! string_id {
    ($ty:ident, $validate:expr) => {
        impl $ty {
            /// The id as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// Consumes the id, returning the underlying string.
            pub fn into_string(self) -> String {
                self.0.into_string()
            }

            /// Validates `s` without allocating.
            pub fn validate(s: &str) -> Result<(), IdError> {
                let validate: fn(&str) -> Result<(), IdError> = $validate;
                validate(s)
            }
        }

        impl TryFrom<String> for $ty {
            type Error = IdError;
            fn try_from(s: String) -> Result<Self, IdError> {
                Self::validate(&s)?;
                Ok(Self(s.into_boxed_str()))
            }
        }

        impl TryFrom<&str> for $ty {
            type Error = IdError;
            fn try_from(s: &str) -> Result<Self, IdError> {
                Self::validate(s)?;
                Ok(Self(s.into()))
            }
        }

        impl FromStr for $ty {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                Self::try_from(s)
            }
        }

        impl From<$ty> for String {
            fn from(id: $ty) -> String {
                id.0.into_string()
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $ty {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl Borrow<str> for $ty {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl PartialEq<str> for $ty {
            fn eq(&self, other: &str) -> bool {
                *self.0 == *other
            }
        }

        impl PartialEq<&str> for $ty {
            fn eq(&self, other: &&str) -> bool {
                *self.0 == **other
            }
        }
    };
}

/// A tenant id: `[a-z0-9_-]{1,64}`, except the names in [`TenantId::RESERVED`].
/// Appears in subjects (`gov.<tenant>.<kind>`), bodies and key ids; all three must
/// agree.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TenantId(Box<str>);

string_id!(TenantId, |s| {
    check_chars("tenant id", s, 64, &TENANT_BYTES, "[a-z0-9_-]{1,64}")?;
    if TenantId::RESERVED.contains(&s) {
        return Err(IdError::new(
            "tenant id",
            s,
            "is reserved: gov.receipts.>, gov.alerts.> and gov.checkpoints carry govledger's own publications",
        ));
    }
    Ok(())
});

impl TenantId {
    /// Names no tenant may take, because `gov.<name>.` subjects are govledger's own
    /// publications (receipts, alerts, checkpoints).
    pub const RESERVED: [&'static str; 3] = ["receipts", "alerts", "checkpoints"];
}

/// An event id, unique per tenant: `[A-Za-z0-9._:-]{1,128}`. Producers send
/// `<tenant>:<event id>` as `Nats-Msg-Id`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EventId(Box<str>);

string_id!(EventId, |s| check_chars(
    "event id",
    s,
    128,
    &EVENT_ID_BYTES,
    "[A-Za-z0-9._:-]{1,128}"
));

/// A signing key id: `<tenant>/<name>`, where tenant is a [`TenantId`] and name is
/// `[A-Za-z0-9._-]{1,64}`. The operator's keys use the tenant-shaped prefix
/// [`KeyId::OPERATOR_TENANT`] (`operator/<name>`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct KeyId(Box<str>);

fn validate_key_id(s: &str) -> Result<(), IdError> {
    const KIND: &str = "key id";
    let Some((tenant, name)) = s.split_once('/') else {
        return Err(IdError::new(
            KIND,
            s,
            "must have the form <tenant>/<name>, e.g. acme/ops-1",
        ));
    };
    TenantId::validate(tenant)
        .map_err(|e| IdError::new(KIND, s, format!("tenant part {}", e.reason)))?;
    check_chars(KIND, name, 64, &KEY_NAME_BYTES, "[A-Za-z0-9._-]{1,64}")
        .map_err(|e| IdError::new(KIND, s, format!("name part {}", e.reason)))
}

string_id!(KeyId, validate_key_id);

impl KeyId {
    /// The tenant-shaped prefix of operator keys: `operator/<name>`.
    pub const OPERATOR_TENANT: &'static str = "operator";

    /// The tenant part (before the `/`) as a string slice.
    pub fn tenant_str(&self) -> &str {
        self.0.split_once('/').map_or("", |(t, _)| t)
    }

    /// The tenant part as a [`TenantId`].
    pub fn tenant(&self) -> TenantId {
        // The constructor validated the tenant part, so this cannot fail.
        TenantId(self.tenant_str().into())
    }

    /// The name part (after the `/`).
    pub fn name(&self) -> &str {
        self.0.split_once('/').map_or("", |(_, n)| n)
    }

    /// Whether this is an operator key (`operator/<name>`).
    pub fn is_operator(&self) -> bool {
        self.tenant_str() == Self::OPERATOR_TENANT
    }
}

/// A generic identifier: `[A-Za-z0-9._:/@-]{1,128}`. Used for session, proposal, actor
/// (agent/user/service), ticket, policy, budget, rule, model and resource ids.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Ident(Box<str>);

string_id!(Ident, |s| check_chars(
    "identifier",
    s,
    128,
    &IDENT_BYTES,
    "[A-Za-z0-9._:/@-]{1,128}"
));

/// A ledger sequence number: the 0-based leaf index of an entry.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    bincode::Encode,
    bincode::Decode,
)]
#[serde(transparent)]
pub struct Seq(pub u64);

impl Seq {
    /// The sequence number after this one, or `None` on overflow.
    pub fn checked_next(self) -> Option<Seq> {
        self.0.checked_add(1).map(Seq)
    }
}

impl fmt::Display for Seq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl From<u64> for Seq {
    fn from(v: u64) -> Self {
        Seq(v)
    }
}

impl From<Seq> for u64 {
    fn from(s: Seq) -> u64 {
        s.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether `b` is in a bracket expression such as `[A-Za-z0-9._:-]`, read
    /// from the pattern the error messages show (a `-` last is itself).
    fn in_bracket(pattern: &str, b: u8) -> bool {
        let class = pattern.strip_prefix('[').and_then(|p| p.split(']').next());
        let class = class.expect("a bracket expression").as_bytes();
        let mut i = 0;
        while i < class.len() {
            if i + 2 < class.len() && class[i + 1] == b'-' {
                if (class[i]..=class[i + 2]).contains(&b) {
                    return true;
                }
                i += 3;
            } else {
                if class[i] == b {
                    return true;
                }
                i += 1;
            }
        }
        false
    }

    #[test]
    fn byte_tables_hold_exactly_the_bytes_of_each_pattern() {
        for (table, pattern) in [
            (&TENANT_BYTES, "[a-z0-9_-]{1,64}"),
            (&EVENT_ID_BYTES, "[A-Za-z0-9._:-]{1,128}"),
            (&KEY_NAME_BYTES, "[A-Za-z0-9._-]{1,64}"),
            (&IDENT_BYTES, "[A-Za-z0-9._:/@-]{1,128}"),
        ] {
            for b in 0..=255u8 {
                assert_eq!(
                    table.0[usize::from(b)],
                    in_bracket(pattern, b),
                    "{pattern} {b:#04x}"
                );
            }
        }
    }

    #[test]
    fn tenant_ids() {
        assert!(TenantId::try_from("acme").is_ok());
        assert!(TenantId::try_from("a_b-9").is_ok());
        assert!(TenantId::try_from("a".repeat(64)).is_ok());
        assert!(TenantId::try_from("a".repeat(65)).is_err());
        assert!(TenantId::try_from("").is_err());
        assert!(TenantId::try_from("Acme").is_err());
        assert!(TenantId::try_from("ac.me").is_err());
        assert!(TenantId::try_from("acmé").is_err());
    }

    #[test]
    fn event_ids() {
        assert!(EventId::try_from("01J:abc.def_g-h").is_ok());
        assert!(EventId::try_from("a/b").is_err());
        assert!(EventId::try_from("a".repeat(128)).is_ok());
        assert!(EventId::try_from("a".repeat(129)).is_err());
    }

    #[test]
    fn key_ids() {
        let k = KeyId::try_from("acme/ops-1.v2").unwrap();
        assert_eq!(k.tenant_str(), "acme");
        assert_eq!(k.tenant(), TenantId::try_from("acme").unwrap());
        assert_eq!(k.name(), "ops-1.v2");
        assert!(!k.is_operator());
        assert!(KeyId::try_from("operator/root").unwrap().is_operator());
        for bad in ["acme", "acme/", "/x", "Acme/x", "acme/x/y", "acme/x:y", ""] {
            assert!(KeyId::try_from(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn idents() {
        assert!(Ident::try_from("user:alice@example.com/x").is_ok());
        assert!(Ident::try_from("a b").is_err());
        assert!(Ident::try_from("a".repeat(129)).is_err());
    }

    #[test]
    fn serde_validates() {
        let t: TenantId = serde_json::from_str("\"acme\"").unwrap();
        assert_eq!(serde_json::to_string(&t).unwrap(), "\"acme\"");
        assert!(serde_json::from_str::<TenantId>("\"ACME\"").is_err());
        let s: Seq = serde_json::from_str("7").unwrap();
        assert_eq!(s, Seq(7));
        assert_eq!(s.to_string(), "7");
    }

    #[test]
    fn error_message_is_actionable() {
        let e = TenantId::try_from("Acme").unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid tenant id \"Acme\": contains 'A', which is not allowed (pattern [a-z0-9_-]{1,64})"
        );
    }
}
