//! Snapshots: the whole state at a log size, as bytes that prove themselves.
//!
//! A snapshot lets a reader start folding at a checkpoint instead of at entry 0. It
//! is derived data: the log stays the truth, and a snapshot is trusted only after
//! its state digest equals the one the signed checkpoint at its size carries.
//!
//! # Format, version 1
//! | field | bytes |
//! |---|---|
//! | magic | `GLSNAP` 0x00 0x01 (8 bytes) |
//! | size: entries folded into it | u64 big-endian |
//! | state digest, version 1 ([`crate::canon::state_digest`]) | 32 |
//! | key ring, gates, flows, budgets, detector | each a u64 big-endian length, then the part's canonical encoding ([`crate::canon`]) |
//! | checksum: SHA-256 of every byte before it | 32 |
//!
//! Each of the four state parts is exactly the byte string its digest hashes after
//! its domain tag, so [`verify`] recomputes the state digest from the parts without
//! decoding them, and [`decode`] refuses a snapshot whose parts do not hash to the
//! digest in its header. The detector part (thresholds and per-agent tracks) is not
//! in the state digest, as it decides alerts, not verdicts; the checksum covers it.
//!
//! The header's digest is version 1 whatever the checkpoints carry: it can be
//! recomputed from the bytes alone. Against a checkpoint that carries a version-2
//! digest ([`crate::State::digest`]), a reader decodes the snapshot and compares
//! the decoded state's version-2 digest (`govledger_ingest::snapshots` does), which
//! also fills the per-entry hashes the next checkpoint's digest starts from.

use crate::budgets::{self, Budgets};
use crate::canon::{self, tagged_digest, Canon, CanonError, Out, Reader};
use crate::detect::Detector;
use crate::flows::{self, Flows};
use crate::gates::{self, Gates};
use crate::keys::{self, KeyRing};
use crate::state::State;
use sha2::{Digest, Sha256};
use std::io::Write;

/// The first 8 bytes of every version-1 snapshot.
pub const MAGIC: [u8; 8] = *b"GLSNAP\x00\x01";

const HEADER: usize = 8 + 8 + 32;
const PARTS: [&str; 5] = ["key ring", "gates", "flows", "budgets", "detector"];

/// Why snapshot bytes are not a usable snapshot.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SnapshotError {
    /// Not a version-1 snapshot.
    #[error("not a govledger snapshot (bad magic)")]
    Magic,
    /// Shorter than its own framing says.
    #[error("snapshot is truncated: {0}")]
    Truncated(&'static str),
    /// The trailing checksum does not match: the bytes were damaged.
    #[error("snapshot checksum does not match: the bytes are damaged")]
    Checksum,
    /// The parts do not hash to the state digest in the header.
    #[error("snapshot parts do not hash to the state digest in its header")]
    Digest,
    /// A part is not a canonical encoding.
    #[error("snapshot part {0}")]
    Part(#[from] CanonError),
}

/// A decoded snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// Entries folded into it: the log size it stands at.
    pub size: u64,
    /// The state.
    pub state: State,
    /// The detection rules' thresholds and tracks.
    pub detector: Detector,
}

/// What [`verify`] found in a snapshot's header, having checked it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// Entries folded into it.
    pub size: u64,
    /// Its state digest, recomputed from its parts.
    pub state_digest: [u8; 32],
}

/// Encodes `state` and `detector` after `size` entries.
pub fn encode(size: u64, state: &State, detector: &Detector) -> Vec<u8> {
    let mut out = Vec::new();
    // Writing into a Vec cannot fail.
    let _ = write(&mut out, size, state, detector);
    out
}

/// Counts bytes.
struct Count(u64);

impl Out for Count {
    fn put(&mut self, bytes: &[u8]) {
        self.0 += bytes.len() as u64;
    }
}

/// Writes through to `w` and hashes what it wrote; keeps the first error.
struct Tee<'w, W: Write> {
    w: &'w mut W,
    sum: Sha256,
    written: u64,
    error: Option<std::io::Error>,
}

impl<W: Write> Out for Tee<'_, W> {
    fn put(&mut self, bytes: &[u8]) {
        if self.error.is_none() {
            self.sum.update(bytes);
            self.written += bytes.len() as u64;
            if let Err(e) = self.w.write_all(bytes) {
                self.error = Some(e);
            }
        }
    }
}

/// Writes the snapshot of `state` and `detector` after `size` entries into `w`,
/// streaming: memory stays constant whatever the state's size (each part is
/// encoded once to count and hash it, and once to write it). Returns the bytes
/// written.
pub fn write<W: Write>(
    w: &mut W,
    size: u64,
    state: &State,
    detector: &Detector,
) -> std::io::Result<u64> {
    let parts: [&EncodePart; 5] = [
        &|f| state.ring.encode(&mut Canon::to(Fn1(f))),
        &|f| state.gates.encode(&mut Canon::to(Fn1(f))),
        &|f| state.flows.encode(&mut Canon::to(Fn1(f))),
        &|f| state.budgets.encode(&mut Canon::to(Fn1(f))),
        &|f| detector.encode(&mut Canon::to(Fn1(f))),
    ];
    let mut tee = Canon::to(Tee {
        w,
        sum: Sha256::new(),
        written: 0,
        error: None,
    });
    // First pass: each part's length, and the four state parts' digests for the
    // header's state digest.
    let tags = [keys::TAG, gates::TAG, flows::TAG, budgets::TAG];
    let mut lengths = [0u64; 5];
    let mut digests = [[0u8; 32]; 4];
    for (i, part) in parts.iter().enumerate() {
        let mut n = Count(0);
        let mut h = tags.get(i).map(Sha256::new_with_prefix);
        part(&mut |b| {
            n.put(b);
            if let Some(h) = &mut h {
                h.update(b);
            }
        });
        lengths[i] = n.0;
        if let (Some(d), Some(h)) = (digests.get_mut(i), h) {
            *d = h.finalize().into();
        }
    }
    let [ring, g, f, b] = digests;
    tee.raw(&MAGIC)
        .u64(size)
        .raw(&canon::state_digest(ring, g, f, b));
    for (part, n) in parts.iter().zip(lengths) {
        tee.u64(n);
        part(&mut |b| {
            tee.raw(b);
        });
    }
    let tee = tee.into_out();
    if let Some(e) = tee.error {
        return Err(e);
    }
    let sum: [u8; 32] = tee.sum.finalize().into();
    tee.w.write_all(&sum)?;
    Ok(tee.written + 32)
}

/// Encodes one part into a byte sink.
type EncodePart<'a> = dyn Fn(&mut dyn FnMut(&[u8])) + 'a;

/// A closure as an [`Out`].
struct Fn1<'f>(&'f mut dyn FnMut(&[u8]));

impl Out for Fn1<'_> {
    fn put(&mut self, bytes: &[u8]) {
        (self.0)(bytes);
    }
}

/// Splits a snapshot into its header fields and parts, checking magic, framing,
/// checksum and that the parts hash to the header's digest.
fn split(bytes: &[u8]) -> Result<(Header, [&[u8]; 5]), SnapshotError> {
    if bytes.len() < 8 || bytes[..8] != MAGIC {
        return Err(SnapshotError::Magic);
    }
    if bytes.len() < HEADER + 5 * 8 + 32 {
        return Err(SnapshotError::Truncated("shorter than the framing"));
    }
    let (content, sum) = bytes.split_at(bytes.len() - 32);
    if Sha256::digest(content).as_slice() != sum {
        return Err(SnapshotError::Checksum);
    }
    let size = u64::from_be_bytes(content[8..16].try_into().expect("8 bytes"));
    let claimed: [u8; 32] = content[16..48].try_into().expect("32 bytes");
    let mut rest = &content[HEADER..];
    let mut parts: [&[u8]; 5] = [&[]; 5];
    for p in &mut parts {
        if rest.len() < 8 {
            return Err(SnapshotError::Truncated("a part's length is missing"));
        }
        let n = u64::from_be_bytes(rest[..8].try_into().expect("8 bytes"));
        rest = &rest[8..];
        let n = usize::try_from(n).ok().filter(|&n| n <= rest.len()).ok_or(
            SnapshotError::Truncated("a part is longer than the snapshot"),
        )?;
        (*p, rest) = rest.split_at(n);
    }
    if !rest.is_empty() {
        return Err(SnapshotError::Truncated("bytes after the last part"));
    }
    let digest = canon::state_digest(
        tagged_digest(keys::TAG, parts[0]),
        tagged_digest(gates::TAG, parts[1]),
        tagged_digest(flows::TAG, parts[2]),
        tagged_digest(budgets::TAG, parts[3]),
    );
    if digest != claimed {
        return Err(SnapshotError::Digest);
    }
    Ok((
        Header {
            size,
            state_digest: digest,
        },
        parts,
    ))
}

/// Checks a snapshot's framing, checksum and state digest without decoding the
/// state; the caller compares the digest with the signed checkpoint's.
pub fn verify(bytes: &[u8]) -> Result<Header, SnapshotError> {
    split(bytes).map(|(h, _)| h)
}

/// Decodes a snapshot, strictly: [`verify`]'s checks, then every part must be a
/// canonical encoding with nothing left over.
pub fn decode(bytes: &[u8]) -> Result<Snapshot, SnapshotError> {
    let (header, parts) = split(bytes)?;
    fn read<T>(
        name: &'static str,
        bytes: &[u8],
        f: impl FnOnce(&mut Reader<'_>) -> Result<T, CanonError>,
    ) -> Result<T, CanonError> {
        let mut r = Reader::new(name, bytes);
        let v = f(&mut r)?;
        r.end()?;
        Ok(v)
    }
    let state = State {
        ring: read(PARTS[0], parts[0], KeyRing::decode)?,
        gates: read(PARTS[1], parts[1], Gates::decode)?,
        flows: read(PARTS[2], parts[2], Flows::decode)?,
        budgets: read(PARTS[3], parts[3], Budgets::decode)?,
    };
    let detector = read(PARTS[4], parts[4], Detector::decode)?;
    Ok(Snapshot {
        size: header.size,
        state,
        detector,
    })
}
