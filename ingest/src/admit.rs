//! Admission: the one validation path every message takes before it becomes an entry.
//!
//! `govledger append` (files) and `govledger serve` (JetStream) both hand each
//! message to [`Admission::admit`], which returns exactly one [`Entry`]: accepted, or
//! rejected with a machine-readable [`RejectReason`] and a sentence for people.
//! It fails closed: anything it cannot verify or validate is rejected, never applied,
//! and no input makes it panic.
//!
//! Checks, in order (the first failure decides the reason):
//! 1. body size within the limit (`oversized`), UTF-8 (`not_utf8`), JSON
//!    (`malformed_json`), version (`unsupported_version`), known type
//!    (`unknown_type`), the type's schema (`schema_violation`);
//! 2. subject: of the form `gov.<tenant>.<kind>` with the type's family as kind
//!    (`schema_violation`), naming the body's tenant (`tenant_mismatch`);
//! 3. `Gov-Key` and `Gov-Sig` present (`missing_header`) and well formed
//!    (`bad_header`);
//! 4. the key: known (`unknown_key`), not revoked or retired at the event time
//!    (`revoked_key`), of the event's tenant (`tenant_mismatch`), an admin or
//!    operator key for key events (`unauthorized_key`);
//! 5. Ed25519 signature over the exact body bytes (`bad_signature`);
//! 6. event id not already accepted for the tenant (`duplicate`);
//! 7. the event is consistent with the state (`invariant_violation`): the key ring;
//!    sessions and kill switches ([`govledger_projections::gates`]); proposals,
//!    decisions, approvals and executions ([`govledger_projections::flows`]).
//!
//! 8. a `budget.incremented` fits every budget that applies to it
//!    (`budget_exceeded`; never counted).
//!
//! A `system` kill switch is engaged or released only with an operator key
//! (`unauthorized_key`): it stops every tenant. Accepted increments that cross a
//! budget's warning threshold leave a [`BudgetWarning`] for [`Admission::take_warnings`].
//!
//! A rejected entry keeps the SHA-256 and length of the body, never the body.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ed25519_dalek::{Signature, VerifyingKey};
use govledger_ledger::checkpoint::StateDigest;
use govledger_ledger::store::{EntryCursor, LogStore, StoreError};
use govledger_ledger::LedgerError;
use govledger_projections::lookup::pair;
use govledger_projections::{
    snapshot, BudgetWarning, Budgets, DetectConfig, Detection, Detector, Flows, Gates, KeyProblem,
    KeyRing, KeyRole, Refusal, Snapshot, SnapshotError, State, DIGEST_VERSION,
};
use govledger_schemas::{
    decode_body, decode_body_into, decode_fold_leaf, decode_fold_leaf_unhashed, peek_ids,
    CodecError, DecodeError, DecodeLimits, Entry, Envelope, Event, KillScope, RejectReason, Seq,
    Verdict,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;

/// A message as it arrives: from JetStream, or a line of a file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Message {
    /// The NATS subject.
    pub subject: String,
    /// The exact body bytes.
    pub body: Vec<u8>,
    /// The `Gov-Key` header.
    pub key_id: Option<String>,
    /// The `Gov-Sig` header (standard base64).
    pub signature: Option<String>,
    /// JetStream stream sequence (0 for file input).
    pub stream_seq: u64,
    /// JetStream timestamp, unix ns: the event time.
    pub time_ns: u64,
}

/// One trusted key in the trust file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustKey {
    /// `<tenant>/<name>` (operator keys: `operator/<name>`).
    pub key_id: String,
    /// Standard base64 of the 32-byte Ed25519 public key.
    pub public_key: String,
}

/// A tenant's entry in the trust file.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantTrust {
    /// Keys that may register, rotate and revoke the tenant's producer keys.
    pub admin_keys: Vec<TrustKey>,
}

/// The trust file given to `init --trust`: the roots of every signature check.
///
/// ```json
/// {"operator": [{"key_id": "operator/root", "public_key": "<base64>"}],
///  "tenants": {"acme": {"admin_keys": [{"key_id": "acme/admin", "public_key": "<base64>"}]}}}
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Trust {
    /// Operator root keys.
    #[serde(default)]
    pub operator: Vec<TrustKey>,
    /// Tenants by id.
    #[serde(default)]
    pub tenants: BTreeMap<String, TenantTrust>,
}

/// A trust file that cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrustError {
    /// Not JSON of the documented shape.
    #[error("trust file is not valid: {0}")]
    Parse(String),
    /// A key entry is wrong.
    #[error("trust file key {key_id:?}: {message}")]
    Key {
        /// The key.
        key_id: String,
        /// What is wrong.
        message: String,
    },
}

impl Trust {
    /// Parses and checks a trust file.
    pub fn from_json(text: &str) -> Result<Trust, TrustError> {
        let t: Trust = serde_json::from_str(text).map_err(|e| TrustError::Parse(e.to_string()))?;
        t.ring()?;
        Ok(t)
    }

    /// The key ring holding these roots.
    pub fn ring(&self) -> Result<KeyRing, TrustError> {
        let mut ring = KeyRing::new();
        let mut add = |k: &TrustKey, tenant: &str, role: KeyRole| -> Result<(), TrustError> {
            let err = |message: String| TrustError::Key {
                key_id: k.key_id.clone(),
                message,
            };
            let id: govledger_schemas::KeyId = k.key_id.parse().map_err(|e| err(format!("{e}")))?;
            if id.tenant_str() != tenant {
                return Err(err(format!("must start with {tenant}/")));
            }
            let pk = public_key(&k.public_key).ok_or_else(|| {
                err("public_key must be the base64 of a 32-byte Ed25519 key".into())
            })?;
            if ring.public_key(&k.key_id).is_some() {
                return Err(err("listed twice".into()));
            }
            ring.add_root(&k.key_id, tenant, pk.to_bytes(), role);
            Ok(())
        };
        for k in &self.operator {
            add(
                k,
                govledger_schemas::KeyId::OPERATOR_TENANT,
                KeyRole::Operator,
            )?;
        }
        for (tenant, t) in &self.tenants {
            govledger_schemas::TenantId::try_from(tenant.clone())
                .map_err(|e| TrustError::Parse(format!("tenant {tenant:?}: {e}")))?;
            for k in &t.admin_keys {
                add(k, tenant, KeyRole::Admin)?;
            }
        }
        Ok(ring)
    }
}

fn public_key(b64: &str) -> Option<VerifyingKey> {
    let raw: [u8; 32] = B64.decode(b64).ok()?.try_into().ok()?;
    VerifyingKey::from_bytes(&raw).ok()
}

/// The admission state: the key ring, the gates and flows, and the event ids of the
/// batch being built.
#[derive(Clone, Debug)]
pub struct Admission {
    state: State,
    warnings: Vec<(String, BudgetWarning)>,
    detector: Detector,
    detections: Vec<(String, Detection)>,
    limits: DecodeLimits,
    batch_ids: BTreeSet<(String, String)>,
    verify_threads: usize,
    entries_folded: u64,
}

/// Work done ahead of admission, in parallel: the decoded body; the signature
/// checked against the key the ring held for its `Gov-Key` when the batch began
/// (that key and whether it verified); and whether the committed ledger already
/// holds the event id. Each is used only where the sequential checks reach it, so
/// the first failing check still decides the reason.
struct Pre<E> {
    decoded: Option<Result<Envelope, DecodeError>>,
    sig: Option<([u8; 32], bool)>,
    seen: Option<Result<bool, E>>,
}

impl<E> Default for Pre<E> {
    fn default() -> Self {
        Pre {
            decoded: None,
            sig: None,
            seen: None,
        }
    }
}

/// Below this many items per thread, work stays on the calling thread.
const PARALLEL_MIN: usize = 32;

/// `f` over `items` in order, on up to `threads` threads (scoped; the calling
/// thread takes the first chunk). A chunk whose thread fails is redone here.
fn par_map<T: Sync, R: Send>(items: &[T], threads: usize, f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = threads.min(items.len() / PARALLEL_MIN).max(1);
    if threads == 1 {
        return items.iter().map(&f).collect();
    }
    let chunk = items.len().div_ceil(threads);
    let f = &f;
    std::thread::scope(|s| {
        let mut parts = items.chunks(chunk);
        let first = parts.next().unwrap_or_default();
        let handles: Vec<_> = parts
            .map(|part| {
                (
                    part,
                    s.spawn(move || part.iter().map(f).collect::<Vec<R>>()),
                )
            })
            .collect();
        let mut out: Vec<R> = first.iter().map(f).collect();
        for (part, h) in handles {
            match h.join() {
                Ok(v) => out.extend(v),
                // Cannot happen (decoding and verification do not panic); if it
                // did, this thread does the chunk itself.
                Err(_) => out.extend(part.iter().map(f)),
            }
        }
        out
    })
}

fn decode_sig(sig: &str) -> Option<Signature> {
    B64.decode(sig.trim())
        .ok()
        .and_then(|s| Signature::from_slice(&s).ok())
}

fn verify_sig(public_key: &[u8; 32], body: &[u8], sig: &Signature) -> bool {
    VerifyingKey::from_bytes(public_key).is_ok_and(|k| k.verify_strict(body, sig).is_ok())
}

fn family(event_type: &str) -> &str {
    event_type.split('.').next().unwrap_or(event_type)
}

impl Admission {
    /// Admission over the trust roots of `trust`.
    pub fn new(trust: &Trust, limits: DecodeLimits) -> Result<Self, TrustError> {
        Ok(Self::at(
            State::new(trust.ring()?),
            Detector::new(DetectConfig::default()),
            0,
            limits,
        ))
    }

    /// Admission standing after `entries_folded` entries with this state.
    fn at(state: State, detector: Detector, entries_folded: u64, limits: DecodeLimits) -> Self {
        Admission {
            state,
            warnings: Vec::new(),
            detector,
            detections: Vec::new(),
            entries_folded,
            limits,
            batch_ids: BTreeSet::new(),
            verify_threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        }
    }

    /// How many threads [`Admission::admit_batch`] decodes and verifies on (default:
    /// the machine's parallelism; at least 1).
    pub fn set_verify_threads(&mut self, n: usize) {
        self.verify_threads = n.max(1);
    }

    /// Decodes each body and checks each signature against the key its `Gov-Key`
    /// names in the ring as it stands, on up to `verify_threads` threads. Pure:
    /// admission later uses a signature result only if the key it settles on is the
    /// same one, so a key registered or rotated inside the batch is still judged in
    /// order.
    fn precheck<E: Send>(
        &self,
        msgs: &[&Message],
        seen: &(dyn Fn(&str, &str) -> Result<bool, E> + Sync),
    ) -> Vec<Pre<E>> {
        let sig = |m: &Message| -> Option<([u8; 32], bool)> {
            if m.body.len() > self.limits.max_body_bytes {
                return None;
            }
            let pk = self.state.ring.public_key(m.key_id.as_deref()?)?;
            let sig = decode_sig(m.signature.as_deref()?)?;
            Some((pk, verify_sig(&pk, &m.body, &sig)))
        };
        let one = |m: &Message| {
            let decoded = decode_body(&m.body, &self.limits);
            let seen = match &decoded {
                Ok(env) => Some(seen(env.tenant.as_str(), env.id.as_str())),
                Err(_) => None,
            };
            Pre {
                decoded: Some(decoded),
                sig: sig(m),
                seen,
            }
        };
        par_map(msgs, self.verify_threads, |m| one(m))
    }

    /// Admits a batch in order, exactly one entry per message, with decoding,
    /// signature checks and the ledger's duplicate lookups spread over threads first. Same verdicts as calling
    /// [`Admission::admit`] on each message in turn.
    pub fn admit_batch<E: Send>(
        &mut self,
        msgs: &[&Message],
        seen: &(dyn Fn(&str, &str) -> Result<bool, E> + Sync),
    ) -> Result<Vec<Entry>, E> {
        let pre = self.precheck(msgs, seen);
        msgs.iter()
            .zip(pre)
            .map(|(m, p)| self.admit_checked(m, p, seen))
            .collect()
    }

    /// Folds an accepted event into every projection admission keeps; returns the
    /// budget warnings and detections it raised.
    fn fold(&mut self, env: &Envelope, time_ns: u64) -> (Vec<BudgetWarning>, Vec<Detection>) {
        let warnings = self.state.apply(env, time_ns);
        (warnings, self.detector.observe(env, time_ns))
    }

    /// Sets the detection rules' thresholds. Call before replaying the log, so the
    /// detector's tracks are rebuilt under the same rules; tracks restored from a
    /// snapshot are kept only if they were built under these same thresholds.
    pub fn set_detect_config(&mut self, config: DetectConfig) {
        if self.detector.config() != config {
            self.detector = Detector::new(config);
        }
    }

    /// The detections raised since the last call, each with the event id of the
    /// accepted event that raised it, in admission order.
    pub fn take_detections(&mut self) -> Vec<(String, Detection)> {
        std::mem::take(&mut self.detections)
    }

    /// The digest of the whole projected state (key ring, gates, flows, budgets),
    /// as checkpoints carry it ([`State::signed_digest`]): version 3
    /// ([`DIGEST_VERSION`]) when the state's ordinals are known (folded from
    /// entry 0, or restored from a snapshot that carries them), else version 2.
    /// Kept up to date per change, so it costs in proportion to what changed
    /// since the last call.
    pub fn state_digest(&mut self) -> StateDigest {
        let (version, hash) = self.state.signed_digest();
        debug_assert!(version <= DIGEST_VERSION);
        StateDigest { version, hash }
    }

    /// The state digest of `version` (1, 2 or 3; `None` for another, or for 3
    /// when the ordinals are not known), to check a checkpoint signed with it.
    /// Version 1 hashes the whole state at every call.
    pub fn state_digest_of(&mut self, version: u32) -> Option<[u8; 32]> {
        self.state.digest_of(version)
    }

    /// State digest version 3 ([`State::digest_v3`]): `None` for a state read
    /// from a version-1 snapshot, which carries no ordinals.
    pub fn state_digest_v3(&mut self) -> Option<[u8; 32]> {
        self.state.digest_v3()
    }

    /// The state and detector as snapshot bytes ([`govledger_projections::snapshot`]),
    /// at the log size [`Admission::entries_folded`].
    pub fn snapshot(&self) -> Vec<u8> {
        snapshot::encode(self.entries_folded, &self.state, &self.detector)
    }

    /// The snapshot's parts, encoded ([`snapshot::Encoded`]): the only step of
    /// writing a snapshot that reads the state.
    pub fn encode_snapshot(&self) -> snapshot::Encoded {
        snapshot::Encoded::new(self.entries_folded, &self.state, &self.detector)
    }

    /// Admission resumed from snapshot bytes: the state and detector in them, as
    /// after their `size` entries. The caller must have checked the snapshot's state
    /// digest against the signed checkpoint at that size, or use
    /// [`crate::snapshots::restore`], which does.
    pub fn from_snapshot(bytes: &[u8], limits: DecodeLimits) -> Result<Self, SnapshotError> {
        Ok(Self::from_decoded(snapshot::decode(bytes)?, limits))
    }

    /// Admission resumed from a decoded snapshot; the same caveat as
    /// [`Admission::from_snapshot`].
    pub fn from_decoded(snapshot: Snapshot, limits: DecodeLimits) -> Self {
        Self::at(snapshot.state, snapshot.detector, snapshot.size, limits)
    }

    /// The whole state as it stands.
    pub fn state(&self) -> &State {
        &self.state
    }

    /// Entries this state has seen: replayed, plus admitted (accepted or not).
    pub fn entries_folded(&self) -> u64 {
        self.entries_folded
    }

    /// Budgets as they stand.
    pub fn budgets(&self) -> &Budgets {
        &self.state.budgets
    }

    /// The budget warnings raised since the last call, each with the event id of the
    /// accepted increment that raised it, in admission order.
    pub fn take_warnings(&mut self) -> Vec<(String, BudgetWarning)> {
        std::mem::take(&mut self.warnings)
    }

    /// Sessions and kill switches as they stand.
    pub fn gates(&self) -> &Gates {
        &self.state.gates
    }

    /// Proposals and approvals as they stand.
    pub fn flows(&self) -> &Flows {
        &self.state.flows
    }

    /// The key ring as it stands.
    pub fn ring(&self) -> &KeyRing {
        &self.state.ring
    }

    /// Folds an entry already in the ledger (rebuilding the ring on open); an
    /// entry that bears on the state and whose body is missing or no longer
    /// decodes is an error, and is not folded ([`CodecError::BodyInvalid`]).
    pub fn replay(&mut self, entry: &Entry) -> Result<(), CodecError> {
        self.replay_entry(entry).map(drop)
    }

    /// [`Admission::replay`], returning the entry's decoded body for a caller that
    /// shows it too (`None` when it keeps none that the fold reads).
    pub fn replay_entry(&mut self, entry: &Entry) -> Result<Option<Envelope>, CodecError> {
        let env = fold_input(entry)?;
        self.replay_as(
            FoldAs::of_verdict(&entry.verdict),
            entry.time_ns,
            env.as_ref(),
        );
        Ok(env)
    }

    /// Folds one stored entry, given what its verdict calls for.
    fn replay_as(&mut self, how: FoldAs, time_ns: u64, env: Option<&Envelope>) {
        self.entries_folded += 1;
        match (how, env) {
            // Alerts were raised when the entry was admitted; not again.
            (FoldAs::Accepted, Some(env)) => {
                let _ = self.fold(env, time_ns);
            }
            (FoldAs::Refused, Some(env)) => {
                let _ = self.state.refuse(env, time_ns);
            }
            _ => {}
        }
    }

    /// Folds the stored leaves `range` into this state (which must stand at
    /// `range.start`), as [`Admission::replay`] does entry by entry, but as a
    /// pipeline over every core: `verify_threads` workers each open their own
    /// [`LeafReader`] with `open` and take rounds of [`PIPELINE_ROUND`] leaves in
    /// turn (worker `w` of `n` the rounds `w`, `w + n`, …), reading each round
    /// straight from the store's buffers and decoding it as it reads (leaf, body
    /// length and hash check, strict body decode; without the hash for the
    /// entries [`Admission::replay_pipelined_covered`] is told a signed digest
    /// covers); this thread folds the decoded rounds in
    /// log order while the next ones are read and decoded. No leaf is copied, and
    /// no thread only reads: the reading is spread over the workers with the
    /// decoding it feeds.
    ///
    /// At most `1 + (1 + 2 × DECODED_AHEAD) × workers` rounds are in flight (one
    /// being folded, and per worker one being decoded, `DECODED_AHEAD` (8) ready
    /// and as many spent ones on their way back to be freed), with at most 8
    /// workers: memory stays bounded whatever the length of `range`. Spent rounds
    /// go back to the worker that built them because the allocator frees a block
    /// on its own thread much more cheaply than on another. A range of one round
    /// or less is read, decoded and folded on this thread, without starting any.
    ///
    /// Stops at the first failure, with every entry before it folded: an `Err` from
    /// a reader is returned as it is, a leaf the reader skipped or did not give as
    /// [`LeafReader::missing`], a leaf that does not decode (or that bears on the
    /// state and whose kept body is not an event) as `codec_error(seq, error)`.
    /// `progress` hears the number of entries folded so far, after each round and
    /// at the end.
    pub fn replay_pipelined<'s, E: Send>(
        &mut self,
        range: Range<u64>,
        open: &(dyn Fn() -> Box<dyn LeafReader<E> + 's> + Sync),
        codec_error: impl Fn(u64, CodecError) -> E + Sync,
        progress: &mut dyn FnMut(u64),
    ) -> Result<(), E> {
        self.replay_pipelined_stopping(range, open, codec_error, progress, &[], &mut |_| Ok(()))
    }

    /// [`Admission::replay_pipelined`], calling `at_stop` with the state each time
    /// [`Admission::entries_folded`] reaches one of `stops` (ascending; those at or
    /// before where it starts are not reached), on the folding thread while the
    /// next rounds are read and decoded: a verified replay checks the state digest
    /// at every checkpoint without draining the pipeline there. An `Err` from
    /// `at_stop` stops the fold like a bad leaf, with every entry up to the stop
    /// folded.
    pub fn replay_pipelined_stopping<'s, E: Send>(
        &mut self,
        range: Range<u64>,
        open: &(dyn Fn() -> Box<dyn LeafReader<E> + 's> + Sync),
        codec_error: impl Fn(u64, CodecError) -> E + Sync,
        progress: &mut dyn FnMut(u64),
        stops: &[u64],
        at_stop: &mut dyn FnMut(&mut Admission) -> Result<(), E>,
    ) -> Result<(), E> {
        let covered = range.start;
        self.replay_pipelined_covered(range, covered, open, codec_error, progress, stops, at_stop)
    }

    /// [`Admission::replay_pipelined_stopping`], the kept bodies of the entries
    /// before `covered` read without their SHA-256
    /// ([`govledger_schemas::decode_fold_leaf_unhashed`]; about a tenth of a
    /// fold's CPU, `docs/BENCHMARKS.md`, stop 39). For a caller that checks a
    /// signed digest of all its state at a stop at or after `covered`: a body
    /// changed behind its hash so that the state there differs fails that
    /// check, and the caller then names the entry by reading the entries again
    /// with every check. The detector's tracks, which no digest covers, are
    /// folded from such a body as it stands.
    #[allow(clippy::too_many_arguments)]
    pub fn replay_pipelined_covered<'s, E: Send>(
        &mut self,
        range: Range<u64>,
        covered: u64,
        open: &(dyn Fn() -> Box<dyn LeafReader<E> + 's> + Sync),
        codec_error: impl Fn(u64, CodecError) -> E + Sync,
        progress: &mut dyn FnMut(u64),
        stops: &[u64],
        at_stop: &mut dyn FnMut(&mut Admission) -> Result<(), E>,
    ) -> Result<(), E> {
        let start = self.entries_folded;
        let mut stops = stops.iter().copied().filter(move |&s| s > start).peekable();
        let round_len = PIPELINE_ROUND as u64;
        let rounds = range.end.saturating_sub(range.start).div_ceil(round_len);
        let round_range = |r: u64| {
            let from = range.start + r * round_len;
            from..range.end.min(from + round_len)
        };
        // Round `r` as read and decoded: what the fold needs of each entry (its
        // time, what its verdict calls for and its decoded body; the entry itself
        // is read in place and let go), then the reader's error if it failed.
        // Leaves come in order, each seq once: one the reader skips or does not
        // give is its `missing` error (whatever the reader's own checks).
        let read_round = |reader: &mut dyn LeafReader<E>, r: u64| -> Decoded<E> {
            let within = round_range(r);
            let mut entries = Vec::with_capacity((within.end - within.start) as usize);
            let mut bad = None;
            let mut next = within.start;
            let mut skipped = false;
            let read = reader.read(within.clone(), &mut |seq, leaf| {
                if seq != next {
                    skipped = true;
                    return false;
                }
                next += 1;
                match decode_leaf(leaf, &mut entries, seq >= covered) {
                    Ok(()) => true,
                    Err(err) => {
                        bad = Some((seq, err));
                        false
                    }
                }
            });
            let failed = match read {
                Err(e) => Some(e),
                Ok(()) if bad.is_none() && (skipped || next < within.end) => {
                    Some(reader.missing(next))
                }
                Ok(()) => None,
            };
            Decoded {
                entries,
                bad,
                failed,
            }
        };
        // Folds one decoded round, up to its first failure, which it returns.
        let mut fold_round = |this: &mut Admission, round: &mut Decoded<E>| -> Result<(), E> {
            for (time_ns, how, env) in &round.entries {
                this.replay_as(*how, *time_ns, env.as_ref());
                if stops.next_if_eq(&this.entries_folded).is_some() {
                    at_stop(this)?;
                }
            }
            if let Some((seq, err)) = round.bad.take() {
                return Err(codec_error(seq, err));
            }
            round.failed.take().map_or(Ok(()), Err)
        };
        let workers = (self.verify_threads.clamp(1, MAX_PIPELINE_WORKERS) as u64).min(rounds);
        // A range of one round or less (a stepper's seek, a start from a recent
        // snapshot) is not worth the threads: read, decode and fold it here.
        if rounds <= 1 {
            let mut folded = Ok(());
            if rounds == 1 {
                let mut round = read_round(&mut *open(), 0);
                folded = fold_round(self, &mut round);
            }
            progress(self.entries_folded - start);
            return folded;
        }
        std::thread::scope(|s| {
            let mut outboxes = Vec::new();
            let mut spent = Vec::new();
            for w in 0..workers {
                let (outbox, from_worker) =
                    std::sync::mpsc::sync_channel::<Decoded<E>>(DECODED_AHEAD);
                let (to_worker, spent_here) =
                    std::sync::mpsc::sync_channel::<Decoded<E>>(DECODED_AHEAD);
                let read_round = &read_round;
                // Named, for profilers and `top -H`.
                let worker = std::thread::Builder::new().name("fold-read".into());
                let spawned = worker.spawn_scoped(s, move || {
                    let mut reader = open();
                    for r in (w..rounds).step_by(workers as usize) {
                        // Free the rounds the folder is done with, on this thread.
                        while spent_here.try_recv().is_ok() {}
                        let round = read_round(&mut *reader, r);
                        let last = round.failed.is_some() || round.bad.is_some();
                        if outbox.send(round).is_err() || last {
                            break;
                        }
                    }
                });
                // As `Scope::spawn` does: a thread that cannot start is a panic.
                spawned.expect("failed to spawn thread");
                outboxes.push(from_worker);
                spent.push(to_worker);
            }
            // Rounds are taken from the workers in the order they were dealt, so
            // they are folded in log order. A worker's queue closing early means it
            // panicked, which the scope re-raises.
            for r in 0..rounds {
                let w = (r % workers) as usize;
                let Ok(mut round) = outboxes[w].recv() else {
                    break;
                };
                let folded = fold_round(self, &mut round);
                progress(self.entries_folded - start);
                folded?;
                // Back to the worker that built it, to be freed there (or here, if
                // its queue is full).
                let _ = spent[w].try_send(round);
            }
            Ok(())
        })
    }

    /// Forgets the event ids of the batch just committed (they are in the ledger's
    /// index now). Call after each successful append.
    pub fn end_batch(&mut self) {
        self.batch_ids.clear();
    }

    /// Admits one message. `seen(tenant, event_id)` answers whether the ledger
    /// already holds an accepted entry with that id.
    pub fn admit<E>(
        &mut self,
        msg: &Message,
        seen: &dyn Fn(&str, &str) -> Result<bool, E>,
    ) -> Result<Entry, E> {
        self.admit_checked(msg, Pre::default(), seen)
    }

    fn admit_checked<E>(
        &mut self,
        msg: &Message,
        pre: Pre<E>,
        seen: &dyn Fn(&str, &str) -> Result<bool, E>,
    ) -> Result<Entry, E> {
        let verdict = self.check(msg, pre, seen)?;
        self.entries_folded += 1;
        match verdict {
            Checked::Accept(env) => {
                let (warnings, detections) = self.fold(&env, msg.time_ns);
                let id = env.id.to_string();
                self.warnings
                    .extend(warnings.into_iter().map(|w| (id.clone(), w)));
                self.detections
                    .extend(detections.into_iter().map(|d| (id.clone(), d)));
                self.batch_ids
                    .insert((env.tenant.to_string(), env.id.to_string()));
                Ok(entry(
                    msg,
                    Verdict::Accepted {
                        event_id: env.id.to_string(),
                        event_type: env.kind().as_str().to_string(),
                        tenant: env.tenant.to_string(),
                    },
                ))
            }
            Checked::Reject(r) => Ok(entry(msg, r)),
            Checked::Refuse(env, exceeded) => {
                let mut detail = format!("event {} rejected: {}", env.id, exceeded.message);
                // A refusal that engages a kill switch changes the state, so its
                // (verified) body is kept: replay re-derives the engagement from it.
                let kill = self.state.refuse(&env, msg.time_ns);
                if let Some(k) = &kill {
                    detail.push_str(&format!(
                        "; kill_on_exceed engaged the {} kill switch on {}",
                        govledger_projections::gates::scope_name(k.scope),
                        k.target
                    ));
                }
                let mut e = entry(msg, reject(RejectReason::BudgetExceeded, detail, &env));
                if kill.is_some() {
                    e.body = Some(msg.body.clone());
                }
                Ok(e)
            }
        }
    }

    fn check<E>(
        &self,
        msg: &Message,
        pre: Pre<E>,
        seen: &dyn Fn(&str, &str) -> Result<bool, E>,
    ) -> Result<Checked, E> {
        let decoded = match pre.decoded {
            Some(d) => d,
            None => decode_body(&msg.body, &self.limits),
        };
        let env = match decoded {
            Ok(env) => env,
            Err(e) => {
                // Label the rejection with whatever id and tenant can still be read.
                let (id, tenant) = peek_ids(&msg.body, &self.limits);
                return Ok(Checked::Reject(Verdict::Rejected {
                    reason: e.reason(),
                    detail: match &id {
                        Some(id) => format!("event {id} rejected: {e}"),
                        None => e.to_string(),
                    },
                    event_id: id.map(|i| i.to_string()),
                    tenant: tenant.map(|t| t.to_string()),
                }));
            }
        };
        let tenant = env.tenant.as_str();
        let id = env.id.as_str();
        let rej = |reason: RejectReason, detail: String| {
            Checked::Reject(reject(
                reason,
                format!("event {id} rejected: {detail}"),
                &env,
            ))
        };
        let kind = env.kind();
        let parts: Vec<&str> = msg.subject.split('.').collect();
        match parts.as_slice() {
            ["gov", t, k] if govledger_schemas::TenantId::validate(t).is_ok() => {
                // The subject's shape is part of the schema, so a wrong kind is a
                // schema_violation and is reported before a tenant_mismatch.
                if *k != family(kind.as_str()) {
                    return Ok(rej(
                        RejectReason::SchemaViolation,
                        format!(
                            "a {} event must be published on gov.{tenant}.{}, not {}",
                            kind.as_str(),
                            family(kind.as_str()),
                            msg.subject
                        ),
                    ));
                }
                if *t != tenant {
                    return Ok(rej(
                        RejectReason::TenantMismatch,
                        format!(
                            "subject {} names tenant {t}, the body tenant {tenant}",
                            msg.subject
                        ),
                    ));
                }
            }
            _ => {
                return Ok(rej(
                    RejectReason::SchemaViolation,
                    format!("subject {:?} is not gov.<tenant>.<kind>", msg.subject),
                ))
            }
        }
        let (Some(key_id), Some(sig)) = (&msg.key_id, &msg.signature) else {
            let which = if msg.key_id.is_none() {
                "Gov-Key"
            } else {
                "Gov-Sig"
            };
            return Ok(rej(
                RejectReason::MissingHeader,
                format!("header {which} is missing"),
            ));
        };
        if govledger_schemas::KeyId::validate(key_id).is_err() {
            return Ok(rej(
                RejectReason::BadHeader,
                format!("Gov-Key {key_id:?} is not a key id of the form <tenant>/<name>"),
            ));
        }
        let Some(sig) = decode_sig(sig) else {
            return Ok(rej(
                RejectReason::BadHeader,
                "Gov-Sig is not the standard base64 of a 64-byte Ed25519 signature".into(),
            ));
        };
        let rec = match self
            .state
            .ring
            .signer(key_id, tenant, msg.time_ns, kind.is_key_event())
        {
            Ok(rec) => rec,
            Err(KeyProblem::Unknown) => {
                return Ok(rej(
                    RejectReason::UnknownKey,
                    format!("key {key_id} is not known"),
                ))
            }
            Err(KeyProblem::Revoked(m)) => return Ok(rej(RejectReason::RevokedKey, m)),
            Err(KeyProblem::TenantMismatch(m)) => return Ok(rej(RejectReason::TenantMismatch, m)),
            Err(KeyProblem::Unauthorized(m)) => return Ok(rej(RejectReason::UnauthorizedKey, m)),
        };
        if let Event::KillswitchEngaged(k) | Event::KillswitchReleased(k) = &env.event {
            if k.scope == KillScope::System && rec.role != KeyRole::Operator {
                return Ok(rej(
                    RejectReason::UnauthorizedKey,
                    format!(
                        "a system kill switch stops every tenant and needs an operator key; {key_id} is not one"
                    ),
                ));
            }
        }
        let verified = match pre.sig {
            Some((pk, ok)) if pk == rec.public_key => ok,
            _ => verify_sig(&rec.public_key, &msg.body, &sig),
        };
        if !verified {
            return Ok(rej(
                RejectReason::BadSignature,
                format!("signature does not verify with key {key_id}"),
            ));
        }
        let in_ledger = match pre.seen {
            Some(answer) => answer?,
            None => seen(tenant, id)?,
        };
        if in_ledger || self.batch_ids.contains(pair(&(tenant, id))) {
            return Ok(rej(
                RejectReason::Duplicate,
                format!("tenant {tenant} already has an accepted event {id}"),
            ));
        }
        match self.state.check(&env, msg.time_ns) {
            Ok(()) => Ok(Checked::Accept(env)),
            Err(Refusal::Invariant(m)) => Ok(rej(RejectReason::InvariantViolation, m)),
            Err(Refusal::Budget(ex)) => Ok(Checked::Refuse(env, ex)),
        }
    }
}

/// What [`Admission::check`] decided.
enum Checked {
    /// Accepted: fold it.
    Accept(Envelope),
    /// Rejected before the state had a say, or by an invariant.
    Reject(Verdict),
    /// Refused by a budget (which may engage a kill switch).
    Refuse(Envelope, govledger_projections::Exceeded),
}

/// Leaves per round in [`Admission::replay_pipelined`]: 4,096 since stop 22 (1,024
/// before; longer rounds gave the fold bench 1.03–1.11× in 8 of 10 alternating
/// pairs, verified replay about the same, `docs/BENCHMARKS.md`).
pub const PIPELINE_ROUND: usize = 4096;

/// Where [`Admission::replay_pipelined`] reads stored leaves: each of its workers
/// opens one and reads its rounds with it, in ascending order.
pub trait LeafReader<E> {
    /// Calls `visit(seq, leaf)` for each leaf of `range`, in order (`seq` running
    /// through the range), with its bytes lent for the call, until `visit` returns
    /// `false`. An `Err` when a leaf cannot be read, after the ones before it. The
    /// pipeline checks the seqs itself: one skipped, out of place or not given
    /// (an `Ok` before the range's end) becomes [`LeafReader::missing`].
    fn read(
        &mut self,
        range: Range<u64>,
        visit: &mut dyn FnMut(u64, &[u8]) -> bool,
    ) -> Result<(), E>;

    /// The error for leaf `seq`, which the reader did not give in its place.
    fn missing(&self, seq: u64) -> E;
}

/// The entries of a [`LogStore`] as folds read them ([`LeafReader`]): lent by the
/// store's [`EntryCursor`], a missing or misplaced entry a
/// [`StoreError::Corrupt`] naming it, errors in any type a [`LedgerError`] goes
/// into.
pub struct StoredLeaves<'a>(Box<dyn EntryCursor + 'a>);

impl<'a> StoredLeaves<'a> {
    /// A reader of `store`'s entries, with a cursor of its own.
    pub fn new<S: LogStore + ?Sized>(store: &'a S) -> Self {
        StoredLeaves(store.entry_cursor())
    }
}

impl<E: From<LedgerError>> LeafReader<E> for StoredLeaves<'_> {
    fn read(
        &mut self,
        range: Range<u64>,
        visit: &mut dyn FnMut(u64, &[u8]) -> bool,
    ) -> Result<(), E> {
        // A gap in the store shows as a seq out of place, which `visit` refuses.
        self.0
            .visit(range.start, &mut |seq, leaf| {
                seq < range.end && visit(seq, leaf)
            })
            .map_err(|e| LedgerError::from(e).into())
    }

    fn missing(&self, seq: u64) -> E {
        let missing = format!("entry {seq} is missing from the store");
        LedgerError::from(StoreError::Corrupt(missing)).into()
    }
}

/// A round of [`Admission::replay_pipelined`], read and decoded: each entry's time,
/// what its verdict calls for and its decoded body, up to the first leaf that did
/// not decode (its seq and why), and the reader's error if it stopped early.
struct Decoded<E> {
    entries: Vec<ToFold>,
    bad: Option<(u64, CodecError)>,
    failed: Option<E>,
}

/// What folding a stored entry needs of it: its time, what its verdict calls for
/// and its decoded body.
type ToFold = (u64, FoldAs, Option<Envelope>);

/// What folding a stored leaf needs of it, read in place and added to `round`
/// (nothing added on an error). The decoded body is built in its place in the
/// round, not moved there. A kept body is checked against its SHA-256 when
/// `hashed` ([`Admission::replay_pipelined_covered`]).
fn decode_leaf(leaf: &[u8], round: &mut Vec<ToFold>, hashed: bool) -> Result<(), CodecError> {
    let e = if hashed {
        decode_fold_leaf(leaf)?
    } else {
        decode_fold_leaf_unhashed(leaf)?
    };
    let how = FoldAs::of(e.rejected);
    let at = round.len();
    round.push((e.time_ns, how, None));
    let decoded = fold_body_into(how, e.body, &mut round[at].2);
    if decoded.is_err() {
        round.truncate(at);
    }
    decoded
}

/// Decoded rounds each worker of [`Admission::replay_pipelined`] may hold ready
/// for the folder (and as many on their way back to be freed): enough for the
/// workers to go on decoding while the folder computes a state digest at a
/// checkpoint (several milliseconds at 1M entries) instead of stopping once one
/// round is ready.
const DECODED_AHEAD: usize = 8;

/// Most decoding workers [`Admission::replay_pipelined`] starts: one in-order fold
/// cannot use more, and each adds up to 17 rounds in flight.
const MAX_PIPELINE_WORKERS: usize = 8;

/// What a fold reads of a stored entry's body: the decoded event of an entry that
/// bears on the state (accepted, or refused by a budget and kept because it
/// engaged a kill switch), `None` for any other. Such an entry with no body, or
/// with one that no longer decodes, is an error ([`CodecError::BodyInvalid`]), as
/// in every fold: readers that rebuild what the state rests on (`explain`) use it
/// to fail the same way.
pub fn fold_input(entry: &Entry) -> Result<Option<Envelope>, CodecError> {
    fold_body(FoldAs::of_verdict(&entry.verdict), entry.body.as_deref())
}

/// [`fold_input`] by what the verdict calls for. Folding on without such an entry
/// would give a state that silently lacks an event (a kill switch left off, a
/// budget under-counted). The body was checked when admitted; no size limit
/// applies.
fn fold_body(how: FoldAs, body: Option<&[u8]>) -> Result<Option<Envelope>, CodecError> {
    let mut env = None;
    fold_body_into(how, body, &mut env)?;
    Ok(env)
}

/// [`fold_body`] into `env`, which must be `None` and stays so unless the body
/// is decoded.
fn fold_body_into(
    how: FoldAs,
    body: Option<&[u8]>,
    env: &mut Option<Envelope>,
) -> Result<(), CodecError> {
    match (how, body) {
        (FoldAs::Nothing, _) | (FoldAs::Refused, None) => Ok(()),
        (FoldAs::Accepted, None) => Err(CodecError::BodyInvalid(
            "an accepted entry keeps no body".into(),
        )),
        (FoldAs::Accepted | FoldAs::Refused, Some(body)) => {
            let limits = DecodeLimits {
                max_body_bytes: usize::MAX,
            };
            decode_body_into(body, &limits, env).map_err(|e| CodecError::BodyInvalid(e.to_string()))
        }
    }
}

/// What folding a stored entry does, by its verdict.
#[derive(Clone, Copy, Debug)]
enum FoldAs {
    /// Accepted: fold its body in.
    Accepted,
    /// Refused by a budget: re-derive the kill switch it may have engaged.
    Refused,
    /// Any other refusal: count it, nothing else.
    Nothing,
}

impl FoldAs {
    /// By the refusal's reason (`None`: accepted).
    fn of(refused: Option<RejectReason>) -> FoldAs {
        match refused {
            None => FoldAs::Accepted,
            Some(RejectReason::BudgetExceeded) => FoldAs::Refused,
            Some(_) => FoldAs::Nothing,
        }
    }

    /// By a stored verdict.
    fn of_verdict(verdict: &Verdict) -> FoldAs {
        match verdict {
            Verdict::Accepted { .. } => FoldAs::of(None),
            Verdict::Rejected { reason, .. } => FoldAs::of(Some(*reason)),
        }
    }
}

fn reject(reason: RejectReason, detail: String, env: &Envelope) -> Verdict {
    Verdict::Rejected {
        reason,
        detail,
        event_id: Some(env.id.to_string()),
        tenant: Some(env.tenant.to_string()),
    }
}

fn entry(msg: &Message, verdict: Verdict) -> Entry {
    let accepted = matches!(verdict, Verdict::Accepted { .. });
    Entry {
        seq: Seq(0),
        stream_seq: msg.stream_seq,
        time_ns: msg.time_ns,
        subject: msg.subject.clone(),
        key_id: msg.key_id.clone(),
        signature: msg
            .signature
            .as_ref()
            .and_then(|s| B64.decode(s.trim()).ok()),
        body_sha256: Sha256::digest(&msg.body).into(),
        body_len: msg.body.len() as u64,
        body: accepted.then(|| msg.body.clone()),
        verdict,
    }
}
