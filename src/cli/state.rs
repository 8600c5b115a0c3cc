//! `govledger state VIEW [--tenant T] [--at SEQ]`: the projected governance state,
//! re-derived from the log (read-only; works while `serve` holds the store).

use super::Ctx;
use crate::output::{b64, print_json};
use anyhow::{bail, Result};
use govledger_ingest::Admission;
use govledger_projections::{KeyRole, KeyStatus, TicketStatus};
use govledger_schemas::{BudgetScope, DecodeLimits};
use serde_json::{json, Value};
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

fn scope_json(s: &BudgetScope) -> Value {
    json!({
        "org": s.org.as_ref().map(|x| x.as_str()),
        "team": s.team.as_ref().map(|x| x.as_str()),
        "user": s.user.as_ref().map(|x| x.as_str()),
        "agent": s.agent.as_ref().map(|x| x.as_str()),
    })
}

fn lower<T: std::fmt::Debug>(v: T) -> String {
    format!("{v:?}").to_lowercase()
}

/// The items of `view` in `adm`, each with its tenant, in a stable order.
fn items(adm: &Admission, view: View) -> Vec<(String, Value)> {
    match view {
        View::Sessions => adm
            .gates()
            .sessions()
            .map(|(t, id, s)| {
                (
                    t.to_string(),
                    json!({"tenant": t, "session": id, "status": s.status.as_str(),
                           "agent": s.agent, "user": s.user, "since_ns": s.since_ns}),
                )
            })
            .collect(),
        View::Killswitches => adm
            .gates()
            .kills()
            .map(|(t, scope, target, k)| {
                (
                    t.to_string(),
                    json!({"tenant": t, "scope": lower(scope), "target": target,
                           "reason": k.reason, "since_ns": k.since_ns}),
                )
            })
            .collect(),
        View::Approvals => adm
            .flows()
            .tickets()
            .map(|(t, id, ticket)| {
                let mut v = json!({"tenant": t, "ticket": id, "proposal": ticket.proposal,
                                   "session": ticket.session});
                match &ticket.status {
                    TicketStatus::Requested => v["status"] = json!("requested"),
                    TicketStatus::Denied => v["status"] = json!("denied"),
                    TicketStatus::Granted(g) => {
                        v["status"] = json!("granted");
                        v["approver"] = json!(g.approver);
                        v["scope"] = json!(lower(g.scope));
                        v["max_count"] = json!(g.max_count);
                        v["used_count"] = json!(g.used_count);
                        v["max_cost_micros"] = json!(g.max_cost_micros);
                        v["used_cost_micros"] = json!(g.used_cost_micros);
                        v["resource_ids"] = json!(g.resource_ids);
                        v["expires_at_ns"] = json!(g.expires_at_ns);
                    }
                }
                (t.to_string(), v)
            })
            .collect(),
        View::Budgets => adm
            .budgets()
            .iter()
            .map(|(t, id, b)| {
                (
                    t.to_string(),
                    json!({"tenant": t, "budget_id": id, "scope": scope_json(&b.terms.scope),
                           "window": lower(b.terms.window),
                           "limit_tokens": b.terms.limit_tokens,
                           "limit_cost_micros": b.terms.limit_cost_micros,
                           "tokens": b.tokens, "cost_micros": b.cost_micros,
                           "warn_thresholds_pct": b.terms.warn_thresholds_pct,
                           "kill_on_exceed": b.terms.kill_on_exceed}),
                )
            })
            .collect(),
        View::Keys => adm
            .ring()
            .iter()
            .map(|(id, k)| {
                let (status, until) = match k.status {
                    KeyStatus::Active => ("active", None),
                    KeyStatus::Retiring { until_ns } => ("retiring", Some(until_ns)),
                    KeyStatus::Revoked => ("revoked", None),
                };
                let role = match k.role {
                    KeyRole::Operator => "operator",
                    KeyRole::Admin => "admin",
                    KeyRole::Producer => "producer",
                };
                (
                    k.tenant.clone(),
                    json!({"key_id": id, "tenant": k.tenant, "role": role, "status": status,
                           "retire_at_ns": until, "valid_from_ns": k.valid_from_ns,
                           "valid_until_ns": k.valid_until_ns,
                           "public_key": b64(&k.public_key)}),
                )
            })
            .collect(),
    }
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
    let items: Vec<Value> = items(&adm, args.view)
        .into_iter()
        .filter(|(t, _)| {
            args.tenant
                .as_deref()
                .is_none_or(|want| want == t || t == "*")
        })
        .map(|(_, v)| v)
        .collect();
    if ctx.json {
        print_json(&json!({
            "view": lower(args.view),
            "tenant": args.tenant,
            "at": args.at,
            "entries_folded": end,
            "items": items,
        }));
    } else {
        println!(
            "{} after {end} of {size} entries{}: {}",
            lower(args.view),
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
