//! The `govledger` binary: argument parsing and wiring only. Each command lives in
//! its own file under `cli/`; the work is done by the library crates.

mod cli;
mod datadir;
mod output;
mod progress;

use clap::Parser;
use std::process::ExitCode;

/// mimalloc instead of glibc's malloc: folding and admitting events allocate many
/// small strings on one thread and free them on another, where glibc's arenas
/// spent over half the fold's time (docs/BENCHMARKS.md, "Projection fold").
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A reader that closes our stdout early (`govledger entry ... | head`) is not an
/// error worth a panic message: exit quietly, as other command-line tools do.
fn quiet_broken_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let msg = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if msg.starts_with("failed printing to stdout") && msg.contains("Broken pipe") {
            std::process::exit(141);
        }
        default(info);
    }));
}

/// No transparent huge pages for this process and the ones it starts (the demo's
/// nats-server), unless `MIMALLOC_ALLOW_THP` says otherwise: on hosts that back
/// memory lazily (virtual machines), the first touch of a fresh 2 MiB huge page
/// stalled `serve` for about 6 ms at a time, which made the publish-to-receipt p99;
/// without them the fold is no slower (docs/BENCHMARKS.md, stop 16).
fn no_huge_pages() {
    #[cfg(target_os = "linux")]
    if std::env::var_os("MIMALLOC_ALLOW_THP").is_none() {
        // Best effort: a kernel without the call changes nothing.
        let _ = rustix::thread::disable_transparent_huge_pages(true);
    }
}

fn main() -> ExitCode {
    no_huge_pages();
    quiet_broken_pipe();
    let args = cli::Cli::parse();
    match cli::run(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
