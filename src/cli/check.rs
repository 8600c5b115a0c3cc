//! `govledger check`: would this spend be within budget and not under a kill switch?
//! Answers from the state re-derived from the log, writes nothing. Exit 0: allowed;
//! 1: not allowed (the output says why).

use super::Ctx;
use crate::output::print_json;
use anyhow::{Context, Result};
use govledger_projections::gates::scope_name;
use govledger_projections::DetectConfig;
use govledger_schemas::{BudgetScope, DecodeLimits, Ident};
use serde_json::{json, Value};
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The tenant.
    #[arg(long)]
    pub tenant: String,
    /// The agent that would act.
    #[arg(long)]
    pub agent: String,
    /// Spend the action would cost, in micro-units.
    #[arg(long, default_value_t = 0)]
    pub cost_micros: u64,
    /// Tokens it would use.
    #[arg(long, default_value_t = 0)]
    pub tokens: u64,
    /// The action (shown in the answer).
    #[arg(long)]
    pub action: Option<String>,
    /// The session it would run in: must be active, and not under a session kill switch.
    #[arg(long)]
    pub session: Option<String>,
    /// The org of the spend, as the increments will name it (budgets by org apply only then).
    #[arg(long)]
    pub org: Option<String>,
    /// The team of the spend.
    #[arg(long)]
    pub team: Option<String>,
    /// The user of the spend.
    #[arg(long)]
    pub user: Option<String>,
    /// Judge budgets' windows at this event time, unix ns (default: now).
    #[arg(long)]
    pub at_ns: Option<u64>,
}

fn ident(flag: &str, v: &Option<String>) -> Result<Option<Ident>> {
    v.as_ref()
        .map(|s| {
            s.parse::<Ident>()
                .with_context(|| format!("--{flag} {s:?}"))
        })
        .transpose()
}

pub fn run(ctx: &Ctx, args: Args) -> Result<ExitCode> {
    let scope = BudgetScope {
        org: ident("org", &args.org)?,
        team: ident("team", &args.team)?,
        user: ident("user", &args.user)?,
        agent: ident("agent", &Some(args.agent.clone()))?,
    };
    let ledger = ctx.data.open_ro()?;
    // A reader: any snapshot that checks out will do (a writer's start passes
    // over those without ordinals).
    let adm = super::append::admission_at(
        ctx,
        &ledger,
        DecodeLimits::default(),
        DetectConfig::default(),
        ledger.size(),
        true,
    )?;
    let now = match args.at_ns {
        Some(t) => t,
        None => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0),
    };
    let tenant = args.tenant.as_str();
    let mut reasons: Vec<String> = Vec::new();
    let kill = adm
        .gates()
        .blocking(
            tenant,
            args.session.as_deref().unwrap_or(""),
            Some(&args.agent),
        )
        .map(|(scope, target, k)| {
            reasons.push(format!(
                "the {} kill switch on {target} is engaged: {}",
                scope_name(scope),
                k.reason
            ));
            json!({"scope": scope_name(scope), "target": target,
                   "reason": k.reason, "since_ns": k.since_ns})
        });
    if let Some(s) = &args.session {
        match adm.gates().session(tenant, s) {
            Some(x) if x.status == govledger_projections::SessionStatus::Active => {}
            Some(x) => reasons.push(format!("session {s} is {}", x.status.as_str())),
            None => reasons.push(format!("session {s} was never started")),
        }
    }
    if let Some(e) = adm
        .budgets()
        .exceeded(tenant, &scope, args.tokens, args.cost_micros, now)
    {
        reasons.push(e.message);
    }
    let budgets: Vec<Value> = adm
        .budgets()
        .applicable(tenant, &scope)
        .map(|(id, b)| {
            let (tokens, cost) = b.usage_at(now);
            json!({"budget_id": id, "window": format!("{:?}", b.terms.window).to_lowercase(),
                   "tokens": tokens, "cost_micros": cost,
                   "tokens_after": tokens.saturating_add(args.tokens),
                   "cost_micros_after": cost.saturating_add(args.cost_micros),
                   "limit_tokens": b.terms.limit_tokens,
                   "limit_cost_micros": b.terms.limit_cost_micros})
        })
        .collect();
    let allowed = reasons.is_empty();
    if ctx.json {
        print_json(&json!({
            "allowed": allowed,
            "tenant": tenant,
            "agent": args.agent,
            "action": args.action,
            "reasons": reasons,
            "kill_switch": kill,
            "budgets": budgets,
            "at_ns": now,
        }));
    } else {
        let what = args.action.as_deref().unwrap_or("the action");
        if allowed {
            println!(
                "allowed: {what} by {} in {tenant} fits {} budget(s) and no kill switch covers it",
                args.agent,
                budgets.len()
            );
        } else {
            println!("NOT allowed: {what} by {} in {tenant}", args.agent);
            for r in &reasons {
                println!("  - {r}");
            }
        }
    }
    super::let_go(adm);
    Ok(if allowed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
