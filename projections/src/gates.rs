//! Sessions and kill switches: the gates every action must pass.
//!
//! A pure fold, like every projection: [`Gates::check`] says whether an event is
//! consistent with the state (an `Err` is an invariant violation, with a sentence
//! for people), [`Gates::apply`] folds an accepted event in. Neither reads a clock or
//! does I/O; maps are ordered ([`DigestMap`]s).
//!
//! Sessions move `active → suspended → active → … → ended`; `session.started`
//! creates one (there is no separate "created" step on the wire: a started session
//! is active). Transitions not in this graph are violations:
//!
//! | event | allowed from |
//! |---|---|
//! | `session.started` | (no such session) |
//! | `session.suspended` | active |
//! | `session.resumed` | suspended |
//! | `session.ended` | active, suspended |
//!
//! An *action* — `action.proposed`, `policy.decided` with `allow`, or
//! `action.executed` — needs its session to exist and be active, and no engaged kill
//! switch in its scope: the session, the actor's agent, the tenant, or the system
//! (which covers every tenant). Engaging an engaged switch is allowed (the newest
//! reason stands); releasing one that is not engaged is a violation.
//!
//! Admission also requires that a `system` switch is engaged or released with an
//! operator key (a tenant's admin must not be able to stop every other tenant):
//! `Gates` sees events, not keys. Besides events, [`Gates::engage`] lets the state
//! engage a switch itself, for a budget's `kill_on_exceed` ([`crate::State::refuse`]).

use crate::canon::{Canon, CanonError, Out, Reader};
use crate::digest_map::{DigestMap, Hash, V3Root};
use crate::lookup::{pair, triple};
use govledger_schemas::{ActorChain, Decision, Envelope, Event, KillScope};

/// Where a session stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum SessionStatus {
    /// Started or resumed: actions may run.
    Active,
    /// Suspended: no actions until resumed.
    Suspended,
    /// Ended: for good.
    Ended,
}

impl SessionStatus {
    /// `active`, `suspended` or `ended`.
    pub fn as_str(self) -> &'static str {
        match self {
            SessionStatus::Active => "active",
            SessionStatus::Suspended => "suspended",
            SessionStatus::Ended => "ended",
        }
    }
}

/// One session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    /// Where it stands.
    pub status: SessionStatus,
    /// The agent that started it, if named.
    pub agent: Option<String>,
    /// The user that started it, if named.
    pub user: Option<String>,
    /// Event time of its last change, unix ns.
    pub since_ns: u64,
}

/// An engaged kill switch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Kill {
    /// Why.
    pub reason: String,
    /// Event time it was engaged, unix ns.
    pub since_ns: u64,
}

/// The gates' domain tag.
pub const TAG: &str = "govledger gates v1";

/// Sessions by (tenant, session id) and engaged kill switches by (tenant, scope,
/// target); system switches by target alone, since they cover every tenant.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Gates {
    sessions: DigestMap<(String, String), Session>,
    kills: DigestMap<(String, KillScope, String), Kill>,
    system_kills: DigestMap<String, Kill>,
}

/// The session, agent and actor an action event acts in, if it is one.
fn action_of(event: &Event) -> Option<(&str, &ActorChain)> {
    match event {
        Event::ActionProposed(a) => Some((a.session.as_str(), &a.actor)),
        Event::PolicyDecided(d) if d.decision == Decision::Allow => {
            Some((d.session.as_str(), &d.actor))
        }
        Event::ActionExecuted(x) => Some((x.session.as_str(), &x.actor)),
        _ => None,
    }
}

/// `session`, `agent`, `tenant` or `system`, as on the wire.
pub fn scope_name(scope: KillScope) -> &'static str {
    match scope {
        KillScope::Session => "session",
        KillScope::Agent => "agent",
        KillScope::Tenant => "tenant",
        KillScope::System => "system",
    }
}

impl Gates {
    /// Room for sessions without growing.
    pub(crate) fn sessions_capacity(&self) -> usize {
        self.sessions.capacity()
    }

    /// No sessions, no kill switches.
    pub fn new() -> Self {
        Self::default()
    }

    /// The session `session` of `tenant`.
    pub fn session(&self, tenant: &str, session: &str) -> Option<&Session> {
        self.sessions.get(pair(&(tenant, session)))
    }

    /// Every session, ordered by (tenant, session id).
    pub fn sessions(&self) -> impl Iterator<Item = (&str, &str, &Session)> {
        self.sessions
            .iter()
            .map(|((t, s), v)| (t.as_str(), s.as_str(), v))
    }

    /// Every engaged kill switch as (tenant, scope, target, kill); system switches
    /// with tenant `*`.
    pub fn kills(&self) -> impl Iterator<Item = (&str, KillScope, &str, &Kill)> {
        self.system_kills
            .iter()
            .map(|(target, k)| ("*", KillScope::System, target.as_str(), k))
            .chain(
                self.kills
                    .iter()
                    .map(|((t, scope, target), k)| (t.as_str(), *scope, target.as_str(), k)),
            )
    }

    /// The engaged kill switch that stops an action of `agent` in `session` of
    /// `tenant`, if any: (scope, target, kill).
    pub fn blocking(
        &self,
        tenant: &str,
        session: &str,
        agent: Option<&str>,
    ) -> Option<(KillScope, &str, &Kill)> {
        if let Some((target, k)) = self.system_kills.first() {
            return Some((KillScope::System, target.as_str(), k));
        }
        if self.kills.is_empty() {
            return None;
        }
        let candidates = [
            Some((KillScope::Tenant, tenant)),
            Some((KillScope::Session, session)),
            agent.map(|a| (KillScope::Agent, a)),
        ];
        candidates
            .into_iter()
            .flatten()
            .find_map(|(scope, target)| {
                self.kills
                    .get_key_value(triple(&(tenant, scope, target)))
                    .map(|((_, s, t), k)| (*s, t.as_str(), k))
            })
    }

    /// SHA-256 of the canonical encoding ([`crate::canon`]): tag `"govledger gates
    /// v1"`; sessions (tenant, id, status tag active 0 / suspended 1 / ended 2, agent,
    /// user, since); kill switches (tenant, scope tag session 0 / agent 1 / tenant 2 /
    /// system 3, target, reason, since); system switches (target, reason, since).
    pub fn digest(&self) -> [u8; 32] {
        let mut c = Canon::new(TAG);
        self.encode(&mut c);
        c.finish()
    }

    /// Writes the canonical encoding (without the tag).
    pub fn encode<O: Out>(&self, c: &mut Canon<O>) {
        self.sessions.encode_entries(c, encode_session);
        self.kills.encode_entries(c, encode_kill);
        self.system_kills
            .encode_entries(c, |c, target, k| encode_system_kill(c, target, k));
    }

    /// The size and root of each digest map (state digest v2,
    /// [`crate::digest_map`]): sessions, kill switches, system switches.
    pub fn roots(&mut self) -> [(u64, Hash); 3] {
        [
            self.sessions.root(encode_session),
            self.kills.root(encode_kill),
            self.system_kills
                .root(|c, target, k| encode_system_kill(c, target, k)),
        ]
    }

    /// Whether the ordinals are known (state digest v3).
    pub fn ordinals_known(&self) -> bool {
        self.sessions.ordinals_known()
            && self.kills.ordinals_known()
            && self.system_kills.ordinals_known()
    }

    /// Forgets the ordinals ([`DigestMap::forget_ordinals`]).
    pub fn forget_ordinals(&mut self) {
        self.sessions.forget_ordinals();
        self.kills.forget_ordinals();
        self.system_kills.forget_ordinals();
    }

    /// [`Gates::roots`] of state digest v3 (each with the map's ordinal
    /// counter); `None` when the ordinals are not known.
    pub fn roots_v3(&mut self) -> Option<[V3Root; 3]> {
        Some([
            self.sessions.root_v3(encode_session)?,
            self.kills.root_v3(encode_kill)?,
            self.system_kills
                .root_v3(|c, target, k| encode_system_kill(c, target, k))?,
        ])
    }

    /// Reads gates back from [`Gates::encode`]'s bytes, strictly.
    pub fn decode(r: &mut Reader<'_>) -> Result<Self, CanonError> {
        let mut g = Gates::new();
        let mut ords = r.ordinals();
        g.sessions.read_counter(ords.counter());
        let mut prev = None;
        let n = r.count(27)?;
        g.sessions.reserve(r.room(n));
        for _ in 0..n {
            let start = r.offset();
            let key = (r.str_ref()?, r.str_ref()?);
            r.ascending(prev.as_ref(), &key)?;
            let status = match r.tag(3, "session status")? {
                0 => SessionStatus::Active,
                1 => SessionStatus::Suspended,
                _ => SessionStatus::Ended,
            };
            let s = Session {
                status,
                agent: r.opt_str()?,
                user: r.opt_str()?,
                since_ns: r.u64()?,
            };
            g.sessions
                .insert_read(pair(&key).to_owned(), s, r.since(start), ords.next(r)?);
            prev = Some(key);
        }
        ords.end(r)?;
        let mut ords = r.ordinals();
        g.kills.read_counter(ords.counter());
        let mut prev = None;
        let n = r.count(33)?;
        g.kills.reserve(n);
        for _ in 0..n {
            let start = r.offset();
            let t = r.str()?;
            let scope = match r.tag(3, "kill switch scope")? {
                0 => KillScope::Session,
                1 => KillScope::Agent,
                // System switches are kept apart, by target alone.
                _ => KillScope::Tenant,
            };
            let key = (t, scope, r.str()?);
            r.ascending(prev.as_ref(), &key)?;
            let k = Kill {
                reason: r.str()?,
                since_ns: r.u64()?,
            };
            g.kills
                .insert_read(key.clone(), k, r.since(start), ords.next(r)?);
            prev = Some(key);
        }
        ords.end(r)?;
        let mut ords = r.ordinals();
        g.system_kills.read_counter(ords.counter());
        let mut prev = None;
        let n = r.count(24)?;
        g.system_kills.reserve(n);
        for _ in 0..n {
            let start = r.offset();
            let target = r.str()?;
            r.ascending(prev.as_ref(), &target)?;
            let k = Kill {
                reason: r.str()?,
                since_ns: r.u64()?,
            };
            g.system_kills
                .insert_read(target.clone(), k, r.since(start), ords.next(r)?);
            prev = Some(target);
        }
        ords.end(r)?;
        Ok(g)
    }

    /// Whether `env` is consistent with the state; `Err` says why not.
    pub fn check(&self, env: &Envelope) -> Result<(), String> {
        let tenant = env.tenant.as_str();
        let status = |session: &str| self.session(tenant, session).map(|s| s.status);
        let transition =
            |session: &str, verb: &str, allowed: &[SessionStatus]| match status(session) {
                None => Err(format!(
                    "session {session} of {tenant} was never started; it cannot be {verb}"
                )),
                Some(s) if !allowed.contains(&s) => Err(format!(
                    "session {session} of {tenant} is {}; it cannot be {verb}",
                    s.as_str()
                )),
                Some(_) => Ok(()),
            };
        match &env.event {
            Event::SessionStarted(c) => match status(c.session.as_str()) {
                Some(s) => Err(format!(
                    "session {} of {tenant} already exists ({})",
                    c.session.as_str(),
                    s.as_str()
                )),
                None => Ok(()),
            },
            Event::SessionSuspended(c) => {
                transition(c.session.as_str(), "suspended", &[SessionStatus::Active])
            }
            Event::SessionResumed(c) => {
                transition(c.session.as_str(), "resumed", &[SessionStatus::Suspended])
            }
            Event::SessionEnded(c) => transition(
                c.session.as_str(),
                "ended",
                &[SessionStatus::Active, SessionStatus::Suspended],
            ),
            Event::KillswitchReleased(k) => {
                let engaged = match k.scope {
                    KillScope::System => self.system_kills.contains_key(k.target.as_str()),
                    scope => self
                        .kills
                        .contains_key(triple(&(tenant, scope, k.target.as_str()))),
                };
                if engaged {
                    Ok(())
                } else {
                    Err(format!(
                        "no {} kill switch on {} is engaged for {tenant}; there is nothing to release",
                        scope_name(k.scope),
                        k.target.as_str()
                    ))
                }
            }
            event => match action_of(event) {
                None => Ok(()),
                Some((session, actor)) => {
                    let agent = actor.agent.as_ref().map(|a| a.as_str());
                    if let Some((scope, target, kill)) = self.blocking(tenant, session, agent) {
                        return Err(format!(
                            "{} is stopped by the {} kill switch on {target} (engaged at {}: {})",
                            env.kind().as_str(),
                            scope_name(scope),
                            kill.since_ns,
                            kill.reason
                        ));
                    }
                    match status(session) {
                        Some(SessionStatus::Active) => Ok(()),
                        Some(s) => Err(format!(
                            "{} in session {session} of {tenant}, which is {}",
                            env.kind().as_str(),
                            s.as_str()
                        )),
                        None => Err(format!(
                            "{} in session {session} of {tenant}, which was never started",
                            env.kind().as_str()
                        )),
                    }
                }
            },
        }
    }

    /// Engages the kill switch of `tenant` on (`scope`, `target`) at `time_ns` (the
    /// newest reason stands): for an accepted `killswitch.engaged`, and for the
    /// switches the state engages itself ([`crate::State::refuse`]).
    pub fn engage(
        &mut self,
        tenant: &str,
        scope: KillScope,
        target: &str,
        reason: String,
        time_ns: u64,
    ) {
        let kill = Kill {
            reason,
            since_ns: time_ns,
        };
        match scope {
            KillScope::System => {
                self.system_kills.insert(target.to_string(), kill);
            }
            scope => {
                self.kills
                    .insert((tenant.to_string(), scope, target.to_string()), kill);
            }
        }
    }

    /// Folds in an accepted event at event time `time_ns`. Events that do not
    /// touch sessions or kill switches change nothing.
    pub fn apply(&mut self, env: &Envelope, time_ns: u64) {
        let tenant = env.tenant.as_str();
        let mut set = |c: &govledger_schemas::SessionChange, status: SessionStatus| {
            let id = c.session.as_str();
            if let Some(s) = self.sessions.get_mut(pair(&(tenant, id))) {
                s.status = status;
                s.since_ns = time_ns;
                return;
            }
            // Owned only where a key is added.
            let session = Session {
                status,
                agent: c.actor.agent.as_ref().map(|a| a.as_str().to_string()),
                user: c.actor.user.as_ref().map(|u| u.as_str().to_string()),
                since_ns: time_ns,
            };
            self.sessions
                .insert((tenant.to_string(), id.to_string()), session);
        };
        match &env.event {
            Event::SessionStarted(c) | Event::SessionResumed(c) => set(c, SessionStatus::Active),
            Event::SessionSuspended(c) => set(c, SessionStatus::Suspended),
            Event::SessionEnded(c) => set(c, SessionStatus::Ended),
            Event::KillswitchEngaged(k) => self.engage(
                tenant,
                k.scope,
                k.target.as_str(),
                k.reason.clone(),
                time_ns,
            ),
            Event::KillswitchReleased(k) => match k.scope {
                KillScope::System => {
                    self.system_kills.remove(k.target.as_str());
                }
                scope => {
                    self.kills
                        .remove(triple(&(tenant, scope, k.target.as_str())));
                }
            },
            _ => {}
        }
    }
}

/// A session's canonical bytes: tenant, id, status, agent, user, since.
fn encode_session<O: Out>(c: &mut Canon<O>, (t, id): &(String, String), s: &Session) {
    c.str(t).str(id).u8(s.status as u8);
    c.opt_str(s.agent.as_deref()).opt_str(s.user.as_deref());
    c.u64(s.since_ns);
}

/// A kill switch's canonical bytes: tenant, scope, target, reason, since.
fn encode_kill<O: Out>(
    c: &mut Canon<O>,
    (t, scope, target): &(String, KillScope, String),
    k: &Kill,
) {
    c.str(t)
        .u8(*scope as u8)
        .str(target)
        .str(&k.reason)
        .u64(k.since_ns);
}

/// A system switch's canonical bytes: target, reason, since.
fn encode_system_kill<O: Out>(c: &mut Canon<O>, target: &str, k: &Kill) {
    c.str(target).str(&k.reason).u64(k.since_ns);
}
