//! The state views (`govledger state`, and `GET /v1/state/{tenant}/{view}` in
//! `serve`): one JSON rendering of the projected state, shared by both.

use crate::Admission;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use govledger_projections::{KeyRole, KeyStatus, TicketStatus};
use govledger_schemas::BudgetScope;
use serde_json::{json, Value};

/// Which part of the state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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

impl View {
    /// Every view.
    pub const ALL: [View; 5] = [
        View::Budgets,
        View::Approvals,
        View::Killswitches,
        View::Sessions,
        View::Keys,
    ];

    /// Its name: `budgets`, `approvals`, `killswitches`, `sessions`, `keys`.
    pub fn as_str(self) -> &'static str {
        match self {
            View::Budgets => "budgets",
            View::Approvals => "approvals",
            View::Killswitches => "killswitches",
            View::Sessions => "sessions",
            View::Keys => "keys",
        }
    }

    /// The view named `name`.
    pub fn parse(name: &str) -> Option<View> {
        Self::ALL.into_iter().find(|v| v.as_str() == name)
    }
}

impl View {
    /// The fields that identify an item of this view (its key in a diff).
    pub fn key_fields(self) -> &'static [&'static str] {
        match self {
            View::Budgets => &["tenant", "budget_id"],
            View::Approvals => &["tenant", "ticket"],
            View::Killswitches => &["tenant", "scope", "target"],
            View::Sessions => &["tenant", "session"],
            View::Keys => &["key_id"],
        }
    }
}

/// What changed in `view` between two states: items `added`, `removed`, and
/// `changed` (`{"key", "before", "after"}`), each keyed by [`View::key_fields`], in
/// key order.
pub fn diff(view: View, before: &[Value], after: &[Value]) -> Value {
    use std::collections::BTreeMap;
    let key = |v: &Value| -> String {
        view.key_fields()
            .iter()
            .map(|f| match &v[*f] {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect::<Vec<_>>()
            .join("/")
    };
    let b: BTreeMap<String, &Value> = before.iter().map(|v| (key(v), v)).collect();
    let a: BTreeMap<String, &Value> = after.iter().map(|v| (key(v), v)).collect();
    let added: Vec<&Value> = a
        .iter()
        .filter(|(k, _)| !b.contains_key(*k))
        .map(|(_, v)| *v)
        .collect();
    let removed: Vec<&Value> = b
        .iter()
        .filter(|(k, _)| !a.contains_key(*k))
        .map(|(_, v)| *v)
        .collect();
    let changed: Vec<Value> = a
        .iter()
        .filter_map(|(k, v)| match b.get(k) {
            Some(old) if old != v => Some(json!({"key": k, "before": old, "after": v})),
            _ => None,
        })
        .collect();
    json!({"added": added, "removed": removed, "changed": changed})
}

fn b64(bytes: &[u8]) -> String {
    B64.encode(bytes)
}

/// The items of `view`, only `tenant`'s when given (system kill switches, tenant
/// `*`, concern every tenant), in a stable order.
pub fn items(adm: &Admission, view: View, tenant: Option<&str>) -> Vec<Value> {
    items_of(adm, view)
        .into_iter()
        .filter(|(t, _)| tenant.is_none_or(|want| want == t || t == "*"))
        .map(|(_, v)| v)
        .collect()
}

/// `{"view", "tenant", "at", "entries_folded", "items"}`, as `state --json` prints it.
pub fn document(adm: &Admission, view: View, tenant: Option<&str>, at: Option<u64>) -> Value {
    json!({
        "view": view.as_str(),
        "tenant": tenant,
        "at": at,
        "entries_folded": adm.entries_folded(),
        "items": items(adm, view, tenant),
    })
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
fn items_of(adm: &Admission, view: View) -> Vec<(String, Value)> {
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
                    json!({"tenant": t, "scope": govledger_projections::gates::scope_name(scope), "target": target,
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
