//! Realistic secrets through every format: none may survive, every marker must show.

mod common;

use govledger_export::{Exporter, ExtraPattern, Format, RedactionConfig};
use govledger_schemas::RejectReason;

// Not a real key: random base64 in the shape of a PKCS#1 RSA key.
const PEM: &str = "-----BEGIN RSA PRIVATE KEY-----\n\
MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun\n\
VTLw7onLRnrq0/IzW7yWR7QkrmBL7jTKEn5u+qKhbwKfBstIs+bMY2Zkp18gnTxK\n\
LxoS2tFczGkPLPgizskuemMghRniWaoLcyehkd3qqGElvW/VDL5AaWTg0nLVkjRo\n\
9z+40RQzuVaE8AkAFmxZzow3x+VJYKdjykkJ0iT9wCS0DRTXu269V264Vf/3jvre\n\
-----END RSA PRIVATE KEY-----";
const PEM_FRAGMENTS: &[&str] = &[
    "MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun",
    "VTLw7onLRnrq0",
    "LxoS2tFczGkPLPgizskuemMghRniWaoLcyehkd3qqGElvW",
    "9z+40RQzuVaE8AkAFmxZzow3x+VJYKdjykkJ0iT9wCS0DRTXu269V264Vf",
];
const AWS_ID: &str = "AKIAIOSFODNN7EXAMPLE";
const AWS_SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
const GITHUB_PAT: &str = "ghp_R7s2kTq9XvB4mN8pL1cW6yZ3hJ5fD0aE2gU4";
const GITHUB_FINE: &str =
    "github_pat_11ABCDEFG0aBcDeFgHiJkL_mNoPqRsTuVwXyZ0123456789abcdefGHIJKLMNOP";
const OPENAI: &str = "sk-proj-Xq3vT9bL2mN7pR4sW8yZ1cF6hJ0kD5gA3eU_iO9lQ-2xV7nB4tM";
const SLACK: &str = "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx";
const JWT: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIn0.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";
const JWT_SIG: &str = "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";

fn secret_body() -> String {
    let data = serde_json::json!({
        "pem": PEM,
        "aws": format!("export AWS_ACCESS_KEY_ID={AWS_ID}\nexport aws_secret_access_key={AWS_SECRET}"),
        "gh": format!("cloning with {GITHUB_PAT}"),
        "gh_fine": GITHUB_FINE,
        "openai": format!("OPENAI_API_KEY is {OPENAI} (do not share)"),
        "slack": SLACK,
        "jwt": format!("session cookie {JWT}"),
        "db": "postgres://app:s3cr3t@db:5432/x",
        "conn": "Server=x;User Id=u;Password=p@ss;",
        "headers": "Authorization: Bearer abc.def",
        "x": "{\"x-api-key\": \"k3y-v4lu3-zz\"}",
        "password": "hunter2hunter2",
        "nested": [{"api_key": "plainvalue123"}, {"innocent": "prop-123"}],
        GITHUB_PAT: "secret as a key",
    });
    let body = serde_json::json!({
        "v": 1, "id": "ev-500", "type": "telemetry", "tenant": "acme",
        "actor": {"agent": "agent-7"}, "name": "debug-dump", "data": data,
    });
    serde_json::to_string(&body).unwrap()
}

/// Every secret fragment that must not appear anywhere in any output.
const FORBIDDEN: &[&str] = &[
    AWS_ID,
    AWS_SECRET,
    "K7MDENG",
    GITHUB_PAT,
    "R7s2kTq9XvB4mN8pL1cW6yZ3hJ5fD0aE2gU4",
    GITHUB_FINE,
    "11ABCDEFG0aBcDeFgHiJkL",
    OPENAI,
    "Xq3vT9bL2mN7pR4sW8yZ1cF6hJ0kD5gA3eU",
    SLACK,
    "AbCdEfGhIjKlMnOpQrStUvWx",
    JWT,
    JWT_SIG,
    "eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIn0",
    "s3cr3t",
    "p@ss",
    "abc.def",
    "k3y-v4lu3-zz",
    "hunter2hunter2",
    "plainvalue123",
];

const MARKERS: &[&str] = &[
    "[REDACTED:private_key]",
    "[REDACTED:api_key]",
    "[REDACTED:jwt]",
    "[REDACTED:url_password]",
    "[REDACTED:password]",
    "[REDACTED:bearer]",
];

fn assert_clean(out: &str, context: &str) {
    for secret in FORBIDDEN.iter().chain(PEM_FRAGMENTS) {
        assert!(
            !out.contains(secret),
            "{context}: secret {secret:?} leaked in:\n{out}"
        );
    }
}

#[test]
fn secrets_in_bodies_never_reach_any_format() {
    let body = secret_body();
    let entry = common::accepted(42, "gov.acme.telemetry", "acme/gateway", &body);
    let exporter = Exporter::new(common::options(), &common::redaction()).unwrap();
    let record = exporter.record(&entry, common::leaf_hash(42), common::ORIGIN);
    assert_eq!(
        record.redactions,
        vec![
            "api_key",
            "bearer",
            "jwt",
            "password",
            "private_key",
            "url_password"
        ]
    );
    for &format in Format::ALL {
        let out = exporter.render_record(format, &record);
        assert_clean(&out, format.as_str());
        if matches!(
            format,
            Format::Jsonl | Format::Ocsf | Format::Ecs | Format::Hec | Format::Syslog
        ) {
            for m in MARKERS {
                assert!(out.contains(m), "{format}: marker {m} missing in:\n{out}");
            }
            // What must survive: the scheme/user/host, the ids, the word Bearer.
            for keep in [
                "postgres://app:",
                "@db:5432/x",
                "Bearer ",
                "prop-123",
                "User Id=u;",
            ] {
                assert!(out.contains(keep), "{format}: {keep:?} was lost:\n{out}");
            }
        }
    }
}

#[test]
fn secrets_in_subject_detail_and_ids_never_reach_any_format() {
    let detail = format!("header Authorization: Bearer abc.def; dsn postgres://app:s3cr3t@db:5432/x; key {OPENAI} {JWT}");
    let entry = common::rejected(
        7,
        &format!("gov.acme.{AWS_ID}"),
        Some(GITHUB_PAT),
        b"whatever",
        false,
        RejectReason::BadHeader,
        &detail,
        Some(SLACK),
        Some("acme"),
    );
    let exporter = Exporter::new(common::options(), &common::redaction()).unwrap();
    let record = exporter.record(&entry, common::leaf_hash(7), common::ORIGIN);
    for &format in Format::ALL {
        let out = exporter.render_record(format, &record);
        assert_clean(&out, format.as_str());
        for m in [
            "[REDACTED:bearer]",
            "[REDACTED:url_password]",
            "[REDACTED:api_key]",
            "[REDACTED:jwt]",
        ] {
            assert!(out.contains(m), "{format}: marker {m} missing in:\n{out}");
        }
    }
}

#[test]
fn innocent_content_survives_every_format() {
    let exporter = Exporter::new(common::options(), &common::redaction()).unwrap();
    for entry in common::golden_entries() {
        let record = exporter.record(&entry, common::leaf_hash(entry.seq.0), common::ORIGIN);
        assert!(
            record.redactions.is_empty(),
            "seq {} redacted {:?}",
            entry.seq,
            record.redactions
        );
        let plain = govledger_export::Record::from_entry(
            &entry,
            common::leaf_hash(entry.seq.0),
            common::ORIGIN,
        );
        assert_eq!(record, plain, "seq {}", entry.seq);
    }
    // Spot checks on what a naive redactor would eat.
    let red = exporter.redactor();
    for s in [
        "prop-123",
        "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        "GB9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=",
        "acme/ci-2",
        "https://example.com:8443/a?b=c",
        "tokens: 1200",
        "the session key was rotated",
    ] {
        assert_eq!(red.redact_text(s), s);
    }
}

#[test]
fn oversized_strings_are_redacted_whole() {
    let big = "a".repeat(govledger_export::DEFAULT_MAX_SCAN_BYTES + 1);
    let body = serde_json::json!({
        "v": 1, "id": "ev-501", "type": "telemetry", "tenant": "acme",
        "name": "blob", "data": {"blob": big, "small": "ok"},
    })
    .to_string();
    let entry = common::accepted(43, "gov.acme.telemetry", "acme/gateway", &body);
    let exporter = Exporter::new(common::options(), &common::redaction()).unwrap();
    let record = exporter.record(&entry, common::leaf_hash(43), common::ORIGIN);
    assert_eq!(record.redactions, vec!["oversized"]);
    let out = exporter.render_record(Format::Jsonl, &record);
    assert!(out.contains("\"blob\":\"[REDACTED:oversized]\""));
    assert!(out.contains("\"small\":\"ok\""));
    assert!(out.len() < 4096);
}

#[test]
fn configured_patterns_apply_to_every_format() {
    let cfg = RedactionConfig {
        extra_patterns: vec![ExtraPattern {
            name: "customer_iban".into(),
            regex: r"\bDE[0-9]{20}\b".into(),
        }],
        ..RedactionConfig::default()
    };
    let body = serde_json::json!({
        "v": 1, "id": "ev-502", "type": "telemetry", "tenant": "acme",
        "name": "payout", "data": {"to": "DE89370400440532013000"},
    })
    .to_string();
    let entry = common::accepted(44, "gov.acme.telemetry", "acme/gateway", &body);
    let exporter = Exporter::new(common::options(), &cfg).unwrap();
    let record = exporter.record(&entry, common::leaf_hash(44), common::ORIGIN);
    assert_eq!(record.redactions, vec!["customer_iban"]);
    for &format in Format::ALL {
        let out = exporter.render_record(format, &record);
        assert!(!out.contains("DE89370400440532013000"), "{format}");
    }
    assert!(exporter
        .render_record(Format::Jsonl, &record)
        .contains("[REDACTED:customer_iban]"));
}

#[test]
fn redacting_a_record_twice_changes_nothing() {
    let body = secret_body();
    let entry = common::accepted(42, "gov.acme.telemetry", "acme/gateway", &body);
    let exporter = Exporter::new(common::options(), &common::redaction()).unwrap();
    let once = exporter.record(&entry, common::leaf_hash(42), common::ORIGIN);
    let twice = exporter.redactor().redact_record(once.clone());
    assert_eq!(once, twice);
}
