//! govledger-export: turns ledger entries into SIEM records, keeps secrets out, and
//! ships them.
//!
//! Two halves. The formatting half (every module but [`cursor`], [`sink`] and
//! [`pipeline`]) is pure: it formats and redacts, it never reads the ledger, opens a
//! socket or looks at a clock. The shipping half reads entries from the ledger
//! (read-only), sends the formatted records to a [`sink`] (file, stdout, syslog over
//! TCP/TLS, Splunk HEC) and keeps a durable [`cursor`] per named sink;
//! [`pipeline::Pipeline`] ties them together for the `govledger export` command.
//!
//! The path of one entry:
//!
//! 1. [`Record::from_entry`]: the entry, its RFC 6962 leaf hash and the ledger origin
//!    become a [`Record`]; an accepted entry's body is parsed as JSON (a body that is
//!    not JSON is dropped, never a panic);
//! 2. [`Redactor::redact_record`]: every string of the record is scanned once and
//!    secrets (API keys, private keys, bearer tokens, JWTs, passwords in URLs and
//!    connection strings, oversized strings, configured patterns) become
//!    `[REDACTED:<kind>]`, so every format gets the same redacted content;
//! 3. a format, a pure function of the record and [`ExportOptions`]:
//!    [`to_jsonl`], [`to_ocsf`] (OCSF [`OCSF_VERSION`]), [`to_ecs`] (ECS
//!    [`ECS_VERSION`]), [`to_cef`], [`to_syslog`] (RFC 5424; frame it with
//!    [`octet_counting_frame`] for TCP/TLS) and [`to_hec`] (Splunk HEC envelope).
//!
//! [`Exporter`] does the three steps in one call. One severity table ([`mod@severity`])
//! serves every format.
//!
//! Promises, relied on by SIEM users and tested with golden files:
//!
//! - **checkable**: every record in every format carries the ledger `seq`, the leaf
//!   hash (lowercase hex) and the tenant, so any record can be checked against a
//!   signed checkpoint with an inclusion proof. Redaction changes the body, so the
//!   leaf hash no longer matches the exported text: check `seq` + leaf hash against
//!   the ledger, never the redacted text;
//! - **deterministic**: same entry, same options, same bytes. No clock, no
//!   randomness, JSON keys sorted by our own writer whatever serde_json's features;
//! - **total**: no input makes a format or the redactor panic (property-tested).
//!
//! The field-by-field description of every format, the mapping tables, the
//! redaction rules and the delivery guarantees of each sink are in `docs/EXPORT.md`.

#![forbid(unsafe_code)]

pub mod cef;
pub mod cursor;
pub mod describe;
pub mod ecs;
pub mod hec;
pub mod json;
pub mod jsonl;
pub mod ocsf;
pub mod pipeline;
pub mod record;
pub mod redact;
pub mod severity;
pub mod sink;
pub mod syslog;

use std::fmt;
use std::str::FromStr;

use govledger_schemas::Entry;

pub use cef::to_cef;
pub use ecs::{ecs_value, to_ecs, ECS_VERSION};
pub use hec::{to_hec, HecOptions};
pub use jsonl::{jsonl_value, to_jsonl};
pub use ocsf::{ocsf_class, ocsf_value, to_ocsf, OcsfClass, OCSF_VERSION};
pub use record::{Record, RecordKind, RecordVerdict};
pub use redact::{ExtraPattern, RedactError, RedactionConfig, Redactor, DEFAULT_MAX_SCAN_BYTES};
pub use severity::{severity, Severity};
pub use syslog::{octet_counting_frame, to_syslog, SyslogOptions, DEFAULT_SD_ID};

/// An output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// `jsonl`: the ledger's own flat JSON, one object per line.
    Jsonl,
    /// `ocsf`: OCSF 1.3.0 events.
    Ocsf,
    /// `ecs`: Elastic Common Schema documents.
    Ecs,
    /// `cef`: ArcSight CEF lines.
    Cef,
    /// `syslog`: RFC 5424 messages.
    Syslog,
    /// `hec`: Splunk HTTP Event Collector envelopes.
    Hec,
}

impl Format {
    /// Every format.
    pub const ALL: &'static [Format] = &[
        Format::Jsonl,
        Format::Ocsf,
        Format::Ecs,
        Format::Cef,
        Format::Syslog,
        Format::Hec,
    ];

    /// The lowercase name used on the command line.
    pub const fn as_str(self) -> &'static str {
        match self {
            Format::Jsonl => "jsonl",
            Format::Ocsf => "ocsf",
            Format::Ecs => "ecs",
            Format::Cef => "cef",
            Format::Syslog => "syslog",
            Format::Hec => "hec",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Format {
    type Err = ExportError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Format::ALL
            .iter()
            .copied()
            .find(|f| f.as_str() == s)
            .ok_or_else(|| ExportError::UnknownFormat(s.to_owned()))
    }
}

/// What a syslog MSG or a HEC `event` carries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Payload {
    /// The `jsonl` object.
    #[default]
    Jsonl,
    /// The OCSF event.
    Ocsf,
    /// The ECS document.
    Ecs,
    /// The CEF line.
    Cef,
}

impl Payload {
    /// Lowercase name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Payload::Jsonl => "jsonl",
            Payload::Ocsf => "ocsf",
            Payload::Ecs => "ecs",
            Payload::Cef => "cef",
        }
    }
}

impl FromStr for Payload {
    type Err = ExportError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [Payload::Jsonl, Payload::Ocsf, Payload::Ecs, Payload::Cef]
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| ExportError::UnknownPayload(s.to_owned()))
    }
}

/// Settings shared by the formats. `Default` names the product `govledger` with this
/// crate's version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportOptions {
    /// Vendor name (OCSF `metadata.product.vendor_name`, ECS `observer.vendor`, CEF
    /// Device Vendor).
    pub vendor: String,
    /// Product name (OCSF `metadata.product.name`, ECS `observer.product`, CEF
    /// Device Product).
    pub product: String,
    /// Product version (OCSF `metadata.product.version`, ECS `observer.version`, CEF
    /// Device Version).
    pub product_version: String,
    /// Syslog header and structured data.
    pub syslog: SyslogOptions,
    /// Splunk HEC envelope.
    pub hec: HecOptions,
}

impl Default for ExportOptions {
    fn default() -> Self {
        ExportOptions {
            vendor: "govledger".to_owned(),
            product: "govledger".to_owned(),
            product_version: env!("CARGO_PKG_VERSION").to_owned(),
            syslog: SyslogOptions::default(),
            hec: HecOptions::default(),
        }
    }
}

/// Export settings cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExportError {
    /// A format name is not one of `jsonl`, `ocsf`, `ecs`, `cef`, `syslog`, `hec`.
    #[error("unknown export format {0:?}: use jsonl, ocsf, ecs, cef, syslog or hec")]
    UnknownFormat(String),
    /// A payload name is not one of `jsonl`, `ocsf`, `ecs`, `cef`.
    #[error("unknown payload {0:?}: use jsonl, ocsf, ecs or cef")]
    UnknownPayload(String),
    /// The syslog facility is above 23.
    #[error("syslog facility {0} is out of range: use 0 to 23 (13 = log audit, 16..23 = local0..local7)")]
    SyslogFacility(u8),
    /// The SD-ID is not a valid RFC 5424 SD-NAME.
    #[error("syslog SD-ID {0:?} is invalid: use 1 to 32 printable ASCII characters without '=', ']', '\"' or space, in the form name@<your IANA enterprise number>")]
    SyslogSdId(String),
    /// The redaction settings are invalid.
    #[error(transparent)]
    Redaction(#[from] RedactError),
}

/// Formats entries, redacted, in any format: the one call sinks need. A clone
/// shares nothing mutable with the original (see [`Redactor`]): give each render
/// thread its own.
#[derive(Clone, Debug)]
pub struct Exporter {
    options: ExportOptions,
    redactor: Redactor,
}

impl Exporter {
    /// Checks `options` and compiles `redaction`.
    pub fn new(
        options: ExportOptions,
        redaction: &RedactionConfig,
    ) -> Result<Exporter, ExportError> {
        if options.syslog.facility > 23 {
            return Err(ExportError::SyslogFacility(options.syslog.facility));
        }
        let sd = &options.syslog.sd_id;
        if sd.is_empty() || syslog::sd_name(sd) != *sd {
            return Err(ExportError::SyslogSdId(sd.clone()));
        }
        Ok(Exporter {
            options,
            redactor: Redactor::new(redaction)?,
        })
    }

    /// The options in use.
    pub fn options(&self) -> &ExportOptions {
        &self.options
    }

    /// The redactor in use.
    pub fn redactor(&self) -> &Redactor {
        &self.redactor
    }

    /// The redacted record of `entry` (leaf hash `leaf_hash`, ledger `origin`).
    pub fn record(&self, entry: &Entry, leaf_hash: [u8; 32], origin: &str) -> Record {
        self.redactor
            .redact_record(Record::from_entry(entry, leaf_hash, origin))
    }

    /// Renders an already redacted `record` in `format` (no framing, no newline).
    pub fn render_record(&self, format: Format, record: &Record) -> String {
        render(format, record, &self.options)
    }

    /// Redacts and renders `entry` in `format` (no framing, no newline).
    pub fn render(
        &self,
        format: Format,
        entry: &Entry,
        leaf_hash: [u8; 32],
        origin: &str,
    ) -> String {
        self.render_record(format, &self.record(entry, leaf_hash, origin))
    }

    /// [`Exporter::render`], appending to `out`.
    pub fn render_into(
        &self,
        format: Format,
        entry: Entry,
        leaf_hash: [u8; 32],
        origin: &str,
        out: &mut String,
    ) {
        let record = self
            .redactor
            .redact_record(Record::from_owned_entry(entry, leaf_hash, origin));
        render_into(format, &record, &self.options, out);
    }
}

/// Renders `record` in `format` (no framing, no trailing newline). The record should
/// have been through [`Redactor::redact_record`]; this function does not redact.
pub fn render(format: Format, record: &Record, options: &ExportOptions) -> String {
    let mut out = String::new();
    render_into(format, record, options, &mut out);
    out
}

/// [`render()`], appending to `out`: the JSON formats are written straight into it.
pub fn render_into(format: Format, record: &Record, options: &ExportOptions, out: &mut String) {
    match format {
        Format::Jsonl => jsonl::write_jsonl(out, record, false),
        Format::Ocsf => ocsf::write_ocsf(out, record, options, false),
        Format::Ecs => ecs::write_ecs(out, record, options, false),
        Format::Cef => out.push_str(&to_cef(record, options)),
        Format::Syslog => out.push_str(&to_syslog(record, options)),
        Format::Hec => out.push_str(&to_hec(record, options)),
    }
}
