//! `govledger export --format F [--to DEST] [--from SEQ|TIME|checkpoint:K]
//! [--sink NAME [--reset]] [--follow] ...`: SIEM export.
//!
//! Wiring only: the records, sinks, cursors and the export loop are in
//! `govledger-export` (`pipeline`, `sink`, `cursor`). The ledger is opened
//! read-only, so this runs beside `govledger serve`. A named sink keeps its cursor
//! in its own RocksDB at `DATA/sinks/NAME/`.

use super::Ctx;
use crate::datadir::DataDir;
use crate::output::print_json;
use crate::progress::Progress;
use anyhow::{bail, Context, Result};
use govledger_export::cursor::{Position, SinkCursor};
use govledger_export::pipeline::{open_cursor, Pipeline, SinkSpec};
use govledger_export::sink::file::FILE_SYNC_BYTES;
use govledger_export::sink::{
    tls_config, Destination, FileSink, HecSink, Sink, StdoutSink, SyslogSink,
};
use govledger_export::{ExportOptions, Exporter, ExtraPattern, Format, RedactionConfig};
use govledger_ledger::store::RocksStore;
use govledger_ledger::tree::leaf_hash;
use govledger_ledger::Ledger;
use serde_json::json;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Record format: jsonl (the ledger's own), ocsf (OCSF 1.3.0), ecs (ECS 8.17),
    /// cef; to a file or stdout also syslog (RFC 5424 lines) or hec (HEC
    /// envelopes). To a syslog or HEC destination it is the message's payload.
    #[arg(long, value_parser = parse_format)]
    pub format: Format,
    /// Where records go: a FILE, `-` (stdout), syslog+tcp://HOST:PORT,
    /// syslog+tls://HOST:PORT (RFC 5424, octet-counting framing), or the
    /// http:// or https:// URL of a Splunk HTTP Event Collector (path default
    /// /services/collector/event).
    #[arg(long, value_name = "DEST", default_value = "-")]
    pub to: String,
    /// Where to start: entry SEQ, the first entry with an event time at or after
    /// TIME (RFC 3339, e.g. 2026-01-31T09:30:00Z), or right after the signed
    /// checkpoint of size K (`checkpoint:K`) [default: entry 0]. A named sink
    /// resumes from its cursor instead; --from then applies only with --reset.
    #[arg(long, value_name = "SEQ|TIME|checkpoint:K")]
    pub from: Option<String>,
    /// Keep a durable cursor under this name (DATA/sinks/NAME/): a later run, or a
    /// killed and restarted one, resumes right after the last record the sink
    /// committed. Without it nothing is remembered.
    #[arg(long, value_name = "NAME")]
    pub sink: Option<String>,
    /// Forget the sink's cursor first (the destination itself is not touched).
    #[arg(long, requires = "sink")]
    pub reset: bool,
    /// Keep exporting new entries as they are appended, until SIGINT or SIGTERM
    /// (the cursor is committed first).
    #[arg(long)]
    pub follow: bool,
    /// How often --follow looks for new entries, in milliseconds.
    #[arg(long, default_value_t = DEFAULT_POLL_MS, value_name = "MS")]
    pub poll_ms: u64,
    /// Entries per delivery (a HEC request, a syslog write) and cursor commit; a
    /// file sink fsyncs and commits per --sync-bytes instead.
    #[arg(long, default_value_t = DEFAULT_BATCH, value_parser = clap::value_parser!(u64).range(1..=MAX_BATCH))]
    pub batch: u64,
    /// File sinks: fsync and commit the cursor once this many bytes were written
    /// since the last commit (the sync runs beside the export), and at the end; 0
    /// syncs after every batch. A crash costs rewriting up to about twice this
    /// [default: 16777216].
    #[arg(long, value_name = "BYTES")]
    pub sync_bytes: Option<u64>,
    /// Splunk HEC token (sent as `Authorization: Splunk TOKEN`).
    #[arg(long, env = "GOVLEDGER_HEC_TOKEN", hide_env_values = true)]
    pub hec_token: Option<String>,
    /// Trust only the CA certificates in this PEM file for syslog+tls and https
    /// (a private CA) instead of the system's roots.
    #[arg(long, value_name = "PEM")]
    pub ca_file: Option<PathBuf>,
    /// An extra redaction rule, NAME=REGEX (repeatable): matches become
    /// [REDACTED:NAME] (only the capture group named `secret` when the regex has
    /// one). NAME is [a-z][a-z0-9_]{0,31}, not a built-in kind.
    #[arg(long = "redact", value_name = "NAME=REGEX", value_parser = parse_redact)]
    pub redact: Vec<ExtraPattern>,
    /// Strings longer than this many bytes are redacted whole, unscanned.
    #[arg(long, value_name = "BYTES", default_value_t = govledger_export::DEFAULT_MAX_SCAN_BYTES)]
    pub max_scan_bytes: usize,
    /// Syslog facility, 0..23 (13: log audit; 16..23: local0..local7).
    #[arg(long, default_value_t = DEFAULT_SYSLOG_FACILITY)]
    pub syslog_facility: u8,
    /// Syslog SD-ID: name@<your IANA Private Enterprise Number>.
    #[arg(long, default_value = govledger_export::DEFAULT_SD_ID)]
    pub syslog_sd_id: String,
    /// Syslog HOSTNAME [default: the NILVALUE `-`].
    #[arg(long)]
    pub syslog_hostname: Option<String>,
    /// Syslog APP-NAME.
    #[arg(long, default_value = DEFAULT_SYSLOG_APP_NAME)]
    pub syslog_app_name: String,
    /// HEC `index` [default: the token's].
    #[arg(long)]
    pub hec_index: Option<String>,
    /// HEC `source` [default: the ledger's origin].
    #[arg(long)]
    pub hec_source: Option<String>,
    /// HEC `sourcetype` [default: govledger:<format>; govledger:jsonl for
    /// `--format hec` lines to a file or stdout, which always carry jsonl].
    #[arg(long)]
    pub hec_sourcetype: Option<String>,
    /// HEC `host` [default: none].
    #[arg(long)]
    pub hec_host: Option<String>,
}

/// `--poll-ms`'s default.
pub const DEFAULT_POLL_MS: u64 = 200;
/// `--batch`'s default.
pub const DEFAULT_BATCH: u64 = 1000;
/// `--batch`'s largest value.
pub const MAX_BATCH: u64 = 1_000_000;
/// `--syslog-facility`'s default (13: log audit).
pub const DEFAULT_SYSLOG_FACILITY: u8 = 13;
/// `--syslog-app-name`'s default.
pub const DEFAULT_SYSLOG_APP_NAME: &str = "govledger";

pub fn parse_format(s: &str) -> Result<Format, String> {
    s.parse()
        .map_err(|e: govledger_export::ExportError| e.to_string())
}

pub fn parse_redact(s: &str) -> Result<ExtraPattern, String> {
    let (name, regex) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?} is not NAME=REGEX"))?;
    Ok(ExtraPattern {
        name: name.to_owned(),
        regex: regex.to_owned(),
    })
}

/// The first seq to export for `--from`.
fn resolve_from(ledger: &Ledger<RocksStore>, from: &str, follow: bool) -> Result<u64> {
    let size = ledger.size();
    if let Some(k) = from.strip_prefix("checkpoint:") {
        let k: u64 = k
            .parse()
            .with_context(|| format!("--from {from}: K must be a checkpoint's tree size"))?;
        if ledger.checkpoint_at(k)?.is_none() {
            bail!("--from {from}: no checkpoint was signed at size {k} (`govledger checkpoint --latest` shows the newest)");
        }
        return Ok(k);
    }
    match super::state::parse_at(from).map_err(|e| anyhow::anyhow!("--from {from}: {e}"))? {
        super::state::At::Seq(seq) => {
            if seq > size && !follow {
                bail!(
                    "--from {seq}: the log holds entries 0 to {} only",
                    size.saturating_sub(1)
                );
            }
            Ok(seq)
        }
        // The first entry at or after TIME: every entry before it is at or before
        // TIME - 1 ns (event times only grow along the log).
        super::state::At::Time(t) => match t.checked_sub(1) {
            None => Ok(0),
            Some(before) => Ok(govledger_replay::count_until(ledger, before)?),
        },
    }
}

/// SIGINT and SIGTERM set the returned flag (handlers installed before return).
fn stop_on_signals() -> Result<Arc<AtomicBool>> {
    use tokio::signal::unix::{signal, SignalKind};
    let stop = Arc::new(AtomicBool::new(false));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (mut int, mut term) = rt.block_on(async {
        Ok::<_, std::io::Error>((
            signal(SignalKind::interrupt())?,
            signal(SignalKind::terminate())?,
        ))
    })?;
    let flag = stop.clone();
    std::thread::spawn(move || {
        rt.block_on(async {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
        });
        flag.store(true, Ordering::SeqCst);
    });
    Ok(stop)
}

/// What to do with `from` when the named sink already has a cursor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FromOnResume {
    /// Refuse (the command line: `--from` must then come with `--reset`).
    Refuse,
    /// Ignore it (serve's config file, which keeps saying it on every start).
    Ignore,
}

/// An export run ready to go: settings checked, sink and cursor opened, start
/// resolved. Both `govledger export` and the sinks of `govledger serve` get theirs
/// from [`prepare`].
pub struct Prepared {
    pub pipeline: Pipeline,
    pub to: Destination,
    /// The first entry this run exports.
    pub start_seq: u64,
    /// Entries in the ledger from `start_seq` on when it was prepared.
    pub total: u64,
    /// The poll interval when following.
    pub follow: Option<Duration>,
}

/// Checks `args`, opens the named sink's cursor and the destination, and resolves
/// where to start: everything an export run does before its first record.
pub fn prepare(data: &DataDir, args: &Args, from_on_resume: FromOnResume) -> Result<Prepared> {
    let to = Destination::parse(&args.to)?;
    let spec = SinkSpec {
        format: args.format,
        to: to.clone(),
    };
    let mut options = ExportOptions::default();
    options.syslog.facility = args.syslog_facility;
    options.syslog.sd_id = args.syslog_sd_id.clone();
    options.syslog.hostname = args.syslog_hostname.clone();
    options.syslog.app_name = args.syslog_app_name.clone();
    options.hec.index = args.hec_index.clone();
    options.hec.source = args.hec_source.clone();
    options.hec.sourcetype = args.hec_sourcetype.clone();
    options.hec.host = args.hec_host.clone();
    let render_format = spec.render_format(&mut options)?;
    let redaction = RedactionConfig {
        max_scan_bytes: args.max_scan_bytes,
        extra_patterns: args.redact.clone(),
    };
    let exporter = Exporter::new(options, &redaction)?;
    let tls = if to.uses_tls() {
        Some(tls_config(args.ca_file.as_deref())?)
    } else {
        if args.ca_file.is_some() {
            bail!("--ca-file applies to syslog+tls:// and https:// destinations only");
        }
        None
    };
    if args.sync_bytes.is_some() && !matches!(to, Destination::File(_)) {
        bail!("--sync-bytes applies to file destinations only");
    }
    // A network sink's settings are checked before its cursor is touched.
    let network: Option<Box<dyn Sink>> = match &to {
        Destination::Syslog { host, port, .. } => Some(Box::new(SyslogSink::new(host, *port, tls))),
        Destination::Hec(url) => {
            let token = args.hec_token.as_deref().unwrap_or("");
            Some(Box::new(HecSink::new(url.clone(), token, tls)?))
        }
        Destination::Stdout | Destination::File(_) => None,
    };

    let ledger = data.open_ro()?;
    // The cursor, if named: where to resume, and the sink's committed length.
    let (cursor, resumed) = match &args.sink {
        None => (None, None),
        Some(name) => {
            let dir = SinkCursor::dir(&data.path.join("sinks"), name)?;
            let (cursor, pos) = open_cursor(name, &dir, &spec, args.reset)?;
            (Some((name.clone(), cursor)), pos)
        }
    };
    let from = match (resumed, &args.from, from_on_resume) {
        (Some(pos), Some(from), FromOnResume::Refuse) => bail!(
            "sink {:?} resumes at entry {}; --from {from} applies to a new sink: drop --from, or add --reset to start the sink over",
            args.sink.as_deref().unwrap_or(""),
            pos.next_seq
        ),
        (Some(_), Some(_), FromOnResume::Ignore) => None,
        (_, from, _) => from.as_deref(),
    };
    let start_seq = match (&resumed, from) {
        (Some(pos), _) => pos.next_seq,
        (None, Some(from)) => resolve_from(&ledger, from, args.follow)?,
        (None, None) => 0,
    };
    let total = ledger.size().saturating_sub(start_seq);
    // A new sink remembers the entry before its first, so that its cursor is never
    // resumed against another ledger.
    let last_leaf = match start_seq.checked_sub(1) {
        Some(prev) if resumed.is_none() && prev < ledger.size() => {
            leaf_hash(&ledger.entry(prev)?.0)
        }
        _ => [0; 32],
    };
    drop(ledger);

    let mut sink: Box<dyn Sink> = match (&to, network) {
        (_, Some(sink)) => sink,
        (Destination::File(path), None) => Box::new(
            match (&cursor, resumed) {
                (None, _) => FileSink::create(path)?,
                (Some(_), Some(pos)) => FileSink::resume(path, pos.sink_len)?,
                (Some(_), None) => FileSink::append(path)?,
            }
            .with_sync_bytes(args.sync_bytes.unwrap_or(FILE_SYNC_BYTES)),
        ),
        (_, None) => Box::new(StdoutSink::default()),
    };
    let start = match resumed {
        Some(pos) => pos,
        None => Position {
            next_seq: start_seq,
            // A new file sink starts at the file's current end.
            sink_len: sink.sync()?,
            last_leaf,
        },
    };
    if let (Some((_, c)), None) = (&cursor, resumed) {
        c.start(&spec.config_json(), start)?;
    }
    let pipeline = Pipeline::new(
        exporter,
        render_format,
        sink,
        cursor,
        start,
        args.batch as usize,
    );
    Ok(Prepared {
        pipeline,
        to,
        start_seq,
        total,
        follow: args
            .follow
            .then(|| Duration::from_millis(args.poll_ms.max(1))),
    })
}

pub fn run(ctx: &Ctx, args: Args) -> Result<ExitCode> {
    // Retries are logged at warn, a file cut back at info (RUST_LOG overrides).
    super::natsargs::init_logging();
    let Prepared {
        mut pipeline,
        to,
        start_seq,
        total,
        follow,
    } = prepare(&ctx.data, &args, FromOnResume::Refuse)?;
    let stop = stop_on_signals()?;
    let to_stdout = to == Destination::Stdout;
    // No bar when following (no end) or when the records themselves go to the
    // terminal.
    let bar = (follow.is_none() && !to_stdout).then(|| Progress::new(ctx, total, "export"));
    let stats = pipeline.run(&ctx.data.db(), follow, &stop, &mut |n| {
        if let Some(b) = &bar {
            b.set(n)
        }
    })?;
    if let Some(b) = &bar {
        b.finish();
    }

    let summary = json!({
        "sink": args.sink,
        "format": args.format.as_str(),
        "to": to.describe(),
        "from": start_seq,
        "exported": stats.exported,
        "next_seq": stats.next_seq,
        "sink_len": stats.sink_len,
        "retries": stats.retries,
        "stopped": stats.stopped,
    });
    if ctx.json {
        if to_stdout {
            eprintln!("{summary}");
        } else {
            print_json(&summary);
        }
    } else {
        let line = format!(
            "exported {} records (entries {} to {}) to {}{}",
            stats.exported,
            start_seq,
            stats.next_seq,
            to.describe(),
            match &args.sink {
                Some(n) => format!("; sink {n} resumes at entry {}", stats.next_seq),
                None => String::new(),
            }
        );
        if to_stdout {
            eprintln!("{line}");
        } else {
            println!("{line}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
