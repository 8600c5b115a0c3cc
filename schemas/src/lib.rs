//! govledger-schemas: what a governance event *is*, and how an entry is stored.
//!
//! This crate owns four things and nothing else:
//!
//! - the v1 **event types** and their ids ([`event`], [`ids`]): sessions, proposals,
//!   policy decisions, approvals, executions, budgets, kill switches, keys, telemetry;
//! - the **wire envelope** and its **strict validation** ([`decode_body`]): a body is
//!   accepted only if every field is known, present, of the right JSON type and in
//!   range; every other body gets a precise [`DecodeError`] that maps to a stable,
//!   machine-readable [`RejectReason`];
//! - the **ledger entry** ([`Entry`], [`Verdict`]) that every consumed message becomes;
//! - the **canonical storage encoding** of entries ([`encode_entry`], [`decode_entry`]),
//!   the frozen leaf bytes of the Merkle tree, documented byte by byte in [`codec`].
//!
//! It does no I/O, reads no clock and uses no randomness: everything here is a pure
//! function of its input, so it can be used from any replica and any test.
//!
//! Callers: `govledger-ingest` decodes bodies and builds entries; `govledger-ledger`
//! stores and hashes the encoded entries; `govledger-projections` folds decoded events
//! into state; the `govledger` binary uses it to validate files and print entries.
//! JSON Schema (draft 2020-12) files for producers live in `schemas/json/`.

#![forbid(unsafe_code)]

pub mod codec;
pub mod decode;
pub mod entry;
pub mod event;
pub mod ids;
pub mod verdict;

pub use codec::{
    decode_entry, decode_entry_ref, decode_fold_leaf, decode_fold_leaf_unhashed, encode_entry,
    entry_seq, CodecError, EntryRef, FoldLeaf, VerdictRef, ENTRY_MAGIC, MAX_ENTRY_BYTES,
};
pub use decode::{decode_body, decode_body_into, peek_ids, DecodeError, DecodeLimits};
pub use entry::{body_digest, Entry, MessageMeta, Verdict};
pub use event::{
    ActionExecuted, ActionProposed, ActorChain, ApprovalDenied, ApprovalGranted, ApprovalRequested,
    ApprovalScope, BudgetConfigured, BudgetIncremented, BudgetScope, BudgetWindow, Decision,
    Envelope, Event, EventType, KeyRegistered, KeyRevoked, KeyRotated, KillScope, KillSwitchChange,
    Outcome, PolicyDecided, RiskTier, SessionChange, Telemetry, UnknownEventType, WIRE_VERSION,
};
pub use ids::{EventId, IdError, Ident, KeyId, Seq, TenantId};
pub use verdict::{RejectReason, UnknownRejectReason};
