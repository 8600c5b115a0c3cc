//! Snapshots: the state at k, encoded and decoded, then folded on, equals the fold
//! of everything (with equal digests), for random mixed event streams; the bytes
//! prove themselves (checksum, digest) and are frozen by golden vectors (format
//! versions 1 and 2); ordinals that do not fit are refused.

mod common;

use common::event;
use govledger_projections::canon::Canon;
use govledger_projections::snapshot::{self, SnapshotError};
use govledger_projections::{DetectConfig, Detector, KeyRing, KeyRole, State};
use govledger_schemas::Envelope;
use proptest::prelude::*;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const DAY: u64 = 86_400 * 1_000_000_000;
/// 2026-01-01T00:00:00Z.
const T0: u64 = 1_767_225_600 * 1_000_000_000;

const TIERS: [&str; 4] = ["low", "medium", "high", "critical"];
const WINDOWS: [&str; 4] = ["day", "week", "month", "total"];

fn roots() -> KeyRing {
    let mut ring = KeyRing::new();
    ring.add_root("operator/root", "operator", [1; 32], KeyRole::Operator);
    ring.add_root("acme/admin", "acme", [2; 32], KeyRole::Admin);
    ring.add_root("globex/admin", "globex", [3; 32], KeyRole::Admin);
    ring
}

fn actor(agent: &str) -> Value {
    json!({"user": "alice", "agent": agent})
}

fn pk(n: u8) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode([n; 32])
}

/// One event of every family, over small pools of ids so that they interact.
#[allow(clippy::too_many_arguments)]
fn make(kind: usize, t: &str, s: &str, a: &str, p: &str, k: &str, n: u8, amount: u64) -> Envelope {
    let prop = |decision: &str| {
        json!({"proposal": p, "session": s, "actor": actor(a), "decision": decision,
               "policy_id": "pol", "policy_version": "v1", "rule_ids": ["r1"], "reason": "r"})
    };
    match kind {
        0 => event(
            t,
            "session.started",
            json!({"session": s, "actor": actor(a)}),
        ),
        1 => event(
            t,
            "session.suspended",
            json!({"session": s, "actor": actor(a)}),
        ),
        2 => event(
            t,
            "session.resumed",
            json!({"session": s, "actor": actor(a)}),
        ),
        3 => event(t, "session.ended", json!({"session": s, "actor": actor(a)})),
        4 => event(
            t,
            "action.proposed",
            json!({"proposal": p, "session": s, "actor": actor(a), "action": "db.write",
                   "resource": format!("db:{n}"), "args_digest": "ab".repeat(32),
                   "risk_tier": TIERS[n as usize % 4]}),
        ),
        5 => event(t, "policy.decided", prop("allow")),
        6 => event(t, "policy.decided", prop("deny")),
        7 => event(t, "policy.decided", prop("require_approval")),
        8 => event(
            t,
            "approval.requested",
            json!({"ticket": k, "proposal": p, "session": s, "actor": actor(a)}),
        ),
        9 => event(
            t,
            "approval.granted",
            json!({"ticket": k, "proposal": p, "session": s, "approver": "bob",
                   "scope": if n.is_multiple_of(2) { "once" } else { "session" },
                   "max_cost_micros": 1_000, "resource_ids": [format!("db:{n}")],
                   "expires_at_ns": T0 + 40 * DAY}),
        ),
        10 => event(
            t,
            "approval.denied",
            json!({"ticket": k, "proposal": p, "session": s, "approver": "bob", "reason": "no"}),
        ),
        11 => event(
            t,
            "action.executed",
            json!({"proposal": p, "session": s, "actor": actor(a), "outcome": "success",
                   "cost_micros": amount % 700}),
        ),
        12 => event(
            t,
            "killswitch.engaged",
            json!({"scope": if n.is_multiple_of(2) { "agent" } else { "session" },
                   "target": if n.is_multiple_of(2) { a } else { s }, "reason": "stop",
                   "actor": {"service": "guardian"}}),
        ),
        13 => event(
            t,
            "killswitch.released",
            json!({"scope": if n.is_multiple_of(2) { "agent" } else { "session" },
                   "target": if n.is_multiple_of(2) { a } else { s }, "reason": "ok",
                   "actor": {"service": "guardian"}}),
        ),
        14 => event(
            t,
            "budget.configured",
            json!({"budget_id": format!("b-{}", n % 2), "scope": {"org": "acme", "agent": a},
                   "limit_cost_micros": 5_000, "limit_tokens": 900,
                   "window": WINDOWS[n as usize % 4],
                   "warn_thresholds_pct": [50, 90], "kill_on_exceed": n.is_multiple_of(3)}),
        ),
        15 => event(
            t,
            "budget.incremented",
            json!({"scope": {"org": "acme", "agent": a}, "tokens": amount % 300,
                   "cost_micros": amount, "model": "m"}),
        ),
        16 => event(
            t,
            "key.registered",
            json!({"key_id": format!("{t}/k{n}"), "public_key": pk(10 + n)}),
        ),
        17 => event(
            t,
            "key.rotated",
            json!({"key_id": format!("{t}/k{n}"), "new_key_id": format!("{t}/k{}", n + 4),
                   "new_public_key": pk(20 + n), "retire_old_at_ns": T0 + (n as u64) * DAY}),
        ),
        _ => event(
            t,
            "key.revoked",
            json!({"key_id": format!("{t}/k{n}"), "reason": "lost"}),
        ),
    }
}

fn any_event() -> impl Strategy<Value = Envelope> {
    let tenant = prop_oneof![4 => Just("acme"), 1 => Just("globex")];
    let pick2 = |a: &'static str, b: &'static str| prop_oneof![Just(a), Just(b)];
    (
        0usize..19,
        tenant,
        pick2("s-1", "s-2"),
        pick2("agent-1", "agent-2"),
        pick2("p-1", "p-2"),
        pick2("t-1", "t-2"),
        0u8..4,
        0u64..3_000,
    )
        .prop_map(|(kind, t, s, a, p, k, n, amount)| make(kind, t, s, a, p, k, n, amount))
}

/// Folds the events that pass `check`, as admission does; event times grow by
/// about six hours each, so budget windows roll over inside a stream.
fn fold(state: &mut State, detector: &mut Detector, events: &[Envelope], first: usize) {
    for (i, e) in events.iter().enumerate() {
        let time = T0 + (first + i) as u64 * (DAY / 4);
        if state.check(e, time).is_ok() {
            state.apply(e, time);
            detector.observe(e, time);
        }
    }
}

fn detect_config() -> DetectConfig {
    DetectConfig {
        velocity_max: 2,
        velocity_window_ns: DAY,
        risk_escalation: true,
        denials_max: 2,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn snapshot_at_every_k_plus_fold_of_the_rest_equals_fold_of_all(
        events in proptest::collection::vec(any_event(), 0..60),
    ) {
        let (mut all, mut all_det) = (State::new(roots()), Detector::new(detect_config()));
        fold(&mut all, &mut all_det, &events, 0);
        let (mut head, mut head_det) = (State::new(roots()), Detector::new(detect_config()));
        for k in 0..=events.len() {
            if k > 0 {
                fold(&mut head, &mut head_det, &events[k - 1..k], k - 1);
            }
            let bytes = snapshot::encode(k as u64, &head, &head_det);
            let header = snapshot::verify(&bytes).expect("a fresh snapshot verifies");
            prop_assert_eq!(header.size, k as u64);
            prop_assert_eq!(header.state_digest, head.digest_v1());
            let snap = snapshot::decode(&bytes).expect("a fresh snapshot decodes");
            prop_assert_eq!(&snap.state, &head);
            let (opened_header, opened) = snapshot::open(&bytes).expect("and opens");
            prop_assert_eq!(opened_header, header);
            prop_assert_eq!(snapshot::claimed(&bytes), Some((k as u64, head.digest_v1())));
            prop_assert_eq!(&opened, &snap);
            // With room for entries ahead, only the maps' capacity differs.
            let (_, roomy) = snapshot::open_ahead(&bytes, 1_000).expect("opens with room");
            prop_assert_eq!(&roomy, &snap);
            // 1,000 entries ahead of at most 60: room for twice each growing map.
            let held = [
                head.flows.proposals().count(),
                head.flows.tickets().count(),
                head.gates.sessions().count(),
            ];
            for (room, n) in roomy.state.capacities().into_iter().zip(held) {
                prop_assert!(room >= 2 * n, "room for {} of {}", room, n);
            }
            prop_assert_eq!(roomy.state.clone().digest(), head.digest());
            // The digest kept up to date since entry 0 equals the one the decoded
            // state gives from scratch, each entry hashed from the bytes it was
            // read from (and those are its canonical bytes: see below).
            prop_assert_eq!(snap.state.clone().digest(), head.digest());
            // The snapshot carries the ordinals, so the decoded state has the
            // version-3 digest of the fold.
            prop_assert!(header.ordinals);
            let v3 = head.digest_v3();
            prop_assert!(v3.is_some());
            prop_assert_eq!(snap.state.clone().digest_v3(), v3);
            prop_assert_eq!(&snap.detector, &head_det);
            // The encoding is canonical: decoding and encoding again gives the same bytes.
            prop_assert_eq!(&snapshot::encode(k as u64, &snap.state, &snap.detector), &bytes);
            let (mut resumed, mut resumed_det) = (snap.state, snap.detector);
            fold(&mut resumed, &mut resumed_det, &events[k..], k);
            prop_assert_eq!(resumed.digest(), all.digest());
            prop_assert_eq!(resumed.digest_v3(), all.digest_v3());
            prop_assert_eq!(&resumed, &all);
            prop_assert_eq!(&resumed_det, &all_det);
        }
    }

    #[test]
    fn any_changed_byte_is_refused(
        events in proptest::collection::vec(any_event(), 1..30),
        at in any::<prop::sample::Index>(),
        flip in 1u8..=255,
    ) {
        let (mut s, mut d) = (State::new(roots()), Detector::new(detect_config()));
        fold(&mut s, &mut d, &events, 0);
        let mut bytes = snapshot::encode(events.len() as u64, &s, &d);
        let i = at.index(bytes.len());
        bytes[i] ^= flip;
        prop_assert!(snapshot::decode(&bytes).is_err());
        prop_assert!(snapshot::verify(&bytes).is_err());
    }
}

/// A state with something in every part, reached by a fixed list of events.
fn scenario() -> (State, Detector) {
    let kinds = [
        (0, "s-1", "p-1", "t-1", 0, 0),
        (14, "s-1", "p-1", "t-1", 0, 0),
        (16, "s-1", "p-1", "t-1", 1, 0),
        (4, "s-1", "p-1", "t-1", 1, 0),
        (7, "s-1", "p-1", "t-1", 1, 0),
        (8, "s-1", "p-1", "t-1", 1, 0),
        (9, "s-1", "p-1", "t-1", 1, 0),
        (11, "s-1", "p-1", "t-1", 1, 300),
        (15, "s-1", "p-1", "t-1", 1, 2_600),
        (12, "s-1", "p-1", "t-1", 1, 0),
        (17, "s-1", "p-1", "t-1", 1, 0),
    ];
    let events: Vec<Envelope> = kinds
        .iter()
        .map(|&(k, s, p, t, n, amount)| make(k, "acme", s, "agent-1", p, t, n, amount))
        .collect();
    let (mut st, mut d) = (State::new(roots()), Detector::new(detect_config()));
    for (i, e) in events.iter().enumerate() {
        let time = T0 + i as u64 * 1_000;
        if let Err(r) = st.check(e, time) {
            panic!(
                "scenario event {i} ({}) is refused: {r:?}",
                e.kind().as_str()
            );
        }
        st.apply(e, time);
        d.observe(e, time);
    }
    (st, d)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The parts of a snapshot's bytes, as its framing gives them: the header, then
/// each part (without its length), then the checksum.
fn framing(bytes: &[u8]) -> Vec<&[u8]> {
    let mut out = vec![&bytes[..48]];
    let mut at = 48;
    while at < bytes.len() - 32 {
        let n = u64::from_be_bytes(bytes[at..at + 8].try_into().unwrap()) as usize;
        out.push(&bytes[at + 8..at + 8 + n]);
        at += 8 + n;
    }
    assert_eq!(at, bytes.len() - 32, "the parts end at the checksum");
    out.push(&bytes[at..]);
    out
}

#[test]
fn the_format_is_frozen_by_a_golden_vector() {
    let (mut st, d) = scenario();
    let bytes = snapshot::encode(11, &st, &d);
    assert_eq!(&bytes[..8], b"GLSNAP\x00\x02");
    assert_eq!(snapshot::MAGIC_V2, *b"GLSNAP\x00\x02");
    assert_eq!(&bytes[8..16], &11u64.to_be_bytes());
    assert_eq!(&bytes[16..48], &st.digest_v1());
    let sum: [u8; 32] = Sha256::digest(&bytes[..bytes.len() - 32]).into();
    assert_eq!(&bytes[bytes.len() - 32..], &sum);
    assert_eq!(
        (bytes.len(), hex(&Sha256::digest(&bytes)).as_str()),
        GOLDEN_V2
    );
    // The ordinals part, read field by field: the seven maps in the state
    // digest's order, each with its counter, its count and its ordinals in key
    // order.
    let parts = framing(&bytes);
    assert_eq!(parts.len(), 8, "header, six parts, checksum");
    let words: Vec<u64> = parts[6]
        .chunks_exact(8)
        .map(|w| u64::from_be_bytes(w.try_into().unwrap()))
        .collect();
    assert_eq!(words, ORDINALS_PART);
    // The same state restored from the version-1 snapshot (no ordinals) is
    // written as version 1, byte for byte as before version 2 existed.
    let v1 = snapshot::to_format_1(&bytes).expect("a good snapshot");
    assert_eq!(&v1[..8], b"GLSNAP\x00\x01");
    assert_eq!(snapshot::to_format_1(&v1).expect("format 1 as it is"), v1);
    let mut damaged = bytes.clone();
    damaged[100] ^= 1;
    assert!(matches!(
        snapshot::to_format_1(&damaged),
        Err(SnapshotError::Checksum)
    ));
    assert_eq!((v1.len(), hex(&Sha256::digest(&v1)).as_str()), GOLDEN_V1);
    let (header, mut back) = snapshot::open(&v1).expect("a version-1 snapshot opens");
    assert!(!header.ordinals);
    assert_eq!(back.state, st);
    assert_eq!(back.state.digest(), st.digest());
    assert_eq!(back.state.digest_v3(), None, "no ordinals, no v3 digest");
    assert_eq!(snapshot::encode(11, &back.state, &back.detector), v1);
}

/// Length and SHA-256 of the scenario's snapshot, version 2. Changing the format
/// changes this: that needs a new format version (magic), not a new vector.
const GOLDEN_V2: (usize, &str) = (
    1203,
    "0ff17e725b943bf6cbdf935f3ea96dbfa190aef361931b76f5c84db008e1a65a",
);

/// The ordinals part of the scenario's snapshot, as u64s, worked out by hand.
const ORDINALS_PART: [u64; 24] = [
    // Keys: the trust roots numbered in key order (acme/admin 0, globex/admin
    // 1, operator/root 2), then acme/k1 registered (3) and acme/k5 rotated in
    // (4); in key order acme/admin, acme/k1, acme/k5, globex/admin,
    // operator/root.
    5, 5, 0, 3, 4, 1, 2, //
    1, 1, 0, // sessions: s-1
    1, 1, 0, // kill switches: session s-1's
    0, 0, // system kill switches: none
    1, 1, 0, // proposals: p-1
    1, 1, 0, // tickets: t-1
    1, 1, 0, // budgets: b-0
];

/// The same in version 1: the format of every snapshot written before
/// version 2, unchanged.
const GOLDEN_V1: (usize, &str) = (
    1003,
    "b1a117ceb738d32f626e464ba97554257c05e323e1272b0168f25099b44831dd",
);

#[test]
fn damage_is_named() {
    let (st, d) = scenario();
    let good = snapshot::encode(11, &st, &d);
    assert!(matches!(
        snapshot::decode(b"nope"),
        Err(SnapshotError::Magic)
    ));
    assert!(matches!(
        snapshot::decode(&good[..60]),
        Err(SnapshotError::Truncated(_))
    ));
    // What the header claims is read only from bytes that can hold a snapshot.
    assert_eq!(snapshot::claimed(b"nope"), None);
    assert_eq!(snapshot::claimed(&good[..60]), None);
    assert_eq!(snapshot::claimed(&good), Some((11, st.digest_v1())));
    damage_past_the_framing_is_named(good);
}

/// `good` with its checksum redone.
fn resealed(mut bad: Vec<u8>) -> Vec<u8> {
    let n = bad.len() - 32;
    let sum: [u8; 32] = Sha256::digest(&bad[..n]).into();
    bad[n..].copy_from_slice(&sum);
    bad
}

/// A changed byte is a checksum error, whatever else it breaks; with the
/// checksum redone, a part's length past the end is a framing error, a header
/// digest the parts do not hash to a digest error, a damaged detector part that
/// part's error.
fn damage_past_the_framing_is_named(good: Vec<u8>) {
    let mut bad = good.clone();
    let last = bad.len() - 40;
    bad[last] ^= 1;
    assert!(matches!(
        snapshot::decode(&bad),
        Err(SnapshotError::Checksum)
    ));
    // The same when the checksum is computed on the other thread.
    assert!(matches!(
        snapshot::open_for_digest(&bad, 0),
        Err(SnapshotError::Checksum)
    ));
    // The first part's length (after magic, size and digest) past the end.
    let mut bad = good.clone();
    bad[48..56].copy_from_slice(&u64::MAX.to_be_bytes());
    assert!(matches!(
        snapshot::decode(&bad),
        Err(SnapshotError::Checksum)
    ));
    let bad = resealed(bad);
    assert!(matches!(
        snapshot::decode(&bad),
        Err(SnapshotError::Truncated(_))
    ));
    assert!(matches!(
        snapshot::open_for_digest(&bad, 0),
        Err(SnapshotError::Truncated(_))
    ));
    // A header digest that does not match the parts, with the checksum redone.
    let mut bad = good.clone();
    bad[20] ^= 1;
    assert!(matches!(
        snapshot::decode(&bad),
        Err(SnapshotError::Checksum)
    ));
    let bad = resealed(bad);
    assert!(matches!(snapshot::decode(&bad), Err(SnapshotError::Digest)));
    // Opened for a comparison of the decoded state's own digest, the header's
    // claim is not checked: the same state, the claim returned as it is.
    let (header, decoded) = snapshot::open_for_digest(&bad, 0).expect("opens");
    assert_eq!(header.state_digest[..], bad[16..48]);
    assert_eq!(decoded, snapshot::decode(&good).expect("decodes"));
    detector_damage_is_named(good);
}

/// A detector part (outside the digest) that is not canonical, checksum redone,
/// is refused as a damaged detector part.
fn detector_damage_is_named(mut bad: Vec<u8>) {
    let detector = framing(&bad)[5];
    let n = detector.as_ptr() as usize - bad.as_ptr() as usize + detector.len();
    // The last track ends: over flag, max-tier flag 1, tier tag, denials (u32).
    let detector_flag_at = n - 4 - 2;
    bad[detector_flag_at] = 9;
    let bad = resealed(bad);
    match snapshot::decode(&bad) {
        Err(SnapshotError::Part(e)) => assert_eq!(e.part, "detector", "{e}"),
        other => panic!("expected a detector part error, got {other:?}"),
    }
    match snapshot::open_for_digest(&bad, 0) {
        Err(SnapshotError::Part(e)) => assert_eq!(e.part, "detector", "{e}"),
        other => panic!("expected a detector part error, got {other:?}"),
    }
}

#[test]
fn a_large_snapshot_encodes_and_decodes_its_flows_beside_the_other_parts() {
    let (mut st, mut d) = scenario();
    // Enough proposals for a flows part encoded, and decoded, on a thread of its
    // own.
    for i in 0..govledger_projections::PARALLEL_ENTRIES as u64 {
        let e = event(
            "acme",
            "action.proposed",
            json!({"proposal": format!("p-big-{i:06}"), "session": "s-1", "actor": actor("agent-1"),
                   "action": "refund", "resource": "svc:payments",
                   "args_digest": "ab".repeat(32), "risk_tier": "low"}),
        );
        st.apply(&e, T0 + i);
        d.observe(&e, T0 + i);
    }
    assert!(st.flows.entries() >= govledger_projections::PARALLEL_ENTRIES);
    let bytes = snapshot::encode(20_011, &st, &d);
    // The flows part is the flows' canonical encoding.
    let mut flows = Canon::to(Vec::new());
    st.flows.encode(&mut flows);
    assert!(
        flows.into_out().len() >= snapshot::PARALLEL_DECODE_BYTES,
        "the flows part is smaller than the size decoded on its own thread"
    );
    let back = snapshot::decode(&bytes).expect("decodes");
    assert_eq!(back.state, st);
    assert_eq!(back.detector, d);
    // Opened for as many entries again as it holds, each growing map has room
    // for twice its entries, decoded on either thread; opened without, the
    // proposals have not.
    let (_, roomy) = snapshot::open_ahead(&bytes, 20_011).expect("opens with room");
    assert_eq!(roomy.state, st);
    let held = [
        st.flows.proposals().count(),
        st.flows.tickets().count(),
        st.gates.sessions().count(),
    ];
    for (room, n) in roomy.state.capacities().into_iter().zip(held) {
        assert!(room >= 2 * n, "room for {room} of {n}");
    }
    assert!(back.state.capacities()[0] < 2 * held[0]);
    assert_eq!(back.state.clone().digest(), st.digest());
    // Damage is named the same with the checksum computed beside the framing
    // and the parts' digests, and the flows decoded beside the other parts.
    damage_past_the_framing_is_named(bytes);
}

/// The entries of the first map of a part with one entry there (`one`), cut
/// out of its bytes: the part of an empty state (`empty`) is the counts alone.
fn first_entry<'a>(empty: &[u8], one: &'a [u8]) -> &'a [u8] {
    &one[8..one.len() - (empty.len() - 8)]
}

/// A part whose first map holds `entries` in the order given, the rest empty.
fn spliced(empty: &[u8], entries: &[&[u8]]) -> Vec<u8> {
    let mut c = Canon::buffer();
    c.u64(entries.len() as u64);
    let mut bytes = c.into_bytes();
    for e in entries {
        bytes.extend_from_slice(e);
    }
    bytes.extend_from_slice(&empty[8..]);
    bytes
}

/// Sessions and proposals, keyed by (tenant, id), must come in strictly
/// ascending key order: two in order are read back, the same two the other way
/// round or one of them twice are refused, whatever the checksum says.
#[test]
fn keys_out_of_order_or_twice_are_refused() {
    use govledger_projections::canon::Reader;
    use govledger_projections::{Flows, Gates};
    let state = |s: &str, p: &str| {
        let mut st = State::new(roots());
        for kind in [0, 4] {
            st.apply(&make(kind, "acme", s, "agent-1", p, "t-1", 1, 0), T0);
        }
        st
    };
    let (empty, a, b) = (
        State::new(roots()),
        state("s-1", "p-1"),
        state("s-2", "p-2"),
    );
    // The part `encode` writes for the empty state, for `a` and for `b`; then
    // `decode` on their first entries spliced in order, backwards, and twice.
    let check = |encode: &dyn Fn(&State, &mut Canon<Vec<u8>>),
                 decode: &dyn Fn(&[u8]) -> Result<(), String>| {
        let part = |st: &State| {
            let mut c = Canon::buffer();
            encode(st, &mut c);
            c.into_bytes()
        };
        let (pe, pa, pb) = (part(&empty), part(&a), part(&b));
        let (ea, eb) = (first_entry(&pe, &pa), first_entry(&pe, &pb));
        assert_eq!(decode(&spliced(&pe, &[ea, eb])), Ok(()));
        for bad in [[eb, ea], [ea, ea]] {
            let err = decode(&spliced(&pe, &bad)).expect_err("keys out of order");
            assert!(err.contains("ascending"), "{err}");
        }
    };
    check(&|st, c| st.gates.encode(c), &|bytes| {
        Gates::decode(&mut Reader::new("gates", bytes))
            .map(|_| ())
            .map_err(|e| e.to_string())
    });
    check(&|st, c| st.flows.encode(c), &|bytes| {
        Flows::decode(&mut Reader::new("flows", bytes))
            .map(|_| ())
            .map_err(|e| e.to_string())
    });
}

/// `v2` with its ordinals part replaced by `words`, checksum redone.
fn with_ordinals(v2: &[u8], words: &[u64]) -> Vec<u8> {
    let parts = framing(v2);
    let end = v2.len() - 32 - 8 - parts[6].len();
    let mut out = v2[..end].to_vec();
    out.extend_from_slice(&(8 * words.len() as u64).to_be_bytes());
    for w in words {
        out.extend_from_slice(&w.to_be_bytes());
    }
    out.extend_from_slice(&[0; 32]);
    resealed(out)
}

/// The part an error names and what it says, or a panic.
fn part_error(bytes: &[u8]) -> (&'static str, String) {
    match snapshot::decode(bytes) {
        Err(SnapshotError::Part(e)) => (e.part, e.what),
        other => panic!("expected a part error, got {other:?}"),
    }
}

/// Ordinals that do not fit their maps are refused, naming the part and what
/// is wrong; ordinals that fit but are not the fold's decode to the same state
/// with another version-3 digest, or none when two entries share one.
#[test]
fn ordinals_that_do_not_fit_are_refused() {
    let (mut st, d) = scenario();
    let good = snapshot::encode(11, &st, &d);
    assert_eq!(with_ordinals(&good, &ORDINALS_PART), good);
    let changed = |at: usize, to: u64| {
        let mut w = ORDINALS_PART.to_vec();
        w[at] = to;
        with_ordinals(&good, &w)
    };
    // A key's ordinal at its map's counter.
    let (part, what) = part_error(&changed(3, 5));
    assert_eq!(part, "key ring");
    assert!(what.contains("not below the map's counter 5"), "{what}");
    // Sessions: one ordinal too many, one too few.
    let mut w = ORDINALS_PART.to_vec();
    w.splice(7..10, [2, 2, 0, 1]);
    let (part, what) = part_error(&with_ordinals(&good, &w));
    assert_eq!(part, "gates");
    assert!(what.contains("fewer entries than"), "{what}");
    let mut w = ORDINALS_PART.to_vec();
    w.splice(7..10, [1, 0]);
    let (part, what) = part_error(&with_ordinals(&good, &w));
    assert_eq!(part, "gates");
    assert!(what.contains("more entries than"), "{what}");
    // A counter below the count (every ordinal below it, one given twice).
    let mut w = ORDINALS_PART.to_vec();
    w.splice(0..7, [4, 5, 0, 3, 3, 1, 2]);
    let (part, what) = part_error(&with_ordinals(&good, &w));
    assert_eq!(part, "ordinals");
    assert!(
        what.contains("5 entries, but the counter gives out only 4"),
        "{what}"
    );
    // Counters more than the size (11 entries) above the counts, in all: an
    // event removes at most one entry of one map.
    assert!(snapshot::decode(&changed(7, 12)).is_ok());
    let (part, what) = part_error(&changed(7, 13));
    assert_eq!(part, "ordinals");
    assert!(what.contains("the 11 entries folded"), "{what}");
    let mut w = ORDINALS_PART.to_vec();
    (w[7], w[15]) = (7, 7);
    let (part, what) = part_error(&with_ordinals(&good, &w));
    assert_eq!(part, "ordinals");
    assert!(what.contains("the counters are 12 more"), "{what}");
    // A word left over, and a list that runs past the end.
    let mut w = ORDINALS_PART.to_vec();
    w.push(0);
    assert_eq!(part_error(&with_ordinals(&good, &w)).0, "ordinals");
    let (part, what) = part_error(&with_ordinals(&good, &ORDINALS_PART[..23]));
    assert_eq!(part, "ordinals");
    assert!(what.contains("more bytes"), "{what}");
    // Not the fold's ordinals: the same state, another version-3 digest.
    let mut w = ORDINALS_PART.to_vec();
    w.splice(2..7, [0, 3, 4, 2, 1]);
    let mut other = snapshot::decode(&with_ordinals(&good, &w)).expect("decodes");
    assert_eq!(other.state, st);
    assert_eq!(other.state.digest(), st.digest());
    let v3 = st.digest_v3().expect("the fold's ordinals are known");
    assert_ne!(other.state.digest_v3().expect("ordinals given"), v3);
    // Two keys with one ordinal: no version-3 digest at all.
    let mut doubled = snapshot::decode(&changed(3, 4)).expect("decodes");
    assert_eq!(doubled.state.digest(), st.digest());
    assert_eq!(doubled.state.digest_v3(), None);
    // The good ones give the fold's.
    let mut back = snapshot::decode(&good).expect("decodes");
    assert_eq!(back.state.digest_v3(), Some(v3));
}

proptest! {
    /// A content sum fed a snapshot's bytes in pieces of any lengths is the
    /// SHA-256 of every byte but the last 32 (its checksum's).
    #[test]
    fn a_content_sum_fed_in_pieces_hashes_all_but_the_last_32_bytes(
        bytes in proptest::collection::vec(any::<u8>(), 0..300),
        mut cuts in proptest::collection::vec(0usize..300, 0..8),
    ) {
        cuts.retain(|&c| c <= bytes.len());
        cuts.sort_unstable();
        let mut sum = snapshot::ContentSum::new();
        let mut from = 0;
        for cut in cuts.into_iter().chain([bytes.len()]) {
            sum.update(&bytes[from..cut]);
            from = cut;
        }
        let content = &bytes[..bytes.len().saturating_sub(32)];
        prop_assert_eq!(sum.finish(), <[u8; 32]>::from(Sha256::digest(content)));
    }
}

#[test]
fn a_snapshot_summed_as_it_was_read_opens_as_when_its_checksum_is_computed() {
    let (st, d) = scenario();
    let bytes = snapshot::encode(20, &st, &d);
    let summed = |bytes: &[u8]| {
        let mut sum = snapshot::ContentSum::new();
        for piece in bytes.chunks(7) {
            sum.update(piece);
        }
        sum.finish()
    };
    let (header, whole) = snapshot::open_for_digest(&bytes, 0).expect("opens");
    let (summed_header, opened) =
        snapshot::open_for_digest_summed(&bytes, 0, summed(&bytes)).expect("opens");
    assert_eq!(summed_header, header);
    assert_eq!(opened.state, whole.state);
    assert_eq!(opened.detector, whole.detector);
    // Opened with the header's digest checked too, as `open_ahead` opens it.
    assert_eq!(
        snapshot::open_ahead_summed(&bytes, 0, summed(&bytes)).expect("opens"),
        snapshot::open_ahead(&bytes, 0).expect("opens")
    );
    // The sum of other bytes fails the checksum, and so do damaged bytes with
    // their own sum (the stored checksum is the intact content's).
    let mut other = summed(&bytes);
    other[0] ^= 1;
    assert!(matches!(
        snapshot::open_for_digest_summed(&bytes, 0, other),
        Err(SnapshotError::Checksum)
    ));
    assert!(matches!(
        snapshot::open_ahead_summed(&bytes, 0, other),
        Err(SnapshotError::Checksum)
    ));
    let mut bad = bytes.clone();
    bad[60] ^= 1;
    assert!(matches!(
        snapshot::open_for_digest_summed(&bad, 0, summed(&bad)),
        Err(SnapshotError::Checksum)
    ));
}
