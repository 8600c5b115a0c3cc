//! `hec`: the Splunk HTTP Event Collector event envelope (`/services/collector/event`).
//!
//! `{"event": …, "fields": {…}, "host": …, "index": …, "source": …,
//! "sourcetype": …, "time": <sec>.<ms>}`: `time` is the event time in epoch seconds
//! with exactly three decimals (HEC's `<sec>.<ms>` form; sub-millisecond digits are
//! truncated, the exact time stays in the event); `event` is the payload
//! ([`HecOptions::payload`], default the `jsonl` object; a CEF payload is a string);
//! `fields` are indexed fields, all strings as HEC wants them: `seq`, `leaf_hash`,
//! `tenant`, `verdict`, `severity`, `origin`, `event_type` (when known), `reason`
//! (rejected only). `host` and `index` are written only when configured; `source`
//! defaults to the ledger origin and `sourcetype` to `govledger:<payload>`.
//! Batching is the caller's: HEC accepts several envelopes concatenated in one body.

use crate::cef::to_cef;
use crate::ecs::write_ecs;
use crate::json::{self, Obj};
use crate::jsonl::write_jsonl;
use crate::ocsf::write_ocsf;
use crate::record::Record;
use crate::severity::severity;
use crate::{ExportOptions, Payload};

/// Envelope settings.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HecOptions {
    /// `host`; omitted when `None`.
    pub host: Option<String>,
    /// `source`; the ledger origin when `None`.
    pub source: Option<String>,
    /// `sourcetype`; `govledger:<payload>` when `None`.
    pub sourcetype: Option<String>,
    /// `index`; omitted (the token's default index) when `None`.
    pub index: Option<String>,
    /// What `event` holds.
    pub payload: Payload,
}

/// `record` as one HEC envelope, without a trailing newline.
pub fn to_hec(record: &Record, opts: &ExportOptions) -> String {
    let ho = &opts.hec;
    let mut out = String::with_capacity(2048);
    // The members, in byte order of their keys.
    let mut env = Obj::open(&mut out, false);
    let event = env.key("event");
    match ho.payload {
        Payload::Jsonl => write_jsonl(event, record, false),
        Payload::Ocsf => write_ocsf(event, record, opts, false),
        Payload::Ecs => write_ecs(event, record, opts, false),
        Payload::Cef => json::write_str(event, &to_cef(record, opts), false),
    }
    let mut fields = env.obj("fields");
    if let Some(t) = &record.event_type {
        fields.str("event_type", t);
    }
    fields.hex("leaf_hash", &record.leaf_hash);
    fields.str("origin", &record.origin);
    if let Some(reason) = record.reject_reason() {
        fields.str("reason", reason.as_str());
    }
    let seq = fields.key("seq");
    seq.push('"');
    json::write_u64(seq, record.seq);
    seq.push('"');
    fields.str("severity", severity(record).as_str());
    fields.str("tenant", record.tenant_or_empty());
    fields.str(
        "verdict",
        if record.is_accepted() {
            "accepted"
        } else {
            "rejected"
        },
    );
    fields.close();
    if let Some(host) = &ho.host {
        env.str("host", host);
    }
    if let Some(index) = &ho.index {
        env.str("index", index);
    }
    env.str("source", ho.source.as_deref().unwrap_or(&record.origin));
    match &ho.sourcetype {
        Some(t) => env.str("sourcetype", t),
        None => env.str_parts("sourcetype", &["govledger:", ho.payload.as_str()]),
    }
    // `time` in the exact `<sec>.<ms>` form, which no JSON number writer keeps.
    let ms = record.time_ms();
    let time = env.key("time");
    json::write_u64(time, ms / 1000);
    time.push('.');
    let frac = ms % 1000;
    for d in [frac / 100, frac / 10 % 10, frac % 10] {
        time.push(char::from(b'0' + d as u8));
    }
    env.close();
    out
}
