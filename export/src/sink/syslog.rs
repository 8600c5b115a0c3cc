//! `syslog`: RFC 5424 messages over TCP (RFC 6587) or TLS (RFC 5425), each framed
//! with octet counting, on one long-lived connection.
//!
//! A batch is written whole; a connection or write error drops the connection and
//! the whole batch is sent again on a new one after a backoff (a receiver discards
//! the partial frame of a broken connection). So a record can arrive twice, never
//! zero times while the connection reports success: at least once. Every message
//! carries `seq` and `leaf` in its structured data, by which a receiver drops
//! repeats.

use std::io::Write;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use super::net::{connect, join_host_port, Backoff, Conn, ConnectError};
use super::{Framing, Sink, SinkError};

/// Sends framed syslog messages to one receiver.
pub struct SyslogSink {
    host: String,
    port: u16,
    tls: Option<Arc<rustls::ClientConfig>>,
    conn: Option<Conn>,
    backoff: Backoff,
    retries: u64,
}

impl std::fmt::Debug for SyslogSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyslogSink")
            .field("peer", &join_host_port(&self.host, self.port))
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

impl SyslogSink {
    /// A sink for `host:port`, TLS when `tls` is given. Connects lazily.
    pub fn new(host: &str, port: u16, tls: Option<Arc<rustls::ClientConfig>>) -> SyslogSink {
        SyslogSink {
            host: host.to_owned(),
            port,
            tls,
            conn: None,
            backoff: Backoff::default(),
            retries: 0,
        }
    }

    fn peer(&self) -> String {
        join_host_port(&self.host, self.port)
    }
}

impl Sink for SyslogSink {
    fn framing(&self) -> Framing {
        Framing::OctetCounting
    }

    fn deliver(&mut self, buf: &[u8], stop: &AtomicBool) -> Result<(), SinkError> {
        loop {
            let conn = match self.conn.take() {
                Some(c) => c,
                None => match connect(&self.host, self.port, self.tls.as_ref()) {
                    Ok(c) => c,
                    Err(ConnectError::Fatal(e)) => return Err(e),
                    Err(ConnectError::Transient(e)) => {
                        self.retries += 1;
                        tracing::warn!(peer = %self.peer(), error = %e, "syslog: cannot connect; retrying the batch");
                        self.backoff.wait(stop)?;
                        continue;
                    }
                },
            };
            let mut conn = conn;
            match conn.write_all(buf).and_then(|_| conn.flush()) {
                Ok(()) => {
                    self.conn = Some(conn);
                    self.backoff.reset();
                    return Ok(());
                }
                Err(e) => {
                    self.retries += 1;
                    tracing::warn!(peer = %self.peer(), error = %e, "syslog: write failed; reconnecting and sending the batch again");
                    self.backoff.wait(stop)?;
                }
            }
        }
    }

    fn sync(&mut self) -> Result<u64, SinkError> {
        // Flushed in `deliver`; TCP syslog has nothing more to wait for.
        Ok(0)
    }

    fn retries(&self) -> u64 {
        self.retries
    }
}
