//! `govledger timeline --agent A [--from T1] [--to T2] [--html FILE]`: every event
//! that concerns an agent (or session, or tenant), with its verdict and what was in
//! force: the decision, the approvals, the budgets after each spend.

use super::Ctx;
use crate::output::print_json;
use crate::progress::Progress;
use anyhow::{bail, Result};
use govledger_ledger::store::RocksStore;
use govledger_ledger::Ledger;
use govledger_projections::DetectConfig;
use govledger_replay::scope::Filter;
use govledger_replay::time::{format_rfc3339, parse_rfc3339};
use govledger_replay::timeline::{self, approval_text, budget_text, decision_text, text};
use govledger_schemas::DecodeLimits;
use serde_json::{json, Value};
use std::process::ExitCode;

/// Which entries: shared by `timeline`, `bundle` and `replay`.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct FilterArgs {
    /// Only what concerns this agent: its own events, decisions and approvals on
    /// its proposals, changes to its sessions, kill switches that reach it.
    #[arg(long)]
    pub agent: Option<String>,
    /// Only what concerns this session.
    #[arg(long)]
    pub session: Option<String>,
    /// Only this tenant.
    #[arg(long)]
    pub tenant: Option<String>,
}

impl FilterArgs {
    pub fn filter(&self) -> Filter {
        Filter {
            tenant: self.tenant.clone(),
            agent: self.agent.clone(),
            session: self.session.clone(),
        }
    }

    /// The filter, which must name at least one of agent, session, tenant.
    pub fn required(&self, command: &str) -> Result<Filter> {
        let f = self.filter();
        if f.is_empty() {
            bail!("{command} needs --agent, --session or --tenant (or several)");
        }
        Ok(f)
    }
}

/// Event-time range: shared by `timeline` and `bundle`.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct RangeArgs {
    /// From this event time, inclusive (RFC 3339, e.g. 2026-01-31T09:00:00Z)
    /// [default: the start of the log].
    #[arg(long, value_name = "TIME", value_parser = parse_rfc3339)]
    pub from: Option<u64>,
    /// To this event time, inclusive [default: the end of the log].
    #[arg(long, value_name = "TIME", value_parser = parse_rfc3339)]
    pub to: Option<u64>,
}

/// Where a walk over a time range runs: the entries before `from`, the entries
/// through `to`, and the state restored at the first.
pub struct Walk {
    pub from_ns: u64,
    pub to_ns: u64,
    pub start: u64,
    pub end: u64,
    pub admission: govledger_ingest::Admission,
}

impl RangeArgs {
    /// Restores the state right before the range (from a verified snapshot when
    /// there is one) and finds the entries the range spans.
    pub fn walk(&self, ctx: &Ctx, ledger: &Ledger<RocksStore>) -> Result<Walk> {
        let from_ns = self.from.unwrap_or(0);
        let to_ns = self.to.unwrap_or(u64::MAX);
        if to_ns < from_ns {
            bail!(
                "--to {} is before --from {}",
                format_rfc3339(to_ns),
                format_rfc3339(from_ns)
            );
        }
        let start = match from_ns {
            0 => 0,
            t => govledger_replay::count_until(ledger, t - 1)?,
        };
        let end = govledger_replay::count_until(ledger, to_ns)?;
        let admission = super::append::admission_at(
            ctx,
            ledger,
            DecodeLimits::default(),
            DetectConfig::default(),
            start,
            true,
        )?;
        Ok(Walk {
            from_ns,
            to_ns,
            start,
            end,
            admission,
        })
    }
}

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub filter: FilterArgs,
    #[command(flatten)]
    pub range: RangeArgs,
    /// Also write the timeline as a self-contained HTML page to FILE.
    #[arg(long, value_name = "FILE")]
    pub html: Option<std::path::PathBuf>,
}

/// The human form of one item: a headline and indented details.
pub fn print_item(item: &Value) {
    let reason = item["reason"]
        .as_str()
        .map(|r| format!(" ({r})"))
        .unwrap_or_default();
    println!(
        "{}  #{:<6} {}{}  {}",
        text(&item["time"]),
        text(&item["seq"]),
        text(&item["verdict"]),
        reason,
        text(&item["summary"])
    );
    let d = &item["decision"];
    if d.is_object() && item["event_type"] != "policy.decided" {
        println!("    decision: {}", decision_text(d));
    }
    for t in item["approvals"].as_array().into_iter().flatten() {
        println!("    approval {}", approval_text(t));
    }
    for b in item["budgets"].as_array().into_iter().flatten() {
        println!("    budget {}", budget_text(b));
    }
}

pub fn run(ctx: &Ctx, args: Args) -> Result<ExitCode> {
    let filter = args.filter.required("timeline")?;
    let ledger = ctx.data.open_ro()?;
    let mut walk = args.range.walk(ctx, &ledger)?;
    let progress = Progress::new(ctx, walk.end - walk.start, "timeline");
    let tl = timeline::build(
        &mut walk.admission,
        &ledger,
        walk.start,
        walk.end,
        filter,
        walk.from_ns,
        walk.to_ns,
        &mut |n| progress.set(n),
    )?;
    progress.finish();
    super::let_go(walk.admission);
    if let Some(path) = &args.html {
        let page = govledger_replay::html::render(&tl);
        crate::datadir::write_file_atomic(path, page.as_bytes(), 0o644)?;
        if !ctx.json {
            eprintln!("wrote {} ({} events)", path.display(), tl.items.len());
        }
    }
    if ctx.json {
        print_json(&json!({
            "filter": tl.filter.json(),
            "from_ns": tl.from_ns,
            "to_ns": tl.to_ns,
            "entries_scanned": tl.entries_scanned,
            "html": args.html.as_ref().map(|p| p.display().to_string()),
            "items": tl.items,
        }));
    } else {
        println!(
            "timeline of {}: {} events ({} entries scanned)",
            tl.filter.describe(),
            tl.items.len(),
            tl.entries_scanned
        );
        for item in &tl.items {
            print_item(item);
        }
    }
    Ok(ExitCode::SUCCESS)
}
