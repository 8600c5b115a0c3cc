//! Strict decoding: every example decodes and round-trips; every DecodeError variant is
//! produced by a real body, with the exact field named.

mod common;

use govledger_schemas::{
    decode_body, decode_body_into, peek_ids, DecodeError, DecodeLimits, Event, EventType,
    RejectReason,
};
use serde_json::{json, Value};

fn decode(v: &Value) -> Result<govledger_schemas::Envelope, DecodeError> {
    decode_body(&serde_json::to_vec(v).unwrap(), &DecodeLimits::default())
}

fn decode_str(s: &str) -> Result<govledger_schemas::Envelope, DecodeError> {
    decode_body(s.as_bytes(), &DecodeLimits::default())
}

/// Asserts a schema violation on exactly `field`, with `message` containing `needle`.
#[track_caller]
fn assert_schema(res: Result<govledger_schemas::Envelope, DecodeError>, field: &str, needle: &str) {
    match res {
        Err(DecodeError::Schema { field: f, message }) => {
            assert_eq!(f, field, "message: {message}");
            assert!(
                message.contains(needle),
                "message {message:?} does not contain {needle:?}"
            );
        }
        other => panic!("expected schema violation in `{field}`, got {other:?}"),
    }
}

fn example(kind: EventType) -> Value {
    serde_json::from_slice(&common::example_body(kind)).unwrap()
}

fn set(mut v: Value, key: &str, val: Value) -> Value {
    v.as_object_mut().unwrap().insert(key.into(), val);
    v
}

fn remove(mut v: Value, key: &str) -> Value {
    v.as_object_mut().unwrap().remove(key);
    v
}

#[test]
fn every_example_decodes_and_round_trips() {
    let examples = common::examples();
    let kinds: Vec<EventType> = examples.iter().map(|(k, _)| *k).collect();
    assert_eq!(kinds, EventType::ALL, "one example per type, in order");
    for (kind, v) in examples {
        let env = decode(&v).unwrap_or_else(|e| panic!("{kind}: {e}"));
        assert_eq!(env.kind(), kind);
        assert_eq!(env.v, 1);
        assert_eq!(env.tenant.as_str(), "acme");
        // Serializing gives the same JSON value back, and decodes to the same envelope.
        let body = env.to_body();
        let reparsed: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(reparsed, v, "{kind}");
        assert_eq!(decode_body(&body, &DecodeLimits::default()).unwrap(), env);
    }
}

#[test]
fn decoding_into_a_place_gives_what_decode_body_gives() {
    let limits = DecodeLimits::default();
    let valid = common::examples()
        .into_iter()
        .map(|(_, v)| serde_json::to_vec(&v).unwrap());
    // Read in one pass, read the long way (an escape), and refused: at the size
    // check, as JSON, and by the schema.
    let escaped = br#"{"v":1,"id":"e\u0031","type":"session.started","tenant":"acme","session":"s1","actor":{"agent":"a"}}"#;
    let refused: [&[u8]; 3] = [&[b' '; 70_000], b"{", br#"{"v":1}"#];
    let bodies = valid
        .chain([escaped.to_vec()])
        .chain(refused.map(<[u8]>::to_vec));
    let mut place = Some(decode_str(r#"{"v":1,"id":"x","type":"session.ended","tenant":"t","session":"s","actor":{"user":"u"}}"#).unwrap());
    for body in bodies {
        let into = decode_body_into(&body, &limits, &mut place);
        match decode_body(&body, &limits) {
            Ok(env) => {
                assert_eq!(into, Ok(()));
                assert_eq!(place.as_ref(), Some(&env));
            }
            Err(e) => {
                assert_eq!(into, Err(e));
                // Nothing left of what the place held before.
                assert_eq!(place, None);
            }
        }
    }
}

#[test]
fn typed_fields_are_decoded() {
    let env = decode(&example(EventType::ActionExecuted)).unwrap();
    let Event::ActionExecuted(x) = env.event else {
        panic!("wrong variant")
    };
    assert_eq!(x.cost_micros, Some(1250));
    assert_eq!(x.tokens, Some(812));
    assert_eq!(x.ticket.as_ref().map(|t| t.as_str()), Some("t-1"));
    assert_eq!(env.id.as_str(), "e-10");

    let env = decode(&example(EventType::BudgetConfigured)).unwrap();
    let Event::BudgetConfigured(b) = env.event else {
        panic!("wrong variant")
    };
    assert_eq!(b.warn_thresholds_pct, vec![50, 80, 100]);
    assert!(b.kill_on_exceed);
}

#[test]
fn optional_fields_may_be_absent_or_null_and_defaults_apply() {
    let v = json!({"v":1,"id":"x","type":"action.executed","tenant":"acme","proposal":"p",
                   "session":"s","actor":{"agent":"a"},"outcome":"error","cost_micros":null});
    let Event::ActionExecuted(x) = decode(&v).unwrap().event else {
        panic!()
    };
    assert_eq!((x.cost_micros, x.tokens, x.ticket), (None, None, None));

    let v = remove(example(EventType::BudgetConfigured), "kill_on_exceed");
    let Event::BudgetConfigured(b) = decode(&v).unwrap().event else {
        panic!()
    };
    assert!(!b.kill_on_exceed);

    let v = remove(example(EventType::Telemetry), "data");
    let Event::Telemetry(t) = decode(&v).unwrap().event else {
        panic!()
    };
    assert!(t.data.is_empty());
}

#[test]
fn oversized() {
    let body = common::example_body(EventType::KeyRevoked);
    let limits = DecodeLimits {
        max_body_bytes: body.len() - 1,
    };
    let e = decode_body(&body, &limits).unwrap_err();
    assert_eq!(
        e,
        DecodeError::Oversized {
            len: body.len(),
            max: body.len() - 1
        }
    );
    assert_eq!(e.reason(), RejectReason::Oversized);
    assert!(decode_body(
        &body,
        &DecodeLimits {
            max_body_bytes: body.len()
        }
    )
    .is_ok());
    assert_eq!(DecodeLimits::default().max_body_bytes, 65536);
    // Checked before anything else: a huge invalid body is still "oversized".
    let junk = vec![0xffu8; 65537];
    assert_eq!(
        decode_body(&junk, &DecodeLimits::default())
            .unwrap_err()
            .reason(),
        RejectReason::Oversized
    );
}

#[test]
fn not_utf8() {
    let body = b"{\"v\":1,\"id\":\"\xff\xfe\"}";
    let e = decode_body(body, &DecodeLimits::default()).unwrap_err();
    assert_eq!(e, DecodeError::NotUtf8 { valid_up_to: 13 });
    assert_eq!(e.reason(), RejectReason::NotUtf8);
}

#[test]
fn malformed_json() {
    for body in ["{", "", "{\"v\":1}}", "{\"v\":1,}", "nul", "{'v':1}"] {
        let e = decode_str(body).unwrap_err();
        assert!(
            matches!(e, DecodeError::MalformedJson(_)),
            "{body:?} gave {e:?}"
        );
        assert_eq!(e.reason(), RejectReason::MalformedJson);
    }
}

#[test]
fn duplicate_keys_are_malformed_at_any_depth() {
    let e = decode_str(
        r#"{"v":1,"id":"x","type":"key.revoked","tenant":"acme","key_id":"acme/k","reason":"a","reason":"b"}"#,
    )
    .unwrap_err();
    match e {
        DecodeError::MalformedJson(m) => assert!(m.contains("duplicate key `reason`"), "{m}"),
        other => panic!("{other:?}"),
    }
    let e = decode_str(
        r#"{"v":1,"id":"x","type":"telemetry","tenant":"acme","name":"n","data":{"a":1,"a":2}}"#,
    )
    .unwrap_err();
    assert!(matches!(e, DecodeError::MalformedJson(ref m) if m.contains("duplicate key `a`")));
}

#[test]
fn duplicate_keys_are_found_in_large_objects_and_through_escapes() {
    // An object of many members (the decoder switches from a linear search to a
    // set of keys) with the duplicate at either end of it.
    for dup_first in [false, true] {
        let mut members: Vec<String> = (0..200).map(|i| format!("\"k{i}\":{i}")).collect();
        if dup_first {
            members.insert(1, "\"k0\":0".to_owned());
        } else {
            members.push("\"k199\":0".to_owned());
        }
        let body = format!(
            r#"{{"v":1,"id":"x","type":"telemetry","tenant":"acme","name":"n","data":{{{}}}}}"#,
            members.join(",")
        );
        let e = decode_str(&body).unwrap_err();
        let key = if dup_first { "k0" } else { "k199" };
        assert!(
            matches!(e, DecodeError::MalformedJson(ref m) if m.contains(&format!("duplicate key `{key}`"))),
            "{e:?}"
        );
    }
    // 200 distinct keys are fine, and are all kept.
    let members: Vec<String> = (0..200).map(|i| format!("\"k{i}\":{i}")).collect();
    let body = format!(
        r#"{{"v":1,"id":"x","type":"telemetry","tenant":"acme","name":"n","data":{{{}}}}}"#,
        members.join(",")
    );
    match decode_str(&body).unwrap().event {
        govledger_schemas::Event::Telemetry(t) => {
            assert_eq!(t.data.len(), 200);
            assert_eq!(t.data["k150"], json!(150));
        }
        other => panic!("{other:?}"),
    }
    // A key written with an escape is the same key.
    let e = decode_str(
        r#"{"v":1,"id":"x","type":"key.revoked","tenant":"acme","key_id":"acme/k","reason":"a","re\u0061son":"b"}"#,
    )
    .unwrap_err();
    assert!(
        matches!(e, DecodeError::MalformedJson(ref m) if m.contains("duplicate key `reason`")),
        "{e:?}"
    );
    // And escaped values decode to their text.
    let env = decode_str(
        r#"{"v":1,"id":"x","type":"key.revoked","tenant":"acme","key_id":"acme/k","reason":"tab\there \u00e9"}"#,
    )
    .unwrap();
    match env.event {
        govledger_schemas::Event::KeyRevoked(k) => assert_eq!(k.reason, "tab\there é"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn of_several_unknown_fields_the_first_in_string_order_is_named() {
    // Whatever their order in the body.
    for body in [
        r#"{"v":1,"id":"x","type":"key.revoked","tenant":"acme","key_id":"acme/k","reason":"a","zeta":1,"beta":2}"#,
        r#"{"beta":2,"v":1,"zeta":1,"id":"x","type":"key.revoked","tenant":"acme","key_id":"acme/k","reason":"a"}"#,
    ] {
        assert_schema(decode_str(body), "beta", "unknown field");
    }
}

#[test]
fn body_must_be_an_object() {
    assert_schema(
        decode_str("[1,2]"),
        "$",
        "must be a JSON object, found an array",
    );
    assert_schema(decode_str("\"hi\""), "$", "must be a JSON object");
}

#[test]
fn unsupported_version() {
    let v = set(example(EventType::KeyRevoked), "v", json!(2));
    let e = decode(&v).unwrap_err();
    assert_eq!(e, DecodeError::UnsupportedVersion(2));
    assert_eq!(e.reason(), RejectReason::UnsupportedVersion);
    assert_eq!(
        e.to_string(),
        "unsupported schema version 2: this build understands version 1"
    );
    // Version is checked before type.
    let v = set(
        set(example(EventType::KeyRevoked), "v", json!(0)),
        "type",
        json!("x"),
    );
    assert_eq!(decode(&v).unwrap_err(), DecodeError::UnsupportedVersion(0));
    assert_schema(
        decode(&remove(example(EventType::KeyRevoked), "v")),
        "v",
        "missing",
    );
    assert_schema(
        decode(&set(example(EventType::KeyRevoked), "v", json!("1"))),
        "v",
        "expected a non-negative integer, found the string \"1\"",
    );
    assert_schema(
        decode(&set(example(EventType::KeyRevoked), "v", json!(1.0))),
        "v",
        "fractional",
    );
}

#[test]
fn unknown_type() {
    let v = set(
        example(EventType::KeyRevoked),
        "type",
        json!("key.exploded"),
    );
    let e = decode(&v).unwrap_err();
    assert_eq!(e, DecodeError::UnknownType("key.exploded".into()));
    assert_eq!(e.reason(), RejectReason::UnknownType);
    assert_schema(
        decode(&remove(example(EventType::KeyRevoked), "type")),
        "type",
        "missing",
    );
    assert_schema(
        decode(&set(example(EventType::KeyRevoked), "type", json!(7))),
        "type",
        "expected a string",
    );
}

#[test]
fn missing_field() {
    let e = decode(&remove(example(EventType::ActionExecuted), "outcome")).unwrap_err();
    assert_eq!(
        e,
        DecodeError::Schema {
            field: "outcome".into(),
            message: "missing required field".into()
        }
    );
    assert_eq!(e.reason(), RejectReason::SchemaViolation);
    assert_eq!(
        e.to_string(),
        "schema violation in field `outcome`: missing required field"
    );
    assert_schema(
        decode(&remove(example(EventType::KeyRevoked), "id")),
        "id",
        "missing",
    );
    assert_schema(
        decode(&remove(example(EventType::KeyRevoked), "tenant")),
        "tenant",
        "missing",
    );
}

#[test]
fn wrong_json_type() {
    assert_schema(
        decode(&set(
            example(EventType::ActionExecuted),
            "tokens",
            json!("812"),
        )),
        "tokens",
        "expected a non-negative integer, found the string \"812\"",
    );
    assert_schema(
        decode(&set(
            example(EventType::PolicyDecided),
            "rule_ids",
            json!("r1"),
        )),
        "rule_ids",
        "expected an array",
    );
    assert_schema(
        decode(&set(
            example(EventType::PolicyDecided),
            "rule_ids",
            json!(["r1", 2]),
        )),
        "rule_ids[1]",
        "expected a string",
    );
    assert_schema(
        decode(&set(
            example(EventType::BudgetConfigured),
            "kill_on_exceed",
            json!(1),
        )),
        "kill_on_exceed",
        "expected true or false",
    );
    assert_schema(
        decode(&set(
            example(EventType::SessionStarted),
            "actor",
            json!("alice"),
        )),
        "actor",
        "expected an object",
    );
    assert_schema(
        decode(&set(example(EventType::Telemetry), "data", json!([1]))),
        "data",
        "expected an object",
    );
}

#[test]
fn float_money_is_rejected() {
    let e = decode(&set(
        example(EventType::ActionExecuted),
        "cost_micros",
        json!(12.5),
    ))
    .unwrap_err();
    assert_eq!(
        e,
        DecodeError::Schema {
            field: "cost_micros".into(),
            message: "expected a non-negative integer, found the fractional number 12.5".into()
        }
    );
    // Even an integral float, and exponent notation, are floats.
    assert_schema(
        decode_str(
            r#"{"v":1,"id":"x","type":"budget.incremented","tenant":"acme","scope":{"team":"t"},"tokens":1,"cost_micros":1.0,"model":"m"}"#,
        ),
        "cost_micros",
        "fractional",
    );
    assert_schema(
        decode_str(
            r#"{"v":1,"id":"x","type":"budget.incremented","tenant":"acme","scope":{"team":"t"},"tokens":1,"cost_micros":1e3,"model":"m"}"#,
        ),
        "cost_micros",
        "fractional",
    );
    // Beyond u64 is not silently rounded.
    assert_schema(
        decode_str(
            r#"{"v":1,"id":"x","type":"budget.incremented","tenant":"acme","scope":{"team":"t"},"tokens":1,"cost_micros":18446744073709551616,"model":"m"}"#,
        ),
        "cost_micros",
        "expected a non-negative integer",
    );
}

#[test]
fn negative_money_is_rejected() {
    let e = decode(&set(
        example(EventType::BudgetIncremented),
        "cost_micros",
        json!(-5),
    ))
    .unwrap_err();
    assert_eq!(
        e,
        DecodeError::Schema {
            field: "cost_micros".into(),
            message: "expected a non-negative integer, found the number -5".into()
        }
    );
    assert_schema(
        decode(&set(
            example(EventType::ApprovalGranted),
            "max_cost_micros",
            json!(-1),
        )),
        "max_cost_micros",
        "non-negative",
    );
}

#[test]
fn unknown_field_is_rejected() {
    let e = decode(&set(
        example(EventType::KeyRevoked),
        "severity",
        json!("high"),
    ))
    .unwrap_err();
    match &e {
        DecodeError::Schema { field, message } => {
            assert_eq!(field, "severity");
            assert!(
                message.starts_with("unknown field; expected one of: id, tenant, key_id, reason")
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(e.reason(), RejectReason::SchemaViolation);
    // Nested.
    let v = set(
        example(EventType::SessionStarted),
        "actor",
        json!({"agent": "a", "role": "admin"}),
    );
    assert_schema(
        decode(&v),
        "actor.role",
        "unknown field; expected one of: user, agent, service",
    );
    // Reported before missing fields (a typo explains both).
    let v = set(
        remove(example(EventType::KeyRevoked), "reason"),
        "reasn",
        json!("x"),
    );
    assert_schema(decode(&v), "reasn", "unknown field");
}

#[test]
fn bad_ids() {
    assert_schema(
        decode(&set(
            example(EventType::KeyRevoked),
            "tenant",
            json!("Acme Corp"),
        )),
        "tenant",
        "invalid tenant id \"Acme Corp\": contains 'A'",
    );
    assert_schema(
        decode(&set(example(EventType::KeyRevoked), "tenant", json!(""))),
        "tenant",
        "must not be empty",
    );
    for reserved in govledger_schemas::TenantId::RESERVED {
        assert_schema(
            decode(&set(
                example(EventType::KeyRevoked),
                "tenant",
                json!(reserved),
            )),
            "tenant",
            "is reserved",
        );
    }
    assert_schema(
        decode(&set(example(EventType::KeyRevoked), "id", json!("a/b"))),
        "id",
        "invalid event id",
    );
    assert_schema(
        decode(&set(
            example(EventType::KeyRevoked),
            "key_id",
            json!("acme"),
        )),
        "key_id",
        "<tenant>/<name>",
    );
    assert_schema(
        decode(&set(
            example(EventType::SessionEnded),
            "session",
            json!("has space"),
        )),
        "session",
        "invalid identifier",
    );
    assert_schema(
        decode(&set(
            example(EventType::SessionEnded),
            "actor",
            json!({"user": "x y"}),
        )),
        "actor.user",
        "invalid identifier",
    );
}

#[test]
fn bad_enum_values() {
    assert_schema(
        decode(&set(
            example(EventType::ActionProposed),
            "risk_tier",
            json!("HIGH"),
        )),
        "risk_tier",
        "expected one of: low, medium, high, critical; found \"HIGH\"",
    );
    assert_schema(
        decode(&set(
            example(EventType::PolicyDecided),
            "decision",
            json!("maybe"),
        )),
        "decision",
        "allow, deny, require_approval",
    );
    assert_schema(
        decode(&set(
            example(EventType::KillswitchEngaged),
            "scope",
            json!("planet"),
        )),
        "scope",
        "session, agent, tenant, system",
    );
}

#[test]
fn cross_field_rules() {
    assert_schema(
        decode(&set(example(EventType::SessionStarted), "actor", json!({}))),
        "actor",
        "at least one of `user`, `agent`, `service`",
    );
    assert_schema(
        decode(&set(
            example(EventType::SessionStarted),
            "actor",
            json!({"user": null}),
        )),
        "actor",
        "at least one of",
    );
    assert_schema(
        decode(&set(
            example(EventType::ActionProposed),
            "actor",
            json!({"user": "u"}),
        )),
        "actor.agent",
        "missing required field",
    );
    assert_schema(
        decode(&set(
            example(EventType::BudgetIncremented),
            "scope",
            json!({}),
        )),
        "scope",
        "at least one of `org`, `team`, `user`, `agent`",
    );
    let v = remove(
        remove(example(EventType::BudgetConfigured), "limit_tokens"),
        "limit_cost_micros",
    );
    assert_schema(decode(&v), "limit_tokens", "at least one of");
    assert_schema(
        decode(&set(
            example(EventType::BudgetConfigured),
            "warn_thresholds_pct",
            json!([50, 50]),
        )),
        "warn_thresholds_pct[1]",
        "strictly ascending",
    );
    assert_schema(
        decode(&set(
            example(EventType::BudgetConfigured),
            "warn_thresholds_pct",
            json!([0]),
        )),
        "warn_thresholds_pct[0]",
        "from 1 to 100",
    );
    assert_schema(
        decode(&set(
            example(EventType::BudgetConfigured),
            "warn_thresholds_pct",
            json!([10, 300]),
        )),
        "warn_thresholds_pct[1]",
        "from 1 to 100, found 300",
    );
    assert_schema(
        decode(&set(
            example(EventType::ApprovalGranted),
            "max_count",
            json!(0),
        )),
        "max_count",
        "at least 1",
    );
    assert_schema(
        decode(&set(
            example(EventType::KeyRegistered),
            "valid_until_ns",
            json!(1),
        )),
        "valid_until_ns",
        "must not be before valid_from_ns",
    );
    assert_schema(
        decode(&set(
            example(EventType::KeyRotated),
            "new_key_id",
            json!("acme/ops-1"),
        )),
        "new_key_id",
        "must differ",
    );
    assert_schema(
        decode(&set(
            example(EventType::KeyRotated),
            "new_key_id",
            json!("other/ops-2"),
        )),
        "new_key_id",
        "same tenant",
    );
}

#[test]
fn string_and_key_formats() {
    assert_schema(
        decode(&set(
            example(EventType::ActionProposed),
            "args_digest",
            json!(common::DIGEST.to_uppercase()),
        )),
        "args_digest",
        "64 lowercase hex digits",
    );
    assert_schema(
        decode(&set(
            example(EventType::ActionProposed),
            "args_digest",
            json!("abc"),
        )),
        "args_digest",
        "64 lowercase hex",
    );
    assert_schema(
        decode(&set(
            example(EventType::ActionProposed),
            "action",
            json!(""),
        )),
        "action",
        "must be 1 to 256 characters, found 0",
    );
    assert_schema(
        decode(&set(
            example(EventType::ActionProposed),
            "action",
            json!("a".repeat(257)),
        )),
        "action",
        "found 257",
    );
    assert!(decode(&set(
        example(EventType::ActionProposed),
        "action",
        json!("é".repeat(256))
    ))
    .is_ok());
    assert_schema(
        decode(&set(
            example(EventType::PolicyDecided),
            "policy_version",
            json!("v".repeat(65)),
        )),
        "policy_version",
        "1 to 64",
    );
    assert_schema(
        decode(&set(
            example(EventType::PolicyDecided),
            "reason",
            json!("r".repeat(1025)),
        )),
        "reason",
        "at most 1024 characters",
    );
    // 31 bytes.
    assert_schema(
        decode(&set(
            example(EventType::KeyRegistered),
            "public_key",
            json!("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHg=="),
        )),
        "public_key",
        "32-byte Ed25519 public key, found 31 bytes",
    );
    assert_schema(
        decode(&set(
            example(EventType::KeyRegistered),
            "public_key",
            json!("not base64!"),
        )),
        "public_key",
        "standard base64",
    );
    // URL-safe alphabet is not standard base64.
    assert_schema(
        decode(&set(
            example(EventType::KeyRotated),
            "new_public_key",
            json!("ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8".to_owned() + "_"),
        )),
        "new_public_key",
        "standard base64",
    );
}

#[test]
fn peek_ids_labels_rejections() {
    let v = set(example(EventType::KeyRevoked), "reason", json!(5));
    let body = serde_json::to_vec(&v).unwrap();
    let (id, tenant) = peek_ids(&body, &DecodeLimits::default());
    assert_eq!(id.map(String::from).as_deref(), Some("e-17"));
    assert_eq!(tenant.map(String::from).as_deref(), Some("acme"));
    assert_eq!(peek_ids(b"{", &DecodeLimits::default()), (None, None));
    let (id, tenant) = peek_ids(br#"{"id":"a b","tenant":"acme"}"#, &DecodeLimits::default());
    assert!(id.is_none());
    assert_eq!(tenant.map(String::from).as_deref(), Some("acme"));
}

#[test]
fn error_messages_are_actionable() {
    let e = decode(&set(
        example(EventType::ActionExecuted),
        "cost_micros",
        json!(-1),
    ))
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "schema violation in field `cost_micros`: expected a non-negative integer, found the number -1"
    );
    // Echoed input is truncated.
    let long = "x".repeat(10_000);
    let e = decode(&set(example(EventType::KeyRevoked), "type", json!(long))).unwrap_err();
    assert!(e.to_string().len() < 200, "{e}");
}

#[test]
fn deep_nesting_is_refused_without_overflowing_the_stack() {
    let depth = 30_000; // 60 KB, under the 64 KiB limit
    let body = format!(
        r#"{{"v":1,"id":"x","type":"telemetry","tenant":"acme","name":"n","data":{{"a":{}{}}}}}"#,
        "[".repeat(depth),
        "]".repeat(depth)
    );
    let e = decode_str(&body).unwrap_err();
    assert!(
        matches!(e, DecodeError::MalformedJson(ref m) if m.contains("recursion limit")),
        "{e:?}"
    );
}

mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = decode_body(&bytes, &DecodeLimits::default());
            let _ = peek_ids(&bytes, &DecodeLimits::default());
        }

        #[test]
        fn mutated_examples_never_panic(
            which in 0usize..18,
            pos in any::<prop::sample::Index>(),
            byte in any::<u8>(),
        ) {
            let (_, v) = common::examples().swap_remove(which);
            let mut body = serde_json::to_vec(&v).unwrap();
            let i = pos.index(body.len());
            body[i] = byte;
            if let Ok(env) = decode_body(&body, &DecodeLimits::default()) {
                // Whatever is accepted re-serializes to an equivalent body.
                prop_assert_eq!(decode_body(&env.to_body(), &DecodeLimits::default()).unwrap(), env);
            }
        }
    }
}
