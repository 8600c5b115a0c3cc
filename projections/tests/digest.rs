//! The state digest: frozen by golden vectors (any change to the canonical encoding
//! changes every checkpoint's state digest, so it must be deliberate), and sensitive
//! to every part of the state.

mod common;

use govledger_projections::{state_digest, Budgets, Flows, Gates, KeyRing, State};
use govledger_schemas::Envelope;
use serde_json::{json, Value};

/// An event of tenant acme.
fn event(kind: &str, fields: Value) -> Envelope {
    common::event("acme", kind, fields)
}

fn hex(d: [u8; 32]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// A small incident: a session, a proposal with a granted and used approval, a
/// budget with spend, an engaged kill switch.
fn incident() -> Vec<Envelope> {
    let actor = json!({"user": "alice", "agent": "agent-7"});
    vec![
        event("session.started", json!({"session": "s-1", "actor": actor})),
        event(
            "budget.configured",
            json!({"budget_id": "b-1", "scope": {"org": "acme", "agent": "agent-7"},
                   "limit_cost_micros": 2_000_000u64, "window": "day", "warn_thresholds_pct": [80]}),
        ),
        event(
            "action.proposed",
            json!({"proposal": "p-1", "session": "s-1", "actor": actor, "action": "refund",
                   "resource": "svc:payments", "args_digest": "ab".repeat(32), "risk_tier": "high"}),
        ),
        event(
            "policy.decided",
            json!({"proposal": "p-1", "session": "s-1", "actor": actor, "decision": "require_approval",
                   "policy_id": "pay", "policy_version": "v1", "rule_ids": [], "reason": "big"}),
        ),
        event(
            "approval.requested",
            json!({"ticket": "t-1", "proposal": "p-1", "session": "s-1", "actor": actor}),
        ),
        event(
            "approval.granted",
            json!({"ticket": "t-1", "proposal": "p-1", "session": "s-1", "approver": "bob",
                   "scope": "once", "max_cost_micros": 1_500_000u64, "resource_ids": ["svc:payments"]}),
        ),
        event(
            "action.executed",
            json!({"proposal": "p-1", "session": "s-1", "actor": actor, "outcome": "success",
                   "cost_micros": 1_400_000u64}),
        ),
        event(
            "budget.incremented",
            json!({"scope": {"org": "acme", "agent": "agent-7"}, "tokens": 52_000,
                   "cost_micros": 1_400_000u64, "model": "m"}),
        ),
        event(
            "killswitch.engaged",
            json!({"scope": "agent", "target": "agent-7", "reason": "over budget",
                   "actor": {"service": "guardian"}}),
        ),
    ]
}

const T0: u64 = 1_767_268_800_000_000_000;

fn digests(events: &[Envelope]) -> ([u8; 32], [u8; 32], [u8; 32], [u8; 32]) {
    let (mut g, mut f, mut b) = (Gates::new(), Flows::new(), Budgets::new());
    for (i, e) in events.iter().enumerate() {
        let t = T0 + i as u64;
        g.apply(e, t);
        f.apply(e, t);
        b.apply(e, t);
    }
    let ring = KeyRing::new().digest();
    (
        state_digest(ring, g.digest(), f.digest(), b.digest()),
        g.digest(),
        f.digest(),
        b.digest(),
    )
}

#[test]
fn golden_state_digests() {
    let (empty, g0, f0, b0) = digests(&[]);
    let (full, g, f, b) = digests(&incident());
    let got = [empty, g0, f0, b0, full, g, f, b].map(hex);
    // The empty digests and the incident's budgets digest were also computed
    // independently (Python's hashlib over the layout documented in `canon`).
    let want = [
        "134aff01c2d7f0009f7aad28377857824a1cad75ee8a4fcd5d39bb9f83309126",
        "7aacc78236aaa4e5030fedca55e077e61c28e32e60c088e370c965bcebf31135",
        "c44ea26c71d5190e65d33720d5b7cc94c35e4254bec9be4784162e593783e71f",
        "33dfd72f9e839eaeb594420f18667b5e4adf071826ca21a5c0d30881c7743ea7",
        "aac15a35ebc3366becbeb5391fb95a35333e980b77eea96cceebea6d380b0963",
        "5e5f5668462fab23cc07d523ba1baa07413add77733940c92f029a2f77103583",
        "9f7666e7f3614d1ee964c97598781c205eb64f94b56a3e45c2db5af9562f45e0",
        "9de6dfcfab75f458d5d4f55069306b5c4e0f10385414fc2ac1c376d19e492e3f",
    ];
    assert_eq!(got, want.map(String::from));
}

#[test]
fn every_event_of_the_incident_moves_the_digest() {
    let events = incident();
    let mut seen = std::collections::BTreeSet::new();
    for k in 0..=events.len() {
        assert!(
            seen.insert(digests(&events[..k]).0),
            "prefix {k} repeats a digest"
        );
    }
}

/// The version-2 state digest ([`State::digest`]) of the empty state and of the
/// incident's, kept up to date event by event and computed from scratch.
#[test]
fn golden_state_digests_v2() {
    let mut state = State::default();
    let empty = state.digest();
    // Computed independently (Python's hashlib): SHA-256 of "govledger state v2"
    // and seven times a zero count and the root of one empty bucket, SHA-256(0x00).
    assert_eq!(
        hex(empty),
        "dd9cf0edbf9f75c42971fe60cf6d45a4fe7108dfc01734eb3f9a6d1b240c4e9d"
    );
    for (i, e) in incident().iter().enumerate() {
        let t = T0 + i as u64;
        state.apply(e, t);
        if i % 3 == 0 {
            state.digest();
        }
    }
    let kept = state.digest();
    assert_eq!(state.clone().digest(), kept);
    let mut fresh = State::default();
    for (i, e) in incident().iter().enumerate() {
        fresh.apply(e, T0 + i as u64);
    }
    assert_eq!(fresh.digest(), kept);
    assert_eq!(
        hex(kept),
        "21abab491624ad824ed91fb1d23a4f23fcac3eef1a76df9a5826697822334812"
    );
    // Version 1 of the same state is still what `golden_state_digests` froze.
    assert_eq!(hex(state.digest_v1()), hex(digests(&incident()).0));
}

/// Applies proposals `ids` (ids `p-000000` …) of the incident's session.
fn propose(state: &mut State, ids: std::ops::Range<usize>) {
    let actor = json!({"user": "alice", "agent": "agent-7"});
    for i in ids {
        let e = event(
            "action.proposed",
            json!({"proposal": format!("p-{i:06}"), "session": "s-1", "actor": actor,
                   "action": "refund", "resource": "svc:payments",
                   "args_digest": "ab".repeat(32), "risk_tier": "low"}),
        );
        state.apply(&e, T0 + 100 + i as u64);
    }
}

/// The incident's state.
fn after_incident() -> State {
    let mut state = State::default();
    for (i, e) in incident().iter().enumerate() {
        state.apply(e, T0 + i as u64);
    }
    state
}

#[test]
fn the_proposals_root_on_a_thread_of_its_own_gives_the_same_digest() {
    let n = 4 * govledger_projections::DIGEST_APART_ENTRIES;
    let mut state = after_incident();
    propose(&mut state, 0..n);
    assert!(
        state.flows.pending() >= n,
        "the digest would not use a thread"
    );
    // The same state with its flows' roots computed first, here: the digest that
    // follows has no flows left to hash and uses no thread.
    let mut here = state.clone();
    here.flows.roots();
    assert_eq!(here.flows.pending(), 0);
    let threaded = state.digest();
    assert_eq!(threaded, here.digest());
    // The same events with a digest every 500 proposals, none of them with
    // enough to hash for a thread.
    let mut stepwise = after_incident();
    for from in (0..n).step_by(500) {
        propose(&mut stepwise, from..n.min(from + 500));
        assert!(stepwise.flows.pending() < govledger_projections::DIGEST_APART_ENTRIES);
        stepwise.digest();
    }
    assert_eq!(stepwise.digest(), threaded);
    assert_ne!(after_incident().digest(), threaded, "the proposals count");
}

/// State digest version 3 ([`State::digest_v3`]): the empty state's, computed
/// independently; the incident's, kept up to date event by event between
/// version-2 digests and computed from scratch, frozen; trust roots numbered in
/// key order whatever order they come in; none for a state read from a
/// snapshot, which carries no ordinals yet.
#[test]
fn golden_state_digests_v3() {
    let mut state = State::default();
    // Computed independently (Python's hashlib): SHA-256 of "govledger state v3"
    // and seven times a zero count, a zero counter and the root of no buckets,
    // SHA-256 of nothing.
    assert_eq!(
        state.digest_v3().map(hex).as_deref(),
        Some("364ca3621bf878e3aa3740c80bde1d2d12e60333a3d4b05c3fbfd9259ab67873")
    );
    for (i, e) in incident().iter().enumerate() {
        state.apply(e, T0 + i as u64);
        match i % 3 {
            0 => drop(state.digest_v3()),
            1 => drop(state.digest()),
            _ => {}
        }
    }
    let kept = state
        .digest_v3()
        .expect("a folded state's ordinals are known");
    assert_eq!(state.clone().digest_v3(), Some(kept));
    let mut fresh = after_incident();
    assert_eq!(fresh.digest_v3(), Some(kept));
    // Frozen from the first build that computed it; each map's root is held to
    // its definition by `digest_map`'s property tests.
    assert_eq!(
        hex(kept),
        "c8b8c0e91b217496a7114b245887f03500a1ee62ddf205ce6873f43fb7092cf9"
    );
    // Version 2 of the same state is unchanged by the version-3 indexes.
    assert_eq!(
        hex(state.digest()),
        "21abab491624ad824ed91fb1d23a4f23fcac3eef1a76df9a5826697822334812"
    );
    // Every event of the incident moves it.
    let mut seen = std::collections::HashSet::new();
    let mut each = State::default();
    seen.insert(each.digest_v3());
    for (i, e) in incident().iter().enumerate() {
        each.apply(e, T0 + i as u64);
        assert!(
            seen.insert(each.digest_v3()),
            "event {i} left the digest as it was"
        );
    }
    // Read back from a snapshot, which carries the ordinals: the same digests
    // of both versions.
    let bytes = govledger_projections::snapshot::encode(9, &state, &Default::default());
    let mut read = govledger_projections::snapshot::decode(&bytes)
        .expect("decodes")
        .state;
    assert_eq!(read.digest(), state.digest());
    assert_eq!(read.digest_v3(), Some(kept));
    assert_eq!(read.signed_digest(), (3, kept));
}

#[test]
fn trust_roots_are_numbered_in_key_order_for_v3() {
    let roots = [("acme/k-1", 1u8), ("acme/k-2", 2), ("acme/k-0", 3)];
    let ring = |order: &[usize]| {
        let mut ring = KeyRing::new();
        for &i in order {
            let (id, b) = roots[i];
            ring.add_root(
                id,
                "acme",
                [b; 32],
                govledger_projections::keys::KeyRole::Admin,
            );
        }
        State::new(ring)
    };
    let mut a = ring(&[0, 1, 2]);
    let mut b = ring(&[2, 0, 1]);
    assert_eq!(a.digest_v3(), b.digest_v3());
    assert_eq!(a.digest(), b.digest());
    assert_ne!(a.digest_v3(), State::default().digest_v3());
}
