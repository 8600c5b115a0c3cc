//! Options: validation errors, payload choices, names.

mod common;

use govledger_export::{
    ExportError, ExportOptions, Exporter, ExtraPattern, Format, HecOptions, Payload,
    RedactionConfig, SyslogOptions,
};

#[test]
fn format_and_payload_names_round_trip() {
    for &f in Format::ALL {
        assert_eq!(f.as_str().parse::<Format>().unwrap(), f);
    }
    assert!(matches!(
        "OCSF".parse::<Format>(),
        Err(ExportError::UnknownFormat(_))
    ));
    for p in [Payload::Jsonl, Payload::Ocsf, Payload::Ecs, Payload::Cef] {
        assert_eq!(p.as_str().parse::<Payload>().unwrap(), p);
    }
    assert!("xml".parse::<Payload>().is_err());
}

#[test]
fn bad_options_are_refused_with_actionable_errors() {
    let mut o = common::options();
    o.syslog.facility = 24;
    let e = Exporter::new(o, &RedactionConfig::default()).unwrap_err();
    assert!(matches!(e, ExportError::SyslogFacility(24)));
    assert!(e.to_string().contains("0 to 23"));

    for sd in ["", "has space@1", "a=b@1", "x]@1", &"a".repeat(33)] {
        let mut o = common::options();
        o.syslog.sd_id = sd.to_owned();
        assert!(
            matches!(
                Exporter::new(o, &RedactionConfig::default()),
                Err(ExportError::SyslogSdId(_))
            ),
            "{sd:?}"
        );
    }

    let cfg = RedactionConfig {
        extra_patterns: vec![ExtraPattern {
            name: "bearer".into(),
            regex: "x".into(),
        }],
        ..RedactionConfig::default()
    };
    let e = Exporter::new(common::options(), &cfg).unwrap_err();
    assert!(e.to_string().contains("built-in"), "{e}");
}

#[test]
fn syslog_and_hec_carry_every_payload() {
    let entries = common::golden_entries();
    // The telemetry fixture has non-ASCII text ("café").
    let entry = entries
        .iter()
        .find(|e| e.event_type() == Some("telemetry"))
        .unwrap();
    for payload in [Payload::Jsonl, Payload::Ocsf, Payload::Ecs, Payload::Cef] {
        let opts = ExportOptions {
            syslog: SyslogOptions {
                payload,
                hostname: Some("ledger-1".into()),
                procid: Some("4242".into()),
                ..SyslogOptions::default()
            },
            hec: HecOptions {
                payload,
                host: Some("ledger-1".into()),
                index: Some("gov".into()),
                ..HecOptions::default()
            },
            ..common::options()
        };
        let exporter = Exporter::new(opts, &RedactionConfig::default()).unwrap();
        let leaf = common::leaf_hash(entry.seq.0);
        let msg = exporter.render(Format::Syslog, entry, leaf, common::ORIGIN);
        assert!(msg.starts_with("<110>1 2026-01-01T00:00:11.001358Z ledger-1 govledger 4242 telemetry [govledger@32473 seq=\"11\""), "{msg}");
        // The body's "café" is escaped in JSON payloads; CEF does not carry the body.
        assert!(msg.is_ascii(), "{msg}");
        if payload != Payload::Cef {
            assert!(msg.contains("caf\\u00e9"));
        }
        let hec = exporter.render(Format::Hec, entry, leaf, common::ORIGIN);
        let v: serde_json::Value = serde_json::from_str(&hec).unwrap();
        assert_eq!(v["host"], "ledger-1");
        assert_eq!(v["index"], "gov");
        assert_eq!(v["sourcetype"], format!("govledger:{}", payload.as_str()));
        assert_eq!(v["fields"]["seq"], "11");
        assert!(hec.ends_with(",\"time\":1767225611.001}"), "{hec}");
        if payload == Payload::Cef {
            assert!(v["event"].as_str().unwrap().starts_with("CEF:0|"));
        } else {
            assert!(v["event"].is_object());
        }
    }
}

#[test]
fn a_non_ascii_cef_payload_is_sent_as_msg_utf8() {
    let entry = common::rejected(
        3,
        "gov.acme.action",
        Some("acme/gateway"),
        b"{}",
        false,
        govledger_schemas::RejectReason::SchemaViolation,
        "field note: caf\u{e9} is not allowed",
        Some("ev-3"),
        Some("acme"),
    );
    let mut opts = common::options();
    opts.syslog.payload = Payload::Cef;
    let exporter = Exporter::new(opts, &RedactionConfig::default()).unwrap();
    let msg = exporter.render(Format::Syslog, &entry, common::leaf_hash(3), common::ORIGIN);
    assert!(msg.contains("] \u{feff}CEF:0|"), "{msg}");
    assert!(msg.contains("caf\u{e9}"));
    opts = common::options();
    opts.syslog.payload = Payload::Jsonl;
    let exporter = Exporter::new(opts, &RedactionConfig::default()).unwrap();
    let msg = exporter.render(Format::Syslog, &entry, common::leaf_hash(3), common::ORIGIN);
    assert!(msg.is_ascii() && !msg.contains('\u{feff}'), "{msg}");
}
