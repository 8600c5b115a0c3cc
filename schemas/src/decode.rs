//! Strict decoding of v1 bodies.
//!
//! [`decode_body`] is the only way to turn bytes into an [`Envelope`]. It checks, in
//! this order, and stops at the first failure:
//!
//! 1. size ([`DecodeError::Oversized`]), before looking at any byte;
//! 2. UTF-8 ([`DecodeError::NotUtf8`]);
//! 3. JSON syntax, including trailing data and **duplicate object keys** at any depth
//!    ([`DecodeError::MalformedJson`]) — a body whose meaning depends on which of two
//!    `cost_micros` a reader picks must not be signed and accepted;
//! 4. a top-level object with a supported `v` ([`DecodeError::UnsupportedVersion`]);
//! 5. a known `type` ([`DecodeError::UnknownType`]);
//! 6. every field of the envelope and the type, by hand, so errors name the exact field
//!    path (`actor.agent`, `rule_ids[2]`) ([`DecodeError::Schema`]). Unknown fields are
//!    reported before missing ones, since a typo usually explains both.
//!
//! Step 3 reads the JSON producers actually send (no escapes, non-negative integers)
//! with a small parser of its own (the private `parse` module) and hands everything
//! else, and every error, to serde_json, so its messages and its acceptance are
//! serde_json's.
//!
//! Before those steps, a one-pass reader (the private `direct` module) tries the
//! bodies that make up nearly all of a ledger (sessions, proposals, decisions,
//! approvals, executions, budget increments, kill switches, written without
//! escapes): it reads each member straight into the place of its name and builds
//! the event from there, without the tree of steps 3 to 6. It answers only for a
//! valid body, with the event these steps build; on anything else it gives up, and
//! the steps above run as described, so they alone decide every rejection and its
//! message. Differential property tests hold it to them on valid, broken and
//! mutated bodies.
//!
//! The decoding is hand-written rather than `serde` derived: derived internally tagged
//! enums cannot deny unknown fields, and serde's errors do not say which nested field
//! was wrong. Optional fields may be absent or `null`.
//!
//! Echoes of input in error messages are truncated so a hostile body cannot make the
//! stored rejection detail large.

use base64::Engine as _;
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use std::borrow::Cow;
use std::collections::HashSet;

use serde_json::{Map, Number, Value};

use crate::event::*;
use crate::ids::{EventId, Ident, KeyId, TenantId};
use crate::verdict::RejectReason;

mod direct;
mod parse;

/// The default body size limit: 64 KiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 64 * 1024;

/// Hard ceiling on [`DecodeLimits::max_body_bytes`]: 8 MiB. Larger configured limits are
/// clamped to this, so every accepted body fits in an entry of at most
/// [`crate::codec::MAX_ENTRY_BYTES`].
pub const MAX_BODY_BYTES_CAP: usize = 8 * 1024 * 1024;

/// Longest free-text `reason` accepted, in characters.
pub const MAX_REASON_CHARS: usize = 1024;

/// Longest `action` name accepted, in characters.
const MAX_ACTION_CHARS: usize = 256;

/// Longest `policy_version` accepted, in characters.
const MAX_POLICY_VERSION_CHARS: usize = 64;

/// Limits applied by [`decode_body`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecodeLimits {
    /// Bodies longer than this many bytes are rejected as [`DecodeError::Oversized`].
    /// Values above [`MAX_BODY_BYTES_CAP`] act as that cap.
    pub max_body_bytes: usize,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        Self {
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
        }
    }
}

/// Why a body could not be decoded. Each variant maps to a [`RejectReason`] via
/// [`DecodeError::reason`].
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The body is longer than [`DecodeLimits::max_body_bytes`].
    #[error("body is {len} bytes, more than the limit of {max} bytes")]
    Oversized {
        /// The body length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The body is not valid UTF-8.
    #[error("body is not valid UTF-8: invalid byte at offset {valid_up_to}")]
    NotUtf8 {
        /// Length of the longest valid UTF-8 prefix.
        valid_up_to: usize,
    },
    /// The body is not one well-formed JSON value (syntax error, trailing data, duplicate
    /// key, nesting too deep).
    #[error("body is not well-formed JSON: {0}")]
    MalformedJson(String),
    /// `v` is a version this build does not understand.
    #[error("unsupported schema version {0}: this build understands version 1")]
    UnsupportedVersion(u32),
    /// `type` is not a known event type.
    #[error("unknown event type {0:?}")]
    UnknownType(String),
    /// A field is missing, unknown, of the wrong JSON type, or has a bad value.
    #[error("schema violation in field `{field}`: {message}")]
    Schema {
        /// Path of the field, e.g. `cost_micros`, `actor.agent`, `rule_ids[2]`; `$` for
        /// the body as a whole.
        field: String,
        /// What is wrong.
        message: String,
    },
}

impl DecodeError {
    /// The machine-readable reject reason.
    pub fn reason(&self) -> RejectReason {
        match self {
            DecodeError::Oversized { .. } => RejectReason::Oversized,
            DecodeError::NotUtf8 { .. } => RejectReason::NotUtf8,
            DecodeError::MalformedJson(_) => RejectReason::MalformedJson,
            DecodeError::UnsupportedVersion(_) => RejectReason::UnsupportedVersion,
            DecodeError::UnknownType(_) => RejectReason::UnknownType,
            DecodeError::Schema { .. } => RejectReason::SchemaViolation,
        }
    }

    fn schema(field: impl Into<String>, message: impl Into<String>) -> Self {
        DecodeError::Schema {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Truncates user input echoed in messages.
fn snippet(s: &str) -> String {
    const MAX: usize = 64;
    if s.chars().count() <= MAX {
        s.to_owned()
    } else {
        let mut out: String = s.chars().take(MAX).collect();
        out.push('…');
        out
    }
}

/// Decodes and validates a v1 body. See the module docs for the order of checks.
pub fn decode_body(body: &[u8], limits: &DecodeLimits) -> Result<Envelope, DecodeError> {
    let text = checked_text(body, limits)?;
    // The common case in one pass; anything else (and every error) the long way.
    match direct::envelope(text) {
        Some(env) => Ok(env),
        None => decode_text(text),
    }
}

/// [`decode_body`] into `out`, which holds the envelope after `Ok` and nothing
/// after an error. An envelope is a few hundred bytes: a caller that keeps decoded
/// events in place (the fold's rounds of decoded entries) has it built there
/// instead of moved through each layer's result on its way.
pub fn decode_body_into(
    body: &[u8],
    limits: &DecodeLimits,
    out: &mut Option<Envelope>,
) -> Result<(), DecodeError> {
    *out = None;
    let text = checked_text(body, limits)?;
    *out = direct::envelope(text);
    if out.is_none() {
        *out = Some(decode_text(text)?);
    }
    Ok(())
}

/// [`decode_body`] without the one-pass reader, on a body whose size and encoding
/// have been checked.
fn decode_text(text: &str) -> Result<Envelope, DecodeError> {
    let mut root = parse_text(text)?;

    let v = match root.get("v") {
        None => return Err(DecodeError::schema("v", "missing required field")),
        Some(v) => v,
    };
    let v = match v.as_u64() {
        Some(n) => u32::try_from(n)
            .map_err(|_| DecodeError::schema("v", format!("unsupported schema version {n}")))?,
        None => {
            return Err(DecodeError::schema(
                "v",
                format!("expected a non-negative integer, found {}", describe(v)),
            ))
        }
    };
    if v != WIRE_VERSION {
        return Err(DecodeError::UnsupportedVersion(v));
    }

    let kind = match root.get("type") {
        None => return Err(DecodeError::schema("type", "missing required field")),
        Some(Json::Str(s)) => s
            .parse::<EventType>()
            .map_err(|_| DecodeError::UnknownType(snippet(s)))?,
        Some(other) => {
            return Err(DecodeError::schema(
                "type",
                format!("expected a string, found {}", describe(other)),
            ))
        }
    };
    root.remove("v");
    root.remove("type");

    let mut f = Fields::new(root, None, allowed_fields(kind))?;
    let id: EventId = f.req("id")?;
    let tenant: TenantId = f.req("tenant")?;
    let event = decode_event(kind, &mut f)?;
    Ok(Envelope {
        v,
        id,
        tenant,
        event,
    })
}

/// The event id and tenant of a body, as far as they can be read, for labelling a
/// rejection. Never fails: absent, invalid or unreadable values give `None`. Applies the
/// same size, UTF-8 and JSON checks as [`decode_body`].
pub fn peek_ids(body: &[u8], limits: &DecodeLimits) -> (Option<EventId>, Option<TenantId>) {
    let Ok(root) = parse_object(body, limits) else {
        return (None, None);
    };
    let text = |name: &str| match root.get(name) {
        Some(Json::Str(s)) => Some(s.as_ref()),
        _ => None,
    };
    let id = text("id").and_then(|s| EventId::try_from(s).ok());
    let tenant = text("tenant").and_then(|s| TenantId::try_from(s).ok());
    (id, tenant)
}

fn parse_object<'a>(body: &'a [u8], limits: &DecodeLimits) -> Result<Obj<'a>, DecodeError> {
    parse_text(checked_text(body, limits)?)
}

/// The body as text, if it is within the size limit and UTF-8.
fn checked_text<'a>(body: &'a [u8], limits: &DecodeLimits) -> Result<&'a str, DecodeError> {
    let max = limits.max_body_bytes.min(MAX_BODY_BYTES_CAP);
    if body.len() > max {
        return Err(DecodeError::Oversized {
            len: body.len(),
            max,
        });
    }
    std::str::from_utf8(body).map_err(|e| DecodeError::NotUtf8 {
        valid_up_to: e.valid_up_to(),
    })
}

/// The top-level object of a checked body.
fn parse_text<'a>(text: &'a str) -> Result<Obj<'a>, DecodeError> {
    // The common case without serde; anything else (and every error) through it.
    let value: Json<'a> = match parse::tree(text) {
        Some(value) => value,
        None => {
            serde_json::from_str(text).map_err(|e| DecodeError::MalformedJson(e.to_string()))?
        }
    };
    match value {
        Json::Obj(map) => Ok(map),
        other => Err(DecodeError::schema(
            "$",
            format!("the body must be a JSON object, found {}", describe(&other)),
        )),
    }
}

/// A JSON value parsed without losing information (duplicate keys are an error instead
/// of "last one wins"), borrowing its strings from the body where no escape had to be
/// undone. Decoding into this instead of a `serde_json::Value` saves an allocation per
/// key and per unescaped string and the map building: the tree only lives until the
/// typed fields are taken out of it.
#[derive(Debug, PartialEq)]
enum Json<'a> {
    Null,
    Bool(bool),
    Num(Number),
    Str(Cow<'a, str>),
    Arr(Vec<Json<'a>>),
    Obj(Obj<'a>),
}

/// A JSON object's members, in document order, keys unique.
#[derive(Debug, Default, PartialEq)]
struct Obj<'a>(Vec<(Cow<'a, str>, Json<'a>)>);

impl<'a> Obj<'a> {
    fn get(&self, key: &str) -> Option<&Json<'a>> {
        self.0
            .iter()
            .find(|(k, _)| same_key(k, key))
            .map(|(_, v)| v)
    }

    fn remove(&mut self, key: &str) -> Option<Json<'a>> {
        let i = self.0.iter().position(|(k, _)| same_key(k, key))?;
        Some(self.0.swap_remove(i).1)
    }
}

/// Whether two member names are equal, compared inline: names are short, and a
/// `memcmp` call for every candidate (the unknown-field check compares every name
/// with several) cost more than the comparison itself.
#[inline]
fn same_key(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x == y)
}

impl Json<'_> {
    fn as_u64(&self) -> Option<u64> {
        match self {
            Json::Num(n) => n.as_u64(),
            _ => None,
        }
    }

    /// The owned `serde_json::Value` of a free-form member (`telemetry.data`).
    fn into_value(self) -> Value {
        match self {
            Json::Null => Value::Null,
            Json::Bool(b) => Value::Bool(b),
            Json::Num(n) => Value::Number(n),
            Json::Str(s) => Value::String(s.into_owned()),
            Json::Arr(items) => Value::Array(items.into_iter().map(Json::into_value).collect()),
            Json::Obj(o) => Value::Object(o.into_map()),
        }
    }
}

impl Obj<'_> {
    fn into_map(self) -> Map<String, Value> {
        self.0
            .into_iter()
            .map(|(k, v)| (k.into_owned(), v.into_value()))
            .collect()
    }
}

impl<'de> Deserialize<'de> for Json<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(JsonVisitor)
    }
}

struct JsonVisitor;

/// Objects with more members than this keep a set of their keys for the duplicate
/// check; smaller ones compare linearly.
const LINEAR_KEYS: usize = 16;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Json<'de>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Json<'de>, E> {
        Ok(Json::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Json<'de>, E> {
        Ok(Json::Num(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Json<'de>, E> {
        Ok(Json::Num(v.into()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Json<'de>, E> {
        Number::from_f64(v)
            .map(Json::Num)
            .ok_or_else(|| E::custom("number is not finite"))
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Json<'de>, E> {
        Ok(Json::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Json<'de>, E> {
        Ok(Json::Str(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E>(self, v: String) -> Result<Json<'de>, E> {
        Ok(Json::Str(Cow::Owned(v)))
    }
    fn visit_unit<E>(self) -> Result<Json<'de>, E> {
        Ok(Json::Null)
    }
    fn visit_none<E>(self) -> Result<Json<'de>, E> {
        Ok(Json::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json<'de>, A::Error> {
        let mut out = Vec::new();
        while let Some(v) = seq.next_element()? {
            out.push(v);
        }
        Ok(Json::Arr(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json<'de>, A::Error> {
        let mut out: Vec<(Cow<'de, str>, Json<'de>)> = Vec::new();
        let mut seen: Option<HashSet<Cow<'de, str>>> = None;
        while let Some(Key(key)) = map.next_key()? {
            let duplicate = match &mut seen {
                Some(set) => !set.insert(key.clone()),
                None if out.len() < LINEAR_KEYS => out.iter().any(|(k, _)| same_key(k, &key)),
                None => {
                    let mut set: HashSet<Cow<'de, str>> =
                        out.iter().map(|(k, _)| k.clone()).collect();
                    let duplicate = !set.insert(key.clone());
                    seen = Some(set);
                    duplicate
                }
            };
            if duplicate {
                return Err(de::Error::custom(format_args!(
                    "duplicate key `{}`",
                    snippet(&key)
                )));
            }
            let v = map.next_value()?;
            out.push((key, v));
        }
        Ok(Json::Obj(Obj(out)))
    }
}

/// An object key, borrowed from the body when it has no escapes (serde's own
/// `Cow<str>` always copies).
struct Key<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object key")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

/// Describes a JSON value's kind for error messages.
fn describe(v: &Json<'_>) -> String {
    match v {
        Json::Null => "null".to_owned(),
        Json::Bool(b) => format!("the boolean {b}"),
        Json::Num(n) if n.is_f64() => format!("the fractional number {n}"),
        Json::Num(n) => format!("the number {n}"),
        Json::Str(s) => format!("the string {:?}", snippet(s)),
        Json::Arr(_) => "an array".to_owned(),
        Json::Obj(_) => "an object".to_owned(),
    }
}

/// Where a value sits in the body (`actor.agent`, `rule_ids[2]`), for errors:
/// written out only when an error names it, so decoding a good body builds no
/// path strings.
#[derive(Clone, Copy)]
enum Path<'p> {
    /// A member of the top-level object, or of the object at the parent path.
    Field(Option<&'p Path<'p>>, &'p str),
    /// An item of the array at the parent path.
    Index(&'p Path<'p>, usize),
}

impl std::fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Path::Field(None, name) => f.write_str(name),
            Path::Field(Some(parent), name) => write!(f, "{parent}.{name}"),
            Path::Index(parent, i) => write!(f, "{parent}[{i}]"),
        }
    }
}

/// The fields of one JSON object being decoded, with the path of the object (none
/// for the body itself) used in errors.
///
/// Each member is matched with its name in `allowed` once, by the unknown-field
/// check; a field is then taken by its place in `allowed`, not by comparing its
/// name with every member again.
struct Fields<'a, 'p> {
    map: Obj<'a>,
    allowed: &'static [&'static str],
    /// For the i-th name of `allowed`, 1 + the index of its member in `map`, or 0
    /// when it is absent or already taken.
    at: [u8; MAX_ALLOWED],
    parent: Option<&'p Path<'p>>,
}

/// The most names an object of the schema allows (`approval.granted` has 11).
const MAX_ALLOWED: usize = 16;

impl<'a, 'p> Fields<'a, 'p> {
    /// Takes ownership of `map`, rejecting any key not in `allowed` (naming the first
    /// such key in string order).
    fn new(
        map: Obj<'a>,
        parent: Option<&'p Path<'p>>,
        allowed: &'static [&'static str],
    ) -> Result<Self, DecodeError> {
        let mut at = [0u8; MAX_ALLOWED];
        let mut unknown: Option<&str> = None;
        for (i, (k, _)) in map.0.iter().enumerate() {
            match allowed.iter().position(|a| same_key(a, k)) {
                // Without an unknown member, names are distinct (duplicates are
                // refused when parsing), so there are at most MAX_ALLOWED members.
                // (A test holds every list to MAX_ALLOWED; were one longer, its
                // later names would read as absent, never panic.)
                Some(j) => {
                    if let Some(slot) = at.get_mut(j) {
                        *slot = u8::try_from(i + 1).unwrap_or(0);
                    }
                }
                None => unknown = Some(unknown.map_or(k.as_ref(), |u| u.min(k.as_ref()))),
            }
        }
        if let Some(unknown) = unknown {
            let name = snippet(unknown);
            return Err(DecodeError::schema(
                Path::Field(parent, &name).to_string(),
                format!("unknown field; expected one of: {}", allowed.join(", ")),
            ));
        }
        Ok(Self {
            map,
            allowed,
            at,
            parent,
        })
    }

    /// Takes the value of member `name` out, if present and not taken before.
    fn take(&mut self, name: &str) -> Option<Json<'a>> {
        // The callers' names are the same literals as in `allowed`, usually one
        // constant: compare addresses first (measured: 3.69–3.85× of the syntax
        // check without this, 3.42–3.59× with it), then the bytes.
        let same = |a: &&str| std::ptr::eq(a.as_ptr(), name.as_ptr()) && a.len() == name.len();
        let j = match self.allowed.iter().position(same) {
            Some(j) => j,
            None => self.allowed.iter().position(|a| same_key(a, name))?,
        };
        let i = usize::from(std::mem::take(&mut self.at[j]).checked_sub(1)?);
        Some(std::mem::replace(&mut self.map.0[i].1, Json::Null))
    }

    fn path<'s>(&'s self, name: &'s str) -> Path<'s> {
        Path::Field(self.parent, name)
    }

    /// A required field.
    fn req<T: FromJson>(&mut self, name: &str) -> Result<T, DecodeError> {
        match self.take(name) {
            None => Err(DecodeError::schema(
                self.path(name).to_string(),
                "missing required field",
            )),
            Some(v) => T::from_json(v, self.path(name)),
        }
    }

    /// An optional field: absent or `null` give `None`.
    fn opt<T: FromJson>(&mut self, name: &str) -> Result<Option<T>, DecodeError> {
        match self.take(name) {
            None | Some(Json::Null) => Ok(None),
            Some(v) => T::from_json(v, self.path(name)).map(Some),
        }
    }

    /// A required string of `min..=max` characters.
    fn text(&mut self, name: &str, min: usize, max: usize) -> Result<String, DecodeError> {
        let s: String = self.req(name)?;
        check_len(&s, self.path(name), min, max)?;
        Ok(s)
    }

    /// An optional string of at most `max` characters.
    fn opt_text(&mut self, name: &str, max: usize) -> Result<Option<String>, DecodeError> {
        let s: Option<String> = self.opt(name)?;
        if let Some(s) = &s {
            check_len(s, self.path(name), 0, max)?;
        }
        Ok(s)
    }
}

fn check_len(s: &str, path: Path<'_>, min: usize, max: usize) -> Result<(), DecodeError> {
    let n = s.chars().count();
    if n < min || n > max {
        let message = if min == 0 {
            format!("must be at most {max} characters, found {n}")
        } else {
            format!("must be {min} to {max} characters, found {n}")
        };
        return Err(DecodeError::schema(path.to_string(), message));
    }
    Ok(())
}

/// Conversion of one JSON value at `path` into a typed value.
trait FromJson: Sized {
    fn from_json(v: Json<'_>, path: Path<'_>) -> Result<Self, DecodeError>;
}

fn wrong_type(path: Path<'_>, expected: &str, v: &Json<'_>) -> DecodeError {
    DecodeError::schema(
        path.to_string(),
        format!("expected {expected}, found {}", describe(v)),
    )
}

impl FromJson for u64 {
    fn from_json(v: Json<'_>, path: Path<'_>) -> Result<Self, DecodeError> {
        v.as_u64()
            .ok_or_else(|| wrong_type(path, "a non-negative integer", &v))
    }
}

impl FromJson for u32 {
    fn from_json(v: Json<'_>, path: Path<'_>) -> Result<Self, DecodeError> {
        v.as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| wrong_type(path, "a non-negative integer at most 4294967295", &v))
    }
}

impl FromJson for bool {
    fn from_json(v: Json<'_>, path: Path<'_>) -> Result<Self, DecodeError> {
        match v {
            Json::Bool(b) => Ok(b),
            other => Err(wrong_type(path, "true or false", &other)),
        }
    }
}

impl FromJson for String {
    fn from_json(v: Json<'_>, path: Path<'_>) -> Result<Self, DecodeError> {
        match v {
            Json::Str(s) => Ok(s.into_owned()),
            other => Err(wrong_type(path, "a string", &other)),
        }
    }
}

impl<T: FromJson> FromJson for Vec<T> {
    fn from_json(v: Json<'_>, path: Path<'_>) -> Result<Self, DecodeError> {
        match v {
            Json::Arr(items) => items
                .into_iter()
                .enumerate()
                .map(|(i, item)| T::from_json(item, Path::Index(&path, i)))
                .collect(),
            other => Err(wrong_type(path, "an array", &other)),
        }
    }
}

impl FromJson for Map<String, Value> {
    fn from_json(v: Json<'_>, path: Path<'_>) -> Result<Self, DecodeError> {
        match v {
            Json::Obj(m) => Ok(m.into_map()),
            other => Err(wrong_type(path, "an object", &other)),
        }
    }
}

/// An object to decode field by field.
fn object<'a>(v: Json<'a>, path: Path<'_>) -> Result<Obj<'a>, DecodeError> {
    match v {
        Json::Obj(m) => Ok(m),
        other => Err(wrong_type(path, "an object", &other)),
    }
}

macro_rules! id_from_json {
    ($($ty:ty),*) => {$(
        impl FromJson for $ty {
            fn from_json(v: Json<'_>, path: Path<'_>) -> Result<Self, DecodeError> {
                let s = String::from_json(v, path)?;
                <$ty>::try_from(s).map_err(|e| DecodeError::schema(path.to_string(), e.to_string()))
            }
        }
    )*};
}
id_from_json!(EventId, TenantId, KeyId, Ident);

macro_rules! enum_from_json {
    ($ty:ty { $($name:literal => $variant:expr),* $(,)? }) => {
        impl $ty {
            /// The value of a word of the wire format.
            fn from_word(s: &str) -> Option<Self> {
                match s {
                    $($name => Some($variant),)*
                    _ => None,
                }
            }
        }

        impl FromJson for $ty {
            fn from_json(v: Json<'_>, path: Path<'_>) -> Result<Self, DecodeError> {
                // Matched where it lies in the body: no owned copy of a word.
                let s = match v {
                    Json::Str(s) => s,
                    other => return Err(wrong_type(path, "a string", &other)),
                };
                <$ty>::from_word(&s).ok_or_else(|| DecodeError::schema(
                    path.to_string(),
                    format!(
                        "expected one of: {}; found {:?}",
                        [$($name),*].join(", "),
                        snippet(&s)
                    ),
                ))
            }
        }
    };
}
enum_from_json!(RiskTier { "low" => RiskTier::Low, "medium" => RiskTier::Medium,
    "high" => RiskTier::High, "critical" => RiskTier::Critical });
enum_from_json!(Decision { "allow" => Decision::Allow, "deny" => Decision::Deny,
    "require_approval" => Decision::RequireApproval });
enum_from_json!(ApprovalScope { "once" => ApprovalScope::Once, "session" => ApprovalScope::Session });
enum_from_json!(Outcome { "success" => Outcome::Success, "failure" => Outcome::Failure,
    "error" => Outcome::Error });
enum_from_json!(BudgetWindow { "day" => BudgetWindow::Day, "week" => BudgetWindow::Week,
    "month" => BudgetWindow::Month, "total" => BudgetWindow::Total });
enum_from_json!(KillScope { "session" => KillScope::Session, "agent" => KillScope::Agent,
    "tenant" => KillScope::Tenant, "system" => KillScope::System });

/// The members of an actor chain.
const ACTOR_FIELDS: &[&str] = &["user", "agent", "service"];

/// The members of a budget scope.
const SCOPE_FIELDS: &[&str] = &["org", "team", "user", "agent"];

const _: () = assert!(ACTOR_FIELDS.len() <= MAX_ALLOWED && SCOPE_FIELDS.len() <= MAX_ALLOWED);

impl FromJson for ActorChain {
    fn from_json(v: Json<'_>, path: Path<'_>) -> Result<Self, DecodeError> {
        let map = object(v, path)?;
        let mut f = Fields::new(map, Some(&path), ACTOR_FIELDS)?;
        let actor = ActorChain {
            user: f.opt("user")?,
            agent: f.opt("agent")?,
            service: f.opt("service")?,
        };
        if actor.user.is_none() && actor.agent.is_none() && actor.service.is_none() {
            return Err(DecodeError::schema(
                path.to_string(),
                "at least one of `user`, `agent`, `service` must be set",
            ));
        }
        Ok(actor)
    }
}

impl FromJson for BudgetScope {
    fn from_json(v: Json<'_>, path: Path<'_>) -> Result<Self, DecodeError> {
        let map = object(v, path)?;
        let mut f = Fields::new(map, Some(&path), SCOPE_FIELDS)?;
        let scope = BudgetScope {
            org: f.opt("org")?,
            team: f.opt("team")?,
            user: f.opt("user")?,
            agent: f.opt("agent")?,
        };
        if scope == BudgetScope::default() {
            return Err(DecodeError::schema(
                path.to_string(),
                "at least one of `org`, `team`, `user`, `agent` must be set",
            ));
        }
        Ok(scope)
    }
}

/// Every top-level field allowed for `kind` (excluding `v` and `type`, checked first).
fn allowed_fields(kind: EventType) -> &'static [&'static str] {
    use EventType as T;
    match kind {
        T::SessionStarted | T::SessionSuspended | T::SessionResumed | T::SessionEnded => {
            &["id", "tenant", "session", "actor", "reason"]
        }
        T::ActionProposed => &[
            "id",
            "tenant",
            "proposal",
            "session",
            "actor",
            "action",
            "resource",
            "args_digest",
            "risk_tier",
        ],
        T::PolicyDecided => &[
            "id",
            "tenant",
            "proposal",
            "session",
            "actor",
            "decision",
            "policy_id",
            "policy_version",
            "rule_ids",
            "reason",
        ],
        T::ApprovalRequested => &[
            "id", "tenant", "ticket", "proposal", "session", "actor", "reason",
        ],
        T::ApprovalGranted => &[
            "id",
            "tenant",
            "ticket",
            "proposal",
            "session",
            "approver",
            "scope",
            "max_count",
            "max_cost_micros",
            "resource_ids",
            "expires_at_ns",
        ],
        T::ApprovalDenied => &[
            "id", "tenant", "ticket", "proposal", "session", "approver", "reason",
        ],
        T::ActionExecuted => &[
            "id",
            "tenant",
            "proposal",
            "session",
            "actor",
            "outcome",
            "cost_micros",
            "tokens",
            "ticket",
        ],
        T::BudgetConfigured => &[
            "id",
            "tenant",
            "budget_id",
            "scope",
            "limit_tokens",
            "limit_cost_micros",
            "window",
            "warn_thresholds_pct",
            "kill_on_exceed",
        ],
        T::BudgetIncremented => &[
            "id",
            "tenant",
            "scope",
            "session",
            "proposal",
            "tokens",
            "cost_micros",
            "model",
        ],
        T::KillswitchEngaged | T::KillswitchReleased => {
            &["id", "tenant", "scope", "target", "reason", "actor"]
        }
        T::KeyRegistered => &[
            "id",
            "tenant",
            "key_id",
            "public_key",
            "valid_from_ns",
            "valid_until_ns",
        ],
        T::KeyRotated => &[
            "id",
            "tenant",
            "key_id",
            "new_key_id",
            "new_public_key",
            "retire_old_at_ns",
        ],
        T::KeyRevoked => &["id", "tenant", "key_id", "reason"],
        T::Telemetry => &["id", "tenant", "actor", "name", "data"],
    }
}

fn decode_event(kind: EventType, f: &mut Fields) -> Result<Event, DecodeError> {
    use EventType as T;
    Ok(match kind {
        T::SessionStarted => Event::SessionStarted(session_change(f)?),
        T::SessionSuspended => Event::SessionSuspended(session_change(f)?),
        T::SessionResumed => Event::SessionResumed(session_change(f)?),
        T::SessionEnded => Event::SessionEnded(session_change(f)?),
        T::ActionProposed => Event::ActionProposed(action_proposed(f)?),
        T::PolicyDecided => Event::PolicyDecided(PolicyDecided {
            proposal: f.req("proposal")?,
            session: f.req("session")?,
            actor: f.req("actor")?,
            decision: f.req("decision")?,
            policy_id: f.req("policy_id")?,
            policy_version: f.text("policy_version", 1, MAX_POLICY_VERSION_CHARS)?,
            rule_ids: f.req("rule_ids")?,
            reason: f.text("reason", 0, MAX_REASON_CHARS)?,
        }),
        T::ApprovalRequested => Event::ApprovalRequested(ApprovalRequested {
            ticket: f.req("ticket")?,
            proposal: f.req("proposal")?,
            session: f.req("session")?,
            actor: f.req("actor")?,
            reason: f.opt_text("reason", MAX_REASON_CHARS)?,
        }),
        T::ApprovalGranted => Event::ApprovalGranted(approval_granted(f)?),
        T::ApprovalDenied => Event::ApprovalDenied(ApprovalDenied {
            ticket: f.req("ticket")?,
            proposal: f.req("proposal")?,
            session: f.req("session")?,
            approver: f.req("approver")?,
            reason: f.text("reason", 0, MAX_REASON_CHARS)?,
        }),
        T::ActionExecuted => Event::ActionExecuted(ActionExecuted {
            proposal: f.req("proposal")?,
            session: f.req("session")?,
            actor: f.req("actor")?,
            outcome: f.req("outcome")?,
            cost_micros: f.opt("cost_micros")?,
            tokens: f.opt("tokens")?,
            ticket: f.opt("ticket")?,
        }),
        T::BudgetConfigured => Event::BudgetConfigured(budget_configured(f)?),
        T::BudgetIncremented => Event::BudgetIncremented(BudgetIncremented {
            scope: f.req("scope")?,
            session: f.opt("session")?,
            proposal: f.opt("proposal")?,
            tokens: f.req("tokens")?,
            cost_micros: f.req("cost_micros")?,
            model: f.req("model")?,
        }),
        T::KillswitchEngaged => Event::KillswitchEngaged(kill_switch(f)?),
        T::KillswitchReleased => Event::KillswitchReleased(kill_switch(f)?),
        T::KeyRegistered => Event::KeyRegistered(key_registered(f)?),
        T::KeyRotated => Event::KeyRotated(key_rotated(f)?),
        T::KeyRevoked => Event::KeyRevoked(KeyRevoked {
            key_id: f.req("key_id")?,
            reason: f.text("reason", 0, MAX_REASON_CHARS)?,
        }),
        T::Telemetry => Event::Telemetry(Telemetry {
            actor: f.opt("actor")?,
            name: f.req("name")?,
            data: f.opt("data")?.unwrap_or_default(),
        }),
    })
}

fn session_change(f: &mut Fields) -> Result<SessionChange, DecodeError> {
    Ok(SessionChange {
        session: f.req("session")?,
        actor: f.req("actor")?,
        reason: f.opt_text("reason", MAX_REASON_CHARS)?,
    })
}

fn action_proposed(f: &mut Fields) -> Result<ActionProposed, DecodeError> {
    let proposal = f.req("proposal")?;
    let session = f.req("session")?;
    let actor: ActorChain = f.req("actor")?;
    if actor.agent.is_none() {
        return Err(DecodeError::schema(
            "actor.agent",
            "missing required field: an action is always proposed by an agent",
        ));
    }
    let action = f.text("action", 1, MAX_ACTION_CHARS)?;
    let resource = f.req("resource")?;
    let args_digest: String = f.req("args_digest")?;
    if !is_sha256_hex(&args_digest) {
        return Err(DecodeError::schema(
            "args_digest",
            format!(
                "expected a SHA-256 digest as 64 lowercase hex digits, found {:?}",
                snippet(&args_digest)
            ),
        ));
    }
    Ok(ActionProposed {
        proposal,
        session,
        actor,
        action,
        resource,
        args_digest,
        risk_tier: f.req("risk_tier")?,
    })
}

/// Whether `s` is a SHA-256 digest as 64 lowercase hex digits.
fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn approval_granted(f: &mut Fields) -> Result<ApprovalGranted, DecodeError> {
    let ticket = f.req("ticket")?;
    let proposal = f.req("proposal")?;
    let session = f.req("session")?;
    let approver = f.req("approver")?;
    let scope = f.req("scope")?;
    let max_count: Option<u32> = f.opt("max_count")?;
    if max_count == Some(0) {
        return Err(DecodeError::schema(
            "max_count",
            "must be at least 1 (omit it for no limit)",
        ));
    }
    Ok(ApprovalGranted {
        ticket,
        proposal,
        session,
        approver,
        scope,
        max_count,
        max_cost_micros: f.opt("max_cost_micros")?,
        resource_ids: f.req("resource_ids")?,
        expires_at_ns: f.opt("expires_at_ns")?,
    })
}

fn budget_configured(f: &mut Fields) -> Result<BudgetConfigured, DecodeError> {
    let budget_id = f.req("budget_id")?;
    let scope = f.req("scope")?;
    let limit_tokens = f.opt("limit_tokens")?;
    let limit_cost_micros = f.opt("limit_cost_micros")?;
    if limit_tokens.is_none() && limit_cost_micros.is_none() {
        return Err(DecodeError::schema(
            "limit_tokens",
            "at least one of `limit_tokens`, `limit_cost_micros` must be set",
        ));
    }
    let window = f.req("window")?;
    let raw: Vec<u64> = f.req("warn_thresholds_pct")?;
    let mut warn_thresholds_pct = Vec::with_capacity(raw.len());
    for (i, pct) in raw.into_iter().enumerate() {
        let path = format!("warn_thresholds_pct[{i}]");
        let pct = match u8::try_from(pct) {
            Ok(p) if (1..=100).contains(&p) => p,
            _ => {
                return Err(DecodeError::schema(
                    path,
                    format!("expected a percentage from 1 to 100, found {pct}"),
                ))
            }
        };
        if let Some(prev) = warn_thresholds_pct.last() {
            if pct <= *prev {
                return Err(DecodeError::schema(
                    path,
                    format!("thresholds must be strictly ascending, but {pct} follows {prev}"),
                ));
            }
        }
        warn_thresholds_pct.push(pct);
    }
    Ok(BudgetConfigured {
        budget_id,
        scope,
        limit_tokens,
        limit_cost_micros,
        window,
        warn_thresholds_pct,
        kill_on_exceed: f.opt("kill_on_exceed")?.unwrap_or(false),
    })
}

fn kill_switch(f: &mut Fields) -> Result<KillSwitchChange, DecodeError> {
    Ok(KillSwitchChange {
        scope: f.req("scope")?,
        target: f.req("target")?,
        reason: f.text("reason", 0, MAX_REASON_CHARS)?,
        actor: f.req("actor")?,
    })
}

/// Checks a standard-base64 Ed25519 public key (32 bytes).
fn public_key(f: &mut Fields, name: &str) -> Result<String, DecodeError> {
    let s: String = f.req(name)?;
    match base64::engine::general_purpose::STANDARD.decode(&s) {
        Ok(bytes) if bytes.len() == 32 => Ok(s),
        Ok(bytes) => Err(DecodeError::schema(
            f.path(name).to_string(),
            format!(
                "expected a 32-byte Ed25519 public key, found {} bytes",
                bytes.len()
            ),
        )),
        Err(e) => Err(DecodeError::schema(
            f.path(name).to_string(),
            format!("expected standard base64 (with padding): {e}"),
        )),
    }
}

fn key_registered(f: &mut Fields) -> Result<KeyRegistered, DecodeError> {
    let key_id = f.req("key_id")?;
    let public_key = public_key(f, "public_key")?;
    let valid_from_ns: Option<u64> = f.opt("valid_from_ns")?;
    let valid_until_ns: Option<u64> = f.opt("valid_until_ns")?;
    if let (Some(from), Some(until)) = (valid_from_ns, valid_until_ns) {
        if until < from {
            return Err(DecodeError::schema(
                "valid_until_ns",
                format!("must not be before valid_from_ns ({until} < {from})"),
            ));
        }
    }
    Ok(KeyRegistered {
        key_id,
        public_key,
        valid_from_ns,
        valid_until_ns,
    })
}

fn key_rotated(f: &mut Fields) -> Result<KeyRotated, DecodeError> {
    let key_id: KeyId = f.req("key_id")?;
    let new_key_id: KeyId = f.req("new_key_id")?;
    if new_key_id == key_id {
        return Err(DecodeError::schema("new_key_id", "must differ from key_id"));
    }
    if new_key_id.tenant_str() != key_id.tenant_str() {
        return Err(DecodeError::schema(
            "new_key_id",
            format!(
                "must belong to the same tenant as key_id ({} vs {})",
                new_key_id.tenant_str(),
                key_id.tenant_str()
            ),
        ));
    }
    Ok(KeyRotated {
        key_id,
        new_key_id,
        new_public_key: public_key(f, "new_public_key")?,
        retire_old_at_ns: f.opt("retire_old_at_ns")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_object_allows_more_names_than_fields_can_place() {
        for &kind in EventType::ALL {
            assert!(allowed_fields(kind).len() <= MAX_ALLOWED, "{kind:?}");
        }
    }
}
