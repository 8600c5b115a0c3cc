//! `govledger status`: size, cursor and newest checkpoint, read-only.

use super::Ctx;
use crate::output::{b64, print_json};
use anyhow::Result;
use serde_json::json;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct Args {}

pub fn run(ctx: &Ctx, _args: Args) -> Result<ExitCode> {
    let ledger = ctx.data.open_ro()?;
    let cp = ledger.latest_checkpoint()?;
    let cursor = ledger.cursor()?;
    let root = ledger.root()?;
    if ctx.json {
        print_json(&json!({
            "origin": ledger.origin(),
            "size": ledger.size(),
            "root": b64(&root),
            "cursor": cursor,
            "last_checkpoint": cp.as_ref().map(|c| c.checkpoint.size),
        }));
    } else {
        println!("origin:          {}", ledger.origin());
        println!("entries:         {}", ledger.size());
        println!("root:            {}", b64(&root));
        println!(
            "stream cursor:   {}",
            cursor.map_or("none".to_string(), |c| c.to_string())
        );
        println!(
            "last checkpoint: {}",
            cp.map_or("none".to_string(), |c| format!(
                "size {}",
                c.checkpoint.size
            ))
        );
    }
    Ok(ExitCode::SUCCESS)
}
