//! Timelines: the entries that concern an agent (or tenant, or session), each with
//! what was in force when it was admitted.
//!
//! Every item carries the entry's verdict (and reject reason), a one-line summary,
//! and, re-derived by folding the log to that entry:
//!
//! - `decision`: for anything about a proposal, the last policy decision on it
//!   (decision, policy id and version, rules, reason);
//! - `approvals`: the approval tickets of that proposal, with what is left of each
//!   grant after the entry;
//! - `budgets`: after a spend, every budget that applies to it, with its counters in
//!   the event's window and its limits;
//! - `proposal_status`: where the proposal stands after the entry.
//!
//! The state comes from folding the log's own entries (from a snapshot only when
//! its digest is the one signed in its checkpoint): a timeline is as trustworthy
//! as `verify` and `replay` say the log is.

use std::collections::BTreeMap;

use govledger_ingest::Admission;
use govledger_ledger::store::LogStore;
use govledger_ledger::{Ledger, LedgerError};
use govledger_projections::TicketStatus;
use govledger_schemas::{Entry, Envelope, Event, Verdict};
use serde_json::{json, Value};

use crate::scope::{Filter, Scope};
use crate::time::format_rfc3339;

/// A timeline over a range of event times.
#[derive(Clone, Debug)]
pub struct Timeline {
    /// Which entries.
    pub filter: Filter,
    /// Event times from (inclusive), unix ns.
    pub from_ns: u64,
    /// Event times to (inclusive), unix ns.
    pub to_ns: u64,
    /// Entries walked to build it (after the state it started from).
    pub entries_scanned: u64,
    /// One JSON object per entry in scope, in log order (fields in the module docs).
    pub items: Vec<Value>,
}

/// Builds the timeline of `filter` over event times `from_ns..=to_ns` by walking
/// entries `start..end` of `ledger` ([`crate::walk`]), with `adm` standing at
/// `start`: the caller restores it (from a verified snapshot, or from entry 0) and
/// picks `start` at or before the first entry of the range (`count_until(from_ns -
/// 1)`) and `end` after the last (`count_until(to_ns)`). `progress` hears the
/// entries walked so far.
#[allow(clippy::too_many_arguments)]
pub fn build<S: LogStore>(
    adm: &mut Admission,
    ledger: &Ledger<S>,
    start: u64,
    end: u64,
    filter: Filter,
    from_ns: u64,
    to_ns: u64,
    progress: &mut dyn FnMut(u64),
) -> Result<Timeline, LedgerError> {
    let mut scope = Scope::new(filter.clone());
    scope.seed(adm);
    let mut decisions: BTreeMap<(String, String), Value> = BTreeMap::new();
    let mut items = Vec::new();
    let mut visit = |adm: &Admission, _: &[u8], entry: &Entry, env: Option<&Envelope>| {
        let keep = scope.observe(entry, env) && (from_ns..=to_ns).contains(&entry.time_ns);
        if let (Verdict::Accepted { .. }, Some(Event::PolicyDecided(d))) =
            (&entry.verdict, env.map(|e| &e.event))
        {
            let tenant = entry.tenant().unwrap_or_default().to_owned();
            decisions.insert(
                (tenant, d.proposal.as_str().to_owned()),
                json!({"seq": entry.seq.0, "decision": d.decision,
                           "policy_id": d.policy_id.as_str(),
                           "policy_version": d.policy_version, "rule_ids": d.rule_ids,
                           "reason": d.reason}),
            );
        }
        if keep {
            items.push(item_json(entry, env, adm, &decisions));
        }
        Ok::<(), LedgerError>(())
    };
    crate::walk(adm, ledger, start, end, progress, &mut visit)?;
    Ok(Timeline {
        filter,
        from_ns,
        to_ns,
        entries_scanned: end - start,
        items,
    })
}

fn opt<T: std::fmt::Display>(label: &str, v: &Option<T>) -> String {
    v.as_ref()
        .map_or(String::new(), |v| format!(", {label} {v}"))
}

/// A JSON value as plain text: strings unquoted, null as `-`.
pub fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        Value::Array(a) => a.iter().map(text).collect::<Vec<_>>().join(", "),
        v => v.to_string(),
    }
}

/// An item's `decision` in words: `deny by policy payments@v12 (refund-limit): why`.
pub fn decision_text(d: &Value) -> String {
    format!(
        "{} by policy {}@{} ({}): {}",
        text(&d["decision"]),
        text(&d["policy_id"]),
        text(&d["policy_version"]),
        text(&d["rule_ids"]),
        text(&d["reason"])
    )
}

/// One of an item's `approvals` in words, with what is left of a grant.
pub fn approval_text(t: &Value) -> String {
    let mut s = format!("{} {}", text(&t["ticket"]), text(&t["status"]));
    if t["status"] == "granted" {
        s.push_str(&format!(
            " by {} ({}, used {} of {} executions, {} of {} cost micros)",
            text(&t["approver"]),
            text(&t["scope"]),
            text(&t["used_count"]),
            text(&t["max_count"]),
            text(&t["used_cost_micros"]),
            text(&t["max_cost_micros"])
        ));
    }
    s
}

/// One of an item's `budgets` in words: counters against limits in the window.
pub fn budget_text(b: &Value) -> String {
    format!(
        "{}: {} of {} tokens, {} of {} cost micros ({} window)",
        text(&b["budget_id"]),
        text(&b["tokens"]),
        text(&b["limit_tokens"]),
        text(&b["cost_micros"]),
        text(&b["limit_cost_micros"]),
        text(&b["window"])
    )
}

/// An enum's wire name (`require_approval`, `day`, ...), as producers write it.
fn wire<T: serde::Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        other => format!("{other:?}"),
    }
}

/// One line saying what an entry was: its event's [`summary`], marked `REFUSED
/// (reason)` for a refusal that kept its body; `REJECTED (reason): detail` for a
/// rejection without one.
pub fn entry_summary(entry: &Entry, env: Option<&Envelope>) -> String {
    match (env, &entry.verdict) {
        (Some(env), Verdict::Accepted { .. }) => summary(env),
        (Some(env), Verdict::Rejected { reason, .. }) => {
            format!("REFUSED ({reason}): {}", summary(env))
        }
        (None, Verdict::Rejected { reason, detail, .. }) => {
            format!("REJECTED ({reason}): {detail}")
        }
        (None, Verdict::Accepted { event_type, .. }) => format!("{event_type} (body unreadable)"),
    }
}

/// One line saying what the event was.
pub fn summary(env: &Envelope) -> String {
    let who = |a: &govledger_schemas::ActorChain| {
        a.agent
            .as_ref()
            .map(|x| format!("agent {x}"))
            .or_else(|| a.user.as_ref().map(|x| format!("user {x}")))
            .or_else(|| a.service.as_ref().map(|x| format!("service {x}")))
            .unwrap_or_else(|| "someone".into())
    };
    match &env.event {
        Event::SessionStarted(c) => format!("{} started session {}", who(&c.actor), c.session),
        Event::SessionSuspended(c) => format!(
            "{} suspended session {}{}",
            who(&c.actor),
            c.session,
            opt(":", &c.reason)
        ),
        Event::SessionResumed(c) => format!("{} resumed session {}", who(&c.actor), c.session),
        Event::SessionEnded(c) => format!("{} ended session {}", who(&c.actor), c.session),
        Event::ActionProposed(p) => format!(
            "{} proposed {} on {} (risk {}) as {} in session {}",
            who(&p.actor),
            p.action,
            p.resource,
            wire(&p.risk_tier),
            p.proposal,
            p.session
        ),
        Event::PolicyDecided(d) => format!(
            "policy {}@{} decided {} on {}: {}",
            d.policy_id,
            d.policy_version,
            wire(&d.decision),
            d.proposal,
            d.reason
        ),
        Event::ApprovalRequested(r) => format!(
            "{} requested approval {} for {}",
            who(&r.actor),
            r.ticket,
            r.proposal
        ),
        Event::ApprovalGranted(g) => format!(
            "{} granted approval {} for {} (scope {}{}{})",
            g.approver,
            g.ticket,
            g.proposal,
            wire(&g.scope),
            opt("max count", &g.max_count),
            opt("max cost micros", &g.max_cost_micros)
        ),
        Event::ApprovalDenied(d) => format!(
            "{} denied approval {} for {}: {}",
            d.approver, d.ticket, d.proposal, d.reason
        ),
        Event::ActionExecuted(x) => format!(
            "{} executed {}: {}{}{}",
            who(&x.actor),
            x.proposal,
            wire(&x.outcome),
            opt("cost micros", &x.cost_micros),
            opt("tokens", &x.tokens)
        ),
        Event::BudgetConfigured(b) => format!(
            "budget {} configured ({} window{}{}{})",
            b.budget_id,
            wire(&b.window),
            opt("limit tokens", &b.limit_tokens),
            opt("limit cost micros", &b.limit_cost_micros),
            if b.kill_on_exceed {
                ", kill on exceed"
            } else {
                ""
            }
        ),
        Event::BudgetIncremented(b) => format!(
            "spent {} tokens and {} cost micros on {}",
            b.tokens, b.cost_micros, b.model
        ),
        Event::KillswitchEngaged(k) => format!(
            "{} engaged the kill switch on {} {}: {}",
            who(&k.actor),
            wire(&k.scope),
            k.target,
            k.reason
        ),
        Event::KillswitchReleased(k) => format!(
            "{} released the kill switch on {} {}: {}",
            who(&k.actor),
            wire(&k.scope),
            k.target,
            k.reason
        ),
        Event::KeyRegistered(k) => format!("key {} registered", k.key_id),
        Event::KeyRotated(k) => format!("key {} rotated to {}", k.key_id, k.new_key_id),
        Event::KeyRevoked(k) => format!("key {} revoked: {}", k.key_id, k.reason),
        Event::Telemetry(t) => format!("telemetry {}", t.name),
    }
}

fn item_json(
    entry: &Entry,
    env: Option<&Envelope>,
    adm: &Admission,
    decisions: &BTreeMap<(String, String), Value>,
) -> Value {
    let mut v = json!({
        "seq": entry.seq.0,
        "time_ns": entry.time_ns,
        "time": format_rfc3339(entry.time_ns),
        "tenant": entry.tenant(),
        "event_id": entry.event_id(),
        "event_type": env.map(|e| e.kind().as_str()),
        "key_id": entry.key_id,
    });
    match &entry.verdict {
        Verdict::Accepted { .. } => {
            v["verdict"] = json!("accepted");
        }
        Verdict::Rejected { reason, detail, .. } => {
            v["verdict"] = json!("rejected");
            v["reason"] = json!(reason.to_string());
            v["detail"] = json!(detail);
        }
    }
    v["summary"] = json!(entry_summary(entry, env));
    let Some(env) = env else { return v };
    let tenant = env.tenant.as_str();
    if let Some(p) = crate::scope::refs(&env.event).proposal {
        v["proposal"] = json!(p);
        let prop = adm.flows().proposal(tenant, p);
        if let Some(d) = decisions.get(&(tenant.to_owned(), p.to_owned())) {
            v["decision"] = d.clone();
        } else if let Some(d) = prop.and_then(|p| p.decision) {
            // Decided before the walk began: the state keeps the decision alone.
            v["decision"] = json!({"seq": null, "decision": d});
        }
        if let Some(prop) = prop {
            v["proposal_status"] = json!(prop.status.as_str());
        }
        let approvals: Vec<Value> = adm
            .flows()
            .tickets_for(tenant, p)
            .map(|(id, ticket)| match &ticket.status {
                TicketStatus::Requested => json!({"ticket": id, "status": "requested"}),
                TicketStatus::Denied => json!({"ticket": id, "status": "denied"}),
                TicketStatus::Granted(g) => json!({
                    "ticket": id, "status": "granted", "approver": g.approver,
                    "scope": wire(&g.scope),
                    "max_count": g.max_count, "used_count": g.used_count,
                    "max_cost_micros": g.max_cost_micros,
                    "used_cost_micros": g.used_cost_micros,
                    "expires_at_ns": g.expires_at_ns,
                }),
            })
            .collect();
        v["approvals"] = json!(approvals);
    }
    if let Event::BudgetIncremented(b) = &env.event {
        let budgets: Vec<Value> = adm
            .budgets()
            .applicable(tenant, &b.scope)
            .map(|(id, budget)| {
                let (tokens, cost) = budget.usage_at(entry.time_ns);
                json!({"budget_id": id, "tokens": tokens, "cost_micros": cost,
                       "limit_tokens": budget.terms.limit_tokens,
                       "limit_cost_micros": budget.terms.limit_cost_micros,
                       "window": wire(&budget.terms.window)})
            })
            .collect();
        v["budgets"] = json!(budgets);
    }
    v
}
