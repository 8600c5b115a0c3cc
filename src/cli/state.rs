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

/// Which part of the state.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum View {
    /// Budgets: terms and the current window's counters.
    Budgets,
    /// Approval tickets: requested, granted (with what is left) or denied.
    Approvals,
    /// Engaged kill switches.
    Killswitches,
    /// Sessions and their status.
    Sessions,
    /// Signing keys: trust roots and registered producer keys.
    Keys,
}

impl From<View> for views::View {
    fn from(v: View) -> views::View {
        match v {
            View::Budgets => views::View::Budgets,
            View::Approvals => views::View::Approvals,
            View::Killswitches => views::View::Killswitches,
            View::Sessions => views::View::Sessions,
            View::Keys => views::View::Keys,
        }
    }
}

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The view to print.
    #[arg(value_enum)]
    pub view: View,
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
    for entry in govledger_replay::entries_from(&ledger, 0).take(end as usize) {
        adm.replay(&entry?);
    }
    let view = views::View::from(args.view);
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
