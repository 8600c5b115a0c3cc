//! A Splunk HEC stand-in for the export tests: an HTTP/1.1 server on a free
//! loopback port (over TLS when given a rustls config) that logs every request and
//! answers each as the test's `respond` says.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

/// One request the stand-in received, and the status it answered.
#[derive(Clone, Debug)]
pub struct HecRequest {
    /// The request line, e.g. `POST /services/collector/event HTTP/1.1`.
    pub line: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub status: u16,
}

impl HecRequest {
    /// The value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// HEC's answers the tests use.
pub const SUCCESS: (u16, &str) = (200, r#"{"text":"Success","code":0}"#);
pub const BUSY: (u16, &str) = (503, r#"{"text":"Server is busy","code":9}"#);
pub const BAD_TOKEN: (u16, &str) = (403, r#"{"text":"Invalid token","code":4}"#);

/// A running stand-in: its port and the log of what it received.
pub struct HecStandIn {
    pub port: u16,
    pub log: Arc<Mutex<Vec<HecRequest>>>,
}

impl HecStandIn {
    /// The bodies it accepted (answered 200), in order.
    pub fn delivered(&self) -> Vec<String> {
        let log = self.log.lock().unwrap();
        log.iter()
            .filter(|r| r.status == 200)
            .map(|r| r.body.clone())
            .collect()
    }

    /// How many requests it refused (answered anything but 200).
    pub fn refused(&self) -> usize {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.status != 200)
            .count()
    }
}

trait Stream: Read + Write + Send {}
impl<T: Read + Write + Send> Stream for T {}

type Respond = dyn FnMut(&HecRequest) -> (u16, &'static str) + Send;

/// Starts a stand-in that answers each request with `respond(request)`.
pub fn start(
    tls: Option<Arc<rustls::ServerConfig>>,
    respond: impl FnMut(&HecRequest) -> (u16, &'static str) + Send + 'static,
) -> HecStandIn {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let log: Arc<Mutex<Vec<HecRequest>>> = Arc::default();
    let respond: Arc<Mutex<Box<Respond>>> = Arc::new(Mutex::new(Box::new(respond)));
    let seen = log.clone();
    std::thread::spawn(move || {
        for sock in listener.incoming() {
            let Ok(sock) = sock else { return };
            let stream: Box<dyn Stream> = match &tls {
                Some(cfg) => match rustls::ServerConnection::new(cfg.clone()) {
                    Ok(conn) => Box::new(rustls::StreamOwned::new(conn, sock)),
                    Err(_) => return,
                },
                None => Box::new(sock),
            };
            let (seen, respond) = (seen.clone(), respond.clone());
            std::thread::spawn(move || serve_connection(stream, &seen, &respond));
        }
    });
    HecStandIn { port, log }
}

/// Answers the requests of one keep-alive connection until it closes.
fn serve_connection(
    stream: Box<dyn Stream>,
    seen: &Mutex<Vec<HecRequest>>,
    respond: &Mutex<Box<Respond>>,
) {
    let mut r = BufReader::new(stream);
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut headers = Vec::new();
        loop {
            let mut h = String::new();
            if r.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((n, v)) = h.split_once(':') {
                headers.push((n.trim().to_owned(), v.trim().to_owned()));
            }
        }
        let len: usize = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; len];
        if r.read_exact(&mut body).is_err() {
            return;
        }
        let mut req = HecRequest {
            line: line.trim_end().to_owned(),
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
            status: 0,
        };
        let (status, text) = (respond.lock().unwrap())(&req);
        req.status = status;
        seen.lock().unwrap().push(req);
        let resp = format!(
            "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{text}",
            text.len()
        );
        let w = r.get_mut();
        if w.write_all(resp.as_bytes())
            .and_then(|_| w.flush())
            .is_err()
        {
            return;
        }
    }
}
