//! govledger's projections: pure, deterministic folds of ledger entries into state.
//!
//! **Its one job:** turn the sequence of accepted events into the current governance
//! state, and say whether a new event is consistent with it. Current state is never
//! stored as the truth; it is always this fold of the log.
//!
//! **What it must never do:** I/O of any kind (no RocksDB, no NATS, no files), read
//! the wall clock, draw random numbers, or let a `HashMap`'s order reach anything
//! that is hashed, stored or compared. Time is the entry's event time; order is key
//! order (the state maps hash their keys for lookups, and sort them for anything
//! that walks them: [`digest_map`]).
//!
//! **Who calls it:** `govledger-ingest` (admission: which key may sign what),
//! `govledger-replay` and the CLI (state queries).
//!
//! The folds:
//! - [`keys`]: the key ring (which key may sign what), which admission needs to
//!   verify signatures;
//! - [`gates`]: sessions and kill switches (no action outside an active session or
//!   under a kill switch);
//! - [`flows`]: proposals, decisions, approvals and executions (no decision or
//!   approval for an unknown proposal, no execution without an allow decision or an
//!   approval in scope);
//! - [`budgets`]: limits per identity scope and window of event time, warnings;
//! - [`detect`]: detection rules (alerts, not verdicts);
//! - [`state`]: the four verdict-bearing folds as one [`State`], with the checks in
//!   admission's order;
//! - [`canon`]: the canonical encoding behind the state digest in checkpoints and
//!   behind snapshots;
//! - [`digest_map`]: the map that keeps its digest up to date per change, behind
//!   state digest version 2;
//! - [`lookup`]: borrowed forms of the maps' `(tenant, id)` keys, so a lookup
//!   builds no owned strings;
//! - [`snapshot`]: the state at a log size as self-checking bytes, which the ledger
//!   stores at checkpoints so readers need not fold from entry 0.
//!
//! `govledger-ingest`'s admission runs their checks before append and folds every
//! accepted event.

pub mod budgets;
pub mod canon;
pub mod detect;
pub mod digest_map;
pub mod flows;
pub mod gates;
pub mod keys;
pub mod lookup;
pub mod snapshot;
pub mod state;

pub use budgets::{Budget, BudgetWarning, Budgets, Exceeded};
pub use canon::state_digest;
pub use detect::{DetectConfig, Detection, Detector};
pub use flows::{Flows, Grant, Proposal, ProposalStatus, Ticket, TicketStatus};
pub use gates::{Gates, Kill, Session, SessionStatus};
pub use keys::{KeyProblem, KeyRecord, KeyRing, KeyRole, KeyStatus};
pub use snapshot::{Snapshot, SnapshotError};
pub use state::{AutoKill, Refusal, State, DIGEST_VERSION};

/// Flows entries (proposals and tickets) from which a snapshot's flows part is
/// encoded on a second thread ([`beside`]), when the state holds that many (a
/// snapshot is decoded on two threads by its length instead,
/// [`snapshot::PARALLEL_DECODE_BYTES`]). A thread costs tens of microseconds,
/// encoding this many entries some tens of milliseconds.
pub const PARALLEL_ENTRIES: usize = 50_000;

/// Flows entries to hash from which the state digest computes the proposals'
/// root on a second thread ([`beside`]) while the calling thread computes the
/// other maps'. At `serve`'s default spacing a checkpoint finds a few thousand
/// (stop 28: verified replay, which digests on the thread that folds, faster in
/// five of six alternating pairs with this than with [`PARALLEL_ENTRIES`]); a
/// thread costs tens of microseconds, hashing this many entries about a
/// millisecond.
pub const DIGEST_APART_ENTRIES: usize = 1024;

/// Runs `there` and `here` and returns both results: when `apart`, `there` on a
/// thread of its own (named `name`) while `here` runs on the calling thread (the
/// big part of a large state's cold digest, snapshot encoding or decoding beside
/// the rest), otherwise both on the calling thread, `there` first. A panic on the
/// thread is raised again here; as `std::thread::Scope::spawn` does, a thread
/// that cannot start is a panic.
pub(crate) fn beside<A: Send, B>(
    apart: bool,
    name: &str,
    there: impl FnOnce() -> A + Send,
    here: impl FnOnce() -> B,
) -> (A, B) {
    if !apart {
        return (there(), here());
    }
    std::thread::scope(|s| {
        let handle = std::thread::Builder::new()
            .name(name.into())
            .spawn_scoped(s, there)
            .expect("failed to spawn thread");
        let b = here();
        let a = handle
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (a, b)
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn beside_gives_both_results_each_in_its_place() {
        let here = std::thread::current().id();
        let ids = |apart| {
            super::beside(
                apart,
                "beside-test",
                || (std::thread::current().id(), "there"),
                || (std::thread::current().id(), "here"),
            )
        };
        let (there, on) = ids(true);
        assert_eq!(there.1, "there");
        assert_eq!(on, (here, "here"));
        assert_ne!(there.0, here, "`there` ran on the calling thread");
        // Not apart: both here.
        assert_eq!(ids(false), ((here, "there"), (here, "here")));
    }

    #[test]
    fn a_panic_over_there_is_raised_here() {
        let caught = std::panic::catch_unwind(|| {
            super::beside(true, "beside-test", || panic!("over there"), || ())
        });
        let payload = caught.expect_err("the panic was lost");
        assert_eq!(payload.downcast_ref::<&str>(), Some(&"over there"));
    }
}
