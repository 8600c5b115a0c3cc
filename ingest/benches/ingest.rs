//! Ingest benchmark: end to end on one machine (publisher, nats-server and `serve`
//! in one process tree), beside baselines measured in the same run.
//!
//! Prints, for the same N generated, signed events:
//! - raw Ed25519 `verify_strict` on one thread, and admission (`admit_batch`:
//!   schema, keys, signatures on every core) without NATS or RocksDB;
//! - raw JetStream: publish with acks, then consume with an ordered consumer and with
//!   a durable pull consumer acking each message (the measurement behind the choice
//!   of consumer, README "Exactly once, in stream order");
//! - `serve` catching up on a backlog, and sustained (publisher running beside it);
//! - publish-to-receipt latency p50/p99 at a fixed offered load, beside raw
//!   JetStream publish-to-delivery latency at the same load.
//!
//! `cargo bench -p govledger-ingest --bench ingest`. Environment:
//! `GOVLEDGER_BENCH_EVENTS` (default 200,000), `GOVLEDGER_BENCH_RATE` (offered load
//! for the latency runs, default 5,000/s), `GOVLEDGER_BENCH_SECS` (their length,
//! default 6), `GOVLEDGER_BENCH_ONLY=latency` (only the latency runs),
//! `GOVLEDGER_BENCH_PREFILL` (entries admitted into the latency run's ledger
//! before `serve` starts, default 0: a large state makes each snapshot cost
//! what it costs in a long-running `serve`), `GOVLEDGER_BENCH_SNAPSHOT_EVERY`
//! (`serve`'s snapshot spacing in the latency run; default `serve`'s own),
//! `NATS_SERVER_BIN`.

mod support;
use support::env_u64;

use async_nats::jetstream::{self, consumer, stream};
use ed25519_dalek::{Signature, VerifyingKey};
use futures::StreamExt;
use govledger_ingest::devserver::DevServer;
use govledger_ingest::gen::admit_generated;
use govledger_ingest::gen::derive_key;
use govledger_ingest::metrics::{Metrics, Stage};
use govledger_ingest::nats::{NatsConfig, StreamSettings};
use govledger_ingest::publish::{msg_id, publish_lines, PublishOptions};
use govledger_ingest::serve::{self, ServeConfig};
use govledger_ingest::snapshots::SnapshotPolicy;
use govledger_ingest::{Admission, GenOptions, Generator, Line, Message, Trust};
use govledger_ledger::note::NoteSigner;
use govledger_ledger::store::{OpenMode, RocksStore};
use govledger_ledger::Ledger;
use govledger_schemas::{peek_ids, DecodeLimits};
use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn rate(n: u64, took: Duration) -> f64 {
    n as f64 / took.as_secs_f64()
}

fn row(name: &str, per_sec: f64, base: f64) {
    println!(
        "{name:<58} {per_sec:>12.0}/s  {:>6.2}x",
        per_sec / base.max(1e-9)
    );
}

struct Setup {
    lines: Vec<Line>,
    msgs: Vec<Message>,
    trust: Trust,
}

/// The bench's generated stream: `events` events of seed `seed` over 8 tenants.
fn stream_of(events: u64, seed: u64) -> GenOptions {
    GenOptions {
        events,
        seed,
        tenants: 8,
        ..GenOptions::default()
    }
}

fn events(n: u64, seed: u64) -> Setup {
    events_after(0, n, seed)
}

/// The `n` generated events that follow the first `skip` of the stream of `seed`
/// (a stream's first events do not depend on its length), so that a ledger
/// prefilled with those first ones accepts them.
fn events_after(skip: u64, n: u64, seed: u64) -> Setup {
    let gen = Generator::new(stream_of(skip + n, seed));
    let trust = gen.trust();
    let lines: Vec<Line> = gen.skip(skip as usize).collect();
    let msgs = lines
        .iter()
        .map(|l| l.to_message().expect("generated lines have bodies"))
        .collect();
    Setup { lines, msgs, trust }
}

fn fresh_ledger(
    dir: &std::path::Path,
    trust: &Trust,
) -> (Ledger<RocksStore>, Admission, NoteSigner) {
    let store = RocksStore::open(dir, OpenMode::Create).expect("store");
    let ledger = Ledger::create(store, "bench.govledger/ingest").expect("ledger");
    let adm = Admission::new(trust, DecodeLimits::default()).expect("admission");
    let signer = NoteSigner::generate("bench.govledger/ingest").expect("signer");
    (ledger, adm, signer)
}

fn headers(m: &Message) -> async_nats::HeaderMap {
    let mut h = async_nats::HeaderMap::new();
    if let (Some(id), Some(t)) = peek_ids(&m.body, &DecodeLimits::default()) {
        h.insert(
            async_nats::header::NATS_MESSAGE_ID,
            msg_id(t.as_str(), id.as_str()).as_str(),
        );
    }
    h.insert("Gov-Key", m.key_id.clone().unwrap_or_default().as_str());
    h.insert("Gov-Sig", m.signature.clone().unwrap_or_default().as_str());
    h
}

/// The key (derived once per key id, kept in `keys`) and the decoded signature of
/// a generated message.
fn key_and_sig(
    keys: &mut HashMap<String, VerifyingKey>,
    m: &Message,
) -> Option<(VerifyingKey, Signature)> {
    let kid = m.key_id.as_ref()?;
    let vk = *keys
        .entry(kid.clone())
        .or_insert_with(|| derive_key(1, kid).verifying_key());
    let sig = base64::Engine::decode(
        &base64::engine::general_purpose::STANDARD,
        m.signature.as_deref().unwrap_or_default(),
    )
    .ok()?;
    Some((vk, Signature::from_slice(&sig).ok()?))
}

/// Verifies every message's signature with `verify_strict`; returns how many verify.
fn raw_verify_all(msgs: &[Message]) -> u64 {
    let mut keys: HashMap<String, VerifyingKey> = HashMap::new();
    let mut ok = 0u64;
    for m in msgs {
        if let Some((vk, sig)) = key_and_sig(&mut keys, m) {
            ok += u64::from(vk.verify_strict(&m.body, &sig).is_ok());
        }
    }
    ok
}

/// Verifies every message's signature with `verify_batch`, `per` at a time (a
/// failed batch is not retried: the generated signatures are all valid). With
/// `strict`, also the per-signature checks that keep a batch from accepting what
/// `verify_strict` refuses: R decompresses to a point that is not of small order,
/// is in the prime-order subgroup (no torsion component, which a batch equation
/// may cancel out) and is canonically encoded. (The key's own checks can be made
/// once per key, at registration, and are not timed.) Returns how many verify.
fn batch_verify_all(msgs: &[Message], per: usize, strict: bool) -> u64 {
    use curve25519_dalek::edwards::CompressedEdwardsY;
    let mut keys: HashMap<String, VerifyingKey> = HashMap::new();
    let mut ok = 0u64;
    for chunk in msgs.chunks(per) {
        let (mut bodies, mut sigs, mut vks) = (Vec::new(), Vec::new(), Vec::new());
        for m in chunk {
            let Some((vk, sig)) = key_and_sig(&mut keys, m) else {
                continue;
            };
            if strict {
                let r = CompressedEdwardsY(*sig.r_bytes());
                let good = r.decompress().is_some_and(|p| {
                    !p.is_small_order() && p.is_torsion_free() && p.compress() == r
                });
                if !good {
                    continue;
                }
            }
            bodies.push(m.body.as_slice());
            sigs.push(sig);
            vks.push(vk);
        }
        if ed25519_dalek::verify_batch(&bodies, &sigs, &vks).is_ok() {
            ok += sigs.len() as u64;
        }
    }
    ok
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn main() {
    govledger_ingest::no_huge_pages();
    let n = env_u64("GOVLEDGER_BENCH_EVENTS", 200_000);
    let load = env_u64("GOVLEDGER_BENCH_RATE", 5_000);
    let secs = env_u64("GOVLEDGER_BENCH_SECS", 6);
    let prefill = env_u64("GOVLEDGER_BENCH_PREFILL", 0);
    let snapshot_every = env_u64(
        "GOVLEDGER_BENCH_SNAPSHOT_EVERY",
        SnapshotPolicy::default().every,
    );
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut nats = DevServer::start(&tmp.path().join("nats")).unwrap_or_else(|e| panic!("{e}"));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    println!(
        "ingest bench: {n} events, {} cores, nats-server {}",
        std::thread::available_parallelism().map_or(1, |p| p.get()),
        govledger_ingest::devserver::binary_version()
            .map(|v| format!("{}.{}.{}", v.0, v.1, v.2))
            .unwrap_or_default()
    );
    // serve settings, shared by the throughput and latency runs
    let nats_cfg = NatsConfig {
        url: nats.url(),
        ..NatsConfig::default()
    };
    let stream = StreamSettings::default();
    let cfg = |stop: Option<u64>| ServeConfig {
        nats: nats_cfg.clone(),
        stream: stream.clone(),
        stop_at_size: stop,
        ..ServeConfig::default()
    };
    if std::env::var("GOVLEDGER_BENCH_ONLY").as_deref() != Ok("latency") {
        let setup = events(n, 1);

        // ---- CPU baselines ----
        let t = Instant::now();
        let ok = raw_verify_all(&setup.msgs);
        let raw_verify = rate(n, t.elapsed());
        assert_eq!(ok, n, "every generated signature verifies");
        println!("\n-- CPU (no NATS, no RocksDB) --");
        row(
            "raw Ed25519 verify_strict, 1 thread [baseline]",
            raw_verify,
            raw_verify,
        );
        let t = Instant::now();
        let halves = setup.msgs.split_at(setup.msgs.len() / 2);
        let ok2 = std::thread::scope(|sc| {
            let other = sc.spawn(|| raw_verify_all(halves.1));
            raw_verify_all(halves.0) + other.join().expect("verify thread")
        });
        assert_eq!(ok2, n);
        row(
            "raw Ed25519 verify_strict, 2 threads (the machine's ceiling)",
            rate(n, t.elapsed()),
            raw_verify,
        );
        // Batch verification: faster, but it accepts what verify_strict refuses
        // unless each R is also checked (the second row), see docs/BENCHMARKS.md.
        for (label, strict) in [
            ("Ed25519 verify_batch (64 a batch), 1 thread", false),
            (
                "verify_batch + the per-signature checks strictness needs, 1 thread",
                true,
            ),
        ] {
            let t = Instant::now();
            let ok = batch_verify_all(&setup.msgs, 64, strict);
            assert_eq!(ok, n, "every generated signature verifies in a batch");
            row(label, rate(n, t.elapsed()), raw_verify);
        }
        let mut adm = Admission::new(&setup.trust, DecodeLimits::default()).expect("admission");
        let t = Instant::now();
        let refs: Vec<&Message> = setup.msgs.iter().collect();
        for chunk in refs.chunks(1024) {
            let never = |_: &str, _: &str| Ok::<bool, Infallible>(false);
            let _ = adm.admit_batch(chunk, &never);
            adm.end_batch();
        }
        row(
            "admission (decode, keys, verify on all cores), batch 1024",
            rate(n, t.elapsed()),
            raw_verify,
        );

        // ---- raw JetStream ----
        let (raw_pub, raw_ordered, raw_durable) = rt.block_on(async {
            let client = async_nats::connect(nats.url()).await.expect("connect");
            let js = jetstream::new(client.clone());
            let st = js
                .create_stream(stream::Config {
                    name: "RAW".into(),
                    subjects: vec!["raw.>".into()],
                    storage: stream::StorageType::File,
                    ..Default::default()
                })
                .await
                .expect("raw stream");
            let t = Instant::now();
            let mut acks = VecDeque::new();
            for m in &setup.msgs {
                let subject = format!("raw.{}", m.subject);
                acks.push_back(
                    js.publish_with_headers(subject, headers(m), m.body.clone().into())
                        .await
                        .expect("publish"),
                );
                if acks.len() >= 256 {
                    acks.pop_front().expect("ack").await.expect("acked");
                }
            }
            for a in acks {
                a.await.expect("acked");
            }
            let raw_pub = rate(n, t.elapsed());

            let t = Instant::now();
            let c = st
                .create_consumer(consumer::pull::OrderedConfig::default())
                .await
                .expect("ordered consumer");
            let mut msgs = c.messages().await.expect("messages");
            for _ in 0..n {
                msgs.next().await.expect("message").expect("ok");
            }
            let raw_ordered = rate(n, t.elapsed());
            drop(msgs);

            let t = Instant::now();
            let c = st
                .create_consumer(consumer::pull::Config {
                    durable_name: Some("bench".into()),
                    ack_policy: consumer::AckPolicy::Explicit,
                    ..Default::default()
                })
                .await
                .expect("durable consumer");
            let mut msgs = c.messages().await.expect("messages");
            for _ in 0..n {
                let m = msgs.next().await.expect("message").expect("ok");
                m.ack().await.expect("ack");
            }
            let raw_durable = rate(n, t.elapsed());
            js.delete_stream("RAW").await.expect("delete");
            (raw_pub, raw_ordered, raw_durable)
        });
        println!("\n-- raw JetStream, same bytes and headers --");
        row(
            "publish with acks (256 in flight) [baseline]",
            raw_pub,
            raw_pub,
        );
        row("consume: ordered consumer", raw_ordered, raw_pub);
        row(
            "consume: durable pull consumer, ack each",
            raw_durable,
            raw_pub,
        );

        // ---- serve ----
        let (publish_rate, catch_up, sustained) = rt.block_on(async {
            let client = async_nats::connect(nats.url()).await.expect("connect");
            let t = Instant::now();
            publish_all(&client, &stream, &setup.lines).await;
            let publish_rate = rate(n, t.elapsed());

            let (ledger, adm, signer) = fresh_ledger(&tmp.path().join("catchup"), &setup.trust);
            let t = Instant::now();
            let ledger = serve::run(
                cfg(Some(n)),
                ledger,
                serve::shared(adm),
                signer,
                Arc::new(Metrics::new()),
                std::future::pending(),
            )
            .await
            .expect("serve");
            assert_eq!(ledger.size(), n);
            let catch_up = rate(n, t.elapsed());
            drop(ledger);
            jetstream::new(client.clone())
                .delete_stream("GOV")
                .await
                .expect("delete");

            // Sustained: the publisher runs beside serve; time until serve holds all.
            let (ledger, adm, signer) = fresh_ledger(&tmp.path().join("sustained"), &setup.trust);
            govledger_ingest::nats::ensure_stream(&jetstream::new(client.clone()), &stream)
                .await
                .expect("stream");
            let t = Instant::now();
            let serving = tokio::spawn(serve::run(
                cfg(Some(n)),
                ledger,
                serve::shared(adm),
                signer,
                Arc::new(Metrics::new()),
                std::future::pending(),
            ));
            publish_all(&client, &stream, &setup.lines).await;
            let ledger = serving.await.expect("join").expect("serve");
            assert_eq!(ledger.size(), n);
            let sustained = rate(n, t.elapsed());
            jetstream::new(client.clone())
                .delete_stream("GOV")
                .await
                .expect("delete");
            (publish_rate, catch_up, sustained)
        });
        println!("\n-- govledger, signed events (ratios to raw JetStream publish) --");
        row("govledger publish (with acks)", publish_rate, raw_pub);
        row(
            "serve: catch up on a backlog (verify, append, fsync, receipts)",
            catch_up,
            raw_pub,
        );
        row(
            "serve: sustained, publisher running beside it",
            sustained,
            raw_pub,
        );
    }
    // ---- latency at a fixed offered load ----
    let m = load * secs;
    // After a prefill, the events that continue its stream: accepted, and
    // folded into the large state.
    let lat = events_after(prefill, m, 2);
    let serve_metrics = Arc::new(Metrics::new());
    let (raw_lat, gov_lat) = rt.block_on(async {
        let client = async_nats::connect(nats.url()).await.expect("connect");
        let js = jetstream::new(client.clone());

        // Raw: publish at the load, an ordered consumer receives.
        let st = js
            .create_stream(stream::Config {
                name: "RAW".into(),
                subjects: vec!["raw.>".into()],
                ..Default::default()
            })
            .await
            .expect("raw stream");
        let sent: Arc<Mutex<HashMap<u64, Instant>>> = Arc::default();
        let c = st
            .create_consumer(consumer::pull::OrderedConfig::default())
            .await
            .expect("consumer");
        let mut msgs = c.messages().await.expect("messages");
        let seen = sent.clone();
        let receiver = tokio::spawn(async move {
            let mut l = Vec::with_capacity(m as usize);
            while (l.len() as u64) < m {
                let msg = msgs.next().await.expect("message").expect("ok");
                let i: u64 = msg
                    .headers
                    .as_ref()
                    .and_then(|h| h.get("Bench-I"))
                    .and_then(|v| v.as_str().parse().ok())
                    .expect("index header");
                let at = seen.lock().expect("lock").get(&i).copied();
                if let Some(at) = at {
                    l.push(at.elapsed());
                }
            }
            l
        });
        offer(&js, &lat.msgs, load, &sent, "raw.").await;
        let mut raw_lat = receiver.await.expect("join");
        js.delete_stream("RAW").await.expect("delete");

        // govledger: publish at the load to GOV, serve running, time to receipt;
        // optionally over a ledger that already holds a large state.
        let (mut ledger, mut adm, signer) = fresh_ledger(&tmp.path().join("latency"), &lat.trust);
        if prefill > 0 {
            let t = Instant::now();
            let opts = stream_of(prefill, 2);
            adm = admit_generated(&mut ledger, opts, 1_024, &mut |_, _| {}).expect("prefill");
            println!(
                "prefilled the latency run's ledger with {prefill} entries in {:.1} s",
                t.elapsed().as_secs_f64()
            );
        }
        govledger_ingest::nats::ensure_stream(&js, &stream)
            .await
            .expect("stream");
        let mut receipts = client.subscribe("gov.receipts.>").await.expect("sub");
        client.flush().await.expect("flush");
        let serving = tokio::spawn(serve::run(
            ServeConfig {
                batch_wait: Duration::ZERO,
                snapshots: SnapshotPolicy {
                    every: snapshot_every,
                    ..SnapshotPolicy::default()
                },
                ..cfg(Some(prefill + m))
            },
            ledger,
            serve::shared(adm),
            signer,
            serve_metrics.clone(),
            std::future::pending(),
        ));
        let sent: Arc<Mutex<HashMap<u64, Instant>>> = Arc::default();
        let seen = sent.clone();
        let receiver = tokio::spawn(async move {
            let mut l = Vec::with_capacity(m as usize);
            let mut accepted = 0u64;
            while (l.len() as u64) < m {
                let r = receipts.next().await.expect("receipt");
                let v: serde_json::Value = serde_json::from_slice(&r.payload).expect("json");
                // Offered message i becomes entry prefill + i.
                let seq = v["seq"].as_u64().expect("seq").wrapping_sub(prefill);
                let at = seen.lock().expect("lock").get(&seq).copied();
                if let Some(at) = at {
                    l.push(at.elapsed());
                    accepted += u64::from(v["verdict"] == "accepted");
                }
            }
            (l, accepted)
        });
        // Offered once serve is consuming: its start over a large state (the
        // state digest's caches filled over every entry) is not a latency.
        while !serve_metrics.ready() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        offer(&js, &lat.msgs, load, &sent, "").await;
        let (mut gov_lat, accepted) = receiver.await.expect("join");
        println!("govledger receipts: {accepted} of {m} accepted");
        serving.await.expect("join").expect("serve");
        raw_lat.sort();
        gov_lat.sort();
        (raw_lat, gov_lat)
    });
    println!("\n-- latency at {load} events/s for {secs} s --");
    for (name, l) in [
        (
            "raw JetStream publish -> ordered consumer [baseline]",
            &raw_lat,
        ),
        ("govledger publish -> receipt (verified, fsynced)", &gov_lat),
    ] {
        println!(
            "{name:<58} p50 {:>7.2} ms  p99 {:>7.2} ms  p99.9 {:>7.2} ms  max {:>7.2} ms",
            percentile(l, 0.50).as_secs_f64() * 1e3,
            percentile(l, 0.99).as_secs_f64() * 1e3,
            percentile(l, 0.999).as_secs_f64() * 1e3,
            percentile(l, 1.0).as_secs_f64() * 1e3
        );
    }
    // Where govledger's time goes, from serve's own histograms (/metrics): each
    // figure is the upper bound of the bucket the percentile falls in.
    println!("serve's stages in the same run (histogram bucket bounds):");
    for (name, stage) in [
        (
            "  JetStream timestamp -> serve receives it",
            Stage::Delivery,
        ),
        ("  batch: admission and fsynced append", Stage::Batch),
        ("  serve receives it -> receipt published", Stage::Receipt),
    ] {
        let ms = |q| {
            serve_metrics
                .quantile(stage, q)
                .map_or("> 5000".to_string(), |d| {
                    format!("{:.1}", d.as_secs_f64() * 1e3)
                })
        };
        println!(
            "{name:<58} p50 <= {:>6} ms  p99 <= {:>6} ms",
            ms(0.5),
            ms(0.99)
        );
    }
    nats.kill();
}

/// Publishes all `lines` with `govledger publish`'s code, as fast as acks allow.
async fn publish_all(client: &async_nats::Client, stream: &StreamSettings, lines: &[Line]) {
    let lines = lines.iter().cloned().map(Ok);
    publish_lines(
        client,
        stream,
        lines,
        &PublishOptions::default(),
        &mut |_| {},
    )
    .await
    .expect("publish");
}

/// Publishes `msgs` at `load` per second, recording each send time under its index
/// (which is also its ledger seq: one stream, one ledger, in order).
async fn offer(
    js: &jetstream::Context,
    msgs: &[Message],
    load: u64,
    sent: &Arc<Mutex<HashMap<u64, Instant>>>,
    prefix: &str,
) {
    let start = Instant::now();
    let mut acks = VecDeque::new();
    for (i, m) in msgs.iter().enumerate() {
        let due = start + Duration::from_secs_f64(i as f64 / load as f64);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            tokio::time::sleep(wait).await;
        }
        let mut h = headers(m);
        h.insert("Bench-I", i.to_string().as_str());
        sent.lock().expect("lock").insert(i as u64, Instant::now());
        acks.push_back(
            js.publish_with_headers(format!("{prefix}{}", m.subject), h, m.body.clone().into())
                .await
                .expect("publish"),
        );
        while acks.len() > 256 {
            acks.pop_front().expect("ack").await.expect("acked");
        }
    }
    for a in acks {
        a.await.expect("acked");
    }
}
