//! `govledger explain --event ID [--tenant T]` (or `--seq N`): why an entry was
//! accepted or rejected, and the earlier entries that made it so.

use super::Ctx;
use crate::output::print_json;
use anyhow::{bail, Result};
use govledger_replay::explain::{explain, find};
use govledger_replay::time::format_rfc3339;
use govledger_replay::timeline::entry_summary;
use govledger_schemas::{Entry, Verdict};
use serde_json::{json, Value};
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
#[command(group = clap::ArgGroup::new("which").required(true).args(["event", "seq"]))]
pub struct Args {
    /// The event id (the body's `id`).
    #[arg(long)]
    pub event: Option<String>,
    /// The tenant, when the id is used in several.
    #[arg(long, requires = "event")]
    pub tenant: Option<String>,
    /// The entry number instead of an event id.
    #[arg(long)]
    pub seq: Option<u64>,
}

fn line(e: &Entry) -> String {
    let what = entry_summary(e, govledger_replay::scope::envelope(e).as_ref());
    format!("{}  #{}  {}", format_rfc3339(e.time_ns), e.seq.0, what)
}

pub fn run(ctx: &Ctx, args: Args) -> Result<ExitCode> {
    let ledger = ctx.data.open_ro()?;
    let seq = match (args.seq, &args.event) {
        (Some(seq), _) => {
            if seq >= ledger.size() {
                bail!(
                    "--seq {seq}: the log holds entries 0 to {} only",
                    ledger.size().saturating_sub(1)
                );
            }
            seq
        }
        (None, Some(id)) => {
            let found = find(&ledger, id, args.tenant.as_deref())?;
            match found.as_slice() {
                [] => bail!(
                    "no entry carries event id {id:?}{}",
                    args.tenant
                        .as_deref()
                        .map(|t| format!(" in tenant {t}"))
                        .unwrap_or_default()
                ),
                [seq] => *seq,
                many => {
                    let list: Vec<String> = many.iter().map(|s| s.to_string()).collect();
                    bail!(
                        "event id {id:?} is carried by entries {} (a republish, or the same id in several tenants): pick one with --seq{}",
                        list.join(", "),
                        if args.tenant.is_none() { " or --tenant" } else { "" }
                    )
                }
            }
        }
        (None, None) => bail!("say which entry: --event ID or --seq N"),
    };
    let x = explain(&ledger, seq)?;
    let e = &x.entry;
    let (verdict, reason, detail) = match &e.verdict {
        Verdict::Accepted { .. } => ("accepted", None, None),
        Verdict::Rejected { reason, detail, .. } => {
            ("rejected", Some(reason.to_string()), Some(detail.clone()))
        }
    };
    let signed_by = match (&e.key_id, x.key_entry) {
        (None, _) => "no key header".to_string(),
        (Some(k), Some(s)) => format!("key {k}, registered by entry #{s}"),
        (Some(k), None) => format!("key {k} (a root key of the trust file, or unknown to the log)"),
    };
    let causes: Vec<(u64, String, Entry)> = x
        .causes
        .iter()
        .map(|c| Ok((c.seq, c.relation.clone(), ledger.entry(c.seq)?.1)))
        .collect::<Result<_>>()?;
    if ctx.json {
        let because: Vec<Value> = causes
            .iter()
            .map(|(s, rel, ce)| {
                json!({"seq": s, "relation": rel, "time_ns": ce.time_ns,
                                      "event_id": ce.event_id(), "event_type": ce.event_type(),
                                      "summary": line(ce)})
            })
            .collect();
        print_json(&json!({
            "seq": e.seq.0,
            "time_ns": e.time_ns,
            "tenant": e.tenant(),
            "event_id": e.event_id(),
            "event_type": x.envelope.as_ref().map(|env| env.kind().as_str()),
            "verdict": verdict,
            "reason": reason,
            "detail": detail,
            "key_id": e.key_id,
            "key_entry": x.key_entry,
            "summary": line(e),
            "because": because,
        }));
    } else {
        println!("{}", line(e));
        match (&reason, &detail) {
            (Some(r), Some(d)) => println!("REJECTED: {r}: {d}"),
            _ => println!("ACCEPTED: signature verified, schema valid, every invariant held"),
        }
        println!("signed with {signed_by}");
        if causes.is_empty() {
            println!("no earlier entry bears on it");
        } else {
            println!("earlier entries that bear on it:");
            for (_, rel, ce) in &causes {
                println!("  {}  ({rel})", line(ce));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
