//! Admission: every message becomes exactly one entry, accepted or rejected with the
//! documented reason (README, "Admission and reject reasons"), and the key ring it
//! builds can be rebuilt by replaying the accepted entries.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ed25519_dalek::Signer;
use govledger_ingest::admit::PIPELINE_ROUND;
use govledger_ingest::gen::{derive_key, signed_line};
use govledger_ingest::{
    Admission, GenOptions, Generator, LeafReader, Line, Message, TenantTrust, Trust, TrustKey,
};
use govledger_schemas::{DecodeLimits, Entry, RejectReason, Verdict};
use proptest::prelude::*;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::cell::Cell;
use std::collections::BTreeSet;
use std::convert::Infallible;

const SEED: u64 = 7;
const T0: u64 = 1_767_225_600_000_000_000;

fn trust_key(key_id: &str) -> TrustKey {
    TrustKey {
        key_id: key_id.into(),
        public_key: B64.encode(derive_key(SEED, key_id).verifying_key().as_bytes()),
    }
}

/// Operator `operator/root`; admins `acme/admin` and `globex/admin`.
fn trust() -> Trust {
    let mut trust = Trust {
        operator: vec![trust_key("operator/root")],
        ..Trust::default()
    };
    for tenant in ["acme", "globex"] {
        trust.tenants.insert(
            tenant.into(),
            TenantTrust {
                admin_keys: vec![trust_key(&format!("{tenant}/admin"))],
            },
        );
    }
    trust
}

/// Admission over [`trust`], with session `s-000001` started in acme and globex (by
/// their admin keys), so that actions have an active session to run in.
fn admission() -> Admission {
    let mut adm =
        Admission::new(&trust(), DecodeLimits::default()).expect("the test trust is valid");
    for tenant in ["acme", "globex"] {
        let msg = signed(
            &format!("{tenant}/admin"),
            tenant,
            "session.started",
            "sess-start",
            session(),
            T0,
        );
        assert_accepted(&admit(&mut adm, &msg), &msg);
    }
    adm.end_batch();
    adm
}

fn never_seen(_: &str, _: &str) -> Result<bool, Infallible> {
    Ok(false)
}

fn admit(adm: &mut Admission, msg: &Message) -> Entry {
    match adm.admit(msg, &never_seen) {
        Ok(e) => e,
        Err(never) => match never {},
    }
}

/// A message of type `kind` signed by the derived key of `key_id`.
fn signed(key_id: &str, tenant: &str, kind: &str, id: &str, fields: Value, t: u64) -> Message {
    line(key_id, tenant, kind, id, fields, t)
        .to_message()
        .expect("a signed line has a body")
}

fn line(key_id: &str, tenant: &str, kind: &str, id: &str, fields: Value, t: u64) -> Line {
    signed_line(
        &derive_key(SEED, key_id),
        key_id,
        tenant,
        kind,
        id,
        fields,
        t,
    )
}

fn proposal(p: &str) -> Value {
    json!({"proposal": p, "session": "s-000001",
           "actor": {"user": "user-1", "agent": "agent-1"},
           "action": "payments.refund", "resource": "svc:payments",
           "args_digest": "ab".repeat(32), "risk_tier": "high"})
}

fn session() -> Value {
    json!({"session": "s-000001", "actor": {"user": "user-1", "agent": "agent-1"}})
}

fn public_b64(key_id: &str) -> String {
    B64.encode(derive_key(SEED, key_id).verifying_key().as_bytes())
}

/// `key.registered` of `new_key` (with its derived public key) signed by `signer`.
fn register(signer: &str, tenant: &str, new_key: &str, id: &str, t: u64) -> Message {
    signed(
        signer,
        tenant,
        "key.registered",
        id,
        json!({"key_id": new_key, "public_key": public_b64(new_key)}),
        t,
    )
}

/// An action proposal of `tenant` signed by `key_id`.
fn action(key_id: &str, tenant: &str, id: &str, t: u64) -> Message {
    signed(
        key_id,
        tenant,
        "action.proposed",
        id,
        proposal(&format!("p-{id}")),
        t,
    )
}

/// Admission with `acme/gateway` and `globex/gateway` registered by their admins.
fn with_producers() -> Admission {
    let mut adm = admission();
    for tenant in ["acme", "globex"] {
        let msg = register(
            &format!("{tenant}/admin"),
            tenant,
            &format!("{tenant}/gateway"),
            "reg-gateway",
            T0,
        );
        assert_accepted(&admit(&mut adm, &msg), &msg);
    }
    adm.end_batch();
    adm
}

fn assert_accepted(e: &Entry, msg: &Message) {
    assert!(
        matches!(e.verdict, Verdict::Accepted { .. }),
        "expected accepted, got {:?}",
        e.verdict
    );
    assert_eq!(e.body.as_deref(), Some(msg.body.as_slice()));
    assert_eq!(e.body_sha256, <[u8; 32]>::from(Sha256::digest(&msg.body)));
    assert_eq!(e.body_len, msg.body.len() as u64);
}

/// Asserts a rejection for `reason` whose detail mentions every one of `needles`, and
/// that the entry keeps the body's digest and length but not the body.
fn assert_rejected(e: &Entry, msg: &Message, reason: RejectReason, needles: &[&str]) {
    match &e.verdict {
        Verdict::Rejected {
            reason: got,
            detail,
            ..
        } => {
            assert_eq!(*got, reason, "detail: {detail}");
            for n in needles {
                assert!(detail.contains(n), "detail {detail:?} should mention {n:?}");
            }
        }
        other => panic!("expected rejected {reason}, got {other:?}"),
    }
    assert_eq!(e.body, None, "a rejected entry never keeps the body");
    assert_eq!(e.body_sha256, <[u8; 32]>::from(Sha256::digest(&msg.body)));
    assert_eq!(e.body_len, msg.body.len() as u64);
    assert_eq!(e.subject, msg.subject);
    assert_eq!(e.key_id, msg.key_id);
    assert_eq!(e.time_ns, msg.time_ns);
}

fn rejected_ids(e: &Entry) -> (Option<&str>, Option<&str>) {
    match &e.verdict {
        Verdict::Rejected {
            event_id, tenant, ..
        } => (event_id.as_deref(), tenant.as_deref()),
        other => panic!("expected a rejection, got {other:?}"),
    }
}

/// Re-signs `msg` (after its body was edited) with the derived key of its key id.
fn resign(mut msg: Message) -> Message {
    let key_id = msg.key_id.clone().expect("a key id");
    let sig = derive_key(SEED, &key_id).sign(&msg.body);
    msg.signature = Some(B64.encode(sig.to_bytes()));
    msg
}

fn with_body(msg: &Message, body: Vec<u8>) -> Message {
    resign(Message {
        body,
        ..msg.clone()
    })
}

// ---- accepted ----

#[test]
fn a_correct_event_is_accepted_with_its_exact_body() {
    let mut adm = with_producers();
    let msg = action("acme/gateway", "acme", "evt-1", T0 + 1);
    let e = admit(&mut adm, &msg);
    assert_accepted(&e, &msg);
    assert_eq!(
        e.verdict,
        Verdict::Accepted {
            event_id: "evt-1".into(),
            event_type: "action.proposed".into(),
            tenant: "acme".into(),
        }
    );
    let sig = B64.decode(msg.signature.as_ref().unwrap()).unwrap();
    assert_eq!(e.signature.as_deref(), Some(sig.as_slice()));
}

#[test]
fn accepted_entries_keep_the_exact_body_bytes() {
    // Unusual but valid formatting: key order, whitespace and escapes are kept as sent,
    // since the signature covers these exact bytes.
    let body = "{ \"tenant\" : \"acme\",\n \"type\":\"session.started\", \"v\":1,\
                \"id\":\"evt-\\u0032\", \"session\":\"s-1\",\"actor\":{\"agent\":\"a\"} }\n";
    let base = action("acme/gateway", "acme", "x", T0);
    let msg = with_body(
        &Message {
            subject: "gov.acme.session".into(),
            ..base
        },
        body.as_bytes().to_vec(),
    );
    let e = admit(&mut with_producers(), &msg);
    assert_accepted(&e, &msg);
    assert_eq!(e.body.as_deref(), Some(body.as_bytes()));
    assert!(matches!(&e.verdict, Verdict::Accepted { event_id, .. } if event_id == "evt-2"));
}

#[test]
fn the_operator_key_may_register_keys_for_any_tenant() {
    let mut adm = admission();
    for tenant in ["acme", "globex"] {
        let key = format!("{tenant}/ops");
        let msg = register("operator/root", tenant, &key, "reg-ops", T0);
        assert_accepted(&admit(&mut adm, &msg), &msg);
        // The key it registered now signs the tenant's events.
        let ev = action(&key, tenant, "evt-1", T0 + 1);
        assert_accepted(&admit(&mut adm, &ev), &ev);
    }
}

// ---- one test per reject reason, in the documented order ----

#[test]
fn oversized() {
    let mut adm = Admission::new(&trust(), DecodeLimits { max_body_bytes: 64 }).unwrap();
    let msg = register("acme/admin", "acme", "acme/gateway", "reg-gateway", T0);
    assert!(msg.body.len() > 64);
    let e = admit(&mut adm, &msg);
    assert_rejected(
        &e,
        &msg,
        RejectReason::Oversized,
        &[&msg.body.len().to_string(), "64"],
    );
    // Nothing of an oversized body is read.
    assert_eq!(rejected_ids(&e), (None, None));
    assert_eq!(adm.ring().digest(), admission().ring().digest());
}

#[test]
fn not_utf8() {
    let base = action("acme/gateway", "acme", "evt-1", T0);
    let mut bytes = base.body.clone();
    let at = String::from_utf8(bytes.clone())
        .unwrap()
        .find("svc:payments")
        .unwrap();
    bytes[at] = 0xff; // never valid in UTF-8
    let key = derive_key(SEED, "acme/gateway");
    let line_json = json!({"subject": "gov.acme.action", "time_ns": T0, "key": "acme/gateway",
        "sig": B64.encode(key.sign(&bytes).to_bytes()), "body_b64": B64.encode(&bytes)});
    let line: Line = serde_json::from_value(line_json).unwrap();
    let msg = line.to_message().unwrap();
    assert_eq!(msg.body, bytes);
    let e = admit(&mut with_producers(), &msg);
    assert_rejected(&e, &msg, RejectReason::NotUtf8, &["UTF-8"]);
    assert_eq!(rejected_ids(&e), (None, None));
}

#[test]
fn malformed_json() {
    let base = action("acme/gateway", "acme", "evt-1", T0);
    let truncated = with_body(&base, base.body[..base.body.len() - 1].to_vec());
    let e = admit(&mut with_producers(), &truncated);
    assert_rejected(&e, &truncated, RejectReason::MalformedJson, &["JSON"]);

    // Duplicate keys make a body's meaning ambiguous: malformed too.
    let dup = br#"{"v":1,"id":"evt-1","id":"evt-2","type":"telemetry","tenant":"acme","name":"x"}"#;
    let msg = with_body(
        &Message {
            subject: "gov.acme.telemetry".into(),
            ..base
        },
        dup.to_vec(),
    );
    let e = admit(&mut with_producers(), &msg);
    assert_rejected(&e, &msg, RejectReason::MalformedJson, &["duplicate key"]);
}

#[test]
fn unsupported_version() {
    let base = action("acme/gateway", "acme", "evt-9", T0);
    let mut v: Value = serde_json::from_slice(&base.body).unwrap();
    v["v"] = json!(2);
    let msg = with_body(&base, v.to_string().into_bytes());
    let e = admit(&mut with_producers(), &msg);
    assert_rejected(
        &e,
        &msg,
        RejectReason::UnsupportedVersion,
        &["evt-9", "version 2"],
    );
    assert_eq!(rejected_ids(&e), (Some("evt-9"), Some("acme")));
}

#[test]
fn unknown_type() {
    let msg = signed(
        "acme/gateway",
        "acme",
        "action.teleported",
        "evt-9",
        proposal("p-1"),
        T0,
    );
    let e = admit(&mut with_producers(), &msg);
    assert_rejected(
        &e,
        &msg,
        RejectReason::UnknownType,
        &["evt-9", "action.teleported"],
    );
    assert_eq!(rejected_ids(&e), (Some("evt-9"), Some("acme")));
}

#[test]
fn schema_violation_missing_field() {
    let mut fields = proposal("p-1");
    fields.as_object_mut().unwrap().remove("resource");
    let msg = signed(
        "acme/gateway",
        "acme",
        "action.proposed",
        "evt-9",
        fields,
        T0,
    );
    let e = admit(&mut with_producers(), &msg);
    assert_rejected(
        &e,
        &msg,
        RejectReason::SchemaViolation,
        &["evt-9", "resource"],
    );
}

#[test]
fn schema_violation_subject_of_another_kind() {
    let good = signed(
        "acme/gateway",
        "acme",
        "session.started",
        "evt-9",
        session(),
        T0,
    );
    assert_eq!(good.subject, "gov.acme.session");
    let msg = Message {
        subject: "gov.acme.action".into(),
        ..good
    };
    let e = admit(&mut with_producers(), &msg);
    assert_rejected(
        &e,
        &msg,
        RejectReason::SchemaViolation,
        &["evt-9", "gov.acme.session", "gov.acme.action"],
    );
}

#[test]
fn schema_violation_subject_not_gov_tenant_kind() {
    let good = action("acme/gateway", "acme", "evt-9", T0);
    for subject in [
        "",
        "gov.acme",
        "acme.action",
        "gov.acme.action.extra",
        "nats.acme.action",
        "gov..action",
        "gov.ACME.action",
        "gov.acme/x.action",
    ] {
        let msg = Message {
            subject: subject.into(),
            ..good.clone()
        };
        let e = admit(&mut with_producers(), &msg);
        assert_rejected(&e, &msg, RejectReason::SchemaViolation, &["evt-9"]);
    }
}

#[test]
fn schema_violation_comes_before_tenant_mismatch_in_the_subject() {
    // Both the tenant and the kind of the subject are wrong: the documented order puts
    // schema_violation (the subject's shape) first.
    let good = action("acme/gateway", "acme", "evt-9", T0);
    let msg = Message {
        subject: "gov.globex.session".into(),
        ..good
    };
    let e = admit(&mut with_producers(), &msg);
    assert_rejected(&e, &msg, RejectReason::SchemaViolation, &["evt-9"]);
}

#[test]
fn tenant_mismatch_between_subject_and_body() {
    let good = action("acme/gateway", "acme", "evt-9", T0);
    let msg = Message {
        subject: "gov.globex.action".into(),
        ..good
    };
    let e = admit(&mut with_producers(), &msg);
    assert_rejected(
        &e,
        &msg,
        RejectReason::TenantMismatch,
        &["evt-9", "globex", "acme"],
    );
    assert_eq!(rejected_ids(&e), (Some("evt-9"), Some("acme")));
}

#[test]
fn tenant_mismatch_key_of_another_tenant() {
    let mut adm = with_producers();
    // globex's admin key registering a key for acme.
    let msg = register("globex/admin", "acme", "acme/sneaky", "reg-sneaky", T0 + 1);
    let e = admit(&mut adm, &msg);
    assert_rejected(
        &e,
        &msg,
        RejectReason::TenantMismatch,
        &["reg-sneaky", "globex/admin"],
    );
    // globex's producer key signing an acme action.
    let msg = action("globex/gateway", "acme", "evt-9", T0 + 2);
    let e = admit(&mut adm, &msg);
    assert_rejected(
        &e,
        &msg,
        RejectReason::TenantMismatch,
        &["evt-9", "globex/gateway"],
    );
}

#[test]
fn missing_header_key() {
    let msg = Message {
        key_id: None,
        ..action("acme/gateway", "acme", "evt-9", T0)
    };
    let e = admit(&mut with_producers(), &msg);
    assert_rejected(&e, &msg, RejectReason::MissingHeader, &["evt-9", "Gov-Key"]);
}

#[test]
fn missing_header_signature() {
    let msg = Message {
        signature: None,
        ..action("acme/gateway", "acme", "evt-9", T0)
    };
    let e = admit(&mut with_producers(), &msg);
    assert_rejected(&e, &msg, RejectReason::MissingHeader, &["evt-9", "Gov-Sig"]);
    assert_eq!(e.signature, None);
}

#[test]
fn bad_header_signature_not_base64() {
    let msg = Message {
        signature: Some("this is not base64!".into()),
        ..action("acme/gateway", "acme", "evt-9", T0)
    };
    let e = admit(&mut with_producers(), &msg);
    assert_rejected(&e, &msg, RejectReason::BadHeader, &["evt-9", "Gov-Sig"]);
    assert_eq!(e.signature, None);
}

#[test]
fn bad_header_signature_of_the_wrong_length() {
    let good = action("acme/gateway", "acme", "evt-9", T0);
    let sig = B64.decode(good.signature.as_ref().unwrap()).unwrap();
    for len in [0, 32, 63, 65] {
        let mut s = sig.clone();
        s.resize(len, 0);
        let msg = Message {
            signature: Some(B64.encode(&s)),
            ..good.clone()
        };
        let e = admit(&mut with_producers(), &msg);
        assert_rejected(&e, &msg, RejectReason::BadHeader, &["evt-9", "64-byte"]);
    }
}

#[test]
fn bad_header_key_id_malformed() {
    let good = action("acme/gateway", "acme", "evt-9", T0);
    for key in ["gateway", "", "acme/", "ACME/gateway", "acme/gate way"] {
        let msg = Message {
            key_id: Some(key.into()),
            ..good.clone()
        };
        let e = admit(&mut with_producers(), &msg);
        assert_rejected(&e, &msg, RejectReason::BadHeader, &["evt-9", "Gov-Key"]);
    }
}

#[test]
fn unknown_key() {
    let msg = action("acme/ghost", "acme", "evt-9", T0);
    let e = admit(&mut with_producers(), &msg);
    assert_rejected(&e, &msg, RejectReason::UnknownKey, &["evt-9", "acme/ghost"]);
}

#[test]
fn revoked_key() {
    let mut adm = with_producers();
    let before = action("acme/gateway", "acme", "evt-1", T0 + 1);
    assert_accepted(&admit(&mut adm, &before), &before);
    let revoke = signed(
        "acme/admin",
        "acme",
        "key.revoked",
        "rev-gateway",
        json!({"key_id": "acme/gateway", "reason": "laptop stolen"}),
        T0 + 2,
    );
    assert_accepted(&admit(&mut adm, &revoke), &revoke);
    let msg = action("acme/gateway", "acme", "evt-2", T0 + 3);
    let e = admit(&mut adm, &msg);
    assert_rejected(
        &e,
        &msg,
        RejectReason::RevokedKey,
        &["evt-2", "acme/gateway"],
    );
}

#[test]
fn rotated_key_is_accepted_before_its_retire_time_and_revoked_after() {
    let mut adm = with_producers();
    let retire_at = T0 + 1_000;
    let rotate = signed(
        "acme/admin",
        "acme",
        "key.rotated",
        "rot-gateway",
        json!({"key_id": "acme/gateway", "new_key_id": "acme/gateway-2",
               "new_public_key": public_b64("acme/gateway-2"), "retire_old_at_ns": retire_at}),
        T0 + 10,
    );
    assert_accepted(&admit(&mut adm, &rotate), &rotate);

    let before = action("acme/gateway", "acme", "evt-1", retire_at - 1);
    assert_accepted(&admit(&mut adm, &before), &before);
    for (id, t) in [("evt-2", retire_at), ("evt-3", retire_at + 1)] {
        let after = action("acme/gateway", "acme", id, t);
        let e = admit(&mut adm, &after);
        assert_rejected(&e, &after, RejectReason::RevokedKey, &[id, "acme/gateway"]);
    }
    let successor = action("acme/gateway-2", "acme", "evt-4", retire_at + 1);
    assert_accepted(&admit(&mut adm, &successor), &successor);
}

#[test]
fn invariant_violation_rotating_a_rotated_out_key_again() {
    let mut adm = with_producers();
    let rotate = |id: &str, new_key: &str, retire_at: Option<u64>, t: u64| {
        let mut f = json!({"key_id": "acme/gateway", "new_key_id": new_key,
                           "new_public_key": public_b64(new_key)});
        if let Some(r) = retire_at {
            f["retire_old_at_ns"] = json!(r);
        }
        signed("acme/admin", "acme", "key.rotated", id, f, t)
    };
    // Retired at once, at T0 + 10.
    let first = rotate("rot-1", "acme/gateway-2", None, T0 + 10);
    assert_accepted(&admit(&mut adm, &first), &first);
    // Rotating it again with a later retire time would bring it back to life.
    let again = rotate("rot-2", "acme/gateway-3", Some(u64::MAX), T0 + 20);
    let e = admit(&mut adm, &again);
    assert_rejected(
        &e,
        &again,
        RejectReason::InvariantViolation,
        &["rot-2", "acme/gateway", "already rotated"],
    );
    let msg = action("acme/gateway", "acme", "evt-1", T0 + 30);
    let e = admit(&mut adm, &msg);
    assert_rejected(&e, &msg, RejectReason::RevokedKey, &["acme/gateway"]);
}

#[test]
fn unauthorized_key() {
    let msg = register("acme/gateway", "acme", "acme/extra", "reg-extra", T0 + 1);
    let e = admit(&mut with_producers(), &msg);
    assert_rejected(
        &e,
        &msg,
        RejectReason::UnauthorizedKey,
        &["reg-extra", "acme/gateway"],
    );
}

#[test]
fn bad_signature_body_changed_after_signing() {
    let good = action("acme/gateway", "acme", "evt-9", T0);
    let mut body = good.body.clone();
    let text = String::from_utf8(body.clone()).unwrap();
    let at = text.find("payments.refund").unwrap();
    body[at] = b'P'; // still valid JSON and schema: only the signature can tell
    let msg = Message { body, ..good };
    let e = admit(&mut with_producers(), &msg);
    assert_rejected(
        &e,
        &msg,
        RejectReason::BadSignature,
        &["evt-9", "acme/gateway"],
    );
}

#[test]
fn bad_signature_signed_by_another_key() {
    let good = action("acme/gateway", "acme", "evt-9", T0);
    let other = derive_key(SEED, "acme/someone-else").sign(&good.body);
    let msg = Message {
        signature: Some(B64.encode(other.to_bytes())),
        ..good
    };
    let e = admit(&mut with_producers(), &msg);
    assert_rejected(
        &e,
        &msg,
        RejectReason::BadSignature,
        &["evt-9", "acme/gateway"],
    );
}

#[test]
fn duplicate_within_one_batch() {
    let mut adm = with_producers();
    let first = action("acme/gateway", "acme", "evt-9", T0);
    assert_accepted(&admit(&mut adm, &first), &first);
    let again = action("acme/gateway", "acme", "evt-9", T0 + 5);
    let e = admit(&mut adm, &again);
    assert_rejected(&e, &again, RejectReason::Duplicate, &["evt-9", "acme"]);
    // The same id in another tenant is not a duplicate.
    let other = action("globex/gateway", "globex", "evt-9", T0 + 6);
    assert_accepted(&admit(&mut adm, &other), &other);
}

#[test]
fn duplicate_reported_by_the_ledger_index() {
    let mut adm = with_producers();
    let asked = Cell::new(0);
    let seen = |tenant: &str, id: &str| -> Result<bool, Infallible> {
        asked.set(asked.get() + 1);
        Ok(tenant == "acme" && id == "evt-9")
    };
    let msg = action("acme/gateway", "acme", "evt-9", T0);
    let e = adm.admit(&msg, &seen).unwrap();
    assert_rejected(&e, &msg, RejectReason::Duplicate, &["evt-9", "acme"]);
    assert_eq!(asked.get(), 1);
    let fresh = action("acme/gateway", "acme", "evt-10", T0);
    assert_accepted(&adm.admit(&fresh, &seen).unwrap(), &fresh);
}

#[test]
fn end_batch_hands_duplicate_detection_to_the_ledger_index() {
    let mut adm = with_producers();
    let first = action("acme/gateway", "acme", "evt-9", T0);
    assert_accepted(&admit(&mut adm, &first), &first);
    adm.end_batch();
    // The batch's ids are forgotten; the index (`seen`) now answers for them.
    let again = action("acme/gateway", "acme", "evt-9", T0 + 1);
    let e = adm.admit(&again, &|_: &str, id: &str| {
        Ok::<_, Infallible>(id == "evt-9")
    });
    assert_rejected(&e.unwrap(), &again, RejectReason::Duplicate, &["evt-9"]);
}

#[test]
fn invariant_violation_registering_an_existing_key_id() {
    let mut adm = with_producers();
    let digest = adm.ring().digest();
    for (id, key) in [("reg-again", "acme/gateway"), ("reg-admin", "acme/admin")] {
        let msg = register("acme/admin", "acme", key, id, T0 + 1);
        let e = admit(&mut adm, &msg);
        assert_rejected(&e, &msg, RejectReason::InvariantViolation, &[id, key]);
    }
    assert_eq!(
        adm.ring().digest(),
        digest,
        "a rejected key event changes nothing"
    );
}

#[test]
fn invariant_violation_revoking_an_admin_key() {
    let mut adm = with_producers();
    let digest = adm.ring().digest();
    let msg = signed(
        "acme/admin",
        "acme",
        "key.revoked",
        "rev-admin",
        json!({"key_id": "acme/admin", "reason": "bye"}),
        T0 + 1,
    );
    let e = admit(&mut adm, &msg);
    assert_rejected(
        &e,
        &msg,
        RejectReason::InvariantViolation,
        &["rev-admin", "acme/admin"],
    );
    assert_eq!(adm.ring().digest(), digest);
    // The admin key still works.
    let reg = register("acme/admin", "acme", "acme/runtime", "reg-runtime", T0 + 2);
    assert_accepted(&admit(&mut adm, &reg), &reg);
}

#[test]
fn invariant_violation_registering_a_key_of_another_tenant() {
    let mut adm = with_producers();
    for (signer, id) in [("acme/admin", "reg-1"), ("operator/root", "reg-2")] {
        let msg = register(signer, "acme", "globex/sneaky", id, T0 + 1);
        let e = admit(&mut adm, &msg);
        assert_rejected(
            &e,
            &msg,
            RejectReason::InvariantViolation,
            &[id, "globex/sneaky"],
        );
    }
    let msg = action("globex/sneaky", "globex", "evt-1", T0 + 2);
    assert_rejected(
        &admit(&mut adm, &msg),
        &msg,
        RejectReason::UnknownKey,
        &["globex/sneaky"],
    );
}

// ---- replay, errors, the generator ----

#[test]
fn replaying_accepted_entries_rebuilds_the_same_key_ring() {
    let mut adm = admission();
    let msgs = [
        register("acme/admin", "acme", "acme/gateway", "k-1", T0),
        register("acme/admin", "acme", "acme/runtime", "k-2", T0 + 1),
        register("operator/root", "globex", "globex/gateway", "k-1", T0 + 2),
        action("acme/gateway", "acme", "evt-1", T0 + 3),
        // Rejected: a producer key may not register keys.
        register("acme/gateway", "acme", "acme/evil", "k-3", T0 + 4),
        signed(
            "acme/admin",
            "acme",
            "key.rotated",
            "k-4",
            json!({"key_id": "acme/gateway", "new_key_id": "acme/gateway-2",
                   "new_public_key": public_b64("acme/gateway-2")}),
            T0 + 5,
        ),
        signed(
            "acme/admin",
            "acme",
            "key.revoked",
            "k-5",
            json!({"key_id": "acme/runtime", "reason": "decommissioned"}),
            T0 + 6,
        ),
        // Rejected: unknown key.
        action("acme/nope", "acme", "evt-2", T0 + 7),
    ];
    let entries: Vec<Entry> = msgs.iter().map(|m| admit(&mut adm, m)).collect();
    let accepted = entries
        .iter()
        .filter(|e| matches!(e.verdict, Verdict::Accepted { .. }))
        .count();
    assert_eq!(accepted, 6);
    assert_ne!(adm.ring().digest(), admission().ring().digest());

    let mut rebuilt = admission();
    for e in &entries {
        rebuilt.replay(e).unwrap();
    }
    assert_eq!(rebuilt.ring().digest(), adm.ring().digest());
    assert_eq!(rebuilt.ring(), adm.ring());
    assert_eq!(rebuilt.gates(), adm.gates());
    assert_eq!(rebuilt.flows(), adm.flows());
    assert_eq!(rebuilt.budgets(), adm.budgets());
    assert_eq!(rebuilt.state_digest(), adm.state_digest());
    assert_ne!(adm.state_digest(), admission().state_digest());
    assert!(rebuilt.flows().proposal("acme", "p-evt-1").is_some());
}

// ---- the projections' invariants, enforced at admission ----

fn executed(key_id: &str, tenant: &str, id: &str, proposal: &str, t: u64) -> Message {
    signed(
        key_id,
        tenant,
        "action.executed",
        id,
        json!({"proposal": proposal, "session": "s-000001",
               "actor": {"user": "user-1", "agent": "agent-1"}, "outcome": "success"}),
        t,
    )
}

fn killswitch(
    key_id: &str,
    tenant: &str,
    kind: &str,
    id: &str,
    scope: &str,
    target: &str,
) -> Message {
    signed(
        key_id,
        tenant,
        kind,
        id,
        json!({"scope": scope, "target": target, "reason": "runaway",
               "actor": {"service": "guardian"}}),
        T0 + 50,
    )
}

#[test]
fn invariant_violation_an_action_outside_an_active_session() {
    let mut adm = with_producers();
    let mut msg = signed(
        "acme/gateway",
        "acme",
        "action.proposed",
        "evt-1",
        json!({"proposal": "p-1", "session": "s-unknown",
               "actor": {"user": "user-1", "agent": "agent-1"},
               "action": "payments.refund", "resource": "svc:payments",
               "args_digest": "ab".repeat(32), "risk_tier": "high"}),
        T0 + 1,
    );
    let e = admit(&mut adm, &msg);
    assert_rejected(
        &e,
        &msg,
        RejectReason::InvariantViolation,
        &["evt-1", "s-unknown", "never started"],
    );
    msg = signed(
        "acme/gateway",
        "acme",
        "session.ended",
        "end-1",
        session(),
        T0 + 2,
    );
    assert_accepted(&admit(&mut adm, &msg), &msg);
    let msg = action("acme/gateway", "acme", "evt-2", T0 + 3);
    let e = admit(&mut adm, &msg);
    assert_rejected(
        &e,
        &msg,
        RejectReason::InvariantViolation,
        &["evt-2", "ended"],
    );
}

#[test]
fn invariant_violation_an_execution_without_allow_or_approval() {
    let mut adm = with_producers();
    let msg = action("acme/gateway", "acme", "evt-1", T0 + 1);
    assert_accepted(&admit(&mut adm, &msg), &msg);
    let msg = executed("acme/gateway", "acme", "evt-2", "p-evt-1", T0 + 2);
    let e = admit(&mut adm, &msg);
    assert_rejected(
        &e,
        &msg,
        RejectReason::InvariantViolation,
        &["p-evt-1", "no allow decision"],
    );
    // A decision for a proposal of another tenant is one for an unknown proposal.
    let msg = signed(
        "globex/gateway",
        "globex",
        "policy.decided",
        "evt-3",
        json!({"proposal": "p-evt-1", "session": "s-000001",
               "actor": {"user": "user-1", "agent": "agent-1"}, "decision": "allow",
               "policy_id": "p", "policy_version": "1", "rule_ids": [], "reason": "r"}),
        T0 + 3,
    );
    let e = admit(&mut adm, &msg);
    assert_rejected(
        &e,
        &msg,
        RejectReason::InvariantViolation,
        &["p-evt-1", "globex never proposed"],
    );
}

#[test]
fn invariant_violation_an_action_under_an_engaged_kill_switch() {
    let mut adm = with_producers();
    let msg = killswitch(
        "acme/gateway",
        "acme",
        "killswitch.engaged",
        "k-1",
        "agent",
        "agent-1",
    );
    assert_accepted(&admit(&mut adm, &msg), &msg);
    let msg = action("acme/gateway", "acme", "evt-1", T0 + 60);
    let e = admit(&mut adm, &msg);
    assert_rejected(
        &e,
        &msg,
        RejectReason::InvariantViolation,
        &["evt-1", "agent kill switch on agent-1"],
    );
    // globex's agent-1 is another agent.
    let msg = action("globex/gateway", "globex", "evt-1", T0 + 60);
    assert_accepted(&admit(&mut adm, &msg), &msg);
}

#[test]
fn a_system_kill_switch_needs_an_operator_key() {
    let mut adm = with_producers();
    let msg = killswitch(
        "acme/admin",
        "acme",
        "killswitch.engaged",
        "k-1",
        "system",
        "all",
    );
    let e = admit(&mut adm, &msg);
    assert_rejected(
        &e,
        &msg,
        RejectReason::UnauthorizedKey,
        &["k-1", "operator key", "acme/admin"],
    );
    let msg = killswitch(
        "operator/root",
        "acme",
        "killswitch.engaged",
        "k-2",
        "system",
        "all",
    );
    assert_accepted(&admit(&mut adm, &msg), &msg);
    let msg = action("globex/gateway", "globex", "evt-1", T0 + 60);
    let e = admit(&mut adm, &msg);
    assert_rejected(
        &e,
        &msg,
        RejectReason::InvariantViolation,
        &["system kill switch on all"],
    );
}

#[test]
fn an_error_from_seen_propagates_and_changes_nothing() {
    let mut adm = with_producers();
    let digest = adm.ring().digest();
    let failing = |_: &str, _: &str| -> Result<bool, String> { Err("index unreadable".into()) };
    let msg = register("acme/admin", "acme", "acme/runtime", "reg-runtime", T0 + 1);
    assert_eq!(
        adm.admit(&msg, &failing),
        Err("index unreadable".to_string())
    );
    assert_eq!(adm.ring().digest(), digest);
    // Nor is the id remembered for the batch: the message can be admitted again.
    assert_accepted(&admit(&mut adm, &msg), &msg);
}

#[test]
fn a_generated_stream_is_accepted_in_full() {
    // The pipeline's checks below are written in rounds: whatever a round's size,
    // they fold ranges shorter than one, of whole ones and of many.
    const R: usize = PIPELINE_ROUND;
    // Nearly five rounds, the last one partial.
    let events = 5 * R - R / 8;
    // Just under two rounds.
    let two = 2 * R - R / 32;
    let gen = Generator::new(GenOptions {
        events: events as u64,
        seed: 42,
        tenants: 3,
        ..GenOptions::default()
    });
    let mut adm = Admission::new(&gen.trust(), DecodeLimits::default()).unwrap();
    let mut index: BTreeSet<(String, String)> = BTreeSet::new();
    let mut batch = Vec::new();
    let mut kinds = BTreeSet::new();
    let mut tenants = BTreeSet::new();
    let mut entries = Vec::new();
    let mut n = 0;
    for line in gen {
        let msg = line.to_message().unwrap();
        let seen = |t: &str, id: &str| -> Result<bool, Infallible> {
            Ok(index.contains(&(t.to_string(), id.to_string())))
        };
        let e = adm.admit(&msg, &seen).unwrap();
        entries.push(e.clone());
        match &e.verdict {
            Verdict::Accepted {
                event_id,
                event_type,
                tenant,
            } => {
                kinds.insert(event_type.clone());
                tenants.insert(tenant.clone());
                batch.push((tenant.clone(), event_id.clone()));
            }
            Verdict::Rejected { detail, .. } => panic!("line {n} rejected: {detail}"),
        }
        n += 1;
        if n % 100 == 0 {
            index.extend(batch.drain(..));
            adm.end_batch();
        }
    }
    assert_eq!(n, events);
    assert_eq!(tenants.len(), 3);
    // Replaying the entries, one by one or through the pipeline from stored
    // leaves (below), rebuilds exactly the state admission built.
    let trust = Generator::new(GenOptions {
        events: 0,
        seed: 42,
        tenants: 3,
        ..GenOptions::default()
    })
    .trust();
    let mut one = Admission::new(&trust, DecodeLimits::default()).unwrap();
    for e in &entries {
        one.replay(e).unwrap();
    }
    assert_eq!(one.state_digest(), adm.state_digest());
    // Stored leaves, as replays read them.
    let leaves: Vec<(u64, Vec<u8>)> = entries
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let mut e = e.clone();
            e.seq = govledger_schemas::Seq(i as u64);
            (i as u64, govledger_schemas::encode_entry(&e))
        })
        .collect();
    // The pipeline (read | decode on workers | fold in order): the same state for
    // ranges shorter than a round, of whole rounds and with a partial last one,
    // with one and with two workers; progress ends at the count folded.
    let pipelined = |n: usize, threads: usize| {
        let mut p = Admission::new(&trust, DecodeLimits::default()).unwrap();
        p.set_verify_threads(threads);
        let mut last = 0;
        p.replay_pipelined(
            0..n as u64,
            &|| in_memory(&leaves, None),
            |seq, e| format!("{seq}: {e}"),
            &mut |k| last = k,
        )
        .unwrap();
        assert_eq!(p.entries_folded(), n as u64);
        assert_eq!(last, n as u64);
        p
    };
    for threads in [1, 2] {
        // Five rounds: each worker reads and decodes several.
        assert_eq!(
            pipelined(events, threads).state_digest(),
            adm.state_digest()
        );
        for n in [0, 1, R - 1, R, R + 1, two] {
            let mut want = Admission::new(&trust, DecodeLimits::default()).unwrap();
            for e in &entries[..n] {
                want.replay(e).unwrap();
            }
            assert_eq!(
                pipelined(n, threads).state_digest(),
                want.state_digest(),
                "{n} leaves, {threads} workers"
            );
        }
    }
    // A leaf that does not decode, in a later round or in a short range: its
    // error, with every entry before it folded and none after.
    for (n, at) in [(two, R + R / 2), (10, 4)] {
        let mut broken = leaves[..n].to_vec();
        broken[at].1[0] ^= 0xff;
        let mut p = Admission::new(&trust, DecodeLimits::default()).unwrap();
        p.set_verify_threads(2);
        let err = p
            .replay_pipelined(
                0..n as u64,
                &|| in_memory(&broken, None),
                |seq, _| format!("leaf {seq}"),
                &mut |_| {},
            )
            .unwrap_err();
        assert_eq!(err, format!("leaf {at}"));
        assert_eq!(p.entries_folded(), at as u64);
    }
    // A body changed behind its recorded hash (a budget increment's cost, one
    // digit, so that it still reads as an event): refused where bodies are
    // hashed, folded as it stands before `covered` (whose caller checks a
    // signed whole-state digest after it, which the changed cost fails).
    let at = (R..two)
        .find(|&i| contains(&leaves[i].1, b"\"type\":\"budget.incremented\""))
        .expect("a budget increment in the second round");
    let mut changed = leaves[..two].to_vec();
    change_cost(&mut changed[at].1);
    let clean = pipelined(two, 2).state_digest();
    for covered in [0, at as u64, at as u64 + 1, two as u64] {
        let mut p = Admission::new(&trust, DecodeLimits::default()).unwrap();
        p.set_verify_threads(2);
        let folded = p.replay_pipelined_covered(
            0..two as u64,
            covered,
            &|| in_memory(&changed, None),
            |seq, e| format!("leaf {seq}: {e}"),
            &mut |_| {},
            &[],
            &mut |_| Ok(()),
        );
        if covered > at as u64 {
            folded.unwrap();
            assert_eq!(p.entries_folded(), two as u64);
            assert_ne!(p.state_digest(), clean, "the changed cost is in the state");
        } else {
            let want = format!("leaf {at}: {}", govledger_schemas::CodecError::BodyMismatch);
            assert_eq!(folded.unwrap_err(), want, "covered up to {covered}");
            assert_eq!(p.entries_folded(), at as u64);
        }
    }
    // Stops: `at_stop` sees the state right after each stop's entries, on the
    // folding thread, in a short range and across rounds; its digest there is the
    // one of a replay that stopped there. An error from it ends the fold at that
    // stop.
    let digests_at = |stops: &[u64], upto: usize| {
        let mut digests = Vec::new();
        // A stop where the fold starts is not one it reaches.
        for &s in stops.iter().filter(|&&s| s > 0) {
            let mut want = Admission::new(&trust, DecodeLimits::default()).unwrap();
            for e in &entries[..s as usize] {
                want.replay(e).unwrap();
            }
            digests.push((s, want.state_digest()));
        }
        let mut p = Admission::new(&trust, DecodeLimits::default()).unwrap();
        p.set_verify_threads(2);
        let mut seen = Vec::new();
        p.replay_pipelined_stopping(
            0..upto as u64,
            &|| in_memory(&leaves, None),
            |seq, e| format!("{seq}: {e}"),
            &mut |_| {},
            stops,
            &mut |a: &mut Admission| {
                seen.push((a.entries_folded(), a.state_digest()));
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(seen, digests, "stops {stops:?} in {upto} leaves");
    };
    digests_at(&[1, 5, 9], 10);
    let (r, t) = (R as u64, two as u64);
    digests_at(&[0, r - r / 32, r, r + 1, t - 1, t], two);
    for upto in [10, two] {
        let mut p = Admission::new(&trust, DecodeLimits::default()).unwrap();
        p.set_verify_threads(2);
        let err = p
            .replay_pipelined_stopping(
                0..upto as u64,
                &|| in_memory(&leaves, None),
                |seq, _| format!("leaf {seq}"),
                &mut |_| {},
                &[3, 6],
                &mut |a: &mut Admission| Err(format!("stop at {}", a.entries_folded())),
            )
            .unwrap_err();
        assert_eq!(err, "stop at 3");
        assert_eq!(p.entries_folded(), 3);
    }
    // A read error from the source, likewise, after the leaves before it.
    for at in [R + R / 4, 7] {
        let mut p = Admission::new(&trust, DecodeLimits::default()).unwrap();
        p.set_verify_threads(2);
        let err = p
            .replay_pipelined(
                0..two as u64,
                &|| in_memory(&leaves, Some(at as u64)),
                |seq, _| format!("leaf {seq}"),
                &mut |_| {},
            )
            .unwrap_err();
        assert_eq!(err, format!("read {at}"));
        assert_eq!(p.entries_folded(), at as u64);
    }
    // A reader that skips a leaf, or ends a round early without an error: the
    // pipeline names the leaf it did not give, after the leaves before it.
    for (n, gap) in [(10, 4), (two as u64, (R + R / 4) as u64)] {
        for (how, threads) in [
            (Misread::Skip(gap), 1),
            (Misread::Skip(gap), 2),
            (Misread::End(gap), 2),
        ] {
            let mut p = Admission::new(&trust, DecodeLimits::default()).unwrap();
            p.set_verify_threads(threads);
            let err = p
                .replay_pipelined(
                    0..n,
                    &|| misreading(&leaves, how),
                    |seq, _| format!("leaf {seq}"),
                    &mut |_| {},
                )
                .unwrap_err();
            assert_eq!(err, format!("missing {gap}"), "{how:?}, {threads} workers");
            assert_eq!(p.entries_folded(), gap);
        }
    }
    // A bad leaf early in a long range, while the workers are up to 8 rounds
    // ahead and blocked on full queues: the fold returns its error (it does not
    // wait for them), and a reader that panics makes the fold panic, not hang.
    let long: Vec<(u64, Vec<u8>)> = (0..40 * R as u64)
        .map(|i| (i, leaves[i as usize % two].1.clone()))
        .collect();
    let mut broken = long.clone();
    let bad = R + R / 2;
    broken[bad].1[0] ^= 0xff;
    let mut p = Admission::new(&trust, DecodeLimits::default()).unwrap();
    p.set_verify_threads(2);
    let err = p
        .replay_pipelined(
            0..40 * R as u64,
            &|| in_memory(&broken, None),
            |seq, _| format!("leaf {seq}"),
            &mut |_| {},
        )
        .unwrap_err();
    assert_eq!(
        (err, p.entries_folded()),
        (format!("leaf {bad}"), bad as u64)
    );
    let mut p = Admission::new(&trust, DecodeLimits::default()).unwrap();
    p.set_verify_threads(2);
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        p.replay_pipelined(
            0..40 * R as u64,
            &|| misreading(&long, Misread::Panic(5 * R as u64)),
            |seq, _| format!("leaf {seq}"),
            &mut |_| {},
        )
    }));
    assert!(panicked.is_err(), "a panicking reader's fold returned");
    for kind in [
        "key.registered",
        "budget.configured",
        "action.proposed",
        "session.ended",
    ] {
        assert!(kinds.contains(kind), "{kind} never generated: {kinds:?}");
    }
}

#[test]
fn generators_with_the_same_options_yield_identical_lines() {
    let opts = GenOptions {
        events: 500,
        seed: 9,
        tenants: 3,
        ..GenOptions::default()
    };
    let a: Vec<Line> = Generator::new(opts.clone()).collect();
    let b: Vec<Line> = Generator::new(opts.clone()).collect();
    assert_eq!(a.len(), 500);
    assert_eq!(a, b);
    assert_eq!(
        Generator::new(opts.clone()).trust(),
        Generator::new(opts.clone()).trust()
    );
    let other: Vec<Line> = Generator::new(GenOptions { seed: 10, ..opts }).collect();
    assert_ne!(a, other, "another seed gives another stream");
}

// ---- never panics ----

fn any_subject() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("gov.acme.action".to_string()),
        "gov\\.[a-z]{0,6}\\.[a-z]{0,10}",
        ".{0,40}",
    ]
}

fn any_key() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        Just(None),
        Just(Some("acme/gateway".to_string())),
        Just(Some("operator/root".to_string())),
        ".{0,24}".prop_map(Some),
    ]
}

fn any_sig() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        Just(None),
        proptest::collection::vec(any::<u8>(), 64).prop_map(|s| Some(B64.encode(s))),
        ".{0,100}".prop_map(Some),
    ]
}

fn any_body() -> impl Strategy<Value = Vec<u8>> {
    let valid = action("acme/gateway", "acme", "evt-1", T0).body;
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..512),
        // A valid body with one byte replaced, or cut short.
        (0..valid.len(), any::<u8>()).prop_map({
            let valid = valid.clone();
            move |(i, b)| {
                let mut v = valid.clone();
                v[i] = b;
                v
            }
        }),
        (0..valid.len()).prop_map(move |i| valid[..i].to_vec()),
    ]
}

proptest! {
    #[test]
    fn admitting_arbitrary_messages_never_panics(
        subject in any_subject(),
        body in any_body(),
        key_id in any_key(),
        signature in any_sig(),
        time_ns in any::<u64>(),
    ) {
        let mut adm = with_producers();
        let msg = Message { subject, body, key_id, signature, stream_seq: 3, time_ns };
        let e = admit(&mut adm, &msg);
        prop_assert_eq!(e.body_len, msg.body.len() as u64);
        prop_assert_eq!(e.body_sha256, <[u8; 32]>::from(Sha256::digest(&msg.body)));
        prop_assert_eq!(e.stream_seq, 3);
        match &e.verdict {
            Verdict::Accepted { .. } => prop_assert_eq!(e.body.as_deref(), Some(msg.body.as_slice())),
            Verdict::Rejected { .. } => prop_assert_eq!(e.body, None),
        }
    }
}

// ---- batch admission (parallel signature checks) ----

/// Messages whose verdicts depend on key changes made earlier in the same batch:
/// a key registered, then used; a key rotated to a new key id; a key re-registered
/// under a reused id after a revoke is refused; forged and re-signed bodies.
fn palette() -> Vec<Message> {
    let mut forged = action("acme/gateway", "acme", "evt-forged", T0 + 5);
    forged.body = String::from_utf8(forged.body)
        .expect("utf-8")
        .replace("payments.refund", "payments.payout")
        .into_bytes();
    vec![
        action("acme/gateway", "acme", "evt-a", T0 + 1),
        action("acme/late", "acme", "evt-b", T0 + 2),
        register("acme/admin", "acme", "acme/late", "reg-late", T0 + 3),
        action("acme/late", "acme", "evt-c", T0 + 4),
        forged,
        signed(
            "acme/admin",
            "acme",
            "key.revoked",
            "rev-gateway",
            json!({"key_id": "acme/gateway", "reason": "rotated out"}),
            T0 + 6,
        ),
        action("acme/gateway", "acme", "evt-d", T0 + 7),
        signed(
            "acme/admin",
            "acme",
            "key.rotated",
            "rot-late",
            json!({"key_id": "acme/late", "new_key_id": "acme/late-2",
                   "new_public_key": public_b64("acme/late-2")}),
            T0 + 8,
        ),
        action("acme/late-2", "acme", "evt-e", T0 + 9),
        action("acme/late", "acme", "evt-f", T0 + 10),
        action("globex/gateway", "globex", "evt-g", T0 + 11),
        action("globex/gateway", "acme", "evt-h", T0 + 12),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn batch_admission_gives_the_verdicts_of_admitting_one_by_one(
        picks in proptest::collection::vec(0usize..12, 0..200),
        threads in 1usize..4,
    ) {
        let palette = palette();
        let msgs: Vec<Message> = picks.iter().map(|&i| palette[i].clone()).collect();
        let mut one = with_producers();
        let expected: Vec<Entry> = msgs.iter().map(|m| admit(&mut one, m)).collect();
        let mut many = with_producers();
        many.set_verify_threads(threads);
        let refs: Vec<&Message> = msgs.iter().collect();
        let got = match many.admit_batch(&refs, &never_seen) {
            Ok(v) => v,
            Err(never) => match never {},
        };
        prop_assert_eq!(got, expected);
        prop_assert_eq!(many.ring(), one.ring());
    }
}

// ---- kill_on_exceed ----

fn budget(id: &str, kill: bool, t: u64) -> Message {
    signed(
        "acme/gateway",
        "acme",
        "budget.configured",
        &format!("cfg-{id}"),
        json!({"budget_id": id, "scope": {"org": "acme", "agent": "agent-1"},
               "limit_cost_micros": 1_000, "window": "total", "warn_thresholds_pct": [],
               "kill_on_exceed": kill}),
        t,
    )
}

fn spend(id: &str, cost: u64, t: u64) -> Message {
    signed(
        "acme/gateway",
        "acme",
        "budget.incremented",
        id,
        json!({"scope": {"org": "acme", "agent": "agent-1"}, "session": "s-000001",
               "tokens": 1, "cost_micros": cost, "model": "m"}),
        t,
    )
}

/// An increment past a `kill_on_exceed` budget is refused, engages the agent's kill
/// switch (so its next proposal is refused), keeps its verified body, and a replay
/// of the entries derives the same engagement and state digest.
#[test]
fn an_increment_past_a_kill_on_exceed_budget_engages_the_agents_kill_switch() {
    let mut adm = with_producers();
    let msgs = [
        budget("b-kill", true, T0 + 1),
        spend("spend-1", 900, T0 + 2),
        spend("spend-2", 200, T0 + 3),
        action("acme/gateway", "acme", "after", T0 + 4),
    ];
    let entries: Vec<Entry> = msgs.iter().map(|m| admit(&mut adm, m)).collect();
    assert_accepted(&entries[0], &msgs[0]);
    assert_accepted(&entries[1], &msgs[1]);
    match &entries[2].verdict {
        Verdict::Rejected { reason, detail, .. } => {
            assert_eq!(*reason, RejectReason::BudgetExceeded);
            assert!(
                detail.contains("budget b-kill would be exceeded")
                    && detail.contains("kill_on_exceed engaged the agent kill switch on agent-1"),
                "{detail}"
            );
        }
        v => panic!("expected budget_exceeded, got {v:?}"),
    }
    assert_eq!(entries[2].body.as_deref(), Some(msgs[2].body.as_slice()));
    let kills: Vec<_> = adm
        .gates()
        .kills()
        .map(|(t, s, target, k)| {
            (
                t.to_string(),
                s,
                target.to_string(),
                k.reason.clone(),
                k.since_ns,
            )
        })
        .collect();
    assert_eq!(
        kills,
        vec![(
            "acme".to_string(),
            govledger_schemas::KillScope::Agent,
            "agent-1".to_string(),
            "budget b-kill exceeded by event spend-2".to_string(),
            T0 + 3
        )]
    );
    assert_rejected(
        &entries[3],
        &msgs[3],
        RejectReason::InvariantViolation,
        &[
            "agent kill switch on agent-1",
            "budget b-kill exceeded by event spend-2",
        ],
    );

    let mut rebuilt = with_producers();
    for e in &entries {
        rebuilt.replay(e).unwrap();
    }
    assert_eq!(rebuilt.gates(), adm.gates());
    assert_eq!(rebuilt.state_digest(), adm.state_digest());
}

/// Without `kill_on_exceed` the refusal changes nothing and keeps no body.
#[test]
fn an_increment_past_a_plain_budget_is_refused_and_nothing_else() {
    let mut adm = with_producers();
    let msgs = [
        budget("b-plain", false, T0 + 1),
        spend("spend-1", 1_001, T0 + 2),
        action("acme/gateway", "acme", "after", T0 + 3),
    ];
    let entries: Vec<Entry> = msgs.iter().map(|m| admit(&mut adm, m)).collect();
    assert_rejected(
        &entries[1],
        &msgs[1],
        RejectReason::BudgetExceeded,
        &["budget b-plain would be exceeded"],
    );
    match &entries[1].verdict {
        Verdict::Rejected { detail, .. } => assert!(!detail.contains("kill_on_exceed"), "{detail}"),
        v => panic!("expected a rejection, got {v:?}"),
    }
    assert_eq!(adm.gates().kills().count(), 0);
    assert_accepted(&entries[2], &msgs[2]);
}

/// Stored leaves (seq `i` at index `i`) as a pipelined fold reads them, the read of
/// `fail_at` failing with `read {seq}`.
fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Changes the last digit of the first `cost_micros` in stored leaf bytes, its
/// length and recorded hash left as they were.
fn change_cost(leaf: &mut [u8]) {
    let key = b"\"cost_micros\":";
    let at = leaf
        .windows(key.len())
        .position(|w| w == key)
        .expect("a cost")
        + key.len();
    let end = at + leaf[at..].iter().take_while(|b| b.is_ascii_digit()).count();
    let d = &mut leaf[end - 1];
    *d = if *d == b'9' { b'8' } else { *d + 1 };
}

fn in_memory(leaves: &[(u64, Vec<u8>)], fail_at: Option<u64>) -> Box<dyn LeafReader<String> + '_> {
    misreading(leaves, fail_at.map_or(Misread::None, Misread::Fail))
}

/// How [`misreading`] fails or breaks a reader's contract, at a seq.
#[derive(Clone, Copy, Debug)]
enum Misread {
    /// Reads every leaf.
    None,
    /// Fails to read this leaf, with `read {seq}`.
    Fail(u64),
    /// Goes on with the next leaf as if this one were not there.
    Skip(u64),
    /// Says `Ok` without giving this leaf or any after it in its round.
    End(u64),
    /// Panics.
    Panic(u64),
}

/// Stored leaves (seq `i` at index `i`) as a pipelined fold reads them, read as
/// `how` says; a leaf past the end is `no leaf {seq}`.
fn misreading(leaves: &[(u64, Vec<u8>)], how: Misread) -> Box<dyn LeafReader<String> + '_> {
    struct Misreading<'a>(&'a [(u64, Vec<u8>)], Misread);
    impl LeafReader<String> for Misreading<'_> {
        fn read(
            &mut self,
            range: std::ops::Range<u64>,
            visit: &mut dyn FnMut(u64, &[u8]) -> bool,
        ) -> Result<(), String> {
            for seq in range {
                match self.1 {
                    Misread::Fail(at) if at == seq => return Err(format!("read {seq}")),
                    Misread::Skip(at) if at == seq => continue,
                    Misread::End(at) if at == seq => return Ok(()),
                    Misread::Panic(at) if at == seq => panic!("reader broke at {seq}"),
                    _ => {}
                }
                let (_, leaf) = self.0.get(seq as usize).ok_or(format!("no leaf {seq}"))?;
                if !visit(seq, leaf) {
                    break;
                }
            }
            Ok(())
        }

        fn missing(&self, seq: u64) -> String {
            format!("missing {seq}")
        }
    }
    Box::new(Misreading(leaves, how))
}
