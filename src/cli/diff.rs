//! `govledger diff --from X --to Y [--tenant T] [--view V]`: what changed in the
//! governance state between two points of the log.

use super::state::{parse_at, view_parser, At};
use super::Ctx;
use crate::output::print_json;
use anyhow::{bail, Result};
use govledger_ingest::views::{self, View};
use govledger_ingest::Admission;
use govledger_projections::DetectConfig;
use govledger_schemas::DecodeLimits;
use serde_json::{json, Value};
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The earlier point: right after entry SEQ, or as of TIME (RFC 3339).
    #[arg(long, value_name = "SEQ|TIME", value_parser = parse_at)]
    pub from: At,
    /// The later point [default: the end of the log].
    #[arg(long, value_name = "SEQ|TIME", value_parser = parse_at)]
    pub to: Option<At>,
    /// Only this tenant.
    #[arg(long)]
    pub tenant: Option<String>,
    /// Only these views (budgets, approvals, killswitches, sessions, keys); may be
    /// given several times [default: all].
    #[arg(long = "view", value_parser = view_parser())]
    pub views: Vec<View>,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<ExitCode> {
    let ledger = ctx.data.open_ro()?;
    let from = args.from.entries(&ledger, "--from")?;
    let to = match args.to {
        Some(at) => at.entries(&ledger, "--to")?,
        None => ledger.size(),
    };
    if to < from {
        bail!("--to ({to} entries) is before --from ({from} entries)");
    }
    let state = |n: u64| -> Result<Admission> {
        super::append::admission_at(
            ctx,
            &ledger,
            DecodeLimits::default(),
            DetectConfig::default(),
            n,
            true,
        )
    };
    let (before, after) = (state(from)?, state(to)?);
    let views = if args.views.is_empty() {
        View::ALL.to_vec()
    } else {
        args.views
    };
    let tenant = args.tenant.as_deref();
    let mut out = serde_json::Map::new();
    for v in &views {
        let d = views::diff(
            *v,
            &views::items(&before, *v, tenant),
            &views::items(&after, *v, tenant),
        );
        out.insert(v.as_str().to_string(), d);
    }
    if ctx.json {
        print_json(&json!({
            "from_entries": from,
            "to_entries": to,
            "tenant": tenant,
            "views": out,
        }));
    } else {
        println!("state after {from} entries → after {to} entries");
        for (name, d) in &out {
            let n = |k: &str| d[k].as_array().map_or(0, Vec::len);
            if n("added") + n("removed") + n("changed") == 0 {
                continue;
            }
            println!("{name}:");
            let line = |v: &Value| {
                v.as_object().map_or(String::new(), |m| {
                    m.iter()
                        .filter(|(_, x)| !x.is_null())
                        .map(|(k, x)| {
                            format!("{k}={}", x.as_str().map_or(x.to_string(), str::to_string))
                        })
                        .collect::<Vec<_>>()
                        .join(" ")
                })
            };
            for v in d["added"].as_array().into_iter().flatten() {
                println!("  + {}", line(v));
            }
            for v in d["removed"].as_array().into_iter().flatten() {
                println!("  - {}", line(v));
            }
            for c in d["changed"].as_array().into_iter().flatten() {
                println!("  ~ {}", c["key"].as_str().unwrap_or_default());
                if let (Some(b), Some(a)) = (c["before"].as_object(), c["after"].as_object()) {
                    for (k, x) in a {
                        if b.get(k) != Some(x) {
                            println!("      {k}: {} → {}", b.get(k).unwrap_or(&Value::Null), x);
                        }
                    }
                }
            }
        }
    }
    super::let_go(before);
    super::let_go(after);
    Ok(ExitCode::SUCCESS)
}
