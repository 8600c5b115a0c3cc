//! `govledger gen`: a deterministic, realistic stream of correctly signed v1 events.
//!
//! The demo, the tests and the benchmarks all draw their events from here, so they
//! exercise the same shapes producers send. Given the same options, the output is
//! the same bytes on every machine: keys are derived from the seed (SHA-256 of a
//! label, the seed and the key id, used as an Ed25519 seed), times advance from a
//! fixed start, and choices come from a small seeded SplitMix64 generator (a
//! statistical generator for test data, not cryptography).
//!
//! Each tenant gets an admin key (in the trust file) and two producer keys,
//! registered by `key.registered` events its admin key signs. Then agents run
//! sessions: proposals, policy decisions (allow, deny, require approval), approval
//! requests and grants or denials, executions, budget increments, now and then a
//! kill switch engaged and released, and telemetry, interleaved across tenants in a
//! plausible order.

use crate::admit::{TenantTrust, Trust, TrustKey};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ed25519_dalek::{Signer, SigningKey};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::VecDeque;

/// What to generate.
#[derive(Clone, Debug)]
pub struct GenOptions {
    /// Number of events.
    pub events: u64,
    /// The seed: same seed, same stream.
    pub seed: u64,
    /// Number of tenants (1..=1000).
    pub tenants: u32,
    /// Time of the first event, unix ns (default 2026-01-01T00:00:00Z).
    pub start_ns: u64,
}

impl Default for GenOptions {
    fn default() -> Self {
        GenOptions {
            events: 100,
            seed: 1,
            tenants: 1,
            start_ns: 1_767_225_600_000_000_000,
        }
    }
}

/// One generated message: a line of `gen` output and of `append` input.
///
/// ```json
/// {"subject":"gov.acme.action","time_ns":1767225600000000000,"key":"acme/gateway",
///  "sig":"<base64 Ed25519 signature over body>","body":"<the exact body, a JSON text>"}
/// ```
/// `body_b64` may replace `body` for bodies that are not UTF-8.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Line {
    /// NATS subject.
    pub subject: String,
    /// Event time (JetStream timestamp), unix ns.
    pub time_ns: u64,
    /// `Gov-Key`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// `Gov-Sig`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sig: Option<String>,
    /// The body bytes, when UTF-8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// The body bytes in standard base64, for any bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_b64: Option<String>,
}

impl Line {
    /// The body bytes, or why there are none.
    pub fn body_bytes(&self) -> Result<Vec<u8>, String> {
        match (&self.body, &self.body_b64) {
            (Some(b), None) => Ok(b.clone().into_bytes()),
            (None, Some(b)) => B64
                .decode(b)
                .map_err(|e| format!("body_b64 is not base64: {e}")),
            _ => Err("a line needs exactly one of body and body_b64".into()),
        }
    }

    /// The message this line stands for (`stream_seq` 0: not from a stream).
    pub fn to_message(&self) -> Result<crate::Message, String> {
        Ok(crate::Message {
            subject: self.subject.clone(),
            body: self.body_bytes()?,
            key_id: self.key.clone(),
            signature: self.sig.clone(),
            stream_seq: 0,
            time_ns: self.time_ns,
        })
    }
}

/// The derived signing key of `key_id` under `seed`.
pub fn derive_key(seed: u64, key_id: &str) -> SigningKey {
    let mut h = Sha256::new();
    h.update(b"govledger gen key v1\0");
    h.update(seed.to_be_bytes());
    h.update(key_id.as_bytes());
    SigningKey::from_bytes(&h.finalize().into())
}

/// A tiny seeded generator (SplitMix64) for choices in test data.
#[derive(Clone, Debug)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

const NAMES: [&str; 12] = [
    "acme",
    "globex",
    "initech",
    "umbrella",
    "hooli",
    "stark",
    "wayne",
    "tyrell",
    "cyberdyne",
    "soylent",
    "wonka",
    "oscorp",
];
const ACTIONS: [(&str, &str, &str); 6] = [
    ("http.get", "api:crm/customers", "low"),
    ("db.query", "db:orders", "medium"),
    ("payments.refund", "svc:payments", "high"),
    ("shell.exec", "host:build-7", "critical"),
    ("email.send", "svc:mail", "medium"),
    ("files.write", "s3:reports", "low"),
];
const MODELS: [&str; 3] = ["gpt-5", "claude-opus-5", "llama-4-70b"];

/// The name of tenant number `i`.
pub fn tenant_name(i: u32) -> String {
    let base = NAMES[i as usize % NAMES.len()];
    if (i as usize) < NAMES.len() {
        base.to_string()
    } else {
        format!("{base}-{}", i as usize / NAMES.len())
    }
}

struct TenantState {
    name: String,
    next_id: u64,
    sessions: u64,
    proposals: u64,
    tickets: u64,
    /// Pending events of the episodes in flight, next first.
    queue: VecDeque<(String, Value)>,
    killed: bool,
}

/// The generator: an iterator of [`Line`]s, plus the trust file that makes a fresh
/// ledger accept them.
pub struct Generator {
    opts: GenOptions,
    rng: Rng,
    tenants: Vec<TenantState>,
    emitted: u64,
    time_ns: u64,
}

impl Generator {
    /// A generator for `opts` (tenants clamped to 1..=1000).
    pub fn new(opts: GenOptions) -> Self {
        let n = opts.tenants.clamp(1, 1000);
        let mut tenants: Vec<TenantState> = (0..n)
            .map(|i| TenantState {
                name: tenant_name(i),
                next_id: 0,
                sessions: 0,
                proposals: 0,
                tickets: 0,
                queue: VecDeque::new(),
                killed: false,
            })
            .collect();
        for t in &mut tenants {
            let name = t.name.clone();
            for p in ["gateway", "runtime"] {
                let key_id = format!("{name}/{p}");
                let pk = B64.encode(derive_key(opts.seed, &key_id).verifying_key().as_bytes());
                t.queue.push_back((
                    "key.registered".into(),
                    json!({"key_id": key_id, "public_key": pk}),
                ));
            }
            // Generous: no generated stream comes near it within a month.
            t.queue.push_back((
                "budget.configured".into(),
                json!({"budget_id": "org-monthly", "scope": {"org": name},
                       "limit_cost_micros": 100_000_000_000u64, "limit_tokens": 100_000_000_000u64,
                       "window": "month", "warn_thresholds_pct": [80, 95]}),
            ));
        }
        Generator {
            rng: Rng(opts.seed ^ 0x676f_766c_6564_6765),
            time_ns: opts.start_ns,
            opts,
            tenants,
            emitted: 0,
        }
    }

    /// The trust file: each tenant's admin key.
    pub fn trust(&self) -> Trust {
        let mut trust = Trust::default();
        let op = "operator/root";
        trust.operator.push(TrustKey {
            key_id: op.into(),
            public_key: B64.encode(derive_key(self.opts.seed, op).verifying_key().as_bytes()),
        });
        for t in &self.tenants {
            let key_id = format!("{}/admin", t.name);
            let public_key = B64.encode(
                derive_key(self.opts.seed, &key_id)
                    .verifying_key()
                    .as_bytes(),
            );
            trust.tenants.insert(
                t.name.clone(),
                TenantTrust {
                    admin_keys: vec![TrustKey { key_id, public_key }],
                },
            );
        }
        trust
    }

    /// Queues one episode of tenant `ti`: a session's worth of governed actions.
    fn plan_episode(&mut self, ti: usize) {
        let rng = &mut self.rng;
        let t = &mut self.tenants[ti];
        t.sessions += 1;
        let name = t.name.clone();
        let agent = format!("agent-{}", rng.below(4) + 1);
        let user = format!("user-{}", rng.below(6) + 1);
        let session = format!("s-{:06}", t.sessions);
        let actor = json!({"user": user, "agent": agent});
        let q = &mut t.queue;
        q.push_back((
            "session.started".into(),
            json!({"session": session, "actor": actor}),
        ));
        let steps = 1 + rng.below(4);
        for _ in 0..steps {
            t.proposals += 1;
            let proposal = format!("p-{:07}", t.proposals);
            let (action, resource, tier) = ACTIONS[rng.below(ACTIONS.len() as u64) as usize];
            let digest = hex(&Sha256::digest(format!("{proposal}/{action}").as_bytes()));
            q.push_back((
                "action.proposed".into(),
                json!({"proposal": proposal, "session": session, "actor": actor, "action": action,
                       "resource": resource, "args_digest": digest, "risk_tier": tier}),
            ));
            let roll = rng.below(100);
            let decision = if tier == "critical" || (tier == "high" && roll < 60) {
                "require_approval"
            } else if roll < 12 {
                "deny"
            } else {
                "allow"
            };
            q.push_back((
                "policy.decided".into(),
                json!({"proposal": proposal, "session": session, "actor": actor,
                       "decision": decision, "policy_id": "default", "policy_version": "v3",
                       "rule_ids": [format!("{tier}-actions")],
                       "reason": format!("{tier}-risk {action} on {resource}")}),
            ));
            let mut ticket = None;
            let allowed = match decision {
                "allow" => true,
                "deny" => false,
                _ => {
                    t.tickets += 1;
                    let tk = format!("t-{:06}", t.tickets);
                    q.push_back((
                        "approval.requested".into(),
                        json!({"ticket": tk, "proposal": proposal, "session": session,
                               "actor": actor, "reason": format!("{action} needs a human")}),
                    ));
                    if rng.chance(80) {
                        q.push_back((
                            "approval.granted".into(),
                            json!({"ticket": tk, "proposal": proposal, "session": session,
                                   "approver": "oncall-lead", "scope": "once", "max_count": 1,
                                   "max_cost_micros": 5_000_000u64, "resource_ids": [resource]}),
                        ));
                        ticket = Some(tk);
                        true
                    } else {
                        q.push_back((
                            "approval.denied".into(),
                            json!({"ticket": tk, "proposal": proposal, "session": session,
                                   "approver": "oncall-lead", "reason": "not during a freeze"}),
                        ));
                        false
                    }
                }
            };
            if allowed {
                let tokens = 200 + rng.below(8_000);
                let cost = tokens * (2 + rng.below(30));
                let outcome = if rng.chance(93) { "success" } else { "failure" };
                let mut exec = json!({"proposal": proposal, "session": session, "actor": actor,
                    "outcome": outcome, "cost_micros": cost, "tokens": tokens});
                if let Some(tk) = ticket {
                    exec["ticket"] = json!(tk);
                }
                q.push_back(("action.executed".into(), exec));
                q.push_back((
                    "budget.incremented".into(),
                    json!({"scope": {"org": name, "agent": agent}, "session": session,
                           "proposal": proposal, "tokens": tokens, "cost_micros": cost,
                           "model": MODELS[rng.below(3) as usize]}),
                ));
            }
            if rng.chance(10) {
                q.push_back((
                    "telemetry".into(),
                    json!({"actor": actor, "name": "latency", "data": {"ms": rng.below(900)}}),
                ));
            }
        }
        if !t.killed && rng.chance(3) {
            t.killed = true;
            q.push_back((
                "killswitch.engaged".into(),
                json!({"scope": "agent", "target": agent, "reason": "anomalous spend",
                       "actor": {"service": "guardian"}}),
            ));
            q.push_back((
                "killswitch.released".into(),
                json!({"scope": "agent", "target": agent, "reason": "reviewed",
                       "actor": {"user": "oncall-lead"}}),
            ));
        } else {
            t.killed = false;
        }
        q.push_back((
            "session.ended".into(),
            json!({"session": session, "actor": actor}),
        ));
    }

    fn sign(&self, tenant: &str, kind: &str, id: &str, fields: Value) -> Line {
        let family = kind.split('.').next().unwrap_or(kind);
        let key_id = if family == "key" {
            format!("{tenant}/admin")
        } else if family == "budget" || family == "killswitch" {
            format!("{tenant}/runtime")
        } else {
            format!("{tenant}/gateway")
        };
        let key = derive_key(self.opts.seed, &key_id);
        signed_line(&key, &key_id, tenant, kind, id, fields, self.time_ns)
    }
}

/// A v1 event of type `kind` with the type's `fields`, signed by `key` (announced as
/// `key_id`), published on `gov.<tenant>.<family>` at `time_ns`.
pub fn signed_line(
    key: &SigningKey,
    key_id: &str,
    tenant: &str,
    kind: &str,
    id: &str,
    mut fields: Value,
    time_ns: u64,
) -> Line {
    if let Value::Object(m) = &mut fields {
        m.insert("v".into(), json!(1));
        m.insert("id".into(), json!(id));
        m.insert("type".into(), json!(kind));
        m.insert("tenant".into(), json!(tenant));
    }
    let body = fields.to_string();
    let family = kind.split('.').next().unwrap_or(kind);
    let sig = key.sign(body.as_bytes());
    Line {
        subject: format!("gov.{tenant}.{family}"),
        time_ns,
        key: Some(key_id.to_string()),
        sig: Some(B64.encode(sig.to_bytes())),
        body: Some(body),
        body_b64: None,
    }
}

impl Iterator for Generator {
    type Item = Line;

    fn next(&mut self) -> Option<Line> {
        if self.emitted >= self.opts.events {
            return None;
        }
        // Setup events (key registrations, budgets) of every tenant come first.
        let ti = match self.tenants.iter().position(|t| t.next_id < 3) {
            Some(i) => i,
            None => self.rng.below(self.tenants.len() as u64) as usize,
        };
        if self.tenants[ti].queue.is_empty() {
            self.plan_episode(ti);
        }
        let t = &mut self.tenants[ti];
        let (kind, fields) = t.queue.pop_front()?;
        t.next_id += 1;
        let id = format!("evt-{:09}", t.next_id);
        let tenant = t.name.clone();
        self.time_ns += 1_000_000 + self.rng.below(250_000_000);
        self.emitted += 1;
        Some(self.sign(&tenant, &kind, &id, fields))
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Admits the generated stream of `opts` into `ledger` through a fresh admission
/// over `opts`' trust, in batches of `batch` messages (each one atomic WriteBatch,
/// as `append` writes them), calling `after` after each batch with the ledger and
/// the state there (to sign a checkpoint, write a snapshot, ...). Returns the
/// admission at the end. For tests and benchmarks that need a realistic ledger.
pub fn admit_generated<S: govledger_ledger::store::LogStore>(
    ledger: &mut govledger_ledger::Ledger<S>,
    opts: GenOptions,
    batch: usize,
    after: &mut dyn FnMut(&mut govledger_ledger::Ledger<S>, &mut crate::Admission),
) -> Result<crate::Admission, Box<dyn std::error::Error + Send + Sync>> {
    let trust = Generator::new(opts.clone()).trust();
    let mut adm = crate::Admission::new(&trust, govledger_schemas::DecodeLimits::default())?;
    let mut gen = Generator::new(opts).peekable();
    let mut msgs: Vec<crate::Message> = Vec::with_capacity(batch.max(1));
    while gen.peek().is_some() {
        msgs.clear();
        for line in gen.by_ref().take(batch.max(1)) {
            msgs.push(line.to_message()?);
        }
        let refs: Vec<&crate::Message> = msgs.iter().collect();
        let mut entries = adm.admit_batch(&refs, &|t, id| {
            ledger.find_event(t, id).map(|s| s.is_some())
        })?;
        ledger.append(&mut entries, None)?;
        adm.end_batch();
        after(ledger, &mut adm);
    }
    Ok(adm)
}
