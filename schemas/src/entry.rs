//! The ledger entry: one per consumed message, accepted or rejected.
//!
//! An entry records only what came with the message (stream sequence, JetStream
//! timestamp, subject, headers, body) and the ledger's verdict, never the wall clock, so
//! replicas consuming the same stream build identical entries. Its stored bytes are
//! produced by [`crate::codec`] alone.
//!
//! Accepted entries keep the exact body bytes so anyone can re-verify the signature;
//! rejected entries keep only the body's SHA-256 and length, so a flood of junk cannot
//! bloat the log, yet a producer can still prove which bytes were rejected.

use sha2::{Digest, Sha256};

use crate::event::Envelope;
use crate::ids::Seq;
use crate::verdict::RejectReason;

/// What the ledger decided about a message.
#[derive(Clone, Debug, PartialEq, Eq, Hash, bincode::Encode, bincode::Decode)]
pub enum Verdict {
    /// Stored tag 0: the event was accepted and will be folded into state.
    Accepted {
        /// The body's `id`.
        event_id: String,
        /// The body's `type`, e.g. `action.proposed`.
        event_type: String,
        /// The body's `tenant`.
        tenant: String,
    },
    /// Stored tag 1: the message was rejected.
    Rejected {
        /// The machine-readable reason.
        reason: RejectReason,
        /// A human-readable explanation.
        detail: String,
        /// The body's `id`, if it could be read.
        event_id: Option<String>,
        /// The body's `tenant` (or the subject's), if it could be read.
        tenant: Option<String>,
    },
}

/// One ledger entry. Field order is the storage order; see [`crate::codec`].
#[derive(Clone, Debug, PartialEq, Eq, Hash, bincode::Encode, bincode::Decode)]
pub struct Entry {
    /// Leaf index in the ledger, 0-based.
    pub seq: Seq,
    /// JetStream stream sequence of the message (0 when appended from a file).
    pub stream_seq: u64,
    /// JetStream timestamp (unix ns) or the time given in the input line: the event time.
    pub time_ns: u64,
    /// The subject as received, e.g. `gov.acme.action` (may be invalid).
    pub subject: String,
    /// The `Gov-Key` header as received (may be invalid).
    pub key_id: Option<String>,
    /// The decoded `Gov-Sig` bytes (`None` if absent or not base64).
    pub signature: Option<Vec<u8>>,
    /// SHA-256 of the raw body.
    pub body_sha256: [u8; 32],
    /// Length of the raw body in bytes.
    pub body_len: u64,
    /// The exact body bytes: `Some` for accepted entries, `None` for rejected ones.
    pub body: Option<Vec<u8>>,
    /// The verdict.
    pub verdict: Verdict,
}

/// Everything about a message except its body and verdict: the part of an [`Entry`]
/// that ingest knows before deciding.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MessageMeta {
    /// Leaf index the entry will get.
    pub seq: Seq,
    /// JetStream stream sequence (0 when appended from a file).
    pub stream_seq: u64,
    /// JetStream timestamp or the input line's time, unix ns.
    pub time_ns: u64,
    /// The subject as received.
    pub subject: String,
    /// The `Gov-Key` header as received.
    pub key_id: Option<String>,
    /// The decoded `Gov-Sig` bytes.
    pub signature: Option<Vec<u8>>,
}

/// SHA-256 of `body`.
pub fn body_digest(body: &[u8]) -> [u8; 32] {
    Sha256::digest(body).into()
}

impl Entry {
    /// An accepted entry keeping `body`, labelled from its decoded `envelope`.
    pub fn accepted(meta: MessageMeta, body: Vec<u8>, envelope: &Envelope) -> Entry {
        Entry {
            seq: meta.seq,
            stream_seq: meta.stream_seq,
            time_ns: meta.time_ns,
            subject: meta.subject,
            key_id: meta.key_id,
            signature: meta.signature,
            body_sha256: body_digest(&body),
            body_len: body.len() as u64,
            body: Some(body),
            verdict: Verdict::Accepted {
                event_id: envelope.id.to_string(),
                event_type: envelope.kind().as_str().to_owned(),
                tenant: envelope.tenant.to_string(),
            },
        }
    }

    /// A rejected entry keeping only the digest and length of `body`.
    pub fn rejected(
        meta: MessageMeta,
        body: &[u8],
        reason: RejectReason,
        detail: impl Into<String>,
        event_id: Option<String>,
        tenant: Option<String>,
    ) -> Entry {
        Entry {
            seq: meta.seq,
            stream_seq: meta.stream_seq,
            time_ns: meta.time_ns,
            subject: meta.subject,
            key_id: meta.key_id,
            signature: meta.signature,
            body_sha256: body_digest(body),
            body_len: body.len() as u64,
            body: None,
            verdict: Verdict::Rejected {
                reason,
                detail: detail.into(),
                event_id,
                tenant,
            },
        }
    }

    /// Whether the entry was accepted.
    pub fn is_accepted(&self) -> bool {
        matches!(self.verdict, Verdict::Accepted { .. })
    }

    /// The reject reason, if rejected.
    pub fn reject_reason(&self) -> Option<RejectReason> {
        match &self.verdict {
            Verdict::Accepted { .. } => None,
            Verdict::Rejected { reason, .. } => Some(*reason),
        }
    }

    /// The event id, if known.
    pub fn event_id(&self) -> Option<&str> {
        match &self.verdict {
            Verdict::Accepted { event_id, .. } => Some(event_id),
            Verdict::Rejected { event_id, .. } => event_id.as_deref(),
        }
    }

    /// The tenant, if known.
    pub fn tenant(&self) -> Option<&str> {
        match &self.verdict {
            Verdict::Accepted { tenant, .. } => Some(tenant),
            Verdict::Rejected { tenant, .. } => tenant.as_deref(),
        }
    }

    /// The event type, for accepted entries.
    pub fn event_type(&self) -> Option<&str> {
        match &self.verdict {
            Verdict::Accepted { event_type, .. } => Some(event_type),
            Verdict::Rejected { .. } => None,
        }
    }

    /// Whether a stored body (if any) has length `body_len` and digest `body_sha256`.
    /// Always true for entries without a body. [`crate::decode_entry`] enforces this.
    pub fn body_is_consistent(&self) -> bool {
        match &self.body {
            None => true,
            Some(b) => b.len() as u64 == self.body_len && body_digest(b) == self.body_sha256,
        }
    }
}
