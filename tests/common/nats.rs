//! A real nats-server per test: its own free loopback port and its own JetStream
//! store directory, so tests never share state and can kill and restart it. The
//! binary is `$NATS_SERVER_BIN` when set, else `nats-server` from PATH.

pub use govledger_ingest::devserver::free_port as try_free_port;
use govledger_ingest::devserver::DevServer;

/// A free loopback port.
pub fn free_port() -> u16 {
    try_free_port().expect("a free loopback port")
}

/// A private nats-server and the directory holding its store.
pub struct NatsServer {
    server: DevServer,
    _dir: tempfile::TempDir,
}

impl NatsServer {
    pub fn start() -> NatsServer {
        Self::start_with(&[])
    }

    /// With extra nats-server arguments, e.g. `["--auth", "s3cret"]`.
    pub fn start_with(extra: &[&str]) -> NatsServer {
        let dir = tempfile::tempdir().expect("tempdir for nats-server");
        let server = DevServer::start_with(dir.path(), extra).unwrap_or_else(|e| panic!("{e}"));
        NatsServer { server, _dir: dir }
    }

    pub fn url(&self) -> String {
        self.server.url()
    }

    pub fn log(&self) -> String {
        self.server.log()
    }

    /// SIGKILL.
    pub fn kill(&mut self) {
        self.server.kill();
    }

    /// Starts it again on the same port with the same store.
    pub fn restart(&mut self) {
        self.server
            .restart()
            .unwrap_or_else(|e| panic!("nats-server restart failed: {e}"));
    }
}

/// Waits until the server has processed everything `client` sent before
/// ([`govledger_ingest::nats::round_trip`]), failing the test if it cannot.
pub async fn round_trip(client: &async_nats::Client) {
    govledger_ingest::nats::round_trip(client)
        .await
        .expect("a round trip to the server");
}

/// Subscribes `client` to each of `subjects`, in place at the server (a round
/// trip) before this returns, so nothing published next is missed.
pub async fn subscribed<const N: usize>(
    client: &async_nats::Client,
    subjects: [&str; N],
) -> [async_nats::Subscriber; N] {
    let mut subs = Vec::with_capacity(N);
    for subject in subjects {
        subs.push(
            client
                .subscribe(subject.to_string())
                .await
                .expect("subscribe"),
        );
    }
    round_trip(client).await;
    subs.try_into()
        .unwrap_or_else(|_| unreachable!("one per subject"))
}
