//! The key ring: which Ed25519 keys may sign which events, at which event time.
//!
//! Trust roots (the operator's keys and each tenant's admin keys) come from the trust
//! file given at `init` and never change through events. Producer keys enter only by
//! `key.registered` events signed by their tenant's admin key (or the operator's),
//! and leave by `key.rotated` (the old key retires, at once or at a given time) and
//! `key.revoked`. Every decision is a function of the ring and the event time: no
//! wall clock.

use crate::canon::{Canon, CanonError, Out, Reader};
use crate::digest_map::{DigestMap, Hash, V3Root};
use govledger_schemas::{Envelope, Event};

/// Who a key belongs to and what it may sign.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum KeyRole {
    /// The operator's root key: may sign for any tenant.
    Operator,
    /// A tenant admin key from the trust file: may sign key events of its tenant.
    Admin,
    /// A producer key registered by a `key.registered` event.
    Producer,
}

/// A key's lifecycle state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum KeyStatus {
    /// Usable within its validity window.
    Active,
    /// Rotated out: usable for events before `until_ns`.
    Retiring {
        /// Event time from which it is retired.
        until_ns: u64,
    },
    /// Revoked: never usable again.
    Revoked,
}

/// One known key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyRecord {
    /// The tenant that owns it (`operator` for operator keys).
    pub tenant: String,
    /// Its Ed25519 public key.
    pub public_key: [u8; 32],
    /// What it may sign.
    pub role: KeyRole,
    /// Lifecycle state.
    pub status: KeyStatus,
    /// Not valid before this event time.
    pub valid_from_ns: Option<u64>,
    /// Not valid after this event time.
    pub valid_until_ns: Option<u64>,
}

/// Why a key cannot sign an event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyProblem {
    /// No such key.
    Unknown,
    /// Revoked, retired, or outside its validity window.
    Revoked(String),
    /// The key may not sign this event (wrong tenant, or not an admin for a key event).
    Unauthorized(String),
    /// The tenant of the key differs from the event's.
    TenantMismatch(String),
}

/// All keys, by key id. Iteration is in key order, and so is any digest of it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyRing {
    keys: DigestMap<String, KeyRecord>,
}

fn decode_public(b64: &str) -> Option<[u8; 32]> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .ok()?
        .try_into()
        .ok()
}

impl KeyRing {
    /// An empty ring.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a trust root (operator or admin key).
    pub fn add_root(&mut self, key_id: &str, tenant: &str, public_key: [u8; 32], role: KeyRole) {
        self.keys.insert(
            key_id.to_string(),
            KeyRecord {
                tenant: tenant.to_string(),
                public_key,
                role,
                status: KeyStatus::Active,
                valid_from_ns: None,
                valid_until_ns: None,
            },
        );
    }

    /// Numbers the keys in key order for state digest v3
    /// ([`DigestMap::renumber_in_key_order`]): the trust roots of a state
    /// before any event, whatever order they were added in.
    pub(crate) fn number_in_key_order(&mut self) {
        self.keys.renumber_in_key_order();
    }

    /// Every key, ordered by id.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &KeyRecord)> {
        self.keys.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// The public key recorded under `key_id`, whatever its status.
    pub fn public_key(&self, key_id: &str) -> Option<[u8; 32]> {
        self.keys.get(key_id).map(|r| r.public_key)
    }

    /// The key `key_id` if it may sign an event of `tenant` at `time_ns`.
    pub fn signer(
        &self,
        key_id: &str,
        tenant: &str,
        time_ns: u64,
        key_event: bool,
    ) -> Result<&KeyRecord, KeyProblem> {
        let rec = self.keys.get(key_id).ok_or(KeyProblem::Unknown)?;
        match rec.status {
            KeyStatus::Revoked => {
                return Err(KeyProblem::Revoked(format!("key {key_id} is revoked")))
            }
            KeyStatus::Retiring { until_ns } if time_ns >= until_ns => {
                return Err(KeyProblem::Revoked(format!(
                    "key {key_id} was rotated out at {until_ns}"
                )))
            }
            _ => {}
        }
        if rec.valid_from_ns.is_some_and(|f| time_ns < f)
            || rec.valid_until_ns.is_some_and(|u| time_ns > u)
        {
            return Err(KeyProblem::Revoked(format!(
                "key {key_id} is not valid at event time {time_ns}"
            )));
        }
        if rec.role != KeyRole::Operator && rec.tenant != tenant {
            return Err(KeyProblem::TenantMismatch(format!(
                "key {key_id} belongs to tenant {}, the event to tenant {tenant}",
                rec.tenant
            )));
        }
        if key_event && rec.role == KeyRole::Producer {
            return Err(KeyProblem::Unauthorized(format!(
                "key events must be signed by an admin key of tenant {tenant}; {key_id} is a producer key"
            )));
        }
        Ok(rec)
    }

    /// Checks a key event against the ring: `Err` is an invariant violation with a
    /// reason, and the event must then be rejected, not applied.
    pub fn check(&self, env: &Envelope) -> Result<(), String> {
        let tenant = env.tenant.as_str();
        let own = |key_id: &govledger_schemas::KeyId| -> Result<(), String> {
            if key_id.tenant_str() != tenant {
                return Err(format!(
                    "key {key_id} does not belong to tenant {tenant}: a reference across tenants"
                ));
            }
            Ok(())
        };
        let producer = |key_id: &str| -> Result<&KeyRecord, String> {
            match self.keys.get(key_id) {
                None => Err(format!("key {key_id} is not registered")),
                Some(r) if r.role != KeyRole::Producer => Err(format!(
                    "key {key_id} is a trust root and cannot be changed by events"
                )),
                Some(r) if r.status == KeyStatus::Revoked => {
                    Err(format!("key {key_id} is already revoked"))
                }
                Some(r) => Ok(r),
            }
        };
        match &env.event {
            Event::KeyRegistered(k) => {
                own(&k.key_id)?;
                if self.keys.contains_key(k.key_id.as_str()) {
                    return Err(format!("key {} is already registered", k.key_id));
                }
                decode_public(&k.public_key)
                    .ok_or_else(|| format!("public key of {} is not 32 bytes", k.key_id))?;
            }
            Event::KeyRotated(k) => {
                own(&k.key_id)?;
                own(&k.new_key_id)?;
                if let KeyStatus::Retiring { until_ns } = producer(k.key_id.as_str())?.status {
                    // Rotating it again would move (even undo) its retirement.
                    return Err(format!(
                        "key {} was already rotated out (retiring at {until_ns})",
                        k.key_id
                    ));
                }
                if self.keys.contains_key(k.new_key_id.as_str()) {
                    return Err(format!("key {} is already registered", k.new_key_id));
                }
                decode_public(&k.new_public_key)
                    .ok_or_else(|| format!("public key of {} is not 32 bytes", k.new_key_id))?;
            }
            Event::KeyRevoked(k) => {
                own(&k.key_id)?;
                producer(k.key_id.as_str())?;
            }
            _ => {}
        }
        Ok(())
    }

    /// Applies an accepted key event at event time `time_ns`; other events are
    /// ignored. Call [`KeyRing::check`] first: an unchecked event is applied as far
    /// as it makes sense and never panics.
    pub fn apply(&mut self, env: &Envelope, time_ns: u64) {
        // Owned only where a record keeps it: most events touch no key.
        let tenant = || env.tenant.as_str().to_string();
        match &env.event {
            Event::KeyRegistered(k) => {
                if let Some(pk) = decode_public(&k.public_key) {
                    self.keys
                        .insert_absent(k.key_id.as_str().to_string(), || KeyRecord {
                            tenant: tenant(),
                            public_key: pk,
                            role: KeyRole::Producer,
                            status: KeyStatus::Active,
                            valid_from_ns: k.valid_from_ns,
                            valid_until_ns: k.valid_until_ns,
                        });
                }
            }
            Event::KeyRotated(k) => {
                let Some(pk) = decode_public(&k.new_public_key) else {
                    return;
                };
                if let Some(old) = self.keys.get_mut(k.key_id.as_str()) {
                    // Trust roots never change through events, and a revoked or
                    // retiring key is never revived.
                    if old.role == KeyRole::Producer && old.status == KeyStatus::Active {
                        old.status = KeyStatus::Retiring {
                            until_ns: k.retire_old_at_ns.unwrap_or(time_ns),
                        };
                    }
                }
                self.keys
                    .insert_absent(k.new_key_id.as_str().to_string(), || KeyRecord {
                        tenant: tenant(),
                        public_key: pk,
                        role: KeyRole::Producer,
                        status: KeyStatus::Active,
                        valid_from_ns: None,
                        valid_until_ns: None,
                    });
            }
            Event::KeyRevoked(k) => {
                if let Some(r) = self.keys.get_mut(k.key_id.as_str()) {
                    if r.role == KeyRole::Producer {
                        r.status = KeyStatus::Revoked;
                    }
                }
            }
            _ => {}
        }
    }
}

impl KeyRing {
    /// SHA-256 of the ring's canonical encoding ([`crate::canon`]): tag `"govledger
    /// keyring v1"`; for each key in id order, the id, tenant, public key (32 raw
    /// bytes), role tag (operator 0 / admin 1 / producer 2), status tag (active 0 /
    /// retiring 1 then its end / revoked 2) and validity window.
    pub fn digest(&self) -> [u8; 32] {
        let mut c = Canon::new(TAG);
        self.encode(&mut c);
        c.finish()
    }

    /// Writes the canonical encoding (without the tag).
    pub fn encode<O: Out>(&self, c: &mut Canon<O>) {
        self.keys.encode_entries(c, |c, id, r| encode_key(c, id, r));
    }

    /// The number of keys and the root of their digest map (state digest v2,
    /// [`crate::digest_map`]).
    pub fn root(&mut self) -> (u64, Hash) {
        self.keys.root(|c, id, r| encode_key(c, id, r))
    }

    /// Whether the ordinals are known (state digest v3).
    pub fn ordinals_known(&self) -> bool {
        self.keys.ordinals_known()
    }

    /// Forgets the ordinals ([`DigestMap::forget_ordinals`]).
    pub fn forget_ordinals(&mut self) {
        self.keys.forget_ordinals();
    }

    /// The number of keys, their ordinal counter and their map's version-3 root
    /// ([`crate::digest_map`]); `None` when the ordinals are not known.
    pub fn root_v3(&mut self) -> Option<V3Root> {
        self.keys.root_v3(|c, id, r| encode_key(c, id, r))
    }

    /// Reads a ring back from [`KeyRing::encode`]'s bytes, strictly.
    pub fn decode(r: &mut Reader<'_>) -> Result<Self, CanonError> {
        let mut keys = DigestMap::new();
        let mut ords = r.ordinals();
        keys.read_counter(ords.counter());
        let mut prev: Option<String> = None;
        let n = r.count(52)?;
        keys.reserve(n);
        for _ in 0..n {
            let start = r.offset();
            let id = r.str()?;
            r.ascending(prev.as_ref(), &id)?;
            let tenant = r.str()?;
            let public_key = r.raw32()?;
            let role = match r.tag(3, "key role")? {
                0 => KeyRole::Operator,
                1 => KeyRole::Admin,
                _ => KeyRole::Producer,
            };
            let status = match r.tag(3, "key status")? {
                0 => KeyStatus::Active,
                1 => KeyStatus::Retiring { until_ns: r.u64()? },
                _ => KeyStatus::Revoked,
            };
            let rec = KeyRecord {
                tenant,
                public_key,
                role,
                status,
                valid_from_ns: r.opt_u64()?,
                valid_until_ns: r.opt_u64()?,
            };
            keys.insert_read(id.clone(), rec, r.since(start), ords.next(r)?);
            prev = Some(id);
        }
        ords.end(r)?;
        Ok(KeyRing { keys })
    }
}

/// The key ring's domain tag.
pub const TAG: &str = "govledger keyring v1";

/// One key's canonical bytes: id, tenant, public key, role, status, validity.
fn encode_key<O: Out>(c: &mut Canon<O>, id: &str, r: &KeyRecord) {
    c.str(id).str(&r.tenant).raw32(&r.public_key);
    c.u8(match r.role {
        KeyRole::Operator => 0,
        KeyRole::Admin => 1,
        KeyRole::Producer => 2,
    });
    match r.status {
        KeyStatus::Active => c.u8(0),
        KeyStatus::Retiring { until_ns } => c.u8(1).u64(until_ns),
        KeyStatus::Revoked => c.u8(2),
    };
    c.opt_u64(r.valid_from_ns).opt_u64(r.valid_until_ns);
}
