//! `govledger state VIEW [--tenant T] [--at SEQ]`: the projected governance state,
//! re-derived from the log (read-only; works while `serve` holds the store).

use super::Ctx;
use crate::output::print_json;
use anyhow::{bail, Result};
use govledger_ingest::views;
use govledger_ingest::Admission;
use govledger_schemas::DecodeLimits;
use serde_json::Value;
use std::process::ExitCode;

/// Parses a view name (clap lists the choices in `--help` and in errors).
fn view_parser() -> impl clap::builder::TypedValueParser<Value = views::View> {
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new(views::View::ALL.map(|v| v.as_str())).try_map(
        |name: String| views::View::parse(&name).ok_or_else(|| format!("unknown view {name}")),
    )
}

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The view to print: budgets (terms and the current window's counters),
    /// approvals (tickets: requested, granted with what is left, denied),
    /// killswitches (engaged), sessions, keys.
    #[arg(value_parser = view_parser())]
    pub view: views::View,
    /// Only this tenant.
    #[arg(long)]
    pub tenant: Option<String>,
    /// The state right after entry SEQ (default: the whole log).
    #[arg(long, value_name = "SEQ")]
    pub at: Option<u64>,
}

/// `key=value` pairs of an item, nulls left out, nested objects as `key.sub=value`.
fn human(v: &Value) -> String {
    fn walk(prefix: &str, v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Null => {}
            Value::Object(m) => {
                for (k, x) in m {
                    let key = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    walk(&key, x, out);
                }
            }
            Value::String(s) => out.push(format!("{prefix}={s}")),
            other => out.push(format!("{prefix}={other}")),
        }
    }
    let mut out = Vec::new();
    walk("", v, &mut out);
    out.join("  ")
}

pub fn run(ctx: &Ctx, args: Args) -> Result<ExitCode> {
    let ledger = ctx.data.open_ro()?;
    let size = ledger.size();
    let end = match args.at {
        Some(seq) if seq >= size => {
            bail!(
                "--at {seq}: the log holds entries 0 to {} only",
                size.saturating_sub(1)
            )
        }
        Some(seq) => seq + 1,
        None => size,
    };
    let mut adm = Admission::new(&ctx.data.trust()?, DecodeLimits::default())?;
    adm.replay_all(govledger_replay::entries_from(&ledger, 0).take(end as usize))?;
    let view = args.view;
    let doc = views::document(&adm, view, args.tenant.as_deref(), args.at);
    let items: Vec<Value> = doc["items"].as_array().cloned().unwrap_or_default();
    if ctx.json {
        print_json(&doc);
    } else {
        println!(
            "{} after {end} of {size} entries{}: {}",
            view.as_str(),
            args.tenant
                .as_deref()
                .map(|t| format!(", tenant {t}"))
                .unwrap_or_default(),
            items.len()
        );
        for v in &items {
            println!("  {}", human(v));
        }
    }
    Ok(ExitCode::SUCCESS)
}
