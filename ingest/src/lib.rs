//! govledger ingest: from producers' messages to ledger entries.
//!
//! **Its one job:** turn each message into exactly one ledger entry, durably, in
//! order: accepted, or rejected with a reason. [`admit`] is the validation path
//! (schema, subject, headers, key, signature, duplicates, key-ring invariants) that
//! every input takes, whether it comes from a file (`govledger append`) or, with
//! the ingest issue, from NATS JetStream (`govledger serve`). [`gen`] produces the
//! deterministic, correctly signed streams that the demo, tests and benchmarks use.
//!
//! **What it must never do:** apply an event it could not verify, panic on input, or
//! acknowledge a message before the entry covering it is durable.
//!
//! **Who calls it:** the `govledger` binary.

pub mod admit;
pub mod gen;

pub use admit::{Admission, Message, TenantTrust, Trust, TrustError, TrustKey};
pub use gen::{GenOptions, Generator, Line};
