//! `explain`: why one entry was accepted or rejected, and the earlier entries that
//! made it so.
//!
//! The verdict and reason come from the entry itself. The earlier entries come from
//! one pass over the log before it, remembering for every id the entries that
//! shaped it: the key that signed it (its `key.registered` or `key.rotated`, or the
//! trust file), its session's last change, its proposal with the decisions and
//! approvals on it, the kill switches engaged in its scope at the time, the budgets
//! that apply to a spend, and, for a duplicate, the entry that first carried its id.
//! Each is listed with the relation that ties it to the entry, in log order.

use std::collections::BTreeMap;

use govledger_ingest::fold_input;
use govledger_ledger::store::LogStore;
use govledger_ledger::{Ledger, LedgerError};
use govledger_projections::budgets::applies;
use govledger_schemas::{Entry, Envelope, Event, KillScope, RejectReason, Verdict};

use crate::scope::{envelope, refs};

/// An earlier entry that bears on the one explained.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cause {
    /// Its seq.
    pub seq: u64,
    /// How it bears on the entry, e.g. `registered the signing key`.
    pub relation: String,
}

/// Why an entry stands as it does.
#[derive(Clone, Debug)]
pub struct Explanation {
    /// The entry.
    pub entry: Entry,
    /// Its decoded body, when it keeps one.
    pub envelope: Option<Envelope>,
    /// The earlier entries that made it so, by seq.
    pub causes: Vec<Cause>,
    /// Where the signing key came from: `None` when unknown to the log (a root key
    /// from the trust file, or no key at all).
    pub key_entry: Option<u64>,
}

type K2 = (String, String);

/// What the pass remembers, per tenant-qualified id: the seqs of the entries that
/// shaped it, in log order.
#[derive(Default)]
struct Memory {
    keys: BTreeMap<String, u64>,
    sessions: BTreeMap<K2, Vec<(u64, &'static str)>>,
    proposals: BTreeMap<K2, Vec<(u64, &'static str)>>,
    kills: BTreeMap<(String, KillScope, String), (u64, bool)>,
    budgets: BTreeMap<K2, (u64, govledger_schemas::BudgetScope)>,
    first_id: BTreeMap<K2, u64>,
}

impl Memory {
    fn learn(&mut self, entry: &Entry, env: &Envelope) {
        let seq = entry.seq.0;
        let t = env.tenant.as_str().to_owned();
        let k = |id: &str| (t.clone(), id.to_owned());
        self.first_id.entry(k(env.id.as_str())).or_insert(seq);
        let mut on_proposal = |p: &str, what: &'static str| {
            self.proposals.entry(k(p)).or_default().push((seq, what));
        };
        match &env.event {
            Event::ActionProposed(p) => on_proposal(p.proposal.as_str(), "proposed it"),
            Event::PolicyDecided(d) => on_proposal(d.proposal.as_str(), "the policy decision"),
            Event::ApprovalRequested(r) => {
                on_proposal(r.proposal.as_str(), "requested an approval")
            }
            Event::ApprovalGranted(g) => on_proposal(g.proposal.as_str(), "granted an approval"),
            Event::ApprovalDenied(d) => on_proposal(d.proposal.as_str(), "denied an approval"),
            Event::ActionExecuted(x) => on_proposal(x.proposal.as_str(), "an earlier execution"),
            _ => {}
        }
        let session_change = match &env.event {
            Event::SessionStarted(c) => Some((c, "started the session")),
            Event::SessionSuspended(c) => Some((c, "suspended the session")),
            Event::SessionResumed(c) => Some((c, "resumed the session")),
            Event::SessionEnded(c) => Some((c, "ended the session")),
            _ => None,
        };
        if let Some((c, what)) = session_change {
            self.sessions
                .entry(k(c.session.as_str()))
                .or_default()
                .push((seq, what));
        }
        match &env.event {
            Event::KillswitchEngaged(x) => {
                self.kills.insert(
                    (t.clone(), x.scope, x.target.as_str().to_owned()),
                    (seq, true),
                );
            }
            Event::KillswitchReleased(x) => {
                self.kills.insert(
                    (t.clone(), x.scope, x.target.as_str().to_owned()),
                    (seq, false),
                );
            }
            Event::BudgetConfigured(b) => {
                self.budgets
                    .insert(k(b.budget_id.as_str()), (seq, b.scope.clone()));
            }
            Event::KeyRegistered(r) => {
                self.keys.insert(r.key_id.as_str().to_owned(), seq);
            }
            Event::KeyRotated(r) => {
                self.keys.insert(r.new_key_id.as_str().to_owned(), seq);
            }
            _ => {}
        }
    }
}

/// Explains the entry at `seq` of `ledger` (which must be in the log), reading
/// entries `0..seq` once. One of them that bears on the state and whose kept body
/// is not an event is an error naming it, as in a fold.
pub fn explain<S: LogStore>(ledger: &Ledger<S>, seq: u64) -> Result<Explanation, LedgerError> {
    let (_, entry) = ledger.entry(seq)?;
    let mut mem = Memory::default();
    for item in crate::entries_from(ledger, 0) {
        let e = item?;
        if e.seq.0 >= seq {
            break;
        }
        // What the state rests on: an entry bearing on it whose body no longer
        // decodes is an error here too, as in every fold.
        let env = fold_input(&e).map_err(|source| LedgerError::Codec {
            seq: e.seq.0,
            source,
        })?;
        if let (Verdict::Accepted { .. }, Some(env)) = (&e.verdict, env) {
            mem.learn(&e, &env);
        }
    }
    let env = envelope(&entry);
    let mut causes: Vec<Cause> = Vec::new();
    let mut cause = |seq: u64, relation: &str| {
        causes.push(Cause {
            seq,
            relation: relation.to_owned(),
        })
    };
    let key_entry = entry.key_id.as_ref().and_then(|k| mem.keys.get(k)).copied();
    if let Some(s) = key_entry {
        cause(s, "registered the signing key");
    }
    if let (Some(RejectReason::Duplicate), Some(id), Some(t)) =
        (entry.reject_reason(), entry.event_id(), entry.tenant())
    {
        if let Some(&s) = mem.first_id.get(&(t.to_owned(), id.to_owned())) {
            cause(s, "first carried this event id");
        }
    }
    if let Some(env) = &env {
        let t = env.tenant.as_str().to_owned();
        let k = |id: &str| (t.clone(), id.to_owned());
        let r = refs(&env.event);
        let (session, proposal, agent) = (r.session, r.proposal, r.actor_agent);
        if let Some(s) = session {
            for (seq, what) in mem.sessions.get(&k(s)).into_iter().flatten() {
                cause(*seq, what);
            }
        }
        if let Some(p) = proposal {
            for (seq, what) in mem.proposals.get(&k(p)).into_iter().flatten() {
                cause(*seq, what);
            }
        }
        // Kill switches engaged, at the time, over the entry's scope.
        for ((kt, scope, target), (seq, engaged)) in &mem.kills {
            let reaches = match scope {
                KillScope::System => true,
                KillScope::Tenant => *kt == t && target == &t,
                KillScope::Agent => *kt == t && agent == Some(target.as_str()),
                KillScope::Session => *kt == t && session == Some(target.as_str()),
            };
            if *engaged && reaches {
                cause(*seq, "engaged a kill switch over it");
            }
        }
        if let Event::BudgetIncremented(b) = &env.event {
            for ((bt, _), (seq, scope)) in &mem.budgets {
                if *bt == t && applies(scope, &b.scope) {
                    cause(*seq, "configured a budget that applies");
                }
            }
        }
    }
    causes.sort_by_key(|c| c.seq);
    Ok(Explanation {
        entry,
        envelope: env,
        causes,
        key_entry,
    })
}

/// The entries with event id `id` (of `tenant`, when given), by seq: one scan of
/// the log, reading only the verdicts (no bodies are decoded).
pub fn find<S: LogStore>(
    ledger: &Ledger<S>,
    id: &str,
    tenant: Option<&str>,
) -> Result<Vec<u64>, LedgerError> {
    let mut out = Vec::new();
    for item in crate::entries_from(ledger, 0) {
        let e = item?;
        if e.event_id() == Some(id) && tenant.is_none_or(|t| e.tenant() == Some(t)) {
            out.push(e.seq.0);
        }
    }
    Ok(out)
}
