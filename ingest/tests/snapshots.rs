//! Snapshots in the ledger: written at checkpoints by policy, and a reader starts
//! from the newest one that checks out against its signed checkpoint, skipping any
//! that does not, always reaching the same state as a fold from entry 0.

use govledger_ingest::gen::admit_generated;
use govledger_ingest::snapshots::{self, SnapshotPolicy};
use govledger_ingest::{Admission, GenOptions, Generator, LeafReader, StoredLeaves, Trust};
use govledger_ledger::checkpoint::StateDigest;
use govledger_ledger::note::NoteSigner;
use govledger_ledger::store::MemStore;
use govledger_ledger::{Ledger, LedgerError};
use govledger_projections::snapshot;
use govledger_schemas::DecodeLimits;

const EVENTS: u64 = 3_000;

fn opts() -> GenOptions {
    GenOptions {
        events: EVENTS,
        seed: 11,
        tenants: 3,
        ..GenOptions::default()
    }
}

fn signer() -> NoteSigner {
    NoteSigner::from_seed("snapshots.test/log", [5; 32]).expect("signer")
}

/// A ledger of the generated stream in batches of 250, each followed by a checkpoint
/// and a snapshot when `policy` says so; and the trust it was admitted under.
fn build(policy: SnapshotPolicy) -> (Ledger<MemStore>, Trust) {
    build_signing(policy, 3)
}

/// [`build`], with checkpoints carrying state digests of `version` (1 or 2 as
/// ledgers signed them before versions 2 and 3, or 3).
fn build_signing(policy: SnapshotPolicy, version: u32) -> (Ledger<MemStore>, Trust) {
    let trust = Generator::new(opts()).trust();
    let mut ledger = Ledger::create(MemStore::new(), "snapshots.test/log").expect("ledger");
    admit_generated(&mut ledger, opts(), 250, &mut |ledger, adm| {
        let digest = StateDigest {
            version,
            hash: adm.state_digest_of(version).expect("a known version"),
        };
        let cp = ledger
            .checkpoint(&signer(), Some(digest))
            .expect("checkpoint");
        // Signing an older version (as no writer does while it knows its
        // ordinals), the policy alone would write one at every checkpoint
        // after the first, whose ordinals no version-3 digest covers: asked
        // only where it would ask at version 3.
        if version == 3 || ledger.size() % policy.every.max(1) == 0 {
            snapshots::after_checkpoint(ledger, adm, &cp.checkpoint, policy).expect("snapshot");
        }
    })
    .expect("admit");
    (ledger, trust)
}

/// Folds entries `from..end` of `ledger` into `adm`, as replays do.
fn fold(adm: &mut Admission, ledger: &Ledger<MemStore>, from: u64, end: u64) {
    let open =
        || -> Box<dyn LeafReader<LedgerError> + '_> { Box::new(StoredLeaves::new(ledger.store())) };
    adm.replay_pipelined(
        from..end,
        &open,
        |seq, e| panic!("entry {seq} does not decode: {e}"),
        &mut |_| {},
    )
    .expect("replay");
    assert_eq!(adm.entries_folded(), end);
}

fn start(ledger: &Ledger<MemStore>, trust: &Trust, end: u64) -> snapshots::Started {
    snapshots::start(
        ledger,
        trust,
        &signer().verifier(),
        DecodeLimits::default(),
        end,
    )
    .expect("start")
}

/// Admission from `start`, then the entries after it up to `end`.
fn resumed(ledger: &Ledger<MemStore>, trust: &Trust, end: u64) -> (Admission, u64, usize) {
    let s = start(ledger, trust, end);
    let mut adm = s.admission;
    assert_eq!(adm.entries_folded(), s.from);
    fold(&mut adm, ledger, s.from, end);
    (adm, s.from, s.skipped.len())
}

fn from_zero(ledger: &Ledger<MemStore>, trust: &Trust, end: u64) -> Admission {
    let mut adm = Admission::new(trust, DecodeLimits::default()).expect("admission");
    fold(&mut adm, ledger, 0, end);
    adm
}

#[test]
fn snapshots_follow_the_policy_and_keep_the_newest() {
    let (ledger, _) = build(SnapshotPolicy {
        every: 1_000,
        keep: 2,
    });
    // Checkpoints every 250 entries; one snapshot per 1,000; the newest two kept.
    assert_eq!(ledger.snapshot_sizes().unwrap(), vec![2_000, 3_000]);
    let (ledger, _) = build(SnapshotPolicy { every: 0, keep: 2 });
    assert!(ledger.snapshot_sizes().unwrap().is_empty());
}

#[test]
fn a_reader_starts_at_the_newest_snapshot_at_or_below_where_it_stops() {
    let (ledger, trust) = build(SnapshotPolicy {
        every: 500,
        keep: 10,
    });
    assert_eq!(
        ledger.snapshot_sizes().unwrap(),
        vec![500, 1_000, 1_500, 2_000, 2_500, 3_000]
    );
    for (end, from) in [(EVENTS, 3_000), (2_999, 2_500), (1_200, 1_000), (499, 0)] {
        let (mut adm, started, skipped) = resumed(&ledger, &trust, end);
        assert_eq!((started, skipped), (from, 0), "reading up to {end}");
        let mut full = from_zero(&ledger, &trust, end);
        assert_eq!(adm.entries_folded(), end);
        assert_eq!(adm.state_digest(), full.state_digest(), "at {end}");
        assert_eq!(adm.state(), full.state());
    }
    // The checkpoint carries the version-3 digest of the state at its size; the
    // snapshot's header the version-1 digest of the same state, and it carries
    // the ordinals.
    let cp = ledger.checkpoint_at(1_500).unwrap().unwrap();
    let header = snapshot::verify(&ledger.snapshot(1_500).unwrap().unwrap()).unwrap();
    let mut at = from_zero(&ledger, &trust, 1_500);
    assert_eq!(cp.checkpoint.state_digest, Some(at.state_digest()));
    assert_eq!(cp.checkpoint.state_digest.unwrap().version, 3);
    assert_eq!(header.state_digest, at.state().digest_v1());
    assert!(header.ordinals);
}

#[test]
fn a_ledger_signed_with_version_1_digests_still_starts_from_its_snapshots() {
    let (ledger, trust) = build_signing(
        SnapshotPolicy {
            every: 1_000,
            keep: 10,
        },
        1,
    );
    let cp = ledger.checkpoint_at(2_000).unwrap().unwrap();
    assert_eq!(cp.checkpoint.state_digest.unwrap().version, 1);
    let (mut adm, from, skipped) = resumed(&ledger, &trust, EVENTS);
    assert_eq!((from, skipped), (3_000, 0));
    // No version-3 digest covers the snapshot's ordinals: forgotten, so the
    // state signs version 2.
    assert_eq!(
        adm.state_digest(),
        StateDigest {
            version: 2,
            hash: from_zero(&ledger, &trust, EVENTS)
                .state_digest_of(2)
                .unwrap()
        }
    );
    // A version-1 checkpoint is matched against the snapshot's header alone: a
    // snapshot of another state fails it.
    let adm2000 = from_zero(&ledger, &trust, 2_000);
    let forged = snapshot::encode(3_000, adm2000.state(), &Default::default());
    ledger.put_snapshot(3_000, forged, &[]).unwrap();
    let s = start(&ledger, &trust, EVENTS);
    assert_eq!(s.from, 2_000);
    assert!(
        s.skipped[0]
            .1
            .contains("differs from the signed checkpoint"),
        "{:?}",
        s.skipped
    );
}

#[test]
fn a_snapshot_that_does_not_check_out_is_skipped_never_used() {
    let (ledger, trust) = build(SnapshotPolicy {
        every: 1_000,
        keep: 10,
    });
    let mut full = from_zero(&ledger, &trust, EVENTS);

    // 1. A self-consistent snapshot of another state (the one at 2,000) stored at
    //    3,000: its checksum and digest hold, but not the signed checkpoint's digest.
    let other = ledger.snapshot(2_000).unwrap().unwrap();
    let adm2000 = from_zero(&ledger, &trust, 2_000);
    let forged = snapshot::encode(3_000, adm2000.state(), &Default::default());
    assert!(snapshot::verify(&forged).is_ok());
    ledger.put_snapshot(3_000, forged.clone(), &[]).unwrap();
    let (mut adm, from, skipped) = resumed(&ledger, &trust, EVENTS);
    assert_eq!((from, skipped), (2_000, 1));
    assert_eq!(adm.state_digest(), full.state_digest());

    // 2. Damaged bytes at 2,000 too: the reader falls back to 1,000.
    let mut damaged = other;
    let mid = damaged.len() / 2;
    damaged[mid] ^= 0x40;
    ledger.put_snapshot(2_000, damaged, &[]).unwrap();
    let (mut adm, from, skipped) = resumed(&ledger, &trust, EVENTS);
    assert_eq!((from, skipped), (1_000, 2));
    assert_eq!(adm.state_digest(), full.state_digest());

    // 3. A snapshot at a size with no checkpoint is not used either.
    let s = start(&ledger, &trust, 1_100);
    assert_eq!(s.from, 1_000);
    let adm1100 = from_zero(&ledger, &trust, 1_100);
    ledger.put_snapshot(1_100, adm1100.snapshot(), &[]).unwrap();
    let s = start(&ledger, &trust, 1_100);
    assert_eq!(s.from, 1_000);
    assert!(s.skipped[0].1.contains("no checkpoint"), "{:?}", s.skipped);
    // Damaged as well: the damage is what is named, whatever else is wrong.
    let mut bad = adm1100.snapshot();
    let at = bad.len() / 2;
    bad[at] ^= 0x40;
    ledger.put_snapshot(1_100, bad, &[]).unwrap();
    let s = start(&ledger, &trust, 1_100);
    assert_eq!(s.from, 1_000);
    assert!(s.skipped[0].1.contains("checksum"), "{:?}", s.skipped);

    // 4. Checked with another log's key, no checkpoint verifies: none is used.
    let stranger = NoteSigner::from_seed("snapshots.test/log", [6; 32]).unwrap();
    let s = snapshots::start(
        &ledger,
        &trust,
        &stranger.verifier(),
        DecodeLimits::default(),
        EVENTS,
    )
    .unwrap();
    assert_eq!(s.from, 0);
    assert!(
        s.skipped
            .iter()
            .all(|(_, why)| why.contains("does not verify")
                || why.contains("checksum")
                || why.contains("no checkpoint")),
        "{:?}",
        s.skipped
    );
}

/// `serve`'s way: each due snapshot is encoded at its checkpoint and written on a
/// thread of its own while the next batches are admitted and appended. Every
/// snapshot it leaves checks out against its checkpoint, and a reader starting
/// from the newest reaches the state a fold from entry 0 gives.
#[test]
fn snapshots_written_beside_appends_check_out() {
    let trust = Generator::new(opts()).trust();
    let mut ledger = Ledger::create(MemStore::new(), "snapshots.test/log").expect("ledger");
    let policy = SnapshotPolicy {
        every: 500,
        keep: 3,
    };
    let mut bg = snapshots::Background::new();
    let mut started = Vec::new();
    admit_generated(&mut ledger, opts(), 250, &mut |ledger, adm| {
        let cp = ledger
            .checkpoint(&signer(), Some(adm.state_digest()))
            .expect("checkpoint");
        if !bg.busy() {
            if let Some(due) = snapshots::due(ledger, adm, &cp.checkpoint, policy).expect("due") {
                started.push(due.size());
                bg.start(due, ledger.snapshot_store());
            }
        }
    })
    .expect("admit");
    let last = bg
        .finish()
        .map(|w| w.expect("the last snapshot is written"));
    assert!(!bg.busy() && bg.finish().is_none());
    assert_eq!(last.map(|w| w.size), started.last().copied());
    assert!(!started.is_empty() && started[0] == 500, "{started:?}");

    let sizes = ledger.snapshot_sizes().unwrap();
    let kept: Vec<u64> = started.iter().rev().take(3).rev().copied().collect();
    assert_eq!(sizes, kept, "started {started:?}");
    for &size in &sizes {
        snapshots::check(&ledger, &signer().verifier(), size)
            .unwrap_or_else(|why| panic!("the snapshot at {size} does not check out: {why}"));
    }
    let (mut adm, from, skipped) = resumed(&ledger, &trust, EVENTS);
    assert_eq!((from, skipped), (*sizes.last().unwrap(), 0));
    let mut full = from_zero(&ledger, &trust, EVENTS);
    assert_eq!(adm.state_digest(), full.state_digest());
    assert_eq!(adm.state(), full.state());
}

/// A snapshot that cannot be written is reported, and nothing of it is used.
#[test]
fn a_snapshot_written_in_the_background_that_fails_is_reported() {
    let (mut ledger, trust) = build(SnapshotPolicy { every: 0, keep: 1 });
    let mut adm = from_zero(&ledger, &trust, EVENTS);
    let (due, _) = due_now(&mut ledger, &mut adm);
    // Its first commit clears the size; the next, a chunk or the last one, fails.
    ledger.store().fail_commit(2);
    let mut bg = snapshots::Background::new();
    bg.start(due, ledger.snapshot_store());
    let outcome = bg.finish().expect("one was started");
    assert!(outcome.is_err(), "{outcome:?}");
    ledger.store().fail_commit(0);
    let s = start(&ledger, &trust, EVENTS);
    assert_eq!(s.from, 0, "skipped: {:?}", s.skipped);
}

/// A snapshot that fails after some of its chunks were stored is deleted again:
/// nothing partial is listed, so it neither counts as the newest (the next
/// checkpoint finds one due) nor pushes a good one out of those kept.
#[test]
fn a_snapshot_that_fails_midway_leaves_nothing_behind() {
    let opts = GenOptions {
        events: 60_000,
        seed: 12,
        tenants: 3,
        ..GenOptions::default()
    };
    let mut ledger = Ledger::create(MemStore::new(), "snapshots.test/log").expect("ledger");
    let mut adm = admit_generated(&mut ledger, opts, 5_000, &mut |_, _| {}).expect("admit");
    let (due, again) = due_now(&mut ledger, &mut adm);
    let len = adm.encode_snapshot().len();
    assert!(
        len > govledger_ledger::store::SNAPSHOT_CHUNK as u64,
        "the snapshot must span two chunks or more to fail midway: {len} bytes"
    );
    // Commit 1 clears the size, commit 2 stores the first chunk, commit 3 (the
    // next chunk, or the last one with the drops) fails.
    ledger.store().fail_commit(3);
    let outcome = due.write(&ledger.snapshot_store());
    assert!(outcome.is_err(), "{outcome:?}");
    assert!(
        ledger.store().commits() >= 4,
        "the partial snapshot was deleted"
    );
    assert_eq!(ledger.snapshot_sizes().unwrap(), Vec::<u64>::new());
    ledger.store().fail_commit(0);
    assert!(again(&ledger, &adm).is_some(), "one is due again");
}

/// A checkpoint signed now with `adm`'s digest, and the snapshot due there under
/// a policy that always wants one; with a way to ask again later.
#[allow(clippy::type_complexity)]
fn due_now(
    ledger: &mut Ledger<MemStore>,
    adm: &mut Admission,
) -> (
    snapshots::Due,
    impl Fn(&Ledger<MemStore>, &Admission) -> Option<snapshots::Due>,
) {
    let cp = ledger
        .checkpoint(&signer(), Some(adm.state_digest()))
        .expect("checkpoint");
    let policy = SnapshotPolicy { every: 1, keep: 1 };
    let ask = move |ledger: &Ledger<MemStore>, adm: &Admission| {
        snapshots::due(ledger, adm, &cp.checkpoint, policy).expect("due")
    };
    let due = ask(ledger, adm).expect("a snapshot is due");
    (due, ask)
}

/// How many proposals, tickets and sessions a state holds.
fn held(adm: &Admission) -> [usize; 3] {
    let s = adm.state();
    [
        s.flows.proposals().count(),
        s.flows.tickets().count(),
        s.gates.sessions().count(),
    ]
}

/// Whether each growing map of `adm` (as [`held`] counts them) has room for at
/// least `at_least` entries without growing.
fn room_at_least(adm: &Admission, at_least: [usize; 3]) -> bool {
    let room = adm.state().capacities();
    room.iter().zip(at_least).all(|(&r, n)| r >= n)
}

#[test]
fn a_start_gives_the_state_room_for_the_entries_it_will_fold() {
    let (ledger, trust) = build(SnapshotPolicy {
        every: 1_000,
        keep: 10,
    });
    assert_eq!(ledger.snapshot_sizes().unwrap(), vec![1_000, 2_000, 3_000]);
    let begin = |at_most: u64, to: u64| {
        let s = snapshots::start_ahead(
            &ledger,
            &trust,
            &signer().verifier(),
            DecodeLimits::default(),
            at_most,
            to,
        )
        .expect("start");
        (s.admission, s.from)
    };
    let twice = |n: [usize; 3]| n.map(|n| 2 * n);
    // From the snapshot at 1,000 to 2,000: room for twice what it holds.
    let (ahead, from) = begin(1_000, 2_000);
    assert_eq!(from, 1_000);
    let at_1000 = held(&ahead);
    assert!(at_1000.iter().all(|&n| n > 0), "{at_1000:?}");
    assert!(room_at_least(&ahead, twice(at_1000)));
    // Folding nothing after it: no more room than a decode needs (the
    // proposals, the largest map, have less than twice theirs).
    let (none, _) = begin(1_000, 1_000);
    assert!(none.state().capacities()[0] < 2 * at_1000[0]);
    // A fresh start (no snapshot at or below 999) reserves nothing.
    let (bare, from) = begin(999, 2_500);
    assert_eq!(from, 0);
    assert_eq!(bare.state().capacities(), [0, 0, 0]);
}

/// `v2`, a snapshot of format 2, as a build before state digest v3 wrote it.
fn as_format_1(v2: &[u8]) -> Vec<u8> {
    assert_eq!(&v2[..8], &snapshot::MAGIC_V2);
    snapshot::to_format_1(v2).expect("a good snapshot")
}

/// A ledger upgraded at 2,000 entries: checkpoints every 250 signed with
/// version-2 digests up to there and version 3 after, snapshots only up to
/// there (at 1,000 and 2,000), the one at 2,000 of format 1 as an older build
/// wrote it.
fn upgraded() -> (Ledger<MemStore>, Trust) {
    let trust = Generator::new(opts()).trust();
    let mut ledger = Ledger::create(MemStore::new(), "snapshots.test/log").expect("ledger");
    let policy = SnapshotPolicy {
        every: 1_000,
        keep: 10,
    };
    admit_generated(&mut ledger, opts(), 250, &mut |ledger, adm| {
        let version = if ledger.size() <= 2_000 { 2 } else { 3 };
        let digest = StateDigest {
            version,
            hash: adm.state_digest_of(version).expect("known"),
        };
        let cp = ledger
            .checkpoint(&signer(), Some(digest))
            .expect("checkpoint");
        // (The policy alone would write one at every checkpoint after the
        // first: the ordinals of one at a version-2 checkpoint are not trusted.)
        if ledger.size() % 1_000 == 0 && ledger.size() <= 2_000 {
            snapshots::after_checkpoint(ledger, adm, &cp.checkpoint, policy).expect("snapshot");
        }
    })
    .expect("admit");
    assert_eq!(ledger.snapshot_sizes().unwrap(), vec![1_000, 2_000]);
    let old = as_format_1(&ledger.snapshot(2_000).unwrap().unwrap());
    ledger.put_snapshot(2_000, old, &[]).unwrap();
    (ledger, trust)
}

/// After an upgrade a reader still starts from the newest snapshot (its state
/// then signs version 2, having no ordinals, or none it can trust); a writer
/// passes over every snapshot whose ordinals no version-3 digest covers, folds
/// from an older point (here entry 0) and signs version 3; its next checkpoint
/// writes a snapshot of format 2, from which the next writer starts.
#[test]
fn after_an_upgrade_a_writer_folds_once_from_a_snapshot_with_ordinals() {
    let (ledger, trust) = upgraded();
    let verifier = signer().verifier();
    let mut full = from_zero(&ledger, &trust, EVENTS);
    let v3 = full
        .state_digest_v3()
        .expect("a fold from entry 0 knows its ordinals");

    let reader = start(&ledger, &trust, EVENTS);
    assert_eq!((reader.from, reader.skipped.len()), (2_000, 0));
    let mut old = reader.admission;
    assert_eq!(old.state_digest_v3(), None, "format 1: no ordinals");
    fold(&mut old, &ledger, 2_000, EVENTS);
    assert_eq!(old.state_digest().version, 2);
    assert_eq!(old.state_digest().hash, full.state_digest_of(2).unwrap());
    // Format 2, but at a version-2 checkpoint: its ordinals are not trusted.
    let mut unchecked = start(&ledger, &trust, 1_500).admission;
    assert_eq!(unchecked.entries_folded(), 1_000);
    assert_eq!(unchecked.state_digest().version, 2);

    let writer = snapshots::start_for_writing(&ledger, &trust, &verifier, DecodeLimits::default())
        .expect("start");
    assert_eq!(writer.from, 0);
    assert_eq!(
        writer.skipped,
        vec![
            (2_000, snapshots::NO_ORDINALS.to_string()),
            (1_000, snapshots::UNCHECKED_ORDINALS.to_string()),
        ]
    );
    let mut adm = writer.admission;
    fold(&mut adm, &ledger, 0, EVENTS);
    assert_eq!(
        adm.state_digest(),
        StateDigest {
            version: 3,
            hash: v3
        }
    );

    // At the checkpoint at 3,000 (version 3), with a policy that wants none
    // for a million entries, one is due all the same, as the newest cannot
    // start a writer; not for the reader's state, which has no ordinals.
    let cp = ledger.checkpoint_at(EVENTS).unwrap().unwrap();
    assert_eq!(cp.checkpoint.state_digest.unwrap().version, 3);
    let policy = SnapshotPolicy {
        every: 1_000_000,
        keep: 10,
    };
    let due = |adm: &Admission| snapshots::due(&ledger, adm, &cp.checkpoint, policy).unwrap();
    assert!(due(&old).is_none());
    due(&adm)
        .expect("due: the newest cannot start a writer")
        .write(&ledger.snapshot_store())
        .expect("written");
    assert_eq!(
        ledger.snapshot_head(EVENTS).unwrap().as_deref(),
        Some(&snapshot::MAGIC_V2[..])
    );
    assert!(due(&adm).is_none(), "one stands at this checkpoint now");
    let next = snapshots::start_for_writing(&ledger, &trust, &verifier, DecodeLimits::default())
        .expect("start");
    assert_eq!((next.from, next.skipped.len()), (EVENTS, 0));
    let mut next = next.admission;
    assert_eq!(
        next.state_digest(),
        StateDigest {
            version: 3,
            hash: v3
        }
    );
    let checked = snapshots::check(&ledger, &verifier, EVENTS).expect("checks out");
    assert_eq!(checked.signed.version, 3);
    assert!(checked.header.ordinals);
}

/// A snapshot of format 1 at a checkpoint that carries a version-3 digest
/// (which no build writes) is refused for it, by name.
#[test]
fn a_snapshot_without_ordinals_cannot_match_a_version_3_checkpoint() {
    let (ledger, _) = build(SnapshotPolicy {
        every: 1_000,
        keep: 10,
    });
    let old = as_format_1(&ledger.snapshot(2_000).unwrap().unwrap());
    ledger.put_snapshot(2_000, old, &[]).unwrap();
    let why = snapshots::check(&ledger, &signer().verifier(), 2_000).expect_err("refused");
    assert!(
        why.contains("version-3 state digest") && why.contains("carries no ordinals"),
        "{why}"
    );
}

/// `bytes` with its header's (version 1) state digest changed and its checksum
/// redone: a snapshot whose header claims another digest than its parts hash to.
fn wrong_header(bytes: &[u8]) -> Vec<u8> {
    use sha2::{Digest, Sha256};
    let mut bad = bytes.to_vec();
    bad[20] ^= 1;
    let n = bad.len() - 32;
    let sum: [u8; 32] = Sha256::digest(&bad[..n]).into();
    bad[n..].copy_from_slice(&sum);
    bad
}

/// Against a version-1 checkpoint the header's digest is what is matched, so a
/// header that claims another digest than its parts hash to is refused; against
/// a version-3 one the decoded state's own digest is matched, which covers every
/// state part, and the header's claim is not read.
#[test]
fn the_header_digest_counts_only_against_a_version_1_checkpoint() {
    let policy = SnapshotPolicy {
        every: 1_000,
        keep: 10,
    };
    let verifier = signer().verifier();
    let (ledger, _) = build(policy);
    let bad = wrong_header(&ledger.snapshot(2_000).unwrap().unwrap());
    ledger.put_snapshot(2_000, bad, &[]).unwrap();
    let checked = snapshots::check(&ledger, &verifier, 2_000).expect("used at a v3 checkpoint");
    assert_eq!(checked.signed.version, 3);
    let (ledger, _) = build_signing(policy, 1);
    let bad = wrong_header(&ledger.snapshot(2_000).unwrap().unwrap());
    ledger.put_snapshot(2_000, bad, &[]).unwrap();
    let why = snapshots::check(&ledger, &verifier, 2_000).expect_err("refused at a v1 checkpoint");
    assert!(why.contains("state digest"), "{why}");
}
