//! The canonical encoding that state digests hash.
//!
//! Every projection's digest is SHA-256 over a domain tag and its entries in map
//! (`BTreeMap`) order, each field written as:
//! - integers: big-endian, fixed width (`u8`, `u32`, `u64`);
//! - strings and byte strings: `u64` length, then the bytes;
//! - `Option`: `0`, or `1` then the value;
//! - sequences: `u64` count, then the items;
//! - enums: a one-byte tag, in declaration order from 0, then the variant's fields.
//!
//! The state digest in each checkpoint is [`state_digest`]: SHA-256 of
//! `"govledger state v1"` and the four projection digests (key ring, gates, flows,
//! budgets), in that order. Changing any of this changes every checkpoint's state
//! digest: the golden vectors in `projections/tests/digest.rs` freeze it.

use sha2::{Digest, Sha256};

/// A SHA-256 fed with canonically encoded fields.
pub struct Canon(Sha256);

impl Canon {
    /// A hash starting with the domain tag `tag`.
    pub fn new(tag: &str) -> Self {
        let mut h = Sha256::new();
        h.update(tag.as_bytes());
        Canon(h)
    }

    /// A byte (tags, flags, small enums).
    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.0.update([v]);
        self
    }

    /// A `u32`.
    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.0.update(v.to_be_bytes());
        self
    }

    /// A `u64`.
    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.0.update(v.to_be_bytes());
        self
    }

    /// A length-prefixed string.
    pub fn str(&mut self, s: &str) -> &mut Self {
        self.bytes(s.as_bytes())
    }

    /// Length-prefixed bytes.
    pub fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.u64(b.len() as u64);
        self.0.update(b);
        self
    }

    /// An optional string.
    pub fn opt_str(&mut self, s: Option<&str>) -> &mut Self {
        match s {
            None => self.u8(0),
            Some(s) => self.u8(1).str(s),
        }
    }

    /// An optional `u64`.
    pub fn opt_u64(&mut self, v: Option<u64>) -> &mut Self {
        match v {
            None => self.u8(0),
            Some(v) => self.u8(1).u64(v),
        }
    }

    /// An optional `u32`.
    pub fn opt_u32(&mut self, v: Option<u32>) -> &mut Self {
        match v {
            None => self.u8(0),
            Some(v) => self.u8(1).u32(v),
        }
    }

    /// The digest.
    pub fn finish(self) -> [u8; 32] {
        self.0.finalize().into()
    }
}

/// The digest of the whole projected state, as checkpoints carry it.
pub fn state_digest(
    ring: [u8; 32],
    gates: [u8; 32],
    flows: [u8; 32],
    budgets: [u8; 32],
) -> [u8; 32] {
    let mut c = Canon::new("govledger state v1");
    for d in [ring, gates, flows, budgets] {
        c.0.update(d);
    }
    c.finish()
}
