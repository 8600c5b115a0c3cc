//! `govledger entry --seq N`

use super::Ctx;
use crate::output::{entry_json, print_json};
use anyhow::Result;
use govledger_ledger::tree::leaf_hash;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The entry's seq (0-based position in the log).
    #[arg(long)]
    pub seq: u64,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<ExitCode> {
    let ledger = ctx.data.open_ro()?;
    let (leaf, entry) = ledger.entry(args.seq)?;
    let v = entry_json(&leaf, &leaf_hash(&leaf), &entry);
    if ctx.json {
        print_json(&v);
    } else {
        println!("{}", serde_json::to_string_pretty(&v)?);
    }
    Ok(ExitCode::SUCCESS)
}
