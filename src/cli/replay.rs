//! `govledger replay --from-checkpoint K [--to SEQ|TIME]`: re-derive the state from
//! a signed checkpoint and check the signed state digest at every checkpoint passed.

use super::Ctx;
use crate::output::{hex, print_json};
use anyhow::Result;
use govledger_replay::verified::{replay, ReplayError};
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
}

pub fn run(ctx: &Ctx, args: Args) -> Result<ExitCode> {
    let ledger = ctx.data.open_ro()?;
    let to = match args.to {
        None => ledger.size(),
        Some(at) => at.entries(&ledger, "--to")?,
    };
    let trust = ctx.data.trust()?;
    let verifier = ctx.data.verifier()?;
    let show_progress = !ctx.json && std::io::IsTerminal::is_terminal(&std::io::stderr());
    let total = to.saturating_sub(args.from_checkpoint);
    let result = replay(
        &ledger,
        &trust,
        &verifier,
        args.from_checkpoint,
        to,
        &mut |n| {
            if show_progress {
                eprint!("\rreplaying: {n} entries folded ({total} after the checkpoint)");
            }
        },
    );
    if show_progress {
        eprintln!();
    }
    match result {
        Ok((_, r)) => {
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
                    "state_digest": hex(&r.state_digest),
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
                println!("state digest now: sha256:{}", hex(&r.state_digest));
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            let Some((kind, size, seq)) = failure(&e) else {
                return Err(e.into());
            };
            if ctx.json {
                let mut problem =
                    json!({"kind": kind, "checkpoint": size, "message": e.to_string()});
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
/// size, last entry before it); `None` for errors that stopped it from looking.
fn failure(e: &ReplayError) -> Option<(&'static str, u64, Option<u64>)> {
    match e {
        ReplayError::Mismatch { size, seq, .. } => {
            Some(("state_digest_mismatch", *size, Some(*seq)))
        }
        ReplayError::Signature { size, .. } => Some(("bad_checkpoint_signature", *size, None)),
        _ => None,
    }
}
