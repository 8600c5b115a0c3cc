//! `govledger checkpoint [--latest]`

use super::Ctx;
use crate::output::{b64, print_json};
use anyhow::{Context, Result};
use govledger_ledger::SignedCheckpoint;
use govledger_schemas::DecodeLimits;
use serde_json::json;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Print the newest stored checkpoint without signing a new one (read-only:
    /// works while `serve` holds the store).
    #[arg(long)]
    pub latest: bool,
}

pub fn print(ctx: &Ctx, cp: &SignedCheckpoint) {
    if ctx.json {
        print_json(&json!({
            "tree_size": cp.checkpoint.size,
            "root": b64(&cp.checkpoint.root),
            "checkpoint": cp.note,
        }));
    } else {
        print!("{}", cp.note);
    }
}

pub fn run(ctx: &Ctx, args: Args) -> Result<ExitCode> {
    let cp = if args.latest {
        let ledger = ctx.data.open_ro()?;
        ledger
            .latest_checkpoint()?
            .context("the log has no checkpoint yet")?
    } else {
        let mut ledger = ctx.data.open_rw()?;
        let signer = ctx.data.signer()?;
        let mut adm = super::append::admission_for(ctx, &ledger, DecodeLimits::default())?;
        ledger.checkpoint(&signer, Some(adm.state_digest()))?
    };
    print(ctx, &cp);
    Ok(ExitCode::SUCCESS)
}
