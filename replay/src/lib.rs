//! govledger replay: reading the ledger from a checkpoint.
//!
//! **Its one job (to come with the replay issue):** restore the projected state at a
//! signed checkpoint, apply the entries after it, and check on the way that every
//! state digest it computes equals the signed one; on top of that, time travel,
//! diffs, timelines, incident bundles and SIEM export.
//!
//! **What it must never do:** write to the ledger, or trust state it has not
//! re-derived from entries.
//!
//! **Who calls it:** the `govledger` binary.
//!
//! Today it offers building blocks that later commands share: [`entries_from`] and
//! [`count_until`].

pub mod time;

use govledger_ledger::store::LogStore;
use govledger_ledger::{Ledger, LedgerError};
use govledger_schemas::Entry;

/// The decoded entries of `ledger` from seq `from` to the end, in order.
pub fn entries_from<S: LogStore>(
    ledger: &Ledger<S>,
    from: u64,
) -> impl Iterator<Item = Result<Entry, LedgerError>> + '_ {
    (from..ledger.size()).map(move |seq| ledger.entry(seq).map(|(_, e)| e))
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
