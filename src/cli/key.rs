//! `govledger key show`

use super::Ctx;
use crate::output::print_json;
use anyhow::Result;
use serde_json::json;
use std::process::ExitCode;

#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Print the log's origin and its verifier key (Go note format).
    Show,
}

pub fn run(ctx: &Ctx, cmd: Command) -> Result<ExitCode> {
    match cmd {
        Command::Show => {
            let ledger = ctx.data.open_ro()?;
            let vkey = ctx.data.verifier()?.to_key_string();
            if ctx.json {
                print_json(&json!({"origin": ledger.origin(), "verifier_key": vkey}));
            } else {
                println!("origin:       {}", ledger.origin());
                println!("verifier key: {vkey}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
