//! Budgets: limits on tokens and spend, per identity scope and accounting window.
//!
//! A pure fold like every projection: [`Budgets::check`] (and [`Budgets::exceeded`],
//! for a spend not yet made) says whether a
//! `budget.incremented` fits every budget that applies to it at its event time
//! (an `Err` names the first budget it would exceed); [`Budgets::apply`] counts an
//! accepted increment and returns the warning thresholds it crossed, for alerts.
//!
//! - **Matching by identity subset.** A budget's scope names some of org, team,
//!   user, agent; it applies to an increment whose scope has every one of those
//!   levels with the same value. A budget with only `org` applies to every user and
//!   agent of that org. Several budgets can apply at once; all must hold. They are
//!   found through an index by the first level each budget's scope sets, so an
//!   increment looks at the budgets that can apply to it, not at all its tenant's.
//! - **Windows by event time** (UTC): `day`, `week` (ISO weeks, from Monday),
//!   `month` (calendar), `total` (never resets). Counters restart at the first
//!   increment of a new window.
//! - **Limits** are integers: tokens and micro-units of money. An increment that
//!   would take any applicable budget past a limit is refused and never counted;
//!   reaching a limit exactly is allowed.
//! - **Warnings**: crossing `warn_thresholds_pct` of a limit (the first increment at
//!   or above the threshold in the window) is reported once per window.
//! - `budget.configured` for an existing id replaces its terms and keeps the
//!   current window's counters.

use crate::canon::{Canon, CanonError, Out, Reader};
use crate::digest_map::{DigestMap, Hash, V3Root};
use crate::lookup::{pair, IdLists};
use govledger_schemas::{BudgetConfigured, BudgetScope, BudgetWindow, Envelope, Event, Ident};

const NS_PER_DAY: u64 = 86_400 * 1_000_000_000;

/// The window an event time falls in: an ordinal that changes exactly when the
/// window does (day number, ISO week number, year × 12 + month, or 0).
pub fn window_index(window: BudgetWindow, time_ns: u64) -> u64 {
    let days = time_ns / NS_PER_DAY;
    match window {
        BudgetWindow::Day => days,
        // 1970-01-01 was a Thursday; shifting by 3 days starts weeks on Monday.
        BudgetWindow::Week => (days + 3) / 7,
        BudgetWindow::Month => {
            let (y, m) = year_month(days);
            y * 12 + (m - 1)
        }
        BudgetWindow::Total => 0,
    }
}

/// The civil (proleptic Gregorian) year and month of `days` since 1970-01-01.
fn year_month(days: u64) -> (u64, u64) {
    // Howard Hinnant's days-to-civil algorithm, for non-negative day counts.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month)
}

/// Whether a budget of scope `budget` applies to spend of scope `spend`.
pub fn applies(budget: &BudgetScope, spend: &BudgetScope) -> bool {
    let level = |b: &Option<govledger_schemas::Ident>, s: &Option<govledger_schemas::Ident>| {
        b.as_ref().is_none_or(|b| s.as_ref() == Some(b))
    };
    level(&budget.org, &spend.org)
        && level(&budget.team, &spend.team)
        && level(&budget.user, &spend.user)
        && level(&budget.agent, &spend.agent)
}

/// One budget: its terms and the current window's counters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Budget {
    /// The terms, as last configured.
    pub terms: BudgetConfigured,
    /// The window the counters belong to ([`window_index`]).
    pub window: u64,
    /// Tokens counted in the window.
    pub tokens: u64,
    /// Spend counted in the window, micro-units.
    pub cost_micros: u64,
}

/// A budget that an increment would exceed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exceeded {
    /// The budget.
    pub budget_id: String,
    /// Whether its terms ask for a kill switch when it is exceeded.
    pub kill_on_exceed: bool,
    /// A sentence for people.
    pub message: String,
}

/// A warning threshold crossed by an increment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BudgetWarning {
    /// The tenant.
    pub tenant: String,
    /// The budget.
    pub budget_id: String,
    /// `tokens` or `cost_micros`.
    pub measure: &'static str,
    /// The threshold crossed, percent.
    pub threshold_pct: u8,
    /// Use after the increment.
    pub used: u64,
    /// The limit.
    pub limit: u64,
}

/// The budgets' domain tag.
pub const TAG: &str = "govledger budgets v1";

/// Budgets by (tenant, budget id).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Budgets {
    budgets: DigestMap<(String, String), Budget>,
    /// Each budget's id, ascending, under (tenant, the value of the first level
    /// its scope sets, in the order org, team, user, agent), with that level's
    /// number (0–3; 4, under the empty value, for a scope that sets none).
    /// Derived from the budgets (outside the digest and the snapshot), so that an
    /// increment looks only at the budgets that can apply to its scope: one that
    /// applies sets its first level to the spend's value there.
    by_scope: IdLists<u8>,
}

/// The level number and value a budget of scope `s` is listed under.
fn scope_key(s: &BudgetScope) -> (u8, &str) {
    [&s.org, &s.team, &s.user, &s.agent]
        .into_iter()
        .zip(0u8..)
        .find_map(|(level, i)| level.as_ref().map(|v| (i, v.as_str())))
        .unwrap_or((4, ""))
}

/// The ids of `tenant`'s budgets that may apply to `spend` (every one that does,
/// and maybe others), ascending.
fn candidates<'i>(index: &'i IdLists<u8>, tenant: &str, spend: &BudgetScope) -> Vec<&'i str> {
    let levels = [&spend.org, &spend.team, &spend.user, &spend.agent];
    let keys = levels
        .into_iter()
        .zip(0u8..)
        .filter_map(|(level, i)| level.as_ref().map(|v| (i, v.as_str())))
        .chain([(4, "")]);
    let mut out = Vec::new();
    for (level, value) in keys {
        out.extend(
            index
                .get(tenant, value)
                .iter()
                .filter(|(_, l)| *l == level)
                .map(|(id, _)| id.as_str()),
        );
    }
    // A budget is listed once, with one level, so no id comes twice.
    out.sort_unstable();
    out
}

impl Budget {
    /// Counters as they would stand at `window`, before any increment.
    fn at(&self, window: u64) -> (u64, u64) {
        if self.window == window {
            (self.tokens, self.cost_micros)
        } else {
            (0, 0)
        }
    }

    /// (tokens, cost_micros) counted in the window that event time `time_ns` falls
    /// in: zero once a new window has begun.
    pub fn usage_at(&self, time_ns: u64) -> (u64, u64) {
        self.at(window_index(self.terms.window, time_ns))
    }
}

fn pct_reached(used: u64, limit: u64, pct: u8) -> bool {
    // used / limit >= pct / 100, in integers.
    u128::from(used) * 100 >= u128::from(limit) * u128::from(pct)
}

impl Budgets {
    /// No budgets.
    pub fn new() -> Self {
        Self::default()
    }

    /// The budget `id` of `tenant`.
    pub fn budget(&self, tenant: &str, id: &str) -> Option<&Budget> {
        self.budgets.get(pair(&(tenant, id)))
    }

    /// Every budget, ordered by (tenant, id).
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str, &Budget)> {
        self.budgets
            .iter()
            .map(|((t, b), v)| (t.as_str(), b.as_str(), v))
    }

    /// The budgets of `tenant` that apply to `spend`, in id order.
    pub fn applicable<'a>(
        &'a self,
        tenant: &'a str,
        spend: &'a BudgetScope,
    ) -> impl Iterator<Item = (&'a str, &'a Budget)> + 'a {
        candidates(&self.by_scope, tenant, spend)
            .into_iter()
            .filter_map(move |id| Some((id, self.budgets.get(pair(&(tenant, id)))?)))
            .filter(move |(_, b)| applies(&b.terms.scope, spend))
    }

    /// The first applicable budget of `tenant` (in id order) that spending `tokens`
    /// and `cost_micros` under `spend` at `time_ns` would exceed.
    pub fn exceeded(
        &self,
        tenant: &str,
        spend: &BudgetScope,
        tokens: u64,
        cost_micros: u64,
        time_ns: u64,
    ) -> Option<Exceeded> {
        for (id, b) in self.applicable(tenant, spend) {
            let (t, c) = b.usage_at(time_ns);
            let window = format!("{:?}", b.terms.window).to_lowercase();
            let over = |message: String| Exceeded {
                budget_id: id.to_string(),
                kill_on_exceed: b.terms.kill_on_exceed,
                message,
            };
            if let Some(limit) = b.terms.limit_cost_micros {
                let after = c.saturating_add(cost_micros);
                if after > limit {
                    return Some(over(format!(
                        "budget {id} would be exceeded: spend {after} of {limit} micro-units this {window}"
                    )));
                }
            }
            if let Some(limit) = b.terms.limit_tokens {
                let after = t.saturating_add(tokens);
                if after > limit {
                    return Some(over(format!(
                        "budget {id} would be exceeded: {after} of {limit} tokens this {window}"
                    )));
                }
            }
        }
        None
    }

    /// SHA-256 of the canonical encoding ([`crate::canon`]): tag `"govledger
    /// budgets v1"`; budgets (tenant, id, scope org/team/user/agent as optional
    /// strings, token limit, cost limit, window tag day 0 / week 1 / month 2 / total
    /// 3, warning thresholds, kill_on_exceed, window index, tokens, cost).
    pub fn digest(&self) -> [u8; 32] {
        let mut c = Canon::new(TAG);
        self.encode(&mut c);
        c.finish()
    }

    /// Writes the canonical encoding (without the tag).
    pub fn encode<O: Out>(&self, c: &mut Canon<O>) {
        self.budgets.encode_entries(c, encode_budget);
    }

    /// The number of budgets and the root of their digest map (state digest v2,
    /// [`crate::digest_map`]).
    pub fn root(&mut self) -> (u64, Hash) {
        self.budgets.root(encode_budget)
    }

    /// Whether the ordinals are known (state digest v3).
    pub fn ordinals_known(&self) -> bool {
        self.budgets.ordinals_known()
    }

    /// Forgets the ordinals ([`DigestMap::forget_ordinals`]).
    pub fn forget_ordinals(&mut self) {
        self.budgets.forget_ordinals();
    }

    /// The number of budgets, their ordinal counter and their map's version-3
    /// root ([`crate::digest_map`]); `None` when the ordinals are not known.
    pub fn root_v3(&mut self) -> Option<V3Root> {
        self.budgets.root_v3(encode_budget)
    }

    /// Reads budgets back from [`Budgets::encode`]'s bytes, strictly.
    pub fn decode(r: &mut Reader<'_>) -> Result<Self, CanonError> {
        let ident = |r: &mut Reader<'_>, s: String| {
            Ident::try_from(s).map_err(|e| r.error(format!("not an identifier: {e}")))
        };
        let opt_ident = |r: &mut Reader<'_>| -> Result<Option<Ident>, CanonError> {
            match r.opt_str()? {
                None => Ok(None),
                Some(s) => ident(r, s).map(Some),
            }
        };
        let mut out = Budgets::new();
        let mut ords = r.ordinals();
        out.budgets.read_counter(ords.counter());
        let mut prev = None;
        let n = r.count(52)?;
        out.budgets.reserve(n);
        for _ in 0..n {
            let start = r.offset();
            let key = (r.str()?, r.str()?);
            r.ascending(prev.as_ref(), &key)?;
            let budget_id = ident(r, key.1.clone())?;
            let scope = BudgetScope {
                org: opt_ident(r)?,
                team: opt_ident(r)?,
                user: opt_ident(r)?,
                agent: opt_ident(r)?,
            };
            let limit_tokens = r.opt_u64()?;
            let limit_cost_micros = r.opt_u64()?;
            let window = match r.tag(4, "budget window")? {
                0 => BudgetWindow::Day,
                1 => BudgetWindow::Week,
                2 => BudgetWindow::Month,
                _ => BudgetWindow::Total,
            };
            let warn_thresholds_pct = r.bytes()?.to_vec();
            let kill_on_exceed = r.flag()?;
            let b = Budget {
                terms: BudgetConfigured {
                    budget_id,
                    scope,
                    limit_tokens,
                    limit_cost_micros,
                    window,
                    warn_thresholds_pct,
                    kill_on_exceed,
                },
                window: r.u64()?,
                tokens: r.u64()?,
                cost_micros: r.u64()?,
            };
            let (level, value) = scope_key(&b.terms.scope);
            out.by_scope.add(&key.0, value, &key.1, level);
            out.budgets
                .insert_read(key.clone(), b, r.since(start), ords.next(r)?);
            prev = Some(key);
        }
        ords.end(r)?;
        Ok(out)
    }

    /// Whether `env` is consistent with the budgets at event time `time_ns`: `Err`
    /// is the first budget an increment would exceed.
    pub fn check(&self, env: &Envelope, time_ns: u64) -> Result<(), Exceeded> {
        match &env.event {
            Event::BudgetIncremented(i) => self
                .exceeded(
                    env.tenant.as_str(),
                    &i.scope,
                    i.tokens,
                    i.cost_micros,
                    time_ns,
                )
                .map_or(Ok(()), Err),
            _ => Ok(()),
        }
    }

    /// Folds in an accepted event at event time `time_ns`; returns the warning
    /// thresholds an increment crossed.
    pub fn apply(&mut self, env: &Envelope, time_ns: u64) -> Vec<BudgetWarning> {
        let tenant = env.tenant.as_str();
        match &env.event {
            Event::BudgetConfigured(c) => {
                let window = window_index(c.window, time_ns);
                let id = c.budget_id.as_str();
                let was = self
                    .budgets
                    .get(pair(&(tenant, id)))
                    .map(|b| &b.terms.scope);
                if was != Some(&c.scope) {
                    if let Some(was) = was {
                        self.by_scope.remove(tenant, scope_key(was).1, id);
                    }
                    let (level, value) = scope_key(&c.scope);
                    self.by_scope.add(tenant, value, id, level);
                }
                let b = self.budgets.get_or_insert_with(
                    (tenant.to_string(), c.budget_id.as_str().to_string()),
                    || Budget {
                        terms: c.clone(),
                        window,
                        tokens: 0,
                        cost_micros: 0,
                    },
                );
                if b.terms.window != c.window {
                    // Another kind of window: the old counters mean nothing in it.
                    b.window = window;
                    b.tokens = 0;
                    b.cost_micros = 0;
                }
                b.terms = c.clone();
                Vec::new()
            }
            Event::BudgetIncremented(i) => {
                let mut warnings = Vec::new();
                // Only the budgets that apply are taken to change (the digest
                // rehashes what is taken), in id order.
                for id in candidates(&self.by_scope, tenant, &i.scope) {
                    let applying = |b: &Budget| applies(&b.terms.scope, &i.scope);
                    let Some(b) = self.budgets.get_mut_if(pair(&(tenant, id)), applying) else {
                        continue;
                    };
                    let window = window_index(b.terms.window, time_ns);
                    let (tokens, cost) = b.at(window);
                    let after = (
                        tokens.saturating_add(i.tokens),
                        cost.saturating_add(i.cost_micros),
                    );
                    for (measure, limit, before, now) in [
                        ("cost_micros", b.terms.limit_cost_micros, cost, after.1),
                        ("tokens", b.terms.limit_tokens, tokens, after.0),
                    ] {
                        let Some(limit) = limit else { continue };
                        // Report the highest threshold this increment crossed.
                        if let Some(&pct) = b
                            .terms
                            .warn_thresholds_pct
                            .iter()
                            .rev()
                            .find(|&&p| pct_reached(now, limit, p))
                        {
                            if !pct_reached(before, limit, pct) {
                                warnings.push(BudgetWarning {
                                    tenant: tenant.to_string(),
                                    budget_id: id.to_string(),
                                    measure,
                                    threshold_pct: pct,
                                    used: now,
                                    limit,
                                });
                            }
                        }
                    }
                    b.window = window;
                    b.tokens = after.0;
                    b.cost_micros = after.1;
                }
                warnings
            }
            _ => Vec::new(),
        }
    }
}

/// A budget's canonical bytes: tenant, id, scope (org, team, user, agent), limits,
/// window, thresholds, kill_on_exceed, window index, counters.
fn encode_budget<O: Out>(c: &mut Canon<O>, (t, id): &(String, String), b: &Budget) {
    let s = &b.terms.scope;
    c.str(t).str(id);
    for level in [&s.org, &s.team, &s.user, &s.agent] {
        c.opt_str(level.as_ref().map(|x| x.as_str()));
    }
    c.opt_u64(b.terms.limit_tokens)
        .opt_u64(b.terms.limit_cost_micros);
    c.u8(b.terms.window as u8)
        .bytes(&b.terms.warn_thresholds_pct);
    c.u8(u8::from(b.terms.kill_on_exceed));
    c.u64(b.window).u64(b.tokens).u64(b.cost_micros);
}
