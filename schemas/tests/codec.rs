//! The frozen entry encoding: golden vectors and properties.

mod common;

use govledger_schemas::{
    decode_body, decode_entry, decode_entry_ref, decode_fold_leaf, decode_fold_leaf_unhashed,
    encode_entry, CodecError, DecodeLimits, Entry, EntryRef, EventType, FoldLeaf, MessageMeta,
    RejectReason, Seq, Verdict, VerdictRef, ENTRY_MAGIC,
};
use proptest::prelude::*;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// The fixed entries whose encodings are frozen in `tests/data/entry-golden.txt`.
fn golden_entries() -> Vec<(&'static str, Entry)> {
    let body = br#"{"v":1,"id":"e-1","type":"key.revoked","tenant":"acme","key_id":"acme/k1","reason":"lost"}"#.to_vec();
    let env = decode_body(&body, &DecodeLimits::default()).unwrap();
    let accepted = Entry::accepted(
        MessageMeta {
            seq: Seq(0),
            stream_seq: 1,
            time_ns: 1_700_000_000_000_000_000,
            subject: "gov.acme.key".into(),
            key_id: Some("operator/root".into()),
            signature: Some(vec![0xAA; 64]),
        },
        body,
        &env,
    );
    let rejected_unsigned = Entry::rejected(
        MessageMeta {
            seq: Seq(1),
            stream_seq: 2,
            time_ns: 1_700_000_000_000_000_001,
            subject: "gov.acme.action".into(),
            key_id: None,
            signature: None,
        },
        b"{",
        RejectReason::MissingHeader,
        "missing header Gov-Key",
        None,
        None,
    );
    let rejected_signed = Entry::rejected(
        MessageMeta {
            seq: Seq(2),
            stream_seq: 3,
            time_ns: 1_700_000_000_000_000_002,
            subject: "gov.acme.action".into(),
            key_id: Some("acme/ops-1".into()),
            signature: Some(vec![1, 2, 3]),
        },
        b"{}",
        RejectReason::BadSignature,
        "bad sig",
        Some("e-2".into()),
        Some("acme".into()),
    );
    vec![
        ("accepted", accepted),
        ("rejected-unsigned", rejected_unsigned),
        ("rejected-signed", rejected_signed),
    ]
}

#[test]
fn golden_vectors_are_frozen() {
    let text = include_str!("data/entry-golden.txt");
    let golden: Vec<(&str, &str)> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| l.split_once(' ').expect("`name hex` lines"))
        .collect();
    let entries = golden_entries();
    let actual: Vec<String> = entries
        .iter()
        .map(|(name, e)| format!("{name} {}", hex(&encode_entry(e))))
        .collect();
    eprintln!("current encodings:\n{}", actual.join("\n"));
    assert_eq!(golden.len(), entries.len());
    for ((name, entry), (gname, ghex)) in entries.iter().zip(golden) {
        assert_eq!(*name, gname);
        let bytes = encode_entry(entry);
        assert_eq!(
            hex(&bytes),
            ghex,
            "the encoding of golden entry `{name}` changed; the leaf format is frozen"
        );
        assert_eq!(&decode_entry(&unhex(ghex)).unwrap(), entry);
    }
}

/// The layout documented in `codec` read by hand, without bincode.
#[test]
fn layout_matches_documentation() {
    let (_, e) = &golden_entries()[2];
    let b = encode_entry(e);
    let mut i = 0usize;
    let mut take = |n: usize| {
        let s = &b[i..i + n];
        i += n;
        s.to_vec()
    };
    let u64le = |s: Vec<u8>| u64::from_le_bytes(s.try_into().unwrap());
    assert_eq!(take(4), b"GLE1");
    assert_eq!(u64le(take(8)), 2); // seq
    assert_eq!(u64le(take(8)), 3); // stream_seq
    assert_eq!(u64le(take(8)), 1_700_000_000_000_000_002); // time_ns
    let n = u64le(take(8)) as usize;
    assert_eq!(take(n), b"gov.acme.action");
    assert_eq!(take(1), [1]); // key_id Some
    let n = u64le(take(8)) as usize;
    assert_eq!(take(n), b"acme/ops-1");
    assert_eq!(take(1), [1]); // signature Some
    let n = u64le(take(8)) as usize;
    assert_eq!(take(n), [1, 2, 3]);
    assert_eq!(take(32), govledger_schemas::body_digest(b"{}"));
    assert_eq!(u64le(take(8)), 2); // body_len
    assert_eq!(take(1), [0]); // body None
    assert_eq!(take(4), 1u32.to_le_bytes()); // Rejected
    assert_eq!(take(4), 10u32.to_le_bytes()); // bad_signature
    let n = u64le(take(8)) as usize;
    assert_eq!(take(n), b"bad sig");
    assert_eq!(take(1), [1]);
    let n = u64le(take(8)) as usize;
    assert_eq!(take(n), b"e-2");
    assert_eq!(take(1), [1]);
    let n = u64le(take(8)) as usize;
    assert_eq!(take(n), b"acme");
    assert_eq!(i, b.len());
}

#[test]
fn accepted_entry_from_every_example() {
    for (kind, v) in common::examples() {
        let body = serde_json::to_vec(&v).unwrap();
        let env = decode_body(&body, &DecodeLimits::default()).unwrap();
        let e = Entry::accepted(MessageMeta::default(), body, &env);
        assert_eq!(e.event_type(), Some(kind.as_str()));
        assert_eq!(e.tenant(), Some("acme"));
        assert!(e.is_accepted());
        assert_eq!(decode_entry(&encode_entry(&e)).unwrap(), e);
    }
    assert_eq!(EventType::ALL.len(), common::examples().len());
}

#[test]
fn decode_errors() {
    let (_, e) = &golden_entries()[0];
    let good = encode_entry(e);

    assert_eq!(decode_entry(b""), Err(CodecError::BadMagic));
    assert_eq!(decode_entry(b"GLE"), Err(CodecError::BadMagic));
    let mut bad = good.clone();
    bad[3] = b'2';
    assert_eq!(decode_entry(&bad), Err(CodecError::BadMagic));

    assert_eq!(
        decode_entry(&good[..good.len() - 1]),
        Err(CodecError::Truncated)
    );
    assert_eq!(decode_entry(&ENTRY_MAGIC), Err(CodecError::Truncated));

    let mut trailing = good.clone();
    trailing.push(0);
    assert_eq!(
        decode_entry(&trailing),
        Err(CodecError::TrailingBytes { extra: 1 })
    );

    // Subject length prefix is at offset 28; its first byte at 36.
    let mut bad_utf8 = good.clone();
    bad_utf8[36] = 0xff;
    assert_eq!(decode_entry(&bad_utf8), Err(CodecError::InvalidUtf8));

    // key_id option byte follows the 12-byte subject "gov.acme.key".
    let mut bad_opt = good.clone();
    bad_opt[36 + 12] = 2;
    assert!(matches!(
        decode_entry(&bad_opt),
        Err(CodecError::UnknownTag { found: 2, .. })
    ));

    // Verdict tag and reason code.
    let (_, r) = &golden_entries()[2];
    let good_r = encode_entry(r);
    let tag_at = good_r.len() - (4 + 4 + (8 + 7) + (1 + 8 + 3) + (1 + 8 + 4));
    assert_eq!(&good_r[tag_at..tag_at + 4], 1u32.to_le_bytes());
    let mut bad_tag = good_r.clone();
    bad_tag[tag_at] = 2;
    assert!(matches!(
        decode_entry(&bad_tag),
        Err(CodecError::UnknownTag { found: 2, .. })
    ));
    let mut bad_reason = good_r.clone();
    bad_reason[tag_at + 4] = 16;
    assert_eq!(
        decode_entry(&bad_reason),
        Err(CodecError::UnknownTag {
            type_name: "RejectReason",
            found: 16
        })
    );

    // A huge length prefix is refused without allocating.
    let mut huge = good.clone();
    huge[28..36].copy_from_slice(&u64::MAX.to_le_bytes());
    assert!(decode_entry(&huge).is_err());

    // A stored body that does not match its digest.
    let mut tampered = e.clone();
    if let Some(b) = tampered.body.as_mut() {
        b[0] = b'[';
    }
    assert_eq!(
        decode_entry(&encode_entry(&tampered)),
        Err(CodecError::BodyMismatch)
    );
    let mut wrong_len = e.clone();
    wrong_len.body_len += 1;
    assert_eq!(
        decode_entry(&encode_entry(&wrong_len)),
        Err(CodecError::BodyMismatch)
    );

    // The folds' own reader refuses each of them with the same error.
    let leaf = encode_entry(&tampered);
    for bad in [
        &trailing,
        &bad_utf8,
        &bad_opt,
        &bad_tag,
        &bad_reason,
        &huge,
        &leaf,
        &encode_entry(&wrong_len),
    ] {
        let err = decode_entry(bad).expect_err("refused");
        assert_eq!(decode_fold_leaf(bad), Err(err.clone()));
        // And so does the reader that does not hash the body, but for the
        // body changed behind its hash (below).
        if *bad != leaf {
            assert_eq!(decode_fold_leaf_unhashed(bad), Err(err));
        }
    }
    let read = decode_fold_leaf_unhashed(&leaf).expect("read without the hash");
    assert_eq!(read.body, tampered.body.as_deref());
}

#[test]
fn accessors() {
    let entries = golden_entries();
    assert_eq!(entries[0].1.event_id(), Some("e-1"));
    assert_eq!(entries[0].1.reject_reason(), None);
    assert_eq!(entries[1].1.event_id(), None);
    assert_eq!(entries[1].1.tenant(), None);
    assert_eq!(
        entries[1].1.reject_reason(),
        Some(RejectReason::MissingHeader)
    );
    assert_eq!(entries[2].1.tenant(), Some("acme"));
    assert!(matches!(entries[2].1.verdict, Verdict::Rejected { .. }));
}

fn opt_string() -> impl Strategy<Value = Option<String>> {
    proptest::option::of(".{0,24}")
}

fn arb_entry() -> impl Strategy<Value = Entry> {
    let meta = (
        any::<u64>(),
        any::<u64>(),
        any::<u64>(),
        ".{0,32}",
        opt_string(),
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..80)),
    )
        .prop_map(
            |(seq, stream_seq, time_ns, subject, key_id, signature)| MessageMeta {
                seq: Seq(seq),
                stream_seq,
                time_ns,
                subject,
                key_id,
                signature,
            },
        );
    let reason = proptest::sample::select(RejectReason::ALL);
    let verdict = prop_oneof![
        (".{0,24}", ".{0,24}", ".{0,24}").prop_map(|(event_id, event_type, tenant)| {
            Verdict::Accepted {
                event_id,
                event_type,
                tenant,
            }
        }),
        (reason, ".{0,40}", opt_string(), opt_string()).prop_map(
            |(reason, detail, event_id, tenant)| Verdict::Rejected {
                reason,
                detail,
                event_id,
                tenant,
            }
        ),
    ];
    (
        meta,
        proptest::collection::vec(any::<u8>(), 0..200),
        any::<bool>(),
        verdict,
    )
        .prop_map(|(meta, body, keep, verdict)| {
            let mut e = Entry::rejected(meta, &body, RejectReason::Duplicate, "", None, None);
            if keep {
                e.body = Some(body);
            }
            e.verdict = verdict;
            e
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn round_trip(e in arb_entry()) {
        let bytes = encode_entry(&e);
        prop_assert_eq!(decode_entry(&bytes).unwrap(), e);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = decode_entry(&bytes);
        let mut with_magic = ENTRY_MAGIC.to_vec();
        with_magic.extend_from_slice(&bytes);
        let _ = decode_entry(&with_magic);
    }

    #[test]
    fn every_byte_change_is_detected(e in arb_entry(), pos in any::<prop::sample::Index>(), delta in 1u8..=255) {
        let bytes = encode_entry(&e);
        let mut changed = bytes.clone();
        let i = pos.index(changed.len());
        changed[i] = changed[i].wrapping_add(delta);
        match decode_entry(&changed) {
            Err(_) => {}
            Ok(other) => {
                prop_assert_ne!(&other, &e);
                // Canonical: what decodes re-encodes to exactly the input.
                prop_assert_eq!(encode_entry(&other), changed);
            }
        }
    }

    /// The borrowed decoder accepts exactly what the owned one accepts, with the
    /// same fields and the same errors: on valid entries, on entries with a byte
    /// changed, cut short, and on arbitrary bytes after the magic.
    #[test]
    fn borrowed_decode_agrees_with_owned_decode(
        e in arb_entry(),
        pos in any::<prop::sample::Index>(),
        delta in 0u8..=255,
        cut in any::<prop::sample::Index>(),
        junk in proptest::collection::vec(any::<u8>(), 0..120),
    ) {
        let bytes = encode_entry(&e);
        let mut changed = bytes.clone();
        let i = pos.index(changed.len());
        changed[i] = changed[i].wrapping_add(delta);
        let mut with_magic = ENTRY_MAGIC.to_vec();
        with_magic.extend_from_slice(&junk);
        for input in [&bytes[..], &changed[..], &bytes[..cut.index(bytes.len())], &with_magic[..]] {
            prop_assert_eq!(
                decode_entry_ref(input).map(|r| r.to_entry()),
                decode_entry(input)
            );
        }
    }

    /// The fold's reader accepts exactly what the borrowed decoder accepts, with
    /// the same time, verdict and body and the same errors: on entries with any
    /// strings (and, from the golden ones, the ASCII strings producers send), with
    /// a byte changed (inside a string: invalid UTF-8, or another character), cut
    /// short, and on arbitrary bytes after the magic.
    #[test]
    fn fold_leaf_decode_agrees_with_borrowed_decode(
        e in arb_entry(),
        golden in any::<prop::sample::Index>(),
        pos in any::<prop::sample::Index>(),
        delta in 0u8..=255,
        small in 0u8..4,
        cut in any::<prop::sample::Index>(),
        junk in proptest::collection::vec(any::<u8>(), 0..120),
    ) {
        let goldens = golden_entries();
        let ascii = encode_entry(&goldens[golden.index(goldens.len())].1);
        let bytes = encode_entry(&e);
        // The byte at `pos` changed by `f`.
        let with_byte = |b: &[u8], f: &dyn Fn(u8) -> u8| {
            let mut b = b.to_vec();
            let i = pos.index(b.len());
            b[i] = f(b[i]);
            b
        };
        let changed = |b: &[u8]| with_byte(b, &|x| x.wrapping_add(delta));
        // A byte set to a small value: tags and option bytes are 0 or 1, so a
        // changed one is most often another small value.
        let set_small = |b: &[u8]| with_byte(b, &|_| small);
        let mut with_magic = ENTRY_MAGIC.to_vec();
        with_magic.extend_from_slice(&junk);
        let inputs = [
            bytes.clone(),
            changed(&bytes),
            set_small(&bytes),
            bytes[..cut.index(bytes.len())].to_vec(),
            ascii.clone(),
            changed(&ascii),
            set_small(&ascii),
            ascii[..cut.index(ascii.len())].to_vec(),
            with_magic,
        ];
        for input in &inputs {
            prop_assert_eq!(
                decode_fold_leaf(input),
                decode_entry_ref(input).map(|r| fold_leaf_of(&r))
            );
            // Without the body's hash: the same, but for a wrong hash alone.
            let unhashed = decode_fold_leaf_unhashed(input);
            match decode_fold_leaf(input) {
                Err(CodecError::BodyMismatch) => prop_assert!(matches!(
                    unhashed,
                    Ok(_) | Err(CodecError::BodyMismatch)
                )),
                checked => prop_assert_eq!(unhashed, checked),
            }
        }
    }

    #[test]
    fn truncation_is_detected(e in arb_entry(), cut in any::<prop::sample::Index>()) {
        let bytes = encode_entry(&e);
        let n = cut.index(bytes.len());
        prop_assert!(decode_entry(&bytes[..n]).is_err());
    }
}

/// What a fold reads of a borrowed entry.
fn fold_leaf_of<'a>(e: &EntryRef<'a>) -> FoldLeaf<'a> {
    FoldLeaf {
        time_ns: e.time_ns,
        rejected: match e.verdict {
            VerdictRef::Accepted { .. } => None,
            VerdictRef::Rejected { reason, .. } => Some(reason),
        },
        body: e.body,
    }
}

#[test]
fn entry_seq_reads_the_header_only() {
    for (name, e) in golden_entries() {
        let bytes = encode_entry(&e);
        assert_eq!(govledger_schemas::entry_seq(&bytes), Ok(e.seq), "{name}");
        // The header alone is enough; the rest is not looked at.
        assert_eq!(
            govledger_schemas::entry_seq(&bytes[..12]),
            Ok(e.seq),
            "{name}"
        );
        assert_eq!(
            govledger_schemas::entry_seq(&bytes[..11]),
            Err(CodecError::Truncated),
            "{name}"
        );
        let mut bad = bytes.clone();
        bad[0] = b'X';
        assert_eq!(
            govledger_schemas::entry_seq(&bad),
            Err(CodecError::BadMagic),
            "{name}"
        );
    }
}
