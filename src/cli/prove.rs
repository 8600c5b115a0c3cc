//! `govledger prove inclusion --seq N [--size S]` and
//! `govledger prove consistency --from A --to B`

use super::Ctx;
use crate::output::{b64, print_json};
use anyhow::{bail, Result};
use serde_json::json;
use std::process::ExitCode;

#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Prove that entry `seq` is in the tree of `size` entries.
    Inclusion {
        /// The entry.
        #[arg(long)]
        seq: u64,
        /// Tree size; default: the newest checkpoint that covers the entry.
        #[arg(long)]
        size: Option<u64>,
    },
    /// Prove that the tree of `from` entries is a prefix of the tree of `to` entries.
    Consistency {
        /// Older tree size.
        #[arg(long)]
        from: u64,
        /// Newer tree size (default: the newest checkpoint).
        #[arg(long)]
        to: Option<u64>,
    },
}

pub fn run(ctx: &Ctx, cmd: Command) -> Result<ExitCode> {
    let ledger = ctx.data.open_ro()?;
    match cmd {
        Command::Inclusion { seq, size } => {
            if seq >= ledger.size() {
                bail!(
                    "entry {seq} does not exist: the log has {} entries",
                    ledger.size()
                );
            }
            let size = match size {
                Some(s) => s,
                None => match ledger.latest_checkpoint()? {
                    Some(cp) if cp.checkpoint.size > seq => cp.checkpoint.size,
                    _ => bail!(
                        "entry {seq} is not covered by a checkpoint yet: run `govledger checkpoint`, or pass --size"
                    ),
                },
            };
            let proof = ledger.inclusion_proof(seq, size)?;
            let lh = ledger.leaf_hash(seq)?;
            let cp = ledger.checkpoint_at(size)?;
            let proof: Vec<String> = proof.iter().map(|h| b64(h)).collect();
            if ctx.json {
                print_json(&json!({
                    "leaf_index": seq,
                    "tree_size": size,
                    "leaf_hash": b64(&lh),
                    "proof": proof,
                    "checkpoint": cp.map(|c| c.note),
                }));
            } else {
                println!("entry {seq} in tree of size {size}");
                println!("leaf hash: {}", b64(&lh));
                for (i, h) in proof.iter().enumerate() {
                    println!("  proof[{i}] {h}");
                }
                match cp {
                    Some(c) => print!("signed by checkpoint:\n{}", c.note),
                    None => println!("(no checkpoint is stored at size {size})"),
                }
            }
        }
        Command::Consistency { from, to } => {
            let to = match to {
                Some(t) => t,
                None => match ledger.latest_checkpoint()? {
                    Some(cp) => cp.checkpoint.size,
                    None => bail!("the log has no checkpoint; pass --to"),
                },
            };
            let proof = ledger.consistency_proof(from, to)?;
            let old_root = ledger.root_at(from)?;
            let new_root = ledger.root_at(to)?;
            let proof: Vec<String> = proof.iter().map(|h| b64(h)).collect();
            if ctx.json {
                print_json(&json!({
                    "old_size": from,
                    "new_size": to,
                    "old_root": b64(&old_root),
                    "new_root": b64(&new_root),
                    "proof": proof,
                }));
            } else {
                println!(
                    "tree {from} ({}) is a prefix of tree {to} ({})",
                    b64(&old_root),
                    b64(&new_root)
                );
                for (i, h) in proof.iter().enumerate() {
                    println!("  proof[{i}] {h}");
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
