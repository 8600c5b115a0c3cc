//! Golden files: the fixed fixture entries rendered in every format must match
//! `tests/golden/<format>.<ext>` byte for byte. `GOVLEDGER_BLESS=1 cargo test` rewrites
//! them; review the diff before committing.

mod common;

use std::path::PathBuf;

use govledger_export::{octet_counting_frame, Exporter, Format, Record};

fn golden_path(format: Format) -> PathBuf {
    let ext = match format {
        Format::Jsonl | Format::Ocsf | Format::Ecs | Format::Hec => "jsonl",
        Format::Cef => "cef",
        Format::Syslog => "log",
    };
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(format!("{}.{ext}", format.as_str()))
}

fn records(exporter: &Exporter) -> Vec<Record> {
    common::golden_entries()
        .iter()
        .map(|e| exporter.record(e, common::leaf_hash(e.seq.0), common::ORIGIN))
        .collect()
}

fn render_all(exporter: &Exporter, format: Format) -> String {
    let mut out = String::new();
    for r in records(exporter) {
        out.push_str(&exporter.render_record(format, &r));
        out.push('\n');
    }
    out
}

#[test]
fn golden_files_match() {
    let exporter = Exporter::new(common::options(), &common::redaction()).unwrap();
    let bless = std::env::var_os("GOVLEDGER_BLESS").is_some_and(|v| v == "1");
    let mut failures = Vec::new();
    for &format in Format::ALL {
        let got = render_all(&exporter, format);
        let path = golden_path(format);
        if bless {
            std::fs::write(&path, &got).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "{}: {e}; run GOVLEDGER_BLESS=1 cargo test --release -p govledger-export --test golden",
                path.display()
            )
        });
        if got != want {
            let line = got
                .lines()
                .zip(want.lines())
                .position(|(a, b)| a != b)
                .map_or_else(|| "line count".to_owned(), |i| format!("line {}", i + 1));
            failures.push(format!("{} differs at {line}", path.display()));
        }
    }
    assert!(
        failures.is_empty(),
        "golden files differ (GOVLEDGER_BLESS=1 rewrites them):\n{}",
        failures.join("\n")
    );
}

#[test]
fn every_record_carries_seq_leaf_and_tenant() {
    let exporter = Exporter::new(common::options(), &common::redaction()).unwrap();
    for r in records(&exporter) {
        let leaf = r.leaf_hash_hex();
        assert_eq!(leaf.len(), 64);
        assert!(leaf
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
        for &format in Format::ALL {
            let out = exporter.render_record(format, &r);
            assert!(out.contains(&leaf), "{format} seq {} lacks leaf", r.seq);
            let seq_forms = [
                format!("\"seq\":{}", r.seq),
                format!("\"seq\":\"{}\"", r.seq),
                format!("seq=\"{}\"", r.seq),
                format!("cn1={}", r.seq),
                format!("\"sequence\":{}", r.seq),
            ];
            assert!(
                seq_forms.iter().any(|f| out.contains(f.as_str())),
                "{format} seq {} lacks seq",
                r.seq
            );
            if let Some(t) = &r.tenant {
                let tenant_forms = [
                    format!("\"tenant\":\"{t}\""),
                    format!("tenant=\"{t}\""),
                    format!("cs1={t}"),
                ];
                assert!(
                    tenant_forms.iter().any(|f| out.contains(f.as_str())),
                    "{format} seq {} lacks tenant",
                    r.seq
                );
            }
        }
    }
}

#[test]
fn rendering_is_deterministic() {
    let a = Exporter::new(common::options(), &common::redaction()).unwrap();
    let b = Exporter::new(common::options(), &common::redaction()).unwrap();
    for &format in Format::ALL {
        assert_eq!(render_all(&a, format), render_all(&b, format), "{format}");
    }
}

#[test]
fn json_formats_parse_and_syslog_frames() {
    let exporter = Exporter::new(common::options(), &common::redaction()).unwrap();
    for r in records(&exporter) {
        for format in [Format::Jsonl, Format::Ocsf, Format::Ecs, Format::Hec] {
            let out = exporter.render_record(format, &r);
            let v: serde_json::Value = serde_json::from_str(&out)
                .unwrap_or_else(|e| panic!("{format} seq {}: {e}: {out}", r.seq));
            assert!(v.is_object());
            assert!(!out.contains('\n'));
        }
        let msg = exporter.render_record(Format::Syslog, &r);
        assert!(msg.is_ascii(), "JSON payload must keep MSG ASCII: {msg}");
        assert!(!msg.contains('\n'));
        let framed = octet_counting_frame(msg.as_bytes());
        let (len, rest) = std::str::from_utf8(&framed)
            .unwrap()
            .split_once(' ')
            .unwrap();
        assert_eq!(len.parse::<usize>().unwrap(), rest.len());
        let cef = exporter.render_record(Format::Cef, &r);
        assert!(cef.starts_with("CEF:0|govledger|govledger|0.1.0|"));
        assert!(!cef.contains('\n') && !cef.contains('\r'));
    }
}

#[test]
fn fixtures_cover_every_event_type_and_some_rejections() {
    let entries = common::golden_entries();
    for t in govledger_schemas::EventType::ALL {
        assert!(
            entries.iter().any(|e| e.event_type() == Some(t.as_str())),
            "no fixture for {t}"
        );
    }
    assert!(entries.iter().filter(|e| !e.is_accepted()).count() >= 4);
}
