//! Sessions and kill switches, as given / when / then scenarios over event lists,
//! and a property test that the fold is deterministic and can be resumed from any
//! point.

mod common;

use common::event;
use govledger_projections::{Gates, SessionStatus};
use govledger_schemas::Envelope;
use proptest::prelude::*;
use serde_json::{json, Value};

fn actor(agent: &str) -> Value {
    json!({"user": "alice", "agent": agent})
}

fn session(tenant: &str, kind: &str, s: &str) -> Envelope {
    event(
        tenant,
        kind,
        json!({"session": s, "actor": actor("agent-1")}),
    )
}

fn proposed(tenant: &str, s: &str, agent: &str) -> Envelope {
    event(
        tenant,
        "action.proposed",
        json!({"proposal": "p-1", "session": s, "actor": actor(agent), "action": "db.drop",
               "resource": "db:prod", "args_digest": "ab".repeat(32), "risk_tier": "critical"}),
    )
}

fn decided(tenant: &str, s: &str, agent: &str, decision: &str) -> Envelope {
    event(
        tenant,
        "policy.decided",
        json!({"proposal": "p-1", "session": s, "actor": actor(agent), "decision": decision,
               "policy_id": "db", "policy_version": "v1", "rule_ids": ["r1"], "reason": "because"}),
    )
}

fn executed(tenant: &str, s: &str, agent: &str) -> Envelope {
    event(
        tenant,
        "action.executed",
        json!({"proposal": "p-1", "session": s, "actor": actor(agent), "outcome": "success"}),
    )
}

fn kill(tenant: &str, kind: &str, scope: &str, target: &str) -> Envelope {
    event(
        tenant,
        kind,
        json!({"scope": scope, "target": target, "reason": "runaway spend", "actor": {"service": "guardian"}}),
    )
}

/// Given these events (each must pass `check`), the state.
fn given(events: &[Envelope]) -> Gates {
    let mut g = Gates::new();
    for (i, e) in events.iter().enumerate() {
        if let Err(m) = g.check(e) {
            panic!("given event {i} ({}) is refused: {m}", e.kind().as_str());
        }
        g.apply(e, 1_000 + i as u64);
    }
    g
}

fn then_ok(g: &Gates, e: &Envelope) {
    if let Err(m) = g.check(e) {
        panic!("{} should pass: {m}", e.kind().as_str());
    }
}

fn then_violation(g: &Gates, e: &Envelope, needles: &[&str]) {
    match g.check(e) {
        Ok(()) => panic!("{} should be a violation", e.kind().as_str()),
        Err(m) => {
            for n in needles {
                assert!(m.contains(n), "{m:?} should mention {n:?}");
            }
        }
    }
}

#[test]
fn a_session_goes_active_suspended_active_ended() {
    let g = given(&[
        session("acme", "session.started", "s-1"),
        session("acme", "session.suspended", "s-1"),
        session("acme", "session.resumed", "s-1"),
    ]);
    assert_eq!(
        g.session("acme", "s-1").map(|s| s.status),
        Some(SessionStatus::Active)
    );
    assert_eq!(
        g.session("acme", "s-1")
            .and_then(|s| s.agent.clone())
            .as_deref(),
        Some("agent-1")
    );
    let g = given(&[
        session("acme", "session.started", "s-1"),
        session("acme", "session.suspended", "s-1"),
        session("acme", "session.ended", "s-1"),
    ]);
    assert_eq!(
        g.session("acme", "s-1").map(|s| s.status),
        Some(SessionStatus::Ended)
    );
    assert_eq!(g.session("acme", "s-1").map(|s| s.since_ns), Some(1_002));
}

#[test]
fn illegal_session_transitions_are_violations() {
    let active = given(&[session("acme", "session.started", "s-1")]);
    then_violation(
        &active,
        &session("acme", "session.started", "s-1"),
        &["s-1", "already exists", "active"],
    );
    then_violation(
        &active,
        &session("acme", "session.resumed", "s-1"),
        &["is active", "cannot be resumed"],
    );
    then_violation(
        &active,
        &session("acme", "session.suspended", "s-9"),
        &["s-9", "never started"],
    );
    let ended = given(&[
        session("acme", "session.started", "s-1"),
        session("acme", "session.ended", "s-1"),
    ]);
    for kind in [
        "session.suspended",
        "session.resumed",
        "session.ended",
        "session.started",
    ] {
        then_violation(&ended, &session("acme", kind, "s-1"), &["s-1", "ended"]);
    }
    let suspended = given(&[
        session("acme", "session.started", "s-1"),
        session("acme", "session.suspended", "s-1"),
    ]);
    then_violation(
        &suspended,
        &session("acme", "session.suspended", "s-1"),
        &["is suspended"],
    );
    // Sessions are per tenant: globex's s-1 is another session.
    then_ok(&suspended, &session("globex", "session.started", "s-1"));
}

#[test]
fn actions_need_an_active_session() {
    let g = given(&[session("acme", "session.started", "s-1")]);
    then_ok(&g, &proposed("acme", "s-1", "agent-1"));
    then_ok(&g, &decided("acme", "s-1", "agent-1", "allow"));
    then_ok(&g, &executed("acme", "s-1", "agent-1"));
    then_violation(
        &g,
        &proposed("acme", "s-2", "agent-1"),
        &["action.proposed", "s-2", "never started"],
    );
    then_violation(
        &g,
        &proposed("globex", "s-1", "agent-1"),
        &["never started"],
    );
    let g = given(&[
        session("acme", "session.started", "s-1"),
        session("acme", "session.suspended", "s-1"),
    ]);
    then_violation(&g, &proposed("acme", "s-1", "agent-1"), &["suspended"]);
    then_violation(
        &g,
        &executed("acme", "s-1", "agent-1"),
        &["action.executed", "suspended"],
    );
    then_violation(
        &g,
        &decided("acme", "s-1", "agent-1", "allow"),
        &["policy.decided"],
    );
    // Denying (or asking for approval) is not an action: it may still be recorded.
    then_ok(&g, &decided("acme", "s-1", "agent-1", "deny"));
    then_ok(&g, &decided("acme", "s-1", "agent-1", "require_approval"));
}

#[test]
fn an_agent_kill_switch_stops_that_agent_everywhere_and_no_other() {
    let g = given(&[
        session("acme", "session.started", "s-1"),
        session("acme", "session.started", "s-2"),
        kill("acme", "killswitch.engaged", "agent", "agent-7"),
    ]);
    then_violation(
        &g,
        &proposed("acme", "s-1", "agent-7"),
        &["agent kill switch on agent-7", "runaway spend"],
    );
    then_violation(&g, &proposed("acme", "s-2", "agent-7"), &["agent-7"]);
    then_violation(
        &g,
        &decided("acme", "s-2", "agent-7", "allow"),
        &["agent-7"],
    );
    then_ok(&g, &decided("acme", "s-2", "agent-7", "deny"));
    then_ok(&g, &proposed("acme", "s-1", "agent-8"));
    let released = given(&[
        session("acme", "session.started", "s-1"),
        kill("acme", "killswitch.engaged", "agent", "agent-7"),
        kill("acme", "killswitch.released", "agent", "agent-7"),
    ]);
    then_ok(&released, &proposed("acme", "s-1", "agent-7"));
}

#[test]
fn session_tenant_and_system_kill_switches_cover_their_scope() {
    let base = [
        session("acme", "session.started", "s-1"),
        session("acme", "session.started", "s-2"),
        session("globex", "session.started", "s-1"),
    ];
    let with = |k: Envelope| {
        let mut v = base.to_vec();
        v.push(k);
        given(&v)
    };
    let g = with(kill("acme", "killswitch.engaged", "session", "s-1"));
    then_violation(
        &g,
        &proposed("acme", "s-1", "agent-1"),
        &["session kill switch on s-1"],
    );
    then_ok(&g, &proposed("acme", "s-2", "agent-1"));
    then_ok(&g, &proposed("globex", "s-1", "agent-1"));

    let g = with(kill("acme", "killswitch.engaged", "tenant", "acme"));
    then_violation(
        &g,
        &proposed("acme", "s-2", "agent-1"),
        &["tenant kill switch on acme"],
    );
    then_ok(&g, &proposed("globex", "s-1", "agent-1"));

    let g = with(kill("acme", "killswitch.engaged", "system", "all-agents"));
    then_violation(
        &g,
        &proposed("acme", "s-1", "agent-1"),
        &["system kill switch"],
    );
    then_violation(
        &g,
        &executed("globex", "s-1", "agent-1"),
        &["system kill switch"],
    );
    let kills: Vec<_> = g
        .kills()
        .map(|(t, _, target, _)| (t.to_string(), target.to_string()))
        .collect();
    assert_eq!(kills, [("*".to_string(), "all-agents".to_string())]);
}

#[test]
fn releasing_a_switch_that_is_not_engaged_is_a_violation_and_engaging_twice_is_not() {
    let g = given(&[]);
    then_violation(
        &g,
        &kill("acme", "killswitch.released", "agent", "agent-7"),
        &["nothing to release", "agent-7"],
    );
    let g = given(&[kill("acme", "killswitch.engaged", "agent", "agent-7")]);
    then_ok(&g, &kill("acme", "killswitch.engaged", "agent", "agent-7"));
    // A switch of another tenant is not this tenant's to release.
    then_violation(
        &g,
        &kill("globex", "killswitch.released", "agent", "agent-7"),
        &["globex"],
    );
}

// ---- determinism ----

fn any_event() -> impl Strategy<Value = Envelope> {
    let tenant = prop_oneof![Just("acme"), Just("globex")];
    let s = prop_oneof![Just("s-1"), Just("s-2")];
    let agent = prop_oneof![Just("agent-1"), Just("agent-2")];
    let kind = 0usize..11;
    (tenant, s, agent, kind).prop_map(|(t, s, a, k)| match k {
        0 => session(t, "session.started", s),
        1 => session(t, "session.suspended", s),
        2 => session(t, "session.resumed", s),
        3 => session(t, "session.ended", s),
        4 => proposed(t, s, a),
        5 => decided(t, s, a, "allow"),
        6 => executed(t, s, a),
        7 => kill(t, "killswitch.engaged", "agent", a),
        8 => kill(t, "killswitch.released", "agent", a),
        9 => kill(t, "killswitch.engaged", "session", s),
        _ => kill(t, "killswitch.released", "session", s),
    })
}

/// Folds the events that pass `check`, as admission would.
fn fold(mut g: Gates, events: &[Envelope], t0: u64) -> Gates {
    for (i, e) in events.iter().enumerate() {
        if g.check(e).is_ok() {
            g.apply(e, t0 + i as u64);
        }
    }
    g
}

proptest! {
    #[test]
    fn folding_is_deterministic_and_resumable_at_any_point(
        events in proptest::collection::vec(any_event(), 0..80),
        k in 0usize..80,
    ) {
        let k = k.min(events.len());
        let all = fold(Gates::new(), &events, 0);
        prop_assert_eq!(&all, &fold(Gates::new(), &events, 0));
        let resumed = fold(fold(Gates::new(), &events[..k], 0), &events[k..], k as u64);
        prop_assert_eq!(all, resumed);
    }
}
