//! `govledger serve`: the JetStream consumer loop.
//!
//! One loop, in stream order:
//! 1. take messages from an **ordered consumer** that starts just after the ledger's
//!    cursor, until the batch is full or its time bound passes;
//! 2. skip what the cursor already covers (a redelivery after a crash) and
//!    govledger's own publications (`gov.receipts.>`, `gov.alerts.>`,
//!    `gov.checkpoints`, which the default `gov.>` stream also captures);
//! 3. admit every other message ([`crate::admit`]): exactly one entry each;
//! 4. append the batch and the last stream sequence as one synced WriteBatch;
//! 5. only then publish receipts, alerts, and a checkpoint when one is due.
//!
//! Why an ordered consumer and not a durable pull consumer with acks: the ledger's
//! cursor, written in the same WriteBatch as the entries, is the only record of
//! progress that cannot disagree with the log. An ordered consumer keeps no server
//! state to reconcile, is recreated from our own position on every restart or gap,
//! and needs no acknowledgement round trips. A durable consumer's ack floor would be
//! a second, weaker copy of the cursor (acked after the commit, so always behind).
//!
//! Checkpoints are due every `checkpoint_every` entries or `checkpoint_interval`,
//! whichever comes first. The interval runs from the last checkpoint and is kept
//! also when no message comes: an idle `serve` signs the entries it holds once
//! the interval has passed. It reads the wall clock only to decide *when*
//! to sign; nothing signed depends on it. Replicas that cosign must use the count
//! alone (interval 0) so they sign the same sizes.

use crate::admit::{Admission, Message};
use crate::metrics::{Metrics, Stage};
use crate::nats::{
    check_server, connect_notifying, ensure_stream, NatsConfig, NatsError, StreamSettings,
};
use crate::snapshots::{self, SnapshotPolicy};
use async_nats::jetstream::{self, consumer};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use futures::StreamExt;
use govledger_ledger::note::NoteSigner;
use govledger_ledger::store::LogStore;
use govledger_ledger::{Appended, Ledger, LedgerError};
use govledger_schemas::{Entry, Verdict};
use serde_json::json;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often `serve` logs its progress while entries arrive.
const PROGRESS_EVERY: Duration = Duration::from_secs(10);

/// The admission state, shared between the consumer loop (which writes it under the
/// lock while it admits and appends a batch) and the HTTP state API (which reads it).
pub type SharedAdmission = Arc<std::sync::RwLock<Admission>>;

/// Wraps an admission state for [`run`].
pub fn shared(admission: Admission) -> SharedAdmission {
    Arc::new(std::sync::RwLock::new(admission))
}

/// Header a producer may set to get its receipt published to that subject too.
pub const REPLY_HEADER: &str = "Gov-Reply";

/// Everything `serve` needs to know.
#[derive(Clone, Debug)]
pub struct ServeConfig {
    /// NATS connection.
    pub nats: NatsConfig,
    /// The stream to bind or create.
    pub stream: StreamSettings,
    /// Most messages per batch (one WriteBatch each).
    pub batch_max: usize,
    /// Longest a message waits for its batch to fill.
    pub batch_wait: Duration,
    /// Sign a checkpoint after this many new entries (0: never by count).
    pub checkpoint_every: u64,
    /// Sign a checkpoint when this much time passed with new entries (zero: never by time).
    pub checkpoint_interval: Duration,
    /// Stop once the ledger holds this many entries (tests and one-shot catch-up).
    pub stop_at_size: Option<u64>,
    /// When to write state snapshots (at checkpoints).
    pub snapshots: SnapshotPolicy,
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            nats: NatsConfig::default(),
            stream: StreamSettings::default(),
            batch_max: 1024,
            batch_wait: Duration::ZERO,
            checkpoint_every: 10_000,
            checkpoint_interval: Duration::from_secs(1),
            stop_at_size: None,
            snapshots: SnapshotPolicy::default(),
        }
    }
}

/// Why `serve` stopped with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// NATS or JetStream.
    #[error(transparent)]
    Nats(#[from] NatsError),
    /// The ledger.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

fn subject_tenant(subject: &str) -> &str {
    let mut parts = subject.split('.');
    match (parts.next(), parts.next()) {
        (Some("gov"), Some(t)) if !t.is_empty() => t,
        _ => "_",
    }
}

/// govledger's own publications, which a `gov.>` stream captures too.
fn is_own_output(subject: &str) -> bool {
    subject == "gov.checkpoints"
        || subject.starts_with("gov.receipts.")
        || subject.starts_with("gov.alerts.")
}

/// Time from `unix_ns` (a JetStream timestamp) to now by this host's clock; zero
/// if that lies in the future (the server's clock is ahead).
fn since_unix_ns(unix_ns: u64) -> Duration {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    now.saturating_sub(Duration::from_nanos(unix_ns))
}

/// Where a message sits in the stream: its sequence, and how many messages the
/// server says are still pending for the consumer after it.
struct Position {
    seq: u64,
    pending: u64,
}

struct Pending {
    msg: Message,
    reply: Option<String>,
    /// When `serve` received it, for the receipt latency on /metrics.
    received: Instant,
}

/// Turns a JetStream message into an admission [`Message`]; `None` for our own
/// publications. The time is the JetStream timestamp, never our clock.
fn to_message(m: &jetstream::Message) -> Result<(Position, Option<Pending>), NatsError> {
    let info = m
        .info()
        .map_err(|e| NatsError::Other(format!("message without JetStream metadata: {e}")))?;
    let seq = info.stream_sequence;
    let at = Position {
        seq,
        pending: info.pending,
    };
    let subject = m.subject.as_str();
    if is_own_output(subject) {
        return Ok((at, None));
    }
    let time_ns = u64::try_from(info.published.unix_timestamp_nanos()).unwrap_or(0);
    let header = |name: &str| {
        m.headers
            .as_ref()
            .and_then(|h| h.get(name))
            .map(|v| v.as_str().to_string())
    };
    Ok((
        at,
        Some(Pending {
            msg: Message {
                subject: subject.to_string(),
                body: m.payload.to_vec(),
                key_id: header("Gov-Key"),
                signature: header("Gov-Sig"),
                stream_seq: seq,
                time_ns,
            },
            reply: header(REPLY_HEADER),
            received: Instant::now(),
        }),
    ))
}

/// The consumer loop. Runs until `shutdown` resolves (finishing the batch in hand),
/// `stop_at_size` is reached, or an error occurs. Returns the ledger.
pub async fn run<S: LogStore + 'static>(
    cfg: ServeConfig,
    mut ledger: Ledger<S>,
    admission: SharedAdmission,
    signer: NoteSigner,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()>,
) -> Result<Ledger<S>, ServeError> {
    // Refused for a ledger that `append --resume` fills (its cursor counts
    // lines), before anything else.
    ledger.claim_cursor(govledger_ledger::CursorSource::Stream)?;
    let reconnected = Arc::new(tokio::sync::Notify::new());
    let watched = metrics.clone();
    let on_connection: crate::nats::OnConnection = Arc::new(move |up| watched.set_connected(up));
    let client =
        connect_notifying(&cfg.nats, Some(reconnected.clone()), Some(on_connection)).await?;
    check_server(&client)?;
    tracing::info!(version = %client.server_info().version, "connected to nats-server");
    let js = jetstream::new(client.clone());
    let stream = ensure_stream(&js, &cfg.stream).await?;
    let mut cursor = ledger.cursor()?.unwrap_or(0);
    // The newest checkpoint signed before this start, until this run signs one.
    metrics.set_checkpoint(ledger.latest_checkpoint()?.map_or(0, |c| c.checkpoint.size));
    let mut messages = open_messages(&stream, &cfg.stream.name, cursor + 1).await?;
    // Fill the state digest's caches now (a state folded from entry 0, or from a
    // snapshot checked against an older digest, has none), so that the first
    // checkpoint costs what changed, not the whole state, under the lock.
    tokio::task::block_in_place(|| {
        admission
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .state_digest()
    });
    // The first connection's notice is not a reconnect (if it came already).
    let _ = futures::FutureExt::now_or_never(reconnected.notified());
    metrics.set_ready(true);
    tracing::info!(cursor, size = ledger.size(), "consuming");

    let mut since_checkpoint = 0u64;
    let mut checkpointer = Checkpointer {
        client: &client,
        signer: &signer,
        admission: &admission,
        metrics: &metrics,
        policy: cfg.snapshots,
        snapshots: snapshots::Background::new(),
    };
    // Progress lines for operators, every PROGRESS_EVERY while entries arrive.
    let mut progress_at = Instant::now();
    let mut progress_size = ledger.size();
    let mut last_checkpoint = Instant::now();
    let mut batch: Vec<Pending> = Vec::with_capacity(cfg.batch_max);
    let mut batch_last_seq = cursor;
    let mut deadline = tokio::time::Instant::now() + cfg.batch_wait;
    tokio::pin!(shutdown);
    let mut stopping = false;

    loop {
        if batch.is_empty() && cfg.stop_at_size.is_some_and(|n| ledger.size() >= n) {
            break;
        }
        let full = batch.len() >= cfg.batch_max;
        let mut flush = full;
        let mut reopen = false;
        // When entries are waiting for a checkpoint, the time one is due by
        // `checkpoint_interval`: it comes whether or not messages do.
        let timed = !cfg.checkpoint_interval.is_zero() && since_checkpoint > 0;
        let checkpoint_at =
            tokio::time::Instant::from_std(last_checkpoint) + cfg.checkpoint_interval;
        let mut checkpoint_time = false;
        if !full {
            tokio::select! {
                biased;
                _ = &mut shutdown => { stopping = true; flush = true; }
                next = messages.next() => match next {
                    Some(Ok(m)) => {
                        let (Position { seq, pending: lag }, pending) = to_message(&m)?;
                        metrics.set_lag(lag);
                        if seq <= cursor {
                            continue; // already in the ledger: a redelivery
                        }
                        if batch_last_seq == cursor {
                            deadline = tokio::time::Instant::now() + cfg.batch_wait;
                        }
                        batch_last_seq = seq;
                        if let Some(p) = pending {
                            metrics.record_stage(Stage::Delivery, since_unix_ns(p.msg.time_ns));
                            batch.push(p);
                        }
                    }
                    Some(Err(e)) => {
                        // The ordered consumer recreates itself after gaps and missed
                        // heartbeats; an error that reaches us (a server restart lost
                        // the consumer, say) means it cannot: flush what we hold, then
                        // open a new one after the cursor.
                        tracing::warn!(error = %e, "consumer error; reopening it after the cursor");
                        reopen = true;
                        flush = true;
                    }
                    None => {
                        // The consumer ended (it normally recreates itself): flush,
                        // then open a new one after the cursor.
                        tracing::warn!("consumer ended; reopening it after the cursor");
                        reopen = true;
                        flush = true;
                    }
                },
                _ = reconnected.notified() => {
                    // After a reconnect the server may have lost our (in-memory)
                    // consumer: flush and reopen after the cursor right away.
                    reopen = true;
                    flush = true;
                }
                // Group commit (batch_wait 0): nothing more is ready this instant, so
                // commit what we hold; under load the next batch grows while this
                // one syncs.
                _ = std::future::ready(()), if cfg.batch_wait.is_zero() && batch_last_seq > cursor => {
                    flush = true;
                }
                _ = tokio::time::sleep_until(deadline), if batch_last_seq > cursor => { flush = true; }
                _ = tokio::time::sleep_until(checkpoint_at), if timed => {
                    checkpoint_time = true;
                    flush = true;
                }
            }
        }
        let flushing = flush && batch_last_seq > cursor;
        if flushing {
            let started = Instant::now();
            let msgs: Vec<&Message> = batch.iter().map(|p| &p.msg).collect();
            // Readers of the shared state (GET /v1/state) wait while a batch is
            // admitted and made durable, so they never see an uncommitted event.
            let (entries, appended, warnings, detections) =
                tokio::task::block_in_place(|| -> Result<_, ServeError> {
                    let mut adm = admission.write().unwrap_or_else(|e| e.into_inner());
                    let mut entries = adm.admit_batch(&msgs, &|tenant, id| {
                        ledger.find_event(tenant, id).map(|s| s.is_some())
                    })?;
                    let appended = ledger.append(&mut entries, Some(batch_last_seq))?;
                    adm.end_batch();
                    Ok((
                        entries,
                        appended,
                        adm.take_warnings(),
                        adm.take_detections(),
                    ))
                })?;
            cursor = batch_last_seq;
            // A batch of serve's own receipts, alerts and checkpoints read back
            // (the gov.> stream keeps them) appends nothing: not a batch to report.
            if !entries.is_empty() {
                metrics.record_batch(&entries, started.elapsed());
            }
            metrics.record_alerts("budget_warning", warnings.len() as u64);
            metrics.record_alerts("detection", detections.len() as u64);
            publish_outcomes(&client, &metrics, &batch, &entries, &appended).await;
            let alerts = crate::alerts::raised(&entries, &appended, warnings, detections);
            publish_alerts(&client, alerts).await;
            since_checkpoint += appended.len() as u64;
            if progress_at.elapsed() >= PROGRESS_EVERY {
                let secs = progress_at.elapsed().as_secs_f64();
                tracing::info!(
                    size = ledger.size(),
                    cursor,
                    lag = metrics.lag(),
                    per_sec = ((ledger.size() - progress_size) as f64 / secs).round(),
                    "appending"
                );
                progress_at = Instant::now();
                progress_size = ledger.size();
            }
            batch.clear();
        }
        if flushing || checkpoint_time {
            let due_by_count = cfg.checkpoint_every > 0 && since_checkpoint >= cfg.checkpoint_every;
            let due_by_time = !cfg.checkpoint_interval.is_zero()
                && since_checkpoint > 0
                && last_checkpoint.elapsed() >= cfg.checkpoint_interval;
            if due_by_count || due_by_time || (stopping && since_checkpoint > 0) {
                checkpointer.sign(&mut ledger).await?;
                since_checkpoint = 0;
                last_checkpoint = Instant::now();
            }
        }
        if stopping || cfg.stop_at_size.is_some_and(|n| ledger.size() >= n) {
            break;
        }
        if reopen {
            batch_last_seq = cursor;
            metrics.set_ready(false);
            let mut backoff = Duration::from_millis(100);
            loop {
                match open_messages(&stream, &cfg.stream.name, cursor + 1).await {
                    Ok(m) => {
                        messages = m;
                        metrics.set_ready(true);
                        tracing::info!(cursor, "consuming again");
                        break;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot reopen the consumer yet");
                        tokio::select! {
                            _ = &mut shutdown => { stopping = true; break; }
                            _ = tokio::time::sleep(backoff) => {}
                        }
                        backoff = (backoff * 2).min(Duration::from_secs(2));
                    }
                }
            }
            if stopping {
                break;
            }
        }
    }
    if since_checkpoint > 0 {
        checkpointer.sign(&mut ledger).await?;
    }
    // The snapshot being written, if any, is finished before serve returns (the
    // caller may close the store).
    tokio::task::block_in_place(|| checkpointer.snapshots.finish());
    metrics.set_ready(false);
    // Receipts and alerts are best effort, but a failure to send the last of them
    // is worth a line in the log.
    if let Err(e) = crate::nats::round_trip(&client).await {
        tracing::warn!(error = %e, "cannot confirm that the server has the last receipts and alerts");
    }
    Ok(ledger)
}

/// An ordered consumer from stream sequence `start`.
async fn open_messages(
    stream: &jetstream::stream::Stream,
    name: &str,
    start: u64,
) -> Result<consumer::pull::Ordered, NatsError> {
    let err = |what: &str, e: &dyn std::fmt::Display| NatsError::Stream {
        stream: name.to_string(),
        message: format!("{what}: {e}"),
    };
    let consumer = stream
        .create_consumer(consumer::pull::OrderedConfig {
            deliver_policy: consumer::DeliverPolicy::ByStartSequence {
                start_sequence: start,
            },
            ..Default::default()
        })
        .await
        .map_err(|e| err("cannot create the ordered consumer", &e))?;
    consumer
        .messages()
        .await
        .map_err(|e| err("cannot consume", &e))
}

/// What signing a checkpoint needs besides the ledger.
struct Checkpointer<'a> {
    client: &'a async_nats::Client,
    signer: &'a NoteSigner,
    admission: &'a SharedAdmission,
    metrics: &'a Metrics,
    policy: SnapshotPolicy,
    /// Writes snapshots beside the consumer.
    snapshots: snapshots::Background,
}

impl Checkpointer<'_> {
    /// Signs a checkpoint with the state digest, writes a snapshot if one is due,
    /// and publishes the checkpoint on `gov.checkpoints`.
    async fn sign<S: LogStore + 'static>(
        &mut self,
        ledger: &mut Ledger<S>,
    ) -> Result<(), ServeError> {
        let cp = tokio::task::block_in_place(|| {
            // The digest updates its caches (a write lock, held for as long as the
            // changes since the last checkpoint take to hash); a snapshot's parts
            // are encoded under the read lock, then framed, hashed and stored on a
            // thread of their own while the consumer goes on.
            let digest = self
                .admission
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .state_digest();
            let adm = self.admission.read().unwrap_or_else(|e| e.into_inner());
            let cp = ledger.checkpoint(self.signer, Some(digest))?;
            // One snapshot at a time: while one is written, the next is not due
            // (it is, at a later checkpoint, if that one fails).
            if !self.snapshots.busy() {
                match snapshots::due(ledger, &adm, &cp.checkpoint, self.policy) {
                    Ok(Some(due)) => {
                        drop(adm);
                        self.snapshots.start(due, ledger.snapshot_store());
                    }
                    Ok(None) => {}
                    Err(e) => tracing::warn!(error = %e, "cannot write a snapshot"),
                }
            }
            Ok::<_, LedgerError>(cp)
        })?;
        self.metrics.set_checkpoint(cp.checkpoint.size);
        if let Err(e) = self
            .client
            .publish("gov.checkpoints", cp.note.clone().into_bytes().into())
            .await
        {
            tracing::warn!(error = %e, "cannot publish checkpoint");
        }
        Ok(())
    }
}

/// After the batch is durable: its budget warnings and detections on
/// `gov.alerts.<tenant>` ([`crate::alerts::raised`]).
async fn publish_alerts(client: &async_nats::Client, alerts: Vec<(String, serde_json::Value)>) {
    for (tenant, alert) in alerts {
        let _ = client
            .publish(
                format!("gov.alerts.{tenant}"),
                alert.to_string().into_bytes().into(),
            )
            .await;
    }
}

/// After the batch is durable: a receipt per entry on `gov.receipts.<tenant>` (and
/// to the producer's `Gov-Reply` subject), an alert per rejection on
/// `gov.alerts.<tenant>`. Publishing is best effort: the ledger is the record.
async fn publish_outcomes(
    client: &async_nats::Client,
    metrics: &Metrics,
    batch: &[Pending],
    entries: &[Entry],
    appended: &[Appended],
) {
    for ((p, e), a) in batch.iter().zip(entries).zip(appended) {
        let tenant = e
            .tenant()
            .map(str::to_string)
            .unwrap_or_else(|| subject_tenant(&p.msg.subject).to_string());
        let (verdict, reason, detail) = match &e.verdict {
            Verdict::Accepted { .. } => ("accepted", None, None),
            Verdict::Rejected { reason, detail, .. } => {
                ("rejected", Some(reason.as_str()), Some(detail.as_str()))
            }
        };
        let receipt = json!({
            "event_id": e.event_id(),
            "seq": a.seq.0,
            "leaf_hash": B64.encode(a.leaf_hash),
            "verdict": verdict,
            "reason": reason,
        });
        let body: Vec<u8> = receipt.to_string().into_bytes();
        // Timed as it is handed over, so whoever sees the receipt sees it counted.
        metrics.record_stage(Stage::Receipt, p.received.elapsed());
        if let Err(e) = client
            .publish(format!("gov.receipts.{tenant}"), body.clone().into())
            .await
        {
            tracing::warn!(error = %e, seq = a.seq.0, "cannot publish a receipt");
        }
        if let Some(reply) = &p.reply {
            let _ = client.publish(reply.clone(), body.into()).await;
        }
        if let (Some(reason), Some(detail)) = (reason, detail) {
            let alert = json!({
                "kind": "rejected",
                "seq": a.seq.0,
                "event_id": e.event_id(),
                "tenant": tenant,
                "subject": p.msg.subject,
                "reason": reason,
                "detail": detail,
            });
            let _ = client
                .publish(
                    format!("gov.alerts.{tenant}"),
                    alert.to_string().into_bytes().into(),
                )
                .await;
        }
    }
}
