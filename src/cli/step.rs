//! `govledger replay --from-checkpoint K --step [--commands FILE]`: the interactive
//! stepper. It reads one command per line from the terminal, from FILE, or from
//! stdin when that is not a terminal, and answers each (one JSON object per line
//! with `--json`):
//!
//! | command | does |
//! |---|---|
//! | `next [N]`, `n` | folds the next N entries (default 1) and shows them |
//! | `back [N]`, `b` | goes back N entries (default 1) |
//! | `jump SEQ\|TIME`, `j` | to right after entry SEQ, or as of TIME (RFC 3339) |
//! | `state [VIEW]`, `s` | the state here: one view or all (`--tenant` narrows it) |
//! | `find AGENT`, `f` | folds on to the next entry that concerns AGENT (of `--tenant` only, when given), and shows it |
//! | `where`, `w` | the position and the digests checked so far |
//! | `help`, `h`, `?` | this list |
//! | `quit`, `q` | stops (so does the end of the input) |
//!
//! Moving forward checks the signed state digest at every checkpoint crossed; a
//! mismatch stops the stepper with exit 1, as `replay` does. A command it cannot
//! do (bad arguments, past the end) is answered with an error and the stepper goes
//! on; the exit code is then 1.

use super::Ctx;
use crate::output::hex;
use anyhow::{Context, Result};
use govledger_ingest::views::{self, View};
use govledger_ledger::store::RocksStore;
use govledger_replay::scope::{Filter, Scope};
use govledger_replay::stepper::Stepper;
use govledger_replay::time::format_rfc3339;
use govledger_replay::timeline::entry_summary;
use govledger_replay::verified::ReplayError;
use govledger_schemas::{Entry, Envelope};
use serde_json::{json, Value};
use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;

const HELP: &str = "commands: next [N] | back [N] | jump SEQ|TIME | state [VIEW] | find AGENT | where | help | quit";

fn headline(entry: &Entry, env: Option<&Envelope>) -> Value {
    let what = entry_summary(entry, env);
    json!({"seq": entry.seq.0, "time": format_rfc3339(entry.time_ns),
           "verdict": if entry.is_accepted() { "accepted" } else { "rejected" },
           "summary": what})
}

/// What one command did: its JSON answer, or a problem with the command.
enum Answer {
    Done(Value),
    Bad(String),
    Quit,
}

struct Session<'a> {
    stepper: Stepper<'a, RocksStore>,
    tenant: Option<String>,
}

impl Session<'_> {
    fn forward(&mut self, n: u64) -> Result<Vec<Value>, ReplayError> {
        let mut shown = Vec::new();
        for _ in 0..n {
            match self.stepper.step()? {
                Some((e, env)) => shown.push(headline(&e, env.as_ref())),
                None => break,
            }
        }
        Ok(shown)
    }

    fn run(&mut self, line: &str, ledger_size: u64) -> Result<Answer, ReplayError> {
        let mut words = line.split_whitespace();
        let Some(cmd) = words.next() else {
            return Ok(Answer::Done(Value::Null));
        };
        let arg = words.next();
        if words.next().is_some() {
            return Ok(Answer::Bad(format!("{cmd}: too many arguments")));
        }
        let count = |arg: Option<&str>| -> Result<u64, String> {
            arg.map_or(Ok(1), |a| {
                a.parse::<u64>()
                    .map_err(|_| format!("{a:?} is not a count of entries"))
            })
        };
        let pos = self.stepper.pos();
        Ok(match cmd {
            "next" | "n" => match count(arg) {
                Err(e) => Answer::Bad(e),
                Ok(_) if pos >= ledger_size => {
                    Answer::Bad(format!("at the end of the log ({ledger_size} entries)"))
                }
                Ok(n) => Answer::Done(json!({"entries": self.forward(n)?})),
            },
            "back" | "b" => match count(arg) {
                Err(e) => Answer::Bad(e),
                Ok(n) if n > pos - self.stepper.start() => Answer::Bad(format!(
                    "cannot go back {n}: the stepper started at checkpoint {} ({} entries back)",
                    self.stepper.start(),
                    pos - self.stepper.start()
                )),
                Ok(n) => {
                    self.stepper.seek(pos - n)?;
                    Answer::Done(json!({}))
                }
            },
            "jump" | "j" => {
                let Some(a) = arg else {
                    return Ok(Answer::Bad("jump needs SEQ or TIME".into()));
                };
                let target = match super::state::parse_at(a) {
                    Err(e) => return Ok(Answer::Bad(e)),
                    Ok(super::state::At::Seq(s)) if s >= ledger_size => {
                        return Ok(Answer::Bad(format!(
                            "the log holds entries 0 to {} only",
                            ledger_size.saturating_sub(1)
                        )))
                    }
                    Ok(super::state::At::Seq(s)) => s + 1,
                    Ok(super::state::At::Time(t)) => {
                        govledger_replay::count_until(self.stepper_ledger(), t)?
                    }
                };
                if target < self.stepper.start() {
                    return Ok(Answer::Bad(format!(
                        "{a} is before the starting checkpoint ({}); start from an earlier one",
                        self.stepper.start()
                    )));
                }
                self.stepper.seek(target)?;
                Answer::Done(json!({}))
            }
            "state" | "s" => {
                let views: Vec<View> = match arg {
                    None => View::ALL.to_vec(),
                    Some(name) => match View::parse(name) {
                        Some(v) => vec![v],
                        None => {
                            return Ok(Answer::Bad(format!(
                                "unknown view {name:?}: budgets, approvals, killswitches, sessions or keys"
                            )))
                        }
                    },
                };
                let mut out = serde_json::Map::new();
                for v in views {
                    out.insert(
                        v.as_str().into(),
                        json!(views::items(
                            self.stepper.admission(),
                            v,
                            self.tenant.as_deref()
                        )),
                    );
                }
                Answer::Done(json!({"state": out}))
            }
            "find" | "f" => {
                let Some(agent) = arg else {
                    return Ok(Answer::Bad("find needs an agent id".into()));
                };
                let mut scope = Scope::new(Filter {
                    agent: Some(agent.to_owned()),
                    tenant: self.tenant.clone(),
                    session: None,
                });
                scope.seed(self.stepper.admission());
                let mut found = Value::Null;
                while let Some((e, env)) = self.stepper.step()? {
                    if scope.observe(&e, env.as_ref()) {
                        found = headline(&e, env.as_ref());
                        break;
                    }
                }
                if found.is_null() {
                    Answer::Bad(format!(
                        "no entry after this concerns agent {agent}: now at the end of the log"
                    ))
                } else {
                    Answer::Done(json!({"entries": [found]}))
                }
            }
            "where" | "w" => {
                let digest = self.stepper.admission_mut().state_digest();
                let r = self.stepper.report();
                Answer::Done(json!({"checkpoints_checked": r.checkpoints_checked,
                                    "legacy_checkpoints": r.legacy_checkpoints,
                                    "state_digest": hex(&digest.hash),
                                    "state_digest_version": digest.version}))
            }
            "help" | "h" | "?" => Answer::Done(json!({"help": HELP})),
            "quit" | "q" | "exit" => Answer::Quit,
            other => Answer::Bad(format!("unknown command {other:?}; {HELP}")),
        })
    }

    fn stepper_ledger(&self) -> &govledger_ledger::Ledger<RocksStore> {
        self.stepper.ledger()
    }
}

fn print_text(answer: &Value, pos: u64) {
    for e in answer["entries"].as_array().into_iter().flatten() {
        println!(
            "{}  #{:<6} {}  {}",
            e["time"].as_str().unwrap_or(""),
            e["seq"],
            e["verdict"].as_str().unwrap_or(""),
            e["summary"].as_str().unwrap_or("")
        );
    }
    if let Some(state) = answer["state"].as_object() {
        for (view, items) in state {
            let items = items.as_array().map(Vec::as_slice).unwrap_or_default();
            println!("{view}: {} items", items.len());
            for i in items {
                println!("  {i}");
            }
        }
    }
    if let Some(h) = answer["help"].as_str() {
        println!("{h}");
    }
    if answer.get("checkpoints_checked").is_some() {
        println!(
            "checkpoints checked: {}, state digest v{} sha256:{}",
            answer["checkpoints_checked"],
            answer["state_digest_version"],
            answer["state_digest"].as_str().unwrap_or("")
        );
    }
    println!("at {pos} entries folded");
}

pub fn run(
    ctx: &Ctx,
    from_checkpoint: u64,
    tenant: Option<String>,
    commands: Option<&std::path::Path>,
) -> Result<ExitCode> {
    let ledger = ctx.data.open_ro()?;
    let trust = ctx.data.trust()?;
    let verifier = ctx.data.verifier()?;
    let size = ledger.size();
    let stepper = match Stepper::new(&ledger, &trust, &verifier, from_checkpoint) {
        Ok(s) => s,
        Err(e) => return failed(ctx, &e),
    };
    let mut session = Session { stepper, tenant };
    let input: Box<dyn BufRead> = match commands {
        Some(path) => Box::new(std::io::BufReader::new(
            std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?,
        )),
        None => Box::new(std::io::stdin().lock()),
    };
    let interactive = commands.is_none() && std::io::stdin().is_terminal();
    if interactive && !ctx.json {
        println!("at checkpoint {from_checkpoint} ({size} entries in the log); {HELP}");
    }
    let mut bad = false;
    let mut lines = input.lines();
    loop {
        if interactive {
            eprint!("step> ");
            let _ = std::io::stderr().flush();
        }
        let Some(line) = lines.next() else { break };
        let line = line.context("reading commands")?;
        let cmd = line.trim();
        if cmd.is_empty() || cmd.starts_with('#') {
            continue;
        }
        match session.run(cmd, size) {
            Err(e) => return failed(ctx, &e),
            Ok(Answer::Quit) => break,
            Ok(Answer::Bad(why)) => {
                bad = true;
                let pos = session.stepper.pos();
                if ctx.json {
                    println!("{}", json!({"command": cmd, "pos": pos, "error": why}));
                } else {
                    eprintln!("error: {why}");
                }
            }
            Ok(Answer::Done(mut v)) => {
                let pos = session.stepper.pos();
                if ctx.json {
                    if !v.is_object() {
                        v = json!({});
                    }
                    v["command"] = json!(cmd);
                    v["pos"] = json!(pos);
                    v["error"] = Value::Null;
                    println!("{v}");
                } else {
                    print_text(&v, pos);
                }
            }
        }
    }
    Ok(if bad {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// A failed digest check or signature, or a body changed behind its hash: loud,
/// exit 1.
fn failed(ctx: &Ctx, e: &ReplayError) -> Result<ExitCode> {
    match super::replay::failure(e) {
        Some(_) => {
            if ctx.json {
                println!("{}", json!({"ok": false, "problem": e.to_string()}));
            } else {
                eprintln!("REPLAY FAILED: {e}");
            }
            Ok(ExitCode::from(1))
        }
        _ => Err(anyhow::anyhow!("{e}")),
    }
}
