//! Fold benchmark (issue 4): rebuilding the projected state from the log, beside a
//! raw RocksDB scan of the same entries, in the same run.
//!
//! `cargo bench -p govledger-ingest --bench fold`. Environment:
//! `GOVLEDGER_BENCH_ENTRIES` (default 1,000,000), `GOVLEDGER_BENCH_DIR` (keep and
//! reuse the ledger there instead of a temporary one), `GOVLEDGER_BENCH_FOLD_ONLY`
//! (set: stop after the fold rounds, for profiling them alone),
//! `GOVLEDGER_BENCH_ONE_THREAD` (set: print only the one-thread rows, which take
//! seconds, so that two builds can be compared in many alternating runs),
//! `GOVLEDGER_BENCH_ROUNDS` (default 3: how many rounds of scan and folds).
//!
//! Prints medians of the alternating rounds: the raw scan (entries/s, each entry
//! copied out, as `LogStore::scan_entries` gives them), and the fold as replays run
//! it (`Admission::replay_pipelined`: read and decode each entry and its accepted
//! body on 2 or 1 workers, fold in order into the key ring, gates,
//! flows, budgets and detector) as entries/s and as a ratio to the scan, then the
//! same with the state digest of the folded state computed from cold caches (what a
//! first checkpoint after the fold costs); strict body decoding beside serde_json
//! on the same bodies; the borrowed entry decoder beside the fold's own reader of
//! entries (`decode_fold_leaf`) on the same entries, and the fold proper of their
//! events on one thread (what the folding thread does: state and detector)
//! beside that reader. Then the snapshot of the
//! final state: its size, encode and synced write times, and the restore (read
//! back from RocksDB, check, decode) beside the fold it replaces.

mod support;
use support::{env_u64, median, print_cpu_per_entry, rounds, timed_with_cpu};

use govledger_ingest::gen::admit_generated;
use govledger_ingest::{Admission, GenOptions, Generator, LeafReader, StoredLeaves};
use govledger_ledger::store::{LogStore, OpenMode, RocksStore};
use govledger_ledger::{Ledger, LedgerError};
use govledger_projections::{Detector, State};
use govledger_schemas::DecodeLimits;
use std::time::{Duration, Instant};

fn main() {
    govledger_ingest::no_huge_pages();
    let n = env_u64("GOVLEDGER_BENCH_ENTRIES", 1_000_000);
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = std::env::var("GOVLEDGER_BENCH_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| tmp.path().join("fold"));
    let opts = GenOptions {
        events: n,
        seed: 3,
        tenants: 8,
        ..GenOptions::default()
    };
    let trust = Generator::new(opts.clone()).trust();
    let fresh = !dir.join("CURRENT").exists();
    let ledger = if fresh {
        let store = RocksStore::open(&dir, OpenMode::Create).expect("store");
        let mut ledger = Ledger::create(store, "bench.govledger/fold").expect("ledger");
        let t = Instant::now();
        admit_generated(&mut ledger, opts, 1024, &mut |_, _| {}).expect("admit");
        println!(
            "built a ledger of {} entries through admission in {:.1} s",
            ledger.size(),
            t.elapsed().as_secs_f64()
        );
        ledger
    } else {
        Ledger::open(RocksStore::open(&dir, OpenMode::ReadWrite).expect("store")).expect("ledger")
    };
    let size = ledger.size();
    if std::env::var_os("GOVLEDGER_BENCH_ONE_THREAD").is_some() {
        one_thread_rows(&ledger, &trust);
        return;
    }

    let scan = || {
        let t = Instant::now();
        let mut bytes = 0usize;
        for item in ledger.store().scan_entries(0) {
            bytes += item.expect("scan").1.len();
        }
        assert!(bytes > 0);
        t.elapsed()
    };
    // The production path (`govledger_replay::fold`): stored leaves read, decoded
    // and folded as a pipeline over `threads` decoding workers.
    let fold_all = |threads: usize| {
        let mut adm = Admission::new(&trust, DecodeLimits::default()).expect("admission");
        adm.set_verify_threads(threads);
        let open = || -> Box<dyn LeafReader<LedgerError> + '_> {
            Box::new(StoredLeaves::new(ledger.store()))
        };
        adm.replay_pipelined(
            0..size,
            &open,
            |seq, e| panic!("entry {seq} does not decode: {e}"),
            &mut |_| {},
        )
        .expect("scan");
        assert_eq!(adm.entries_folded(), size);
        adm
    };
    // The fold, and the fold with the digest of its state: wall-clock times, and
    // the CPU time of all threads over the fold alone.
    let timed = |f: &dyn Fn() -> Admission| {
        let t = Instant::now();
        let (mut adm, folded, cpu) = timed_with_cpu(f);
        std::hint::black_box(adm.state_digest());
        (folded, t.elapsed(), cpu)
    };
    let (mut scans, mut folds, mut folds1, mut digested) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut cpus, mut cpus1) = (Vec::new(), Vec::new());
    // The state to snapshot: the fold of the whole log.
    let mut full = fold_all(2);
    let rounds = rounds();
    for _ in 0..rounds {
        scans.push(scan());
        let (f, d, cpu) = timed(&|| fold_all(2));
        folds.push(f);
        digested.push(d);
        cpus.push(cpu);
        let (f1, _, cpu1) = timed(&|| fold_all(1));
        folds1.push(f1);
        cpus1.push(cpu1);
    }
    let (s, f, f1, fd) = (
        median(scans),
        median(folds.clone()),
        median(folds1.clone()),
        median(digested),
    );
    let rate = |d: Duration| size as f64 / d.as_secs_f64();
    println!("fold bench: {size} entries (median of {rounds} alternating rounds)");
    println!(
        "{:<60} {:>12.0} entries/s  1.00x",
        "raw RocksDB scan of the entries [baseline]",
        rate(s)
    );
    for (name, d) in [
        ("fold, pipelined: read + decode on 2 workers | fold", f),
        ("fold, pipelined: read + decode on 1 worker | fold", f1),
        (
            "fold on 2 workers, then the state digest from cold caches",
            fd,
        ),
    ] {
        println!(
            "{name:<60} {:>12.0} entries/s  {:.2}x",
            rate(d),
            rate(d) / rate(s)
        );
    }
    // CPU per entry, all threads together, and the cores it kept busy on average.
    let cpu_row = "fold on 2 workers: CPU per entry (all threads)";
    print_cpu_per_entry(cpu_row, 60, &folds, cpus, size);
    let cpu_row = "fold on 1 worker: CPU per entry (all threads)";
    print_cpu_per_entry(cpu_row, 60, &folds1, cpus1, size);
    if std::env::var_os("GOVLEDGER_BENCH_FOLD_ONLY").is_some() {
        return;
    }

    one_thread_rows(&ledger, &trust);

    let (mut encodes, mut writes, mut restores) = (Vec::new(), Vec::new(), Vec::new());
    let mut len = 0;
    for _ in 0..3 {
        let t = Instant::now();
        let mut encoded = full.encode_snapshot();
        encodes.push(t.elapsed());
        len = encoded.len();
        let t = Instant::now();
        let mut w = ledger.snapshot_writer(size).expect("writer");
        encoded.write(&mut w).expect("write");
        w.finish(&[]).expect("finish");
        writes.push(t.elapsed());
        drop(encoded);
        let t = Instant::now();
        let back = ledger.snapshot(size).expect("read").expect("stored");
        let mut adm = Admission::from_snapshot(&back, DecodeLimits::default()).expect("decode");
        restores.push(t.elapsed());
        assert_eq!(adm.state_digest(), full.state_digest());
    }
    let (e, w, r) = (median(encodes), median(writes), median(restores));
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "snapshot of the state after {size} entries: {len} bytes ({:.1} MiB)",
        len as f64 / (1 << 20) as f64
    );
    println!(
        "{:<60} {:>9.1} ms",
        "encode the parts into memory (what reads the state)",
        ms(e)
    );
    println!(
        "{:<60} {:>9.1} ms",
        "sort, frame, hash, write into RocksDB (1 MiB chunks, synced)",
        ms(w)
    );
    println!(
        "{:<60} {:>9.1} ms  {:.1}x faster than the fold on 2 threads",
        "restore (read, check checksum and digest, decode)",
        ms(r),
        f.as_secs_f64() / r.as_secs_f64()
    );
}

/// A named way of decoding one item.
type Row<'a> = (&'a str, &'a dyn Fn(&[u8]));

/// Runs each of `rows` over every one of `items`, in `rounds` alternating rounds,
/// and prints under `title` the median time per item of each, and its ratio to
/// the first row's. Returns the last row's median, in microseconds per item.
fn compare_per_item(
    title: &str,
    unit: &str,
    items: &[Vec<u8>],
    rounds: usize,
    rows: &[Row<'_>],
) -> f64 {
    let mut times = vec![Vec::new(); rows.len()];
    for _ in 0..rounds {
        for ((_, f), t) in rows.iter().zip(&mut times) {
            let start = Instant::now();
            items.iter().for_each(|i| f(i));
            t.push(start.elapsed());
        }
    }
    let per = |d: Duration| d.as_secs_f64() * 1e6 / items.len() as f64;
    let medians: Vec<f64> = times.into_iter().map(|t| per(median(t))).collect();
    println!("{title}");
    for ((name, _), m) in rows.iter().zip(&medians) {
        println!("{name:<60} {m:>9.3} us/{unit}  {:.2}x", m / medians[0]);
    }
    medians[rows.len() - 1]
}

/// The one-thread rows, over the first 200,000 stored entries (read once): the
/// strict body decoder beside serde_json parsing the same bodies into a `Value`
/// and only checking their syntax; the borrowed entry decoder beside the fold's
/// own reader (the same checks; the strings it does not read are only checked to
/// be UTF-8); then the folding thread's own work, as a ratio to that reader.
fn one_thread_rows(ledger: &Ledger<RocksStore>, trust: &govledger_ingest::Trust) {
    let leaves: Vec<Vec<u8>> = ledger
        .store()
        .scan_entries(0)
        .take(200_000)
        .map(|item| item.expect("scan").1)
        .collect();
    let entries: Vec<govledger_schemas::Entry> = leaves
        .iter()
        .map(|l| govledger_schemas::decode_entry(l).expect("entry"))
        .collect();
    let bodies: Vec<Vec<u8>> = entries.iter().filter_map(|e| e.body.clone()).collect();
    let limits = DecodeLimits::default();
    compare_per_item(
        &format!("body decoding, {} accepted bodies, 1 thread:", bodies.len()),
        "body",
        &bodies,
        3,
        &[
            (
                "serde_json syntax check only (IgnoredAny) [baseline]",
                &|b| {
                    serde_json::from_slice::<serde::de::IgnoredAny>(b).expect("json");
                },
            ),
            ("serde_json::Value", &|b| {
                std::hint::black_box(serde_json::from_slice::<serde_json::Value>(b).expect("json"));
            }),
            ("strict decode_body (what folds run)", &|b| {
                std::hint::black_box(govledger_schemas::decode_body(b, &limits).expect("body"));
            }),
        ],
    );
    let read_leaf_us = compare_per_item(
        &format!(
            "entry decoding (body checked, not parsed), {} entries, 1 thread:",
            leaves.len()
        ),
        "entry",
        &leaves,
        5,
        &[
            ("decode_entry_ref [baseline]", &|l| {
                std::hint::black_box(govledger_schemas::decode_entry_ref(l).expect("entry"));
            }),
            ("decode_fold_leaf (what folds run)", &|l| {
                std::hint::black_box(govledger_schemas::decode_fold_leaf(l).expect("entry"));
            }),
        ],
    );
    // The folding thread's own work on one thread: the events of the same
    // entries, decoded beforehand, folded in log order into a fresh state and
    // detector (as the pipeline's folding thread does each decoded round),
    // beside the reading of those entries just measured.
    let events: Vec<(u64, bool, govledger_schemas::Envelope)> = entries
        .iter()
        .filter_map(|e| {
            let accepted = matches!(e.verdict, govledger_schemas::Verdict::Accepted { .. });
            let env = govledger_ingest::fold_input(e).expect("body")?;
            Some((e.time_ns, accepted, env))
        })
        .collect();
    let ring = trust.ring().expect("ring");
    let mut times = Vec::new();
    for _ in 0..5 {
        let (mut state, mut detector) = (State::new(ring.clone()), Detector::default());
        let t = Instant::now();
        for (time_ns, accepted, env) in &events {
            if *accepted {
                std::hint::black_box(state.apply(env, *time_ns));
                std::hint::black_box(detector.observe(env, *time_ns));
            } else {
                std::hint::black_box(state.refuse(env, *time_ns));
            }
        }
        times.push(t.elapsed());
    }
    let fold_us = median(times).as_secs_f64() * 1e6 / leaves.len() as f64;
    println!(
        "{:<60} {fold_us:>9.3} us/entry  {:.2}x",
        "then the fold proper (state, detector) of their events",
        fold_us / read_leaf_us
    );
}
