//! Command-line interface: one file per command, each with its arguments and its
//! `run`. Every command takes `--data DIR` (or `GOVLEDGER_DATA`) and `--json`.

mod append;
mod bundle;
mod check;
mod checkpoint;
mod demo;
mod diff;
mod entry;
mod explain;
mod export;
mod gen;
mod init;
mod key;
mod natsargs;
mod prove;
mod publish;
mod replay;
mod serve;
mod snapshot;
mod state;
mod status;
mod step;
mod timeline;
mod verify;

use crate::datadir::DataDir;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// govledger: a tamper-evident, event-sourced governance ledger for AI agents.
#[derive(Parser, Debug)]
#[command(name = "govledger", version, about, long_about = None)]
pub struct Cli {
    /// The ledger's data directory.
    #[arg(
        long,
        global = true,
        env = "GOVLEDGER_DATA",
        default_value = "govledger-data"
    )]
    pub data: PathBuf,
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create a new ledger and its checkpoint signing key.
    Init(init::Args),
    /// Write a deterministic stream of signed events as JSON lines.
    Gen(gen::Args),
    /// Append JSON lines of signed events through admission.
    Append(append::Args),
    /// Sign a checkpoint of the current tree and print it.
    Checkpoint(checkpoint::Args),
    /// Print one entry.
    Entry(entry::Args),
    /// Print inclusion or consistency proofs.
    #[command(subcommand)]
    Prove(prove::Command),
    /// Re-walk the whole log and check every hash and checkpoint.
    Verify(verify::Args),
    /// Show the log's verifier key.
    #[command(subcommand)]
    Key(key::Command),
    /// A guided tour: a scripted incident appended, checkpointed, proven and verified.
    Demo(demo::Args),
    /// Consume governance events from NATS JetStream into the ledger.
    Serve(serve::Args),
    /// Publish signed event lines (as `gen` writes them) to NATS JetStream.
    Publish(publish::Args),
    /// Show the ledger's size, stream cursor and newest checkpoint.
    Status(status::Args),
    /// Show the projected governance state (budgets, approvals, kill switches, sessions, keys).
    State(state::Args),
    /// Would an action's spend fit its budgets, outside every kill switch? (Writes nothing.)
    Check(check::Args),
    /// Re-derive the state from a signed checkpoint, checking the signed state
    /// digest at every checkpoint passed (exit 1 on a mismatch, naming it).
    Replay(replay::Args),
    /// What changed in budgets, approvals, kill switches, sessions and keys between
    /// two points of the log.
    Diff(diff::Args),
    /// List or take state snapshots (the state at a checkpoint, so reads need not
    /// fold the whole log).
    #[command(subcommand)]
    Snapshot(snapshot::Command),
    /// Every event that concerns an agent, session or tenant, with its verdict and
    /// the decision, approvals and budgets in force (`--html FILE` draws it).
    Timeline(timeline::Args),
    /// Write an incident bundle: the entries that concern an agent, session or
    /// tenant, with their proofs, signed checkpoints and keys, checkable offline.
    Bundle(bundle::Args),
    /// Check an incident bundle offline, without the ledger (exit 1 naming the line
    /// of the first problem).
    VerifyBundle(bundle::VerifyArgs),
    /// Why an entry was accepted or rejected, and the earlier entries that made it so.
    Explain(explain::Args),
    /// Export entries to a SIEM (jsonl, OCSF, ECS, CEF; to a file, stdout, syslog
    /// over TCP/TLS or Splunk HEC), redacted, with a durable cursor per named sink.
    Export(export::Args),
}

/// What every command gets.
pub struct Ctx {
    pub data: DataDir,
    pub json: bool,
}

/// Lets a command's projected state go without freeing it, once its output is
/// written: the process ends right after, and the operating system takes the
/// memory back at once, while freeing a large state allocation by allocation
/// is a wait for nothing (the final state of a 2M-entry replay: 114–135 ms,
/// docs/BENCHMARKS.md, stop 30). For values that own nothing but memory (an
/// [`govledger_ingest::Admission`]), never for a store, a file or a thread.
pub(crate) fn let_go(state: govledger_ingest::Admission) {
    std::mem::forget(state);
}

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let ctx = Ctx {
        data: DataDir::new(&cli.data),
        json: cli.json,
    };
    match cli.command {
        Command::Init(a) => init::run(&ctx, a),
        Command::Gen(a) => gen::run(&ctx, a),
        Command::Append(a) => append::run(&ctx, a),
        Command::Checkpoint(a) => checkpoint::run(&ctx, a),
        Command::Entry(a) => entry::run(&ctx, a),
        Command::Prove(c) => prove::run(&ctx, c),
        Command::Verify(a) => verify::run(&ctx, a),
        Command::Key(c) => key::run(&ctx, c),
        Command::Demo(a) => demo::run(&ctx, a),
        Command::Serve(a) => serve::run_cmd(&ctx, a),
        Command::Publish(a) => publish::run(&ctx, a),
        Command::Status(a) => status::run(&ctx, a),
        Command::State(a) => state::run(&ctx, a),
        Command::Check(a) => check::run(&ctx, a),
        Command::Snapshot(c) => snapshot::run(&ctx, c),
        Command::Replay(a) => replay::run(&ctx, a),
        Command::Diff(a) => diff::run(&ctx, a),
        Command::Timeline(a) => timeline::run(&ctx, a),
        Command::Bundle(a) => bundle::run(&ctx, a),
        Command::VerifyBundle(a) => bundle::verify(&ctx, a),
        Command::Explain(a) => explain::run(&ctx, a),
        Command::Export(a) => export::run(&ctx, a),
    }
}
