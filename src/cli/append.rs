//! `govledger append [FILE|-]`: JSON lines (as `gen` writes them) through admission.

use super::Ctx;
use crate::output::{b64, print_json};
use anyhow::{Context, Result};
use govledger_ingest::snapshots::{self, SnapshotPolicy};
use govledger_ingest::{Admission, Line, Message};
use govledger_ledger::store::RocksStore;
use govledger_ledger::Ledger;
use govledger_projections::DetectConfig;
use govledger_schemas::{DecodeLimits, Verdict};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Input file of JSON lines; `-` or nothing reads standard input.
    pub input: Option<PathBuf>,
    /// Entries per atomic batch (one synced RocksDB WriteBatch each).
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub batch: u64,
    /// Largest body accepted, in bytes; larger ones are rejected as `oversized`.
    #[arg(long, default_value_t = 65_536)]
    pub max_body_bytes: usize,
    /// Do not sign a checkpoint at the end.
    #[arg(long)]
    pub no_checkpoint: bool,
    /// Exactly-once for one input file: record each entry's line number as its
    /// stream sequence and the last whole batch's line as the log's cursor, and skip
    /// lines at or below the cursor. Re-running the same command after a crash
    /// appends the rest, never a line twice. The cursor is the one `serve` keeps,
    /// so a ledger that `serve` feeds refuses --resume (and `serve` one built
    /// with it).
    #[arg(long)]
    pub resume: bool,
    /// After the checkpoint, write a state snapshot if N entries were folded since
    /// the newest one (0: never); `serve --snapshot-every` is the same rule.
    #[arg(long, default_value_t = SnapshotPolicy::default().every)]
    pub snapshot_every: u64,
}

/// Rebuilds admission state (the key ring) from the entries already in the log.
pub fn admission_for(
    ctx: &Ctx,
    ledger: &Ledger<RocksStore>,
    limits: DecodeLimits,
) -> Result<Admission> {
    admission_with(ctx, ledger, limits, DetectConfig::default())
}

/// [`admission_for`] with these detection rules.
pub fn admission_with(
    ctx: &Ctx,
    ledger: &Ledger<RocksStore>,
    limits: DecodeLimits,
    detect: DetectConfig,
) -> Result<Admission> {
    admission_from(ctx, ledger, limits, detect, ledger.size(), true, true)
}

/// Admission as after the first `end` entries: from the newest usable snapshot at
/// or below `end` (see `govledger_ingest::snapshots`) when `use_snapshots`, then
/// the entries after it.
pub fn admission_at(
    ctx: &Ctx,
    ledger: &Ledger<RocksStore>,
    limits: DecodeLimits,
    detect: DetectConfig,
    end: u64,
    use_snapshots: bool,
) -> Result<Admission> {
    admission_from(ctx, ledger, limits, detect, end, use_snapshots, false)
}

/// [`admission_at`]; `writing` for a state that signs checkpoints, which
/// starts only from a snapshot that carries ordinals
/// (`govledger_ingest::snapshots::start_for_writing`; `end` is then the
/// ledger's size).
fn admission_from(
    ctx: &Ctx,
    ledger: &Ledger<RocksStore>,
    limits: DecodeLimits,
    detect: DetectConfig,
    end: u64,
    use_snapshots: bool,
    writing: bool,
) -> Result<Admission> {
    let trust = ctx.data.trust()?;
    let verifier = if use_snapshots {
        ctx.data.verifier().ok()
    } else {
        None
    };
    let (mut adm, from) = match verifier {
        Some(verifier) => {
            let s = if writing {
                snapshots::start_for_writing(ledger, &trust, &verifier, limits)?
            } else {
                snapshots::start(ledger, &trust, &verifier, limits, end)?
            };
            if s.from > 0 {
                tracing::info!(size = s.from, "state restored from a snapshot");
            }
            if writing
                && s.skipped
                    .iter()
                    .any(|(_, why)| snapshots::for_want_of_ordinals(why))
            {
                tracing::info!(
                    from = s.from,
                    "newer snapshots carry no ordinals that a version-3 state digest covers \
                     (written before state digest v3): folding from an older point once; \
                     the next checkpoint writes a snapshot that carries them"
                );
            }
            (s.admission, s.from)
        }
        // Without the log key, no checkpoint (hence no snapshot) can be checked.
        None => (Admission::new(&trust, limits)?, 0),
    };
    adm.set_detect_config(detect);
    // A long fold (a large log without a usable snapshot, or the one fold
    // from an older point after an upgrade) says how far it is, every few
    // seconds, and how long it took.
    let (began, mut said) = (std::time::Instant::now(), std::time::Instant::now());
    let total = end.saturating_sub(from);
    govledger_replay::fold(&mut adm, ledger, from, end, &mut |done| {
        if said.elapsed() >= std::time::Duration::from_secs(5) {
            said = std::time::Instant::now();
            tracing::info!(from, done, total, "folding the log to restore the state");
        }
    })?;
    if began.elapsed() >= std::time::Duration::from_secs(5) {
        tracing::info!(
            from,
            total,
            seconds = began.elapsed().as_secs_f64(),
            "state restored: the log folded"
        );
    }
    Ok(adm)
}

pub fn run(ctx: &Ctx, args: Args) -> Result<ExitCode> {
    let mut ledger = ctx.data.open_rw()?;
    let signer = ctx.data.signer()?;
    let mut adm = admission_for(
        ctx,
        &ledger,
        DecodeLimits {
            max_body_bytes: args.max_body_bytes,
        },
    )?;
    let reader: Box<dyn BufRead> = match &args.input {
        None => Box::new(std::io::stdin().lock()),
        Some(p) if p.as_os_str() == "-" => Box::new(std::io::stdin().lock()),
        Some(p) => Box::new(std::io::BufReader::new(
            std::fs::File::open(p).with_context(|| format!("cannot open {}", p.display()))?,
        )),
    };
    let start = ledger.size();
    let show_progress = !ctx.json && std::io::IsTerminal::is_terminal(&std::io::stderr());
    let mut accepted = 0u64;
    let mut rejected: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut warnings: Vec<Value> = Vec::new();
    let mut detections: Vec<Value> = Vec::new();
    let mut batch: Vec<Message> = Vec::new();
    let skip_to = if args.resume {
        // Refused when `serve` feeds this ledger: its cursor is a stream's.
        ledger.claim_cursor(govledger_ledger::CursorSource::Lines)?;
        ledger.cursor()?.unwrap_or(0)
    } else {
        0
    };
    let mut last_line = skip_to;
    // Admits the batch (signatures checked on every core), tallies, appends.
    let mut flush = |ledger: &mut Ledger<RocksStore>,
                     adm: &mut Admission,
                     batch: &mut Vec<Message>,
                     last_line: u64|
     -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let refs: Vec<&Message> = batch.iter().collect();
        let mut entries = adm.admit_batch(&refs, &|tenant, id| {
            ledger.find_event(tenant, id).map(|s| s.is_some())
        })?;
        for entry in &entries {
            match &entry.verdict {
                Verdict::Accepted { .. } => accepted += 1,
                Verdict::Rejected { reason, .. } => {
                    *rejected.entry(reason.as_str()).or_default() += 1
                }
            }
        }
        let cursor = args.resume.then_some(last_line);
        let appended = ledger.append(&mut entries, cursor)?;
        let raised = govledger_ingest::alerts::raised(
            &entries,
            &appended,
            adm.take_warnings(),
            adm.take_detections(),
        );
        for (_, alert) in raised {
            match alert["kind"].as_str() {
                Some("budget_warning") => warnings.push(alert),
                _ => detections.push(alert),
            }
        }
        batch.clear();
        adm.end_batch();
        Ok(())
    };
    for (n, line) in reader.lines().enumerate() {
        let line_no = n as u64 + 1;
        let line = line.with_context(|| format!("reading input line {line_no}"))?;
        if line_no <= skip_to || line.trim().is_empty() {
            continue;
        }
        let parsed: Line = serde_json::from_str(&line)
            .with_context(|| format!("input line {line_no} is not a govledger message line"))?;
        let mut msg = parsed
            .to_message()
            .map_err(|e| anyhow::anyhow!("input line {line_no}: {e}"))?;
        if args.resume {
            msg.stream_seq = line_no;
        }
        last_line = line_no;
        batch.push(msg);
        if batch.len() as u64 >= args.batch {
            flush(&mut ledger, &mut adm, &mut batch, last_line)?;
            if show_progress {
                eprint!("\rappended {} entries", ledger.size() - start);
            }
        }
    }
    flush(&mut ledger, &mut adm, &mut batch, last_line)?;
    if show_progress {
        eprintln!("\rappended {} entries", ledger.size() - start);
    }
    let cp = if args.no_checkpoint {
        None
    } else {
        Some(ledger.checkpoint(&signer, Some(adm.state_digest()))?)
    };
    let policy = SnapshotPolicy {
        every: args.snapshot_every,
        ..SnapshotPolicy::default()
    };
    let snapshot = match &cp {
        Some(c) => snapshots::after_checkpoint(&ledger, &adm, &c.checkpoint, policy)?,
        None => None,
    };
    let root = ledger.root()?;
    let appended = ledger.size() - start;
    if ctx.json {
        print_json(&json!({
            "appended": appended,
            "accepted": accepted,
            "rejected": rejected,
            "budget_warnings": warnings,
            "detections": detections,
            "size": ledger.size(),
            "root": b64(&root),
            "checkpoint": cp.map(|c| c.note),
            "snapshot": snapshot.map(|w| json!({"size": w.size, "bytes": w.bytes})),
        }));
    } else {
        println!(
            "appended {appended} entries ({accepted} accepted, {} rejected); log size {}",
            appended - accepted,
            ledger.size()
        );
        for (reason, n) in &rejected {
            println!("  rejected {reason}: {n}");
        }
        for d in &detections {
            println!(
                "  detection {}: {} (entry {})",
                d["rule"].as_str().unwrap_or_default(),
                d["detail"].as_str().unwrap_or_default(),
                d["seq"]
            );
        }
        for w in &warnings {
            println!(
                "  budget warning: {} {} of {} reached {}% of {} ({}) at entry {}",
                w["tenant"].as_str().unwrap_or_default(),
                w["budget_id"].as_str().unwrap_or_default(),
                w["measure"].as_str().unwrap_or_default(),
                w["threshold_pct"],
                w["limit"],
                w["used"],
                w["seq"]
            );
        }
        match cp {
            Some(c) => println!(
                "checkpoint at size {}: root {}",
                c.checkpoint.size,
                b64(&root)
            ),
            None => println!("root {} (no checkpoint signed)", b64(&root)),
        }
        if let Some(w) = snapshot {
            println!("snapshot at size {} ({} bytes)", w.size, w.bytes);
        }
    }
    super::let_go(adm);
    Ok(ExitCode::SUCCESS)
}
