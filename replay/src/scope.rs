//! Which entries concern a tenant, an agent or a session: the filter behind
//! `replay --agent`, `timeline`, and incident bundles.
//!
//! An entry concerns agent `A` when its event
//!
//! - names `A` as its actor (`actor.agent`), or as the scope of a spend
//!   (`budget.incremented`) or of a budget (`budget.configured` with `scope.agent`);
//! - refers to a proposal or a session that `A` opened (`action.proposed` or
//!   `session.started` with actor `A`, seen earlier in the log): the policy decisions,
//!   approvals, executions and session changes that others made about `A`'s work;
//! - is a kill switch that reaches `A`: scope `agent` with target `A`, scope `session`
//!   on one of `A`'s sessions, scope `tenant` on a tenant `A` acted in, or scope
//!   `system`;
//! - is a budget configuration without an agent in a tenant `A` acted in (a limit
//!   on a whole org, team or user binds `A` too).
//!
//! An entry concerns session `S` when it names `S` (`session`, or a kill switch on
//! `S`), or refers to a proposal made in `S`. Given several of tenant, agent and
//! session, an entry must concern all of them.
//!
//! A rejected entry keeps no body (except a refusal under `kill_on_exceed`), so it
//! cannot be tied to an agent or session: with `--agent` or `--session` it is left
//! out; with `--tenant` alone it is kept when its tenant is known.
//!
//! Proposals and sessions are learned as entries pass ([`Scope::observe`] learns
//! and answers at once), or from the state at a starting point ([`Scope::seed`]),
//! so that later decisions are tied to their agent.

use std::collections::BTreeSet;

use govledger_ingest::Admission;
use govledger_schemas::{decode_body, DecodeLimits, Entry, Envelope, Event, KillScope};

/// What to keep: every field given must match.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    /// Only this tenant.
    pub tenant: Option<String>,
    /// Only what concerns this agent.
    pub agent: Option<String>,
    /// Only what concerns this session.
    pub session: Option<String>,
}

impl Filter {
    /// Whether no field is set (every entry matches).
    pub fn is_empty(&self) -> bool {
        self.tenant.is_none() && self.agent.is_none() && self.session.is_none()
    }

    /// `{"tenant", "agent", "session"}`, null where not set.
    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({"tenant": self.tenant, "agent": self.agent, "session": self.session})
    }

    /// The filter in words, e.g. `agent bot-7 in tenant acme`.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(a) = &self.agent {
            parts.push(format!("agent {a}"));
        }
        if let Some(s) = &self.session {
            parts.push(format!("session {s}"));
        }
        if let Some(t) = &self.tenant {
            parts.push(format!("tenant {t}"));
        }
        if parts.is_empty() {
            "every entry".into()
        } else {
            parts.join(", ")
        }
    }
}

/// A [`Filter`] plus what it has learned from the entries seen so far.
#[derive(Clone, Debug, Default)]
pub struct Scope {
    filter: Filter,
    /// (tenant, proposal) opened by the agent.
    agent_proposals: BTreeSet<(String, String)>,
    /// (tenant, session) opened by the agent.
    agent_sessions: BTreeSet<(String, String)>,
    /// Tenants the agent acted in.
    agent_tenants: BTreeSet<String>,
    /// (tenant, proposal) made in the session.
    session_proposals: BTreeSet<(String, String)>,
}

/// The ids an event refers to, gathered once.
pub(crate) struct Refs<'a> {
    /// The acting agent (for a spend, the agent it is charged to).
    pub actor_agent: Option<&'a str>,
    /// The session named.
    pub session: Option<&'a str>,
    /// The proposal named.
    pub proposal: Option<&'a str>,
}

pub(crate) fn refs(event: &Event) -> Refs<'_> {
    fn agent(a: &govledger_schemas::ActorChain) -> Option<&str> {
        a.agent.as_ref().map(|i| i.as_str())
    }
    let none = Refs {
        actor_agent: None,
        session: None,
        proposal: None,
    };
    match event {
        Event::SessionStarted(c)
        | Event::SessionSuspended(c)
        | Event::SessionResumed(c)
        | Event::SessionEnded(c) => Refs {
            actor_agent: agent(&c.actor),
            session: Some(c.session.as_str()),
            proposal: None,
        },
        Event::ActionProposed(p) => Refs {
            actor_agent: agent(&p.actor),
            session: Some(p.session.as_str()),
            proposal: Some(p.proposal.as_str()),
        },
        Event::PolicyDecided(d) => Refs {
            actor_agent: agent(&d.actor),
            session: Some(d.session.as_str()),
            proposal: Some(d.proposal.as_str()),
        },
        Event::ApprovalRequested(r) => Refs {
            actor_agent: agent(&r.actor),
            session: Some(r.session.as_str()),
            proposal: Some(r.proposal.as_str()),
        },
        Event::ApprovalGranted(g) => Refs {
            actor_agent: None,
            session: Some(g.session.as_str()),
            proposal: Some(g.proposal.as_str()),
        },
        Event::ApprovalDenied(d) => Refs {
            actor_agent: None,
            session: Some(d.session.as_str()),
            proposal: Some(d.proposal.as_str()),
        },
        Event::ActionExecuted(x) => Refs {
            actor_agent: agent(&x.actor),
            session: Some(x.session.as_str()),
            proposal: Some(x.proposal.as_str()),
        },
        Event::BudgetIncremented(b) => Refs {
            actor_agent: b.scope.agent.as_ref().map(|i| i.as_str()),
            session: b.session.as_ref().map(|i| i.as_str()),
            proposal: b.proposal.as_ref().map(|i| i.as_str()),
        },
        Event::Telemetry(t) => Refs {
            actor_agent: t.actor.as_ref().and_then(agent),
            ..none
        },
        Event::BudgetConfigured(_)
        | Event::KillswitchEngaged(_)
        | Event::KillswitchReleased(_)
        | Event::KeyRegistered(_)
        | Event::KeyRotated(_)
        | Event::KeyRevoked(_) => none,
    }
}

/// Decodes a stored body (validated at admission) for reading; `None` if there is
/// none or it no longer decodes (folding the entry reports that, as an error:
/// [`govledger_ingest::Admission::replay_entry`]).
pub fn envelope(entry: &Entry) -> Option<Envelope> {
    let limits = DecodeLimits {
        max_body_bytes: usize::MAX,
    };
    decode_body(entry.body.as_deref()?, &limits).ok()
}

impl Scope {
    /// A scope that has seen nothing yet.
    pub fn new(filter: Filter) -> Self {
        Scope {
            filter,
            ..Scope::default()
        }
    }

    /// Learns from the state `adm` stands at which proposals and sessions the
    /// agent opened and which proposals the session holds, so a scope can start
    /// mid-log (from a snapshot) instead of at entry 0.
    pub fn seed(&mut self, adm: &Admission) {
        if let Some(a) = self.filter.agent.as_deref() {
            for (t, id, p) in adm.flows().proposals() {
                if p.agent.as_deref() == Some(a) {
                    self.agent_proposals.insert((t.to_owned(), id.to_owned()));
                    self.agent_tenants.insert(t.to_owned());
                }
            }
            for (t, id, s) in adm.gates().sessions() {
                if s.agent.as_deref() == Some(a) {
                    self.agent_sessions.insert((t.to_owned(), id.to_owned()));
                    self.agent_tenants.insert(t.to_owned());
                }
            }
        }
        if let Some(s) = self.filter.session.as_deref() {
            for (t, id, p) in adm.flows().proposals() {
                if p.session == s {
                    self.session_proposals.insert((t.to_owned(), id.to_owned()));
                }
            }
        }
    }

    /// The filter.
    pub fn filter(&self) -> &Filter {
        &self.filter
    }

    /// Learns from `entry` (decoded as `env`, if it has a body) and says whether it
    /// is in scope. Call it for every entry in log order.
    pub fn observe(&mut self, entry: &Entry, env: Option<&Envelope>) -> bool {
        if let Some(t) = &self.filter.tenant {
            if entry.tenant() != Some(t.as_str()) {
                return false;
            }
        }
        let Some(env) = env else {
            return self.filter.agent.is_none() && self.filter.session.is_none();
        };
        let tenant = env.tenant.as_str();
        let r = refs(&env.event);
        let key = |id: &str| (tenant.to_owned(), id.to_owned());
        let mut keep = true;
        if let Some(a) = self.filter.agent.as_deref() {
            if r.actor_agent == Some(a) {
                self.agent_tenants.insert(tenant.to_owned());
                if let Event::ActionProposed(p) = &env.event {
                    self.agent_proposals.insert(key(p.proposal.as_str()));
                }
                if let Event::SessionStarted(c) = &env.event {
                    self.agent_sessions.insert(key(c.session.as_str()));
                }
            }
            keep &= r.actor_agent == Some(a)
                || r.proposal
                    .is_some_and(|p| self.agent_proposals.contains(&key(p)))
                || r.session
                    .is_some_and(|s| self.agent_sessions.contains(&key(s)))
                || match &env.event {
                    Event::KillswitchEngaged(k) | Event::KillswitchReleased(k) => match k.scope {
                        KillScope::Agent => k.target.as_str() == a,
                        KillScope::Session => self.agent_sessions.contains(&key(k.target.as_str())),
                        KillScope::Tenant => self.agent_tenants.contains(tenant),
                        KillScope::System => true,
                    },
                    Event::BudgetConfigured(b) => match &b.scope.agent {
                        Some(x) => x.as_str() == a,
                        None => self.agent_tenants.contains(tenant),
                    },
                    _ => false,
                };
        }
        if let Some(s) = self.filter.session.as_deref() {
            if r.session == Some(s) {
                if let Event::ActionProposed(p) = &env.event {
                    self.session_proposals.insert(key(p.proposal.as_str()));
                }
            }
            keep &= r.session == Some(s)
                || r.proposal
                    .is_some_and(|p| self.session_proposals.contains(&key(p)))
                || match &env.event {
                    Event::KillswitchEngaged(k) | Event::KillswitchReleased(k) => {
                        k.scope == KillScope::Session && k.target.as_str() == s
                    }
                    _ => false,
                };
        }
        keep
    }
}
