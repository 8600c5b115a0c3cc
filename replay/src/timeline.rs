//! Timelines: the entries that concern an agent (or tenant, or session), each with
//! what was in force when it was admitted.
//!
//! Every item carries the entry's verdict (and reject reason), a one-line summary,
//! and, re-derived by folding the log to that entry:
//!
//! - `decision`: for anything about a proposal, the last policy decision on it
//!   (decision, policy id and version, rules, reason, and its entry's seq; one
//!   made before the walk began is found by reading the log back from where it
//!   began);
//! - `approvals`: the approval tickets of that proposal, with what is left of each
//!   grant after the entry;
//! - `budgets`: after a spend, every budget that applies to it, with its counters in
//!   the event's window and its limits;
//! - `proposal_status`: where the proposal stands after the entry.
//!
//! The state comes from folding the log's own entries (from a snapshot only when
//! its digest is the one signed in its checkpoint): a timeline is as trustworthy
//! as `verify` and `replay` say the log is.

use std::collections::{BTreeMap, BTreeSet};

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
        if let Some((key, d)) = decision(entry, env) {
            decisions.insert(key, d);
        }
        if keep {
            items.push(item_json(entry, env, adm, &decisions));
        }
        Ok::<(), LedgerError>(())
    };
    crate::walk(adm, ledger, start, end, progress, &mut visit)?;
    decided_earlier(ledger, start, &mut items, FIRST_STEP_BACK)?;
    Ok(Timeline {
        filter,
        from_ns,
        to_ns,
        entries_scanned: end - start,
        items,
    })
}

/// An accepted policy decision: its `(tenant, proposal)` and an item's
/// `decision` for it.
fn decision(entry: &Entry, env: Option<&Envelope>) -> Option<((String, String), Value)> {
    let (Verdict::Accepted { tenant, .. }, Some(Event::PolicyDecided(d))) =
        (&entry.verdict, env.map(|e| &e.event))
    else {
        return None;
    };
    let value = json!({"seq": entry.seq.0, "decision": d.decision,
                       "policy_id": d.policy_id.as_str(),
                       "policy_version": d.policy_version, "rule_ids": d.rule_ids,
                       "reason": d.reason});
    Some(((tenant.clone(), d.proposal.as_str().to_owned()), value))
}

/// Entries read in the first step back of [`decided_earlier`]'s search.
const FIRST_STEP_BACK: u64 = 4096;

/// Gives the items whose proposal was decided before the walk began (the state
/// there keeps the decision alone: `{"seq": null, "decision"}`) that decision's
/// entry in full, as the walk gives the others: the last accepted
/// `policy.decided` on the proposal before `start`, found by reading back from
/// `start` in steps of `first_step` entries and then twice as many each time,
/// so that a decision shortly before the walk costs a few thousand reads and
/// one far back at most about twice the entries between it and the walk. The
/// entry found must carry the decision the state holds; otherwise the item
/// keeps the state's alone.
fn decided_earlier<S: LogStore>(
    ledger: &Ledger<S>,
    start: u64,
    items: &mut [Value],
    first_step: u64,
) -> Result<(), LedgerError> {
    let key = |item: &Value| -> Option<(String, String)> {
        let decision = item.get("decision")?;
        if !decision.get("seq")?.is_null() {
            return None;
        }
        let tenant = item.get("tenant")?.as_str()?;
        Some((
            tenant.to_owned(),
            item.get("proposal")?.as_str()?.to_owned(),
        ))
    };
    let mut wanted: BTreeSet<_> = items.iter().filter_map(key).collect();
    let tenants: BTreeSet<String> = wanted.iter().map(|(t, _)| t.clone()).collect();
    let mut found = BTreeMap::new();
    let (mut end, mut step) = (start, first_step.max(1));
    while !wanted.is_empty() && end > 0 {
        let from = end.saturating_sub(step);
        // The last decision on each proposal within `from..end`.
        let mut here = BTreeMap::new();
        for entry in crate::entries_from(ledger, from).take((end - from) as usize) {
            let entry = entry?;
            // Only the bodies that may hold one are decoded.
            if entry.event_type() != Some("policy.decided")
                || !entry.tenant().is_some_and(|t| tenants.contains(t))
            {
                continue;
            }
            let env = govledger_ingest::admit::fold_input(&entry).map_err(|source| {
                LedgerError::Codec {
                    seq: entry.seq.0,
                    source,
                }
            })?;
            if let Some((key, d)) = decision(&entry, env.as_ref()) {
                if wanted.contains(&key) {
                    here.insert(key, d);
                }
            }
        }
        for (key, d) in here {
            wanted.remove(&key);
            found.insert(key, d);
        }
        end = from;
        step = step.saturating_mul(2);
    }
    for item in items.iter_mut() {
        let Some(d) = key(item).and_then(|k| found.get(&k)) else {
            continue;
        };
        if item["decision"]["decision"] == d["decision"] {
            item["decision"] = d.clone();
        }
    }
    Ok(())
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
            // Decided before the walk began: the state keeps the decision alone
            // (`decided_earlier` finds its entry once the walk is done).
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

#[cfg(test)]
mod tests {
    use super::*;
    use govledger_ingest::gen::admit_generated;
    use govledger_ingest::GenOptions;
    use govledger_ledger::store::MemStore;

    /// The search back finds, for each proposal decided before `start`, its
    /// last accepted decision, whatever the size of its first step (1: every
    /// step doubles many times over), and leaves alone an item whose state
    /// holds another decision than the entry found.
    #[test]
    fn the_search_back_finds_each_proposals_last_decision_before_the_start() {
        let opts = GenOptions {
            events: 1_500,
            seed: 11,
            tenants: 2,
            ..GenOptions::default()
        };
        let mut ledger = Ledger::create(MemStore::new(), "timeline.test/log").unwrap();
        admit_generated(&mut ledger, opts, 500, &mut |_, _| {}).unwrap();
        let start = 1_200;
        // Each proposal's last decision before `start`, read straight off the log.
        let mut last = BTreeMap::new();
        for entry in crate::entries_from(&ledger, 0).take(start as usize) {
            let entry = entry.unwrap();
            let env = govledger_ingest::admit::fold_input(&entry).unwrap();
            if let Some((key, d)) = decision(&entry, env.as_ref()) {
                last.insert(key, d);
            }
        }
        assert!(last.len() > 100, "the log decides many proposals");
        let item = |(t, p): &(String, String), d: &Value| json!({"tenant": t, "proposal": p, "decision": {"seq": null, "decision": d}});
        for first_step in [1, 7, FIRST_STEP_BACK] {
            let mut items: Vec<Value> = last.iter().map(|(k, d)| item(k, &d["decision"])).collect();
            decided_earlier(&ledger, start, &mut items, first_step).unwrap();
            for (it, d) in items.iter().zip(last.values()) {
                assert_eq!(&it["decision"], d, "first step {first_step}");
            }
        }
        // A decision the state does not hold is not put in its place.
        let (key, d) = last.iter().next().unwrap();
        let other = if d["decision"] == "deny" {
            "allow"
        } else {
            "deny"
        };
        let mut items = vec![item(key, &json!(other))];
        decided_earlier(&ledger, start, &mut items, 1).unwrap();
        assert!(items[0]["decision"]["seq"].is_null());
        assert_eq!(items[0]["decision"]["decision"], other);
    }
}
