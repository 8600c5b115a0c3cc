//! What every benchmark shares (included by path from the other crates' benches):
//! the binary's allocator, settings from the environment, and medians.

#![allow(dead_code)]

use std::time::Duration;

/// The binary's allocator (see `src/main.rs`), so the figures are the binary's.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The number in environment variable `name`, or `default`.
pub fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The median of some timings (the upper one of an even count).
pub fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// The CPU time a run used: all threads of the process together, and the
/// thread that ran it (in the folds, the folding thread).
#[derive(Clone, Copy, Debug)]
pub struct Cpu {
    pub all: Duration,
    pub caller: Duration,
}

/// Runs `f`, and returns what it gave with its wall-clock time and the CPU time
/// used meanwhile ([`govledger_ingest::process_cpu_time`],
/// [`govledger_ingest::thread_cpu_time`]).
pub fn timed_with_cpu<T>(f: impl FnOnce() -> T) -> (T, Duration, Cpu) {
    let (t, all, caller) = (
        std::time::Instant::now(),
        govledger_ingest::process_cpu_time(),
        govledger_ingest::thread_cpu_time(),
    );
    let out = f();
    let cpu = Cpu {
        all: govledger_ingest::process_cpu_time().saturating_sub(all),
        caller: govledger_ingest::thread_cpu_time().saturating_sub(caller),
    };
    (out, t.elapsed(), cpu)
}

/// Prints a line of CPU per entry: the median of `cpus`' totals (all threads
/// over each run) over `entries`, the cores the runs kept busy on average (their
/// CPU time over their wall-clock time `walls`), and the median CPU per entry of
/// the calling (folding) thread alone. The name is padded to `width`, as the
/// table it closes.
pub fn print_cpu_per_entry(
    name: &str,
    width: usize,
    walls: &[Duration],
    cpus: Vec<Cpu>,
    entries: u64,
) {
    let total = |f: fn(&Cpu) -> Duration| cpus.iter().map(f).sum::<Duration>().as_secs_f64();
    let busy = total(|c| c.all) / walls.iter().sum::<Duration>().as_secs_f64();
    let per = |f: fn(&Cpu) -> Duration| {
        median(cpus.iter().map(f).collect()).as_secs_f64() * 1e6 / entries as f64
    };
    println!(
        "{name:<width$} {:>10.3} us/entry  {busy:.2} cores busy, folding thread {:.3} us/entry",
        per(|c| c.all),
        per(|c| c.caller)
    );
}

/// How many alternating rounds a bench times (`GOVLEDGER_BENCH_ROUNDS`, default 3,
/// at least 1): more give steadier medians on a noisy host.
pub fn rounds() -> usize {
    env_u64("GOVLEDGER_BENCH_ROUNDS", 3).max(1) as usize
}

/// The page faults this process has taken that needed no read from disk (Linux's
/// minor faults: nearly all of them the first touch of a fresh page of memory,
/// which the kernel must find and zero), from `/proc/self/stat`; `None` where
/// there is no such file.
pub fn minor_faults() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields 3 on follow the command's name, which is in parentheses and may
    // hold spaces; `minflt` is field 10.
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().nth(10 - 3)?.parse().ok()
}

/// What one page fault costs on this host: 64 MiB of fresh memory touched once
/// per page, its time over its faults (zeroing included). `None` without
/// [`minor_faults`], or when the memory came back already mapped (fewer
/// faults than half its pages).
pub fn fault_cost() -> Option<Duration> {
    const BYTES: usize = 64 << 20;
    const PAGE: usize = 4096;
    let before = minor_faults()?;
    let t = std::time::Instant::now();
    // Zeroed, so a fresh mapping is not written before the loop touches it.
    let mut fresh = vec![0u8; BYTES];
    for i in (0..BYTES).step_by(PAGE) {
        fresh[i] = 1;
    }
    let took = t.elapsed();
    std::hint::black_box(&fresh);
    let faults = minor_faults()?.saturating_sub(before);
    (faults >= (BYTES / PAGE / 2) as u64).then(|| took.div_f64(faults as f64))
}
