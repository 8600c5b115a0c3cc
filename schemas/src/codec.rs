//! The canonical storage encoding of an [`Entry`]: the Merkle leaf bytes. **Frozen.**
//!
//! This module is the only place that turns entries into stored bytes. The leaf hash of
//! RFC 6962 is computed over exactly these bytes, so changing a single byte of the
//! layout breaks every existing log; a new layout needs a new magic.
//!
//! # Layout (`GLE1`)
//!
//! The encoding is bincode 2 with `standard().with_little_endian().with_fixed_int_encoding()`
//! after a 4-byte magic. Written out, so it can be parsed without bincode:
//!
//! | # | field | bytes |
//! |---|---|---|
//! | 0 | magic | the 4 ASCII bytes `GLE1` (`47 4c 45 31`) |
//! | 1 | `seq` | u64 LE |
//! | 2 | `stream_seq` | u64 LE |
//! | 3 | `time_ns` | u64 LE |
//! | 4 | `subject` | *string* |
//! | 5 | `key_id` | *option* of *string* |
//! | 6 | `signature` | *option* of *bytes* |
//! | 7 | `body_sha256` | 32 raw bytes, no length prefix |
//! | 8 | `body_len` | u64 LE |
//! | 9 | `body` | *option* of *bytes* |
//! | 10 | `verdict` | u32 LE tag, then the variant's fields: |
//! |    | tag 0 `Accepted` | `event_id` *string*, `event_type` *string*, `tenant` *string* |
//! |    | tag 1 `Rejected` | `reason` u32 LE (see below), `detail` *string*, `event_id` *option* of *string*, `tenant` *option* of *string* |
//!
//! where
//! - *string*: u64 LE byte length, then that many bytes of UTF-8 (no terminator);
//! - *bytes*: u64 LE length, then that many raw bytes;
//! - *option* of X: one byte `00` (absent, nothing follows) or `01` followed by X; any
//!   other value is invalid.
//!
//! `reason` is [`RejectReason::code`](crate::RejectReason::code): 0 `oversized`,
//! 1 `not_utf8`, 2 `malformed_json`, 3 `unsupported_version`, 4 `unknown_type`,
//! 5 `schema_violation`, 6 `missing_header`, 7 `bad_header`, 8 `unknown_key`,
//! 9 `revoked_key`, 10 `bad_signature`, 11 `tenant_mismatch`, 12 `unauthorized_key`,
//! 13 `duplicate`, 14 `invariant_violation`, 15 `budget_exceeded` (added after v1's
//! first release: older readers refuse entries carrying it). Numbers are never reused
//! or reordered.
//!
//! # Decoding rules
//!
//! [`decode_entry`] accepts exactly the bytes [`encode_entry`] produces and nothing else:
//! wrong magic, truncation, trailing bytes, invalid UTF-8, option bytes other than 0/1,
//! unknown verdict tags or reason codes, inputs over [`MAX_ENTRY_BYTES`], and a body
//! whose length or SHA-256 disagrees with `body_len`/`body_sha256` are all errors. Every
//! field has a fixed-width or length-prefixed form, so the encoding is canonical:
//! `encode(decode(b)) == b` whenever decoding succeeds, and a changed byte can never
//! decode to the same entry.

use crate::entry::{body_digest, Entry, Verdict};
use crate::ids::Seq;
use crate::verdict::RejectReason;

/// The 4 magic bytes that open every encoded entry (format version 1).
pub const ENTRY_MAGIC: [u8; 4] = *b"GLE1";

/// The largest encoded entry [`decode_entry`] accepts: 16 MiB. Bodies are capped well
/// below this ([`crate::decode::MAX_BODY_BYTES_CAP`]).
pub const MAX_ENTRY_BYTES: usize = 16 * 1024 * 1024;

/// Why stored bytes are not a valid entry.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// The bytes do not start with [`ENTRY_MAGIC`].
    #[error("not an entry: expected magic \"GLE1\"")]
    BadMagic,
    /// The input is larger than [`MAX_ENTRY_BYTES`].
    #[error("encoded entry is {len} bytes, more than the limit of {max}")]
    TooLarge {
        /// Input length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The input ends in the middle of a field.
    #[error("encoded entry is truncated")]
    Truncated,
    /// A string field is not valid UTF-8.
    #[error("encoded entry has a string that is not valid UTF-8")]
    InvalidUtf8,
    /// An option byte, verdict tag or reason code has an unknown value.
    #[error("encoded entry has unknown tag {found} for {type_name}")]
    UnknownTag {
        /// What was being decoded.
        type_name: &'static str,
        /// The tag found.
        found: u32,
    },
    /// Bytes follow the last field.
    #[error("encoded entry has {extra} trailing bytes")]
    TrailingBytes {
        /// How many.
        extra: usize,
    },
    /// The stored body does not match `body_len` or `body_sha256`.
    #[error("stored body does not match its recorded length and SHA-256")]
    BodyMismatch,
    /// Any other structural error reported by the decoder.
    #[error("malformed encoded entry: {0}")]
    Malformed(String),
    /// The entry bears on the state (accepted, or a refusal that engaged a kill
    /// switch) but keeps no body, or one that no longer decodes as an event: a
    /// damaged store, or one written by a build whose schema this one does not
    /// read. Folds stop here instead of skipping an event the state was built from.
    #[error("it bears on the state, but its kept body is not an event: {0}")]
    BodyInvalid(String),
}

fn config() -> impl bincode::config::Config {
    bincode::config::standard()
        .with_little_endian()
        .with_fixed_int_encoding()
}

fn decode_config() -> impl bincode::config::Config {
    bincode::config::standard()
        .with_little_endian()
        .with_fixed_int_encoding()
        .with_limit::<MAX_ENTRY_BYTES>()
}

/// Encodes `entry` to its canonical leaf bytes.
pub fn encode_entry(entry: &Entry) -> Vec<u8> {
    let mut out =
        Vec::with_capacity(128 + entry.subject.len() + entry.body.as_ref().map_or(0, |b| b.len()));
    out.extend_from_slice(&ENTRY_MAGIC);
    // Cannot fail: writing to a Vec is infallible and no field has a fallible encoding.
    bincode::encode_into_std_write(entry, &mut out, config())
        .expect("encoding an Entry into a Vec cannot fail");
    out
}

/// Reads only the header of canonical leaf bytes: checks the magic and returns the
/// entry's `seq` (field 1), without decoding the rest. `verify` uses it to find
/// moved entries at scan speed; the leaf hash already covers every other byte.
pub fn entry_seq(bytes: &[u8]) -> Result<Seq, CodecError> {
    let rest = bytes
        .strip_prefix(&ENTRY_MAGIC)
        .ok_or(CodecError::BadMagic)?;
    let seq: [u8; 8] = rest
        .get(..8)
        .and_then(|b| b.try_into().ok())
        .ok_or(CodecError::Truncated)?;
    Ok(Seq(u64::from_le_bytes(seq)))
}

/// Decodes canonical leaf bytes. See the module docs for what is rejected.
pub fn decode_entry(bytes: &[u8]) -> Result<Entry, CodecError> {
    // One decoder: the owned entry is the borrowed one, copied.
    decode_entry_ref(bytes).map(|e| e.to_entry())
}

/// An entry decoded without copying: its strings and bytes borrow the leaf bytes.
/// Same fields, in the same order, as [`Entry`]; [`decode_entry_ref`] reads them.
#[derive(Clone, Debug, PartialEq, Eq, bincode::BorrowDecode)]
pub struct EntryRef<'a> {
    /// Leaf index.
    pub seq: Seq,
    /// JetStream stream sequence.
    pub stream_seq: u64,
    /// Event time, unix ns.
    pub time_ns: u64,
    /// The subject as received.
    pub subject: &'a str,
    /// The `Gov-Key` header as received.
    pub key_id: Option<&'a str>,
    /// The decoded `Gov-Sig` bytes.
    pub signature: Option<&'a [u8]>,
    /// SHA-256 of the raw body.
    pub body_sha256: [u8; 32],
    /// Length of the raw body.
    pub body_len: u64,
    /// The body, for accepted entries (and refusals that engaged a kill switch).
    pub body: Option<&'a [u8]>,
    /// The verdict.
    pub verdict: VerdictRef<'a>,
}

/// [`Verdict`], borrowing its strings.
#[derive(Clone, Debug, PartialEq, Eq, bincode::BorrowDecode)]
pub enum VerdictRef<'a> {
    /// Tag 0.
    Accepted {
        /// The body's `id`.
        event_id: &'a str,
        /// The body's `type`.
        event_type: &'a str,
        /// The body's `tenant`.
        tenant: &'a str,
    },
    /// Tag 1.
    Rejected {
        /// The reason.
        reason: RejectReason,
        /// The explanation.
        detail: &'a str,
        /// The body's `id`, if it could be read.
        event_id: Option<&'a str>,
        /// The tenant, if it could be read.
        tenant: Option<&'a str>,
    },
}

impl EntryRef<'_> {
    /// The owned [`Entry`] with the same fields.
    pub fn to_entry(&self) -> Entry {
        let s = |x: &str| x.to_string();
        Entry {
            seq: self.seq,
            stream_seq: self.stream_seq,
            time_ns: self.time_ns,
            subject: s(self.subject),
            key_id: self.key_id.map(s),
            signature: self.signature.map(<[u8]>::to_vec),
            body_sha256: self.body_sha256,
            body_len: self.body_len,
            body: self.body.map(<[u8]>::to_vec),
            verdict: match &self.verdict {
                VerdictRef::Accepted {
                    event_id,
                    event_type,
                    tenant,
                } => Verdict::Accepted {
                    event_id: s(event_id),
                    event_type: s(event_type),
                    tenant: s(tenant),
                },
                VerdictRef::Rejected {
                    reason,
                    detail,
                    event_id,
                    tenant,
                } => Verdict::Rejected {
                    reason: *reason,
                    detail: s(detail),
                    event_id: event_id.map(s),
                    tenant: tenant.map(s),
                },
            },
        }
    }
}

/// [`decode_entry`] without copying any string or byte field: the same checks, the
/// same errors, for readers that look at an entry and let it go (folds, scans).
pub fn decode_entry_ref(bytes: &[u8]) -> Result<EntryRef<'_>, CodecError> {
    let rest = after_magic(bytes)?;
    let (entry, read): (EntryRef<'_>, usize) =
        bincode::borrow_decode_from_slice(rest, decode_config()).map_err(map_err)?;
    if read != rest.len() {
        return Err(CodecError::TrailingBytes {
            extra: rest.len().saturating_sub(read),
        });
    }
    check_body(entry.body, entry.body_len, &entry.body_sha256, true)?;
    Ok(entry)
}

/// What a fold reads of a stored entry ([`decode_fold_leaf`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FoldLeaf<'a> {
    /// Event time, unix ns.
    pub time_ns: u64,
    /// The verdict's reason: `None` for an accepted entry.
    pub rejected: Option<RejectReason>,
    /// The body, for accepted entries (and refusals that engaged a kill switch).
    pub body: Option<&'a [u8]>,
}

/// [`decode_entry_ref`] for a fold, which reads only an entry's time, verdict and
/// body: the same checks and the same errors on any input (held to it by a
/// property test), but read by hand along the layout ([`FoldReader`]) instead of
/// through bincode's decoder, and the strings it does not read (subject, key, the
/// verdict's ids and detail) are only checked to be UTF-8, a word at a time while
/// they are ASCII, instead of each being made a `&str`.
pub fn decode_fold_leaf(bytes: &[u8]) -> Result<FoldLeaf<'_>, CodecError> {
    fold_leaf(bytes, true)
}

/// [`decode_fold_leaf`] without the SHA-256 of a kept body (its length is still
/// checked): for a fold whose caller checks a signed whole-state digest after
/// the entry, which a changed body bearing on the state fails, and then names
/// the entry by reading it again with every check
/// (`govledger_replay::verified`). Gives what [`decode_fold_leaf`] gives on any
/// input, except that a body whose hash alone is wrong reads as if it were right.
pub fn decode_fold_leaf_unhashed(bytes: &[u8]) -> Result<FoldLeaf<'_>, CodecError> {
    fold_leaf(bytes, false)
}

fn fold_leaf(bytes: &[u8], hashed: bool) -> Result<FoldLeaf<'_>, CodecError> {
    let mut r = FoldReader(after_magic(bytes)?);
    // `EntryRef`'s fields, in order.
    r.take(8 + 8)?; // seq, stream_seq
    let time_ns = r.u64()?;
    r.utf8()?; // subject
    if r.option()? {
        r.utf8()?; // key_id
    }
    if r.option()? {
        r.bytes()?; // signature
    }
    let body_sha256: &[u8; 32] = r.array()?;
    let body_len = r.u64()?;
    let body = if r.option()? { Some(r.bytes()?) } else { None };
    let rejected = match r.u32()? {
        0 => {
            r.utf8()?; // event_id
            r.utf8()?; // event_type
            r.utf8()?; // tenant
            None
        }
        1 => {
            let code = r.u32()?;
            let reason = RejectReason::from_code(code).ok_or(CodecError::UnknownTag {
                type_name: "RejectReason",
                found: code,
            })?;
            r.utf8()?; // detail
            for _ in 0..2 {
                if r.option()? {
                    r.utf8()?; // event_id, tenant
                }
            }
            Some(reason)
        }
        found => {
            return Err(CodecError::UnknownTag {
                type_name: "Verdict",
                found,
            })
        }
    };
    if !r.0.is_empty() {
        return Err(CodecError::TrailingBytes { extra: r.0.len() });
    }
    check_body(body, body_len, body_sha256, hashed)?;
    Ok(FoldLeaf {
        time_ns,
        rejected,
        body,
    })
}

/// The entry layout read by hand, as bincode's configuration ([`decode_config`])
/// writes it: integers fixed-size little-endian (enum tags as `u32`), byte strings
/// a `u64` length then the bytes, options a `0` or `1` byte then the value. Every
/// error is the one bincode's decoder gives for the same bytes, as [`map_err`]
/// names it: too few bytes (or a length longer than what is left) is
/// [`CodecError::Truncated`], a length beyond `usize` bincode's
/// `OutsideUsizeRange`.
struct FoldReader<'a>(&'a [u8]);

impl<'a> FoldReader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], CodecError> {
        if n > self.0.len() {
            return Err(CodecError::Truncated);
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<&'a [u8; N], CodecError> {
        self.take(N)?.try_into().map_err(|_| CodecError::Truncated)
    }

    fn u64(&mut self) -> Result<u64, CodecError> {
        self.array().map(|b| u64::from_le_bytes(*b))
    }

    fn u32(&mut self) -> Result<u32, CodecError> {
        self.array().map(|b| u32::from_le_bytes(*b))
    }

    /// Whether an option holds a value.
    fn option(&mut self) -> Result<bool, CodecError> {
        match self.take(1)?[0] {
            0 => Ok(false),
            1 => Ok(true),
            found => Err(CodecError::UnknownTag {
                type_name: "option",
                found: u32::from(found),
            }),
        }
    }

    fn bytes(&mut self) -> Result<&'a [u8], CodecError> {
        let len = self.u64()?;
        // A length beyond `usize` (32-bit targets): bincode's own error for it.
        let len = usize::try_from(len)
            .map_err(|_| map_err(bincode::error::DecodeError::OutsideUsizeRange(len)))?;
        self.take(len)
    }

    /// A string, checked to be UTF-8 and let go.
    fn utf8(&mut self) -> Result<(), CodecError> {
        let b = self.bytes()?;
        if b.is_ascii() || std::str::from_utf8(b).is_ok() {
            Ok(())
        } else {
            Err(CodecError::InvalidUtf8)
        }
    }
}

/// What follows the magic of stored leaf bytes no larger than an entry may be.
fn after_magic(bytes: &[u8]) -> Result<&[u8], CodecError> {
    if bytes.len() > MAX_ENTRY_BYTES {
        return Err(CodecError::TooLarge {
            len: bytes.len(),
            max: MAX_ENTRY_BYTES,
        });
    }
    bytes.strip_prefix(&ENTRY_MAGIC).ok_or(CodecError::BadMagic)
}

/// A kept body must have the length and (when `hashed`) the SHA-256 its entry
/// gives.
fn check_body(
    body: Option<&[u8]>,
    len: u64,
    sha256: &[u8; 32],
    hashed: bool,
) -> Result<(), CodecError> {
    match body {
        Some(b) if b.len() as u64 != len || (hashed && body_digest(b) != *sha256) => {
            Err(CodecError::BodyMismatch)
        }
        _ => Ok(()),
    }
}

fn map_err(e: bincode::error::DecodeError) -> CodecError {
    use bincode::error::DecodeError as E;
    match e {
        E::UnexpectedEnd { .. } => CodecError::Truncated,
        E::Utf8 { .. } => CodecError::InvalidUtf8,
        E::UnexpectedVariant {
            type_name, found, ..
        } => CodecError::UnknownTag {
            // Named by what is stored, not by the Rust type that read it (owned
            // and borrowed decoders report the same).
            type_name: match type_name {
                "VerdictRef" => "Verdict",
                t if t.starts_with("core::option::Option") => "option",
                t => t,
            },
            found,
        },
        E::InvalidBooleanValue(b) => CodecError::UnknownTag {
            type_name: "bool",
            found: u32::from(b),
        },
        // A length prefix claims more than MAX_ENTRY_BYTES, which an input no larger
        // than MAX_ENTRY_BYTES cannot hold.
        E::LimitExceeded => CodecError::Truncated,
        other => CodecError::Malformed(other.to_string()),
    }
}
