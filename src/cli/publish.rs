//! `govledger publish [FILE|-]`: send signed event lines (as `gen` writes them) to JetStream.

use super::natsargs::{read_toml, runtime, NatsArgs, NatsFile, StreamFile};
use super::Ctx;
use crate::output::print_json;
use anyhow::{Context, Result};
use govledger_ingest::publish::{publish_lines, PublishOptions};
use govledger_ingest::Line;
use serde::Deserialize;
use serde_json::json;
use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Input file of JSON lines; `-` or nothing reads standard input.
    pub input: Option<PathBuf>,
    #[command(flatten)]
    pub nats: NatsArgs,
    /// TOML config file (its [nats] and [stream] tables are used).
    #[arg(long, env = "GOVLEDGER_CONFIG")]
    pub config: Option<PathBuf>,
    /// Events per second; default: as fast as JetStream acknowledges.
    #[arg(long)]
    pub rate: Option<u64>,
    /// Publishes awaiting acknowledgement at once.
    #[arg(long, default_value_t = 256)]
    pub max_in_flight: usize,
}

#[derive(Debug, Default, Deserialize)]
struct ConfigFile {
    #[serde(default)]
    nats: NatsFile,
    #[serde(default)]
    stream: StreamFile,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<ExitCode> {
    let file: ConfigFile = match &args.config {
        Some(p) => read_toml(p)?,
        None => ConfigFile::default(),
    };
    let (nats, stream) = args
        .nats
        .resolve(&file.nats, &file.stream, "govledger publish")?;
    let reader: Box<dyn BufRead> = match &args.input {
        None => Box::new(std::io::stdin().lock()),
        Some(p) if p.as_os_str() == "-" => Box::new(std::io::stdin().lock()),
        Some(p) => Box::new(std::io::BufReader::new(
            std::fs::File::open(p).with_context(|| format!("cannot open {}", p.display()))?,
        )),
    };
    let lines = reader.lines().filter_map(|l| match l {
        Ok(l) if l.trim().is_empty() => None,
        Ok(l) => {
            Some(serde_json::from_str::<Line>(&l).map_err(|e| format!("not a message line: {e}")))
        }
        Err(e) => Some(Err(e.to_string())),
    });
    let opts = PublishOptions {
        rate: args.rate,
        max_in_flight: args.max_in_flight,
        ..PublishOptions::default()
    };
    let show = !ctx.json && std::io::IsTerminal::is_terminal(&std::io::stderr());
    let report = runtime()?.block_on(async {
        let client = govledger_ingest::nats::connect(&nats).await?;
        let report = publish_lines(&client, &stream, lines, &opts, &mut |n| {
            if show && n % 1000 == 0 {
                eprint!("\rpublished {n}");
            }
        })
        .await?;
        client.flush().await.ok();
        Ok::<_, anyhow::Error>(report)
    })?;
    if show {
        eprintln!();
    }
    if ctx.json {
        print_json(&json!({
            "published": report.published,
            "duplicates": report.duplicates,
            "retries": report.retries,
            "last_seq": report.last_seq,
        }));
    } else {
        println!(
            "published {} events ({} already in the stream, {} retries); last stream sequence {}",
            report.published, report.duplicates, report.retries, report.last_seq
        );
    }
    Ok(ExitCode::SUCCESS)
}
