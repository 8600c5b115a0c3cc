//! Proposals, decisions, approvals and executions: which action was allowed, by what.
//!
//! A pure fold like every projection: [`Flows::check`] says whether an event is
//! consistent with the state at event time `time_ns` (an `Err` is an invariant
//! violation, with a sentence for people); [`Flows::apply`] folds an accepted event
//! in. Everything is keyed by tenant, so a reference to another tenant's proposal
//! or ticket is a reference to an unknown one.
//!
//! The rules:
//! - `action.proposed` opens a proposal; reusing a proposal id is a violation.
//! - `policy.decided`, `approval.requested`, `approval.granted|denied` must name a
//!   known proposal, in the proposal's own session. A ticket is requested once and
//!   decided once, for the proposal it was requested for.
//! - `action.executed` must name a known proposal, in its session, and be covered by
//!   an `allow` decision on it or by a granted approval:
//!   - `once` covers the proposal it was granted for; `session` covers every later
//!     proposal of the same action in that session;
//!   - not expired at the execution's event time (`expires_at_ns` is exclusive);
//!   - `resource_ids`, when not empty, include the proposal's resource;
//!   - uses left: `max_count` (default 1 for `once`, unlimited for `session`) minus
//!     the executions it already covered;
//!   - spend left: the execution's `cost_micros` fits in `max_cost_micros` minus the
//!     spend it already covered.
//!
//!   When the execution names a `ticket`, that approval must cover it; otherwise an
//!   `allow` decision, or else the first covering approval in ticket-id order, is
//!   used. The approval used has one use and the execution's cost taken off. The
//!   search looks only at the tickets of the execution's session and proposal
//!   (indexes beside the tickets), so its cost does not grow with the tenant's
//!   other tickets.

use crate::canon::{Canon, CanonError, Out, Reader};
use crate::digest_map::{DigestMap, Hash, V3Root};
use crate::lookup::{pair, IdLists};
use govledger_schemas::{ApprovalGranted, ApprovalScope, Decision, Envelope, Event, RiskTier};

/// Where a proposal stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ProposalStatus {
    /// Proposed, no decision yet.
    Proposed,
    /// The policy allowed it.
    Allowed,
    /// The policy denied it.
    Denied,
    /// The policy asked for a human approval.
    AwaitingApproval,
    /// Executed at least once.
    Executed,
}

impl ProposalStatus {
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            ProposalStatus::Proposed => "proposed",
            ProposalStatus::Allowed => "allowed",
            ProposalStatus::Denied => "denied",
            ProposalStatus::AwaitingApproval => "awaiting_approval",
            ProposalStatus::Executed => "executed",
        }
    }
}

/// One proposal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Proposal {
    /// Its session.
    pub session: String,
    /// The proposing agent, if named.
    pub agent: Option<String>,
    /// The action.
    pub action: String,
    /// The resource.
    pub resource: String,
    /// Its risk tier.
    pub risk_tier: RiskTier,
    /// Where it stands.
    pub status: ProposalStatus,
    /// The last policy decision on it.
    pub decision: Option<Decision>,
    /// Executions recorded.
    pub executions: u32,
}

/// Where an approval ticket stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TicketStatus {
    /// Requested, not decided.
    Requested,
    /// Granted with these terms and this much used.
    Granted(Grant),
    /// Denied.
    Denied,
}

/// A granted approval and what is left of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    /// Who approved.
    pub approver: String,
    /// `once` or `session`.
    pub scope: ApprovalScope,
    /// Most executions it covers (None: unlimited).
    pub max_count: Option<u32>,
    /// Most spend it covers, micro-units (None: unlimited).
    pub max_cost_micros: Option<u64>,
    /// Resources it covers (empty: any).
    pub resource_ids: Vec<String>,
    /// Expiry, unix ns, exclusive.
    pub expires_at_ns: Option<u64>,
    /// Executions covered so far.
    pub used_count: u32,
    /// Spend covered so far, micro-units.
    pub used_cost_micros: u64,
}

/// One approval ticket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ticket {
    /// The proposal it was requested for.
    pub proposal: String,
    /// Its session.
    pub session: String,
    /// Where it stands.
    pub status: TicketStatus,
}

/// The flows' domain tag.
pub const TAG: &str = "govledger flows v1";

/// Proposals and tickets by (tenant, id).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Flows {
    proposals: DigestMap<(String, String), Proposal>,
    tickets: DigestMap<(String, String), Ticket>,
    /// The ids of the tickets of each (tenant, session), ascending, and of each
    /// (tenant, proposal): derived from each ticket's own fields (outside the
    /// digest and the snapshot), so a fold and a decoded snapshot build the same.
    /// An execution that names no ticket and has no allow decision looks for an
    /// approval among those of its session (where a `session` approval must be)
    /// and of its proposal (a `once` approval's), not among all its tenant's
    /// tickets.
    by_session: IdLists<()>,
    by_proposal: IdLists<()>,
}

/// The proposals' map, as [`Flows`] holds it.
pub(crate) type Proposals = DigestMap<(String, String), Proposal>;

/// What covers an execution.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Cover {
    Allowed,
    Ticket(String),
}

fn grant_of(g: &ApprovalGranted) -> Grant {
    Grant {
        approver: g.approver.as_str().to_string(),
        scope: g.scope,
        max_count: match (g.max_count, g.scope) {
            (Some(n), _) => Some(n),
            (None, ApprovalScope::Once) => Some(1),
            (None, ApprovalScope::Session) => None,
        },
        max_cost_micros: g.max_cost_micros,
        resource_ids: g
            .resource_ids
            .iter()
            .map(|r| r.as_str().to_string())
            .collect(),
        expires_at_ns: g.expires_at_ns,
        used_count: 0,
        used_cost_micros: 0,
    }
}

impl Flows {
    /// Room for `tickets` more tickets and their lists by proposal and by
    /// session (at most one of each per ticket).
    fn reserve_tickets(&mut self, tickets: usize) {
        self.tickets.reserve(tickets);
        self.by_proposal.reserve(tickets);
        self.by_session.reserve(tickets);
    }

    /// Room without growing: proposals, tickets.
    pub(crate) fn capacities(&self) -> [usize; 2] {
        [self.proposals.capacity(), self.tickets.capacity()]
    }

    /// Room without growing: the tickets' lists by session and by proposal.
    #[cfg(test)]
    pub(crate) fn list_capacities(&self) -> [usize; 2] {
        [self.by_session.capacity(), self.by_proposal.capacity()]
    }

    /// No proposals, no tickets.
    pub fn new() -> Self {
        Self::default()
    }

    /// The proposal `id` of `tenant`.
    pub fn proposal(&self, tenant: &str, id: &str) -> Option<&Proposal> {
        self.proposals.get(pair(&(tenant, id)))
    }

    /// The ticket `id` of `tenant`.
    pub fn ticket(&self, tenant: &str, id: &str) -> Option<&Ticket> {
        self.tickets.get(pair(&(tenant, id)))
    }

    /// Every proposal, ordered by (tenant, id).
    pub fn proposals(&self) -> impl Iterator<Item = (&str, &str, &Proposal)> {
        self.proposals
            .iter()
            .map(|((t, p), v)| (t.as_str(), p.as_str(), v))
    }

    /// Every ticket, ordered by (tenant, id).
    pub fn tickets(&self) -> impl Iterator<Item = (&str, &str, &Ticket)> {
        self.tickets
            .iter()
            .map(|((t, k), v)| (t.as_str(), k.as_str(), v))
    }

    /// The tickets of `tenant` requested for `proposal`, ordered by id: from the
    /// index of tickets by proposal, without walking (and sorting) every ticket.
    pub fn tickets_for<'s>(
        &'s self,
        tenant: &'s str,
        proposal: &str,
    ) -> impl Iterator<Item = (&'s str, &'s Ticket)> + 's {
        self.by_proposal
            .get(tenant, proposal)
            .iter()
            .filter_map(move |(id, ())| Some((id.as_str(), self.ticket(tenant, id)?)))
    }

    /// The known proposal `id` of `tenant` in `session`, or why not.
    fn known(
        &self,
        tenant: &str,
        id: &str,
        session: &str,
        what: &str,
    ) -> Result<&Proposal, String> {
        let p = self
            .proposal(tenant, id)
            .ok_or_else(|| format!("{what} for proposal {id}, which {tenant} never proposed"))?;
        if p.session != session {
            return Err(format!(
                "{what} names session {session}, but proposal {id} belongs to session {}",
                p.session
            ));
        }
        Ok(p)
    }

    /// Why `grant` (ticket `id`) does not cover executing `p` (proposal `pid`) at
    /// `time_ns` with `cost`, if it does not.
    fn uncovered(
        grant: &Grant,
        ticket: &Ticket,
        id: &str,
        pid: &str,
        p: &Proposal,
        time_ns: u64,
        cost: u64,
    ) -> Option<String> {
        match grant.scope {
            ApprovalScope::Once if ticket.proposal != pid => {
                return Some(format!(
                    "approval {id} was granted once, for proposal {}",
                    ticket.proposal
                ))
            }
            ApprovalScope::Session if ticket.session != p.session => {
                return Some(format!(
                    "approval {id} covers session {}, not {}",
                    ticket.session, p.session
                ))
            }
            _ => {}
        }
        if let Some(exp) = grant.expires_at_ns {
            if time_ns >= exp {
                return Some(format!("approval {id} expired at {exp}"));
            }
        }
        if !grant.resource_ids.is_empty() && !grant.resource_ids.contains(&p.resource) {
            return Some(format!(
                "approval {id} does not cover resource {}",
                p.resource
            ));
        }
        if grant.max_count.is_some_and(|m| grant.used_count >= m) {
            return Some(format!(
                "approval {id} is used up ({} of {} executions)",
                grant.used_count,
                grant.max_count.unwrap_or_default()
            ));
        }
        if let Some(max) = grant.max_cost_micros {
            if grant.used_cost_micros.saturating_add(cost) > max {
                return Some(format!(
                    "approval {id} covers {max} micro-units, {} already used; this execution costs {cost}",
                    grant.used_cost_micros
                ));
            }
        }
        None
    }

    /// What covers an execution of proposal `pid`, or why nothing does.
    fn cover(
        &self,
        tenant: &str,
        pid: &str,
        p: &Proposal,
        ticket: Option<&str>,
        time_ns: u64,
        cost: u64,
    ) -> Result<Cover, String> {
        let same_action = |t: &Ticket| {
            t.proposal == pid
                || self
                    .proposal(tenant, &t.proposal)
                    .is_some_and(|q| q.action == p.action)
        };
        if let Some(id) = ticket {
            let t = self.ticket(tenant, id).ok_or_else(|| {
                format!("execution relies on ticket {id}, which {tenant} never requested")
            })?;
            let TicketStatus::Granted(g) = &t.status else {
                return Err(format!(
                    "execution relies on ticket {id}, which was not granted"
                ));
            };
            if g.scope == ApprovalScope::Session && !same_action(t) {
                return Err(format!(
                    "approval {id} covers action {:?} in its session, not {}",
                    self.proposal(tenant, &t.proposal)
                        .map(|q| q.action.as_str())
                        .unwrap_or("?"),
                    p.action
                ));
            }
            return match Self::uncovered(g, t, id, pid, p, time_ns, cost) {
                None => Ok(Cover::Ticket(id.to_string())),
                Some(why) => Err(why),
            };
        }
        if p.decision == Some(Decision::Allow) {
            return Ok(Cover::Allowed);
        }
        let mut why_not = Vec::new();
        for id in self.in_scope(tenant, &p.session, pid) {
            let Some(ticket) = self.ticket(tenant, id) else {
                continue;
            };
            let TicketStatus::Granted(g) = &ticket.status else {
                continue;
            };
            let candidate = match g.scope {
                ApprovalScope::Once => ticket.proposal == pid,
                ApprovalScope::Session => ticket.session == p.session && same_action(ticket),
            };
            if !candidate {
                continue;
            }
            match Self::uncovered(g, ticket, id, pid, p, time_ns, cost) {
                None => return Ok(Cover::Ticket(id.clone())),
                Some(why) => why_not.push(why),
            }
        }
        Err(if why_not.is_empty() {
            format!("proposal {pid} has no allow decision and no approval in scope")
        } else {
            format!(
                "proposal {pid} has no allow decision, and {}",
                why_not.join("; ")
            )
        })
    }

    /// SHA-256 of the canonical encoding ([`crate::canon`]): tag `"govledger flows
    /// v1"`; proposals (tenant, id, session, agent, action, resource, risk tier tag
    /// low 0 … critical 3, status tag in [`ProposalStatus`] order, decision as an
    /// optional tag allow 0 / deny 1 / require_approval 2, executions); tickets
    /// (tenant, id, proposal, session, status tag requested 0 / granted 1 / denied 2,
    /// and for granted: approver, scope tag once 0 / session 1, max count, max cost,
    /// resource ids, expiry, used count, used cost).
    pub fn digest(&self) -> [u8; 32] {
        let mut c = Canon::new(TAG);
        self.encode(&mut c);
        c.finish()
    }

    /// Writes the canonical encoding (without the tag).
    pub fn encode<O: Out>(&self, c: &mut Canon<O>) {
        self.proposals.encode_entries(c, encode_proposal);
        self.tickets.encode_entries(c, encode_ticket);
    }

    /// How many proposals and tickets there are.
    pub fn entries(&self) -> usize {
        self.proposals.len() + self.tickets.len()
    }

    /// How many proposals and tickets [`Flows::roots`] would hash or place in
    /// their buckets now, at most ([`DigestMap::pending`]).
    pub fn pending(&self) -> usize {
        self.proposals.pending() + self.tickets.pending()
    }

    /// [`Flows::roots`] and `others`' result: when `apart`, the proposals' root
    /// on a thread of its own (most of a large state's entries), the tickets'
    /// and then `others` here; otherwise all here, in that order.
    pub fn roots_beside<T>(
        &mut self,
        apart: bool,
        others: impl FnOnce() -> T,
    ) -> ([(u64, Hash); 2], T) {
        let (p, t, other) = self.both_beside(
            apart,
            |p| p.root(encode_proposal),
            |t| t.root(encode_ticket),
            others,
        );
        ([p, t], other)
    }

    /// `proposals` on the proposals (on a thread of its own when `apart`),
    /// `tickets` on the tickets and `others`, as [`Flows::roots_beside`]
    /// runs the roots of either version.
    fn both_beside<P: Send, T, O>(
        &mut self,
        apart: bool,
        proposals: impl FnOnce(&mut Proposals) -> P + Send,
        tickets: impl FnOnce(&mut DigestMap<(String, String), Ticket>) -> T,
        others: impl FnOnce() -> O,
    ) -> (P, T, O) {
        let Flows {
            proposals: p,
            tickets: t,
            ..
        } = self;
        let (p, (t, other)) = crate::beside(
            apart,
            "state-digest",
            || proposals(p),
            || (tickets(t), others()),
        );
        (p, t, other)
    }

    /// The size and root of each digest map (state digest v2,
    /// [`crate::digest_map`]): proposals, tickets.
    pub fn roots(&mut self) -> [(u64, Hash); 2] {
        [
            self.proposals.root(encode_proposal),
            self.tickets.root(encode_ticket),
        ]
    }

    /// [`Flows::pending`] for [`Flows::roots_v3_beside`].
    pub fn pending_v3(&self) -> usize {
        self.proposals.pending_v3() + self.tickets.pending_v3()
    }

    /// Whether both maps' ordinals are known (state digest v3).
    pub fn ordinals_known(&self) -> bool {
        self.proposals.ordinals_known() && self.tickets.ordinals_known()
    }

    /// Forgets the ordinals ([`DigestMap::forget_ordinals`]).
    pub fn forget_ordinals(&mut self) {
        self.proposals.forget_ordinals();
        self.tickets.forget_ordinals();
    }

    /// [`Flows::roots_beside`] for state digest v3: each map's count, ordinal
    /// counter and version-3 root; `None` when the ordinals are not known.
    pub fn roots_v3_beside<T>(
        &mut self,
        apart: bool,
        others: impl FnOnce() -> T,
    ) -> (Option<[V3Root; 2]>, T) {
        let (p, t, other) = self.both_beside(
            apart,
            |p| p.root_v3(encode_proposal),
            |t| t.root_v3(encode_ticket),
            others,
        );
        (p.zip(t).map(|(p, t)| [p, t]), other)
    }

    /// Reads flows back from [`Flows::encode`]'s bytes, strictly.
    pub fn decode(r: &mut Reader<'_>) -> Result<Self, CanonError> {
        let proposals = Self::decode_proposals(r)?;
        let tickets = Self::decode_tickets(r)?;
        Ok(Self::from_parts(proposals, tickets))
    }

    /// The flows from their proposals and their tickets as decoded apart.
    pub(crate) fn from_parts(proposals: Proposals, tickets: Flows) -> Self {
        Flows {
            proposals,
            ..tickets
        }
    }

    /// Where the tickets begin in a flows part, found by reading over the
    /// proposals' fields (as `encode_proposal` writes them and
    /// [`Flows::decode_proposals`] reads them) without decoding them: no string
    /// is checked or copied. `None` when the bytes are not framed so. A snapshot's decode
    /// starts the tickets there on one thread while the proposals are decoded
    /// on another, and falls back to where the proposals' decode ended when the
    /// two differ.
    pub(crate) fn tickets_offset(bytes: &[u8]) -> Option<usize> {
        let mut r = Reader::new("flows", bytes);
        let n = r.count(48).ok()?;
        for _ in 0..n {
            for _ in 0..3 {
                r.bytes().ok()?;
            }
            if r.flag().ok()? {
                r.bytes().ok()?;
            }
            r.bytes().ok()?;
            r.bytes().ok()?;
            r.u8().ok()?;
            r.u8().ok()?;
            if r.flag().ok()? {
                r.u8().ok()?;
            }
            r.u32().ok()?;
        }
        Some(r.offset())
    }

    /// Reads the proposals, the first half of [`Flows::encode`]'s bytes.
    pub(crate) fn decode_proposals(r: &mut Reader<'_>) -> Result<Proposals, CanonError> {
        let mut proposals = Proposals::new();
        let mut ords = r.ordinals();
        proposals.read_counter(ords.counter());
        let mut prev = None;
        let n = r.count(48)?;
        proposals.reserve(r.room(n));
        for _ in 0..n {
            let start = r.offset();
            let key = (r.str_ref()?, r.str_ref()?);
            r.ascending(prev.as_ref(), &key)?;
            let session = r.str()?;
            let agent = r.opt_str()?;
            let action = r.str()?;
            let resource = r.str()?;
            let risk_tier = match r.tag(4, "risk tier")? {
                0 => RiskTier::Low,
                1 => RiskTier::Medium,
                2 => RiskTier::High,
                _ => RiskTier::Critical,
            };
            let status = match r.tag(5, "proposal status")? {
                0 => ProposalStatus::Proposed,
                1 => ProposalStatus::Allowed,
                2 => ProposalStatus::Denied,
                3 => ProposalStatus::AwaitingApproval,
                _ => ProposalStatus::Executed,
            };
            let decision = if r.flag()? {
                Some(match r.tag(3, "decision")? {
                    0 => Decision::Allow,
                    1 => Decision::Deny,
                    _ => Decision::RequireApproval,
                })
            } else {
                None
            };
            let p = Proposal {
                session,
                agent,
                action,
                resource,
                risk_tier,
                status,
                decision,
                executions: r.u32()?,
            };
            proposals.insert_read(pair(&key).to_owned(), p, r.since(start), ords.next(r)?);
            prev = Some(key);
        }
        ords.end(r)?;
        Ok(proposals)
    }

    /// Reads the tickets, the second half of [`Flows::encode`]'s bytes, with
    /// their id lists, into flows without proposals.
    pub(crate) fn decode_tickets(r: &mut Reader<'_>) -> Result<Flows, CanonError> {
        let mut f = Flows::new();
        let mut ords = r.ordinals();
        f.tickets.read_counter(ords.counter());
        let mut prev = None;
        let n = r.count(33)?;
        f.reserve_tickets(r.room(n));
        for _ in 0..n {
            let start = r.offset();
            let key = (r.str_ref()?, r.str_ref()?);
            r.ascending(prev.as_ref(), &key)?;
            let proposal = r.str()?;
            let session = r.str()?;
            let status = match r.tag(3, "ticket status")? {
                0 => TicketStatus::Requested,
                1 => {
                    let approver = r.str()?;
                    let scope = match r.tag(2, "approval scope")? {
                        0 => ApprovalScope::Once,
                        _ => ApprovalScope::Session,
                    };
                    let max_count = r.opt_u32()?;
                    let max_cost_micros = r.opt_u64()?;
                    let n = r.count(8)?;
                    let mut resource_ids = Vec::with_capacity(n);
                    for _ in 0..n {
                        resource_ids.push(r.str()?);
                    }
                    TicketStatus::Granted(Grant {
                        approver,
                        scope,
                        max_count,
                        max_cost_micros,
                        resource_ids,
                        expires_at_ns: r.opt_u64()?,
                        used_count: r.u32()?,
                        used_cost_micros: r.u64()?,
                    })
                }
                _ => TicketStatus::Denied,
            };
            let t = Ticket {
                proposal,
                session,
                status,
            };
            f.index(key.0, key.1, &t.session, &t.proposal);
            f.tickets
                .insert_read(pair(&key).to_owned(), t, r.since(start), ords.next(r)?);
            prev = Some(key);
        }
        ords.end(r)?;
        Ok(f)
    }

    /// Lists ticket `id` of `tenant` under its session and its proposal.
    fn index(&mut self, tenant: &str, id: &str, session: &str, proposal: &str) {
        self.by_session.add(tenant, session, id, ());
        self.by_proposal.add(tenant, proposal, id, ());
    }

    /// The ids of the tickets of `tenant` in `session` or for `proposal`,
    /// ascending, each once.
    fn in_scope<'s>(
        &'s self,
        tenant: &str,
        session: &str,
        proposal: &str,
    ) -> impl Iterator<Item = &'s String> + 's {
        let ids = |index: &'s IdLists<()>, by: &str| index.get(tenant, by).iter().map(|(id, _)| id);
        let (mut a, mut b) = (
            ids(&self.by_session, session).peekable(),
            ids(&self.by_proposal, proposal).peekable(),
        );
        std::iter::from_fn(move || match (a.peek(), b.peek()) {
            (Some(x), Some(y)) if x < y => a.next(),
            (Some(x), Some(y)) if y < x => b.next(),
            (Some(_), Some(_)) => {
                b.next();
                a.next()
            }
            (Some(_), None) => a.next(),
            (None, _) => b.next(),
        })
    }

    /// Whether `env` is consistent with the state at event time `time_ns`.
    pub fn check(&self, env: &Envelope, time_ns: u64) -> Result<(), String> {
        let tenant = env.tenant.as_str();
        match &env.event {
            Event::ActionProposed(a) => match self.proposal(tenant, a.proposal.as_str()) {
                Some(_) => Err(format!(
                    "proposal {} of {tenant} already exists",
                    a.proposal.as_str()
                )),
                None => Ok(()),
            },
            Event::PolicyDecided(d) => self
                .known(tenant, d.proposal.as_str(), d.session.as_str(), "decision")
                .map(|_| ()),
            Event::ApprovalRequested(r) => {
                self.known(
                    tenant,
                    r.proposal.as_str(),
                    r.session.as_str(),
                    "approval request",
                )?;
                match self.ticket(tenant, r.ticket.as_str()) {
                    Some(_) => Err(format!(
                        "ticket {} of {tenant} already exists",
                        r.ticket.as_str()
                    )),
                    None => Ok(()),
                }
            }
            Event::ApprovalGranted(g) => self.decidable(
                tenant,
                g.ticket.as_str(),
                g.proposal.as_str(),
                g.session.as_str(),
            ),
            Event::ApprovalDenied(d) => self.decidable(
                tenant,
                d.ticket.as_str(),
                d.proposal.as_str(),
                d.session.as_str(),
            ),
            Event::ActionExecuted(x) => {
                let pid = x.proposal.as_str();
                let p = self.known(tenant, pid, x.session.as_str(), "execution")?;
                self.cover(
                    tenant,
                    pid,
                    p,
                    x.ticket.as_ref().map(|t| t.as_str()),
                    time_ns,
                    x.cost_micros.unwrap_or(0),
                )
                .map(|_| ())
            }
            _ => Ok(()),
        }
    }

    fn decidable(
        &self,
        tenant: &str,
        ticket: &str,
        proposal: &str,
        session: &str,
    ) -> Result<(), String> {
        self.known(tenant, proposal, session, "approval decision")?;
        let t = self
            .ticket(tenant, ticket)
            .ok_or_else(|| format!("ticket {ticket} of {tenant} was never requested"))?;
        if t.proposal != proposal {
            return Err(format!(
                "ticket {ticket} was requested for proposal {}, not {proposal}",
                t.proposal
            ));
        }
        match t.status {
            TicketStatus::Requested => Ok(()),
            _ => Err(format!("ticket {ticket} of {tenant} was already decided")),
        }
    }

    /// Folds in an accepted event at event time `time_ns`.
    pub fn apply(&mut self, env: &Envelope, time_ns: u64) {
        let tenant = env.tenant.as_str();
        // Owned only where a key is built: most events touch no flow.
        let owned = || tenant.to_string();
        match &env.event {
            Event::ActionProposed(a) => {
                self.proposals
                    .insert_absent((owned(), a.proposal.as_str().to_string()), || Proposal {
                        session: a.session.as_str().to_string(),
                        agent: a.actor.agent.as_ref().map(|x| x.as_str().to_string()),
                        action: a.action.clone(),
                        resource: a.resource.as_str().to_string(),
                        risk_tier: a.risk_tier,
                        status: ProposalStatus::Proposed,
                        decision: None,
                        executions: 0,
                    });
            }
            Event::PolicyDecided(d) => {
                if let Some(p) = self.proposals.get_mut(pair(&(tenant, d.proposal.as_str()))) {
                    p.decision = Some(d.decision);
                    if p.status != ProposalStatus::Executed {
                        p.status = match d.decision {
                            Decision::Allow => ProposalStatus::Allowed,
                            Decision::Deny => ProposalStatus::Denied,
                            Decision::RequireApproval => ProposalStatus::AwaitingApproval,
                        };
                    }
                }
            }
            Event::ApprovalRequested(r) => {
                let added =
                    self.tickets
                        .insert_absent((owned(), r.ticket.as_str().to_string()), || Ticket {
                            proposal: r.proposal.as_str().to_string(),
                            session: r.session.as_str().to_string(),
                            status: TicketStatus::Requested,
                        });
                if added {
                    let (id, session) = (r.ticket.as_str(), r.session.as_str());
                    self.index(tenant, id, session, r.proposal.as_str());
                }
            }
            Event::ApprovalGranted(g) => {
                if let Some(t) = self.tickets.get_mut(pair(&(tenant, g.ticket.as_str()))) {
                    t.status = TicketStatus::Granted(grant_of(g));
                }
            }
            Event::ApprovalDenied(d) => {
                if let Some(t) = self.tickets.get_mut(pair(&(tenant, d.ticket.as_str()))) {
                    t.status = TicketStatus::Denied;
                }
            }
            Event::ActionExecuted(x) => {
                let pid = x.proposal.as_str();
                let cost = x.cost_micros.unwrap_or(0);
                let Some(p) = self.proposal(tenant, pid) else {
                    return;
                };
                let cover = self.cover(
                    tenant,
                    pid,
                    p,
                    x.ticket.as_ref().map(|t| t.as_str()),
                    time_ns,
                    cost,
                );
                if let Ok(Cover::Ticket(id)) = cover {
                    if let Some(Ticket {
                        status: TicketStatus::Granted(g),
                        ..
                    }) = self.tickets.get_mut(pair(&(tenant, id.as_str())))
                    {
                        g.used_count = g.used_count.saturating_add(1);
                        g.used_cost_micros = g.used_cost_micros.saturating_add(cost);
                    }
                }
                if let Some(p) = self.proposals.get_mut(pair(&(tenant, pid))) {
                    p.executions = p.executions.saturating_add(1);
                    p.status = ProposalStatus::Executed;
                }
            }
            _ => {}
        }
    }
}

/// A proposal's canonical bytes: tenant, id, session, agent, action, resource, risk
/// tier, status, decision, executions.
fn encode_proposal<O: Out>(c: &mut Canon<O>, (t, id): &(String, String), p: &Proposal) {
    c.str(t).str(id).str(&p.session).opt_str(p.agent.as_deref());
    c.str(&p.action)
        .str(&p.resource)
        .u8(p.risk_tier as u8)
        .u8(p.status as u8);
    match p.decision {
        None => c.u8(0),
        Some(d) => c.u8(1).u8(d as u8),
    };
    c.u32(p.executions);
}

/// A ticket's canonical bytes: tenant, id, proposal, session, status and, when
/// granted, the grant.
fn encode_ticket<O: Out>(c: &mut Canon<O>, (t, id): &(String, String), k: &Ticket) {
    c.str(t).str(id).str(&k.proposal).str(&k.session);
    match &k.status {
        TicketStatus::Requested => {
            c.u8(0);
        }
        TicketStatus::Granted(g) => {
            c.u8(1).str(&g.approver).u8(g.scope as u8);
            c.opt_u32(g.max_count).opt_u64(g.max_cost_micros);
            c.u64(g.resource_ids.len() as u64);
            for r in &g.resource_ids {
                c.str(r);
            }
            c.opt_u64(g.expires_at_ns)
                .u32(g.used_count)
                .u64(g.used_cost_micros);
        }
        TicketStatus::Denied => {
            c.u8(2);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canon::{Canon, Room};

    /// Flows with proposals of every optional shape (agent or not, decision or
    /// not) and a ticket, encoded.
    fn encoded() -> (Flows, Vec<u8>) {
        let mut f = Flows::new();
        let shapes = [
            (None, None),
            (Some("agent-1"), None),
            (None, Some(Decision::Deny)),
            (Some("agent-2"), Some(Decision::Allow)),
        ];
        for (i, (agent, decision)) in shapes.into_iter().enumerate() {
            let p = Proposal {
                session: "s-1".into(),
                agent: agent.map(String::from),
                action: "refund".into(),
                resource: "svc:payments".into(),
                risk_tier: RiskTier::High,
                status: ProposalStatus::Allowed,
                decision,
                executions: i as u32,
            };
            f.proposals.insert(("acme".into(), format!("p-{i}")), p);
        }
        let t = Ticket {
            proposal: "p-1".into(),
            session: "s-1".into(),
            status: TicketStatus::Requested,
        };
        f.index("acme", "k-1", "s-1", "p-1");
        f.tickets.insert(("acme".into(), "k-1".into()), t);
        let mut c = Canon::to(Vec::new());
        f.encode(&mut c);
        (f, c.into_out())
    }

    #[test]
    fn the_tickets_are_found_where_the_proposals_end() {
        let (f, bytes) = encoded();
        let mut r = Reader::new("flows", &bytes);
        let proposals = Flows::decode_proposals(&mut r).expect("proposals");
        assert_eq!(proposals.len(), 4);
        let end = r.offset();
        assert_eq!(Flows::tickets_offset(&bytes), Some(end));
        // Read from there, the tickets and the proposals make the flows again.
        let mut r = Reader::starting_at("flows", &bytes, end);
        let tickets = Flows::decode_tickets(&mut r).expect("tickets");
        r.end().expect("nothing left");
        assert_eq!(Flows::from_parts(proposals, tickets), f);
        // Cut short anywhere in the proposals, the bytes are not framed so.
        for cut in 0..end {
            assert_eq!(Flows::tickets_offset(&bytes[..cut]), None, "cut at {cut}");
        }
    }

    #[test]
    fn a_decode_with_room_reserves_the_share_of_the_entries_ahead_and_nothing_else() {
        let mut f = Flows::new();
        for i in 0..100 {
            let p = Proposal {
                session: format!("s-{i}"),
                agent: None,
                action: "refund".into(),
                resource: "svc:payments".into(),
                risk_tier: RiskTier::Low,
                status: ProposalStatus::AwaitingApproval,
                decision: Some(Decision::RequireApproval),
                executions: 0,
            };
            f.proposals.insert(("acme".into(), format!("p-{i:03}")), p);
            let t = Ticket {
                proposal: format!("p-{i:03}"),
                session: format!("s-{i}"),
                status: TicketStatus::Requested,
            };
            f.index(
                "acme",
                &format!("k-{i:03}"),
                &format!("s-{i}"),
                &format!("p-{i:03}"),
            );
            f.tickets.insert(("acme".into(), format!("k-{i:03}")), t);
        }
        let mut c = Canon::to(Vec::new());
        f.encode(&mut c);
        let bytes = c.into_out();
        let decode = |room: Room| {
            let mut r = Reader::new("flows", &bytes).with_room(room);
            let back = Flows::decode(&mut r).expect("decodes");
            r.end().expect("nothing left");
            back
        };
        // A state of 1,000 entries that will fold 1,000 more: room for as many
        // again; without room, hardly more than the 100 of each.
        let plain = decode(Room::NONE);
        let roomy = decode(Room::new(1_000, 1_000));
        let all = |f: &Flows| [f.capacities(), f.list_capacities()].concat();
        assert!(all(&plain).iter().all(|&c| (100..200).contains(&c)));
        assert!(all(&roomy).iter().all(|&c| c >= 200));
        // Only the capacity differs.
        assert_eq!(plain, f);
        assert_eq!(roomy, f);
        let [a, b] = [plain, roomy].map(|mut f| f.roots());
        assert_eq!(a, b);
    }
}
