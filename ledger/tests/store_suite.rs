//! One suite, run against both stores: the RocksDB store and its in-memory twin.
//! Plus what only the twin can do: fail a chosen commit, and rewrite the whole tree.

use govledger_ledger::checkpoint::StateDigest;
use govledger_ledger::note::NoteSigner;
use govledger_ledger::store::{LogStore, MemStore, OpenMode, RocksStore, SNAPSHOT_CHUNK};
use govledger_ledger::tree::{self, Frontier, NodeId};
use govledger_ledger::verify::{verify, VerifyOptions};
use govledger_ledger::{CursorSource, Ledger, LedgerError};
use govledger_schemas::{encode_entry, Entry, RejectReason, Seq, Verdict};
use proptest::prelude::*;

fn entry(i: u64) -> Entry {
    let body = format!("{{\"n\":{i}}}").into_bytes();
    let verdict = if i % 5 == 4 {
        Verdict::Rejected {
            reason: RejectReason::BadSignature,
            detail: format!("event e{i} rejected"),
            event_id: Some(format!("e{i}")),
            tenant: Some("acme".into()),
        }
    } else {
        Verdict::Accepted {
            event_id: format!("e{i}"),
            event_type: "telemetry".into(),
            tenant: "acme".into(),
        }
    };
    let accepted = matches!(verdict, Verdict::Accepted { .. });
    Entry {
        seq: Seq(0),
        stream_seq: 1000 + i,
        time_ns: 1_700_000_000_000_000_000 + i,
        subject: "gov.acme.telemetry".into(),
        key_id: Some("acme/gw".into()),
        signature: Some(vec![7; 64]),
        body_sha256: govledger_schemas::body_digest(&body),
        body_len: body.len() as u64,
        body: accepted.then_some(body),
        verdict,
    }
}

fn signer() -> NoteSigner {
    NoteSigner::from_seed("suite.test/log", [3; 32]).unwrap()
}

/// Appends `n` entries in batches of `batch`, checkpointing after each batch.
fn fill<S: LogStore>(ledger: &mut Ledger<S>, n: u64, batch: u64) {
    let mut i = ledger.size();
    while i < n {
        let end = (i + batch).min(n);
        let out = ledger
            .append(
                &mut (i..end).map(entry).collect::<Vec<_>>(),
                Some(1000 + end - 1),
            )
            .unwrap();
        assert_eq!(out.len() as u64, end - i);
        assert_eq!(out[0].seq, Seq(i));
        ledger
            .checkpoint(
                &signer(),
                Some(StateDigest {
                    version: 2,
                    hash: [1; 32],
                }),
            )
            .unwrap();
        i = end;
    }
}

/// The suite every store must pass.
fn suite<S: LogStore>(make: impl Fn() -> S, reopen: impl Fn(S) -> S) {
    // An uninitialised store is refused.
    assert!(matches!(
        Ledger::open(make()),
        Err(LedgerError::NotInitialized)
    ));

    let mut ledger = Ledger::create(make(), "suite.test/log").unwrap();
    assert_eq!(ledger.size(), 0);
    assert_eq!(ledger.root().unwrap(), tree::EMPTY_ROOT);
    fill(&mut ledger, 333, 50);
    assert_eq!(ledger.size(), 333);
    assert_eq!(ledger.cursor().unwrap(), Some(1332));

    // Entries read back with their seq; the tree agrees with a fresh in-memory fold.
    let mut f = Frontier::new();
    for seq in 0..333 {
        let (leaf, e) = ledger.entry(seq).unwrap();
        assert_eq!(e.seq, Seq(seq));
        let mut expect = entry(seq);
        expect.seq = Seq(seq);
        assert_eq!(leaf, encode_entry(&expect));
        assert_eq!(ledger.leaf_hash(seq).unwrap(), tree::leaf_hash(&leaf));
        f.push(tree::leaf_hash(&leaf), |_, _| {});
    }
    assert_eq!(ledger.root().unwrap(), f.root());

    // An entry cursor lends the same bytes as a scan, in order, from any seq on; it
    // stops when told and reads on from a later seq with the same cursor; past the
    // end it visits nothing.
    let scanned: Vec<(u64, Vec<u8>)> = ledger
        .store()
        .scan_entries(0)
        .collect::<Result<_, _>>()
        .unwrap();
    let mut cursor = ledger.store().entry_cursor();
    let mut lent = Vec::new();
    for from in [0, 10, 200, 201, 330] {
        cursor
            .visit(from, &mut |seq, leaf| {
                lent.push((seq, leaf.to_vec()));
                seq + 1 < (from + 5).min(333)
            })
            .unwrap();
    }
    let want: Vec<(u64, Vec<u8>)> = [0..5, 10..15, 200..205, 201..206, 330..333]
        .into_iter()
        .flatten()
        .map(|seq| scanned[seq as usize].clone())
        .collect();
    assert!(lent == want, "lent {} entries", lent.len());
    let mut all = 0;
    cursor
        .visit(0, &mut |_, _| {
            all += 1;
            true
        })
        .unwrap();
    assert_eq!(all, 333);
    cursor
        .visit(333, &mut |seq, _| panic!("visited {seq}"))
        .unwrap();
    drop(cursor);

    // Proofs verify against stored checkpoints.
    let cp = ledger.latest_checkpoint().unwrap().unwrap();
    assert_eq!(cp.checkpoint.size, 333);
    for seq in [0, 1, 100, 331, 332] {
        let p = ledger.inclusion_proof(seq, 333).unwrap();
        tree::verify_inclusion(
            &ledger.leaf_hash(seq).unwrap(),
            seq,
            333,
            &p,
            &cp.checkpoint.root,
        )
        .unwrap();
    }
    let old = ledger.checkpoint_at(150).unwrap().unwrap();
    let p = ledger.consistency_proof(150, 333).unwrap();
    tree::verify_consistency(150, 333, &old.checkpoint.root, &cp.checkpoint.root, &p).unwrap();
    assert!(ledger.entry(333).is_err());
    assert!(ledger.inclusion_proof(5, 334).is_err());

    // The event index holds accepted ids only.
    assert_eq!(ledger.find_event("acme", "e3").unwrap(), Some(Seq(3)));
    assert_eq!(ledger.find_event("acme", "e4").unwrap(), None);
    assert_eq!(ledger.find_event("other", "e3").unwrap(), None);

    // Checkpoints are never rewritten.
    let again = ledger
        .checkpoint(
            &signer(),
            Some(StateDigest {
                version: 2,
                hash: [9; 32],
            }),
        )
        .unwrap();
    assert_eq!(again, cp);

    let report = verify(
        &ledger,
        &signer().verifier(),
        &VerifyOptions::default(),
        &mut |_| {},
    )
    .unwrap();
    assert!(report.ok(), "{:?}", report.problem);
    assert_eq!(report.entries_checked, 333);
    // One checkpoint per batch: sizes 50, 100, ..., 300 and 333.
    assert_eq!(report.checkpoints_checked, 7);
    // Snapshots: opaque bytes by size, over several chunks, empty ones too; a
    // put can drop older ones in the same commit; none beyond the log.
    assert_eq!(ledger.snapshot_sizes().unwrap(), Vec::<u64>::new());
    assert_eq!(ledger.snapshot(100).unwrap(), None);
    let big: Vec<u8> = (0..(SNAPSHOT_CHUNK * 2 + 17))
        .map(|i| (i % 251) as u8)
        .collect();
    ledger.put_snapshot(100, big.clone(), &[]).unwrap();
    ledger.put_snapshot(150, Vec::new(), &[]).unwrap();
    ledger
        .put_snapshot(300, b"three hundred".to_vec(), &[])
        .unwrap();
    assert_eq!(ledger.snapshot_sizes().unwrap(), vec![100, 150, 300]);
    // (Compared with assert!, not assert_eq!: a failure would print megabytes.)
    assert!(ledger.snapshot(100).unwrap() == Some(big.clone()));
    // Read with its bytes given as they come: in order, every one once.
    let mut given = Vec::new();
    let read = ledger
        .snapshot_with(100, &mut |piece| given.extend_from_slice(piece))
        .unwrap();
    assert!(read == Some(big.clone()) && given == big);
    let mut none_given = true;
    assert_eq!(
        ledger
            .snapshot_with(101, &mut |_| none_given = false)
            .unwrap(),
        None
    );
    assert!(none_given, "bytes given for a snapshot that is not there");
    assert_eq!(ledger.snapshot(150).unwrap(), Some(Vec::new()));
    assert_eq!(ledger.snapshot(101).unwrap(), None);
    // The head is chunk 0: a snapshot's first 8 bytes (its magic) alone.
    assert_eq!(
        ledger.snapshot_head(100).unwrap().as_deref(),
        Some(&big[..8])
    );
    assert_eq!(ledger.snapshot_head(150).unwrap(), Some(Vec::new()));
    assert_eq!(
        ledger.snapshot_head(300).unwrap().as_deref(),
        Some(&b"three hu"[..])
    );
    assert_eq!(ledger.snapshot_head(101).unwrap(), None);
    // Rewriting with fewer chunks leaves none of the old ones behind.
    ledger.put_snapshot(100, b"small".to_vec(), &[]).unwrap();
    let small = ledger.snapshot(100).unwrap();
    assert!(
        small.as_deref() == Some(&b"small"[..]),
        "{} bytes",
        small.map_or(0, |s| s.len())
    );
    ledger.put_snapshot(100, big.clone(), &[]).unwrap();
    ledger
        .put_snapshot(333, b"newest".to_vec(), &[150, 300])
        .unwrap();
    assert_eq!(ledger.snapshot_sizes().unwrap(), vec![100, 333]);
    assert_eq!(ledger.snapshot(300).unwrap(), None);
    assert!(matches!(
        ledger.put_snapshot(334, Vec::new(), &[]),
        Err(LedgerError::OutOfRange(_))
    ));

    // Everything survives a reopen.
    let root = ledger.root().unwrap();
    // A snapshot handle writes from another thread (none beyond the log's
    // durable size), and keeps the store shared: the ledger cannot give it back
    // while one lives.
    let handle = ledger.snapshot_store();
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut w = handle.writer(200).unwrap();
            w.put(b"from a thread").unwrap();
            w.finish(&[]).unwrap();
        });
    });
    assert!(ledger.snapshot(200).unwrap().as_deref() == Some(&b"from a thread"[..]));
    assert!(matches!(
        handle.writer(334),
        Err(LedgerError::OutOfRange(_))
    ));
    assert_eq!(handle.sizes().unwrap(), vec![100, 200, 333]);
    let Err(ledger) = ledger.into_store() else {
        panic!("the store was given back while a snapshot handle shared it")
    };
    drop(handle);
    let Ok(store) = ledger.into_store() else {
        panic!("no handle shares the store")
    };
    let store = reopen(store);
    let ledger = Ledger::open(store).unwrap();
    assert_eq!(ledger.size(), 333);
    assert_eq!(ledger.root().unwrap(), root);
    assert_eq!(ledger.cursor().unwrap(), Some(1332));
    assert_eq!(ledger.snapshot_sizes().unwrap(), vec![100, 200, 333]);
    assert!(ledger.snapshot(100).unwrap() == Some(big));

    // The cursor's source: claimed once (a cursor written before any claim is
    // claimed as it stands), kept across a reopen, the other kind refused.
    let mut ledger = ledger;
    assert_eq!(ledger.cursor_source().unwrap(), None);
    ledger.claim_cursor(CursorSource::Lines).unwrap();
    ledger.claim_cursor(CursorSource::Lines).unwrap();
    let Ok(store) = ledger.into_store() else {
        panic!("no handle shares the store")
    };
    let mut ledger = Ledger::open(reopen(store)).unwrap();
    assert_eq!(ledger.cursor_source().unwrap(), Some(CursorSource::Lines));
    let refused = ledger.claim_cursor(CursorSource::Stream).unwrap_err();
    assert!(
        matches!(
            refused,
            LedgerError::CursorClaimed {
                wanted: CursorSource::Stream,
                held: CursorSource::Lines
            }
        ),
        "{refused}"
    );
    assert!(
        refused.to_string().contains("`append --resume`"),
        "{refused}"
    );
    assert_eq!(
        ledger.cursor().unwrap(),
        Some(1332),
        "the cursor is untouched"
    );
}

#[test]
fn suite_on_memstore() {
    suite(MemStore::new, |s| s);
}

#[test]
fn suite_on_rocksdb() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let n = std::sync::atomic::AtomicU32::new(0);
    suite(
        || {
            let p = path.join(
                n.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
                    .to_string(),
            );
            RocksStore::open(&p, OpenMode::Create).unwrap()
        },
        |s| {
            drop(s);
            let last = n.load(std::sync::atomic::Ordering::SeqCst) - 1;
            RocksStore::open(&path.join(last.to_string()), OpenMode::ReadWrite).unwrap()
        },
    );
}

/// The bytes of write-ahead log in the RocksDB directory `dir`.
fn wal_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".log"))
        .map(|e| e.metadata().unwrap().len())
        .sum()
}

#[test]
fn a_clean_close_leaves_no_log_to_replay() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let mut ledger = Ledger::create(
        RocksStore::open(&path, OpenMode::Create).unwrap(),
        "suite.test/log",
    )
    .unwrap();
    fill(&mut ledger, 500, 50);
    let root = ledger.root().unwrap();
    assert!(wal_bytes(&path) > 0, "the writes went through the log");
    // A read-only open while the writer is still open replays the log.
    let ro = Ledger::open(RocksStore::open(&path, OpenMode::ReadOnly).unwrap()).unwrap();
    assert_eq!(ro.root().unwrap(), root);
    drop(ro);
    drop(ledger);
    assert_eq!(wal_bytes(&path), 0, "a clean close flushed the memtables");
    let ro = Ledger::open(RocksStore::open(&path, OpenMode::ReadOnly).unwrap()).unwrap();
    assert_eq!((ro.size(), ro.root().unwrap()), (500, root));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Fail the k-th commit: nothing of that batch is visible, the ledger carries on,
    /// and the result after a retry equals a run that never failed.
    #[test]
    fn a_failed_commit_leaves_nothing_behind(k in 1u64..12, batch in 1u64..40) {
        let store = MemStore::new();
        let mut ledger = Ledger::create(store, "suite.test/log").unwrap();
        ledger.store().fail_commit(k);
        let mut i = 0u64;
        let mut failed = false;
        while i < 12 * batch {
            let end = i + batch;
            let before = (ledger.size(), ledger.root().unwrap(), ledger.cursor().unwrap());
            match ledger.append(&mut (i..end).map(entry).collect::<Vec<_>>(), Some(end)) {
                Ok(_) => i = end,
                Err(_) => {
                    failed = true;
                    prop_assert_eq!((ledger.size(), ledger.root().unwrap(), ledger.cursor().unwrap()), before);
                    prop_assert!(ledger.store().entry(i).unwrap().is_none());
                    prop_assert!(ledger.store().node(NodeId::new(0, i)).unwrap().is_none());
                    prop_assert_eq!(ledger.find_event("acme", &format!("e{i}")).unwrap(), None);
                }
            }
        }
        prop_assert!(failed);
        let mut clean = Ledger::create(MemStore::new(), "suite.test/log").unwrap();
        let mut j = 0;
        while j < 12 * batch {
            clean.append(&mut (j..j + batch).map(entry).collect::<Vec<_>>(), Some(j + batch)).unwrap();
            j += batch;
        }
        prop_assert_eq!(ledger.root().unwrap(), clean.root().unwrap());
        let report = verify(&ledger, &signer().verifier(), &VerifyOptions::default(), &mut |_| {}).unwrap();
        prop_assert!(report.ok());
    }
}

#[test]
fn an_edit_with_a_rewritten_tree_is_caught_by_the_signed_root() {
    let mut ledger = Ledger::create(MemStore::new(), "suite.test/log").unwrap();
    fill(&mut ledger, 200, 64);
    // Edit entry 70 and recompute every node so the tree agrees with the edit.
    ledger.store().tamper(|entries, nodes| {
        let mut e = entry(70);
        e.seq = Seq(70);
        e.stream_seq = 4242;
        entries.insert(70, encode_entry(&e));
        nodes.clear();
        let mut f = Frontier::new();
        for leaf in entries.values() {
            f.push(tree::leaf_hash(leaf), |id, h| {
                nodes.insert(id, *h);
            });
        }
    });
    let report = verify(
        &ledger,
        &signer().verifier(),
        &VerifyOptions::default(),
        &mut |_| {},
    )
    .unwrap();
    let p = report.problem.expect("must fail");
    assert_eq!(p.kind, "checkpoint_root_mismatch");
    // The first checkpoint after the edit is at 128; the one before at 64.
    assert_eq!(p.seq, Some(64));
    assert!(p.message.contains("64..128"), "{}", p.message);
}

#[test]
fn a_checkpoint_signed_by_another_key_is_refused() {
    let mut ledger = Ledger::create(MemStore::new(), "suite.test/log").unwrap();
    fill(&mut ledger, 10, 10);
    let other = NoteSigner::from_seed("suite.test/log", [4; 32]).unwrap();
    let report = verify(
        &ledger,
        &other.verifier(),
        &VerifyOptions::default(),
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(report.problem.unwrap().kind, "checkpoint_signature");
    let unsigned = VerifyOptions {
        check_signatures: false,
        ..VerifyOptions::default()
    };
    assert!(verify(&ledger, &other.verifier(), &unsigned, &mut |_| {})
        .unwrap()
        .ok());
}

/// A store made before snapshots existed has no `snapshots` column family: read-only
/// it opens and lists none; read-write adds the family and stores them.
#[test]
fn a_store_from_before_snapshots_opens_and_gains_them() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    {
        // Only the five original column families, as the first stores had.
        let mut opts = rocksdb::Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        let db = rocksdb::DB::open_cf(
            &opts,
            &path,
            ["entries", "nodes", "checkpoints", "index", "meta"],
        )
        .unwrap();
        drop(db);
        let store = RocksStore::open(&path, OpenMode::ReadOnly);
        // An uninitialised store: the point is that opening works at all.
        assert!(store.is_ok(), "{:?}", store.err());
    }
    let ro = RocksStore::open(&path, OpenMode::ReadOnly).unwrap();
    assert_eq!(ro.snapshot_sizes().unwrap(), Vec::<u64>::new());
    assert_eq!(ro.snapshot(0).unwrap(), None);
    drop(ro);
    let mut ledger = Ledger::create(
        RocksStore::open(&path, OpenMode::ReadWrite).unwrap(),
        "suite.test/log",
    )
    .unwrap();
    fill(&mut ledger, 10, 10);
    ledger.put_snapshot(10, b"state".to_vec(), &[]).unwrap();
    drop(ledger);
    let ro = Ledger::open(RocksStore::open(&path, OpenMode::ReadOnly).unwrap()).unwrap();
    assert_eq!(ro.snapshot_sizes().unwrap(), vec![10]);
    assert_eq!(ro.snapshot(10).unwrap(), Some(b"state".to_vec()));
}
