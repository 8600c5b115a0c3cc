//! Counters for `/metrics` (Prometheus text format) and `/healthz`.
//!
//! Plain atomics, written by the consumer loop and read by the HTTP handler; no
//! locks on the hot path.

use govledger_schemas::{Entry, RejectReason, Verdict};
use std::fmt::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Upper bounds (seconds) of the latency histograms' buckets.
const LATENCY_BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0,
];

/// A Prometheus histogram of durations over [`LATENCY_BUCKETS`], in atomics.
#[derive(Debug, Default)]
struct Histogram {
    count: AtomicU64,
    micros_sum: AtomicU64,
    /// Per bucket, not cumulative: bucket `i` counts the observations above
    /// `LATENCY_BUCKETS[i - 1]` and at most `LATENCY_BUCKETS[i]`, so an observation
    /// costs one increment on the ingest loop; readers add them up.
    buckets: [AtomicU64; LATENCY_BUCKETS.len()],
}

impl Histogram {
    fn observe(&self, took: Duration) {
        self.count.fetch_add(1, Relaxed);
        self.micros_sum.fetch_add(took.as_micros() as u64, Relaxed);
        let secs = took.as_secs_f64();
        if let Some(i) = LATENCY_BUCKETS.iter().position(|&bound| secs <= bound) {
            self.buckets[i].fetch_add(1, Relaxed);
        }
    }

    /// Each bucket's bound with the number of observations at most that bound
    /// (Prometheus's cumulative buckets).
    fn cumulative(&self) -> impl Iterator<Item = (f64, u64)> + '_ {
        self.buckets
            .iter()
            .zip(LATENCY_BUCKETS)
            .scan(0, |total, (b, bound)| {
                *total += b.load(Relaxed);
                Some((bound, *total))
            })
    }

    /// The upper bound of the bucket that holds the `q`-quantile (`0 < q ≤ 1`),
    /// `None` with no observations or when it lies above the last bound.
    fn quantile(&self, q: f64) -> Option<Duration> {
        let count = self.count.load(Relaxed);
        if count == 0 {
            return None;
        }
        let rank = (q * count as f64).ceil().max(1.0) as u64;
        self.cumulative()
            .find(|&(_, n)| n >= rank)
            .map(|(bound, _)| Duration::from_secs_f64(bound))
    }

    fn render(&self, s: &mut String, name: &str, help: &str) {
        let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} histogram");
        for (bound, n) in self.cumulative() {
            let _ = writeln!(s, "{name}_bucket{{le=\"{bound}\"}} {n}");
        }
        let count = self.count.load(Relaxed);
        let _ = writeln!(s, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let sum = self.micros_sum.load(Relaxed) as f64 / 1e6;
        let _ = writeln!(s, "{name}_sum {sum}\n{name}_count {count}");
    }
}

/// A stage of a message's way through `serve`, timed per message or batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// From the JetStream timestamp (the server stored the message) to `serve`
    /// receiving it from its consumer, per message. Read against this host's
    /// clock: skew between the server's host and this one is part of it.
    Delivery,
    /// Admission and durable append, per batch.
    Batch,
    /// From `serve` receiving a message to handing its receipt to the NATS client,
    /// per message: waiting for its batch, the batch, and publishing.
    Receipt,
}

/// The serve loop's counters.
#[derive(Debug, Default)]
pub struct Metrics {
    ready: AtomicBool,
    /// Whether the NATS connection is down (so that `Default` starts it up).
    disconnected: AtomicBool,
    consumed: AtomicU64,
    accepted: AtomicU64,
    rejected: [AtomicU64; RejectReason::ALL.len()],
    batches: AtomicU64,
    last_batch_size: AtomicU64,
    batch_seconds: Histogram,
    delivery_seconds: Histogram,
    receipt_seconds: Histogram,
    lag: AtomicU64,
    checkpoint_size: AtomicU64,
    alerts: [AtomicU64; ALERT_KINDS.len()],
    sinks: std::sync::Mutex<Vec<(String, std::sync::Arc<SinkMetrics>)>>,
}

/// The figures of one export sink running inside `serve`, shown on /metrics with
/// the label `sink="<name>"`.
#[derive(Debug, Default)]
pub struct SinkMetrics {
    /// Records exported since serve started.
    pub exported: AtomicU64,
    /// The next seq the sink will export.
    pub next_seq: AtomicU64,
    /// Whether the sink is running (false once it stopped on an error).
    pub up: AtomicBool,
}

/// The kinds of alert `serve` publishes, in the order of `govledger_alerts_total`;
/// `rejected` (first) is counted by [`Metrics::record_batch`].
pub const ALERT_KINDS: [&str; 3] = ["rejected", "budget_warning", "detection"];

impl Metrics {
    /// All zero, not ready.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the consumer is bound and running.
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Relaxed);
    }

    /// True while the consumer runs and the NATS connection is up.
    pub fn ready(&self) -> bool {
        self.ready.load(Relaxed) && self.connected()
    }

    /// Whether the NATS connection is up, as its last connection event said.
    pub fn set_connected(&self, up: bool) {
        self.disconnected.store(!up, Relaxed);
    }

    /// True unless the NATS connection was last seen down.
    pub fn connected(&self) -> bool {
        !self.disconnected.load(Relaxed)
    }

    /// Messages the server says are still pending for the consumer.
    pub fn set_lag(&self, pending: u64) {
        self.lag.store(pending, Relaxed);
    }

    /// Messages pending for the consumer, as last reported.
    pub fn lag(&self) -> u64 {
        self.lag.load(Relaxed)
    }

    /// Size of the newest signed checkpoint.
    pub fn set_checkpoint(&self, size: u64) {
        self.checkpoint_size.store(size, Relaxed);
    }

    /// Records one appended batch.
    pub fn record_batch(&self, entries: &[Entry], took: Duration) {
        self.batches.fetch_add(1, Relaxed);
        self.last_batch_size.store(entries.len() as u64, Relaxed);
        self.consumed.fetch_add(entries.len() as u64, Relaxed);
        for e in entries {
            match &e.verdict {
                Verdict::Accepted { .. } => {
                    self.accepted.fetch_add(1, Relaxed);
                }
                Verdict::Rejected { reason, .. } => {
                    self.rejected[reason.code() as usize].fetch_add(1, Relaxed);
                    // Every rejection is also published as an alert.
                    self.alerts[0].fetch_add(1, Relaxed);
                }
            }
        }
        self.batch_seconds.observe(took);
    }

    /// Records how long one message took in `stage` ([`Stage::Delivery`] or
    /// [`Stage::Receipt`]; batches are recorded by [`Metrics::record_batch`]).
    pub fn record_stage(&self, stage: Stage, took: Duration) {
        self.histogram(stage).observe(took);
    }

    /// The upper bound of the histogram bucket that holds the `q`-quantile of
    /// `stage` (`0 < q ≤ 1`; 0.99 for p99): `None` before any observation or when
    /// it lies above the last bucket (5 s).
    pub fn quantile(&self, stage: Stage, q: f64) -> Option<Duration> {
        self.histogram(stage).quantile(q)
    }

    fn histogram(&self, stage: Stage) -> &Histogram {
        match stage {
            Stage::Delivery => &self.delivery_seconds,
            Stage::Batch => &self.batch_seconds,
            Stage::Receipt => &self.receipt_seconds,
        }
    }

    /// Entries consumed so far (accepted + rejected).
    pub fn consumed(&self) -> u64 {
        self.consumed.load(Relaxed)
    }

    /// Counts `n` alerts of `kind` (one of [`ALERT_KINDS`]; others are ignored).
    pub fn record_alerts(&self, kind: &str, n: u64) {
        if let Some(i) = ALERT_KINDS.iter().position(|k| *k == kind) {
            self.alerts[i].fetch_add(n, Relaxed);
        }
    }

    /// Entries accepted so far.
    pub fn accepted(&self) -> u64 {
        self.accepted.load(Relaxed)
    }

    /// Entries rejected so far, by reason (reasons with none left out).
    pub fn rejected(&self) -> Vec<(RejectReason, u64)> {
        RejectReason::ALL
            .iter()
            .map(|r| (*r, self.rejected[r.code() as usize].load(Relaxed)))
            .filter(|(_, n)| *n > 0)
            .collect()
    }

    /// Size of the newest checkpoint signed while serving (0: none yet).
    pub fn checkpoint_size(&self) -> u64 {
        self.checkpoint_size.load(Relaxed)
    }

    /// Registers export sink `name` (shown in registration order) and returns the
    /// figures its exporter keeps up to date.
    pub fn add_sink(&self, name: &str) -> std::sync::Arc<SinkMetrics> {
        let m = std::sync::Arc::new(SinkMetrics::default());
        m.up.store(true, Relaxed);
        if let Ok(mut sinks) = self.sinks.lock() {
            sinks.push((name.to_owned(), m.clone()));
        }
        m
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let mut counter = |name: &str, help: &str, v: u64| {
            let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}");
        };
        counter(
            "govledger_consumed_total",
            "Messages turned into entries.",
            self.consumed.load(Relaxed),
        );
        counter(
            "govledger_accepted_total",
            "Entries accepted.",
            self.accepted.load(Relaxed),
        );
        counter(
            "govledger_batches_total",
            "Batches appended.",
            self.batches.load(Relaxed),
        );
        let _ = writeln!(
            s,
            "# HELP govledger_rejected_total Entries rejected, by reason.\n# TYPE govledger_rejected_total counter"
        );
        for r in RejectReason::ALL {
            let _ = writeln!(
                s,
                "govledger_rejected_total{{reason=\"{}\"}} {}",
                r.as_str(),
                self.rejected[r.code() as usize].load(Relaxed)
            );
        }
        let _ = writeln!(
            s,
            "# HELP govledger_batch_size Entries in the last batch.\n# TYPE govledger_batch_size gauge\ngovledger_batch_size {}",
            self.last_batch_size.load(Relaxed)
        );
        self.batch_seconds.render(
            &mut s,
            "govledger_batch_seconds",
            "Admission and durable append time per batch.",
        );
        self.delivery_seconds.render(
            &mut s,
            "govledger_delivery_seconds",
            "Per message, from its JetStream timestamp to serve receiving it (includes clock skew between the server's host and serve's).",
        );
        self.receipt_seconds.render(
            &mut s,
            "govledger_receipt_seconds",
            "Per message, from serve receiving it to its receipt being published: its batch's wait, admission and durable append, and publishing.",
        );
        let _ = writeln!(
            s,
            "# HELP govledger_consumer_lag Messages pending for the consumer.\n# TYPE govledger_consumer_lag gauge\ngovledger_consumer_lag {}",
            self.lag.load(Relaxed)
        );
        let _ = writeln!(
            s,
            "# HELP govledger_alerts_total Alerts published, by kind.\n# TYPE govledger_alerts_total counter"
        );
        for (kind, n) in ALERT_KINDS.iter().zip(&self.alerts) {
            let _ = writeln!(
                s,
                "govledger_alerts_total{{kind=\"{kind}\"}} {}",
                n.load(Relaxed)
            );
        }
        let _ = writeln!(
            s,
            "# HELP govledger_nats_connected 1 while the NATS connection is up.\n# TYPE govledger_nats_connected gauge\ngovledger_nats_connected {}",
            u8::from(self.connected())
        );
        let _ = writeln!(
            s,
            "# HELP govledger_checkpoint_size Tree size of the newest signed checkpoint.\n# TYPE govledger_checkpoint_size gauge\ngovledger_checkpoint_size {}",
            self.checkpoint_size.load(Relaxed)
        );
        let sinks = self.sinks.lock().map(|v| v.clone()).unwrap_or_default();
        if !sinks.is_empty() {
            type Read = fn(&SinkMetrics) -> u64;
            let families: [(&str, &str, &str, Read); 3] = [
                (
                    "govledger_export_records_total",
                    "counter",
                    "Records each export sink delivered since serve started.",
                    |m| m.exported.load(Relaxed),
                ),
                (
                    "govledger_export_next_seq",
                    "gauge",
                    "The next entry each export sink will deliver.",
                    |m| m.next_seq.load(Relaxed),
                ),
                (
                    "govledger_export_up",
                    "gauge",
                    "1 while the export sink runs, 0 once it stopped on an error.",
                    |m| u64::from(m.up.load(Relaxed)),
                ),
            ];
            for (name, kind, help, value) in families {
                let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} {kind}");
                for (sink, m) in &sinks {
                    let label = sink.replace('\\', "\\\\").replace('"', "\\\"");
                    let _ = writeln!(s, "{name}{{sink=\"{label}\"}} {}", value(m));
                }
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_the_bounds_of_the_buckets_that_hold_them() {
        let m = Metrics::new();
        assert_eq!(m.quantile(Stage::Receipt, 0.5), None, "no observations yet");
        // 98 fast, 2 slow: p50 in the first bucket, p99 in the slow one's.
        for _ in 0..98 {
            m.record_stage(Stage::Receipt, Duration::from_micros(300));
        }
        for _ in 0..2 {
            m.record_stage(Stage::Receipt, Duration::from_millis(8));
        }
        let ms = |q| m.quantile(Stage::Receipt, q).map(|d| d.as_secs_f64() * 1e3);
        assert_eq!(ms(0.5), Some(0.5));
        assert_eq!(ms(0.9), Some(0.5));
        assert_eq!(ms(0.99), Some(10.0));
        m.record_stage(Stage::Receipt, Duration::from_secs(9));
        assert_eq!(ms(1.0), None, "above the last bucket");
        assert_eq!(m.quantile(Stage::Delivery, 0.5), None, "stages apart");
    }

    #[test]
    fn histograms_render_cumulative_buckets() {
        let m = Metrics::new();
        m.record_stage(Stage::Delivery, Duration::from_micros(700));
        m.record_stage(Stage::Delivery, Duration::from_millis(30));
        let text = m.render();
        for line in [
            "govledger_delivery_seconds_bucket{le=\"0.0005\"} 0",
            "govledger_delivery_seconds_bucket{le=\"0.001\"} 1",
            "govledger_delivery_seconds_bucket{le=\"0.025\"} 1",
            "govledger_delivery_seconds_bucket{le=\"0.05\"} 2",
            "govledger_delivery_seconds_bucket{le=\"+Inf\"} 2",
            "govledger_delivery_seconds_count 2",
            "govledger_receipt_seconds_count 0",
            "govledger_batch_seconds_count 0",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing in\n{text}");
        }
    }
}
