//! The `govledger` binary: argument parsing and wiring only. Each command lives in
//! its own file under `cli/`; the work is done by the library crates.

mod cli;
mod datadir;
mod output;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    match cli::run(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
