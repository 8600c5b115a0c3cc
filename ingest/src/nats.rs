//! Connecting to NATS and binding the JetStream stream.

use async_nats::jetstream::{self, stream};
use std::path::PathBuf;
use std::time::Duration;

/// How to authenticate to NATS.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Auth {
    /// No credentials.
    #[default]
    None,
    /// A token.
    Token(String),
    /// User and password.
    UserPassword {
        /// User name.
        user: String,
        /// Password.
        password: String,
    },
    /// An NKey seed (`SU...`).
    NKey(String),
    /// A `.creds` file (JWT and NKey seed).
    Creds(PathBuf),
}

/// Where and how to connect.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NatsConfig {
    /// Server URL(s), comma-separated, e.g. `nats://127.0.0.1:4222`.
    pub url: String,
    /// Credentials.
    pub auth: Auth,
    /// Require TLS.
    pub tls: bool,
    /// Extra root CA (PEM) to trust.
    pub tls_ca: Option<PathBuf>,
    /// Client certificate and key (PEM) for mutual TLS.
    pub tls_client: Option<(PathBuf, PathBuf)>,
    /// Name shown in the server's connection list.
    pub name: String,
}

impl Default for NatsConfig {
    fn default() -> Self {
        NatsConfig {
            url: "nats://127.0.0.1:4222".into(),
            auth: Auth::None,
            tls: false,
            tls_ca: None,
            tls_client: None,
            name: "govledger".into(),
        }
    }
}

/// The stream govledger consumes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamSettings {
    /// Stream name (default `GOV`).
    pub name: String,
    /// Subjects it captures (default `gov.>`).
    pub subjects: Vec<String>,
    /// JetStream's duplicate window for `Nats-Msg-Id` (default 2 minutes).
    pub duplicate_window: Duration,
}

impl Default for StreamSettings {
    fn default() -> Self {
        StreamSettings {
            name: "GOV".into(),
            subjects: vec!["gov.>".into()],
            duplicate_window: Duration::from_secs(120),
        }
    }
}

/// Errors reaching NATS or JetStream.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NatsError {
    /// Could not connect.
    #[error("cannot connect to NATS at {url}: {message}")]
    Connect {
        /// The URL.
        url: String,
        /// Why.
        message: String,
    },
    /// The server does not run JetStream, or refused the stream.
    #[error("JetStream stream {stream}: {message}")]
    Stream {
        /// The stream.
        stream: String,
        /// Why.
        message: String,
    },
    /// Any other NATS error.
    #[error("NATS: {0}")]
    Other(String),
}

/// Connects with `cfg`.
pub async fn connect(cfg: &NatsConfig) -> Result<async_nats::Client, NatsError> {
    connect_notifying(cfg, None, None).await
}

/// Told whether the connection is up at each connection event.
pub type OnConnection = std::sync::Arc<dyn Fn(bool) + Send + Sync>;

/// Connects with `cfg`; `reconnected` is notified each time the client
/// (re)connects, so a consumer can reopen at once instead of waiting for missed
/// heartbeats, and `on_connection` hears each connect (`true`) and disconnect
/// (`false`). Connection events are logged.
pub async fn connect_notifying(
    cfg: &NatsConfig,
    reconnected: Option<std::sync::Arc<tokio::sync::Notify>>,
    on_connection: Option<OnConnection>,
) -> Result<async_nats::Client, NatsError> {
    let err = |e: &dyn std::fmt::Display| NatsError::Connect {
        url: cfg.url.clone(),
        message: e.to_string(),
    };
    let mut opts = match &cfg.auth {
        Auth::None => async_nats::ConnectOptions::new(),
        Auth::Token(t) => async_nats::ConnectOptions::new().token(t.clone()),
        Auth::UserPassword { user, password } => {
            async_nats::ConnectOptions::new().user_and_password(user.clone(), password.clone())
        }
        Auth::NKey(seed) => async_nats::ConnectOptions::new().nkey(seed.clone()),
        Auth::Creds(path) => async_nats::ConnectOptions::new()
            .credentials_file(path)
            .await
            .map_err(|e| err(&format!("credentials file {}: {e}", path.display())))?,
    };
    opts = opts
        .event_callback(move |event| {
            let reconnected = reconnected.clone();
            let on_connection = on_connection.clone();
            async move {
                match &event {
                    async_nats::Event::Connected => {
                        tracing::info!("nats: connected");
                        if let Some(f) = on_connection {
                            f(true);
                        }
                        if let Some(n) = reconnected {
                            n.notify_one();
                        }
                    }
                    async_nats::Event::Disconnected => {
                        tracing::warn!("nats: disconnected");
                        if let Some(f) = on_connection {
                            f(false);
                        }
                    }
                    other => tracing::info!("nats: {other}"),
                }
            }
        })
        .name(&cfg.name)
        .require_tls(cfg.tls)
        .connection_timeout(Duration::from_secs(5))
        .max_reconnects(None);
    if let Some(ca) = &cfg.tls_ca {
        opts = opts.add_root_certificates(ca.clone());
    }
    if let Some((cert, key)) = &cfg.tls_client {
        opts = opts.add_client_certificate(cert.clone(), key.clone());
    }
    opts.connect(cfg.url.as_str()).await.map_err(|e| err(&e))
}

/// What [`round_trip`] asks: the JetStream API's account information. A client
/// that uses JetStream may already send it (`$JS.API.>`), unlike a made-up
/// subject that an account's permissions could refuse; any answer will do.
const ROUND_TRIP_SUBJECT: &str = "$JS.API.INFO";

/// How long [`round_trip`] waits for its answer.
const ROUND_TRIP_TIMEOUT: Duration = Duration::from_secs(5);

/// Returns once the server has processed everything `client` sent before: its
/// subscriptions are in place and its publications handed to their subscribers,
/// so that a subscriber misses nothing published next, and closing the connection
/// loses nothing already sent.
///
/// `Client::flush` is not enough. It returns once the bytes are handed to the
/// socket, and async-nats 0.51 can even report a flush while its buffer waits on a
/// full socket. A connection closed with unread input (a consumer's next
/// messages, a heartbeat) is reset, and the kernel throws away what it had not
/// sent yet: seen as a test missing 10 of 600 receipts from a `serve` that had
/// just stopped. A request is read after every earlier message on the connection,
/// in order, so any answer to it (an account's information, an error, or "no
/// responders" from a server without JetStream) comes after they were routed.
/// An error means no answer came within [`ROUND_TRIP_TIMEOUT`] (a connection
/// down, or a publish permission missing).
pub async fn round_trip(client: &async_nats::Client) -> Result<(), NatsError> {
    let request = async_nats::Request::new().timeout(Some(ROUND_TRIP_TIMEOUT));
    match client.send_request(ROUND_TRIP_SUBJECT, request).await {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == async_nats::RequestErrorKind::NoResponders => Ok(()),
        Err(e) => Err(NatsError::Other(format!(
            "no answer to a round trip ({ROUND_TRIP_SUBJECT}) within {ROUND_TRIP_TIMEOUT:?}: {e}"
        ))),
    }
}

/// The server's version as (major, minor, patch), when it says.
pub fn server_version(client: &async_nats::Client) -> Option<(u32, u32, u32)> {
    crate::devserver::parse_version(&client.server_info().version)
}

/// The oldest nats-server `serve` runs against: ordered pull consumers arrived in 2.9.
pub const MIN_SERVER: (u32, u32, u32) = (2, 9, 0);

/// Refuses a server older than [`MIN_SERVER`], saying so.
pub fn check_server(client: &async_nats::Client) -> Result<(), NatsError> {
    match server_version(client) {
        Some(v) if v < MIN_SERVER => Err(NatsError::Other(format!(
            "nats-server {}.{}.{} is too old: govledger needs {}.{}.{} or newer (ordered pull consumers)",
            v.0, v.1, v.2, MIN_SERVER.0, MIN_SERVER.1, MIN_SERVER.2
        ))),
        _ => Ok(()),
    }
}

/// Gets the stream, creating it (file storage, the duplicate window) when missing.
pub async fn ensure_stream(
    js: &jetstream::Context,
    s: &StreamSettings,
) -> Result<stream::Stream, NatsError> {
    let err = |message: String| NatsError::Stream {
        stream: s.name.clone(),
        message,
    };
    match js.get_stream(&s.name).await {
        Ok(stream) => Ok(stream),
        Err(e)
            if matches!(
                e.kind(),
                jetstream::context::GetStreamErrorKind::JetStream(ref je)
                    if je.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND
            ) =>
        {
            js.create_stream(stream::Config {
                name: s.name.clone(),
                subjects: s.subjects.clone(),
                storage: stream::StorageType::File,
                duplicate_window: s.duplicate_window,
                ..Default::default()
            })
            .await
            .map_err(|e| err(format!("cannot create it: {e}")))
        }
        Err(e) => Err(err(format!(
            "cannot reach JetStream (is the server started with -js?): {e}"
        ))),
    }
}
