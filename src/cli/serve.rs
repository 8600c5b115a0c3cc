//! `govledger serve`: consume the JetStream stream into the ledger.

use super::export::{self, FromOnResume, Prepared};
use super::natsargs::{init_logging, read_toml, runtime, NatsArgs, NatsFile, StreamFile};
use super::Ctx;
use crate::output::print_json;
use anyhow::{anyhow, bail, Context, Result};
use govledger_export::cursor::check_sink_name;
use govledger_export::pipeline::{PipelineError, RunStats};
use govledger_export::sink::Destination;
use govledger_ingest::metrics::Metrics;
use govledger_ingest::serve::{run, ServeConfig};
use govledger_ingest::snapshots::SnapshotPolicy;
use govledger_projections::DetectConfig;
use govledger_schemas::DecodeLimits;
use serde::Deserialize;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// Consume governance events from NATS JetStream: verify, append, checkpoint, receipt.
///
/// Settings come from flags, then environment variables, then the TOML file given
/// with --config (tables [nats], [stream], [serve], [detect]), then defaults. Each
/// [[serve.sinks]] table of the file is a SIEM exporter that serve runs beside its
/// consumer, as `govledger export --sink NAME --follow` would.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub nats: NatsArgs,
    /// TOML config file (see README, "Configuration").
    #[arg(long, env = "GOVLEDGER_CONFIG")]
    pub config: Option<PathBuf>,
    /// Most messages per batch; each batch is one synced WriteBatch [default: 1024].
    #[arg(long)]
    pub batch_max: Option<usize>,
    /// Longest a message waits for its batch to fill, in ms. 0 (the default) is group
    /// commit: a batch is committed as soon as no further message is ready, and grows
    /// under load while the previous one syncs.
    #[arg(long)]
    pub batch_wait_ms: Option<u64>,
    /// Sign a checkpoint every N new entries; 0 turns it off [default: 10000].
    #[arg(long)]
    pub checkpoint_every: Option<u64>,
    /// Sign a checkpoint at least every MS milliseconds while entries arrive; 0 turns
    /// it off (cosigning replicas must use count-only checkpoints) [default: 1000].
    #[arg(long)]
    pub checkpoint_ms: Option<u64>,
    /// Address for /healthz and /metrics; `off` disables [default: 127.0.0.1:9464].
    #[arg(long, env = "GOVLEDGER_HTTP")]
    pub http: Option<String>,
    /// Largest body accepted, in bytes [default: 65536].
    #[arg(long)]
    pub max_body_bytes: Option<usize>,
    /// Exit once the ledger holds this many entries (catch-up runs, tests).
    #[arg(long)]
    pub stop_at_size: Option<u64>,
    /// Write a state snapshot at the first checkpoint after N entries since the
    /// newest one, so starts and queries need not fold the whole log; 0 turns it
    /// off [default: 100000].
    #[arg(long)]
    pub snapshot_every: Option<u64>,
    /// Snapshots to keep; older ones are deleted [default: 3].
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub snapshot_keep: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ServeFile {
    batch_max: Option<usize>,
    batch_wait_ms: Option<u64>,
    checkpoint_every: Option<u64>,
    checkpoint_ms: Option<u64>,
    http: Option<String>,
    max_body_bytes: Option<usize>,
    snapshot_every: Option<u64>,
    snapshot_keep: Option<u64>,
    /// `[[serve.sinks]]`: exporters run inside serve.
    #[serde(default)]
    sinks: Vec<SinkFile>,
}

/// One `[[serve.sinks]]` table: the settings of `govledger export --sink NAME
/// --follow`, except the HEC token, which is read from the environment variable
/// `hec_token_env` names (never written in the file).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SinkFile {
    name: String,
    format: String,
    to: String,
    /// Where a new sink starts (ignored once it has a cursor).
    from: Option<String>,
    poll_ms: Option<u64>,
    batch: Option<u64>,
    sync_bytes: Option<u64>,
    hec_token_env: Option<String>,
    ca_file: Option<PathBuf>,
    #[serde(default)]
    redact: Vec<String>,
    max_scan_bytes: Option<usize>,
    syslog_facility: Option<u8>,
    syslog_sd_id: Option<String>,
    syslog_hostname: Option<String>,
    syslog_app_name: Option<String>,
    hec_index: Option<String>,
    hec_source: Option<String>,
    hec_sourcetype: Option<String>,
    hec_host: Option<String>,
}

/// The environment variable a HEC sink's token is read from by default.
const DEFAULT_HEC_TOKEN_ENV: &str = "GOVLEDGER_HEC_TOKEN";

impl SinkFile {
    /// The `govledger export` arguments this table stands for, and its
    /// destination; errors name the key.
    fn args(&self) -> Result<(export::Args, Destination)> {
        check_sink_name(&self.name).map_err(|e| anyhow!("name: {e}"))?;
        let format = export::parse_format(&self.format)
            .map_err(|e| anyhow!("format = {:?}: {e}", self.format))?;
        let to = Destination::parse(&self.to).map_err(|e| anyhow!("to = {:?}: {e}", self.to))?;
        if to == Destination::Stdout {
            bail!("to = \"-\": a sink inside serve goes to a file, syslog+tcp://, syslog+tls:// or a HEC URL, not to serve's stdout");
        }
        let hec_token = match (&to, &self.hec_token_env) {
            (Destination::Hec(_), var) => {
                let var = var.as_deref().unwrap_or(DEFAULT_HEC_TOKEN_ENV);
                match std::env::var(var) {
                    Ok(t) if !t.trim().is_empty() => Some(t),
                    _ => bail!(
                        "hec_token_env = {var:?}: the environment variable {var} is not set or empty (it holds the HEC token, which never goes in the file)"
                    ),
                }
            }
            (_, Some(_)) => bail!(
                "hec_token_env applies to http:// and https:// (Splunk HEC) destinations only"
            ),
            (_, None) => None,
        };
        let batch = self.batch.unwrap_or(export::DEFAULT_BATCH);
        if !(1..=export::MAX_BATCH).contains(&batch) {
            bail!("batch = {batch}: use 1 to {}", export::MAX_BATCH);
        }
        let redact = self
            .redact
            .iter()
            .map(|r| export::parse_redact(r).map_err(|e| anyhow!("redact = {r:?}: {e}")))
            .collect::<Result<Vec<_>>>()?;
        let args = export::Args {
            format,
            to: self.to.clone(),
            from: self.from.clone(),
            sink: Some(self.name.clone()),
            reset: false,
            follow: true,
            poll_ms: self.poll_ms.unwrap_or(export::DEFAULT_POLL_MS),
            batch,
            sync_bytes: self.sync_bytes,
            hec_token,
            ca_file: self.ca_file.clone(),
            redact,
            max_scan_bytes: self
                .max_scan_bytes
                .unwrap_or(govledger_export::DEFAULT_MAX_SCAN_BYTES),
            syslog_facility: self
                .syslog_facility
                .unwrap_or(export::DEFAULT_SYSLOG_FACILITY),
            syslog_sd_id: self
                .syslog_sd_id
                .clone()
                .unwrap_or_else(|| govledger_export::DEFAULT_SD_ID.to_owned()),
            syslog_hostname: self.syslog_hostname.clone(),
            syslog_app_name: self
                .syslog_app_name
                .clone()
                .unwrap_or_else(|| export::DEFAULT_SYSLOG_APP_NAME.to_owned()),
            hec_index: self.hec_index.clone(),
            hec_source: self.hec_source.clone(),
            hec_sourcetype: self.hec_sourcetype.clone(),
            hec_host: self.hec_host.clone(),
        };
        Ok((args, to))
    }
}

/// Checks every `[[serve.sinks]]` table of `config`, then prepares each run
/// (cursor opened, destination opened, start resolved): all before serve consumes
/// anything, and no cursor is touched while any table is wrong.
fn prepare_sinks(ctx: &Ctx, sinks: &[SinkFile], config: &Path) -> Result<Vec<(String, Prepared)>> {
    let context = |s: &SinkFile| {
        format!(
            "sink {:?} in [[serve.sinks]] of {}",
            s.name,
            config.display()
        )
    };
    let mut names = BTreeSet::new();
    let mut files: BTreeMap<String, &str> = BTreeMap::new();
    let mut checked = Vec::with_capacity(sinks.len());
    for s in sinks {
        if !names.insert(s.name.as_str()) {
            bail!(
                "{}: name: two sinks have this name; each needs its own",
                context(s)
            );
        }
        let (args, to) = s.args().with_context(|| context(s))?;
        if let Destination::File(_) = &to {
            if let Some(other) = files.insert(to.describe(), &s.name) {
                bail!(
                    "{}: to = {:?}: sink {other:?} writes this file too",
                    context(s),
                    s.to
                );
            }
        }
        checked.push((s, args));
    }
    checked
        .into_iter()
        .map(|(s, args)| {
            let prepared = export::prepare(&ctx.data, &args, FromOnResume::Ignore)
                .map_err(|e| match e.downcast_ref::<PipelineError>() {
                    // `export`'s advice (--reset, --sink) is no flag of serve's.
                    Some(PipelineError::ConfigMismatch { stored, asked, .. }) => anyhow!(
                        "format, to: the sink's cursor was made for {stored}; this table asks for \
                         {asked}: give the table a new name to start a new sink, or, with serve \
                         stopped, remove the old one's cursor ({}) to start this one over",
                        ctx.data.path.join("sinks").join(&s.name).display()
                    ),
                    _ => e,
                })
                .with_context(|| context(s))?;
            Ok((s.name.clone(), prepared))
        })
        .collect()
}

/// The sinks running inside serve, each in a thread of its own.
struct Sinks {
    stop: Arc<AtomicBool>,
    running: Vec<RunningSink>,
}

struct RunningSink {
    name: String,
    to: String,
    start_seq: u64,
    exported: Arc<AtomicU64>,
    handle: Option<JoinHandle<Result<RunStats, PipelineError>>>,
}

impl Sinks {
    /// Starts the prepared sinks, each following the store at `db` read-only.
    fn start(prepared: Vec<(String, Prepared)>, db: &Path, metrics: &Metrics) -> Result<Sinks> {
        let stop = Arc::new(AtomicBool::new(false));
        let mut sinks = Sinks {
            stop: stop.clone(),
            running: Vec::with_capacity(prepared.len()),
        };
        for (name, p) in prepared {
            let Prepared {
                mut pipeline,
                to,
                start_seq,
                follow,
                ..
            } = p;
            let exported = Arc::new(AtomicU64::new(0));
            let shown = metrics.add_sink(&name);
            shown.next_seq.store(start_seq, Ordering::Relaxed);
            let (db, stop, count, thread_name) = (
                db.to_path_buf(),
                stop.clone(),
                exported.clone(),
                name.clone(),
            );
            let to = to.describe();
            tracing::info!(sink = %name, to = %to, from = start_seq, "sink exporting");
            let handle = std::thread::Builder::new()
                .name(format!("sink-{name}"))
                .spawn(move || {
                    let _span = tracing::info_span!("sink", name = %thread_name).entered();
                    let result = pipeline.run(&db, follow, &stop, &mut |n| {
                        count.store(n, Ordering::Relaxed);
                        shown.exported.store(n, Ordering::Relaxed);
                        shown.next_seq.store(start_seq + n, Ordering::Relaxed);
                    });
                    if let Err(e) = &result {
                        shown.up.store(false, Ordering::Relaxed);
                        // Alert-like: serve goes on ingesting; the sink is down until
                        // serve restarts, then resumes at its cursor.
                        tracing::error!(
                            alert = "export_sink_failed",
                            sink = %thread_name,
                            error = %e,
                            "sink {thread_name} stopped: {e}; serve goes on ingesting without it (fix the cause and restart serve: the sink resumes at its cursor)"
                        );
                    }
                    result
                })
                .with_context(|| format!("cannot start a thread for sink {name:?}"))?;
            sinks.running.push(RunningSink {
                name,
                to,
                start_seq,
                exported,
                handle: Some(handle),
            });
        }
        Ok(sinks)
    }

    /// Stops every sink (each commits what it delivered) and waits for them: one
    /// summary object per sink.
    fn stop(&mut self) -> Vec<serde_json::Value> {
        self.stop.store(true, Ordering::SeqCst);
        self.running
            .iter_mut()
            .map(|s| {
                let exported = s.exported.load(Ordering::Relaxed);
                let (stats, error) = match s.handle.take().map(JoinHandle::join) {
                    Some(Ok(Ok(stats))) => (Some(stats), None),
                    Some(Ok(Err(e))) => (None, Some(e.to_string())),
                    Some(Err(_)) => (None, Some("the sink's thread panicked".to_owned())),
                    None => (None, None),
                };
                let next_seq = stats.map_or(s.start_seq + exported, |st| st.next_seq);
                tracing::info!(sink = %s.name, exported, next_seq, "sink stopped");
                json!({
                    "name": s.name,
                    "to": s.to,
                    "exported": stats.map_or(exported, |st| st.exported),
                    "next_seq": next_seq,
                    "retries": stats.map(|st| st.retries),
                    "error": error,
                })
            })
            .collect()
    }
}

impl Drop for Sinks {
    /// An early return (serve failed to start) still stops the sinks cleanly.
    fn drop(&mut self) {
        if self.running.iter().any(|s| s.handle.is_some()) {
            self.stop();
        }
    }
}

/// The `[detect]` table: detection rules' thresholds (0 turns a rule off).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct DetectFile {
    velocity_max: Option<u32>,
    velocity_window_ms: Option<u64>,
    risk_escalation: Option<bool>,
    denials_max: Option<u32>,
}

impl DetectFile {
    fn config(&self) -> DetectConfig {
        let d = DetectConfig::default();
        DetectConfig {
            velocity_max: self.velocity_max.unwrap_or(d.velocity_max),
            velocity_window_ns: self
                .velocity_window_ms
                .map(|ms| ms.saturating_mul(1_000_000))
                .unwrap_or(d.velocity_window_ns),
            risk_escalation: self.risk_escalation.unwrap_or(d.risk_escalation),
            denials_max: self.denials_max.unwrap_or(d.denials_max),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    #[serde(default)]
    nats: NatsFile,
    #[serde(default)]
    stream: StreamFile,
    #[serde(default)]
    serve: ServeFile,
    #[serde(default)]
    detect: DetectFile,
}

pub fn run_cmd(ctx: &Ctx, args: Args) -> Result<ExitCode> {
    init_logging();
    let file: ConfigFile = match &args.config {
        Some(p) => read_toml(p)?,
        None => ConfigFile::default(),
    };
    let (nats, stream) = args
        .nats
        .resolve(&file.nats, &file.stream, "govledger serve")?;
    let d = ServeConfig::default();
    let cfg = ServeConfig {
        nats,
        stream,
        batch_max: args
            .batch_max
            .or(file.serve.batch_max)
            .unwrap_or(d.batch_max)
            .max(1),
        batch_wait: args
            .batch_wait_ms
            .or(file.serve.batch_wait_ms)
            .map(Duration::from_millis)
            .unwrap_or(d.batch_wait),
        checkpoint_every: args
            .checkpoint_every
            .or(file.serve.checkpoint_every)
            .unwrap_or(d.checkpoint_every),
        checkpoint_interval: args
            .checkpoint_ms
            .or(file.serve.checkpoint_ms)
            .map(Duration::from_millis)
            .unwrap_or(d.checkpoint_interval),
        stop_at_size: args.stop_at_size,
        snapshots: SnapshotPolicy {
            every: args
                .snapshot_every
                .or(file.serve.snapshot_every)
                .unwrap_or(d.snapshots.every),
            keep: match args.snapshot_keep.or(file.serve.snapshot_keep) {
                Some(0) => anyhow::bail!("snapshot_keep must be at least 1"),
                Some(n) => usize::try_from(n).unwrap_or(usize::MAX),
                None => d.snapshots.keep,
            },
        },
    };
    let http = args
        .http
        .or(file.serve.http)
        .unwrap_or_else(|| "127.0.0.1:9464".into());
    let http: Option<SocketAddr> = match http.as_str() {
        "off" | "" => None,
        a => Some(
            a.parse()
                .with_context(|| format!("--http {a:?} is not an address like 127.0.0.1:9464"))?,
        ),
    };
    let limits = DecodeLimits {
        max_body_bytes: args
            .max_body_bytes
            .or(file.serve.max_body_bytes)
            .unwrap_or(65_536),
    };

    // Every sink is checked and opened before serve consumes anything.
    let prepared = match &args.config {
        Some(path) => prepare_sinks(ctx, &file.serve.sinks, path)?,
        None => Vec::new(),
    };

    let ledger = ctx.data.open_rw()?;
    let signer = ctx.data.signer()?;
    let admission = super::append::admission_with(ctx, &ledger, limits, file.detect.config())?;
    let state = govledger_ingest::serve::shared(admission);
    let metrics = Arc::new(Metrics::new());
    let rt = runtime()?;
    let json_out = ctx.json;
    rt.block_on(async move {
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        if let Some(addr) = http {
            let listener = govledger_ingest::http::bind(addr).await.with_context(|| {
                format!("cannot listen on {addr} for /metrics (use --http off or another port)")
            })?;
            let mut rx = stop_rx.clone();
            let m = metrics.clone();
            let st = state.clone();
            tokio::spawn(async move {
                let _ = govledger_ingest::http::serve(listener, m, Some(st), async move {
                    let _ = rx.wait_for(|s| *s).await;
                })
                .await;
            });
            tracing::info!(%addr, "serving /healthz, /metrics and /v1/state");
        }
        let shutdown = async {
            let term = async {
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(mut s) => {
                        s.recv().await;
                    }
                    Err(_) => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term => {}
            }
            tracing::info!("stopping after the batch in hand");
        };
        // The sinks read the store read-only, beside the consumer that writes it.
        let mut sinks = Sinks::start(prepared, &ctx.data.db(), &metrics)?;
        let result = run(cfg, ledger, state, signer, metrics.clone(), shutdown).await;
        let _ = stop_tx.send(true);
        // Each sink commits what it delivered and stops before serve exits.
        let sink_summaries = tokio::task::block_in_place(|| sinks.stop());
        let ledger = result?;
        let peak = peak_rss_bytes();
        tracing::info!(
            size = ledger.size(),
            consumed = metrics.consumed(),
            peak_rss_bytes = peak,
            "stopped"
        );
        let rejected: serde_json::Map<String, serde_json::Value> = metrics
            .rejected()
            .into_iter()
            .map(|(r, n)| (r.as_str().to_string(), n.into()))
            .collect();
        let summary = json!({
            "size": ledger.size(),
            "cursor": ledger.cursor()?,
            "consumed": metrics.consumed(),
            "accepted": metrics.accepted(),
            "rejected": rejected,
            "last_checkpoint": ledger.latest_checkpoint()?.map(|c| c.checkpoint.size),
            "peak_rss_bytes": peak,
            "sinks": sink_summaries,
        });
        if json_out {
            print_json(&summary);
        } else {
            println!(
                "stopped: {} entries in the ledger, {} consumed this run ({} accepted), stream cursor {}",
                ledger.size(),
                metrics.consumed(),
                metrics.accepted(),
                summary["cursor"]
            );
            for s in &sink_summaries {
                println!(
                    "sink {}: {} records exported this run, resumes at entry {}{}",
                    s["name"].as_str().unwrap_or(""),
                    s["exported"],
                    s["next_seq"],
                    match s["error"].as_str() {
                        Some(e) => format!(" (stopped by an error: {e})"),
                        None => String::new(),
                    }
                );
            }
        }
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(ExitCode::SUCCESS)
}

/// The process's peak resident memory (Linux `VmHWM`), when the kernel says.
fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse::<u64>()
        .ok()?;
    Some(kib * 1024)
}
