//! The JSON formats are written straight into the output, member by member: every
//! output must be canonical, i.e. what the canonical writer makes of its parse
//! (keys sorted, no whitespace), and the `*_value` functions must be its parse.

mod common;

use govledger_export::json;
use govledger_export::syslog::payload_text;
use govledger_export::{
    ecs_value, jsonl_value, ocsf_value, to_ecs, to_hec, to_jsonl, to_ocsf, ExportOptions, Exporter,
    HecOptions, Payload, Record,
};
use serde_json::Value;

fn assert_canonical(what: &str, text: &str) {
    let parsed: Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("{what}: {e}"));
    assert_eq!(
        json::to_string(&parsed, false),
        text,
        "{what} is not canonical"
    );
}

fn check(record: &Record, opts: &ExportOptions) {
    let seq = record.seq;
    for (name, text, value) in [
        ("jsonl", to_jsonl(record), jsonl_value(record)),
        ("ocsf", to_ocsf(record, opts), ocsf_value(record, opts)),
        ("ecs", to_ecs(record, opts), ecs_value(record, opts)),
    ] {
        assert_canonical(&format!("{name} of {seq}"), &text);
        assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), value);
    }
    for payload in [Payload::Jsonl, Payload::Ocsf, Payload::Ecs, Payload::Cef] {
        for hec in [
            HecOptions {
                payload,
                ..HecOptions::default()
            },
            HecOptions {
                host: Some("h\u{e9}st \"1\"".into()),
                source: Some("src".into()),
                sourcetype: Some("st".into()),
                index: Some("main".into()),
                payload,
            },
        ] {
            let o = ExportOptions {
                hec,
                ..opts.clone()
            };
            let text = to_hec(record, &o);
            // `time` keeps its three decimals, which a JSON writer would drop.
            let (head, _) = text.rsplit_once(",\"time\":").expect("time is last");
            assert_canonical(&format!("hec {payload:?} of {seq}"), &format!("{head}}}"));
        }
        if payload != Payload::Cef {
            let text = payload_text(record, opts, payload);
            assert!(text.is_ascii());
            let parsed: Value = serde_json::from_str(&text).unwrap();
            assert_eq!(json::to_string(&parsed, true), text);
        }
    }
}

#[test]
fn json_outputs_are_canonical() {
    let exporter = Exporter::new(common::options(), &common::redaction()).unwrap();
    let other = ExportOptions {
        vendor: "V\u{e9}ndor \"x\"".into(),
        ..ExportOptions::default()
    };
    for e in common::golden_entries() {
        let leaf = common::leaf_hash(e.seq.0);
        let redacted = exporter.record(&e, leaf, common::ORIGIN);
        let raw = Record::from_entry(&e, leaf, "o\u{1}\u{e9}");
        for opts in [exporter.options(), &other] {
            check(&redacted, opts);
            check(&raw, opts);
        }
    }
}
