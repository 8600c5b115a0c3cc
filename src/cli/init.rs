//! `govledger init --data DIR --origin NAME [--trust FILE]`

use super::Ctx;
use crate::datadir::{write_file_atomic, DataDir};
use crate::output::print_json;
use anyhow::{bail, Context, Result};
use govledger_ingest::Trust;
use govledger_ledger::note::NoteSigner;
use govledger_ledger::store::{OpenMode, RocksStore};
use govledger_ledger::{Ledger, SignedCheckpoint};
use serde_json::json;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The log's origin: its unique name in every checkpoint, e.g. `example.com/govledger/prod`.
    #[arg(long)]
    pub origin: String,
    /// Trust file: the operator root keys and each tenant's admin keys (JSON; see README).
    /// Without it no key is trusted and every event is rejected as `unknown_key`.
    #[arg(long)]
    pub trust: Option<PathBuf>,
}

/// Creates a ledger in `dir`: trust file, signing key, then the database (last, so
/// its presence marks a complete init), and a first signed checkpoint of size 0.
pub fn create(
    dir: &DataDir,
    origin: &str,
    trust: &Trust,
) -> Result<(Ledger<RocksStore>, NoteSigner, SignedCheckpoint)> {
    if dir.db().join("CURRENT").exists() {
        bail!(
            "{} already holds a ledger; refusing to overwrite it",
            dir.path.display()
        );
    }
    let signer = NoteSigner::generate(origin)
        .with_context(|| format!("--origin {origin:?} cannot name a log"))?;
    std::fs::create_dir_all(&dir.path)
        .with_context(|| format!("cannot create {}", dir.path.display()))?;
    write_file_atomic(
        &dir.trust_file(),
        serde_json::to_string_pretty(trust)?.as_bytes(),
        0o644,
    )?;
    write_file_atomic(
        &dir.key_file(),
        format!("{}\n", signer.to_key_string()).as_bytes(),
        0o600,
    )?;
    let store = RocksStore::open(&dir.db(), OpenMode::Create)?;
    let mut ledger = Ledger::create(store, origin)?;
    // The empty log's state: the trust roots and nothing else.
    let state =
        govledger_ingest::Admission::new(trust, govledger_schemas::DecodeLimits::default())?
            .state_digest();
    let cp = ledger.checkpoint(&signer, Some(state))?;
    Ok((ledger, signer, cp))
}

pub fn run(ctx: &Ctx, args: Args) -> Result<ExitCode> {
    let dir = &ctx.data;
    let trust_text = match &args.trust {
        Some(p) => std::fs::read_to_string(p)
            .with_context(|| format!("cannot read trust file {}", p.display()))?,
        None => serde_json::to_string(&Trust::default())?,
    };
    let trust = Trust::from_json(&trust_text)?;
    let (_ledger, signer, cp) = create(dir, &args.origin, &trust)?;
    let vkey = signer.verifier().to_key_string();
    let tenants: Vec<&str> = trust.tenants.keys().map(String::as_str).collect();
    if ctx.json {
        print_json(&json!({
            "data": dir.path.display().to_string(),
            "origin": args.origin,
            "verifier_key": vkey,
            "tenants": tenants,
            "checkpoint": cp.note,
        }));
    } else {
        println!("created ledger {} in {}", args.origin, dir.path.display());
        println!("verifier key: {vkey}");
        let shown = if tenants.is_empty() {
            "none (every event will be rejected as unknown_key)".to_string()
        } else {
            tenants.join(", ")
        };
        println!("trusted tenants: {shown}");
        println!(
            "signing key: {} (mode 0600; keep it secret)",
            dir.key_file().display()
        );
    }
    Ok(ExitCode::SUCCESS)
}
