//! `govledger verify [--against CHECKPOINT_FILE]... [--no-signatures]`

use super::Ctx;
use crate::output::{b64, print_json};
use anyhow::{Context, Result};
use govledger_ledger::verify::{verify, VerifyOptions};
use serde_json::json;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// A signed checkpoint kept outside the store (by a client or witness); the log
    /// must still contain the tree it signs. May be given several times.
    #[arg(long)]
    pub against: Vec<PathBuf>,
    /// Skip checking checkpoint signatures (faster; hashes are still all checked).
    #[arg(long)]
    pub no_signatures: bool,
    /// Also fully decode every entry (the hashes already cover every byte; this
    /// proves each entry still parses in this version's format).
    #[arg(long)]
    pub deep: bool,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<ExitCode> {
    let ledger = ctx.data.open_ro()?;
    let verifier = ctx.data.verifier()?;
    let mut against = Vec::new();
    for p in &args.against {
        against.push(
            std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?,
        );
    }
    let opts = VerifyOptions {
        check_signatures: !args.no_signatures,
        decode_entries: args.deep,
        against,
    };
    let show_progress = !ctx.json && std::io::IsTerminal::is_terminal(&std::io::stderr());
    let size = ledger.size();
    let report = verify(&ledger, &verifier, &opts, &mut |n| {
        if show_progress {
            eprint!("\rverifying: {n}/{size} entries");
        }
    })?;
    if show_progress {
        eprintln!();
    }
    if ctx.json {
        print_json(&json!({
            "ok": report.ok(),
            "size": report.size,
            "entries_checked": report.entries_checked,
            "nodes_checked": report.nodes_checked,
            "checkpoints_checked": report.checkpoints_checked,
            "against_checked": report.against_checked,
            "last_checkpoint": report.last_checkpoint,
            "root": report.root.map(|r| b64(&r)),
            "problem": report.problem.as_ref().map(|p| json!({
                "kind": p.kind, "seq": p.seq, "message": p.message,
            })),
        }));
    } else if let Some(p) = &report.problem {
        println!("FAILED: {}", p.message);
        if let Some(s) = p.seq {
            println!("first bad seq: {s}");
        }
    } else {
        println!(
            "ok: {} entries, {} tree nodes, {} checkpoints ({} outside) verified; root {}",
            report.entries_checked,
            report.nodes_checked,
            report.checkpoints_checked,
            report.against_checked,
            report.root.map(|r| b64(&r)).unwrap_or_default()
        );
        if let Some(last) = report.last_checkpoint {
            if last < report.size {
                println!(
                    "note: entries {last}..{} are not yet covered by a checkpoint",
                    report.size
                );
            }
        }
    }
    Ok(if report.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
