//! `govledger replay --from-checkpoint K [--to SEQ|TIME] [--agent A] [--session S]
//! [--tenant T]`: re-derive the state from a signed checkpoint, check the signed
//! state digest at every checkpoint passed, and list the entries passed that
//! concern the filter (as `timeline` shows them).

use super::Ctx;
use crate::output::{hex, print_json};
use crate::progress::Progress;
use anyhow::Result;
use govledger_projections::DetectConfig;
use govledger_replay::timeline;
use govledger_replay::verified::{replay, ReplayError};
use govledger_schemas::DecodeLimits;
use serde_json::json;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The size of the signed checkpoint to start from (0: the start of the log).
    #[arg(long, value_name = "K")]
    pub from_checkpoint: u64,
    /// Stop right after entry SEQ, or after the last entry at or before TIME (RFC
    /// 3339, e.g. 2026-01-31T09:30:00Z) [default: the end of the log].
    #[arg(long, value_name = "SEQ|TIME", value_parser = super::state::parse_at)]
    pub to: Option<super::state::At>,
    /// List the entries replayed that concern these (the digest checks always
    /// cover every entry).
    #[command(flatten)]
    pub filter: super::timeline::FilterArgs,
    /// Step through the log interactively from the checkpoint: next, back, jump,
    /// state, find, where (type `help`). Reads commands from the terminal, from
    /// `--commands FILE`, or from stdin when it is not a terminal.
    #[arg(long)]
    pub step: bool,
    /// With `--step`: read the commands from FILE, one per line (`#` comments).
    #[arg(long, value_name = "FILE", requires = "step")]
    pub commands: Option<std::path::PathBuf>,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<ExitCode> {
    if args.step {
        // The stepper goes where its commands take it (`jump`, `find`), over
        // every entry; `--tenant` narrows what `state` and `find` look at.
        let ignored = [
            ("--to", args.to.is_some()),
            ("--agent", args.filter.agent.is_some()),
            ("--session", args.filter.session.is_some()),
        ];
        if let Some((flag, _)) = ignored.iter().find(|(_, given)| *given) {
            anyhow::bail!(
                "{flag} does not apply to --step: the stepper moves with its own commands \
                 (`jump SEQ|TIME`, `find AGENT`); --tenant narrows `state` and `find`"
            );
        }
        return super::step::run(
            ctx,
            args.from_checkpoint,
            args.filter.tenant.clone(),
            args.commands.as_deref(),
        );
    }
    let ledger = ctx.data.open_ro()?;
    let to = match args.to {
        None => ledger.size(),
        Some(at) => at.entries(&ledger, "--to")?,
    };
    let trust = ctx.data.trust()?;
    let verifier = ctx.data.verifier()?;
    let progress = Progress::new(ctx, to.saturating_sub(args.from_checkpoint), "replay");
    let result = replay(
        &ledger,
        &trust,
        &verifier,
        args.from_checkpoint,
        to,
        &mut |n| progress.set(n),
    );
    progress.finish();
    match result {
        Ok((replayed, r)) => {
            super::let_go(replayed);
            let filter = args.filter.filter();
            let items = if filter.is_empty() {
                None
            } else {
                // The digests checked out: list what concerns the filter, walking
                // the same entries from the state at the checkpoint.
                let mut adm = super::append::admission_at(
                    ctx,
                    &ledger,
                    DecodeLimits::default(),
                    DetectConfig::default(),
                    args.from_checkpoint,
                    true,
                )?;
                let progress = Progress::new(ctx, to - args.from_checkpoint, "listing");
                let tl = timeline::build(
                    &mut adm,
                    &ledger,
                    args.from_checkpoint,
                    to,
                    filter,
                    0,
                    u64::MAX,
                    &mut |n| progress.set(n),
                )?;
                progress.finish();
                super::let_go(adm);
                Some(tl)
            };
            if ctx.json {
                print_json(&json!({
                    "ok": true,
                    "from_checkpoint": r.from_checkpoint,
                    "snapshot": r.snapshot,
                    "to": r.to,
                    "entries_folded": r.entries_folded,
                    "checkpoints_checked": r.checkpoints_checked,
                    "legacy_checkpoints": r.legacy_checkpoints,
                    "unchecked_checkpoints": r.unchecked_checkpoints,
                    "state_digest": hex(&r.state_digest.hash),
                    "state_digest_version": r.state_digest.version,
                    "items": items.as_ref().map(|tl| &tl.items),
                    "problem": null,
                }));
            } else {
                println!(
                    "replayed from the checkpoint at {} to {} entries ({} folded{})",
                    r.from_checkpoint,
                    r.to,
                    r.entries_folded,
                    if r.snapshot > 0 {
                        format!(" after the snapshot at {}", r.snapshot)
                    } else {
                        String::new()
                    }
                );
                println!(
                    "state digest matched at {} checkpoints ({} legacy key-ring digests, {} without a digest)",
                    r.checkpoints_checked, r.legacy_checkpoints, r.unchecked_checkpoints
                );
                println!("state digest now: {}", r.state_digest.line());
                if let Some(tl) = &items {
                    println!(
                        "entries replayed that concern {}: {}",
                        tl.filter.describe(),
                        tl.items.len()
                    );
                    for item in &tl.items {
                        super::timeline::print_item(item);
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            let Some((kind, size, seq)) = failure(&e) else {
                return Err(e.into());
            };
            if ctx.json {
                let mut problem = json!({"kind": kind, "message": e.to_string()});
                if let Some(size) = size {
                    problem["checkpoint"] = json!(size);
                }
                if let Some(seq) = seq {
                    problem["seq"] = json!(seq);
                }
                print_json(&json!({
                    "ok": false,
                    "from_checkpoint": args.from_checkpoint,
                    "to": to,
                    "problem": problem,
                }));
            } else {
                eprintln!("REPLAY FAILED: {e}");
            }
            Ok(ExitCode::from(1))
        }
    }
}

/// A replay that found the log inconsistent (exit 1), as (problem kind, checkpoint
/// size, entry): the entry is the last one before a checkpoint whose digest did
/// not match, or the one whose body was changed behind its hash (with the
/// checkpoint whose digest did not match, if that is how it was found); `None`
/// for errors that stopped it from looking.
pub(super) fn failure(e: &ReplayError) -> Option<(&'static str, Option<u64>, Option<u64>)> {
    match e {
        ReplayError::Mismatch { size, seq, .. } => {
            Some(("state_digest_mismatch", Some(*size), Some(*seq)))
        }
        ReplayError::Signature { size, .. } => {
            Some(("bad_checkpoint_signature", Some(*size), None))
        }
        ReplayError::BodyChanged { seq, checkpoint } => {
            Some(("entry_body_changed", *checkpoint, Some(*seq)))
        }
        _ => None,
    }
}
