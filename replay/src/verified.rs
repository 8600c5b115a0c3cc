//! Verified replay: the state at a signed checkpoint, then the entries after it,
//! checking on the way that the state digest computed at every checkpoint passed
//! equals the signed one.
//!
//! The start is the newest usable snapshot at or below the checkpoint (see
//! `govledger_ingest::snapshots`; entry 0 when there is none), so the digest at the
//! starting checkpoint is checked too unless a snapshot stands exactly there (its
//! digest was already matched against that checkpoint to be usable). Checkpoints
//! signed before the whole state had a digest carried the key ring's digest alone
//! (for example the store in `tests/data/store-v1/`); those are matched against the
//! key ring's digest and counted apart as legacy. A checkpoint with no digest is
//! counted as unchecked.
//!
//! The entries that a later checkpoint of the range covers with a digest of
//! all the state holds (version 3; version 2 for a state without ordinals,
//! which version 2 does not cover) are read without hashing their bodies
//! (their lengths are checked): that digest is their check. The detector's
//! per-agent tracks, which no digest covers and nothing a replay answers
//! reads, are folded from those bodies as they stand. When one does not match, the
//! entries since the last checkpoint that did are read again with every check,
//! and a body changed behind its recorded SHA-256 is named
//! ([`ReplayError::BodyChanged`]) rather than the checkpoint alone; an entry
//! that no longer reads is checked the same way. The entries after the range's
//! last such checkpoint are hashed as they are read. README, "What a replay
//! checks of each entry".

use govledger_ingest::snapshots::{self, SnapshotsError};
use govledger_ingest::{Admission, Trust};
use govledger_ledger::checkpoint::{Checkpoint, StateDigest};
use govledger_ledger::note::NoteVerifier;
use govledger_ledger::store::LogStore;
use govledger_ledger::{Ledger, LedgerError};
use govledger_schemas::{decode_entry_ref, CodecError, DecodeLimits};

/// What a verified replay did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    /// The checkpoint it started from.
    pub from_checkpoint: u64,
    /// The snapshot the state was restored from (0: folded from entry 0).
    pub snapshot: u64,
    /// Entries in the log it replayed through (exclusive end).
    pub to: u64,
    /// Entries folded (after the snapshot).
    pub entries_folded: u64,
    /// Checkpoints whose whole-state digest matched.
    pub checkpoints_checked: u64,
    /// Checkpoints that carried the key ring's digest alone, and matched it.
    pub legacy_checkpoints: u64,
    /// Checkpoints that carried no digest.
    pub unchecked_checkpoints: u64,
    /// The state digest at `to` (the version checkpoints are signed with now).
    pub state_digest: StateDigest,
}

/// Why a verified replay stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReplayError {
    /// The starting point is not a signed checkpoint.
    #[error("no checkpoint was signed at size {size}; the nearest are {nearest}")]
    NoCheckpoint {
        /// The size asked for.
        size: u64,
        /// The nearest signed sizes, in words.
        nearest: String,
    },
    /// The end is before the start or beyond the log.
    #[error("{0}")]
    Range(String),
    /// A stored checkpoint's signature does not verify.
    #[error("the checkpoint at size {size} does not verify with the log's key: {why}")]
    Signature {
        /// Its size.
        size: u64,
        /// Why.
        why: String,
    },
    /// The state derived from the entries is not the state that was signed.
    #[error(
        "state digest mismatch at the checkpoint of size {size} (right after entry {seq}): \
         signed sha256:{signed}, replay computed sha256:{computed}"
    )]
    Mismatch {
        /// The checkpoint's size.
        size: u64,
        /// The last entry folded before it.
        seq: u64,
        /// The signed digest, hex.
        signed: String,
        /// The digest the replay computed, hex.
        computed: String,
    },
    /// The checkpoint carries a state digest of a version or form this build does
    /// not know.
    #[error(
        "the checkpoint of size {size} carries a state digest this build cannot check \
         (`{line}`): upgrade govledger to replay this log"
    )]
    UnknownDigest {
        /// The checkpoint's size.
        size: u64,
        /// Its state-digest line.
        line: String,
    },
    /// The checkpoint carries a version-3 state digest, and the state has no
    /// ordinals to compute it with: it was restored from a snapshot without
    /// trusted ones (which a replay chooses only when its checkpoints do not
    /// need them), or one whose ordinals give two entries of a map one.
    #[error(
        "the checkpoint of size {size} carries a version-3 state digest, which needs each \
         state entry's ordinal, and the state was restored from a snapshot without usable ones"
    )]
    NoOrdinals {
        /// The checkpoint's size.
        size: u64,
    },
    /// A stored entry's body is not the one its recorded SHA-256 (part of the
    /// entry under the tree) names: changed behind the ledger's back. Found by
    /// reading the entry, or, for an entry that a later signed whole-state
    /// digest covers, when that digest did not match (`checkpoint`).
    #[error(
        "entry {seq}: its stored body does not match the length and SHA-256 its entry records (changed behind the ledger's back){}",
        checkpoint.map_or(String::new(), |size| format!(
            "; found when the state digest signed at the checkpoint of size {size} did not match"
        ))
    )]
    BodyChanged {
        /// The entry.
        seq: u64,
        /// The checkpoint whose digest did not match, if that is how it was found.
        checkpoint: Option<u64>,
    },
    /// Reading the ledger failed.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// Restoring a snapshot failed.
    #[error(transparent)]
    Snapshots(#[from] SnapshotsError),
}

/// Lowercase hex of `b`.
pub(crate) fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Replays `ledger` from the checkpoint at `from_checkpoint` through its first `to`
/// entries, checking every checkpoint in between (both ends included); `progress`
/// hears the number of entries folded so far. Returns the state at `to`.
///
/// A checkpoint in the range that carries a version-3 state digest needs the
/// state's ordinals: the replay then starts only from a snapshot that carries
/// them (or from entry 0).
pub fn replay<S: LogStore>(
    ledger: &Ledger<S>,
    trust: &Trust,
    verifier: &NoteVerifier,
    from_checkpoint: u64,
    to: u64,
    progress: &mut dyn FnMut(u64),
) -> Result<(Admission, Report), ReplayError> {
    replay_before(ledger, trust, verifier, from_checkpoint, to, to, progress)
}

/// [`replay`], its start chosen for checking the checkpoints up to `ahead`
/// (at least `to`): a stepper that may go on to the end starts from a state
/// that can check every checkpoint on the way.
pub(crate) fn replay_before<S: LogStore>(
    ledger: &Ledger<S>,
    trust: &Trust,
    verifier: &NoteVerifier,
    from_checkpoint: u64,
    to: u64,
    ahead: u64,
    progress: &mut dyn FnMut(u64),
) -> Result<(Admission, Report), ReplayError> {
    if ledger.checkpoint_at(from_checkpoint)?.is_none() {
        let (mut below, mut above) = (None, None);
        for item in ledger.store().scan_checkpoints() {
            let (size, _) = item.map_err(LedgerError::from)?;
            if size < from_checkpoint {
                below = Some(size);
            } else if above.is_none() {
                above = Some(size);
            }
        }
        let show = |s: Option<u64>| s.map_or("none".to_string(), |s| s.to_string());
        return Err(ReplayError::NoCheckpoint {
            size: from_checkpoint,
            nearest: format!("{} below and {} above", show(below), show(above)),
        });
    }
    if to < from_checkpoint || to > ledger.size() {
        return Err(ReplayError::Range(format!(
            "the end ({to} entries) must lie between the checkpoint ({from_checkpoint}) and the log's size ({})",
            ledger.size()
        )));
    }
    // Every checkpoint from the start through `to`, with the version of the
    // digest its text says it signs; whether any up to `ahead` carries a
    // version-3 digest (read from its text: a forged one costs only the choice
    // of an older start, or bodies read unhashed before a check that fails).
    let mut notes: Vec<(u64, String, Option<u32>)> = Vec::new();
    let mut v3_ahead = false;
    for item in ledger.store().scan_checkpoints() {
        let (size, note) = item.map_err(LedgerError::from)?;
        if (from_checkpoint..=ahead.max(to)).contains(&size) {
            let version = Checkpoint::peek(&note)
                .ok()
                .and_then(|cp| cp.state_digest)
                .map(|d| d.version);
            v3_ahead |= version == Some(3);
            if size <= to {
                notes.push((size, note, version));
            }
        }
    }
    let started = snapshots::start_with(
        ledger,
        trust,
        verifier,
        DecodeLimits {
            max_body_bytes: usize::MAX,
        },
        from_checkpoint,
        to,
        v3_ahead,
    )?;
    let mut adm = started.admission;
    // A snapshot's own checkpoint was matched when it was chosen.
    notes.retain(|(size, ..)| *size > started.from || started.from == 0);
    let mut report = Report {
        from_checkpoint,
        snapshot: started.from,
        to,
        entries_folded: 0,
        checkpoints_checked: 0,
        legacy_checkpoints: 0,
        unchecked_checkpoints: 0,
        state_digest: StateDigest {
            version: 0,
            hash: [0; 32],
        },
    };
    // One at the start itself is checked before folding; the others by the fold's
    // own thread as it reaches them, so the pipeline never drains at a checkpoint.
    let at_start = notes
        .iter()
        .take_while(|(s, ..)| *s <= started.from)
        .count();
    for (size, note, _) in &notes[..at_start] {
        check(&mut adm, verifier, *size, note, &mut report)?;
    }
    let rest = &notes[at_start..];
    let sizes: Vec<u64> = rest.iter().map(|(s, ..)| *s).collect();
    // The entries before the last checkpoint ahead that signs a digest of all
    // the state this replay holds are read without their bodies' SHA-256: that
    // digest is checked (a note whose signature fails stops the replay), and
    // when one does not match, the entries since the last one that did are
    // read again with every check, to name a body changed behind its hash.
    // Version 3 covers the maps' ordinals, which version 2 does not: a state
    // that has them (and reports its digest in version 3) is covered by
    // version 3 alone.
    let ordinals = adm.state().ordinals_known();
    let covered = rest
        .iter()
        .filter(|(.., version)| covers_all(*version, ordinals))
        .map(|(size, ..)| *size)
        .max()
        .unwrap_or(started.from);
    let mut next = rest.iter();
    let mut matched = started.from;
    let checks = &mut report;
    crate::fold_covered(
        &mut adm,
        ledger,
        started.from..to,
        covered,
        progress,
        &sizes,
        &mut |adm: &mut Admission| -> Result<(), ReplayError> {
            let (size, note, _) = next.next().expect("one note per stop");
            let before = checks.checkpoints_checked;
            let checked = check(adm, verifier, *size, note, checks);
            if matches!(checked, Err(ReplayError::Mismatch { .. })) {
                if let Some(seq) = changed_body(ledger, matched..*size) {
                    let checkpoint = Some(*size);
                    return Err(ReplayError::BodyChanged { seq, checkpoint });
                }
            } else if checks.checkpoints_checked > before {
                matched = *size;
            }
            checked
        },
    )
    .map_err(|e| body_changed_named(ledger, e))?;
    report.entries_folded = to - started.from;
    report.state_digest = adm.state_digest();
    Ok((adm, report))
}

/// Whether a checkpoint whose note says it signs a digest of `version` covers
/// all that a replay's state holds: version 3, or version 2 for a state without
/// ordinals (which version 2 does not cover). The version is read from the
/// note's text without its signature ([`Checkpoint::peek`]): [`check`] verifies
/// the signature before it uses the digest, and fails the replay if it does
/// not verify.
fn covers_all(version: Option<u32>, ordinals: bool) -> bool {
    let wanted = if ordinals { 3..=3 } else { 2..=3 };
    version.is_some_and(|v| wanted.contains(&v))
}

/// `e`, or for an entry that did not read because its body does not match its
/// recorded length and hash, [`ReplayError::BodyChanged`] naming it (found as
/// it was read). An entry read without its hash that failed otherwise (its
/// body no longer an event, say) is read again with every check to tell.
pub(crate) fn body_changed_named<S: LogStore>(ledger: &Ledger<S>, e: ReplayError) -> ReplayError {
    match e {
        ReplayError::Ledger(LedgerError::Codec { seq, ref source })
            if *source == CodecError::BodyMismatch
                || changed_body(ledger, seq..seq + 1).is_some() =>
        {
            ReplayError::BodyChanged {
                seq,
                checkpoint: None,
            }
        }
        e => e,
    }
}

/// The first entry in `range` whose kept body does not match the SHA-256 its
/// entry records, read with every check.
fn changed_body<S: LogStore>(ledger: &Ledger<S>, range: std::ops::Range<u64>) -> Option<u64> {
    let n = usize::try_from(range.end.saturating_sub(range.start)).unwrap_or(usize::MAX);
    crate::leaves_from(ledger, range.start)
        .take(n)
        .find_map(|item| {
            let (seq, leaf) = item.ok()?;
            matches!(decode_entry_ref(&leaf), Err(CodecError::BodyMismatch)).then_some(seq)
        })
}

/// Checks the state after `size` entries against the checkpoint signed there.
pub(crate) fn check(
    adm: &mut Admission,
    verifier: &NoteVerifier,
    size: u64,
    note: &str,
    report: &mut Report,
) -> Result<(), ReplayError> {
    let cp = Checkpoint::open_at(note, verifier, size).map_err(|e| ReplayError::Signature {
        size,
        why: e.to_string(),
    })?;
    let Some(signed) = cp.state_digest else {
        if let Some(line) = cp
            .extensions
            .iter()
            .find(|l| l.starts_with("state-digest "))
        {
            return Err(ReplayError::UnknownDigest {
                size,
                line: line.clone(),
            });
        }
        report.unchecked_checkpoints += 1;
        return Ok(());
    };
    let computed = adm.state_digest_of(signed.version).ok_or_else(|| {
        if signed.version == 3 {
            ReplayError::NoOrdinals { size }
        } else {
            ReplayError::UnknownDigest {
                size,
                line: signed.line(),
            }
        }
    })?;
    if computed == signed.hash {
        report.checkpoints_checked += 1;
    } else if signed.version == 1 && adm.ring().digest() == signed.hash {
        report.legacy_checkpoints += 1;
    } else {
        return Err(ReplayError::Mismatch {
            size,
            seq: size.saturating_sub(1),
            signed: hex(&signed.hash),
            computed: hex(&computed),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use govledger_ledger::note::NoteSigner;

    fn note(digest: Option<(u32, &str)>) -> String {
        let signer = NoteSigner::generate("example.org/log").unwrap();
        let cp = Checkpoint {
            origin: "example.org/log".into(),
            size: 10,
            root: [1; 32],
            state_digest: None,
            extensions: digest
                .map(|(v, h)| match v {
                    1 => format!("state-digest sha256:{h}"),
                    v => format!("state-digest v{v} sha256:{h}"),
                })
                .into_iter()
                .collect(),
        };
        cp.sign(&signer).unwrap()
    }

    /// Which checkpoints let the bodies before them go unhashed: version 3
    /// always, version 2 only for a state without ordinals (which version 2
    /// does not cover), no other version, and no note that does not read.
    #[test]
    fn a_digest_covers_the_bodies_before_it_only_if_it_covers_all_the_state() {
        let h = "ab".repeat(32);
        for (digest, with_ordinals, without) in [
            (Some((3, h.as_str())), true, true),
            (Some((2, h.as_str())), false, true),
            (Some((1, h.as_str())), false, false),
            (Some((4, h.as_str())), false, false),
            (None, false, false),
        ] {
            let n = note(digest);
            let version = Checkpoint::peek(&n)
                .unwrap()
                .state_digest
                .map(|d| d.version);
            assert_eq!(covers_all(version, true), with_ordinals, "{n}");
            assert_eq!(covers_all(version, false), without, "{n}");
        }
        let cut = note(Some((3, h.as_str())));
        assert!(Checkpoint::peek(&cut[..cut.find("\n\n").unwrap()]).is_err());
        assert!(Checkpoint::peek("not a note").is_err());
    }
}
