//! How often the pipeline syncs a sink and commits its position: after every
//! batch by default, once per `Sink::sync_every` bytes for sinks that allow it
//! (files), and always before a run returns, whether it finished or was stopped.

use govledger_export::cursor::Position;
use govledger_export::pipeline::Pipeline;
use govledger_export::sink::{Sink, SinkError};
use govledger_export::{ExportOptions, Exporter, Format, RedactionConfig};
use govledger_ingest::gen::admit_generated;
use govledger_ingest::GenOptions;
use govledger_ledger::store::{OpenMode, RocksStore};
use govledger_ledger::Ledger;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

const ENTRIES: u64 = 3_000;
const BATCH: usize = 100;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Call {
    Deliver(u64),
    Sync,
}

/// Records every delivery and sync; sets `stop` after `stop_after` deliveries.
struct Recorder {
    calls: Arc<Mutex<Vec<Call>>>,
    every: u64,
    stop_after: Option<(usize, Arc<AtomicBool>)>,
    len: u64,
}

impl Sink for Recorder {
    fn deliver(&mut self, buf: &[u8], _stop: &AtomicBool) -> Result<(), SinkError> {
        let mut calls = self.calls.lock().unwrap();
        calls.push(Call::Deliver(buf.len() as u64));
        self.len += buf.len() as u64;
        if let Some((n, stop)) = &self.stop_after {
            let delivered = calls
                .iter()
                .filter(|c| matches!(c, Call::Deliver(_)))
                .count();
            if delivered == *n {
                stop.store(true, Ordering::Relaxed);
            }
        }
        Ok(())
    }
    fn sync(&mut self) -> Result<u64, SinkError> {
        self.calls.lock().unwrap().push(Call::Sync);
        Ok(self.len)
    }
    fn sync_every(&self) -> u64 {
        self.every
    }
}

fn ledger(dir: &Path) {
    let store = RocksStore::open(dir, OpenMode::Create).unwrap();
    let mut ledger = Ledger::create(store, "test.govledger/sync").unwrap();
    let opts = GenOptions {
        events: ENTRIES,
        seed: 11,
        tenants: 2,
        ..GenOptions::default()
    };
    admit_generated(&mut ledger, opts, 512, &mut |_, _| {}).unwrap();
}

/// Runs an export of the whole ledger into a [`Recorder`]; returns its calls, the
/// position reached and whether the run was stopped.
fn run(dir: &Path, every: u64, stop_after: Option<usize>) -> (Vec<Call>, Position, bool) {
    let calls = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let sink = Recorder {
        calls: calls.clone(),
        every,
        stop_after: stop_after.map(|n| (n, stop.clone())),
        len: 0,
    };
    let exporter = Exporter::new(ExportOptions::default(), &RedactionConfig::default()).unwrap();
    let start = Position {
        next_seq: 0,
        sink_len: 0,
        last_leaf: [0; 32],
    };
    let mut p = Pipeline::new(exporter, Format::Jsonl, Box::new(sink), None, start, BATCH);
    let stats = p.run(dir, None, &stop, &mut |_| {}).unwrap();
    let calls = calls.lock().unwrap().clone();
    (calls, p.position(), stats.stopped)
}

fn delivered(calls: &[Call]) -> u64 {
    calls
        .iter()
        .map(|c| match c {
            Call::Deliver(n) => *n,
            Call::Sync => 0,
        })
        .sum()
}

#[test]
fn sinks_sync_after_every_batch_by_default_and_files_per_threshold_of_bytes() {
    let dir = tempfile::tempdir().unwrap();
    ledger(dir.path());

    // Default: deliver, sync, deliver, sync, ...
    let (calls, pos, stopped) = run(dir.path(), 0, None);
    assert!(!stopped);
    assert_eq!(pos.next_seq, ENTRIES);
    let batches = ENTRIES.div_ceil(BATCH as u64) as usize;
    assert_eq!(calls.len(), 2 * batches);
    for pair in calls.chunks(2) {
        assert!(matches!(pair, [Call::Deliver(_), Call::Sync]), "{pair:?}");
    }
    let total = delivered(&calls);
    assert_eq!(pos.sink_len, total);

    // A threshold: a sync as soon as the bytes since the last one reach it, and one
    // at the end for the rest.
    let every = total / 7;
    let (calls, pos, _) = run(dir.path(), every, None);
    assert_eq!(pos.next_seq, ENTRIES);
    assert_eq!(pos.sink_len, total);
    assert_eq!(calls.last(), Some(&Call::Sync));
    let groups: Vec<&[Call]> = calls.split(|c| *c == Call::Sync).collect();
    // `split` leaves an empty group after the final sync.
    let groups = &groups[..groups.len() - 1];
    assert!(groups.len() >= 5, "{} syncs", groups.len());
    for (i, g) in groups.iter().enumerate() {
        let bytes = delivered(g);
        let before_last = bytes - delivered(&g[g.len() - 1..]);
        // Not synced earlier than needed...
        assert!(before_last < every, "group {i}: {g:?}");
        // ...nor later, except the final sync at the end of the run.
        assert!(bytes >= every || i == groups.len() - 1, "group {i}: {g:?}");
    }

    // Never syncing on size: exactly one sync, after the last delivery.
    let (calls, pos, _) = run(dir.path(), u64::MAX, None);
    assert_eq!(pos.next_seq, ENTRIES);
    assert_eq!(calls.iter().filter(|c| **c == Call::Sync).count(), 1);
    assert_eq!(calls.last(), Some(&Call::Sync));
}

#[test]
fn a_stopped_run_syncs_and_commits_what_it_delivered_before_returning() {
    let dir = tempfile::tempdir().unwrap();
    ledger(dir.path());
    let (calls, pos, stopped) = run(dir.path(), u64::MAX, Some(5));
    assert!(stopped);
    assert_eq!(
        calls
            .iter()
            .filter(|c| matches!(c, Call::Deliver(_)))
            .count(),
        5
    );
    assert_eq!(calls.last(), Some(&Call::Sync));
    assert_eq!(pos.next_seq, 5 * BATCH as u64);
    assert_eq!(pos.sink_len, delivered(&calls));
}
