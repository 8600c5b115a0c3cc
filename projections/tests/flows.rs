//! Proposals, decisions, approvals and executions, as given / when / then scenarios
//! over event lists, and a property test that the fold is deterministic and can be
//! resumed from any point.

mod common;

use common::event;
use govledger_projections::{Flows, ProposalStatus, Ticket, TicketStatus};
use govledger_schemas::Envelope;
use proptest::prelude::*;
use serde_json::{json, Value};

const ACTOR: fn() -> Value = || json!({"user": "alice", "agent": "agent-1"});

fn proposed(p: &str, s: &str, action: &str, resource: &str) -> Envelope {
    event(
        "acme",
        "action.proposed",
        json!({"proposal": p, "session": s, "actor": ACTOR(), "action": action,
               "resource": resource, "args_digest": "ab".repeat(32), "risk_tier": "high"}),
    )
}

fn refund(p: &str) -> Envelope {
    proposed(p, "s-1", "payments.refund", "svc:payments")
}

fn decided(p: &str, decision: &str) -> Envelope {
    event(
        "acme",
        "policy.decided",
        json!({"proposal": p, "session": "s-1", "actor": ACTOR(), "decision": decision,
               "policy_id": "payments", "policy_version": "v1", "rule_ids": [], "reason": "r"}),
    )
}

fn requested(ticket: &str, p: &str) -> Envelope {
    event(
        "acme",
        "approval.requested",
        json!({"ticket": ticket, "proposal": p, "session": "s-1", "actor": ACTOR()}),
    )
}

fn granted(ticket: &str, p: &str, terms: Value) -> Envelope {
    let mut f = json!({"ticket": ticket, "proposal": p, "session": "s-1", "approver": "bob",
                       "scope": "once", "resource_ids": []});
    for (k, v) in terms.as_object().expect("terms").iter() {
        f[k] = v.clone();
    }
    event("acme", "approval.granted", f)
}

fn denied(ticket: &str, p: &str) -> Envelope {
    event(
        "acme",
        "approval.denied",
        json!({"ticket": ticket, "proposal": p, "session": "s-1", "approver": "bob", "reason": "no"}),
    )
}

fn executed(p: &str, extra: Value) -> Envelope {
    let mut f = json!({"proposal": p, "session": "s-1", "actor": ACTOR(), "outcome": "success"});
    for (k, v) in extra.as_object().expect("extra").iter() {
        f[k] = v.clone();
    }
    event("acme", "action.executed", f)
}

/// Given these events (each must pass `check`, at times 1000, 1001, ...).
fn given(events: &[Envelope]) -> Flows {
    let mut f = Flows::new();
    for (i, e) in events.iter().enumerate() {
        let t = 1_000 + i as u64;
        if let Err(m) = f.check(e, t) {
            panic!("given event {i} ({}) is refused: {m}", e.kind().as_str());
        }
        f.apply(e, t);
    }
    f
}

const WHEN: u64 = 2_000;

fn then_ok(f: &Flows, e: &Envelope) {
    if let Err(m) = f.check(e, WHEN) {
        panic!("{} should pass: {m}", e.kind().as_str());
    }
}

fn then_violation(f: &Flows, e: &Envelope, needles: &[&str]) {
    match f.check(e, WHEN) {
        Ok(()) => panic!("{} should be a violation", e.kind().as_str()),
        Err(m) => {
            for n in needles {
                assert!(m.contains(n), "{m:?} should mention {n:?}");
            }
        }
    }
}

#[test]
fn decisions_and_approvals_need_a_known_proposal_in_its_session() {
    let f = given(&[refund("p-1")]);
    then_ok(&f, &decided("p-1", "deny"));
    then_violation(&f, &decided("p-9", "allow"), &["p-9", "never proposed"]);
    then_violation(&f, &requested("t-1", "p-9"), &["p-9", "never proposed"]);
    let mut other_session = decided("p-1", "allow");
    if let govledger_schemas::Event::PolicyDecided(d) = &mut other_session.event {
        d.session = "s-2".parse().expect("ident");
    }
    then_violation(&f, &other_session, &["s-2", "belongs to session s-1"]);
    // Another tenant's proposal is an unknown one.
    let mut cross = decided("p-1", "allow");
    cross.tenant = "globex".parse().expect("tenant");
    then_violation(&f, &cross, &["globex never proposed"]);
    then_violation(&f, &refund("p-1"), &["p-1", "already exists"]);
}

#[test]
fn an_execution_needs_an_allow_decision_or_an_approval() {
    let f = given(&[refund("p-1"), decided("p-1", "allow")]);
    then_ok(&f, &executed("p-1", json!({})));
    let f = given(&[refund("p-1"), decided("p-1", "deny")]);
    then_violation(
        &f,
        &executed("p-1", json!({})),
        &["p-1", "no allow decision and no approval"],
    );
    let f = given(&[refund("p-1")]);
    then_violation(&f, &executed("p-1", json!({})), &["no allow decision"]);
    then_violation(&f, &executed("p-2", json!({})), &["p-2", "never proposed"]);
}

#[test]
fn a_once_approval_covers_one_execution_of_its_proposal() {
    let f = given(&[
        refund("p-1"),
        decided("p-1", "require_approval"),
        requested("t-1", "p-1"),
        granted("t-1", "p-1", json!({})),
    ]);
    assert_eq!(
        f.proposal("acme", "p-1").map(|p| p.status),
        Some(ProposalStatus::AwaitingApproval)
    );
    then_ok(&f, &executed("p-1", json!({"ticket": "t-1"})));
    then_ok(&f, &executed("p-1", json!({})));
    let f = given(&[
        refund("p-1"),
        requested("t-1", "p-1"),
        granted("t-1", "p-1", json!({})),
        executed("p-1", json!({})),
        refund("p-2"),
    ]);
    assert_eq!(
        f.proposal("acme", "p-1").map(|p| p.status),
        Some(ProposalStatus::Executed)
    );
    match f.ticket("acme", "t-1").map(|t| &t.status) {
        Some(TicketStatus::Granted(g)) => assert_eq!(g.used_count, 1),
        other => panic!("t-1 should be granted: {other:?}"),
    }
    then_violation(
        &f,
        &executed("p-1", json!({"ticket": "t-1"})),
        &["t-1", "used up (1 of 1"],
    );
    then_violation(
        &f,
        &executed("p-2", json!({"ticket": "t-1"})),
        &["granted once, for proposal p-1"],
    );
}

#[test]
fn a_session_approval_covers_the_same_action_in_its_session_up_to_max_count() {
    let f = given(&[
        refund("p-1"),
        requested("t-1", "p-1"),
        granted("t-1", "p-1", json!({"scope": "session", "max_count": 2})),
        executed("p-1", json!({})),
        refund("p-2"),
        proposed("p-3", "s-1", "payments.payout", "svc:payments"),
        proposed("p-4", "s-2", "payments.refund", "svc:payments"),
    ]);
    then_ok(&f, &executed("p-2", json!({})));
    then_violation(
        &f,
        &executed("p-3", json!({})),
        &["no allow decision and no approval"],
    );
    then_violation(
        &f,
        &executed("p-3", json!({"ticket": "t-1"})),
        &["covers action", "payments.payout"],
    );
    let f2 = given(&[
        refund("p-1"),
        requested("t-1", "p-1"),
        granted("t-1", "p-1", json!({"scope": "session", "max_count": 2})),
        executed("p-1", json!({})),
        refund("p-2"),
        executed("p-2", json!({})),
        refund("p-5"),
    ]);
    then_violation(
        &f2,
        &executed("p-5", json!({})),
        &["t-1 is used up (2 of 2"],
    );
}

#[test]
fn an_execution_without_a_ticket_looks_for_approvals_in_its_own_session() {
    let in_session = |e: Envelope, s: &str| {
        let mut e = e;
        let session = s.parse().expect("ident");
        match &mut e.event {
            govledger_schemas::Event::ApprovalRequested(r) => r.session = session,
            govledger_schemas::Event::ApprovalGranted(g) => g.session = session,
            govledger_schemas::Event::ActionExecuted(x) => x.session = session,
            _ => unreachable!("not a session-bearing test event"),
        }
        e
    };
    let f = given(&[
        refund("p-1"),
        proposed("p-2", "s-2", "payments.refund", "svc:payments"),
        in_session(requested("t-0", "p-2"), "s-2"),
        in_session(
            granted("t-0", "p-2", json!({"scope": "session", "max_count": 9})),
            "s-2",
        ),
        requested("t-1", "p-1"),
        granted("t-1", "p-1", json!({})),
        refund("p-3"),
    ]);
    // The once approval of its own session covers p-1; the session approval of s-2
    // (first in ticket-id order) is not even a candidate.
    let mut after = f.clone();
    after.apply(&executed("p-1", json!({})), WHEN);
    let used = |f: &Flows, t: &str| match &f.ticket("acme", t).expect("ticket").status {
        TicketStatus::Granted(g) => g.used_count,
        other => panic!("{t} is {other:?}"),
    };
    assert_eq!((used(&after, "t-0"), used(&after, "t-1")), (0, 1));
    // p-3 (s-1, same action as s-2's session approval) has nothing in its session.
    then_violation(
        &f,
        &executed("p-3", json!({})),
        &["p-3", "no allow decision and no approval"],
    );
    // p-2 in s-2 is covered by its session's approval.
    then_ok(&f, &in_session(executed("p-2", json!({})), "s-2"));
}

#[test]
fn expiry_resources_and_spend_limit_an_approval() {
    let base = |terms: Value| {
        given(&[
            refund("p-1"),
            requested("t-1", "p-1"),
            granted("t-1", "p-1", terms),
        ])
    };
    // Expiry is judged by the execution's event time, exclusive.
    let f = base(json!({"expires_at_ns": 2_000}));
    then_violation(&f, &executed("p-1", json!({})), &["t-1 expired at 2000"]);
    assert!(f.check(&executed("p-1", json!({})), 1_999).is_ok());
    // Resources.
    let f = base(json!({"resource_ids": ["svc:billing"]}));
    then_violation(
        &f,
        &executed("p-1", json!({})),
        &["does not cover resource svc:payments"],
    );
    let f = base(json!({"resource_ids": ["svc:billing", "svc:payments"]}));
    then_ok(&f, &executed("p-1", json!({})));
    // Spend.
    let f = base(json!({"scope": "session", "max_cost_micros": 1_500_000}));
    then_ok(&f, &executed("p-1", json!({"cost_micros": 1_500_000})));
    then_violation(
        &f,
        &executed("p-1", json!({"cost_micros": 1_500_001})),
        &["covers 1500000 micro-units"],
    );
    let f = given(&[
        refund("p-1"),
        requested("t-1", "p-1"),
        granted(
            "t-1",
            "p-1",
            json!({"scope": "session", "max_cost_micros": 1_500_000}),
        ),
        executed("p-1", json!({"cost_micros": 1_000_000})),
    ]);
    then_violation(
        &f,
        &executed("p-1", json!({"cost_micros": 600_000})),
        &["1000000 already used"],
    );
    then_ok(&f, &executed("p-1", json!({"cost_micros": 500_000})));
}

#[test]
fn tickets_are_requested_once_and_decided_once_for_their_proposal() {
    let f = given(&[refund("p-1"), refund("p-2")]);
    then_violation(
        &f,
        &granted("t-1", "p-1", json!({})),
        &["t-1", "never requested"],
    );
    let f = given(&[refund("p-1"), refund("p-2"), requested("t-1", "p-1")]);
    then_violation(&f, &requested("t-1", "p-2"), &["t-1", "already exists"]);
    then_violation(
        &f,
        &granted("t-1", "p-2", json!({})),
        &["requested for proposal p-1, not p-2"],
    );
    let f = given(&[refund("p-1"), requested("t-1", "p-1"), denied("t-1", "p-1")]);
    then_violation(&f, &granted("t-1", "p-1", json!({})), &["already decided"]);
    then_violation(
        &f,
        &executed("p-1", json!({"ticket": "t-1"})),
        &["t-1", "not granted"],
    );
    then_violation(
        &f,
        &executed("p-1", json!({"ticket": "t-9"})),
        &["t-9", "never requested"],
    );
}

// ---- determinism ----

/// `e` moved to `tenant` and, where it names one, `session`.
fn relocated(mut e: Envelope, tenant: &str, session: &str) -> Envelope {
    use govledger_schemas::Event;
    e.tenant = tenant.parse().expect("tenant");
    let s = session.parse().expect("ident");
    match &mut e.event {
        Event::ActionProposed(a) => a.session = s,
        Event::PolicyDecided(d) => d.session = s,
        Event::ApprovalRequested(r) => r.session = s,
        Event::ApprovalGranted(g) => g.session = s,
        Event::ApprovalDenied(d) => d.session = s,
        Event::ActionExecuted(x) => x.session = s,
        _ => {}
    }
    e
}

fn any_event() -> impl Strategy<Value = (Envelope, u64)> {
    let p = prop_oneof![Just("p-1"), Just("p-2"), Just("p-3")];
    let t = prop_oneof![Just("t-1"), Just("t-2")];
    // Mostly one tenant and session, so that events meet; sometimes others.
    let tenant = prop_oneof![4 => Just("acme"), 1 => Just("globex")];
    let session = prop_oneof![3 => Just("s-1"), 1 => Just("s-2")];
    let event = (p, t, 0usize..9, 0u64..3_000).prop_map(|(p, t, k, time)| {
        let e = match k {
            0 => refund(p),
            1 => decided(p, "allow"),
            2 => decided(p, "require_approval"),
            3 => requested(t, p),
            4 => granted(
                t,
                p,
                json!({"scope": "session", "max_count": 2, "expires_at_ns": 2_500}),
            ),
            5 => granted(t, p, json!({"max_cost_micros": 1_000})),
            6 => denied(t, p),
            7 => executed(p, json!({"cost_micros": 400})),
            _ => executed(p, json!({"ticket": t})),
        };
        (e, time)
    });
    (event, tenant, session)
        .prop_map(|((e, time), tenant, session)| (relocated(e, tenant, session), time))
}

fn decoded(f: &Flows) -> Flows {
    common::decoded(|c| f.encode(c), Flows::decode)
}

/// The events that pass `check` applied in order, or with `checked` false every
/// event (as a log from another writer could hold them).
fn fold(mut f: Flows, events: &[(Envelope, u64)], checked: bool) -> Flows {
    for (e, t) in events {
        if !checked || f.check(e, *t).is_ok() {
            f.apply(e, *t);
        }
    }
    f
}

proptest! {
    #[test]
    fn folding_is_deterministic_and_resumable_at_any_point_and_from_its_decoding(
        events in proptest::collection::vec(any_event(), 0..80),
        k in 0usize..80,
        checked in any::<bool>(),
    ) {
        let k = k.min(events.len());
        let all = fold(Flows::new(), &events, checked);
        prop_assert_eq!(&all, &fold(Flows::new(), &events, checked));
        let head = fold(Flows::new(), &events[..k], checked);
        prop_assert_eq!(&all, &fold(head.clone(), &events[k..], checked));
        // Decoding rebuilds what is derived (the tickets of each session and
        // proposal) too, so a fold resumes from it alike.
        prop_assert_eq!(&all, &fold(decoded(&head), &events[k..], checked));
        prop_assert_eq!(&decoded(&all), &all);
        // A proposal's tickets from the index are those a walk of every ticket
        // finds, in the same order.
        let asked = all.tickets().map(|(t, _, k)| (t, k.proposal.as_str()));
        for (tenant, proposal) in all.proposals().map(|(t, id, _)| (t, id)).chain(asked) {
            let walked: Vec<(&str, &Ticket)> = all
                .tickets()
                .filter(|(t, _, k)| *t == tenant && k.proposal == proposal)
                .map(|(_, id, k)| (id, k))
                .collect();
            prop_assert_eq!(all.tickets_for(tenant, proposal).collect::<Vec<_>>(), walked);
        }
    }
}
