//! `jsonl`: one flat JSON object per record, the ledger's own vocabulary.
//!
//! Fields (keys sorted; absent optional fields are `null`, never omitted, so every
//! line has the same keys): `seq`, `leaf_hash` (hex), `origin`, `time` (RFC 3339 UTC,
//! nanoseconds), `time_ns`, `stream_seq`, `tenant`, `subject`, `key_id`, `verdict`
//! (`accepted`|`rejected`), `reason`, `detail`, `event_id`, `event_type`,
//! `body_sha256` (hex), `body_len`, `body` (the parsed event, or `null`),
//! `body_unparsed`, `severity`, `redactions`.

use serde_json::{json, Value};

use crate::json;
use crate::record::Record;
use crate::severity::severity;

/// The JSON object of `record`.
pub fn jsonl_value(record: &Record) -> Value {
    json!({
        "seq": record.seq,
        "leaf_hash": record.leaf_hash_hex(),
        "origin": record.origin,
        "time": record.time_rfc3339(),
        "time_ns": record.time_ns,
        "stream_seq": record.stream_seq,
        "tenant": record.tenant,
        "subject": record.subject,
        "key_id": record.key_id,
        "verdict": if record.is_accepted() { "accepted" } else { "rejected" },
        "reason": record.reject_reason().map(|r| r.as_str()),
        "detail": record.reject_detail(),
        "event_id": record.event_id,
        "event_type": record.event_type,
        "body_sha256": record.body_sha256_hex(),
        "body_len": record.body_len,
        "body": record.body,
        "body_unparsed": record.body_unparsed,
        "severity": severity(record).as_str(),
        "redactions": record.redactions,
    })
}

/// `record` as one JSON line, without the trailing newline.
pub fn to_jsonl(record: &Record) -> String {
    json::to_string(&jsonl_value(record), false)
}
