//! `net`: TCP and TLS connections for the network sinks, and their backoff.
//!
//! Blocking std sockets with timeouts (a receiver that stops reading makes a write
//! fail after [`IO_TIMEOUT`], and the batch is retried on a new connection), and
//! rustls with the ring provider (the TLS stack async-nats already brings). The
//! trusted roots are the platform's (`rustls-native-certs`), or only the
//! certificates of `--ca-file` when one is given (a private CA).

use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};

use super::{sleep_unless_stopped, SinkError};

/// Connect, read and write timeout of every network sink.
pub const IO_TIMEOUT: Duration = Duration::from_secs(30);

/// Splits `host:port` or `[v6]:port`; `default` applies when there is no port.
pub fn split_host_port(s: &str, default: Option<u16>) -> Result<(String, u16), String> {
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (h, after) = rest
            .split_once(']')
            .ok_or("an IPv6 address needs its closing ']'")?;
        match after.strip_prefix(':') {
            Some(p) => (h, Some(p)),
            None if after.is_empty() => (h, None),
            None => return Err(format!("unexpected {after:?} after the address")),
        }
    } else {
        match s.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    if host.is_empty() {
        return Err("the host is missing".to_owned());
    }
    let port = match port {
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| format!("port {p:?} is not a number from 1 to 65535"))?,
        None => default.ok_or("the port is missing: use HOST:PORT")?,
    };
    Ok((host.to_owned(), port))
}

/// `host:port`, with brackets around an IPv6 address.
pub fn join_host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// A client TLS configuration: the roots of `ca_file` (PEM) when given, else the
/// platform's.
pub fn tls_config(ca_file: Option<&Path>) -> Result<Arc<rustls::ClientConfig>, SinkError> {
    let mut roots = rustls::RootCertStore::empty();
    match ca_file {
        Some(path) => {
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
                .and_then(|it| it.collect::<Result<_, _>>())
                .map_err(|e| {
                    SinkError::TlsConfig(format!("cannot read CA file {}: {e}", path.display()))
                })?;
            if certs.is_empty() {
                return Err(SinkError::TlsConfig(format!(
                    "CA file {} holds no PEM certificate",
                    path.display()
                )));
            }
            for c in certs {
                roots.add(c).map_err(|e| {
                    SinkError::TlsConfig(format!("CA file {}: {e}", path.display()))
                })?;
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            let (added, _) = roots.add_parsable_certificates(found.certs);
            if added == 0 {
                return Err(SinkError::TlsConfig(
                    "no trusted CA certificates found on this system: use --ca-file PEM".into(),
                ));
            }
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| SinkError::TlsConfig(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// An open connection, plain or TLS.
#[allow(clippy::large_enum_variant)]
pub enum Conn {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS over TCP.
    Tls(rustls::StreamOwned<rustls::ClientConnection, TcpStream>),
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(s) => s.read(buf),
            Conn::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(s) => s.write(buf),
            Conn::Tls(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Conn::Plain(s) => s.flush(),
            Conn::Tls(s) => s.flush(),
        }
    }
}

/// Why a connection attempt failed.
pub enum ConnectError {
    /// Worth retrying (refused, reset, timed out, name not resolved yet).
    Transient(io::Error),
    /// Not worth retrying (untrusted certificate).
    Fatal(SinkError),
}

/// Connects to `host:port`, with TLS when `tls` is given (the handshake completes
/// here, so a certificate problem is reported now).
pub fn connect(
    host: &str,
    port: u16,
    tls: Option<&Arc<rustls::ClientConfig>>,
) -> Result<Conn, ConnectError> {
    let peer = join_host_port(host, port);
    let addrs: Vec<_> = (host, port)
        .to_socket_addrs()
        .map_err(ConnectError::Transient)?
        .collect();
    let mut last = io::Error::new(io::ErrorKind::NotFound, format!("{peer}: no address"));
    let mut sock = None;
    for a in addrs {
        match TcpStream::connect_timeout(&a, IO_TIMEOUT) {
            Ok(s) => {
                sock = Some(s);
                break;
            }
            Err(e) => last = e,
        }
    }
    let sock = sock.ok_or(ConnectError::Transient(last))?;
    let _ = sock.set_nodelay(true);
    sock.set_read_timeout(Some(IO_TIMEOUT))
        .and_then(|_| sock.set_write_timeout(Some(IO_TIMEOUT)))
        .map_err(ConnectError::Transient)?;
    let Some(config) = tls else {
        return Ok(Conn::Plain(sock));
    };
    let name = ServerName::try_from(host.to_owned()).map_err(|e| {
        ConnectError::Fatal(SinkError::TlsConfig(format!(
            "{host:?} is not a valid server name: {e}"
        )))
    })?;
    let conn = rustls::ClientConnection::new(config.clone(), name)
        .map_err(|e| ConnectError::Fatal(SinkError::TlsConfig(e.to_string())))?;
    let mut stream = rustls::StreamOwned::new(conn, sock);
    while stream.conn.is_handshaking() {
        if let Err(e) = stream.conn.complete_io(&mut stream.sock) {
            return Err(match tls_error(&e) {
                Some(why) => ConnectError::Fatal(SinkError::Certificate { peer, why }),
                None => ConnectError::Transient(e),
            });
        }
    }
    Ok(Conn::Tls(stream))
}

/// The certificate problem inside `e`, if that is what it is.
fn tls_error(e: &io::Error) -> Option<String> {
    let inner = e.get_ref()?.downcast_ref::<rustls::Error>()?;
    match inner {
        rustls::Error::InvalidCertificate(_)
        | rustls::Error::NoCertificatesPresented
        | rustls::Error::InvalidCertRevocationList(_) => Some(inner.to_string()),
        _ => None,
    }
}

/// Capped exponential backoff: 100 ms, doubling, at most 30 s; reset after a
/// success.
#[derive(Debug)]
pub struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            next: Backoff::FIRST,
        }
    }
}

impl Backoff {
    /// The first wait.
    pub const FIRST: Duration = Duration::from_millis(100);
    /// The longest wait.
    pub const CAP: Duration = Duration::from_secs(30);

    /// Waits the current delay (returning early if `stop` is set) and doubles it.
    pub fn wait(&mut self, stop: &AtomicBool) -> Result<Duration, SinkError> {
        let d = self.next;
        sleep_unless_stopped(d, stop)?;
        self.next = (self.next * 2).min(Backoff::CAP);
        Ok(d)
    }

    /// Back to the first delay.
    pub fn reset(&mut self) {
        self.next = Backoff::FIRST;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_ports() {
        assert_eq!(split_host_port("a:1", None).unwrap(), ("a".into(), 1));
        assert_eq!(split_host_port("[::1]:2", None).unwrap(), ("::1".into(), 2));
        assert_eq!(split_host_port("a", Some(80)).unwrap(), ("a".into(), 80));
        assert!(split_host_port("a", None).is_err());
        assert!(split_host_port(":1", None).is_err());
        assert_eq!(join_host_port("::1", 3), "[::1]:3");
    }

    #[test]
    fn backoff_doubles_and_stops_early() {
        let stop = AtomicBool::new(false);
        let mut b = Backoff {
            next: Duration::from_millis(1),
        };
        assert_eq!(b.wait(&stop).unwrap(), Duration::from_millis(1));
        assert_eq!(b.wait(&stop).unwrap(), Duration::from_millis(2));
        b.next = Duration::from_secs(20);
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        // A stop request cuts a long wait short, and the delay is not doubled.
        assert!(matches!(b.wait(&stop), Err(SinkError::Stopped)));
        assert_eq!(b.next, Duration::from_secs(20));
        b.reset();
        assert_eq!(b.next, Backoff::FIRST);
    }

    #[test]
    fn unreadable_ca_file_is_a_clear_error() {
        let e = tls_config(Some(Path::new("/nonexistent/ca.pem"))).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/ca.pem"), "{e}");
    }
}
