//! `syslog`: RFC 5424 messages, and RFC 6587 octet-counting framing for TCP/TLS.
//!
//! `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [SD-ELEMENT] MSG`:
//!
//! - PRI = facility × 8 + severity (§6.2.1); facility from [`SyslogOptions`]
//!   (default 13, "log audit"), severity from [`crate::Severity::syslog`];
//! - TIMESTAMP: the event time, RFC 3339 UTC with microseconds, the most §6.2.3
//!   allows (TIME-SECFRAC is at most 6 digits; truncated, never rounded);
//! - HOSTNAME (≤ 255), APP-NAME (≤ 48), PROCID (≤ 128), MSGID (≤ 32): printable
//!   US-ASCII without space (%d33-126, §6); other characters become `_`, longer values
//!   are cut, and an empty or absent value is the NILVALUE `-`. MSGID is the event
//!   type, or `rejected`;
//! - one SD-ELEMENT, SD-ID [`SyslogOptions::sd_id`] (default `govledger@32473`:
//!   32473 is the example Private Enterprise Number of RFC 5612, to be replaced by
//!   the operator's own PEN), with the PARAMs `seq`, `leaf` (leaf hash hex),
//!   `tenant` (empty when unknown), `verdict`, `reason` (rejected only), `event_id`,
//!   `event_type` (when known) and `severity`. PARAM-VALUEs escape `"`, `\` and `]`
//!   with a backslash (§6.3.3); control characters become a space;
//! - MSG: the payload ([`Payload`], default the `jsonl` object). JSON payloads are
//!   written with every non-ASCII character as a `\u` escape, so MSG is plain ASCII
//!   and, per §6.4, carries no BOM; a CEF payload that contains non-ASCII text is
//!   sent as MSG-UTF8, i.e. preceded by the UTF-8 BOM as §6.4 requires.

use crate::cef::to_cef;
use crate::ecs::write_ecs;
use crate::jsonl::write_jsonl;
use crate::ocsf::write_ocsf;
use crate::record::{rfc3339, Record};
use crate::severity::severity;
use crate::{ExportOptions, Payload};

/// The example SD-ID: `govledger@32473` (32473 = RFC 5612 example PEN).
pub const DEFAULT_SD_ID: &str = "govledger@32473";

/// RFC 5424 header and structured-data settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyslogOptions {
    /// Facility, 0..=23 (default 13, log audit).
    pub facility: u8,
    /// HOSTNAME; `None` writes the NILVALUE.
    pub hostname: Option<String>,
    /// APP-NAME (default `govledger`).
    pub app_name: String,
    /// PROCID; `None` writes the NILVALUE.
    pub procid: Option<String>,
    /// SD-ID of the structured-data element (default [`DEFAULT_SD_ID`]).
    pub sd_id: String,
    /// What MSG holds.
    pub payload: Payload,
}

impl Default for SyslogOptions {
    fn default() -> Self {
        SyslogOptions {
            facility: 13,
            hostname: None,
            app_name: "govledger".to_owned(),
            procid: None,
            sd_id: DEFAULT_SD_ID.to_owned(),
            payload: Payload::Jsonl,
        }
    }
}

/// A header field: printable US-ASCII without space, at most `max` characters, the
/// NILVALUE when empty.
pub fn header_field(value: Option<&str>, max: usize) -> String {
    let cleaned: String = value
        .unwrap_or("")
        .chars()
        .map(|c| if ('!'..='~').contains(&c) { c } else { '_' })
        .take(max)
        .collect();
    if cleaned.is_empty() {
        "-".to_owned()
    } else {
        cleaned
    }
}

/// An SD-NAME (SD-ID or PARAM-NAME): printable US-ASCII except `=`, space, `]` and
/// `"`, at most 32 characters; other characters become `_`.
pub fn sd_name(value: &str) -> String {
    let cleaned: String = value
        .chars()
        .map(|c| match c {
            '=' | ']' | '"' => '_',
            c if ('!'..='~').contains(&c) => c,
            _ => '_',
        })
        .take(32)
        .collect();
    if cleaned.is_empty() {
        "_".to_owned()
    } else {
        cleaned
    }
}

/// Escapes a PARAM-VALUE (§6.3.3): `"`, `\` and `]` get a backslash. Control
/// characters (which RFC 5424 has no escape for, and which would split the message
/// for line-framed receivers) become a space.
pub fn escape_param_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if matches!(c, '"' | '\\' | ']') {
            out.push('\\');
        }
        out.push(if c.is_control() { ' ' } else { c });
    }
    out
}

/// The payload of `record` as text: ASCII-only for the JSON payloads.
pub fn payload_text(record: &Record, opts: &ExportOptions, payload: Payload) -> String {
    let mut out = String::with_capacity(2048);
    match payload {
        Payload::Jsonl => write_jsonl(&mut out, record, true),
        Payload::Ocsf => write_ocsf(&mut out, record, opts, true),
        Payload::Ecs => write_ecs(&mut out, record, opts, true),
        Payload::Cef => return to_cef(record, opts),
    }
    out
}

/// `record` as one RFC 5424 message (no framing, no trailing newline).
pub fn to_syslog(record: &Record, opts: &ExportOptions) -> String {
    let so = &opts.syslog;
    let pri = u32::from(so.facility.min(23)) * 8 + u32::from(severity(record).syslog());
    let msgid = match record.reject_reason() {
        Some(_) => "rejected".to_owned(),
        None => record
            .event_type
            .clone()
            .unwrap_or_else(|| "event".to_owned()),
    };
    let mut params: Vec<(&str, String)> = vec![
        ("seq", record.seq.to_string()),
        ("leaf", record.leaf_hash_hex()),
        ("tenant", record.tenant_or_empty().to_owned()),
        (
            "verdict",
            if record.is_accepted() {
                "accepted"
            } else {
                "rejected"
            }
            .to_owned(),
        ),
    ];
    if let Some(reason) = record.reject_reason() {
        params.push(("reason", reason.as_str().to_owned()));
    }
    if let Some(id) = &record.event_id {
        params.push(("event_id", id.clone()));
    }
    if let Some(t) = &record.event_type {
        params.push(("event_type", t.clone()));
    }
    params.push(("severity", severity(record).as_str().to_owned()));
    let mut sd = format!("[{}", sd_name(&so.sd_id));
    for (name, value) in &params {
        sd.push_str(&format!(
            " {}=\"{}\"",
            sd_name(name),
            escape_param_value(value)
        ));
    }
    sd.push(']');

    let msg = payload_text(record, opts, so.payload);
    let msg = if msg.is_ascii() {
        msg
    } else {
        format!("\u{feff}{msg}")
    };
    format!(
        "<{pri}>1 {} {} {} {} {} {sd} {msg}",
        rfc3339(record.time_ns, 6),
        header_field(so.hostname.as_deref(), 255),
        header_field(Some(&so.app_name), 48),
        header_field(so.procid.as_deref(), 128),
        header_field(Some(&msgid), 32),
    )
}

/// RFC 6587 §3.4.1 octet-counting framing: `MSG-LEN SP SYSLOG-MSG`, the length in
/// bytes, in decimal.
pub fn octet_counting_frame(msg: &[u8]) -> Vec<u8> {
    let mut out = format!("{} ", msg.len()).into_bytes();
    out.extend_from_slice(msg);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_and_sd_rules() {
        assert_eq!(header_field(None, 10), "-");
        assert_eq!(header_field(Some(""), 10), "-");
        assert_eq!(header_field(Some("a b\u{e9}c"), 10), "a_b_c");
        assert_eq!(header_field(Some("abcdef"), 3), "abc");
        assert_eq!(escape_param_value(r#"a"b\c]d"#), r#"a\"b\\c\]d"#);
        assert_eq!(sd_name("a=b c]\"d"), "a_b_c__d");
        assert_eq!(octet_counting_frame(b"<14>1 x"), b"7 <14>1 x".to_vec());
    }
}
