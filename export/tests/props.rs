//! Property tests: redaction is total and idempotent; every format is total and
//! deterministic on arbitrary records.

mod common;

use govledger_export::{render, Exporter, Format, Record, RedactionConfig, Redactor};
use govledger_schemas::{Entry, RejectReason, Seq, Verdict};
use proptest::prelude::*;
use serde_json::Value;

/// Pieces that exercise the secret patterns and their overlaps.
fn fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("password=".to_owned()),
        Just("pwd: ".to_owned()),
        Just("Bearer ".to_owned()),
        Just("bearer\t".to_owned()),
        Just("eyJhbGci".to_owned()),
        Just(".".to_owned()),
        Just("sk-".to_owned()),
        Just("sk-proj-abcdefghijklmnopqrstuvwxyz".to_owned()),
        Just("AKIAIOSFODNN7EXAMPLE".to_owned()),
        Just("ghp_".to_owned()),
        Just("://".to_owned()),
        Just("postgres://u:".to_owned()),
        Just("@".to_owned()),
        Just(";".to_owned()),
        Just("\"".to_owned()),
        Just(" ".to_owned()),
        Just("\n".to_owned()),
        Just("=".to_owned()),
        Just("x-api-key: ".to_owned()),
        Just("-----BEGIN RSA PRIVATE KEY-----".to_owned()),
        Just("-----END RSA PRIVATE KEY-----".to_owned()),
        Just("[REDACTED:jwt]".to_owned()),
        Just("[REDACTED:".to_owned()),
        Just("]".to_owned()),
        Just("Authorization: Basic ".to_owned()),
        "[A-Za-z0-9_\\-]{0,24}",
        any::<String>(),
    ]
}

fn tricky_string() -> impl Strategy<Value = String> {
    prop::collection::vec(fragment(), 0..12).prop_map(|v| v.concat())
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-1e12f64..1e12).prop_map(Value::from),
        tricky_string().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec(
                (
                    prop_oneof![
                        tricky_string(),
                        Just("password".to_owned()),
                        Just("api_key".to_owned()),
                        Just("actor".to_owned()),
                        Just("agent".to_owned()),
                        Just("type".to_owned()),
                        Just("session".to_owned()),
                        Just("outcome".to_owned()),
                        Just("scope".to_owned()),
                    ],
                    inner
                ),
                0..6
            )
            .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

fn event_type() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(
            govledger_schemas::EventType::ALL
                .iter()
                .map(|t| t.as_str().to_owned())
                .collect::<Vec<_>>()
        ),
        tricky_string(),
    ]
}

prop_compose! {
    fn arb_entry()(
        seq in any::<u64>(),
        stream_seq in any::<u64>(),
        time_ns in any::<u64>(),
        subject in tricky_string(),
        key_id in prop::option::of(tricky_string()),
        body in prop_oneof![
            json_value().prop_map(|v| Some(serde_json::to_vec(&v).unwrap())),
            prop::collection::vec(any::<u8>(), 0..64).prop_map(Some),
            Just(None),
        ],
        accepted in any::<bool>(),
        event_id in tricky_string(),
        event_type in event_type(),
        tenant in tricky_string(),
        reason in prop::sample::select(RejectReason::ALL.to_vec()),
        detail in tricky_string(),
        opt_tenant in prop::option::of(tricky_string()),
    ) -> Entry {
        let verdict = if accepted {
            Verdict::Accepted { event_id: event_id.clone(), event_type, tenant }
        } else {
            Verdict::Rejected { reason, detail, event_id: Some(event_id), tenant: opt_tenant }
        };
        Entry {
            seq: Seq(seq),
            stream_seq,
            time_ns,
            subject,
            key_id,
            signature: None,
            body_sha256: [3u8; 32],
            body_len: body.as_ref().map_or(0, |b| b.len() as u64),
            body,
            verdict,
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn redaction_is_idempotent_on_strings(s in tricky_string()) {
        let red = Redactor::with_defaults().unwrap();
        let once = red.redact_text(&s);
        let twice = red.redact_text(&once);
        prop_assert_eq!(once, twice);
    }

    #[test]
    fn redaction_with_a_small_limit_is_idempotent(s in tricky_string(), limit in 0usize..64) {
        let red = Redactor::new(&RedactionConfig { max_scan_bytes: limit, ..RedactionConfig::default() }).unwrap();
        let once = red.redact_text(&s);
        prop_assert_eq!(red.redact_text(&once), once);
    }

    #[test]
    fn redaction_never_leaves_a_known_secret(
        prefix in tricky_string(),
        suffix in tricky_string(),
        secret in prop::sample::select(vec![
            "AKIAIOSFODNN7EXAMPLE",
            "ghp_R7s2kTq9XvB4mN8pL1cW6yZ3hJ5fD0aE2gU4",
            "sk-proj-Xq3vT9bL2mN7pR4sW8yZ1cF6hJ0kD5gA3eU",
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl",
        ]),
    ) {
        // Separated by spaces, as secrets are in text: a secret glued to arbitrary
        // word characters is a different token.
        prop_assume!(!prefix.contains(secret) && !suffix.contains(secret));
        let s = format!("{prefix} {secret} {suffix}");
        let red = Redactor::with_defaults().unwrap();
        let out = red.redact_text(&s);
        prop_assert!(!out.contains(secret), "{} -> {}", s, out);
    }

    #[test]
    fn records_redact_idempotently_and_render_totally(entry in arb_entry(), leaf in any::<[u8; 32]>()) {
        let exporter = Exporter::new(common::options(), &RedactionConfig::default()).unwrap();
        let record = exporter.record(&entry, leaf, "govledger.example/log");
        let again = exporter.redactor().redact_record(record.clone());
        prop_assert_eq!(&again, &record);
        let hex = record.leaf_hash_hex();
        for &format in Format::ALL {
            let a = exporter.render_record(format, &record);
            let b = render(format, &again, exporter.options());
            prop_assert_eq!(&a, &b);
            prop_assert!(a.contains(&hex));
            prop_assert!(!a.contains('\n'), "{} output has a newline", format);
            if matches!(format, Format::Jsonl | Format::Ocsf | Format::Ecs | Format::Hec) {
                let parsed: Result<Value, _> = serde_json::from_str(&a);
                prop_assert!(parsed.is_ok(), "{} output is not JSON: {}", format, a);
            }
        }
        // Formatting an unredacted record must not panic either.
        let raw = Record::from_entry(&entry, leaf, "o");
        for &format in Format::ALL {
            let _ = render(format, &raw, exporter.options());
        }
    }
}
