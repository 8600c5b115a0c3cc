//! `cargo bench -p govledger-ledger --bench ledger` (release profile).
//!
//! Measures, in one run and on the same disk, against baselines measured beside them:
//! - append throughput at batch sizes 1, 64 and 1,024, against a raw RocksDB
//!   WriteBatch + fsync of the same leaf bytes (no tree, no index);
//! - inclusion-proof latency at 1M entries (read from RocksDB through the tree);
//! - `verify` throughput without signature checks, against a raw RocksDB scan of the
//!   same entries.
//!
//! Figures are printed as ratios to their baselines; absolute numbers depend on the
//! disk. Set `GOVLEDGER_BENCH_ENTRIES` to change the 1M.

use govledger_ledger::note::NoteSigner;
use govledger_ledger::store::{MemStore, OpenMode, RocksStore};
use govledger_ledger::tree;
use govledger_ledger::verify::{verify, VerifyOptions};
use govledger_ledger::Ledger;
use govledger_schemas::{encode_entry, Entry, Seq, Verdict};
use std::time::{Duration, Instant};

fn entry(i: u64) -> Entry {
    // A realistic accepted entry: a ~400-byte body, headers and signature.
    let body = format!(
        "{{\"v\":1,\"id\":\"evt-{i:09}\",\"type\":\"action.proposed\",\"tenant\":\"acme\",\
         \"proposal\":\"p-{i}\",\"session\":\"s-{}\",\"actor\":{{\"user\":\"alice\",\"agent\":\"agent-7\"}},\
         \"action\":\"payments.refund\",\"resource\":\"svc:payments\",\
         \"args_digest\":\"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\",\
         \"risk_tier\":\"high\"}}",
        i / 10
    )
    .into_bytes();
    Entry {
        seq: Seq(0),
        stream_seq: i + 1,
        time_ns: 1_767_225_600_000_000_000 + i * 1_000_000,
        subject: "gov.acme.action".into(),
        key_id: Some("acme/gateway".into()),
        signature: Some(vec![0x5a; 64]),
        body_sha256: govledger_schemas::body_digest(&body),
        body_len: body.len() as u64,
        body: Some(body),
        verdict: Verdict::Accepted {
            event_id: format!("evt-{i:09}"),
            event_type: "action.proposed".into(),
            tenant: "acme".into(),
        },
    }
}

fn raw_append(dir: &std::path::Path, batch: u64, total: u64) -> Duration {
    let mut opts = rocksdb::Options::default();
    opts.create_if_missing(true);
    opts.set_compression_type(rocksdb::DBCompressionType::Lz4);
    let db = rocksdb::DB::open(&opts, dir).unwrap();
    let mut wo = rocksdb::WriteOptions::default();
    wo.set_sync(true);
    let start = Instant::now();
    let mut i = 0;
    while i < total {
        let mut wb = rocksdb::WriteBatch::default();
        for j in i..(i + batch).min(total) {
            let mut e = entry(j);
            e.seq = Seq(j);
            wb.put(j.to_be_bytes(), encode_entry(&e));
        }
        db.write_opt(wb, &wo).unwrap();
        i += batch;
    }
    start.elapsed()
}

fn ledger_append(dir: &std::path::Path, batch: u64, total: u64) -> Duration {
    let store = RocksStore::open(dir, OpenMode::Create).unwrap();
    let mut ledger = Ledger::create(store, "bench/log").unwrap();
    let start = Instant::now();
    let mut i = 0;
    while i < total {
        let end = (i + batch).min(total);
        ledger
            .append(&mut (i..end).map(entry).collect::<Vec<_>>(), Some(end))
            .unwrap();
        i = end;
    }
    start.elapsed()
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn per_sec(n: u64, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}

fn main() {
    // `cargo bench` passes `--bench`; ignore arguments.
    let big: u64 = std::env::var("GOVLEDGER_BENCH_ENTRIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let tmp =
        tempfile::tempdir_in(std::env::var("GOVLEDGER_BENCH_DIR").unwrap_or_else(|_| ".".into()))
            .or_else(|_| tempfile::tempdir())
            .unwrap();
    println!(
        "govledger ledger benchmark (entries of ~{} leaf bytes)",
        encode_entry(&entry(0)).len()
    );
    println!();
    let only_memory = std::env::var("GOVLEDGER_BENCH_ONLY").is_ok_and(|v| v == "memory");
    println!("append (each batch one synced WriteBatch; medians of 5 alternating rounds)");
    println!(
        "{:>8} {:>14} {:>14} {:>8}",
        "batch", "raw ent/s", "ledger ent/s", "ratio"
    );
    // Five rounds per batch size, alternating which side goes first, each on a fresh
    // database; the medians are compared, so one slow fsync or a background flush
    // of the previous round does not decide the ratio.
    for (batch, total) in [(1u64, 1_000u64), (64, 32_000), (1024, 102_400)] {
        if only_memory {
            break;
        }
        let (mut raws, mut leds) = (Vec::new(), Vec::new());
        for round in 0..5 {
            let raw_dir = tmp.path().join(format!("raw-{batch}-{round}"));
            let led_dir = tmp.path().join(format!("led-{batch}-{round}"));
            if round % 2 == 0 {
                raws.push(per_sec(total, raw_append(&raw_dir, batch, total)));
                leds.push(per_sec(total, ledger_append(&led_dir, batch, total)));
            } else {
                leds.push(per_sec(total, ledger_append(&led_dir, batch, total)));
                raws.push(per_sec(total, raw_append(&raw_dir, batch, total)));
            }
            let _ = std::fs::remove_dir_all(&raw_dir);
            let _ = std::fs::remove_dir_all(&led_dir);
        }
        let (r, l) = (median(&mut raws), median(&mut leds));
        println!("{batch:>8} {r:>14.0} {l:>14.0} {:>7.1}%", 100.0 * l / r);
    }
    // The ledger's own CPU work (encode, hash, tree nodes, index) without RocksDB.
    let mut mem = Ledger::create(MemStore::new(), "bench/log").unwrap();
    let start = Instant::now();
    let mut i = 0;
    while i < 204_800 {
        mem.append(&mut (i..i + 1024).map(entry).collect::<Vec<_>>(), Some(i))
            .unwrap();
        i += 1024;
    }
    println!(
        "    (ledger logic alone, in memory, batch 1024: {:.0} entries/s)",
        per_sec(204_800, start.elapsed())
    );
    if only_memory {
        // For profiling the ledger's CPU work: `GOVLEDGER_BENCH_ONLY=memory perf record ...`
        return;
    }
    println!();

    // A big log for proofs and verify.
    let dir = tmp.path().join("big");
    let d = ledger_append(&dir, 4096, big);
    println!(
        "built a {big}-entry log in {:.1}s ({:.0} entries/s)",
        d.as_secs_f64(),
        per_sec(big, d)
    );
    let store = RocksStore::open(&dir, OpenMode::ReadWrite).unwrap();
    let mut ledger = Ledger::open(store).unwrap();
    let signer = NoteSigner::from_seed("bench/log", [1; 32]).unwrap();
    let cp = ledger.checkpoint(&signer, None).unwrap();

    // Inclusion proofs for pseudo-random leaves, checked against the root.
    let n = 20_000u64;
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let mut seqs = Vec::with_capacity(n as usize);
    for _ in 0..n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        seqs.push(x % big);
    }
    let start = Instant::now();
    let mut total_hashes = 0;
    for &s in &seqs {
        total_hashes += ledger.inclusion_proof(s, big).unwrap().len();
    }
    let proof_time = start.elapsed();
    let s = seqs[0];
    let p = ledger.inclusion_proof(s, big).unwrap();
    tree::verify_inclusion(
        &ledger.leaf_hash(s).unwrap(),
        s,
        big,
        &p,
        &cp.checkpoint.root,
    )
    .unwrap();
    // Baseline: one random point read of a leaf from RocksDB.
    let start = Instant::now();
    for &s in &seqs {
        std::hint::black_box(ledger.store_entry(s));
    }
    let read_time = start.elapsed();
    let per_proof = proof_time.as_secs_f64() * 1e6 / n as f64;
    let per_read = read_time.as_secs_f64() * 1e6 / n as f64;
    println!(
        "inclusion proof at {big} entries: {per_proof:.1} µs each ({} hashes avg), \
         {:.1}x one random entry read ({per_read:.1} µs)",
        total_hashes / n as usize,
        per_proof / per_read
    );

    // verify vs raw scan.
    let start = Instant::now();
    let mut bytes = 0usize;
    for item in ledger.store_scan() {
        bytes += item.1.len();
    }
    let scan = start.elapsed();
    std::hint::black_box(bytes);
    let opts = VerifyOptions {
        check_signatures: false,
        ..VerifyOptions::default()
    };
    let start = Instant::now();
    let report = verify(&ledger, &signer.verifier(), &opts, &mut |_| {}).unwrap();
    let ver = start.elapsed();
    assert!(report.ok());
    println!(
        "verify (no signatures): {:.0} entries/s; raw scan {:.0} entries/s; ratio {:.1}%",
        per_sec(big, ver),
        per_sec(big, scan),
        100.0 * scan.as_secs_f64() / ver.as_secs_f64()
    );
}

trait BenchReads {
    fn store_entry(&self, seq: u64) -> Option<Vec<u8>>;
    fn store_scan(&self) -> Box<dyn Iterator<Item = (u64, Vec<u8>)> + '_>;
}

impl BenchReads for Ledger<RocksStore> {
    fn store_entry(&self, seq: u64) -> Option<Vec<u8>> {
        use govledger_ledger::store::LogStore;
        self.store().entry(seq).unwrap()
    }
    fn store_scan(&self) -> Box<dyn Iterator<Item = (u64, Vec<u8>)> + '_> {
        use govledger_ledger::store::LogStore;
        Box::new(self.store().scan_entries(0).map(|r| r.unwrap()))
    }
}
