//! govledger ingest: from producers' messages to ledger entries.
//!
//! **Its one job:** turn each message into exactly one ledger entry, durably, in
//! order: accepted, or rejected with a reason. [`admit`] is the validation path
//! (schema, subject, headers, key, signature, duplicates, key-ring invariants) that
//! every input takes, whether it comes from a file (`govledger append`) or from
//! NATS JetStream ([`serve`]). [`publish`] sends signed lines the way a producer
//! would; [`gen`] produces the deterministic, correctly signed streams that the
//! demo, tests and benchmarks use; [`metrics`] and [`http`] expose `/metrics` and
//! `/healthz`; [`snapshots`] writes state snapshots at checkpoints and starts
//! readers from them.
//!
//! **What it must never do:** apply an event it could not verify, panic on input, or
//! publish a receipt before the entry it describes is durable.
//!
//! **Who calls it:** the `govledger` binary.

pub mod admit;
pub mod alerts;
pub mod devserver;
pub mod gen;
pub mod http;
pub mod metrics;
pub mod nats;
pub mod publish;
pub mod serve;
pub mod snapshots;
pub mod views;

/// No transparent huge pages for this process and the ones it starts (the demo's
/// and the benches' nats-server), unless `MIMALLOC_ALLOW_THP` says otherwise: on
/// hosts that back memory lazily (virtual machines), the first touch of a fresh
/// 2 MiB huge page stalled `serve` for about 6 ms at a time, which made the
/// publish-to-receipt p99; without them the fold is no slower
/// (docs/BENCHMARKS.md, stop 16). The binary and the benches call it first thing.
pub fn no_huge_pages() {
    #[cfg(target_os = "linux")]
    if std::env::var_os("MIMALLOC_ALLOW_THP").is_none() {
        // Best effort: a kernel without the call changes nothing.
        let _ = rustix::thread::disable_transparent_huge_pages(true);
    }
}

pub use admit::{
    fold_input, Admission, LeafReader, Message, StoredLeaves, TenantTrust, Trust, TrustError,
    TrustKey,
};
pub use gen::{GenOptions, Generator, Line};
