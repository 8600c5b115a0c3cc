//! The governance state as one value: the four folds whose digest checkpoints carry.
//!
//! [`State::check`] runs the folds' checks in the order admission applies them (key
//! ring, gates, flows, then budgets) and returns the first refusal; [`State::apply`]
//! folds an accepted event into all four. Admission, replay and the snapshot tests
//! all go through these, so they cannot disagree about what the state is.
//!
//! One refusal changes the state: an increment refused by a budget whose terms set
//! `kill_on_exceed` engages a kill switch ([`State::refuse`]) on the spender's
//! agent (or, when the increment names none, its session, else its tenant), with
//! the reason `budget <id> exceeded by event <event id>`. Admission keeps the body
//! of such a refusal (it was verified) so that replay re-derives the engagement
//! from the log alone.

use crate::budgets::{BudgetWarning, Budgets, Exceeded};
use crate::canon::{state_digest, Canon};
use crate::flows::Flows;
use crate::gates::Gates;
use crate::keys::KeyRing;
use crate::DIGEST_APART_ENTRIES;
use govledger_schemas::{Envelope, Event, KillScope};

/// Why an event is refused by the state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// It breaks an invariant of the key ring, the gates or the flows.
    Invariant(String),
    /// It would take a budget past a limit.
    Budget(Exceeded),
}

impl Refusal {
    /// A sentence for people.
    pub fn message(&self) -> &str {
        match self {
            Refusal::Invariant(m) => m,
            Refusal::Budget(e) => &e.message,
        }
    }
}

/// A kill switch the state engaged itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AutoKill {
    /// `agent`, `session` or `tenant`.
    pub scope: KillScope,
    /// The agent, session or tenant stopped.
    pub target: String,
    /// Why: `budget <id> exceeded by event <event id>`.
    pub reason: String,
}

/// The newest version of the state digest, which checkpoints carry whenever
/// the state's ordinals are known ([`State::signed_digest`]).
pub const DIGEST_VERSION: u32 = 3;

/// Key ring, gates, flows and budgets.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct State {
    /// Which key may sign what.
    pub ring: KeyRing,
    /// Sessions and kill switches.
    pub gates: Gates,
    /// Proposals, decisions, approvals and executions.
    pub flows: Flows,
    /// Budgets and their counters.
    pub budgets: Budgets,
}

impl State {
    /// The state before any event, over these trust roots. They are numbered
    /// in key order for state digest v3 ([`State::digest_v3`]), so the order a
    /// trust file lists them in does not change it.
    pub fn new(mut ring: KeyRing) -> Self {
        ring.number_in_key_order();
        State {
            ring,
            ..State::default()
        }
    }

    /// How many proposals, tickets and sessions the state holds room for
    /// without growing its maps (a snapshot decoded with room for the entries
    /// ahead: `snapshot::open_ahead`).
    pub fn capacities(&self) -> [usize; 3] {
        let [proposals, tickets] = self.flows.capacities();
        [proposals, tickets, self.gates.sessions_capacity()]
    }

    /// Whether `env`, at event time `time_ns`, is consistent with the state.
    pub fn check(&self, env: &Envelope, time_ns: u64) -> Result<(), Refusal> {
        self.ring
            .check(env)
            .and_then(|()| self.gates.check(env))
            .and_then(|()| self.flows.check(env, time_ns))
            .map_err(Refusal::Invariant)?;
        self.budgets.check(env, time_ns).map_err(Refusal::Budget)
    }

    /// For an event [`State::check`] refuses at `time_ns`: engages the kill switch
    /// its refusal calls for (an increment past a budget with `kill_on_exceed`) and
    /// returns it; otherwise changes nothing. Admission calls it on refusing, replay
    /// on every refused entry that kept its body, so both derive the same state.
    pub fn refuse(&mut self, env: &Envelope, time_ns: u64) -> Option<AutoKill> {
        let Err(Refusal::Budget(ex)) = self.check(env, time_ns) else {
            return None;
        };
        let Event::BudgetIncremented(inc) = &env.event else {
            return None;
        };
        if !ex.kill_on_exceed {
            return None;
        }
        let tenant = env.tenant.as_str();
        let (scope, target) = match (&inc.scope.agent, &inc.session) {
            (Some(agent), _) => (KillScope::Agent, agent.as_str()),
            (None, Some(session)) => (KillScope::Session, session.as_str()),
            (None, None) => (KillScope::Tenant, tenant),
        };
        let kill = AutoKill {
            scope,
            target: target.to_string(),
            reason: format!(
                "budget {} exceeded by event {}",
                ex.budget_id,
                env.id.as_str()
            ),
        };
        self.gates
            .engage(tenant, scope, &kill.target, kill.reason.clone(), time_ns);
        Some(kill)
    }

    /// Folds in an accepted event; returns the budget warnings it raised.
    pub fn apply(&mut self, env: &Envelope, time_ns: u64) -> Vec<BudgetWarning> {
        self.ring.apply(env, time_ns);
        self.gates.apply(env, time_ns);
        self.flows.apply(env, time_ns);
        self.budgets.apply(env, time_ns)
    }

    /// State digest version 2, which checkpoints carried before version 3
    /// (and carry for a state whose ordinals are not known): SHA-256
    /// of `"govledger state v2"` followed by, for each of the seven maps (keys,
    /// sessions, kill switches, system switches, proposals, tickets, budgets), its
    /// number of entries as a big-endian `u64` and its root
    /// ([`crate::digest_map`]). Kept up to date per change, so it costs in
    /// proportion to what changed since the last call; `&mut` because it updates
    /// those caches, never the state.
    ///
    /// When the flows have [`DIGEST_APART_ENTRIES`] entries or more to hash or
    /// place (a few thousand to hash at a checkpoint at `serve`'s default
    /// spacing; after a snapshot's decode, all of them to place in their
    /// buckets, their hashes taken as they were read), the proposals' root is
    /// computed on a thread of its own beside the other maps'
    /// ([`Flows::roots_beside`]).
    pub fn digest(&mut self) -> [u8; 32] {
        let State {
            ring,
            gates,
            flows,
            budgets,
        } = self;
        let apart = flows.pending() >= DIGEST_APART_ENTRIES;
        let others = || (ring.root(), gates.roots(), budgets.root());
        let (flows, (keys, gates, budgets)) = flows.roots_beside(apart, others);
        let maps = in_order(keys, gates, flows, budgets);
        seven_maps("govledger state v2", maps, |c, (n, root)| {
            c.u64(n).raw32(&root);
        })
    }

    /// State digest version 3 ([`DIGEST_VERSION`], `docs/DESIGN.md`, "State
    /// digest v3"): SHA-256 of `"govledger state v3"` followed by, for each
    /// of the seven maps in version 2's order, its number of entries and its
    /// ordinal counter as big-endian `u64`s and its version-3 root
    /// ([`crate::digest_map`]). `None` when the ordinals are not known (the
    /// state was read from a version-1 snapshot, which does not carry them, or
    /// from one that gives two entries of a map one ordinal). Kept up
    /// to date per change like version 2; the first call builds the version-3
    /// indexes.
    pub fn digest_v3(&mut self) -> Option<[u8; 32]> {
        let State {
            ring,
            gates,
            flows,
            budgets,
        } = self;
        // As for version 2, the proposals apart when there is much to do (and
        // at the first call, which builds the indexes).
        let apart = flows.pending_v3() >= DIGEST_APART_ENTRIES;
        let others = || Some((ring.root_v3()?, gates.roots_v3()?, budgets.root_v3()?));
        let (flows, others) = flows.roots_v3_beside(apart, others);
        let (keys, gates, budgets) = others?;
        let maps = in_order(keys, gates, flows?, budgets);
        Some(seven_maps(
            "govledger state v3",
            maps,
            |c, (n, next, root)| {
                c.u64(n).u64(next).raw32(&root);
            },
        ))
    }

    /// The version-1 state digest ([`crate::canon::state_digest`]), which ledgers
    /// signed before version 2: recomputed from the whole state at every call.
    pub fn digest_v1(&self) -> [u8; 32] {
        state_digest(
            self.ring.digest(),
            self.gates.digest(),
            self.flows.digest(),
            self.budgets.digest(),
        )
    }

    /// The state digest of `version` (1, 2 or 3), or `None` for a version this
    /// build does not know, or version 3 when the ordinals are not known.
    pub fn digest_of(&mut self, version: u32) -> Option<[u8; 32]> {
        match version {
            1 => Some(self.digest_v1()),
            2 => Some(self.digest()),
            3 => self.digest_v3(),
            _ => None,
        }
    }

    /// The state digest a checkpoint signs, with its version: version 3
    /// ([`State::digest_v3`]) when the ordinals are known (a state folded
    /// from the start, or restored from a snapshot that carries them), else
    /// version 2 ([`State::digest`]).
    pub fn signed_digest(&mut self) -> (u32, [u8; 32]) {
        match self.digest_v3() {
            Some(d) => (3, d),
            None => (2, self.digest()),
        }
    }

    /// Forgets the maps' ordinals: [`State::digest_v3`] is `None` from then
    /// on, and [`State::signed_digest`] of version 2. For a state read from a
    /// snapshot whose ordinals no signed digest has covered (one that stands
    /// at a checkpoint of version 1 or 2): they are trusted only once a
    /// version-3 digest has matched them.
    pub fn forget_ordinals(&mut self) {
        self.ring.forget_ordinals();
        self.gates.forget_ordinals();
        self.flows.forget_ordinals();
        self.budgets.forget_ordinals();
    }

    /// Whether the maps' ordinals are known, so that [`State::digest_v3`] is
    /// not `None` for want of them.
    pub fn ordinals_known(&self) -> bool {
        self.ring.ordinals_known()
            && self.gates.ordinals_known()
            && self.flows.ordinals_known()
            && self.budgets.ordinals_known()
    }
}

/// SHA-256 of `tag` and then, for each of the seven maps in the state digests'
/// order (keys, sessions, kill switches, system switches, proposals, tickets,
/// budgets), what `part` writes of it.
fn seven_maps<T>(tag: &str, maps: [T; 7], mut part: impl FnMut(&mut Canon, T)) -> [u8; 32] {
    let mut c = Canon::new(tag);
    for map in maps {
        part(&mut c, map);
    }
    c.finish()
}

/// The seven maps in the state digests' order, from the projections' own.
fn in_order<T>(keys: T, gates: [T; 3], flows: [T; 2], budgets: T) -> [T; 7] {
    let [sessions, kills, system_kills] = gates;
    let [proposals, tickets] = flows;
    [
        keys,
        sessions,
        kills,
        system_kills,
        proposals,
        tickets,
        budgets,
    ]
}
