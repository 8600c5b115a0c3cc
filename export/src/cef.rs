//! `cef`: ArcSight Common Event Format, version 0.
//!
//! `CEF:0|Vendor|Product|Version|SignatureID|Name|Severity|Extension`, with the
//! escaping rules of the CEF specification ("Implementing ArcSight CEF"):
//!
//! - header fields: `\` → `\\`, `|` → `\|`; a header may not span lines, so CR and LF
//!   become a space (CEF allows newlines only in extension values);
//! - extension values: `\` → `\\`, `=` → `\=`, LF → `\n`, CR → `\r` (a CRLF pair
//!   becomes `\r\n`); pipes are not escaped there.
//!
//! Signature id: the event type (`action.proposed`), or `rejected.<reason>`. Severity:
//! [`crate::Severity::cef`] (0..=10). Extension keys, always in this order, absent ones
//! skipped: `rt` (event time, epoch ms), `cat` (event family or `rejected`), `act`
//! (event type or `rejected`), `outcome`, `suser` (acting identity), `externalId`
//! (event id), `reason` (reject reason), `msg` (summary), `cs1`=tenant, `cs2`=leafHash,
//! `cs3`=subject, `cs4`=keyId, `cs5`=session, `cs6`=origin (each with its
//! `csNLabel`), `cn1`=seq, `cn2`=streamSeq (with `cnNLabel`). The tenant (`cs1`) is
//! always present, empty when unknown. The body itself is not carried: CEF consumers
//! truncate long custom strings; use `jsonl`, `ocsf` or `ecs` for the full event.

use crate::describe::{actor, outcome, summary, title};
use crate::record::{Record, RecordKind};
use crate::severity::severity;
use crate::ExportOptions;

/// Escapes a CEF header field.
pub fn escape_header(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '|' => out.push_str("\\|"),
            '\r' | '\n' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// Escapes a CEF extension value.
pub fn escape_extension(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '=' => out.push_str("\\="),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out
}

/// The CEF signature id of `record`.
pub fn signature_id(record: &Record) -> String {
    match record.reject_reason() {
        Some(reason) => format!("rejected.{reason}"),
        None => record
            .event_type
            .clone()
            .unwrap_or_else(|| "unknown".to_owned()),
    }
}

/// `record` as one CEF line, without the trailing newline.
pub fn to_cef(record: &Record, opts: &ExportOptions) -> String {
    let mut ext: Vec<(&str, String)> = Vec::new();
    ext.push(("rt", record.time_ms().to_string()));
    let cat = match record.kind() {
        RecordKind::Rejected(_) => "rejected".to_owned(),
        _ => record
            .event_type
            .as_deref()
            .map(|t| t.split('.').next().unwrap_or(t).to_owned())
            .unwrap_or_default(),
    };
    ext.push(("cat", cat));
    let act = match record.reject_reason() {
        Some(_) => "rejected".to_owned(),
        None => record.event_type.clone().unwrap_or_default(),
    };
    ext.push(("act", act));
    ext.push(("outcome", outcome(record).to_owned()));
    if let Some(who) = actor(record) {
        ext.push(("suser", who.id.to_owned()));
    }
    if let Some(id) = &record.event_id {
        ext.push(("externalId", id.clone()));
    }
    if let Some(reason) = record.reject_reason() {
        ext.push(("reason", reason.as_str().to_owned()));
    }
    ext.push(("msg", summary(record)));
    ext.push(("cs1Label", "tenant".to_owned()));
    ext.push(("cs1", record.tenant_or_empty().to_owned()));
    ext.push(("cs2Label", "leafHash".to_owned()));
    ext.push(("cs2", record.leaf_hash_hex()));
    ext.push(("cs3Label", "subject".to_owned()));
    ext.push(("cs3", record.subject.clone()));
    if let Some(key) = &record.key_id {
        ext.push(("cs4Label", "keyId".to_owned()));
        ext.push(("cs4", key.clone()));
    }
    if let Some(session) = record.session() {
        ext.push(("cs5Label", "session".to_owned()));
        ext.push(("cs5", session.to_owned()));
    }
    ext.push(("cs6Label", "origin".to_owned()));
    ext.push(("cs6", record.origin.clone()));
    ext.push(("cn1Label", "seq".to_owned()));
    ext.push(("cn1", record.seq.to_string()));
    ext.push(("cn2Label", "streamSeq".to_owned()));
    ext.push(("cn2", record.stream_seq.to_string()));

    let extension: Vec<String> = ext
        .iter()
        .map(|(k, v)| format!("{k}={}", escape_extension(v)))
        .collect();
    format!(
        "CEF:0|{}|{}|{}|{}|{}|{}|{}",
        escape_header(&opts.vendor),
        escape_header(&opts.product),
        escape_header(&opts.product_version),
        escape_header(&signature_id(record)),
        escape_header(&title(record)),
        severity(record).cef(),
        extension.join(" ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_follows_the_spec() {
        assert_eq!(escape_header(r"a|b\c=d"), r"a\|b\\c=d");
        assert_eq!(escape_header("x\r\ny"), "x  y");
        assert_eq!(escape_extension("a=b\\c|d\r\ne"), r"a\=b\\c|d\r\ne");
    }
}
