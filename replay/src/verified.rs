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

use govledger_ingest::snapshots::{self, SnapshotsError};
use govledger_ingest::{Admission, Trust};
use govledger_ledger::checkpoint::Checkpoint;
use govledger_ledger::note::NoteVerifier;
use govledger_ledger::store::LogStore;
use govledger_ledger::{Ledger, LedgerError};
use govledger_schemas::DecodeLimits;

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
    /// The state digest at `to`.
    pub state_digest: [u8; 32],
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
pub fn replay<S: LogStore>(
    ledger: &Ledger<S>,
    trust: &Trust,
    verifier: &NoteVerifier,
    from_checkpoint: u64,
    to: u64,
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
    let started = snapshots::start(
        ledger,
        trust,
        verifier,
        DecodeLimits {
            max_body_bytes: usize::MAX,
        },
        from_checkpoint,
    )?;
    let mut adm = started.admission;
    // Stops: every checkpoint from the start through `to` (a snapshot's own was
    // matched when it was chosen), then `to` itself.
    let mut stops: Vec<(u64, Option<String>)> = Vec::new();
    for item in ledger.store().scan_checkpoints() {
        let (size, note) = item.map_err(LedgerError::from)?;
        if (from_checkpoint..=to).contains(&size) && (size > started.from || started.from == 0) {
            stops.push((size, Some(note)));
        }
    }
    stops.push((to, None));
    let mut report = Report {
        from_checkpoint,
        snapshot: started.from,
        to,
        entries_folded: 0,
        checkpoints_checked: 0,
        legacy_checkpoints: 0,
        unchecked_checkpoints: 0,
        state_digest: [0; 32],
    };
    let mut at = started.from;
    for (size, note) in stops {
        if at < size {
            let base = report.entries_folded;
            crate::fold(&mut adm, ledger, at, size, &mut |n| progress(base + n))?;
            report.entries_folded += size - at;
            at = size;
        }
        if let Some(note) = note {
            check(&adm, verifier, size, &note, &mut report)?;
        }
    }
    report.state_digest = adm.state_digest();
    Ok((adm, report))
}

/// Checks the state after `size` entries against the checkpoint signed there.
pub(crate) fn check(
    adm: &Admission,
    verifier: &NoteVerifier,
    size: u64,
    note: &str,
    report: &mut Report,
) -> Result<(), ReplayError> {
    let cp = Checkpoint::open(note, verifier).map_err(|e| ReplayError::Signature {
        size,
        why: e.to_string(),
    })?;
    let Some(signed) = cp.state_digest else {
        report.unchecked_checkpoints += 1;
        return Ok(());
    };
    let computed = adm.state_digest();
    if computed == signed {
        report.checkpoints_checked += 1;
    } else if adm.ring().digest() == signed {
        report.legacy_checkpoints += 1;
    } else {
        return Err(ReplayError::Mismatch {
            size,
            seq: size.saturating_sub(1),
            signed: hex(&signed),
            computed: hex(&computed),
        });
    }
    Ok(())
}
