//! The key ring: which key may sign what (`signer`), which key events are consistent
//! with the ring (`check`), how accepted key events change it (`apply`), and its
//! digest and order.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use govledger_projections::{KeyProblem, KeyRecord, KeyRing, KeyRole, KeyStatus};
use govledger_schemas::{decode_body, DecodeLimits, Envelope};
use serde_json::{json, Value};

/// A distinct 32-byte public key per `n` (the ring checks length, not the curve).
fn pk(n: u8) -> [u8; 32] {
    [n; 32]
}

fn pk_b64(n: u8) -> String {
    B64.encode(pk(n))
}

/// A strictly decoded v1 event of `tenant` with the type's `fields`.
fn event(tenant: &str, kind: &str, id: &str, mut fields: Value) -> Envelope {
    let m = fields.as_object_mut().expect("fields are an object");
    m.insert("v".into(), json!(1));
    m.insert("id".into(), json!(id));
    m.insert("type".into(), json!(kind));
    m.insert("tenant".into(), json!(tenant));
    decode_body(fields.to_string().as_bytes(), &DecodeLimits::default())
        .unwrap_or_else(|e| panic!("test event {kind} does not decode: {e}"))
}

fn registered(tenant: &str, key_id: &str, n: u8) -> Envelope {
    event(
        tenant,
        "key.registered",
        &format!("reg-{}", key_id.replace('/', ":")),
        json!({"key_id": key_id, "public_key": pk_b64(n)}),
    )
}

fn registered_window(tenant: &str, key_id: &str, n: u8, from: u64, until: u64) -> Envelope {
    event(
        tenant,
        "key.registered",
        &format!("reg-{}", key_id.replace('/', ":")),
        json!({"key_id": key_id, "public_key": pk_b64(n),
               "valid_from_ns": from, "valid_until_ns": until}),
    )
}

fn rotated(tenant: &str, old: &str, new: &str, n: u8, retire_at: Option<u64>) -> Envelope {
    let mut f = json!({"key_id": old, "new_key_id": new, "new_public_key": pk_b64(n)});
    if let Some(t) = retire_at {
        f["retire_old_at_ns"] = json!(t);
    }
    event(
        tenant,
        "key.rotated",
        &format!("rot-{}", old.replace('/', ":")),
        f,
    )
}

fn revoked(tenant: &str, key_id: &str) -> Envelope {
    event(
        tenant,
        "key.revoked",
        &format!("rev-{}", key_id.replace('/', ":")),
        json!({"key_id": key_id, "reason": "compromised"}),
    )
}

/// Roots: `operator/root`, `acme/admin`, `globex/admin`.
fn roots() -> KeyRing {
    let mut ring = KeyRing::new();
    ring.add_root("operator/root", "operator", pk(1), KeyRole::Operator);
    ring.add_root("acme/admin", "acme", pk(2), KeyRole::Admin);
    ring.add_root("globex/admin", "globex", pk(3), KeyRole::Admin);
    ring
}

/// Roots plus an `acme/gateway` producer key registered at time 10.
fn with_gateway() -> KeyRing {
    let mut ring = roots();
    let e = registered("acme", "acme/gateway", 10);
    ring.check(&e)
        .expect("registering a new key of the tenant is consistent");
    ring.apply(&e, 10);
    ring
}

fn record<'a>(ring: &'a KeyRing, key_id: &str) -> &'a KeyRecord {
    ring.iter()
        .find(|(id, _)| *id == key_id)
        .map(|(_, r)| r)
        .unwrap_or_else(|| panic!("{key_id} is not in the ring"))
}

fn assert_revoked(r: Result<&KeyRecord, KeyProblem>, key_id: &str) {
    match r {
        Err(KeyProblem::Revoked(m)) => assert!(m.contains(key_id), "{m}"),
        other => panic!("expected Revoked for {key_id}, got {other:?}"),
    }
}

// ---- signer ----

#[test]
fn signer_unknown_key_is_unknown() {
    let ring = with_gateway();
    assert_eq!(
        ring.signer("acme/nope", "acme", 100, false),
        Err(KeyProblem::Unknown)
    );
    assert_eq!(
        KeyRing::new().signer("acme/admin", "acme", 0, true),
        Err(KeyProblem::Unknown)
    );
}

#[test]
fn signer_active_producer_may_sign_its_tenants_events() {
    let ring = with_gateway();
    let rec = ring.signer("acme/gateway", "acme", 100, false).unwrap();
    assert_eq!(rec.public_key, pk(10));
    assert_eq!(rec.role, KeyRole::Producer);
}

#[test]
fn signer_revoked_key_is_revoked() {
    let mut ring = with_gateway();
    ring.apply(&revoked("acme", "acme/gateway"), 50);
    assert_revoked(
        ring.signer("acme/gateway", "acme", 100, false),
        "acme/gateway",
    );
    // Revocation is not time-bound: events before the revocation time are refused too.
    assert_revoked(
        ring.signer("acme/gateway", "acme", 1, false),
        "acme/gateway",
    );
}

#[test]
fn signer_retiring_key_is_usable_only_before_until_ns() {
    let mut ring = with_gateway();
    ring.apply(
        &rotated("acme", "acme/gateway", "acme/gateway-2", 11, Some(1_000)),
        500,
    );
    assert_eq!(
        record(&ring, "acme/gateway").status,
        KeyStatus::Retiring { until_ns: 1_000 }
    );
    assert!(ring.signer("acme/gateway", "acme", 999, false).is_ok());
    assert_revoked(
        ring.signer("acme/gateway", "acme", 1_000, false),
        "acme/gateway",
    );
    assert_revoked(
        ring.signer("acme/gateway", "acme", 5_000, false),
        "acme/gateway",
    );
    // The successor is usable at once.
    assert!(ring.signer("acme/gateway-2", "acme", 500, false).is_ok());
}

#[test]
fn signer_respects_the_validity_window_inclusively() {
    let mut ring = roots();
    ring.apply(&registered_window("acme", "acme/batch", 12, 100, 200), 0);
    assert_revoked(ring.signer("acme/batch", "acme", 99, false), "acme/batch");
    assert!(ring.signer("acme/batch", "acme", 100, false).is_ok());
    assert!(ring.signer("acme/batch", "acme", 150, false).is_ok());
    assert!(ring.signer("acme/batch", "acme", 200, false).is_ok());
    assert_revoked(ring.signer("acme/batch", "acme", 201, false), "acme/batch");
}

#[test]
fn signer_key_of_another_tenant_is_tenant_mismatch() {
    let ring = with_gateway();
    for (key, key_event) in [
        ("acme/gateway", false),
        ("acme/admin", true),
        ("acme/admin", false),
    ] {
        match ring.signer(key, "globex", 100, key_event) {
            Err(KeyProblem::TenantMismatch(m)) => {
                assert!(m.contains(key) && m.contains("globex"), "{m}")
            }
            other => panic!("{key}: expected TenantMismatch, got {other:?}"),
        }
    }
}

#[test]
fn signer_operator_key_may_sign_for_any_tenant() {
    let ring = with_gateway();
    for tenant in ["acme", "globex", "initech"] {
        for key_event in [false, true] {
            let rec = ring
                .signer("operator/root", tenant, 100, key_event)
                .unwrap_or_else(|e| panic!("{tenant} {key_event}: {e:?}"));
            assert_eq!(rec.role, KeyRole::Operator);
        }
    }
}

#[test]
fn signer_producer_key_signing_a_key_event_is_unauthorized() {
    let ring = with_gateway();
    match ring.signer("acme/gateway", "acme", 100, true) {
        Err(KeyProblem::Unauthorized(m)) => assert!(m.contains("acme/gateway"), "{m}"),
        other => panic!("expected Unauthorized, got {other:?}"),
    }
    // The tenant's admin key may.
    assert_eq!(
        ring.signer("acme/admin", "acme", 100, true).unwrap().role,
        KeyRole::Admin
    );
}

// ---- check ----

fn check_err(ring: &KeyRing, e: &Envelope, needle: &str) {
    match ring.check(e) {
        Err(m) => assert!(m.contains(needle), "{m:?} should mention {needle:?}"),
        Ok(()) => panic!("{:?} should be an invariant violation", e.kind()),
    }
}

#[test]
fn check_accepts_consistent_key_events_and_ignores_others() {
    let ring = with_gateway();
    assert_eq!(ring.check(&registered("acme", "acme/runtime", 20)), Ok(()));
    assert_eq!(
        ring.check(&rotated("acme", "acme/gateway", "acme/gateway-2", 21, None)),
        Ok(())
    );
    assert_eq!(ring.check(&revoked("acme", "acme/gateway")), Ok(()));
    let telemetry = event("acme", "telemetry", "t-1", json!({"name": "latency"}));
    assert_eq!(ring.check(&telemetry), Ok(()));
}

#[test]
fn check_registering_an_existing_key_id_is_a_violation() {
    let ring = with_gateway();
    check_err(
        &ring,
        &registered("acme", "acme/gateway", 99),
        "already registered",
    );
    // Trust roots count as registered too.
    check_err(
        &ring,
        &registered("acme", "acme/admin", 99),
        "already registered",
    );
}

#[test]
fn check_registering_a_key_of_another_tenant_is_a_violation() {
    let ring = with_gateway();
    check_err(
        &ring,
        &registered("acme", "globex/sneaky", 30),
        "globex/sneaky",
    );
    check_err(
        &ring,
        &registered("acme", "operator/sneaky", 30),
        "operator/sneaky",
    );
}

#[test]
fn check_rotations_that_contradict_the_ring_are_violations() {
    let mut ring = with_gateway();
    check_err(
        &ring,
        &rotated("acme", "acme/ghost", "acme/ghost-2", 31, None),
        "not registered",
    );
    check_err(
        &ring,
        &rotated("acme", "acme/admin", "acme/admin-2", 31, None),
        "trust root",
    );
    check_err(
        &ring,
        &rotated("acme", "acme/gateway", "acme/admin", 31, None),
        "already registered",
    );
    check_err(
        &ring,
        &rotated("globex", "acme/gateway", "acme/gateway-2", 31, None),
        "acme/gateway",
    );
    // A key already rotated out cannot be rotated again (that would move or undo its
    // retirement).
    ring.apply(
        &rotated("acme", "acme/gateway", "acme/gateway-2", 31, Some(1_000)),
        100,
    );
    check_err(
        &ring,
        &rotated("acme", "acme/gateway", "acme/gateway-3", 32, Some(9_999)),
        "already rotated",
    );
    // A revoked key cannot be rotated.
    ring.apply(&revoked("acme", "acme/gateway-2"), 200);
    check_err(
        &ring,
        &rotated("acme", "acme/gateway-2", "acme/gateway-4", 33, None),
        "already revoked",
    );
}

#[test]
fn check_revocations_that_contradict_the_ring_are_violations() {
    let mut ring = with_gateway();
    check_err(&ring, &revoked("acme", "acme/admin"), "trust root");
    check_err(&ring, &revoked("operator", "operator/root"), "trust root");
    check_err(&ring, &revoked("acme", "acme/ghost"), "not registered");
    check_err(&ring, &revoked("globex", "acme/gateway"), "acme/gateway");
    ring.apply(&revoked("acme", "acme/gateway"), 100);
    check_err(&ring, &revoked("acme", "acme/gateway"), "already revoked");
}

// ---- apply ----

#[test]
fn apply_registered_adds_an_active_producer_key() {
    let mut ring = roots();
    ring.apply(&registered_window("acme", "acme/batch", 12, 100, 200), 7);
    assert_eq!(
        record(&ring, "acme/batch"),
        &KeyRecord {
            tenant: "acme".into(),
            public_key: pk(12),
            role: KeyRole::Producer,
            status: KeyStatus::Active,
            valid_from_ns: Some(100),
            valid_until_ns: Some(200),
        }
    );
    // An unchecked second registration of the same id changes nothing.
    let before = ring.clone();
    ring.apply(&registered("acme", "acme/batch", 13), 8);
    assert_eq!(ring, before);
}

#[test]
fn apply_rotated_retires_the_old_key_and_adds_the_new_one() {
    let mut at_time = with_gateway();
    at_time.apply(
        &rotated("acme", "acme/gateway", "acme/gateway-2", 11, Some(900)),
        500,
    );
    assert_eq!(
        record(&at_time, "acme/gateway").status,
        KeyStatus::Retiring { until_ns: 900 }
    );
    assert_eq!(
        record(&at_time, "acme/gateway-2"),
        &KeyRecord {
            tenant: "acme".into(),
            public_key: pk(11),
            role: KeyRole::Producer,
            status: KeyStatus::Active,
            valid_from_ns: None,
            valid_until_ns: None,
        }
    );

    // Without retire_old_at_ns the old key retires at the event time.
    let mut at_once = with_gateway();
    at_once.apply(
        &rotated("acme", "acme/gateway", "acme/gateway-2", 11, None),
        500,
    );
    assert_eq!(
        record(&at_once, "acme/gateway").status,
        KeyStatus::Retiring { until_ns: 500 }
    );
    assert!(at_once.signer("acme/gateway", "acme", 499, false).is_ok());
    assert_revoked(
        at_once.signer("acme/gateway", "acme", 500, false),
        "acme/gateway",
    );
}

#[test]
fn apply_revoked_revokes_producer_keys_only() {
    let mut ring = with_gateway();
    ring.apply(&revoked("acme", "acme/gateway"), 50);
    assert_eq!(record(&ring, "acme/gateway").status, KeyStatus::Revoked);

    // Unchecked events never change trust roots.
    let before = ring.clone();
    ring.apply(&revoked("acme", "acme/admin"), 60);
    ring.apply(&rotated("acme", "acme/admin", "acme/admin-2", 40, None), 60);
    assert_eq!(record(&ring, "acme/admin"), record(&before, "acme/admin"));
    assert_eq!(record(&ring, "acme/admin").status, KeyStatus::Active);
}

#[test]
fn apply_unchecked_rotation_never_revives_a_revoked_key() {
    let mut ring = with_gateway();
    ring.apply(&revoked("acme", "acme/gateway"), 50);
    ring.apply(
        &rotated("acme", "acme/gateway", "acme/gateway-2", 11, Some(u64::MAX)),
        60,
    );
    assert_eq!(record(&ring, "acme/gateway").status, KeyStatus::Revoked);
    assert_revoked(
        ring.signer("acme/gateway", "acme", 70, false),
        "acme/gateway",
    );
}

#[test]
fn apply_ignores_events_that_are_not_key_events() {
    let mut ring = with_gateway();
    let before = ring.digest();
    ring.apply(
        &event("acme", "telemetry", "t-1", json!({"name": "latency"})),
        100,
    );
    assert_eq!(ring.digest(), before);
}

// ---- digest and order ----

#[test]
fn digest_is_equal_for_rings_built_the_same_way() {
    assert_eq!(with_gateway().digest(), with_gateway().digest());
    assert_eq!(KeyRing::new().digest(), KeyRing::new().digest());
    // Insertion order does not matter: the ring is ordered by key id.
    let mut reversed = KeyRing::new();
    reversed.add_root("globex/admin", "globex", pk(3), KeyRole::Admin);
    reversed.add_root("acme/admin", "acme", pk(2), KeyRole::Admin);
    reversed.add_root("operator/root", "operator", pk(1), KeyRole::Operator);
    assert_eq!(reversed.digest(), roots().digest());
    assert_eq!(reversed, roots());
}

#[test]
fn digest_changes_when_any_key_changes() {
    let base = with_gateway();
    let d = base.digest();
    let mut variants: Vec<(&str, KeyRing)> = Vec::new();

    let mut r = base.clone();
    r.apply(&registered("acme", "acme/runtime", 20), 20);
    variants.push(("a key added", r));

    let mut r = roots();
    r.apply(&registered("acme", "acme/gateway", 11), 10);
    variants.push(("another public key", r));

    let mut r = roots();
    r.apply(
        &registered_window("acme", "acme/gateway", 10, 0, u64::MAX),
        10,
    );
    variants.push(("a validity window", r));

    let mut r = roots();
    r.apply(
        &registered_window("acme", "acme/gateway", 10, 1, u64::MAX),
        10,
    );
    variants.push(("another validity window", r));

    let mut r = base.clone();
    r.apply(&revoked("acme", "acme/gateway"), 30);
    variants.push(("revoked", r));

    let mut r = base.clone();
    r.apply(
        &rotated("acme", "acme/gateway", "acme/g2", 21, Some(40)),
        30,
    );
    variants.push(("rotated at 40", r));

    let mut r = base.clone();
    r.apply(
        &rotated("acme", "acme/gateway", "acme/g2", 21, Some(41)),
        30,
    );
    variants.push(("rotated at 41", r));

    let mut r = base.clone();
    r.add_root("acme/admin", "acme", pk(2), KeyRole::Operator);
    variants.push(("a role", r));

    let mut r = base.clone();
    r.add_root("acme/admin", "acme-2", pk(2), KeyRole::Admin);
    variants.push(("a tenant", r));

    let mut r = base.clone();
    r.add_root("acme/admin", "acme", pk(99), KeyRole::Admin);
    variants.push(("a root's public key", r));

    let mut digests = vec![("base", d)];
    for (what, ring) in &variants {
        assert_ne!(ring.digest(), d, "{what} must change the digest");
        digests.push((*what, ring.digest()));
    }
    // And all the variants differ from one another.
    for (i, (a, da)) in digests.iter().enumerate() {
        for (b, db) in &digests[i + 1..] {
            assert_ne!(da, db, "{a} and {b} have the same digest");
        }
    }
}

#[test]
fn iteration_is_ordered_by_key_id() {
    let mut ring = KeyRing::new();
    for (id, tenant) in [
        ("zeta/admin", "zeta"),
        ("acme/admin", "acme"),
        ("operator/root", "operator"),
        ("beta/admin", "beta"),
    ] {
        ring.add_root(id, tenant, pk(1), KeyRole::Admin);
    }
    ring.apply(&registered("acme", "acme/zz", 5), 1);
    ring.apply(&registered("acme", "acme/a", 6), 1);
    let ids: Vec<&str> = ring.iter().map(|(id, _)| id).collect();
    assert_eq!(
        ids,
        [
            "acme/a",
            "acme/admin",
            "acme/zz",
            "beta/admin",
            "operator/root",
            "zeta/admin"
        ]
    );
}
