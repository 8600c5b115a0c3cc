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

use serde_json::{json, Map, Value};

use crate::cef::to_cef;
use crate::ecs::ecs_value;
use crate::json;
use crate::jsonl::jsonl_value;
use crate::ocsf::ocsf_value;
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

fn put(map: &mut Map<String, Value>, key: &str, value: Value) {
    map.insert(key.to_owned(), value);
}

/// `record` as one HEC envelope, without a trailing newline.
pub fn to_hec(record: &Record, opts: &ExportOptions) -> String {
    let ho = &opts.hec;
    let event = match ho.payload {
        Payload::Jsonl => jsonl_value(record),
        Payload::Ocsf => ocsf_value(record, opts),
        Payload::Ecs => ecs_value(record, opts),
        Payload::Cef => Value::String(to_cef(record, opts)),
    };
    let mut fields = Map::new();
    put(&mut fields, "seq", json!(record.seq.to_string()));
    put(&mut fields, "leaf_hash", json!(record.leaf_hash_hex()));
    put(&mut fields, "tenant", json!(record.tenant_or_empty()));
    put(
        &mut fields,
        "verdict",
        json!(if record.is_accepted() {
            "accepted"
        } else {
            "rejected"
        }),
    );
    put(&mut fields, "severity", json!(severity(record).as_str()));
    put(&mut fields, "origin", json!(record.origin));
    if let Some(t) = &record.event_type {
        put(&mut fields, "event_type", json!(t));
    }
    if let Some(reason) = record.reject_reason() {
        put(&mut fields, "reason", json!(reason.as_str()));
    }
    let mut env = Map::new();
    put(&mut env, "event", event);
    put(&mut env, "fields", Value::Object(fields));
    if let Some(host) = &ho.host {
        put(&mut env, "host", json!(host));
    }
    if let Some(index) = &ho.index {
        put(&mut env, "index", json!(index));
    }
    put(
        &mut env,
        "source",
        json!(ho.source.clone().unwrap_or_else(|| record.origin.clone())),
    );
    put(
        &mut env,
        "sourcetype",
        json!(ho
            .sourcetype
            .clone()
            .unwrap_or_else(|| format!("govledger:{}", ho.payload.as_str()))),
    );
    // `time` sorts after every other key, so it is appended to the canonical
    // serialization by hand, in the exact `<sec>.<ms>` form.
    let mut out = json::to_string(&Value::Object(env), false);
    out.pop(); // the closing brace
    let ms = record.time_ms();
    out.push_str(&format!(",\"time\":{}.{:03}}}", ms / 1000, ms % 1000));
    out
}
