//! NATS connection flags shared by `serve` and `publish`, and the TOML config file.

use anyhow::{bail, Context, Result};
use govledger_ingest::nats::{Auth, NatsConfig, StreamSettings};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How to reach NATS. Every flag can also come from the environment or the
/// `[nats]` table of `--config`; a flag wins over the environment, which wins over
/// the file.
#[derive(clap::Args, Debug, Default)]
pub struct NatsArgs {
    /// NATS server URL(s), comma-separated [default: nats://127.0.0.1:4222].
    #[arg(long, env = "NATS_URL")]
    pub nats_url: Option<String>,
    /// Authenticate with this token.
    #[arg(long, env = "NATS_TOKEN", hide_env_values = true)]
    pub nats_token: Option<String>,
    /// Authenticate as this user (with --nats-password).
    #[arg(long, env = "NATS_USER")]
    pub nats_user: Option<String>,
    /// Password for --nats-user.
    #[arg(long, env = "NATS_PASSWORD", hide_env_values = true)]
    pub nats_password: Option<String>,
    /// Authenticate with this NKey seed (SU...).
    #[arg(long, env = "NATS_NKEY", hide_env_values = true)]
    pub nats_nkey: Option<String>,
    /// Authenticate with this credentials (.creds) file.
    #[arg(long, env = "NATS_CREDS")]
    pub nats_creds: Option<PathBuf>,
    /// Require TLS.
    #[arg(long)]
    pub tls: bool,
    /// Trust this CA certificate (PEM) for the server's TLS certificate.
    #[arg(long)]
    pub tls_ca: Option<PathBuf>,
    /// Client certificate (PEM) for mutual TLS (with --tls-key).
    #[arg(long)]
    pub tls_cert: Option<PathBuf>,
    /// Client key (PEM) for mutual TLS.
    #[arg(long)]
    pub tls_key: Option<PathBuf>,
    /// JetStream stream to bind, created if missing [default: GOV].
    #[arg(long)]
    pub stream: Option<String>,
    /// Subjects of the stream when govledger creates it [default: gov.>].
    #[arg(long, value_delimiter = ',')]
    pub subjects: Option<Vec<String>>,
    /// JetStream duplicate window in seconds when govledger creates the stream [default: 120].
    #[arg(long)]
    pub duplicate_window_secs: Option<u64>,
}

/// The `[nats]` and `[stream]` tables of the config file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NatsFile {
    pub url: Option<String>,
    pub token: Option<String>,
    pub user: Option<String>,
    pub password: Option<String>,
    pub nkey: Option<String>,
    pub creds: Option<PathBuf>,
    pub tls: Option<bool>,
    pub tls_ca: Option<PathBuf>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamFile {
    pub name: Option<String>,
    pub subjects: Option<Vec<String>>,
    pub duplicate_window_secs: Option<u64>,
}

/// Reads a TOML config file into `T`, naming the file in errors.
pub fn read_toml<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("config {} is not valid", path.display()))
}

impl NatsArgs {
    /// Merges flags (and environment) over the file's tables over the defaults.
    pub fn resolve(
        &self,
        nats: &NatsFile,
        stream: &StreamFile,
        name: &str,
    ) -> Result<(NatsConfig, StreamSettings)> {
        let pick = |a: &Option<String>, b: &Option<String>| a.clone().or_else(|| b.clone());
        let token = pick(&self.nats_token, &nats.token);
        let user = pick(&self.nats_user, &nats.user);
        let password = pick(&self.nats_password, &nats.password);
        let nkey = pick(&self.nats_nkey, &nats.nkey);
        let creds = self.nats_creds.clone().or_else(|| nats.creds.clone());
        let given = [
            token.is_some(),
            user.is_some(),
            nkey.is_some(),
            creds.is_some(),
        ];
        if given.iter().filter(|g| **g).count() > 1 {
            bail!("choose one way to authenticate: token, user+password, nkey or creds file");
        }
        let auth = match (token, user, password, nkey, creds) {
            (Some(t), ..) => Auth::Token(t),
            (_, Some(user), Some(password), ..) => Auth::UserPassword { user, password },
            (_, Some(_), None, ..) => bail!("--nats-user needs --nats-password (or NATS_PASSWORD)"),
            (_, None, Some(_), ..) => bail!("--nats-password needs --nats-user"),
            (.., Some(seed), _) => Auth::NKey(seed),
            (.., Some(path)) => Auth::Creds(path),
            _ => Auth::None,
        };
        let cert = self.tls_cert.clone().or_else(|| nats.tls_cert.clone());
        let key = self.tls_key.clone().or_else(|| nats.tls_key.clone());
        let tls_client = match (cert, key) {
            (Some(c), Some(k)) => Some((c, k)),
            (None, None) => None,
            _ => bail!("--tls-cert and --tls-key go together"),
        };
        let defaults = NatsConfig::default();
        let cfg = NatsConfig {
            url: pick(&self.nats_url, &nats.url).unwrap_or(defaults.url),
            auth,
            tls: self.tls || nats.tls.unwrap_or(false),
            tls_ca: self.tls_ca.clone().or_else(|| nats.tls_ca.clone()),
            tls_client,
            name: name.to_string(),
        };
        let sd = StreamSettings::default();
        let settings = StreamSettings {
            name: pick(&self.stream, &stream.name).unwrap_or(sd.name),
            subjects: self
                .subjects
                .clone()
                .or_else(|| stream.subjects.clone())
                .unwrap_or(sd.subjects),
            duplicate_window: self
                .duplicate_window_secs
                .or(stream.duplicate_window_secs)
                .map(Duration::from_secs)
                .unwrap_or(sd.duplicate_window),
        };
        Ok((cfg, settings))
    }
}

/// A multi-threaded runtime for the async commands.
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Logs to stderr; `RUST_LOG` overrides the level.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colours only for a person at a terminal, not in log files and pipes.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}
