//! govledger's projections: pure, deterministic folds of ledger entries into state.
//!
//! **Its one job:** turn the sequence of accepted events into the current governance
//! state, and say whether a new event is consistent with it. Current state is never
//! stored as the truth; it is always this fold of the log.
//!
//! **What it must never do:** I/O of any kind (no RocksDB, no NATS, no files), read
//! the wall clock, draw random numbers, or iterate a `HashMap` in anything that is
//! hashed, stored or compared. Time is the entry's event time; order is `BTreeMap`
//! order.
//!
//! **Who calls it:** `govledger-ingest` (admission: which key may sign what),
//! `govledger-replay` and the CLI (state queries).
//!
//! This first version holds the key ring ([`keys`]), which admission needs to verify
//! signatures; budgets, approvals, kill switches, sessions and the state digest come
//! with the projections issue.

pub mod keys;

pub use keys::{KeyProblem, KeyRecord, KeyRing, KeyRole, KeyStatus};
