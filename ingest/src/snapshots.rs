//! Snapshots in the ledger: when they are written, and how a reader starts from one.
//!
//! `serve` and `append` write a snapshot of the admission state
//! ([`govledger_projections::snapshot`]) right after signing a checkpoint, once
//! [`SnapshotPolicy::every`] entries were folded since the newest stored one, and
//! keep the newest [`SnapshotPolicy::keep`]. Readers ([`start`]) begin from the
//! newest snapshot at or below the size they want whose state digest equals the one
//! in the checkpoint signed at its size, and fold the entries after it. A snapshot
//! that fails any check is skipped with a warning and never used: folding from
//! entry 0 is always the fallback, so a damaged or missing snapshot costs time,
//! never correctness.
//!
//! Writers sign state digest v3, which needs each map entry's ordinal: they
//! start only from a snapshot that carries them ([`start_for_writing`];
//! snapshot format 2), and a snapshot is due at the first checkpoint while the
//! newest stored one does not ([`due`]), so that after an upgrade the fold
//! from an older point (or entry 0) happens once. A verified replay whose
//! range holds a version-3 checkpoint starts the same way ([`start_with`]).

use crate::admit::{Admission, Trust, TrustError};
use govledger_ledger::checkpoint::{Checkpoint, StateDigest};
use govledger_ledger::note::NoteVerifier;
use govledger_ledger::store::LogStore;
use govledger_ledger::{Ledger, LedgerError, SnapshotStore};
use govledger_projections::snapshot::{self, Snapshot};
use govledger_schemas::DecodeLimits;
use std::time::Instant;

/// When to write snapshots.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SnapshotPolicy {
    /// Write one at a checkpoint once this many entries were folded since the
    /// newest stored snapshot (0: never).
    pub every: u64,
    /// How many to keep (at least 1); older ones are deleted when a new one is
    /// written.
    pub keep: usize,
}

impl Default for SnapshotPolicy {
    fn default() -> Self {
        SnapshotPolicy {
            every: 100_000,
            keep: 3,
        }
    }
}

/// A snapshot written.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Written {
    /// The log size it stands at.
    pub size: u64,
    /// Its length in bytes.
    pub bytes: u64,
    /// Time to encode it and write it (synced at the end), seconds.
    pub seconds: f64,
    /// Of that, the time to encode it: the only part that reads the state.
    pub encode_seconds: f64,
}

/// Errors of [`start`] and [`after_checkpoint`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SnapshotsError {
    /// The ledger failed.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// The trust file's roots are unusable.
    #[error(transparent)]
    Trust(#[from] TrustError),
    /// Streaming a snapshot into the store failed.
    #[error("writing a snapshot: {0}")]
    Io(#[from] std::io::Error),
}

/// After signing `checkpoint` at the ledger's size: writes the snapshot of `adm`
/// that goes with it, if one is due under `policy`, deleting the oldest beyond
/// `keep`. The same as [`due`], then [`Due::write`].
pub fn after_checkpoint<S: LogStore>(
    ledger: &Ledger<S>,
    adm: &Admission,
    checkpoint: &Checkpoint,
    policy: SnapshotPolicy,
) -> Result<Option<Written>, SnapshotsError> {
    due(ledger, adm, checkpoint, policy)?
        .map(|d| d.write(&ledger.snapshot_store()))
        .transpose()
}

/// A snapshot that is due, encoded from the state, not yet written.
#[derive(Debug)]
pub struct Due {
    encoded: snapshot::Encoded,
    drop: Vec<u64>,
    encode_seconds: f64,
}

/// After signing `checkpoint` at the ledger's size: the snapshot of `adm` that goes
/// with it, encoded, if one is due under `policy`. This is the only step that reads
/// `adm`: a caller that shares it with writers can let them go on while
/// [`Due::write`] frames, hashes and stores the bytes.
/// Nothing is due unless `adm` has folded exactly the ledger's entries and the
/// checkpoint stands there with a state digest.
pub fn due<S: LogStore>(
    ledger: &Ledger<S>,
    adm: &Admission,
    checkpoint: &Checkpoint,
    policy: SnapshotPolicy,
) -> Result<Option<Due>, SnapshotsError> {
    let size = ledger.size();
    if checkpoint.state_digest.is_none() {
        return Ok(None);
    }
    if policy.every == 0 || adm.entries_folded() != size || checkpoint.size != size || size == 0 {
        return Ok(None);
    }
    let sizes = ledger.snapshot_sizes()?;
    let newest = sizes.last().copied().unwrap_or(0);
    if size.saturating_sub(newest) < policy.every && !outdated(ledger, adm, newest, size)? {
        return Ok(None);
    }
    // The new one counts as kept: drop all but the newest keep - 1 of the others.
    let others = sizes.iter().copied().filter(|&s| s != size);
    let drop = beyond_newest(others, policy.keep.max(1) - 1);
    let t = Instant::now();
    let encoded = adm.encode_snapshot();
    Ok(Some(Due {
        encoded,
        drop,
        encode_seconds: t.elapsed().as_secs_f64(),
    }))
}

/// Whether the newest stored snapshot, at `newest`, cannot start a writer
/// with its ordinals ([`start_for_writing`]: it carries none, or stands at a
/// checkpoint whose digest does not cover them) while `adm`'s state knows
/// them, at a checkpoint of another size: then one is due at once, so that the
/// next start need not fold from an older point again. Reads the snapshot's
/// first chunk (its magic) and the checkpoint at its size.
fn outdated<S: LogStore>(
    ledger: &Ledger<S>,
    adm: &Admission,
    newest: u64,
    size: u64,
) -> Result<bool, SnapshotsError> {
    if newest == 0 || newest == size || !adm.state().ordinals_known() {
        return Ok(false);
    }
    Ok(ordinals_refused(ledger, newest)?.is_some())
}

impl Due {
    /// The log size the snapshot stands at.
    pub fn size(&self) -> u64 {
        self.encoded.size()
    }

    /// Stores the snapshot (synced) and deletes the oldest beyond the policy's
    /// `keep`. If it fails, what it stored is deleted again (best effort), so
    /// the next checkpoint finds one due and no good snapshot is dropped in its
    /// favour; a crash before this returns leaves at most a partial snapshot,
    /// which its own checksum refuses.
    pub fn write<S: LogStore>(self, to: &SnapshotStore<S>) -> Result<Written, SnapshotsError> {
        let t = Instant::now();
        let mut encoded = self.encoded;
        let size = encoded.size();
        let stored = (|| -> Result<u64, SnapshotsError> {
            let mut w = to.writer(size)?;
            let bytes = encoded.write(&mut w)?;
            w.finish(&self.drop)?;
            Ok(bytes)
        })();
        let bytes = match stored {
            Ok(bytes) => bytes,
            Err(e) => {
                if let Err(e) = to.remove(size) {
                    tracing::warn!(size, error = %e, "cannot delete a snapshot that failed to write");
                }
                return Err(e);
            }
        };
        Ok(Written {
            size,
            bytes,
            seconds: self.encode_seconds + t.elapsed().as_secs_f64(),
            encode_seconds: self.encode_seconds,
        })
    }
}

/// Of snapshot sizes in ascending order, those past the newest `keep`: what
/// keeping `keep` deletes, newest first.
pub fn beyond_newest(sizes: impl DoubleEndedIterator<Item = u64>, keep: usize) -> Vec<u64> {
    sizes.rev().skip(keep).collect()
}

/// Writes due snapshots on a thread of its own, one at a time, so that whoever
/// appends goes on meanwhile: `serve` encodes a snapshot under the state's lock
/// ([`due`]) and hands it here, and its consumer never waits for the hashing,
/// the writing and the sync. The thread runs at the lowest priority
/// ([`crate::lower_thread_priority`]), so it takes no core the consumer needs.
/// Each snapshot written (or failed) is logged.
#[derive(Debug, Default)]
pub struct Background {
    running: Option<(
        u64,
        std::thread::JoinHandle<Result<Written, SnapshotsError>>,
    )>,
}

impl Background {
    /// Nothing written yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether a snapshot is being written (a finished one is collected and
    /// logged here).
    pub fn busy(&mut self) -> bool {
        if self.running.as_ref().is_some_and(|(_, h)| h.is_finished()) {
            self.finish();
        }
        self.running.is_some()
    }

    /// Starts writing `due` into `to` on a thread of its own, after the one being
    /// written, if any, is finished. Where no thread can be started the snapshot
    /// is skipped with a warning: it is derived data, and the next one due is
    /// written instead.
    pub fn start<S: LogStore + 'static>(&mut self, due: Due, to: SnapshotStore<S>) {
        self.finish();
        let size = due.size();
        match std::thread::Builder::new()
            .name("snapshot".into())
            .spawn(move || {
                // Behind everything with a deadline: the consumer, the HTTP API.
                crate::lower_thread_priority();
                due.write(&to)
            }) {
            Ok(h) => self.running = Some((size, h)),
            Err(e) => tracing::warn!(size, error = %e, "cannot start a thread to write a snapshot"),
        }
    }

    /// Waits for the snapshot being written, if any, and gives its outcome (also
    /// logged).
    pub fn finish(&mut self) -> Option<Result<Written, SnapshotsError>> {
        let (size, h) = self.running.take()?;
        let outcome = h.join().unwrap_or_else(|_| {
            Err(SnapshotsError::Io(std::io::Error::other(
                "the thread writing it panicked",
            )))
        });
        report(size, &outcome);
        Some(outcome)
    }
}

impl Drop for Background {
    /// Waits for the snapshot being written: whoever drops this may close the
    /// store next, and a snapshot cut short would only be skipped later. On a
    /// multi-threaded tokio runtime (`serve` returning early on an error) the
    /// wait is announced to it, so its other tasks move to other threads.
    fn drop(&mut self) {
        if self.running.is_none() {
            return;
        }
        let multi = tokio::runtime::Handle::try_current()
            .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
        if multi {
            tokio::task::block_in_place(|| self.finish());
        } else {
            self.finish();
        }
    }
}

/// Logs a snapshot written, or why not: a snapshot is derived data, so failing
/// to write one costs the next start time, never an entry, and is a warning.
pub fn report(size: u64, outcome: &Result<Written, SnapshotsError>) {
    match outcome {
        Ok(w) => tracing::info!(
            size = w.size,
            bytes = w.bytes,
            ms = w.seconds * 1e3,
            encode_ms = w.encode_seconds * 1e3,
            "snapshot written"
        ),
        Err(e) => tracing::warn!(size, error = %e, "cannot write a snapshot"),
    }
}

/// Where [`start`] began.
#[derive(Debug)]
pub struct Started {
    /// Admission as after `from` entries.
    pub admission: Admission,
    /// The snapshot's size, or 0 when none was usable.
    pub from: u64,
    /// Snapshots passed over, newest first, and why (none too new for `at_most`).
    pub skipped: Vec<(u64, String)>,
}

/// Admission as after the newest usable snapshot at or below `at_most` entries, or
/// fresh over `trust` when there is none. Usable means: it decodes strictly, its
/// size is `at_most` or less, a checkpoint was signed at exactly that size (checked
/// with `verifier`), and the checkpoint's state digest equals the snapshot's. The
/// caller folds entries `from..at_most` on top: the state's growing maps are
/// given room for them ([`start_ahead`]).
pub fn start<S: LogStore>(
    ledger: &Ledger<S>,
    trust: &Trust,
    verifier: &NoteVerifier,
    limits: DecodeLimits,
    at_most: u64,
) -> Result<Started, SnapshotsError> {
    start_ahead(ledger, trust, verifier, limits, at_most, at_most)
}

/// [`start`], for a caller that folds entries `from..to` on top (`to` may lie
/// beyond `at_most`: a replay from a checkpoint to the log's end). The restored
/// state's growing maps (proposals, tickets and their id lists, sessions) are
/// decoded with room for their share of those entries
/// (`govledger_projections::snapshot::open_ahead`: the map's entries per entry
/// in the snapshot, at most as many again as it holds), so that the fold after
/// the start does not stop to grow them, each growth moving every entry on the
/// folding thread while the pipeline's readers wait (docs/BENCHMARKS.md, stop
/// 31). Only the maps' capacity depends on `to`.
pub fn start_ahead<S: LogStore>(
    ledger: &Ledger<S>,
    trust: &Trust,
    verifier: &NoteVerifier,
    limits: DecodeLimits,
    at_most: u64,
    to: u64,
) -> Result<Started, SnapshotsError> {
    start_with(ledger, trust, verifier, limits, at_most, to, false)
}

/// [`start`] for a writer (`serve`, `append`, …), whose checkpoints sign state
/// digest v3 ([`Admission::state_digest`]): a snapshot that carries no
/// ordinals (format 1, written before v3) is passed over, so the state starts
/// from an older one that carries them or from entry 0, and knows its
/// ordinals. Once, after an upgrade: the first checkpoint then writes a
/// snapshot that carries them ([`due`]).
pub fn start_for_writing<S: LogStore>(
    ledger: &Ledger<S>,
    trust: &Trust,
    verifier: &NoteVerifier,
    limits: DecodeLimits,
) -> Result<Started, SnapshotsError> {
    let size = ledger.size();
    start_with(ledger, trust, verifier, limits, size, size, true)
}

/// [`start_ahead`]; with `ordinals`, a snapshot that carries no ordinals is
/// passed over (the entries up to `to` will be checked against a version-3
/// state digest, which needs them).
pub fn start_with<S: LogStore>(
    ledger: &Ledger<S>,
    trust: &Trust,
    verifier: &NoteVerifier,
    limits: DecodeLimits,
    at_most: u64,
    to: u64,
    ordinals: bool,
) -> Result<Started, SnapshotsError> {
    let mut skipped = Vec::new();
    for size in ledger.snapshot_sizes()?.into_iter().rev() {
        if size > at_most {
            continue;
        }
        // Passed over before it is read whole when its ordinals are wanted
        // and cannot be trusted.
        let refused = match ordinals {
            true => ordinals_refused(ledger, size).map_err(|e| e.to_string()),
            false => Ok(None),
        };
        let found = refused.and_then(|refused| match refused {
            Some(why) => Err(why.to_string()),
            None => check_ahead(ledger, verifier, size, to.saturating_sub(size))
                .map(|checked| Admission::from_decoded(checked.snapshot, limits)),
        });
        match found {
            Ok(admission) => {
                return Ok(Started {
                    admission,
                    from: size,
                    skipped,
                })
            }
            Err(why) => {
                if for_want_of_ordinals(&why) {
                    // Expected once after an upgrade, not a fault.
                    tracing::info!(size, %why, "snapshot not used");
                } else {
                    tracing::warn!(size, %why, "snapshot not used");
                }
                skipped.push((size, why));
            }
        }
    }
    Ok(Started {
        admission: Admission::new(trust, limits)?,
        from: 0,
        skipped,
    })
}

/// Why the ordinals of the snapshot at `size` cannot start a state that signs
/// (or is checked against) state digest v3, as its magic and the checkpoint at
/// its size say, neither read whole nor verified: [`NO_ORDINALS`] for format
/// 1, [`UNCHECKED_ORDINALS`] at a checkpoint whose digest is older than
/// version 3. `None` does not make it usable: [`check`] decides that.
fn ordinals_refused<S: LogStore>(
    ledger: &Ledger<S>,
    size: u64,
) -> Result<Option<&'static str>, LedgerError> {
    let head = ledger.snapshot_head(size)?.unwrap_or_default();
    if head.starts_with(&snapshot::MAGIC) {
        return Ok(Some(NO_ORDINALS));
    }
    let older = ledger
        .checkpoint_at(size)?
        .and_then(|cp| cp.checkpoint.state_digest)
        .is_some_and(|d| d.version < 3);
    Ok(older.then_some(UNCHECKED_ORDINALS))
}

/// Whether `why` (a reason in [`Started::skipped`]) passed a snapshot over for
/// its ordinals alone ([`NO_ORDINALS`], [`UNCHECKED_ORDINALS`]): expected once
/// after an upgrade, not a fault.
pub fn for_want_of_ordinals(why: &str) -> bool {
    why == NO_ORDINALS || why == UNCHECKED_ORDINALS
}

/// Why a snapshot of format 1 cannot start a state that signs, or is checked
/// against, state digest v3.
pub const NO_ORDINALS: &str = "it carries no ordinals (snapshot format 1, written before state digest v3), which version-3 state digests need";

/// Why a snapshot of format 2 at a checkpoint of version 1 or 2 cannot either:
/// no signed digest covers its ordinals, so they are not trusted.
pub const UNCHECKED_ORDINALS: &str = "its ordinals are not covered by the checkpoint at its size, whose state digest is older than version 3, so they are not trusted for version-3 state digests";

/// A stored snapshot whose state matches the checkpoint signed at its size.
#[derive(Debug)]
pub struct Checked {
    /// Its length in bytes.
    pub bytes: usize,
    /// Its header: its state digest checked against the parts where the
    /// checkpoint carries a version-1 digest, and otherwise as the snapshot
    /// claims it (the decoded state's own digest was matched instead).
    pub header: snapshot::Header,
    /// The state digest the checkpoint at its size carries, which it matched.
    pub signed: StateDigest,
    /// The snapshot, decoded; its digest caches are filled when the checkpoint
    /// carries a version-2 or version-3 digest.
    pub snapshot: Snapshot,
}

impl Checked {
    /// Whether its ordinals can start a state that signs state digest v3: it
    /// carries them (format 2) and the checkpoint at its size covers them
    /// (version 3), as [`start_with`] asks of a writer's start.
    pub fn ordinals_trusted(&self) -> bool {
        self.header.ordinals && self.signed.version >= 3
    }
}

/// The snapshot stored at `size`, decoded, if its framing and checksum hold and
/// its state has the digest that the checkpoint signed at `size`
/// (checked with `verifier`) carries: a version-1 digest is compared with the
/// header's, a version-2 or version-3 one is computed from the decoded state
/// (version 3 needs the ordinals of a snapshot of format 2). A state checked
/// against a version-1 or version-2 digest forgets its ordinals, which that
/// digest does not cover. Otherwise why not, in a sentence.
pub fn check<S: LogStore>(
    ledger: &Ledger<S>,
    verifier: &NoteVerifier,
    size: u64,
) -> Result<Checked, String> {
    check_ahead(ledger, verifier, size, 0)
}

/// The snapshot stored at `size`, and the SHA-256 of its content
/// ([`snapshot::ContentSum`]) computed on a thread of its own while the rest
/// is read: the read runs on one core (a large snapshot's in tens of
/// milliseconds, most of them page faults of the fresh buffer), and the
/// checksum it spares the decode was 20 ms more on the longer decoding
/// thread (docs/BENCHMARKS.md, stop 36). Each chunk is copied for that thread into
/// one of a few buffers it hands back.
fn read_summed<S: LogStore>(ledger: &Ledger<S>, size: u64) -> Result<Option<Summed>, LedgerError> {
    std::thread::scope(|s| {
        let (to_sum, pieces) = std::sync::mpsc::sync_channel::<Vec<u8>>(SUM_AHEAD);
        let (spent, reuse) = std::sync::mpsc::channel::<Vec<u8>>();
        let summing = std::thread::Builder::new()
            .name("snapshot-sum".into())
            .spawn_scoped(s, move || {
                let mut sum = snapshot::ContentSum::new();
                for piece in pieces {
                    sum.update(&piece);
                    // The reader may be done with them already.
                    let _ = spent.send(piece);
                }
                sum.finish()
            })
            // As `Scope::spawn` does: a thread that cannot start is a panic.
            .expect("failed to spawn thread");
        let read = ledger.snapshot_with(size, &mut |bytes| {
            let mut piece = reuse.try_recv().unwrap_or_default();
            piece.clear();
            piece.extend_from_slice(bytes);
            // It ends only after this sender is dropped.
            let _ = to_sum.send(piece);
        });
        drop(to_sum);
        let sum = match summing.join() {
            Ok(sum) => sum,
            Err(panic) => std::panic::resume_unwind(panic),
        };
        Ok(read?.map(|bytes| (bytes, sum)))
    })
}

/// A stored snapshot's bytes, and the SHA-256 of its content.
type Summed = (Vec<u8>, [u8; 32]);

/// Pieces (1 MiB chunks) [`read_summed`] may hand its summing thread ahead of
/// its hashing.
const SUM_AHEAD: usize = 4;

/// [`check`], its state decoded with room for about `ahead` more entries
/// (`govledger_projections::snapshot::open_ahead`).
fn check_ahead<S: LogStore>(
    ledger: &Ledger<S>,
    verifier: &NoteVerifier,
    size: u64,
    ahead: u64,
) -> Result<Checked, String> {
    let (bytes, content_sum) = read_summed(ledger, size)
        .map_err(|e| e.to_string())?
        .ok_or("it vanished while being read")?;
    // What the header claims is judged first, without decoding the state; a
    // snapshot turned down for it is then checked (`verify`: checksum, framing,
    // digest), so that damaged bytes are named as such whatever else is wrong
    // with them. One that passes is checked and decoded in one pass
    // (`open_ahead_summed`, or against a version-2 or version-3 digest
    // `open_for_digest_summed`; either way its checksum summed as it was
    // read).
    let (claimed_size, claimed_digest) = snapshot::claimed(&bytes).unwrap_or_default();
    let refuse = |why: String| match snapshot::verify(&bytes) {
        Err(e) => e.to_string(),
        Ok(_) => why,
    };
    if claimed_size != size {
        return Err(refuse(format!(
            "it is stored at size {size} but says {claimed_size}"
        )));
    }
    let cp = ledger
        .checkpoint_at(size)
        .map_err(|e| refuse(e.to_string()))?
        .ok_or_else(|| refuse("no checkpoint was signed at its size".into()))?;
    let signed = Checkpoint::open_at(&cp.note, verifier, size)
        .map_err(|e| refuse(format!("the checkpoint at its size does not verify: {e}")))?
        .state_digest
        .ok_or_else(|| refuse("the checkpoint at its size carries no state digest".into()))?;
    if signed.version == 1 && signed.hash != claimed_digest {
        return Err(refuse(
            "its state digest differs from the signed checkpoint's".into(),
        ));
    }
    // Against a version-2 or version-3 digest, the decoded state's digest of
    // that version covers every state part: the header's version-1 digest is
    // not computed again.
    let (header, mut snapshot) = match signed.version {
        1 => snapshot::open_ahead_summed(&bytes, ahead, content_sum),
        _ => snapshot::open_for_digest_summed(&bytes, ahead, content_sum),
    }
    .map_err(|e| e.to_string())?;
    if signed.version < 3 {
        // No signed digest covers its ordinals: not trusted (a state that
        // signs version 3 from forged ones would sign what a fold from entry 0
        // does not reach).
        snapshot.state.forget_ordinals();
    }
    if signed.version != 1 {
        let ours = snapshot.state.digest_of(signed.version).ok_or_else(|| {
            if signed.version == 3 && !header.ordinals {
                format!("the checkpoint at its size carries a version-3 state digest, but {NO_ORDINALS}")
            } else if signed.version == 3 {
                "its ordinals give two entries of a map one ordinal, so its state has no version-3 digest".to_string()
            } else {
                format!(
                    "the checkpoint at its size carries a version-{} state digest, which this build does not know",
                    signed.version
                )
            }
        })?;
        if ours != signed.hash {
            return Err("its state digest differs from the signed checkpoint's".into());
        }
    }
    Ok(Checked {
        bytes: bytes.len(),
        header,
        signed,
        snapshot,
    })
}
