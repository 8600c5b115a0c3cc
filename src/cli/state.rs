//! `govledger state VIEW [--tenant T] [--at SEQ]`: the projected governance state,
//! re-derived from the log (read-only; works while `serve` holds the store).

use super::Ctx;
use crate::output::print_json;
use anyhow::{bail, Result};
use govledger_ingest::views;
use govledger_projections::DetectConfig;
use govledger_schemas::DecodeLimits;
use serde_json::Value;
use std::process::ExitCode;

/// Where `--at` stops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum At {
    /// Right after this entry.
    Seq(u64),
    /// Every entry with an event time at or before this, unix ns.
    Time(u64),
}

impl At {
    /// How many entries, from the start, the state at this point has folded:
    /// `SEQ + 1`, or every entry with an event time at or before `TIME` (entries
    /// are in stream order, whose JetStream timestamps only grow). `flag` names
    /// the option in the error for a `SEQ` past the end.
    pub fn entries<S: govledger_ledger::store::LogStore>(
        self,
        ledger: &govledger_ledger::Ledger<S>,
        flag: &str,
    ) -> Result<u64> {
        let size = ledger.size();
        Ok(match self {
            At::Seq(seq) if seq >= size => bail!(
                "{flag} {seq}: the log holds entries 0 to {} only",
                size.saturating_sub(1)
            ),
            At::Seq(seq) => seq + 1,
            At::Time(t) => govledger_replay::count_until(ledger, t)?,
        })
    }
}

pub fn parse_at(s: &str) -> Result<At, String> {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return s
            .parse()
            .map(At::Seq)
            .map_err(|e| format!("{s:?} is not an entry number: {e}"));
    }
    govledger_replay::time::parse_rfc3339(s).map(At::Time)
}

/// Parses a view name (clap lists the choices in `--help` and in errors).
pub(super) fn view_parser() -> impl clap::builder::TypedValueParser<Value = views::View> {
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
    /// The state right after entry SEQ, or as of TIME (RFC 3339, e.g.
    /// 2026-01-31T09:30:00Z: every entry with an event time at or before it)
    /// [default: the whole log].
    #[arg(long, value_name = "SEQ|TIME", value_parser = parse_at)]
    pub at: Option<At>,
    /// Fold from entry 0, ignoring stored snapshots (to cross-check them).
    #[arg(long)]
    pub no_snapshots: bool,
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
        Some(at) => at.entries(&ledger, "--at")?,
        None => size,
    };
    let adm = super::append::admission_at(
        ctx,
        &ledger,
        DecodeLimits::default(),
        DetectConfig::default(),
        end,
        !args.no_snapshots,
    )?;
    let view = args.view;
    let seq = match args.at {
        Some(At::Seq(s)) => Some(s),
        _ => None,
    };
    let mut doc = views::document(&adm, view, args.tenant.as_deref(), seq);
    if let Some(At::Time(t)) = args.at {
        doc["at_time_ns"] = serde_json::json!(t);
    }
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
    super::let_go(adm);
    Ok(ExitCode::SUCCESS)
}
