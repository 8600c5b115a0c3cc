//! A log signed with state digest v2 up to an upgrade and v3 after it, with a
//! snapshot of format 1 (no ordinals) from before the upgrade: a verified
//! replay whose checkpoints are all version 2 starts from that snapshot; one
//! that reaches a version-3 checkpoint passes it over and starts from one that
//! carries ordinals (or entry 0), and checks every checkpoint of either
//! version; so does a stepper, which may step on to the end.

use govledger_ingest::gen::admit_generated;
use govledger_ingest::snapshots::{self, SnapshotPolicy};
use govledger_ingest::{Admission, GenOptions, Generator, Trust};
use govledger_ledger::checkpoint::StateDigest;
use govledger_ledger::note::NoteSigner;
use govledger_ledger::store::MemStore;
use govledger_ledger::Ledger;
use govledger_projections::snapshot;
use govledger_replay::stepper::Stepper;
use govledger_replay::verified::replay;
use govledger_schemas::DecodeLimits;

const ORIGIN: &str = "versions.test/log";
const EVENTS: u64 = 3_000;
/// Checkpoints up to here carry version 2, later ones version 3.
const UPGRADE: u64 = 1_500;

fn signer() -> NoteSigner {
    NoteSigner::from_seed(ORIGIN, [4; 32]).expect("signer")
}

/// A checkpoint every 250 entries, version 2 up to [`UPGRADE`] and 3 after; a
/// snapshot at every 1,000 (format 2), the one at 1,000 then made format 1.
fn build() -> (Ledger<MemStore>, Trust) {
    let opts = GenOptions {
        events: EVENTS,
        seed: 21,
        tenants: 2,
        ..GenOptions::default()
    };
    let trust = Generator::new(opts.clone()).trust();
    let mut ledger = Ledger::create(MemStore::new(), ORIGIN).expect("ledger");
    let policy = SnapshotPolicy {
        every: 1_000,
        keep: 10,
    };
    admit_generated(&mut ledger, opts, 250, &mut |ledger, adm| {
        let version = if ledger.size() <= UPGRADE { 2 } else { 3 };
        let digest = StateDigest {
            version,
            hash: adm.state_digest_of(version).expect("known"),
        };
        let cp = ledger
            .checkpoint(&signer(), Some(digest))
            .expect("checkpoint");
        // (Past a snapshot at a version-2 checkpoint, whose ordinals are not
        // trusted, the policy would ask for one at every checkpoint.)
        if ledger.size() % 1_000 == 0 {
            snapshots::after_checkpoint(ledger, adm, &cp.checkpoint, policy).expect("snapshot");
        }
    })
    .expect("admit");
    assert_eq!(ledger.snapshot_sizes().unwrap(), vec![1_000, 2_000, 3_000]);
    let old = as_format_1(&ledger.snapshot(1_000).unwrap().unwrap());
    ledger.put_snapshot(1_000, old, &[]).unwrap();
    (ledger, trust)
}

/// `v2`, a snapshot of format 2, as a build before state digest v3 wrote it.
fn as_format_1(v2: &[u8]) -> Vec<u8> {
    assert_eq!(&v2[..8], &snapshot::MAGIC_V2);
    snapshot::to_format_1(v2).expect("a good snapshot")
}

#[test]
fn a_replay_starts_where_it_can_check_every_version_ahead() {
    let (ledger, trust) = build();
    let verifier = signer().verifier();
    let run = |from: u64, to: u64| {
        let (_, report) =
            replay(&ledger, &trust, &verifier, from, to, &mut |_| {}).expect("replay checks out");
        report
    };
    // Version-2 checkpoints only: from the snapshot without ordinals.
    let r = run(1_000, UPGRADE);
    assert_eq!(r.snapshot, 1_000);
    assert_eq!(r.checkpoints_checked, 2, "1,250 and 1,500");
    assert_eq!(r.state_digest.version, 2, "its state has no ordinals");
    // On to version 3: from entry 0, every checkpoint from 1,000 checked.
    let r = run(1_000, EVENTS);
    assert_eq!(r.snapshot, 0);
    assert_eq!(r.checkpoints_checked, 9, "1,000 to 3,000 every 250");
    assert_eq!(r.state_digest.version, 3);
    // From a snapshot of format 2 at a version-3 checkpoint.
    let r = run(2_000, EVENTS);
    assert_eq!(r.snapshot, 2_000);
    assert_eq!(r.checkpoints_checked, 4);
    assert_eq!(r.state_digest.version, 3);
    // A snapshot of format 2 at the version-2 checkpoint at 1,000: its
    // ordinals are not trusted, so it is passed over all the same.
    let mut at_1000 = Admission::new(&trust, DecodeLimits::default()).expect("admission");
    govledger_replay::fold(&mut at_1000, &ledger, 0, 1_000, &mut |_| {}).expect("fold");
    let fresh = at_1000.snapshot();
    assert_eq!(&fresh[..8], &snapshot::MAGIC_V2);
    ledger.put_snapshot(1_000, fresh, &[]).unwrap();
    let r = run(1_000, EVENTS);
    assert_eq!(r.snapshot, 0);
    assert_eq!(r.checkpoints_checked, 9);
    let r = run(1_000, UPGRADE);
    assert_eq!((r.snapshot, r.state_digest.version), (1_000, 2));
}

#[test]
fn a_stepper_starts_where_it_can_step_on_to_the_end() {
    let (ledger, trust) = build();
    let verifier = signer().verifier();
    let mut stepper = Stepper::new(&ledger, &trust, &verifier, 1_000).expect("stepper");
    assert_eq!(
        stepper.report().snapshot,
        0,
        "the snapshot at 1,000 has no ordinals"
    );
    stepper
        .seek(EVENTS)
        .expect("every checkpoint on the way checks out");
    assert_eq!(stepper.report().checkpoints_checked, 9);
    // Back to the start (where a stepper once panicked, finding no
    // checkpoint between where it stood and where it was to go) and on
    // again, from the state kept at the start; and where it stands.
    stepper.seek(1_000).expect("back");
    assert_eq!(stepper.pos(), 1_000);
    stepper.seek(2_250).expect("on");
    stepper.seek(2_250).expect("where it stands");
    assert_eq!(stepper.pos(), 2_250);
    assert_eq!(stepper.admission_mut().state_digest().version, 3);
}
