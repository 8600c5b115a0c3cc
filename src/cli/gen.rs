//! `govledger gen --events N --seed S [--tenants T] [--trust-out FILE] [-o FILE]`

use super::Ctx;
use anyhow::{Context, Result};
use govledger_ingest::{GenOptions, Generator};
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Number of events.
    #[arg(long, default_value_t = 100)]
    pub events: u64,
    /// Seed: the same seed gives the same bytes.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Number of tenants (1 to 1000).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub tenants: u32,
    /// Also write the trust file that makes `init --trust FILE` accept the stream.
    #[arg(long)]
    pub trust_out: Option<PathBuf>,
    /// Write the lines here instead of stdout.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
}

pub fn run(_ctx: &Ctx, args: Args) -> Result<ExitCode> {
    let generator = Generator::new(GenOptions {
        events: args.events,
        seed: args.seed,
        tenants: args.tenants,
        ..GenOptions::default()
    });
    if let Some(p) = &args.trust_out {
        std::fs::write(p, serde_json::to_string_pretty(&generator.trust())?)
            .with_context(|| format!("cannot write {}", p.display()))?;
    }
    let out: Box<dyn Write> = match &args.output {
        Some(p) => Box::new(
            std::fs::File::create(p).with_context(|| format!("cannot create {}", p.display()))?,
        ),
        None => Box::new(std::io::stdout().lock()),
    };
    let mut out = BufWriter::new(out);
    for line in generator {
        serde_json::to_writer(&mut out, &line)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
