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

/// Lowers the calling thread's scheduling priority to the least there is (nice
/// 19), on Linux, where a nice value belongs to one thread and not to the whole
/// process; elsewhere it does nothing. For background work that has no deadline
/// of its own: `serve`'s snapshot writer, so that while it sorts, hashes and
/// writes a snapshot, the consumer, the HTTP API and nats-server keep the cores
/// they need (docs/BENCHMARKS.md, stop 25). Best effort: a refusal changes
/// nothing.
pub fn lower_thread_priority() {
    #[cfg(target_os = "linux")]
    {
        let this = rustix::thread::gettid();
        let _ = rustix::process::setpriority_process(Some(this), LOWEST_PRIORITY);
    }
}

/// The highest nice value: the least share of the processor.
#[cfg(target_os = "linux")]
const LOWEST_PRIORITY: i32 = 19;

/// CPU time used so far by all the threads of this process, those still running
/// and those that have ended (Linux's `CLOCK_PROCESS_CPUTIME_ID`; zero on other
/// systems). The benches divide it by the entries of a run: CPU per entry, beside
/// the wall-clock rate, tells how much of a change in the rate was work and how much
/// was cores left idle or taken by another process.
pub fn process_cpu_time() -> std::time::Duration {
    #[cfg(target_os = "linux")]
    {
        cpu_clock(rustix::time::ClockId::ProcessCPUTime)
    }
    #[cfg(not(target_os = "linux"))]
    {
        std::time::Duration::ZERO
    }
}

/// CPU time used so far by the calling thread (Linux's `CLOCK_THREAD_CPUTIME_ID`;
/// zero on other systems). The benches use it for the share of the folding
/// thread, which is the thread that calls the fold.
pub fn thread_cpu_time() -> std::time::Duration {
    #[cfg(target_os = "linux")]
    {
        cpu_clock(rustix::time::ClockId::ThreadCPUTime)
    }
    #[cfg(not(target_os = "linux"))]
    {
        std::time::Duration::ZERO
    }
}

/// The CPU-time clock `id` as a `Duration`.
#[cfg(target_os = "linux")]
fn cpu_clock(id: rustix::time::ClockId) -> std::time::Duration {
    let t = rustix::time::clock_gettime(id);
    std::time::Duration::new(
        u64::try_from(t.tv_sec).unwrap_or(0),
        u32::try_from(t.tv_nsec).unwrap_or(0),
    )
}

pub use admit::{
    fold_input, Admission, LeafReader, Message, StoredLeaves, TenantTrust, Trust, TrustError,
    TrustKey,
};
pub use gen::{GenOptions, Generator, Line};

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::thread_cpu_time;
    use std::time::Duration;

    /// Works on this thread until it has used `work` of CPU by its own clock, or
    /// gives up after far more work than that; returns the CPU its clock counted.
    fn burn(work: Duration) -> Duration {
        let before = thread_cpu_time();
        let mut x = 0u64;
        for _ in 0..100_000 {
            if thread_cpu_time().saturating_sub(before) >= work {
                break;
            }
            for i in 0..10_000u64 {
                x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
            }
        }
        thread_cpu_time().saturating_sub(before)
    }

    /// The nice value of thread `tid`.
    fn nice_of(tid: rustix::process::Pid) -> i32 {
        rustix::process::getpriority_process(Some(tid)).expect("getpriority")
    }

    #[test]
    fn a_lowered_priority_is_the_calling_threads_alone() {
        let caller = rustix::thread::gettid();
        let before = nice_of(caller);
        let (lowered, tid) = std::thread::spawn(|| {
            super::lower_thread_priority();
            let tid = rustix::thread::gettid();
            (nice_of(tid), tid)
        })
        .join()
        .expect("thread");
        assert_ne!(tid, caller);
        assert_eq!(lowered, super::LOWEST_PRIORITY);
        assert_eq!(
            nice_of(caller),
            before,
            "the calling thread's priority moved"
        );
    }

    #[test]
    fn process_cpu_time_counts_the_work_of_threads_that_have_ended() {
        let before = super::process_cpu_time();
        let work = Duration::from_millis(30);
        std::thread::spawn(move || burn(work))
            .join()
            .expect("worker");
        let used = super::process_cpu_time().saturating_sub(before);
        assert!(
            used >= work,
            "{used:?} of CPU counted, at least {work:?} used"
        );
    }

    #[test]
    fn thread_cpu_time_counts_the_calling_thread_alone() {
        let work = Duration::from_millis(30);
        let before = thread_cpu_time();
        let workers = std::thread::spawn(move || burn(work))
            .join()
            .expect("worker");
        let callers = thread_cpu_time().saturating_sub(before);
        assert!(
            workers >= work,
            "the working thread's clock counted {workers:?}"
        );
        assert!(
            callers < work,
            "the waiting thread's clock counted {callers:?}, the other thread's work"
        );
    }
}
