//! `govledger snapshot list|take`: the state snapshots stored at checkpoints.

use super::Ctx;
use crate::output::{hex, print_json};
use anyhow::{bail, Result};
use govledger_ingest::snapshots::{self, SnapshotPolicy};
use govledger_schemas::DecodeLimits;
use serde_json::json;
use std::process::ExitCode;

#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// List stored snapshots and whether each checks out against its signed
    /// checkpoint (read-only: works while `serve` holds the store). Exit 1 if any
    /// does not.
    List,
    /// Sign a checkpoint at the current size if there is none, and write a
    /// snapshot of the state there now (needs the store for writing).
    Take(TakeArgs),
}

#[derive(clap::Args, Debug)]
pub struct TakeArgs {
    /// Snapshots to keep, this one included; older ones are deleted.
    #[arg(long, default_value_t = SnapshotPolicy::default().keep as u64,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub keep: u64,
}

pub fn run(ctx: &Ctx, cmd: Command) -> Result<ExitCode> {
    match cmd {
        Command::List => list(ctx),
        Command::Take(a) => take(ctx, a),
    }
}

fn list(ctx: &Ctx) -> Result<ExitCode> {
    let ledger = ctx.data.open_ro()?;
    let verifier = ctx.data.verifier()?;
    let mut items = Vec::new();
    let mut bad = 0;
    for size in ledger.snapshot_sizes()? {
        let item = match snapshots::check(&ledger, &verifier, size) {
            Ok(c) => json!({
                "size": size,
                "bytes": c.bytes,
                "state_digest": hex(&c.signed.hash),
                "state_digest_version": c.signed.version,
                "format": if c.header.ordinals { 2 } else { 1 },
                "ordinals_trusted": c.ordinals_trusted(),
                "ok": true,
            }),
            Err(why) => {
                bad += 1;
                json!({"size": size, "ok": false, "problem": why})
            }
        };
        items.push(item);
    }
    if ctx.json {
        print_json(&json!({"log_size": ledger.size(), "snapshots": items}));
    } else {
        println!("{} snapshots (log size {})", items.len(), ledger.size());
        for s in &items {
            match s["ok"].as_bool() {
                Some(true) => println!(
                    "  size {:>10}  {:>10} bytes  format {}  state v{} sha256:{}  ok{}",
                    s["size"],
                    s["bytes"],
                    s["format"],
                    s["state_digest_version"],
                    s["state_digest"].as_str().unwrap_or_default(),
                    if s["ordinals_trusted"] == true {
                        ""
                    } else {
                        " (no trusted ordinals: writers start from an older point)"
                    }
                ),
                _ => println!(
                    "  size {:>10}  NOT USABLE: {}",
                    s["size"],
                    s["problem"].as_str().unwrap_or_default()
                ),
            }
        }
    }
    Ok(if bad == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn take(ctx: &Ctx, args: TakeArgs) -> Result<ExitCode> {
    let mut ledger = ctx.data.open_rw()?;
    if ledger.size() == 0 {
        bail!("the log is empty: there is no state to snapshot yet");
    }
    let signer = ctx.data.signer()?;
    let mut adm = super::append::admission_for(ctx, &ledger, DecodeLimits::default())?;
    let cp = ledger.checkpoint(&signer, Some(adm.state_digest()))?;
    let policy = SnapshotPolicy {
        every: 1,
        keep: usize::try_from(args.keep).unwrap_or(usize::MAX),
    };
    let written = snapshots::after_checkpoint(&ledger, &adm, &cp.checkpoint, policy)?;
    match (written, ctx.json) {
        (Some(w), true) => print_json(&json!({
            "size": w.size,
            "bytes": w.bytes,
            "seconds": w.seconds,
        })),
        (Some(w), false) => println!(
            "snapshot at size {}: {} bytes, written in {:.1} ms",
            w.size,
            w.bytes,
            w.seconds * 1e3
        ),
        (None, json) => {
            // One is there already: `--keep` still holds, the newest ones kept.
            let store = ledger.snapshot_store();
            let dropped = snapshots::beyond_newest(store.sizes()?.into_iter(), policy.keep.max(1));
            for &s in &dropped {
                store.remove(s)?;
            }
            if json {
                print_json(&json!({"size": ledger.size(), "existing": true, "dropped": dropped}));
            } else {
                println!("a snapshot at size {} already exists", ledger.size());
                if !dropped.is_empty() {
                    println!(
                        "older snapshots deleted (--keep {}): {dropped:?}",
                        args.keep
                    );
                }
            }
        }
    }
    super::let_go(adm);
    Ok(ExitCode::SUCCESS)
}
