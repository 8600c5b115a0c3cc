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

fn main() -> ExitCode {
    govledger_ingest::no_huge_pages();
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
