//! `jsonl`: one flat JSON object per record, the ledger's own vocabulary.
//!
//! Fields (keys sorted; absent optional fields are `null`, never omitted, so every
//! line has the same keys): `seq`, `leaf_hash` (hex), `origin`, `time` (RFC 3339 UTC,
//! nanoseconds), `time_ns`, `stream_seq`, `tenant`, `subject`, `key_id`, `verdict`
//! (`accepted`|`rejected`), `reason`, `detail`, `event_id`, `event_type`,
//! `body_sha256` (hex), `body_len`, `body` (the parsed event, or `null`),
//! `body_unparsed`, `severity`, `redactions`.

use serde_json::Value;

use crate::json::{self, Obj};
use crate::record::Record;
use crate::severity::severity;

/// Where the body goes in the ledger object: under `body` (the `jsonl` format),
/// under `event` (ECS's `govledger` object) or nowhere (OCSF's
/// `unmapped.govledger`, whose body is `unmapped.event`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BodyAs {
    Body,
    Event,
    Omitted,
}

/// Writes the ledger object of `record` (the `jsonl` fields, keys sorted) as the
/// members of `obj`, with the body as `body`.
pub(crate) fn write_ledger(obj: &mut Obj<'_>, record: &Record, body: BodyAs) {
    let body_value = || record.body.as_ref().unwrap_or(&Value::Null);
    if body == BodyAs::Body {
        obj.value("body", body_value());
    }
    obj.u64("body_len", record.body_len);
    obj.hex("body_sha256", &record.body_sha256);
    obj.bool("body_unparsed", record.body_unparsed);
    obj.opt_str("detail", record.reject_detail());
    if body == BodyAs::Event {
        obj.value("event", body_value());
    }
    obj.opt_str("event_id", record.event_id.as_deref());
    obj.opt_str("event_type", record.event_type.as_deref());
    obj.opt_str("key_id", record.key_id.as_deref());
    obj.hex("leaf_hash", &record.leaf_hash);
    obj.str("origin", &record.origin);
    obj.opt_str("reason", record.reject_reason().map(|r| r.as_str()));
    obj.strs("redactions", record.redactions.iter().map(String::as_str));
    obj.u64("seq", record.seq);
    obj.str("severity", severity(record).as_str());
    obj.u64("stream_seq", record.stream_seq);
    obj.str("subject", &record.subject);
    obj.opt_str("tenant", record.tenant.as_deref());
    let out = obj.key("time");
    out.push('"');
    crate::record::write_rfc3339(out, record.time_ns, 9);
    out.push('"');
    obj.u64("time_ns", record.time_ns);
    obj.str(
        "verdict",
        if record.is_accepted() {
            "accepted"
        } else {
            "rejected"
        },
    );
}

/// Appends the `jsonl` object of `record` to `out`; `ascii` escapes every
/// non-ASCII character.
pub fn write_jsonl(out: &mut String, record: &Record, ascii: bool) {
    let mut obj = Obj::open(out, ascii);
    write_ledger(&mut obj, record, BodyAs::Body);
    obj.close();
}

/// The JSON object of `record` (the parsed [`to_jsonl`]).
pub fn jsonl_value(record: &Record) -> Value {
    json::parse(&to_jsonl(record))
}

/// `record` as one JSON line, without the trailing newline.
pub fn to_jsonl(record: &Record) -> String {
    let mut out = String::new();
    write_jsonl(&mut out, record, false);
    out
}
