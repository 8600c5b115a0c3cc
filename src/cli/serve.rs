//! `govledger serve`: consume the JetStream stream into the ledger.

use super::natsargs::{init_logging, read_toml, runtime, NatsArgs, NatsFile, StreamFile};
use super::Ctx;
use crate::output::print_json;
use anyhow::{Context, Result};
use govledger_ingest::metrics::Metrics;
use govledger_ingest::serve::{run, ServeConfig};
use govledger_ingest::snapshots::SnapshotPolicy;
use govledger_projections::DetectConfig;
use govledger_schemas::DecodeLimits;
use serde::Deserialize;
use serde_json::json;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// Consume governance events from NATS JetStream: verify, append, checkpoint, receipt.
///
/// Settings come from flags, then environment variables, then the TOML file given
/// with --config (tables [nats], [stream], [serve]), then defaults.
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
        let result = run(cfg, ledger, state, signer, metrics.clone(), shutdown).await;
        let _ = stop_tx.send(true);
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
