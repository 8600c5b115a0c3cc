//! The common case of decoding a body, straight into its event: no tree, no field
//! machinery.
//!
//! [`envelope`] reads the bodies producers actually send for the events that make
//! up nearly all of a ledger (sessions, proposals, decisions, approvals, executions,
//! budget increments, kill switches) in one pass: each member's value is read as it
//! comes into the place of its name, and the event is built from those places once
//! `type` is known. It answers only when the body is valid, with the event the
//! strict decoder builds (an optional member may be absent or `null`, as there);
//! on anything else (an escape, a `null` where a value is required, a float, an
//! unknown or duplicate name, a value out of range, another event type) it gives
//! up with `None`, and the strict decoder reads the body again and says exactly
//! what is wrong. So, like the parser of `parse.rs`, it never decides anything on
//! its own: the differential property tests below hold it to the strict decoder on
//! valid, invalid and mutated bodies.
//!
//! The checks are the strict decoder's own where they can be (id patterns through
//! the id types, the enums' words, `args_digest`'s pattern, the text limits, the
//! names allowed for each type and in actor chains and budget scopes); the few
//! rules written again here (text lengths counted in characters, `max_count` not 0,
//! an agent in a proposal's actor chain, at least one member of an actor chain or
//! a scope, `null` as an absent optional member, every member read) are those
//! tests' business.

use crate::event::*;
use crate::ids::{EventId, Ident, TenantId};

use super::parse::Parser;
use super::{
    allowed_fields, is_sha256_hex, ACTOR_FIELDS, MAX_ACTION_CHARS, MAX_POLICY_VERSION_CHARS,
    MAX_REASON_CHARS, SCOPE_FIELDS,
};

/// The envelope of `text`, when it is a valid body of the kind this reader covers;
/// `None` otherwise (see the module docs).
pub(super) fn envelope(text: &str) -> Option<Envelope> {
    let mut p = Parser::new(text);
    let mut slots = Slots::default();
    members(&mut p, |p, name| {
        let f = field(name)?;
        let bit = 1 << f as u64;
        if slots.present & bit != 0 {
            return None;
        }
        let v = value(p, &mut slots.object, &mut slots.ids)?;
        slots.values[f as usize] = Some(v);
        slots.present |= bit;
        Some(())
    })?;
    if !p.at_end() {
        return None;
    }
    slots.build()
}

/// The top-level names this reader knows: those of the event types it covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Field {
    V,
    Type,
    Id,
    Tenant,
    Session,
    Actor,
    Reason,
    Proposal,
    Action,
    Resource,
    ArgsDigest,
    RiskTier,
    Decision,
    PolicyId,
    PolicyVersion,
    RuleIds,
    Ticket,
    Approver,
    Scope,
    MaxCount,
    MaxCostMicros,
    ResourceIds,
    ExpiresAtNs,
    Outcome,
    CostMicros,
    Tokens,
    Model,
    Target,
}

const FIELDS: usize = Field::Target as usize + 1;

// Sets of fields are bit masks of a `u64`.
const _: () = assert!(FIELDS <= 64);

fn field(name: &str) -> Option<Field> {
    use Field as F;
    Some(match name {
        "v" => F::V,
        "type" => F::Type,
        "id" => F::Id,
        "tenant" => F::Tenant,
        "session" => F::Session,
        "actor" => F::Actor,
        "reason" => F::Reason,
        "proposal" => F::Proposal,
        "action" => F::Action,
        "resource" => F::Resource,
        "args_digest" => F::ArgsDigest,
        "risk_tier" => F::RiskTier,
        "decision" => F::Decision,
        "policy_id" => F::PolicyId,
        "policy_version" => F::PolicyVersion,
        "rule_ids" => F::RuleIds,
        "ticket" => F::Ticket,
        "approver" => F::Approver,
        "scope" => F::Scope,
        "max_count" => F::MaxCount,
        "max_cost_micros" => F::MaxCostMicros,
        "resource_ids" => F::ResourceIds,
        "expires_at_ns" => F::ExpiresAtNs,
        "outcome" => F::Outcome,
        "cost_micros" => F::CostMicros,
        "tokens" => F::Tokens,
        "model" => F::Model,
        "target" => F::Target,
        _ => return None,
    })
}

/// A member's value as read: what the covered types hold (strings without escapes,
/// non-negative integers, objects of strings, arrays of ids, `null`).
#[derive(Clone, Copy, Debug)]
enum Raw<'a> {
    /// An optional member's "none", as if it were absent; for any other, the
    /// strict decoder's error.
    Null,
    Str(&'a str),
    Int(u64),
    /// An object, kept in [`Slots::object`].
    Obj,
    /// An array of ids, kept in [`Slots::ids`].
    Ids,
}

/// An object whose members are all strings (or `null`, as if absent), by name: an
/// actor chain (`user`, `agent`, `service`) or a budget scope (`org`, `team`,
/// `user`, `agent`).
#[derive(Debug, Default)]
struct Flat<'a> {
    user: Option<&'a str>,
    agent: Option<&'a str>,
    service: Option<&'a str>,
    org: Option<&'a str>,
    team: Option<&'a str>,
    /// The names seen, `null` or not, one bit each ([`USER`] …).
    seen: u8,
}

/// The bits of [`Flat::seen`].
const USER: u8 = 1;
const AGENT: u8 = 2;
const SERVICE: u8 = 4;
const ORG: u8 = 8;
const TEAM: u8 = 16;

/// The values of a body's members, in the places of their names.
///
/// The object and the array of ids are kept beside the values, not in them, so
/// that a value is small and owns nothing (a body's slots are made, read and
/// dropped once per body, and most are empty; values that own nothing need no
/// drop of their own). A covered type has one object at most (an actor chain or a
/// budget scope) and one array at most (`rule_ids`, `resource_ids`); a body with a
/// second one is left to the strict decoder.
#[derive(Default)]
struct Slots<'a> {
    values: [Option<Raw<'a>>; FIELDS],
    /// The fields whose values are here and not yet taken, one bit each: so
    /// which names a body has, and whether every one was read, are one word.
    present: u64,
    object: Option<Flat<'a>>,
    ids: Option<Vec<Ident>>,
}

impl<'a> Slots<'a> {
    fn take(&mut self, f: Field) -> Option<Raw<'a>> {
        self.present &= !(1 << f as u64);
        self.values[f as usize].take()
    }

    /// A required member as `read` reads it: absent, `null` or unreadable gives up.
    fn req<T>(&mut self, f: Field, read: impl FnOnce(Raw<'a>) -> Option<T>) -> Option<T> {
        read(self.take(f)?)
    }

    /// An optional member as `read` reads it: `Some(None)` when absent or `null`.
    fn opt<T>(&mut self, f: Field, read: impl FnOnce(Raw<'a>) -> Option<T>) -> Option<Option<T>> {
        match self.take(f) {
            None | Some(Raw::Null) => Some(None),
            Some(v) => read(v).map(Some),
        }
    }

    /// A required id.
    fn id<T: for<'s> TryFrom<&'s str>>(&mut self, f: Field) -> Option<T> {
        self.req(f, id)
    }

    /// An optional id.
    fn opt_id(&mut self, f: Field) -> Option<Option<Ident>> {
        self.opt(f, id)
    }

    fn int(&mut self, f: Field) -> Option<u64> {
        self.req(f, int)
    }

    fn opt_int(&mut self, f: Field) -> Option<Option<u64>> {
        self.opt(f, int)
    }

    /// A required string of `min..=max` characters.
    fn text(&mut self, f: Field, min: usize, max: usize) -> Option<String> {
        self.req(f, |v| text(v, min, max))
    }

    /// An optional string of at most `max` characters.
    fn opt_text(&mut self, f: Field, max: usize) -> Option<Option<String>> {
        self.opt(f, |v| text(v, 0, max))
    }

    /// A required word of an enum.
    fn word<T>(&mut self, f: Field, from: fn(&str) -> Option<T>) -> Option<T> {
        self.req(f, |v| match v {
            Raw::Str(s) => from(s),
            _ => None,
        })
    }

    fn ids(&mut self, f: Field) -> Option<Vec<Ident>> {
        match self.take(f)? {
            Raw::Ids => self.ids.take(),
            _ => None,
        }
    }

    /// A required object of identifiers, holding only names of `allowed`.
    fn flat(&mut self, f: Field, allowed: &[&str]) -> Option<Flat<'a>> {
        match self.take(f)? {
            Raw::Obj => self
                .object
                .take()
                .filter(|o| o.seen & !flat_mask(allowed) == 0),
            _ => None,
        }
    }

    /// A required actor chain: at least one of its members.
    fn actor(&mut self, f: Field) -> Option<ActorChain> {
        let o = self.flat(f, ACTOR_FIELDS)?;
        let actor = ActorChain {
            user: ident(o.user)?,
            agent: ident(o.agent)?,
            service: ident(o.service)?,
        };
        (actor != ActorChain::default()).then_some(actor)
    }

    /// A required budget scope: at least one of its members.
    fn budget_scope(&mut self, f: Field) -> Option<BudgetScope> {
        let o = self.flat(f, SCOPE_FIELDS)?;
        let scope = BudgetScope {
            org: ident(o.org)?,
            team: ident(o.team)?,
            user: ident(o.user)?,
            agent: ident(o.agent)?,
        };
        (scope != BudgetScope::default()).then_some(scope)
    }

    /// The envelope, once every member has been read.
    fn build(&mut self) -> Option<Envelope> {
        use EventType as T;
        use Field as F;
        if !matches!(self.take(F::V)?, Raw::Int(1)) {
            return None;
        }
        let kind: EventType = match self.take(F::Type)? {
            Raw::Str(s) => s.parse().ok()?,
            _ => None?,
        };
        // Every name present must be one the type allows.
        let allowed = allowed_mask(kind)?;
        if self.present & !allowed != 0 {
            return None;
        }
        let id: EventId = self.id(F::Id)?;
        let tenant: TenantId = self.id(F::Tenant)?;
        let s = &mut *self;
        let event = match kind {
            T::SessionStarted => Event::SessionStarted(s.session_change()?),
            T::SessionSuspended => Event::SessionSuspended(s.session_change()?),
            T::SessionResumed => Event::SessionResumed(s.session_change()?),
            T::SessionEnded => Event::SessionEnded(s.session_change()?),
            T::ActionProposed => {
                let actor = s.actor(F::Actor)?;
                actor.agent.as_ref()?;
                let args_digest = s.text(F::ArgsDigest, 0, usize::MAX)?;
                if !is_sha256_hex(&args_digest) {
                    return None;
                }
                Event::ActionProposed(ActionProposed {
                    proposal: s.id(F::Proposal)?,
                    session: s.id(F::Session)?,
                    actor,
                    action: s.text(F::Action, 1, MAX_ACTION_CHARS)?,
                    resource: s.id(F::Resource)?,
                    args_digest,
                    risk_tier: s.word(F::RiskTier, RiskTier::from_word)?,
                })
            }
            T::PolicyDecided => Event::PolicyDecided(PolicyDecided {
                proposal: s.id(F::Proposal)?,
                session: s.id(F::Session)?,
                actor: s.actor(F::Actor)?,
                decision: s.word(F::Decision, Decision::from_word)?,
                policy_id: s.id(F::PolicyId)?,
                policy_version: s.text(F::PolicyVersion, 1, MAX_POLICY_VERSION_CHARS)?,
                rule_ids: s.ids(F::RuleIds)?,
                reason: s.text(F::Reason, 0, MAX_REASON_CHARS)?,
            }),
            T::ApprovalRequested => Event::ApprovalRequested(ApprovalRequested {
                ticket: s.id(F::Ticket)?,
                proposal: s.id(F::Proposal)?,
                session: s.id(F::Session)?,
                actor: s.actor(F::Actor)?,
                reason: s.opt_text(F::Reason, MAX_REASON_CHARS)?,
            }),
            T::ApprovalGranted => {
                let max_count = match s.opt_int(F::MaxCount)? {
                    None => None,
                    Some(n) => Some(u32::try_from(n).ok().filter(|&n| n != 0)?),
                };
                Event::ApprovalGranted(ApprovalGranted {
                    ticket: s.id(F::Ticket)?,
                    proposal: s.id(F::Proposal)?,
                    session: s.id(F::Session)?,
                    approver: s.id(F::Approver)?,
                    scope: s.word(F::Scope, ApprovalScope::from_word)?,
                    max_count,
                    max_cost_micros: s.opt_int(F::MaxCostMicros)?,
                    resource_ids: s.ids(F::ResourceIds)?,
                    expires_at_ns: s.opt_int(F::ExpiresAtNs)?,
                })
            }
            T::ApprovalDenied => Event::ApprovalDenied(ApprovalDenied {
                ticket: s.id(F::Ticket)?,
                proposal: s.id(F::Proposal)?,
                session: s.id(F::Session)?,
                approver: s.id(F::Approver)?,
                reason: s.text(F::Reason, 0, MAX_REASON_CHARS)?,
            }),
            T::ActionExecuted => Event::ActionExecuted(ActionExecuted {
                proposal: s.id(F::Proposal)?,
                session: s.id(F::Session)?,
                actor: s.actor(F::Actor)?,
                outcome: s.word(F::Outcome, Outcome::from_word)?,
                cost_micros: s.opt_int(F::CostMicros)?,
                tokens: s.opt_int(F::Tokens)?,
                ticket: s.opt_id(F::Ticket)?,
            }),
            T::BudgetIncremented => Event::BudgetIncremented(BudgetIncremented {
                scope: s.budget_scope(F::Scope)?,
                session: s.opt_id(F::Session)?,
                proposal: s.opt_id(F::Proposal)?,
                tokens: s.int(F::Tokens)?,
                cost_micros: s.int(F::CostMicros)?,
                model: s.id(F::Model)?,
            }),
            T::KillswitchEngaged => Event::KillswitchEngaged(s.kill_switch()?),
            T::KillswitchReleased => Event::KillswitchReleased(s.kill_switch()?),
            // Read by the strict decoder only.
            T::BudgetConfigured
            | T::KeyRegistered
            | T::KeyRotated
            | T::KeyRevoked
            | T::Telemetry => return None,
        };
        // Every member present has been read and checked.
        if self.present != 0 {
            return None;
        }
        Some(Envelope {
            v: WIRE_VERSION,
            id,
            tenant,
            event,
        })
    }

    fn session_change(&mut self) -> Option<SessionChange> {
        Some(SessionChange {
            session: self.id(Field::Session)?,
            actor: self.actor(Field::Actor)?,
            reason: self.opt_text(Field::Reason, MAX_REASON_CHARS)?,
        })
    }

    fn kill_switch(&mut self) -> Option<KillSwitchChange> {
        Some(KillSwitchChange {
            scope: self.word(Field::Scope, KillScope::from_word)?,
            target: self.id(Field::Target)?,
            reason: self.text(Field::Reason, 0, MAX_REASON_CHARS)?,
            actor: self.actor(Field::Actor)?,
        })
    }
}

/// The bits of [`Flat::seen`] for the names of an object the strict decoder
/// allows; a name it has no bit for gives none (and so is never allowed).
fn flat_mask(names: &[&str]) -> u8 {
    names
        .iter()
        .map(|name| match *name {
            "user" => USER,
            "agent" => AGENT,
            "service" => SERVICE,
            "org" => ORG,
            "team" => TEAM,
            _ => 0,
        })
        .fold(0, |m, bit| m | bit)
}

/// An optional id of a flat object: `Some(None)` when absent.
fn ident(s: Option<&str>) -> Option<Option<Ident>> {
    s.map(Ident::try_from).transpose().ok()
}

/// An id of type `T` as read, if it is one.
fn id<T: for<'s> TryFrom<&'s str>>(v: Raw<'_>) -> Option<T> {
    match v {
        Raw::Str(s) => T::try_from(s).ok(),
        _ => None,
    }
}

fn int(v: Raw<'_>) -> Option<u64> {
    match v {
        Raw::Int(n) => Some(n),
        _ => None,
    }
}

/// A string of `min..=max` characters as read, if it is one.
fn text(v: Raw<'_>, min: usize, max: usize) -> Option<String> {
    match v {
        Raw::Str(s) => within(s, min, max).then(|| s.to_owned()),
        _ => None,
    }
}

/// Whether `s` has `min..=max` characters, as the strict decoder counts them.
fn within(s: &str, min: usize, max: usize) -> bool {
    // No more characters than bytes, and a string that is not empty has one: most
    // need no counting.
    if s.len() <= max && (min == 0 || (min == 1 && !s.is_empty())) {
        return true;
    }
    let n = s.chars().count();
    n >= min && n <= max
}

/// The names `kind` allows, as a set of [`Field`]s (with `v` and `type`), from the
/// strict decoder's own list; `None` for a type that has a name this reader does
/// not know (it is left to the strict decoder).
fn allowed_mask(kind: EventType) -> Option<u64> {
    static MASKS: std::sync::OnceLock<Vec<Option<u64>>> = std::sync::OnceLock::new();
    let masks = MASKS.get_or_init(|| {
        EventType::ALL
            .iter()
            .map(|&k| {
                let base = 1 << Field::V as u64 | 1 << Field::Type as u64;
                allowed_fields(k)
                    .iter()
                    .try_fold(base, |m, name| Some(m | 1 << field(name)? as u64))
            })
            .collect()
    });
    let i = EventType::ALL.iter().position(|&k| k == kind)?;
    masks.get(i).copied().flatten()
}

/// Reads an object, calling `member` with each name, positioned at its value,
/// which `member` must read.
fn members<'a>(
    p: &mut Parser<'a>,
    mut member: impl FnMut(&mut Parser<'a>, &'a str) -> Option<()>,
) -> Option<()> {
    if !p.eat(b'{') {
        return None;
    }
    if p.eat(b'}') {
        return Some(());
    }
    loop {
        let name = string(p)?;
        if !p.eat(b':') {
            return None;
        }
        p.skip_space();
        member(p, name)?;
        if p.eat(b'}') {
            return Some(());
        }
        if !p.eat(b',') {
            return None;
        }
    }
}

/// A string, after white space.
fn string<'a>(p: &mut Parser<'a>) -> Option<&'a str> {
    if !p.next_is(b'"') {
        return None;
    }
    p.string()
}

/// A top-level member's value; an object's goes into `object`, an array's into
/// `ids` (a body's second object or array gives up).
fn value<'a>(
    p: &mut Parser<'a>,
    object: &mut Option<Flat<'a>>,
    ids: &mut Option<Vec<Ident>>,
) -> Option<Raw<'a>> {
    Some(match p.peek()? {
        b'n' if p.word(b"null") => Raw::Null,
        b'"' => Raw::Str(p.string()?),
        b'0'..=b'9' => Raw::Int(p.integer()?),
        b'{' if object.is_none() => {
            *object = Some(flat(p)?);
            Raw::Obj
        }
        b'[' if ids.is_none() => {
            *ids = Some(read_ids(p)?);
            Raw::Ids
        }
        _ => return None,
    })
}

/// An object of strings named as in [`Flat`], each name once.
fn flat<'a>(p: &mut Parser<'a>) -> Option<Flat<'a>> {
    let mut o = Flat::default();
    members(p, |p, name| {
        let (slot, bit) = match name {
            "user" => (&mut o.user, USER),
            "agent" => (&mut o.agent, AGENT),
            "service" => (&mut o.service, SERVICE),
            "org" => (&mut o.org, ORG),
            "team" => (&mut o.team, TEAM),
            _ => return None,
        };
        if o.seen & bit != 0 {
            return None;
        }
        o.seen |= bit;
        if !p.word(b"null") {
            *slot = Some(string(p)?);
        }
        Some(())
    })?;
    Some(o)
}

/// An array of ids.
fn read_ids(p: &mut Parser<'_>) -> Option<Vec<Ident>> {
    let mut ids = Vec::new();
    if !p.eat(b'[') {
        return None;
    }
    if p.eat(b']') {
        return Some(ids);
    }
    loop {
        ids.push(Ident::try_from(string(p)?).ok()?);
        if p.eat(b']') {
            return Some(ids);
        }
        if !p.eat(b',') {
            return None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::{json, Map, Value};

    use crate::decode::decode_text;
    use crate::decode::parse::tests::mutate;

    /// The event types this reader covers.
    const COVERED: [&str; 13] = [
        "session.started",
        "session.suspended",
        "session.resumed",
        "session.ended",
        "action.proposed",
        "policy.decided",
        "approval.requested",
        "approval.granted",
        "approval.denied",
        "action.executed",
        "budget.incremented",
        "killswitch.engaged",
        "killswitch.released",
    ];

    fn pick<T: Clone + std::fmt::Debug + 'static>(items: Vec<T>) -> impl Strategy<Value = T> {
        prop::sample::select(items)
    }

    /// An object of the members given, those not given left out or (with `nulls`)
    /// written as `null`.
    fn flat_object<const N: usize>(members: [(&str, Option<&str>); N], nulls: bool) -> Value {
        let mut m = Map::new();
        for (k, v) in members {
            match v {
                Some(v) => m.insert(k.into(), json!(v)),
                None if nulls => m.insert(k.into(), Value::Null),
                None => None,
            };
        }
        Value::Object(m)
    }

    /// Valid values for each name, by the type's rules.
    fn valid_member(kind: &'static str, name: &'static str) -> BoxedStrategy<Value> {
        let ident =
            pick(vec!["s-1", "agent-2", "a.b:c/d@e-f_G", "p-0000001", "x"]).prop_map(|s| json!(s));
        let actor = (
            prop::option::of(pick(vec!["user-1", "u@x"])),
            prop::option::of(pick(vec!["agent-1", "bot.2"])),
            prop::option::of(pick(vec!["gateway"])),
            any::<bool>(),
        )
            .prop_filter("one member", move |(u, a, s, _)| {
                a.is_some() || (kind != "action.proposed" && (u.is_some() || s.is_some()))
            })
            .prop_map(|(u, a, s, nulls)| {
                flat_object([("user", u), ("agent", a), ("service", s)], nulls)
            });
        let int = pick(vec![0u64, 1, 7, 4_294_967_296, u64::MAX]).prop_map(|n| json!(n));
        let text =
            pick(vec!["", "x", "héllo wörld", "a reason / with: signs"]).prop_map(|s| json!(s));
        match name {
            "id" => pick(vec!["e-1", "evt:2.a_B"])
                .prop_map(|s| json!(s))
                .boxed(),
            "actor" => actor.boxed(),
            "reason" | "policy_version" | "action" => {
                let nonempty = pick(vec!["v3", "héllo", "payments.refund"]).prop_map(|s| json!(s));
                if kind == "session.started" || name != "reason" {
                    nonempty.boxed()
                } else {
                    text.boxed()
                }
            }
            "args_digest" => Just(json!("0123456789abcdef".repeat(4))).boxed(),
            "risk_tier" => pick(vec!["low", "medium", "high", "critical"])
                .prop_map(|s| json!(s))
                .boxed(),
            "decision" => pick(vec!["allow", "deny", "require_approval"])
                .prop_map(|s| json!(s))
                .boxed(),
            "outcome" => pick(vec!["success", "failure", "error"])
                .prop_map(|s| json!(s))
                .boxed(),
            "scope" if kind == "approval.granted" => {
                pick(vec!["once", "session"]).prop_map(|s| json!(s)).boxed()
            }
            "scope" if kind == "budget.incremented" => (
                prop::option::of(pick(vec!["acme"])),
                prop::option::of(pick(vec!["team-a"])),
                prop::option::of(pick(vec!["user-1"])),
                prop::option::of(pick(vec!["agent-1"])),
                any::<bool>(),
            )
                .prop_filter("one member", |(o, t, u, a, _)| {
                    o.is_some() || t.is_some() || u.is_some() || a.is_some()
                })
                .prop_map(|(o, t, u, a, nulls)| {
                    flat_object([("org", o), ("team", t), ("user", u), ("agent", a)], nulls)
                })
                .boxed(),
            "scope" => pick(vec!["session", "agent", "tenant", "system"])
                .prop_map(|s| json!(s))
                .boxed(),
            "max_count" => pick(vec![1u64, 3, 4_294_967_295])
                .prop_map(|n| json!(n))
                .boxed(),
            "rule_ids" | "resource_ids" => prop::collection::vec(ident, 0..3)
                .prop_map(Value::from)
                .boxed(),
            "max_cost_micros" | "expires_at_ns" | "cost_micros" | "tokens" => int.boxed(),
            _ => ident.boxed(),
        }
    }

    /// A valid body of a covered type, every optional member present, absent or
    /// `null`.
    fn valid_body() -> impl Strategy<Value = Value> {
        pick(COVERED.to_vec()).prop_flat_map(|kind| {
            let t: EventType = kind.parse().unwrap();
            let names: Vec<&'static str> = allowed_fields(t).to_vec();
            let members: Vec<_> = names
                .iter()
                .map(|&name| (Just(name), valid_member(kind, name), 0u8..3))
                .collect();
            members.prop_map(move |members| {
                let mut m = Map::new();
                m.insert("v".into(), json!(1));
                m.insert("type".into(), json!(kind));
                m.insert("tenant".into(), json!("acme"));
                // An optional member is present, left out, or `null`.
                for (name, value, how) in members {
                    if name == "tenant" {
                        continue;
                    }
                    match how {
                        1 if optional(kind, name) => {}
                        2 if optional(kind, name) => {
                            m.insert(name.into(), Value::Null);
                        }
                        _ => {
                            m.insert(name.into(), value);
                        }
                    }
                }
                Value::Object(m)
            })
        })
    }

    /// Whether a type's member may be left out.
    fn optional(kind: &str, name: &str) -> bool {
        match kind {
            "approval.granted" => matches!(name, "max_count" | "max_cost_micros" | "expires_at_ns"),
            "action.executed" => matches!(name, "cost_micros" | "tokens" | "ticket"),
            "budget.incremented" => matches!(name, "session" | "proposal"),
            _ => name == "reason" && (kind.starts_with("session.") || kind == "approval.requested"),
        }
    }

    /// Values that break a member in one way or another.
    fn bad_value() -> impl Strategy<Value = Value> {
        pick(vec![
            json!(null),
            json!(true),
            json!(-1),
            json!(1.5),
            json!(0),
            json!(4_294_967_296u64),
            json!(""),
            json!("has space"),
            json!("é"),
            json!("UPPER"),
            json!("x".repeat(129)),
            json!("é".repeat(64)),
            json!("é".repeat(65)),
            json!("x".repeat(65)),
            json!("é".repeat(256)),
            json!("é".repeat(257)),
            json!("é".repeat(1024)),
            json!("é".repeat(1025)),
            json!("x".repeat(1025)),
            json!("q\"uote"),
            json!("0123456789abcdef".repeat(4).to_uppercase()),
            json!([]),
            json!(["ok", 1]),
            json!({}),
            json!({"user": "u"}),
            json!({"org": "o", "service": "s"}),
            json!({"agent": null}),
            json!({"agent": {"deep": "x"}}),
            json!("once"),
            json!("agent"),
            json!("allow"),
            json!("telemetry"),
            json!(2),
        ])
    }

    /// Values at and past the edges of what member `name` may hold.
    fn edge_values(name: &str) -> Vec<Value> {
        let hex = "0123456789abcdef".repeat(4);
        let texts = || {
            let mut v: Vec<Value> = [(1, "é"), (64, "é"), (65, "é"), (65, "x"), (256, "é")]
                .into_iter()
                .chain([(257, "é"), (257, "x"), (1024, "é"), (1025, "é")])
                .map(|(n, c)| json!(c.repeat(n)))
                .collect();
            v.extend([json!(""), json!(1), json!(null)]);
            v
        };
        match name {
            "actor" | "scope" => vec![
                json!({}),
                json!({"user": "u"}),
                json!({"service": "s"}),
                json!({"org": "o"}),
                json!({"agent": "a", "team": "t"}),
                json!({"agent": "a", "service": "s"}),
                json!({"agent": null}),
                json!({"agent": "a", "org": null}),
                json!({"org": "o", "service": null}),
                json!({"user": null, "team": null}),
                json!({"agent": "b d"}),
                json!({"agent": 1}),
                json!("a"),
                json!("once"),
                json!("session"),
                json!("system"),
                json!("Once"),
            ],
            "max_count" | "max_cost_micros" | "expires_at_ns" | "cost_micros" | "tokens" | "v" => {
                vec![
                    json!(0),
                    json!(1),
                    json!(4_294_967_295u64),
                    json!(4_294_967_296u64),
                    json!(u64::MAX),
                    json!(-1),
                    json!(1.5),
                    json!("1"),
                    json!(null),
                ]
            }
            "reason" | "policy_version" | "action" => texts(),
            "args_digest" => vec![
                json!(hex.to_uppercase()),
                json!(hex[1..]),
                json!(format!("{hex}0")),
                json!(hex.replace('a', "g")),
                json!(hex),
            ],
            "rule_ids" | "resource_ids" => vec![
                json!([]),
                json!(["a"]),
                json!(["b d"]),
                json!([1]),
                json!("a"),
                json!([null]),
                json!([["a"]]),
            ],
            "type" => COVERED
                .iter()
                .map(|k| json!(k))
                .chain([json!("telemetry"), json!("x")])
                .collect(),
            "risk_tier" | "decision" | "outcome" => [
                "low",
                "critical",
                "allow",
                "deny",
                "require_approval",
                "success",
                "error",
                "LOW",
                "",
            ]
            .into_iter()
            .map(|w| json!(w))
            .collect(),
            _ => vec![
                json!("a"),
                json!(""),
                json!("b d"),
                json!("é"),
                json!("x".repeat(128)),
                json!("x".repeat(129)),
                json!("a/b@c"),
                json!("e:1"),
                json!(1),
                json!(null),
            ],
        }
    }

    /// A name to break: one a body may carry, or one no type allows.
    fn any_name() -> impl Strategy<Value = &'static str> {
        let mut names: Vec<&'static str> = EventType::ALL
            .iter()
            .flat_map(|&k| allowed_fields(k).iter().copied())
            .chain(["v", "type", "", "Session"])
            .collect();
        names.sort_unstable();
        names.dedup();
        pick(names)
    }

    fn text_of(body: &Value, pretty: bool) -> String {
        if pretty {
            serde_json::to_string_pretty(body).unwrap()
        } else {
            serde_json::to_string(body).unwrap()
        }
    }

    /// What this reader must answer for `text`: nothing, or the strict decoder's
    /// event, for a text that serde_json too reads as JSON (the strict decoder
    /// shares this reader's tokenizer).
    fn agrees(text: &str) -> Result<(), TestCaseError> {
        if let Some(fast) = envelope(text) {
            prop_assert_eq!(decode_text(text), Ok(fast), "on {}", text);
            let json = serde_json::from_str::<serde::de::IgnoredAny>(text);
            prop_assert!(json.is_ok(), "read {} that serde_json refuses", text);
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(20_000))]

        /// On the bodies it is built for, it answers, with the strict decoder's event.
        #[test]
        fn reads_valid_bodies_as_the_strict_decoder_does(body in valid_body(), pretty: bool) {
            let text = text_of(&body, pretty);
            let fast = envelope(&text);
            prop_assert!(fast.is_some(), "gave up on {}", text);
            prop_assert_eq!(decode_text(&text), Ok(fast.unwrap()));
        }

        /// With members broken, added, removed or of another type, it answers only
        /// where the strict decoder accepts, with the same event.
        #[test]
        fn never_accepts_what_the_strict_decoder_refuses(
            body in valid_body(),
            edits in prop::collection::vec(
                (
                    any_name(),
                    any::<(prop::sample::Index, prop::sample::Index)>(),
                    any::<bool>(),
                    prop::option::of(bad_value()),
                ),
                1..3,
            ),
            kind in prop::option::of(pick(COVERED.to_vec())),
            pretty: bool,
        ) {
            let mut body = body;
            let m = body.as_object_mut().unwrap();
            let own: Vec<String> = m.keys().cloned().collect();
            for (name, (at, edge), of_own, value) in edits {
                // Half the time one of the body's own members, with a value at
                // the edges of what it may hold.
                let (name, value) = if of_own {
                    let name = own[at.index(own.len())].as_str();
                    let edges = edge_values(name);
                    (name, Some(edges[edge.index(edges.len())].clone()))
                } else {
                    (name, value)
                };
                match value {
                    Some(v) => m.insert(name.into(), v),
                    None => m.remove(name),
                };
            }
            if let Some(kind) = kind {
                m.insert("type".into(), json!(kind));
            }
            agrees(&text_of(&body, pretty))?;
        }

        /// Nor on bodies with a member written twice (at the top or in an actor
        /// chain or scope, the second time with the same value, another one or
        /// `null`), or with white space JSON does or does not allow.
        #[test]
        fn never_accepts_duplicates_or_foreign_white_space(
            body in valid_body(),
            at in any::<prop::sample::Index>(),
            edge in any::<prop::sample::Index>(),
            how in 0u8..3,
            space in pick(vec![" ", "\t", "\r\n", "\u{b}", "\u{c}", "\u{a0}"]),
        ) {
            let text = text_of(&body, false);
            let m = body.as_object().unwrap();
            // A member of the body, or of its actor chain or scope.
            let mut members: Vec<(Option<&str>, &str, &Value)> =
                m.iter().map(|(k, v)| (None, k.as_str(), v)).collect();
            for outer in ["actor", "scope"] {
                if let Some(Value::Object(inner)) = m.get(outer) {
                    members.extend(inner.iter().map(|(k, v)| (Some(outer), k.as_str(), v)));
                }
            }
            let (outer, name, value) = members[at.index(members.len())];
            let again = match how {
                0 => value.clone(),
                1 => Value::Null,
                _ => {
                    let edges = edge_values(name);
                    edges[edge.index(edges.len())].clone()
                }
            };
            let opening = match outer {
                None => "{".to_owned(),
                Some(outer) => format!("\"{outer}\":{{"),
            };
            let member = format!("\"{name}\":{again},");
            let twice = text.replacen(&opening, &format!("{opening}{member}"), 1);
            prop_assert!(envelope(&twice).is_none(), "read {}", twice);
            agrees(&twice)?;
            agrees(&text.replace(',', &format!("{space},{space}")))?;
            agrees(&text.replace(':', &format!("{space}:{space}")))?;
        }

        /// Nor on bodies with bytes changed, inserted, removed or cut.
        #[test]
        fn never_accepts_what_the_strict_decoder_refuses_in_mutated_bytes(
            body in valid_body(),
            edits in prop::collection::vec(
                (any::<prop::sample::Index>(),
                 pick(b"\"\\,:{}[]0123456789-+.eE tfnrul\x00\x01\x7f\nxA/".to_vec()),
                 0u8..4),
                1..4,
            ),
        ) {
            let mut text = text_of(&body, false);
            for edit in edits {
                match mutate(&text, edit) {
                    Some(next) => text = next,
                    None => break,
                }
            }
            agrees(&text)?;
        }
    }

    #[test]
    fn leaves_other_types_and_other_forms_to_the_strict_decoder() {
        let reads = |s: &str| envelope(s).is_some();
        let base = r#"{"actor":{"agent":"a"},"id":"e1","session":"s1","tenant":"acme","type":"session.started","v":1}"#;
        assert!(reads(base));
        for other in [
            // An escape, a required member null, a float, a member twice, trailing
            // data.
            base.replace(r#""s1""#, r#""s\u0031""#),
            base.replace(r#""s1""#, "null"),
            base.replace(r#""agent":"a""#, r#""agent":null"#),
            base.replace(r#""v":1"#, r#""v":1.0"#),
            base.replace(r#""v":1"#, r#""v":1,"v":1"#),
            base.replace(r#""agent":"a""#, r#""agent":"a","agent":"b""#),
            base.replace(r#""agent":"a""#, r#""agent":"a","agent":null"#),
            base.replace(r#""agent":"a""#, r#""agent":null,"agent":"a""#),
            format!("{base} x"),
            // Types it does not cover.
            r#"{"actor":{"agent":"a"},"id":"e1","name":"n","tenant":"acme","type":"telemetry","v":1}"#.into(),
            r#"{"id":"e1","key_id":"acme/k","reason":"","tenant":"acme","type":"key.revoked","v":1}"#.into(),
        ] {
            assert!(!reads(&other), "{other}");
        }
        // An optional member `null`, as if absent.
        let null = base.replace(r#""session":"s1","#, r#""reason":null,"session":"s1","#);
        assert_eq!(envelope(&null), envelope(base));
        let null = base.replace(r#""agent":"a""#, r#""agent":"a","user":null"#);
        assert_eq!(envelope(&null), envelope(base));
        // White space anywhere JSON allows it.
        assert!(reads(&format!(
            " \n{}\t",
            base.replace(',', " ,\r\n ").replace(':', " : ")
        )));
    }

    #[test]
    fn knows_every_name_of_the_types_it_covers() {
        for kind in COVERED {
            let t: EventType = kind.parse().unwrap();
            assert!(allowed_mask(t).is_some(), "{kind}");
        }
        for kind in [
            "budget.configured",
            "key.registered",
            "key.rotated",
            "telemetry",
        ] {
            let t: EventType = kind.parse().unwrap();
            assert!(allowed_mask(t).is_none(), "{kind}");
        }
    }
}
