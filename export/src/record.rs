//! [`Record`]: what one exported ledger entry is, independent of the output format.
//!
//! A record is built from a [`govledger_schemas::Entry`], the entry's RFC 6962 leaf
//! hash (which the caller reads from the ledger: this crate never hashes or verifies)
//! and the ledger's checkpoint origin. The body of an accepted entry is parsed as JSON
//! once, here; a body that is not JSON (it was validated at ingest, so this means a
//! damaged or foreign log) is dropped and only the fields known from the verdict are
//! exported, with [`Record::body_unparsed`] set. Nothing here panics on any input.
//!
//! Every format carries [`Record::seq`], [`Record::leaf_hash`] and [`Record::tenant`]:
//! with them a SIEM can ask the ledger for an inclusion proof of that exact entry
//! against a signed checkpoint of `origin`.

use govledger_schemas::{Entry, EventType, RejectReason, Verdict};
use serde_json::Value;

/// The ledger's verdict on the entry, as exported.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RecordVerdict {
    /// The event was accepted.
    Accepted,
    /// The message was rejected.
    Rejected {
        /// The stable reason code.
        reason: RejectReason,
        /// The ledger's sentence explaining why (redacted like every string).
        detail: String,
    },
}

/// One ledger entry prepared for export. Build it with [`Record::from_entry`], pass it
/// through [`crate::Redactor::redact_record`], then hand it to a format.
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    /// The ledger origin (checkpoint origin line), e.g. `govledger.example/log`.
    pub origin: String,
    /// Leaf index in the ledger.
    pub seq: u64,
    /// RFC 6962 leaf hash of the entry's canonical bytes.
    pub leaf_hash: [u8; 32],
    /// JetStream stream sequence (0 when appended from a file).
    pub stream_seq: u64,
    /// Event time, unix nanoseconds.
    pub time_ns: u64,
    /// The subject as received.
    pub subject: String,
    /// The `Gov-Key` header as received.
    pub key_id: Option<String>,
    /// SHA-256 of the raw body (of the bytes the producer signed).
    pub body_sha256: [u8; 32],
    /// Length of the raw body in bytes.
    pub body_len: u64,
    /// Accepted or rejected (with reason).
    pub verdict: RecordVerdict,
    /// The event id, if known.
    pub event_id: Option<String>,
    /// The event type: from the verdict when accepted; from the kept body's `type` for
    /// a rejected entry that kept its body (a `budget_exceeded` refusal that engaged a
    /// kill switch); otherwise `None`.
    pub event_type: Option<String>,
    /// The tenant, if known.
    pub tenant: Option<String>,
    /// The parsed body, when the entry kept one and it is JSON.
    pub body: Option<Value>,
    /// The entry kept a body but it is not valid JSON (or not UTF-8), so it is not
    /// exported.
    pub body_unparsed: bool,
    /// The redaction kinds applied to this record, sorted and unique (empty before
    /// redaction or when nothing matched).
    pub redactions: Vec<String>,
}

impl Record {
    /// Builds the export record of `entry`, whose RFC 6962 leaf hash is `leaf_hash`, in
    /// the ledger whose checkpoint origin is `origin`.
    pub fn from_entry(entry: &Entry, leaf_hash: [u8; 32], origin: &str) -> Record {
        Record::from_owned_entry(entry.clone(), leaf_hash, origin)
    }

    /// [`Record::from_entry`], taking the entry's strings instead of copying them.
    pub fn from_owned_entry(entry: Entry, leaf_hash: [u8; 32], origin: &str) -> Record {
        let (body, body_unparsed) = match &entry.body {
            None => (None, false),
            Some(bytes) => match serde_json::from_slice::<Value>(bytes) {
                Ok(v) => (Some(v), false),
                Err(_) => (None, true),
            },
        };
        let (verdict, event_id, event_type, tenant) = match entry.verdict {
            Verdict::Accepted {
                event_id,
                event_type,
                tenant,
            } => (
                RecordVerdict::Accepted,
                Some(event_id),
                Some(event_type),
                Some(tenant),
            ),
            Verdict::Rejected {
                reason,
                detail,
                event_id,
                tenant,
            } => {
                let body_type = body
                    .as_ref()
                    .and_then(|b| b.get("type"))
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                (
                    RecordVerdict::Rejected { reason, detail },
                    event_id,
                    body_type,
                    tenant,
                )
            }
        };
        Record {
            origin: origin.to_owned(),
            seq: entry.seq.0,
            leaf_hash,
            stream_seq: entry.stream_seq,
            time_ns: entry.time_ns,
            subject: entry.subject,
            key_id: entry.key_id,
            body_sha256: entry.body_sha256,
            body_len: entry.body_len,
            verdict,
            event_id,
            event_type,
            tenant,
            body,
            body_unparsed,
            redactions: Vec::new(),
        }
    }

    /// The leaf hash as 64 lowercase hex digits.
    pub fn leaf_hash_hex(&self) -> String {
        hex(&self.leaf_hash)
    }

    /// The body digest as 64 lowercase hex digits.
    pub fn body_sha256_hex(&self) -> String {
        hex(&self.body_sha256)
    }

    /// Whether the entry was accepted.
    pub fn is_accepted(&self) -> bool {
        matches!(self.verdict, RecordVerdict::Accepted)
    }

    /// The reject reason, if rejected.
    pub fn reject_reason(&self) -> Option<RejectReason> {
        match &self.verdict {
            RecordVerdict::Accepted => None,
            RecordVerdict::Rejected { reason, .. } => Some(*reason),
        }
    }

    /// The reject detail, if rejected.
    pub fn reject_detail(&self) -> Option<&str> {
        match &self.verdict {
            RecordVerdict::Accepted => None,
            RecordVerdict::Rejected { detail, .. } => Some(detail),
        }
    }

    /// The typed event type of an accepted entry (`None` when rejected, or when the
    /// stored type string is not one this version knows).
    pub fn accepted_type(&self) -> Option<EventType> {
        if !self.is_accepted() {
            return None;
        }
        self.event_type.as_deref()?.parse().ok()
    }

    /// What the record is, for the mapping tables of every format.
    pub fn kind(&self) -> RecordKind {
        match &self.verdict {
            RecordVerdict::Rejected { reason, .. } => RecordKind::Rejected(*reason),
            RecordVerdict::Accepted => match self.accepted_type() {
                Some(t) => RecordKind::Accepted(t),
                None => RecordKind::AcceptedUnknown,
            },
        }
    }

    /// The tenant, or `""` when unknown (for the text formats, which need a value).
    pub fn tenant_or_empty(&self) -> &str {
        self.tenant.as_deref().unwrap_or("")
    }

    /// A string field of the body, if present.
    pub fn body_str(&self, field: &str) -> Option<&str> {
        self.body.as_ref()?.get(field)?.as_str()
    }

    /// A string field of the body's `actor` object (`user`, `agent`, `service`).
    pub fn actor_str(&self, field: &str) -> Option<&str> {
        self.body.as_ref()?.get("actor")?.get(field)?.as_str()
    }

    /// The session the event belongs to, if its body names one.
    pub fn session(&self) -> Option<&str> {
        self.body_str("session")
    }

    /// The event time as RFC 3339 UTC with nanoseconds.
    pub fn time_rfc3339(&self) -> String {
        rfc3339(self.time_ns, 9)
    }

    /// The event time in whole milliseconds since the epoch (OCSF `timestamp_t`).
    pub fn time_ms(&self) -> u64 {
        self.time_ns / 1_000_000
    }
}

/// What a record is: the key of every mapping table (see docs/EXPORT.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordKind {
    /// An accepted event of a known type.
    Accepted(EventType),
    /// An accepted event whose type string this version does not know (only possible
    /// with a log written by a newer version).
    AcceptedUnknown,
    /// A rejected message.
    Rejected(RejectReason),
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    crate::json::write_hex(&mut s, bytes);
    s
}

/// Formats unix nanoseconds as RFC 3339 UTC (`YYYY-MM-DDTHH:MM:SS[.f]Z`) with
/// `digits` (0..=9) fractional digits, truncating (never rounding, so a time never
/// moves into the next second).
pub fn rfc3339(time_ns: u64, digits: u32) -> String {
    let mut s = String::with_capacity(30);
    write_rfc3339(&mut s, time_ns, digits);
    s
}

/// Appends [`rfc3339`]`(time_ns, digits)` to `out`.
pub fn write_rfc3339(out: &mut String, time_ns: u64, digits: u32) {
    let secs = time_ns / 1_000_000_000;
    let nanos = time_ns % 1_000_000_000;
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    let mut buf = [0u8; 30];
    let mut put = |at: usize, width: usize, mut n: u64| {
        for k in (at..at + width).rev() {
            buf[k] = b'0' + (n % 10) as u8;
            n /= 10;
        }
    };
    // u64 nanoseconds end in year 2554: the year always has four digits.
    put(0, 4, y);
    put(5, 2, m);
    put(8, 2, d);
    put(11, 2, rem / 3600);
    put(14, 2, (rem / 60) % 60);
    put(17, 2, rem % 60);
    put(20, 9, nanos);
    buf[4] = b'-';
    buf[7] = b'-';
    buf[10] = b'T';
    buf[13] = b':';
    buf[16] = b':';
    buf[19] = b'.';
    let digits = digits.min(9) as usize;
    // Truncated, never rounded: the first `digits` of the nine.
    let end = if digits > 0 { 20 + digits } else { 19 };
    buf[end] = b'Z';
    crate::json::push_ascii(out, &buf[..=end]);
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day); Howard
/// Hinnant's `civil_from_days`, for non-negative day counts. u64 nanoseconds end in
/// year 2554, so the year always has four digits.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_known_values() {
        assert_eq!(rfc3339(0, 9), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(
            rfc3339(1_767_225_600_123_456_789, 9),
            "2026-01-01T00:00:00.123456789Z"
        );
        assert_eq!(
            rfc3339(1_767_225_600_123_456_789, 6),
            "2026-01-01T00:00:00.123456Z"
        );
        assert_eq!(rfc3339(951_782_400_000_000_000, 0), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(u64::MAX, 9), "2554-07-21T23:34:33.709551615Z");
    }
}
