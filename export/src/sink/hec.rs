//! `hec`: Splunk HTTP Event Collector, one POST per batch of concatenated
//! envelopes, over HTTP/1.1 keep-alive (http, or https with rustls).
//!
//! A small blocking HTTP/1.1 client, enough for HEC: `POST PATH` with
//! `Authorization: Splunk <token>`, `Content-Type: application/json` and
//! `Content-Length`; the response's status and body (by `Content-Length`, chunked,
//! or up to the close). 2xx: delivered. 429 and 5xx, connection and protocol
//! errors: the batch is sent again after a backoff, forever. Any other 4xx (a bad
//! token, a malformed request) is [`SinkError::Rejected`] with the response body.

use std::fmt;
use std::io::{BufRead, BufReader, Read, Write};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use super::net::{connect, join_host_port, split_host_port, Backoff, Conn, ConnectError};
use super::{Sink, SinkError};

/// The endpoint used when the URL has no path.
pub const DEFAULT_HEC_PATH: &str = "/services/collector/event";

/// The most of a response body kept (for error messages) or read at all.
const MAX_BODY: usize = 1 << 20;

/// An `http://` or `https://` URL, parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpUrl {
    /// https.
    pub tls: bool,
    /// Host name or IP address (no brackets).
    pub host: String,
    /// Port (default 80 or 443).
    pub port: u16,
    /// Path and query, starting with `/` ([`DEFAULT_HEC_PATH`] when the URL has none).
    pub path: String,
}

impl HttpUrl {
    /// Parses `http(s)://HOST[:PORT][/PATH]`; no user info, no fragment.
    pub fn parse(s: &str) -> Result<HttpUrl, SinkError> {
        let bad = |why: &str| SinkError::BadUrl {
            url: s.to_owned(),
            why: why.to_owned(),
        };
        let (tls, rest) = if let Some(r) = s.strip_prefix("https://") {
            (true, r)
        } else if let Some(r) = s.strip_prefix("http://") {
            (false, r)
        } else {
            return Err(bad("use http:// or https://"));
        };
        let (authority, path) = match rest.find(['/', '?']) {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if authority.contains('@') {
            return Err(bad(
                "credentials do not go in the URL: use --hec-token or GOVLEDGER_HEC_TOKEN",
            ));
        }
        if path.contains('#') || path.bytes().any(|b| b <= b' ' || b == 0x7f) {
            return Err(bad(
                "the path may not hold spaces, control characters or '#'",
            ));
        }
        let (host, port) =
            split_host_port(authority, Some(if tls { 443 } else { 80 })).map_err(|w| bad(&w))?;
        let path = match path {
            "" | "/" => DEFAULT_HEC_PATH.to_owned(),
            p if p.starts_with('?') => format!("{DEFAULT_HEC_PATH}{p}"),
            p => p.to_owned(),
        };
        Ok(HttpUrl {
            tls,
            host,
            port,
            path,
        })
    }
}

impl fmt::Display for HttpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.tls { "https" } else { "http" };
        write!(
            f,
            "{scheme}://{}{}",
            join_host_port(&self.host, self.port),
            self.path
        )
    }
}

/// Posts batches to a HEC endpoint.
pub struct HecSink {
    url: HttpUrl,
    token: String,
    tls: Option<Arc<rustls::ClientConfig>>,
    conn: Option<BufReader<Conn>>,
    backoff: Backoff,
    retries: u64,
}

impl fmt::Debug for HecSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the token.
        f.debug_struct("HecSink").field("url", &self.url).finish()
    }
}

/// What one attempt came to.
enum Attempt {
    Delivered,
    /// Retry after a backoff, for this reason.
    Retry(String),
}

impl HecSink {
    /// A sink posting to `url` with `token`; `tls` is required for https.
    pub fn new(
        url: HttpUrl,
        token: &str,
        tls: Option<Arc<rustls::ClientConfig>>,
    ) -> Result<HecSink, SinkError> {
        if token.trim().is_empty() {
            return Err(SinkError::BadUrl {
                url: url.to_string(),
                why: "Splunk HEC needs a token: use --hec-token or GOVLEDGER_HEC_TOKEN".into(),
            });
        }
        if token.bytes().any(|b| b < b' ' || b == 0x7f) {
            return Err(SinkError::BadUrl {
                url: url.to_string(),
                why: "the HEC token holds control characters".into(),
            });
        }
        if url.tls && tls.is_none() {
            return Err(SinkError::TlsConfig(format!(
                "{url} needs a TLS configuration"
            )));
        }
        let tls = if url.tls { tls } else { None };
        Ok(HecSink {
            url,
            token: token.trim().to_owned(),
            tls,
            conn: None,
            backoff: Backoff::default(),
            retries: 0,
        })
    }

    fn attempt(&mut self, body: &[u8], reused: &mut bool) -> Result<Attempt, SinkError> {
        let mut conn = match self.conn.take() {
            Some(c) => {
                *reused = true;
                c
            }
            None => {
                *reused = false;
                match connect(&self.url.host, self.url.port, self.tls.as_ref()) {
                    Ok(c) => BufReader::with_capacity(1 << 14, c),
                    Err(ConnectError::Fatal(e)) => return Err(e),
                    Err(ConnectError::Transient(e)) => {
                        return Ok(Attempt::Retry(format!("cannot connect: {e}")))
                    }
                }
            }
        };
        let head = format!(
            "POST {} HTTP/1.1\r\nHost: {}\r\nAuthorization: Splunk {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: keep-alive\r\n\r\n",
            self.url.path,
            join_host_port(&self.url.host, self.url.port),
            self.token,
            body.len()
        );
        let sent = {
            let w = conn.get_mut();
            w.write_all(head.as_bytes())
                .and_then(|_| w.write_all(body))
                .and_then(|_| w.flush())
        };
        if let Err(e) = sent {
            return Ok(Attempt::Retry(format!("cannot send: {e}")));
        }
        let resp = match read_response(&mut conn) {
            Ok(r) => r,
            Err(e) => return Ok(Attempt::Retry(format!("bad or no response: {e}"))),
        };
        if resp.keep_alive {
            self.conn = Some(conn);
        }
        let text = String::from_utf8_lossy(&resp.body[..resp.body.len().min(4096)]).into_owned();
        match resp.status {
            200..=299 => Ok(Attempt::Delivered),
            429 | 500..=599 => Ok(Attempt::Retry(format!("HTTP {}: {text}", resp.status))),
            status => Err(SinkError::Rejected {
                url: self.url.to_string(),
                status,
                body: text,
            }),
        }
    }
}

impl Sink for HecSink {
    fn deliver(&mut self, buf: &[u8], stop: &AtomicBool) -> Result<(), SinkError> {
        loop {
            let mut reused = false;
            match self.attempt(buf, &mut reused)? {
                Attempt::Delivered => {
                    self.backoff.reset();
                    return Ok(());
                }
                // A kept-alive connection the server had closed: try a new one now.
                Attempt::Retry(_) if reused => continue,
                Attempt::Retry(why) => {
                    self.retries += 1;
                    tracing::warn!(url = %self.url, reason = %why, "Splunk HEC: batch not delivered; retrying");
                    self.backoff.wait(stop)?;
                }
            }
        }
    }

    fn sync(&mut self) -> Result<u64, SinkError> {
        Ok(0)
    }

    fn retries(&self) -> u64 {
        self.retries
    }
}

/// A parsed HTTP response.
struct Response {
    status: u16,
    body: Vec<u8>,
    keep_alive: bool,
}

fn protocol(what: impl Into<String>) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, what.into())
}

fn read_line(r: &mut impl BufRead) -> std::io::Result<String> {
    let mut line = Vec::new();
    let n = r.by_ref().take(8192).read_until(b'\n', &mut line)?;
    if n == 0 {
        return Err(protocol("connection closed"));
    }
    if line.last() != Some(&b'\n') {
        return Err(protocol("header line too long"));
    }
    Ok(String::from_utf8_lossy(&line).trim_end().to_owned())
}

fn read_response(r: &mut impl BufRead) -> std::io::Result<Response> {
    let status_line = read_line(r)?;
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or("");
    if !version.starts_with("HTTP/1.") {
        return Err(protocol(format!(
            "not an HTTP/1.x response: {status_line:?}"
        )));
    }
    let status: u16 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| protocol(format!("no status code in {status_line:?}")))?;
    let mut length: Option<usize> = None;
    let mut chunked = false;
    let mut keep_alive = version == "HTTP/1.1";
    for _ in 0..200 {
        let line = read_line(r)?;
        if line.is_empty() {
            let body = if chunked {
                read_chunked(r)?
            } else if let Some(n) = length {
                if n > MAX_BODY {
                    return Err(protocol(format!("response body of {n} bytes")));
                }
                let mut b = vec![0; n];
                r.read_exact(&mut b)?;
                b
            } else {
                keep_alive = false;
                let mut b = Vec::new();
                r.take(MAX_BODY as u64).read_to_end(&mut b)?;
                b
            };
            return Ok(Response {
                status,
                body,
                keep_alive,
            });
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(protocol(format!("malformed header {line:?}")));
        };
        let value = value.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "content-length" => {
                length = Some(
                    value
                        .parse()
                        .map_err(|_| protocol(format!("bad Content-Length {value:?}")))?,
                )
            }
            "transfer-encoding" => chunked = value.to_ascii_lowercase().contains("chunked"),
            "connection" => {
                let v = value.to_ascii_lowercase();
                if v.contains("close") {
                    keep_alive = false;
                } else if v.contains("keep-alive") {
                    keep_alive = true;
                }
            }
            _ => {}
        }
    }
    Err(protocol("too many response headers"))
}

fn read_chunked(r: &mut impl BufRead) -> std::io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line = read_line(r)?;
        let size = usize::from_str_radix(line.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| protocol(format!("bad chunk size {line:?}")))?;
        if size == 0 {
            // Trailers, up to the empty line.
            while !read_line(r)?.is_empty() {}
            return Ok(body);
        }
        if body.len() + size > MAX_BODY {
            return Err(protocol("response body too large"));
        }
        let start = body.len();
        body.resize(start + size, 0);
        r.read_exact(&mut body[start..])?;
        read_line(r)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u = HttpUrl::parse("http://127.0.0.1:8088").unwrap();
        assert_eq!(u.path, DEFAULT_HEC_PATH);
        assert_eq!(u.port, 8088);
        assert!(!u.tls);
        let u = HttpUrl::parse("https://h/services/collector?channel=x").unwrap();
        assert_eq!((u.port, u.tls), (443, true));
        assert_eq!(u.path, "/services/collector?channel=x");
        assert_eq!(
            HttpUrl::parse("https://h?channel=x").unwrap().path,
            "/services/collector/event?channel=x"
        );
        assert!(HttpUrl::parse("http://u:p@h/").is_err());
        assert!(HttpUrl::parse("http://h/a b").is_err());
        assert!(HttpUrl::parse("ftp://h/").is_err());
    }

    #[test]
    fn responses() {
        let mut r: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
        let resp = read_response(&mut r).unwrap();
        assert_eq!(
            (resp.status, resp.body.as_slice(), resp.keep_alive),
            (200, &b"ok"[..], true)
        );
        let mut r: &[u8] =
            b"HTTP/1.1 503 x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
        let resp = read_response(&mut r).unwrap();
        assert_eq!(
            (resp.status, resp.body.as_slice(), resp.keep_alive),
            (503, &b"abc"[..], false)
        );
        let mut r: &[u8] = b"HTTP/1.0 403 no\r\n\r\nInvalid token";
        let resp = read_response(&mut r).unwrap();
        assert_eq!(
            (resp.status, resp.body.as_slice()),
            (403, &b"Invalid token"[..])
        );
        let mut r: &[u8] = b"SSH-2.0\r\n";
        assert!(read_response(&mut r).is_err());
    }

    #[test]
    fn a_token_is_required() {
        let u = HttpUrl::parse("http://h:1").unwrap();
        let e = HecSink::new(u, " ", None).unwrap_err().to_string();
        assert!(e.contains("--hec-token"), "{e}");
    }
}
