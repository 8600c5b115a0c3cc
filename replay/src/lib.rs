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
//! Today it offers one building block, [`entries_from`], that later commands share.

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
