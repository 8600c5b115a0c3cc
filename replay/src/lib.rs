//! govledger replay: reading the ledger from a checkpoint.
//!
//! **Its one job:** answer, from the log alone, what happened and why, in a form
//! others can check: restore the projected state at a signed checkpoint and apply
//! the entries after it, checking on the way that every state digest it computes
//! equals the signed one; step through it; list what concerned an agent with what
//! was in force; explain a verdict; and write incident bundles that verify offline.
//!
//! **What it must never do:** write to the ledger, or trust state it has not
//! re-derived from entries or matched against a signed checkpoint (a snapshot is
//! used only when its digest is the signed one).
//!
//! **Who calls it:** the `govledger` binary.
//!
//! - [`verified`]: replay from a signed checkpoint, checking the state digest at
//!   every checkpoint passed; [`stepper`]: the same, one entry at a time, forward,
//!   back and to any point.
//! - [`scope`]: which entries concern a tenant, agent or session;
//!   [`timeline`] lists them with the decision, approvals and budgets in force, and
//!   [`html`] draws that as a page; [`explain`] names the earlier entries behind
//!   one verdict.
//! - [`bundle`]: incident bundles (format and checks in its docs and in README).
//! - [`leaves_from`], [`entries_from`], [`fold`], [`walk`] and [`count_until`] are
//!   the reading blocks they share.

pub mod bundle;
pub mod explain;
pub mod html;
pub mod scope;
pub mod stepper;
pub mod time;
pub mod timeline;
pub mod verified;

use govledger_ingest::{Admission, LeafReader, StoredLeaves};
use govledger_ledger::store::{LogStore, StoreError};
use govledger_ledger::{Ledger, LedgerError};
use govledger_schemas::{decode_entry, Entry, Envelope};

/// The stored leaves (seq, bytes) of `ledger` from seq `from` to the end, in order,
/// read with one ordered scan (not a point read per entry). A missing or misplaced
/// entry is an error, and the iterator ends after it.
pub fn leaves_from<S: LogStore>(
    ledger: &Ledger<S>,
    from: u64,
) -> impl Iterator<Item = Result<(u64, Vec<u8>), LedgerError>> + '_ {
    let end = ledger.size();
    let mut next = from;
    let mut scan = ledger.store().scan_entries(from);
    std::iter::from_fn(move || {
        if next >= end {
            return None;
        }
        let seq = next;
        // After an error there is nothing sound to read on: end there.
        next = end;
        let missing = || -> LedgerError {
            StoreError::Corrupt(format!("entry {seq} is missing from the store")).into()
        };
        let item = match scan.next() {
            None => Err(missing()),
            Some(Err(e)) => Err(e.into()),
            Some(Ok((s, _))) if s != seq => Err(missing()),
            Some(Ok(leaf)) => Ok(leaf),
        };
        if item.is_ok() {
            next = seq + 1;
        }
        Some(item)
    })
}

/// The decoded entries of `ledger` from seq `from` to the end ([`leaves_from`]).
pub fn entries_from<S: LogStore>(
    ledger: &Ledger<S>,
    from: u64,
) -> impl Iterator<Item = Result<Entry, LedgerError>> + '_ {
    leaves_from(ledger, from).map(|item| {
        let (seq, leaf) = item?;
        decode_entry(&leaf).map_err(|source| LedgerError::Codec { seq, source })
    })
}

/// Folds entries `from..to` of `ledger` into `adm` (which must stand at `from`),
/// reading, decoding and folding at once on every core
/// ([`Admission::replay_pipelined`]); `progress` hears the entries folded so far.
/// A `to` beyond the log's end is an error before anything is folded; a missing
/// entry, one that does not decode, or one bearing on the state whose kept body
/// is not an event, an error naming it after every entry before it.
pub fn fold<S: LogStore>(
    adm: &mut Admission,
    ledger: &Ledger<S>,
    from: u64,
    to: u64,
    progress: &mut dyn FnMut(u64),
) -> Result<(), LedgerError> {
    fold_stopping(adm, ledger, from, to, progress, &[], &mut |_| Ok(()))
}

/// [`fold`], calling `at_stop` with the state whenever the log size folded reaches
/// one of `stops` (ascending), without stopping the pipeline
/// ([`Admission::replay_pipelined_stopping`]).
pub fn fold_stopping<S: LogStore, E: From<LedgerError> + Send>(
    adm: &mut Admission,
    ledger: &Ledger<S>,
    from: u64,
    to: u64,
    progress: &mut dyn FnMut(u64),
    stops: &[u64],
    at_stop: &mut dyn FnMut(&mut Admission) -> Result<(), E>,
) -> Result<(), E> {
    fold_covered(adm, ledger, from..to, from, progress, stops, at_stop)
}

/// [`fold_stopping`] over `range`, the kept bodies of the entries before
/// `covered` read without their SHA-256, for a caller that checks a signed
/// whole-state digest at a stop at or after `covered`
/// ([`Admission::replay_pipelined_covered`]; [`verified`] does).
pub(crate) fn fold_covered<S: LogStore, E: From<LedgerError> + Send>(
    adm: &mut Admission,
    ledger: &Ledger<S>,
    range: std::ops::Range<u64>,
    covered: u64,
    progress: &mut dyn FnMut(u64),
    stops: &[u64],
    at_stop: &mut dyn FnMut(&mut Admission) -> Result<(), E>,
) -> Result<(), E> {
    within_log(ledger, range.start, range.end)?;
    let open = || -> Box<dyn LeafReader<E> + '_> { Box::new(StoredLeaves::new(ledger.store())) };
    adm.replay_pipelined_covered(
        range,
        covered,
        &open,
        |seq, source| LedgerError::Codec { seq, source }.into(),
        progress,
        stops,
        at_stop,
    )
}

/// A fold's end `to` must lie within the log: the error before anything is folded.
fn within_log<S: LogStore>(ledger: &Ledger<S>, from: u64, to: u64) -> Result<(), LedgerError> {
    if to > ledger.size() {
        let at = ledger.size().max(from);
        return Err(LedgerError::OutOfRange(format!(
            "entry {at} cannot be read"
        )));
    }
    Ok(())
}

/// What [`walk`] calls after each entry: the state after it, its leaf bytes, the
/// entry and its decoded body.
pub type Visit<'a, E> =
    dyn FnMut(&Admission, &[u8], &Entry, Option<&Envelope>) -> Result<(), E> + 'a;

/// Folds entries `from..to` of `ledger` into `adm` (which must stand at `from`) one
/// at a time, in order, and after each calls `visit` with the state after it, the
/// leaf bytes, the entry and its decoded body ([`Admission::replay_entry`]: an
/// entry bearing on the state whose body no longer decodes is an error); `progress`
/// hears the entries folded every 4,096. Slower than [`fold`] (one thread, one
/// entry at a time), for readers that look at every step. Errors as [`fold`]'s.
pub fn walk<S: LogStore, E: From<LedgerError>>(
    adm: &mut Admission,
    ledger: &Ledger<S>,
    from: u64,
    to: u64,
    progress: &mut dyn FnMut(u64),
    visit: &mut Visit<'_, E>,
) -> Result<(), E> {
    within_log(ledger, from, to)?;
    let mut leaves = leaves_from(ledger, from);
    for seq in from..to {
        let missing = || LedgerError::OutOfRange(format!("entry {seq} cannot be read"));
        let (seq, leaf) = leaves.next().ok_or_else(missing)??;
        let entry = decode_entry(&leaf).map_err(|source| LedgerError::Codec { seq, source })?;
        let env = adm
            .replay_entry(&entry)
            .map_err(|source| LedgerError::Codec { seq, source })?;
        visit(adm, &leaf, &entry, env.as_ref())?;
        if (seq - from) % 4096 == 4095 {
            progress(seq + 1 - from);
        }
    }
    progress(to.saturating_sub(from));
    Ok(())
}

/// How many entries, from the start, have event times at or before `until_ns`: the
/// seq of the first entry after it. Entries are in stream order, and JetStream
/// timestamps only grow along a stream, so this is a binary search (O(log n) reads).
pub fn count_until<S: LogStore>(ledger: &Ledger<S>, until_ns: u64) -> Result<u64, LedgerError> {
    let (mut lo, mut hi) = (0u64, ledger.size());
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if ledger.entry(mid)?.1.time_ns <= until_ns {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    Ok(lo)
}
