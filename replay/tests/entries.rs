//! `entries_from` reads the log in order with one scan and names a missing entry,
//! and so does `fold`, which also stops at an accepted entry whose body does not
//! decode; `count_until` finds how many entries an event time covers.

use govledger_ingest::admit::PIPELINE_ROUND;
use govledger_ingest::{Admission, Trust};
use govledger_ledger::store::MemStore;
use govledger_ledger::{Ledger, LedgerError};
use govledger_replay::{count_until, entries_from, fold, walk};
use govledger_schemas::{body_digest, DecodeLimits, Entry, RejectReason, Seq, Verdict};

fn entry(i: u64) -> Entry {
    let body = format!("{{\"n\":{i}}}").into_bytes();
    Entry {
        seq: Seq(0),
        stream_seq: 10 + i,
        // Event times grow in steps of 10 ns.
        time_ns: 1_000 + 10 * i,
        subject: "gov.acme.telemetry".into(),
        key_id: Some("acme/gw".into()),
        signature: Some(vec![7; 64]),
        body_sha256: body_digest(&body),
        body_len: body.len() as u64,
        body: Some(body),
        verdict: Verdict::Accepted {
            event_id: format!("e{i}"),
            event_type: "telemetry".into(),
            tenant: "acme".into(),
        },
    }
}

fn ledger(n: u64) -> Ledger<MemStore> {
    let mut l = Ledger::create(MemStore::new(), "replay.test/log").unwrap();
    l.append(&mut (0..n).map(entry).collect::<Vec<_>>(), None)
        .unwrap();
    l
}

/// Entry `i` rejected (for its signature): a fold counts it and reads nothing else.
fn rejected(i: u64) -> Entry {
    let mut e = entry(i);
    e.body = None;
    e.verdict = Verdict::Rejected {
        reason: RejectReason::BadSignature,
        detail: "bad signature".into(),
        event_id: Some(format!("e{i}")),
        tenant: Some("acme".into()),
    };
    e
}

/// `n` rejected entries, but entry `accepted` (if any) as accepted ([`entry`]:
/// a kept body that is not an event).
fn rejections(n: u64, accepted: Option<u64>) -> Ledger<MemStore> {
    let mut l = Ledger::create(MemStore::new(), "replay.test/log").unwrap();
    let make = |i| {
        if Some(i) == accepted {
            entry(i)
        } else {
            rejected(i)
        }
    };
    l.append(&mut (0..n).map(make).collect::<Vec<_>>(), None)
        .unwrap();
    l
}

#[test]
fn entries_come_back_in_order_from_any_point() {
    let l = ledger(50);
    for from in [0, 1, 49, 50] {
        let got: Vec<Entry> = entries_from(&l, from).map(Result::unwrap).collect();
        assert_eq!(got.len() as u64, 50 - from);
        for (e, seq) in got.iter().zip(from..) {
            assert_eq!(e, &l.entry(seq).unwrap().1);
        }
    }
}

#[test]
fn a_missing_entry_is_an_error_naming_it_and_ends_the_scan() {
    let l = ledger(20);
    l.store().tamper(|entries, _| {
        entries.remove(&7);
    });
    let got: Vec<_> = entries_from(&l, 3).collect();
    assert_eq!(got.len(), 5, "4 good entries, then the error, then nothing");
    assert!(got[..4].iter().all(Result::is_ok));
    let e = got[4].as_ref().unwrap_err().to_string();
    assert!(e.contains("entry 7 is missing"), "{e}");
}

/// A log of nearly five of the pipeline's rounds, and an entry in its fourth.
fn far_into_a_long_range() -> (u64, u64) {
    let round = PIPELINE_ROUND as u64;
    (5 * round - round / 8, 3 * round + round / 4)
}

#[test]
fn a_fold_stops_at_a_missing_entry_with_every_entry_before_it_folded() {
    // In a short range (folded on the calling thread) and far into a long one
    // (read by the pipeline's workers), with one worker and with two.
    for (n, missing) in [(20, 7), far_into_a_long_range()] {
        for workers in [1, 2] {
            let l = rejections(n, None);
            l.store().tamper(|entries, _| {
                entries.remove(&missing);
            });
            let mut adm = Admission::new(&Trust::default(), DecodeLimits::default()).unwrap();
            adm.set_verify_threads(workers);
            let e = fold(&mut adm, &l, 0, n, &mut |_| {})
                .unwrap_err()
                .to_string();
            assert!(e.contains(&format!("entry {missing} is missing")), "{e}");
            assert_eq!(
                adm.entries_folded(),
                missing,
                "{n} entries, {workers} workers"
            );
        }
    }
    // Past the end of the log: nothing is folded.
    let l = rejections(10, None);
    let mut adm = Admission::new(&Trust::default(), DecodeLimits::default()).unwrap();
    let e = fold(&mut adm, &l, 0, 11, &mut |_| {})
        .unwrap_err()
        .to_string();
    assert!(e.contains("entry 10 cannot be read"), "{e}");
    assert_eq!(adm.entries_folded(), 0);
}

#[test]
fn a_fold_stops_at_an_accepted_entry_whose_body_does_not_decode() {
    // Skipping it would leave the state without an event it was built from. In a
    // short range and far into a long one, with one worker and two; and one entry
    // at a time (`walk`).
    for (n, bad) in [(20, 7), far_into_a_long_range()] {
        for workers in [1, 2] {
            let l = rejections(n, Some(bad));
            let mut adm = Admission::new(&Trust::default(), DecodeLimits::default()).unwrap();
            adm.set_verify_threads(workers);
            let e = fold(&mut adm, &l, 0, n, &mut |_| {})
                .unwrap_err()
                .to_string();
            assert!(
                e.contains(&format!("entry {bad} does not decode"))
                    && e.contains("bears on the state, but its kept body is not an event"),
                "{e}"
            );
            assert_eq!(adm.entries_folded(), bad, "{n} entries, {workers} workers");
        }
    }
    let l = rejections(20, Some(7));
    let mut adm = Admission::new(&Trust::default(), DecodeLimits::default()).unwrap();
    let mut seen = 0;
    let e = walk(&mut adm, &l, 0, 20, &mut |_| {}, &mut |_, _, _, _| {
        seen += 1;
        Ok::<_, LedgerError>(())
    })
    .unwrap_err();
    assert!(e.to_string().contains("entry 7 does not decode"), "{e}");
    assert_eq!((seen, adm.entries_folded()), (7, 7));
}

#[test]
fn count_until_counts_the_entries_at_or_before_a_time() {
    let l = ledger(30);
    assert_eq!(count_until(&l, 0).unwrap(), 0);
    assert_eq!(count_until(&l, 999).unwrap(), 0);
    assert_eq!(count_until(&l, 1_000).unwrap(), 1);
    assert_eq!(count_until(&l, 1_009).unwrap(), 1);
    assert_eq!(count_until(&l, 1_010).unwrap(), 2);
    assert_eq!(count_until(&l, 1_290).unwrap(), 30);
    assert_eq!(count_until(&l, u64::MAX).unwrap(), 30);
    let empty = ledger(0);
    assert_eq!(count_until(&empty, u64::MAX).unwrap(), 0);
}
