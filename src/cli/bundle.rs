//! `govledger bundle --agent A [--from T1] [--to T2] -o FILE`: an incident bundle,
//! and `govledger verify-bundle FILE [--key VKEY]`: its offline check. The format
//! is in README ("Incident bundles") and `govledger_replay::bundle`.

use super::timeline::{FilterArgs, RangeArgs};
use super::Ctx;
use crate::output::print_json;
use crate::progress::Progress;
use anyhow::{Context, Result};
use govledger_ledger::note::NoteVerifier;
use govledger_replay::bundle::{self, Request};
use govledger_replay::html::range_words;
use govledger_replay::time::format_rfc3339;
use serde_json::json;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub filter: FilterArgs,
    #[command(flatten)]
    pub range: RangeArgs,
    /// Where to write the bundle (written whole or not at all).
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: PathBuf,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<ExitCode> {
    let filter = args.filter.required("bundle")?;
    let ledger = ctx.data.open_ro()?;
    let verifier = ctx.data.verifier()?;
    let mut walk = args.range.walk(ctx, &ledger)?;
    let req = Request {
        filter,
        from_ns: walk.from_ns,
        to_ns: walk.to_ns,
    };
    let progress = Progress::new(ctx, walk.end - walk.start, "bundle");
    let bytes = bundle::build(
        &mut walk.admission,
        &ledger,
        &verifier,
        &req,
        walk.start,
        walk.end,
        &mut |n| progress.set(n),
    );
    progress.finish();
    super::let_go(walk.admission);
    let bytes = bytes?;
    crate::datadir::write_file_atomic(&args.output, &bytes, 0o644)?;
    // Read back what was written: the file on disk is what gets handed over.
    let written = std::fs::read(&args.output)
        .with_context(|| format!("cannot read back {}", args.output.display()))?;
    let v = bundle::verify(&written, Some(&verifier))
        .with_context(|| format!("{} does not verify after writing", args.output.display()))?;
    if ctx.json {
        print_json(&json!({
            "file": args.output.display().to_string(),
            "bytes": written.len(),
            "entries": v.entries.len(),
            "checkpoints": v.checkpoints.iter().map(|c| c.size).collect::<Vec<_>>(),
            "signatures": v.signatures_checked,
            "log_key": v.log_key,
        }));
    } else {
        println!(
            "wrote {}: {} entries concerning {}, {} signed checkpoints ({} to {} entries), {} producer signatures, {} bytes",
            args.output.display(),
            v.entries.len(),
            req.filter.describe(),
            v.checkpoints.len(),
            v.checkpoints.first().map_or(0, |c| c.size),
            v.checkpoints.last().map_or(0, |c| c.size),
            v.signatures_checked,
            written.len()
        );
        println!(
            "check it anywhere with: govledger verify-bundle {} --key {}",
            args.output.display(),
            v.log_key
        );
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(clap::Args, Debug)]
pub struct VerifyArgs {
    /// The bundle file.
    pub file: PathBuf,
    /// The log's verifier key you trust (`govledger key show` on the ledger's
    /// side), e.g. `example.com/log+1234abcd+AX...`. Without it, the key written in
    /// the bundle is used, which proves only that the bundle is self-consistent.
    #[arg(long, value_name = "VKEY", env = "GOVLEDGER_LOG_KEY")]
    pub key: Option<String>,
}

pub fn verify(ctx: &Ctx, args: VerifyArgs) -> Result<ExitCode> {
    let key = args
        .key
        .as_deref()
        .map(NoteVerifier::from_key_string)
        .transpose()
        .context("--key")?;
    let bytes = std::fs::read(&args.file)
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    match bundle::verify(&bytes, key.as_ref()) {
        Ok(v) => {
            if ctx.json {
                let entries: Vec<_> = v
                    .entries
                    .iter()
                    .map(|(e, size)| {
                        json!({"seq": e.seq.0, "time_ns": e.time_ns, "tenant": e.tenant(),
                               "event_id": e.event_id(), "event_type": e.event_type(),
                               "verdict": if e.is_accepted() { "accepted" } else { "rejected" },
                               "reason": e.reject_reason().map(|r| r.to_string()),
                               "checkpoint": size})
                    })
                    .collect();
                print_json(&json!({
                    "ok": true,
                    "origin": v.origin,
                    "log_key": v.log_key,
                    "key_source": if v.key_given { "given" } else { "bundle" },
                    "filter": v.filter.json(),
                    "from_ns": v.range.0,
                    "to_ns": v.range.1,
                    "checkpoints": v.checkpoints.iter().map(|c| c.size).collect::<Vec<_>>(),
                    "signatures_checked": v.signatures_checked,
                    "entries": entries,
                    "problem": null,
                }));
            } else {
                println!(
                    "bundle OK: {} entries of log {:?}, proven in {} signed checkpoints (sizes {} to {}), {} producer signatures checked",
                    v.entries.len(),
                    v.origin,
                    v.checkpoints.len(),
                    v.checkpoints.first().map_or(0, |c| c.size),
                    v.checkpoints.last().map_or(0, |c| c.size),
                    v.signatures_checked
                );
                println!(
                    "exporter's claim (not signed): {}, {}",
                    v.filter.describe(),
                    range_words(v.range.0, v.range.1)
                );
                if !v.key_given {
                    println!(
                        "WARNING: checked with the log key written in the bundle ({}); pass --key with the key you trust",
                        v.log_key
                    );
                }
                for (e, _) in &v.entries {
                    println!(
                        "  {}  #{:<6} {:<8} {} {}",
                        format_rfc3339(e.time_ns),
                        e.seq.0,
                        if e.is_accepted() {
                            "accepted"
                        } else {
                            "rejected"
                        },
                        e.event_type()
                            .map(str::to_owned)
                            .or_else(|| e.reject_reason().map(|r| r.to_string()))
                            .unwrap_or_default(),
                        e.event_id().unwrap_or("-")
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(p) => {
            if ctx.json {
                print_json(&json!({
                    "ok": false,
                    "problem": {"line": p.line, "section": p.section, "message": p.message},
                }));
            } else {
                eprintln!("BUNDLE INVALID: {}: {p}", args.file.display());
            }
            Ok(ExitCode::from(1))
        }
    }
}
