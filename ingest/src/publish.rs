//! `govledger publish`: sends signed event lines to JetStream as a producer would.
//!
//! Each line becomes one message on its subject with the wire headers: `Nats-Msg-Id`
//! (`<tenant>:<event id>`, for JetStream's duplicate window), `Gov-Key` and `Gov-Sig`.
//! Publishes are acknowledged by JetStream; up to `max_in_flight` wait at once. A
//! publish that fails (server restarting, no responders, timeout) is retried with
//! the same `Nats-Msg-Id` until JetStream acknowledges it, so a restart of
//! nats-server neither loses nor duplicates an event within the duplicate window.

use crate::gen::Line;
use crate::nats::{ensure_stream, NatsError, StreamSettings};
use async_nats::jetstream;
use async_nats::HeaderMap;
use govledger_schemas::{peek_ids, DecodeLimits};
use std::collections::VecDeque;
use std::time::Duration;

/// How to publish.
#[derive(Clone, Debug)]
pub struct PublishOptions {
    /// Events per second (None: as fast as acknowledgements allow).
    pub rate: Option<u64>,
    /// Publishes awaiting acknowledgement at once.
    pub max_in_flight: usize,
    /// Give up on one message after retrying this long.
    pub retry_for: Duration,
}

impl Default for PublishOptions {
    fn default() -> Self {
        PublishOptions {
            rate: None,
            max_in_flight: 256,
            retry_for: Duration::from_secs(60),
        }
    }
}

/// What a publish run did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PublishReport {
    /// Messages acknowledged by JetStream.
    pub published: u64,
    /// Of those, acknowledged as duplicates (already in the stream).
    pub duplicates: u64,
    /// Publish attempts that failed and were retried.
    pub retries: u64,
    /// Stream sequence of the last acknowledged message.
    pub last_seq: u64,
}

/// Why publishing stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PublishError {
    /// A line cannot be sent.
    #[error("line {line}: {message}")]
    Line {
        /// 1-based line number.
        line: u64,
        /// Why.
        message: String,
    },
    /// NATS refused for longer than the retry budget.
    #[error("line {line}: JetStream did not acknowledge within {secs}s: {message}")]
    Unacknowledged {
        /// 1-based line number.
        line: u64,
        /// The retry budget.
        secs: u64,
        /// The last error.
        message: String,
    },
    /// Connecting or binding the stream.
    #[error(transparent)]
    Nats(#[from] NatsError),
}

/// The `Nats-Msg-Id` of an event: `<tenant>:<event id>` (event ids are unique per
/// tenant only).
pub fn msg_id(tenant: &str, event_id: &str) -> String {
    format!("{tenant}:{event_id}")
}

struct Prepared {
    line: u64,
    subject: String,
    headers: HeaderMap,
    body: Vec<u8>,
}

fn prepare(line_no: u64, line: &Line) -> Result<Prepared, PublishError> {
    let body = line.body_bytes().map_err(|message| PublishError::Line {
        line: line_no,
        message,
    })?;
    let mut headers = HeaderMap::new();
    if let (Some(id), Some(tenant)) = peek_ids(&body, &DecodeLimits::default()) {
        headers.insert(
            async_nats::header::NATS_MESSAGE_ID,
            msg_id(tenant.as_str(), id.as_str()).as_str(),
        );
    }
    if let Some(k) = &line.key {
        headers.insert("Gov-Key", k.as_str());
    }
    if let Some(s) = &line.sig {
        headers.insert("Gov-Sig", s.as_str());
    }
    Ok(Prepared {
        line: line_no,
        subject: line.subject.clone(),
        headers,
        body,
    })
}

async fn send(
    js: &jetstream::Context,
    p: &Prepared,
) -> Result<jetstream::context::PublishAckFuture, String> {
    js.publish_with_headers(p.subject.clone(), p.headers.clone(), p.body.clone().into())
        .await
        .map_err(|e| e.to_string())
}

/// Publishes one message, retrying until acknowledged or the budget runs out.
async fn publish_until_acked(
    js: &jetstream::Context,
    p: &Prepared,
    opts: &PublishOptions,
    report: &mut PublishReport,
) -> Result<(), PublishError> {
    let start = tokio::time::Instant::now();
    let mut backoff = Duration::from_millis(50);
    loop {
        let outcome = match send(js, p).await {
            Ok(fut) => fut.await.map_err(|e| e.to_string()),
            Err(e) => Err(e),
        };
        match outcome {
            Ok(ack) => {
                report.published += 1;
                report.duplicates += u64::from(ack.duplicate);
                report.last_seq = report.last_seq.max(ack.sequence);
                return Ok(());
            }
            Err(message) if start.elapsed() >= opts.retry_for => {
                return Err(PublishError::Unacknowledged {
                    line: p.line,
                    secs: opts.retry_for.as_secs(),
                    message,
                })
            }
            Err(_) => {
                report.retries += 1;
                tokio::time::sleep(backoff).await; // back off before the retry
                backoff = (backoff * 2).min(Duration::from_secs(1));
            }
        }
    }
}

/// Publishes `lines` (1-based numbering for errors) on `client`, creating the
/// stream if needed, and calls `progress` with the count acknowledged.
pub async fn publish_lines(
    client: &async_nats::Client,
    stream: &StreamSettings,
    lines: impl IntoIterator<Item = Result<Line, String>>,
    opts: &PublishOptions,
    progress: &mut dyn FnMut(u64),
) -> Result<PublishReport, PublishError> {
    let js = jetstream::new(client.clone());
    ensure_stream(&js, stream).await?;
    let mut report = PublishReport::default();
    let mut in_flight: VecDeque<(
        Prepared,
        Result<jetstream::context::PublishAckFuture, String>,
    )> = VecDeque::new();
    let mut ticker = opts.rate.filter(|r| *r > 0).map(|r| {
        let mut t = tokio::time::interval(Duration::from_secs_f64(1.0 / r as f64));
        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        t
    });
    let max = opts.max_in_flight.max(1);
    for (i, line) in lines.into_iter().enumerate() {
        let line_no = i as u64 + 1;
        let line = line.map_err(|message| PublishError::Line {
            line: line_no,
            message,
        })?;
        let p = prepare(line_no, &line)?;
        if let Some(t) = ticker.as_mut() {
            t.tick().await;
        }
        let fut = send(&js, &p).await;
        in_flight.push_back((p, fut));
        while in_flight.len() >= max {
            settle(&js, &mut in_flight, opts, &mut report).await?;
            progress(report.published);
        }
    }
    while !in_flight.is_empty() {
        settle(&js, &mut in_flight, opts, &mut report).await?;
    }
    progress(report.published);
    Ok(report)
}

/// Waits for the oldest publish; retries it if it failed.
async fn settle(
    js: &jetstream::Context,
    in_flight: &mut VecDeque<(
        Prepared,
        Result<jetstream::context::PublishAckFuture, String>,
    )>,
    opts: &PublishOptions,
    report: &mut PublishReport,
) -> Result<(), PublishError> {
    let Some((p, fut)) = in_flight.pop_front() else {
        return Ok(());
    };
    let acked = match fut {
        Ok(f) => f.await.ok(),
        Err(_) => None,
    };
    match acked {
        Some(ack) => {
            report.published += 1;
            report.duplicates += u64::from(ack.duplicate);
            report.last_seq = report.last_seq.max(ack.sequence);
            Ok(())
        }
        None => {
            report.retries += 1;
            publish_until_acked(js, &p, opts, report).await
        }
    }
}
