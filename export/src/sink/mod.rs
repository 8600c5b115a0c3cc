//! `sink`: where rendered records go, and how each destination says "delivered".
//!
//! Unlike the formatting modules, the sinks do I/O. Each [`Sink`] frames records
//! its own way ([`Sink::framing`]; the render threads apply it), delivers a batch
//! of framed records ([`Sink::deliver`]) and makes what it delivered durable
//! ([`Sink::sync`]) before the pipeline commits the sink's cursor:
//!
//! | destination | framing | delivered when | after a crash |
//! |---|---|---|---|
//! | file | record + `\n` | written and fsynced (every [`file::FILE_SYNC_BYTES`], not every batch) | exactly once: the file is cut back to the committed length |
//! | stdout | record + `\n` | written and flushed | at least once (a reader may have seen records after the cursor) |
//! | `syslog+tcp://`, `syslog+tls://` | RFC 6587 octet counting | the kernel (or TLS) accepted every byte | at least once; TCP syslog has no acknowledgement, so a receiver that dies with bytes in its buffers loses them |
//! | Splunk HEC `http(s)://` | concatenated envelopes, one POST per batch | HEC answered 2xx | at least once |
//!
//! Network sinks never skip a record: a connection error, a write error, a 5xx or a
//! 429 is logged (tracing, warn) and the whole batch is sent again after a capped
//! exponential backoff ([`Backoff`]: 100 ms doubling to 30 s), forever, until it is
//! delivered or the run is told to stop. Errors a retry cannot cure stop the run: a
//! 4xx from HEC (bad token, bad request; the response body is in the message), a
//! certificate the configured roots do not trust.

pub mod file;
pub mod hec;
pub mod net;
pub mod syslog;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

pub use file::{FileSink, StdoutSink};
pub use hec::{HecSink, HttpUrl, DEFAULT_HEC_PATH};
pub use net::{tls_config, Backoff};
pub use syslog::SyslogSink;

/// Where records go, parsed from the command line's `--to`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Destination {
    /// `-`: standard output.
    Stdout,
    /// A file path: appended to by named sinks, written afresh by one-off exports.
    File(PathBuf),
    /// `syslog+tcp://HOST:PORT` or `syslog+tls://HOST:PORT`: RFC 5424 messages,
    /// octet-counting framed.
    Syslog {
        /// Host name or IP address.
        host: String,
        /// TCP port.
        port: u16,
        /// TLS (RFC 5425) instead of plain TCP.
        tls: bool,
    },
    /// `http://` or `https://` URL of a Splunk HTTP Event Collector.
    Hec(HttpUrl),
}

/// A sink failed in a way that retrying cannot cure, or was told to stop.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SinkError {
    /// `--to` names no destination this version knows.
    #[error("unknown destination {0:?}: use a file path, '-' (stdout), syslog+tcp://HOST:PORT, syslog+tls://HOST:PORT, or an http:// or https:// Splunk HEC URL")]
    UnknownDestination(String),
    /// A destination URL is malformed.
    #[error("destination {url:?}: {why}")]
    BadUrl {
        /// The URL as given.
        url: String,
        /// What is wrong.
        why: String,
    },
    /// A file could not be opened, written, synced or cut back.
    #[error("{path}: {what}")]
    File {
        /// The file.
        path: PathBuf,
        /// What failed.
        what: String,
    },
    /// Standard output could not be written.
    #[error("standard output: {0}")]
    Stdout(std::io::Error),
    /// The TLS settings cannot be used (unreadable CA file, no roots, bad name).
    #[error("TLS: {0}")]
    TlsConfig(String),
    /// The server's certificate is not trusted: retrying cannot help.
    #[error("TLS to {peer}: {why} (use --ca-file PEM for a private CA)")]
    Certificate {
        /// host:port.
        peer: String,
        /// rustls' reason.
        why: String,
    },
    /// HEC refused the batch with a 4xx other than 429 (bad token, bad request).
    #[error("Splunk HEC {url} answered {status}: {body}")]
    Rejected {
        /// The URL posted to.
        url: String,
        /// HTTP status.
        status: u16,
        /// The response body (at most 4 KiB of it).
        body: String,
    },
    /// The run was told to stop (SIGINT, SIGTERM) while a batch was undelivered.
    #[error("stopped before the batch was delivered")]
    Stopped,
}

/// Makes a sink's delivered bytes durable, on whatever thread runs it
/// ([`Sink::sync_later`]).
pub type SyncJob = Box<dyn FnOnce() -> Result<(), SinkError> + Send>;

/// How a sink frames each record: a pure function of the record's text, so the
/// render threads frame records as they render them and the delivering thread
/// copies nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// The record, then `\n` (files, stdout, HEC's concatenated envelopes).
    Line,
    /// RFC 6587 octet counting: the record's length in bytes (decimal), a space,
    /// the record (syslog over TCP or TLS).
    OctetCounting,
}

impl Framing {
    /// Appends `record`, framed, to `out`.
    pub fn frame(self, record: &str, out: &mut String) {
        self.frame_with(out, &mut String::new(), |o| o.push_str(record));
    }

    /// Appends the record that `write` appends to the string it is given, framed,
    /// to `out`. A line is written in place; a length prefix needs the record
    /// first, so it is written into `scratch` (cleared, kept for reuse) and copied.
    pub fn frame_with(
        self,
        out: &mut String,
        scratch: &mut String,
        write: impl FnOnce(&mut String),
    ) {
        match self {
            Framing::Line => {
                write(out);
                out.push('\n');
            }
            Framing::OctetCounting => {
                scratch.clear();
                write(scratch);
                crate::json::write_u64(out, scratch.len() as u64);
                out.push(' ');
                out.push_str(scratch);
            }
        }
    }
}

/// A destination for framed records. See the module docs for the guarantees.
pub trait Sink: Send {
    /// How this sink frames each record: by default [`Framing::Line`].
    fn framing(&self) -> Framing {
        Framing::Line
    }
    /// Delivers `buf` (whole framed records), retrying transient failures until it
    /// is delivered or `stop` is set ([`SinkError::Stopped`]).
    fn deliver(&mut self, buf: &[u8], stop: &AtomicBool) -> Result<(), SinkError>;
    /// Delivers the concatenation of `parts` as one batch, like [`Sink::deliver`].
    /// The default copies the parts into one buffer first; a sink that can write
    /// them one after the other (a file) does that instead.
    fn deliver_parts(&mut self, parts: &[&[u8]], stop: &AtomicBool) -> Result<(), SinkError> {
        match parts {
            [one] => self.deliver(one, stop),
            _ => self.deliver(&parts.concat(), stop),
        }
    }
    /// Makes everything delivered so far durable; returns the sink's committed
    /// length in bytes (files) or 0.
    fn sync(&mut self) -> Result<u64, SinkError>;
    /// How many bytes may be delivered before the pipeline must [`Sink::sync`] and
    /// commit the cursor: 0 (the default) means after every batch. A sink that
    /// delivers records exactly once whatever was written after its last commit
    /// (a file, cut back on resume) can sync less often; a sink that would deliver
    /// the uncommitted records again after a crash must not.
    fn sync_every(&self) -> u64 {
        0
    }
    /// For sinks whose sync can run on another thread while more is delivered
    /// (files): writes out anything buffered and returns the length delivered so
    /// far and a job that makes it durable, so that the pipeline can overlap the
    /// flush with the next batches. `None` (the default): the pipeline calls
    /// [`Sink::sync`] and waits.
    fn sync_later(&mut self) -> Result<Option<(u64, SyncJob)>, SinkError> {
        Ok(None)
    }
    /// How many deliveries were retried so far.
    fn retries(&self) -> u64 {
        0
    }
}

impl Destination {
    /// Parses `--to`: `-`, `syslog+tcp://HOST:PORT`, `syslog+tls://HOST:PORT`,
    /// `http(s)://HOST[:PORT][/PATH]`, or else a file path.
    pub fn parse(s: &str) -> Result<Destination, SinkError> {
        if s == "-" {
            return Ok(Destination::Stdout);
        }
        let Some((scheme, rest)) = s.split_once("://") else {
            if s.is_empty() {
                return Err(SinkError::UnknownDestination(s.to_owned()));
            }
            return Ok(Destination::File(PathBuf::from(s)));
        };
        let bad = |why: &str| SinkError::BadUrl {
            url: s.to_owned(),
            why: why.to_owned(),
        };
        match scheme {
            "syslog+tcp" | "syslog+tls" => {
                let hostport = rest.trim_end_matches('/');
                if hostport.contains('/') || hostport.contains('@') || hostport.contains('?') {
                    return Err(bad("use syslog+tcp://HOST:PORT (no path, user or query)"));
                }
                let (host, port) = net::split_host_port(hostport, None).map_err(|w| bad(&w))?;
                Ok(Destination::Syslog {
                    host,
                    port,
                    tls: scheme == "syslog+tls",
                })
            }
            "http" | "https" => Ok(Destination::Hec(HttpUrl::parse(s)?)),
            _ => Err(SinkError::UnknownDestination(s.to_owned())),
        }
    }

    /// The destination as stored in a sink's cursor and shown in summaries: no
    /// secrets (the HEC token is never part of it), file paths absolute.
    pub fn describe(&self) -> String {
        match self {
            Destination::Stdout => "-".to_owned(),
            Destination::File(p) => absolute(p).display().to_string(),
            Destination::Syslog { host, port, tls } => {
                let scheme = if *tls { "syslog+tls" } else { "syslog+tcp" };
                format!("{scheme}://{}", net::join_host_port(host, *port))
            }
            Destination::Hec(u) => u.to_string(),
        }
    }

    /// Whether the destination is a network sink (at-least-once, retried).
    pub fn is_network(&self) -> bool {
        matches!(self, Destination::Syslog { .. } | Destination::Hec(_))
    }

    /// Whether TLS is used.
    pub fn uses_tls(&self) -> bool {
        match self {
            Destination::Syslog { tls, .. } => *tls,
            Destination::Hec(u) => u.tls,
            _ => false,
        }
    }
}

/// `p` made absolute against the current directory, without touching the disk
/// beyond that (the file may not exist yet), and written one way: `.`
/// components and repeated separators dropped (`..` is kept: past a symbolic
/// link it is not the parent it looks like).
fn absolute(p: &std::path::Path) -> PathBuf {
    let whole = match p.is_absolute() {
        true => p.to_path_buf(),
        false => std::env::current_dir()
            .map(|d| d.join(p))
            .unwrap_or_else(|_| p.to_path_buf()),
    };
    normal(&whole)
}

/// A path's components written again: `.` and repeated separators dropped.
pub(crate) fn normal(p: &std::path::Path) -> PathBuf {
    p.components().collect()
}

/// Sleeps `d` in short steps, returning early with [`SinkError::Stopped`] once
/// `stop` is set.
pub fn sleep_unless_stopped(d: Duration, stop: &AtomicBool) -> Result<(), SinkError> {
    let step = Duration::from_millis(20);
    let mut left = d;
    while !left.is_zero() {
        if stop.load(Ordering::Relaxed) {
            return Err(SinkError::Stopped);
        }
        let s = left.min(step);
        std::thread::sleep(s);
        left -= s;
    }
    if stop.load(Ordering::Relaxed) {
        return Err(SinkError::Stopped);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_parse() {
        assert_eq!(Destination::parse("-").unwrap(), Destination::Stdout);
        assert_eq!(
            Destination::parse("out.jsonl").unwrap(),
            Destination::File("out.jsonl".into())
        );
        assert_eq!(
            Destination::parse("syslog+tcp://127.0.0.1:6514").unwrap(),
            Destination::Syslog {
                host: "127.0.0.1".into(),
                port: 6514,
                tls: false
            }
        );
        assert_eq!(
            Destination::parse("syslog+tls://[::1]:6514").unwrap(),
            Destination::Syslog {
                host: "::1".into(),
                port: 6514,
                tls: true
            }
        );
        let hec = Destination::parse("https://splunk.example:8088").unwrap();
        assert_eq!(
            hec.describe(),
            "https://splunk.example:8088/services/collector/event"
        );
        for bad in [
            "",
            "ftp://x",
            "syslog+tcp://host",
            "syslog+tcp://host:0",
            "syslog+tcp://host:99999",
            "syslog+udp://h:1",
            "syslog+tcp://h:1/path",
            "http://",
            "http://user:pw@h/",
        ] {
            assert!(Destination::parse(bad).is_err(), "{bad:?} parsed");
        }
    }
}

#[cfg(test)]
mod framing_tests {
    use super::Framing;

    #[test]
    fn line_and_octet_counting_frames() {
        let mut out = String::new();
        Framing::Line.frame("{\"a\":1}", &mut out);
        Framing::OctetCounting.frame("<14>1 é", &mut out);
        assert_eq!(out, "{\"a\":1}\n8 <14>1 é");
        assert_eq!(
            out.as_bytes()[8..],
            crate::octet_counting_frame("<14>1 é".as_bytes())[..]
        );
    }
}
