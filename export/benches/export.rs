//! Export benchmark (issue 6): records/s per format to a file, beside a raw scan of
//! the same entries, in the same run.
//!
//! `cargo bench -p govledger-export --bench export`. Environment:
//! `GOVLEDGER_BENCH_ENTRIES` (default 200,000), `GOVLEDGER_BENCH_DIR` (keep and
//! reuse the ledger there instead of a temporary one), `GOVLEDGER_BENCH_FORMATS`
//! (a comma-separated list of formats; default all).
//!
//! Prints medians of 3 alternating rounds: the raw scan (read-only RocksDB open and
//! scan of the entries, no decoding) and, per format, the whole export pipeline to
//! a file (read-only open, scan, decode, leaf hash, redaction, rendering, framing,
//! buffered writes, an fsync per 16 MiB on a second thread and at the end, as
//! `govledger export --format F --to FILE` runs it) as records/s and as the ratio
//! of its time to the scan's.

#[path = "../../ingest/benches/support/mod.rs"]
mod support;
use support::{env_u64, median};

use govledger_export::cursor::Position;
use govledger_export::pipeline::{open_ledger_ro, Pipeline};
use govledger_export::sink::FileSink;
use govledger_export::{ExportOptions, Exporter, Format, RedactionConfig};
use govledger_ingest::gen::admit_generated;
use govledger_ingest::GenOptions;
use govledger_ledger::store::{LogStore, OpenMode, RocksStore};
use govledger_ledger::Ledger;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

fn build(dir: &Path, n: u64) {
    let opts = GenOptions {
        events: n,
        seed: 6,
        tenants: 8,
        ..GenOptions::default()
    };
    let store = RocksStore::open(dir, OpenMode::Create).expect("store");
    let mut ledger = Ledger::create(store, "bench.govledger/export").expect("ledger");
    admit_generated(&mut ledger, opts, 1024, &mut |_, _| {}).expect("admit");
}

/// Opens the ledger read-only and reads every entry's bytes: the floor.
fn scan(dir: &Path) -> (Duration, u64, u64) {
    let t = Instant::now();
    let ledger = open_ledger_ro(dir).expect("open");
    let (mut n, mut bytes) = (0u64, 0u64);
    for item in ledger.store().scan_entries(0) {
        let (_, leaf) = item.expect("scan");
        n += 1;
        bytes += leaf.len() as u64;
    }
    (t.elapsed(), n, bytes)
}

/// The export pipeline, as the command runs it for a one-off file export.
fn export(dir: &Path, out: &Path, format: Format) -> (Duration, u64) {
    let t = Instant::now();
    let exporter =
        Exporter::new(ExportOptions::default(), &RedactionConfig::default()).expect("exporter");
    let sink = FileSink::create(out).expect("file");
    let start = Position {
        next_seq: 0,
        sink_len: 0,
        last_leaf: [0; 32],
    };
    let mut p = Pipeline::new(exporter, format, Box::new(sink), None, start, 1000);
    let stats = p
        .run(dir, None, &AtomicBool::new(false), &mut |_| {})
        .expect("export");
    let elapsed = t.elapsed();
    assert!(stats.exported > 0, "nothing exported");
    (
        elapsed,
        std::fs::metadata(out).map(|m| m.len()).unwrap_or(0),
    )
}

fn main() {
    govledger_ingest::no_huge_pages();
    let n = env_u64("GOVLEDGER_BENCH_ENTRIES", 200_000);
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = std::env::var("GOVLEDGER_BENCH_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| tmp.path().join("export"));
    if !dir.join("CURRENT").exists() {
        let t = Instant::now();
        build(&dir, n);
        println!(
            "built a ledger of {n} entries through admission in {:.1} s",
            t.elapsed().as_secs_f64()
        );
    }
    let out = tmp.path().join("out");
    // GOVLEDGER_BENCH_FORMATS=ocsf,jsonl picks formats (default: all).
    let formats: Vec<Format> = match std::env::var("GOVLEDGER_BENCH_FORMATS") {
        Ok(list) => list
            .split(',')
            .map(|f| f.trim().parse().expect("GOVLEDGER_BENCH_FORMATS"))
            .collect(),
        Err(_) => Format::ALL.to_vec(),
    };
    let mut scans = Vec::new();
    let mut runs: Vec<Vec<Duration>> = vec![Vec::new(); formats.len()];
    let mut sizes = vec![0u64; formats.len()];
    let mut entries = 0;
    let mut leaf_bytes = 0;
    for _round in 0..3 {
        let (d, count, bytes) = scan(&dir);
        scans.push(d);
        entries = count;
        leaf_bytes = bytes;
        for (i, f) in formats.iter().enumerate() {
            let (d, size) = export(&dir, &out, *f);
            runs[i].push(d);
            sizes[i] = size;
        }
    }
    let scan = median(scans);
    let rate = |d: Duration| entries as f64 / d.as_secs_f64();
    println!(
        "{entries} entries ({:.0} MiB of leaves), medians of 3 alternating rounds",
        leaf_bytes as f64 / (1 << 20) as f64
    );
    println!(
        "  raw scan           {:>10.0} entries/s  ({:.3} s)",
        rate(scan),
        scan.as_secs_f64()
    );
    for (i, f) in formats.iter().enumerate() {
        let d = median(runs[i].clone());
        println!(
            "  export {:<8}    {:>10.0} records/s  ({:.3} s, {:.1}x the scan's time, {:.0} MiB written)",
            f.as_str(),
            rate(d),
            d.as_secs_f64(),
            d.as_secs_f64() / scan.as_secs_f64(),
            sizes[i] as f64 / (1 << 20) as f64
        );
    }
}
