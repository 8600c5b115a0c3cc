//! Snapshots: the whole state at a log size, as bytes that prove themselves.
//!
//! A snapshot lets a reader start folding at a checkpoint instead of at entry 0. It
//! is derived data: the log stays the truth, and a snapshot is trusted only after
//! its state digest equals the one the signed checkpoint at its size carries.
//!
//! # Formats 1 and 2
//! | field | bytes |
//! |---|---|
//! | magic | `GLSNAP` 0x00 0x01 (format 1) or `GLSNAP` 0x00 0x02 (format 2) (8 bytes) |
//! | size: entries folded into it | u64 big-endian |
//! | state digest, version 1 ([`crate::canon::state_digest`]) | 32 |
//! | key ring, gates, flows, budgets, detector | each a u64 big-endian length, then the part's canonical encoding ([`crate::canon`]) |
//! | ordinals (format 2 only) | a u64 big-endian length, then the part (below) |
//! | checksum: SHA-256 of every byte before it | 32 |
//!
//! Each of the four state parts is exactly the byte string its digest hashes after
//! its domain tag, so [`verify`] recomputes the state digest from the parts without
//! decoding them, and [`decode`] refuses a snapshot whose parts do not hash to the
//! digest in its header. The detector part (thresholds and per-agent tracks) is not
//! in the state digest, as it decides alerts, not verdicts; the checksum covers it.
//!
//! The ordinals part carries what state digest v3 needs beside the entries
//! ([`crate::digest_map`]): for each of the seven state maps in the state
//! digests' order (keys, sessions, kill switches, system kill switches,
//! proposals, tickets, budgets), its ordinal counter (u64), its entry count
//! (u64, the count its state part gives) and each entry's ordinal (u64), in
//! the entries' key order: all big-endian. A reader refuses a map whose count
//! is above its counter, counters above the counts by more than the
//! snapshot's size in all (an entry leaves a map only through an event, the
//! release of a kill switch, one per event), an ordinal not below its map's
//! counter, and a count that is not the state part's. Two entries given one ordinal leave the state with no v3 digest
//! (its v3 root is `None`), which fails any check against a checkpoint that
//! carries one. [`encode`] writes version 2 when every map's ordinals are
//! known (a state folded from the start, or read from a version-2 snapshot),
//! and version 1 otherwise; a state read from a version-1 snapshot has no v3
//! digest.
//!
//! The header's digest is version 1 whatever the checkpoints carry: it can be
//! recomputed from the bytes alone. Against a checkpoint that carries a version-2
//! or version-3 digest ([`crate::State::digest`], [`crate::State::digest_v3`]), a
//! reader decodes the snapshot and compares the decoded state's digest of that
//! version (`govledger_ingest::snapshots` does, through [`open_for_digest`],
//! which checks the framing and the checksum and decodes in one pass, and
//! leaves the header's version-1 digest unchecked: the decoded state's digest
//! covers every state part, entry by entry). Each map entry's
//! hash is taken from the bytes it was read from, which are its canonical bytes
//! ([`crate::digest_map::DigestMap::insert_read`]), so that digest encodes no
//! entry again, and it leaves the per-entry hashes the next checkpoint's digest
//! starts from.

use crate::budgets::{self, Budgets};
use crate::canon::{
    self, tagged_digest, Canon, CanonError, Entries, MapOrdinals, Out, Reader, Room,
};
use crate::detect::Detector;
use crate::flows::{self, Flows};
use crate::gates::{self, Gates};
use crate::keys::{self, KeyRing};
use crate::state::State;
use sha2::{Digest, Sha256};
use std::io::Write;

/// The first 8 bytes of every version-1 snapshot.
pub const MAGIC: [u8; 8] = *b"GLSNAP\x00\x01";

/// The first 8 bytes of every version-2 snapshot: version 1's parts and the
/// maps' ordinals.
pub const MAGIC_V2: [u8; 8] = *b"GLSNAP\x00\x02";

const HEADER: usize = 8 + 8 + 32;
const PARTS: [&str; 6] = [
    "key ring", "gates", "flows", "budgets", "detector", "ordinals",
];

/// The maps whose ordinals a version-2 snapshot carries, in its order.
const MAPS: usize = 7;
/// Why snapshot bytes are not a usable snapshot.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SnapshotError {
    /// Not a snapshot of a version this build reads.
    #[error("not a govledger snapshot of a version this build reads (bad magic)")]
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
    /// Whether it carries its maps' ordinals (format version 2), so that the
    /// state decoded from it has a state digest v3.
    pub ordinals: bool,
}

/// Encodes `state` and `detector` after `size` entries.
pub fn encode(size: u64, state: &State, detector: &Detector) -> Vec<u8> {
    Encoded::new(size, state, detector).into_bytes()
}

/// A snapshot's five parts, each encoded once into memory (with each map
/// entry's ordinal, for the ordinals part [`Encoded::write`] writes from them):
/// the only step that reads the state. Each map's entries are encoded in the order the map holds
/// them; sorting them into key order, framing, hashing and writing
/// ([`Encoded::write`]) need the state no longer, so a caller that shares the
/// state with writers (`serve`) holds its lock only for [`Encoded::new`], which
/// encodes a large flows part ([`crate::PARALLEL_ENTRIES`]) on a thread of its
/// own beside the other parts. The parts take the snapshot's own length in
/// memory (31 MiB for the state of the fold bench's million entries, a small
/// share of the 400 MiB that state occupies) in pieces of at most 1 MiB, plus
/// 40 bytes per map entry to find and sort it by and to keep its ordinal, so a
/// part grows without copying what it holds.
#[derive(Clone, Debug)]
pub struct Encoded {
    size: u64,
    parts: [Part; 5],
}

impl Encoded {
    /// Encodes `state` and `detector` after `size` entries.
    pub fn new(size: u64, state: &State, detector: &Detector) -> Encoded {
        fn part(encode: impl FnOnce(&mut Canon<Part>)) -> Part {
            let mut c = Canon::to(Part::default());
            encode(&mut c);
            c.into_out()
        }
        let flows = || part(|c| state.flows.encode(c));
        let others = || {
            [
                part(|c| state.ring.encode(c)),
                part(|c| state.gates.encode(c)),
                part(|c| state.budgets.encode(c)),
                part(|c| detector.encode(c)),
            ]
        };
        // The flows (most of a large state) on a thread of their own beside the
        // other parts: `serve` holds the state's lock while this runs.
        let apart = state.flows.entries() >= crate::PARALLEL_ENTRIES;
        let (flows, [ring, gates, budgets, detector]) =
            crate::beside(apart, "snapshot-encode", flows, others);
        Encoded {
            size,
            parts: [ring, gates, flows, budgets, detector],
        }
    }

    /// The log size the snapshot stands at.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The snapshot's length in bytes, framing included.
    pub fn len(&self) -> u64 {
        let parts: u64 = self.parts.iter().map(|p| p.len).sum();
        let ordinals = self
            .ordinal_lists()
            .map_or(0, |lists| 8 + ordinals_len(&lists));
        (HEADER + 5 * 8 + 32) as u64 + parts + ordinals
    }

    /// The state maps' entries, in the parts' order (the state digests'), when
    /// every map's ordinals are known: the snapshot is then of version 2.
    fn ordinal_lists(&self) -> Option<Vec<&Entries>> {
        let lists: Vec<&Entries> = self.parts[..4]
            .iter()
            .flat_map(|p| &p.segments)
            .filter_map(|s| match s {
                Segment::Entries(e) => Some(e),
                Segment::Bytes(_) => None,
            })
            .collect();
        let known = lists.len() == MAPS && lists.iter().all(|e| e.ordinals().is_some());
        known.then_some(lists)
    }

    /// Never: even an empty state's snapshot has its framing.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Writes the framed snapshot (the header with the version-1 state digest,
    /// each part after its length, the checksum) into `w`, each map's entries
    /// first put in key order; returns the bytes written. Of version 2, with
    /// the ordinals part, when every map's ordinals are known; else of
    /// version 1 (a state restored from a version-1 snapshot).
    pub fn write<W: Write>(&mut self, w: &mut W) -> std::io::Result<u64> {
        // A second write finds them sorted: a linear pass.
        self.parts.iter_mut().for_each(Part::sort);
        let tags = [keys::TAG, gates::TAG, flows::TAG, budgets::TAG];
        let [ring, g, f, b] = std::array::from_fn(|i| {
            let mut h = Sha256::new_with_prefix(tags[i]);
            self.parts[i].put_into(&mut h);
            h.finalize().into()
        });
        let mut tee = Tee {
            w,
            sum: Sha256::new(),
            error: None,
        };
        let lists = self.ordinal_lists();
        tee.put(if lists.is_some() { &MAGIC_V2 } else { &MAGIC });
        tee.put(&self.size.to_be_bytes());
        tee.put(&canon::state_digest(ring, g, f, b));
        for part in &self.parts {
            tee.put(&part.len.to_be_bytes());
            part.put_into(&mut tee);
        }
        if let Some(lists) = lists {
            tee.put(&ordinals_len(&lists).to_be_bytes());
            put_ordinals(&lists, &mut tee);
        }
        if let Some(e) = tee.error {
            return Err(e);
        }
        let sum: [u8; 32] = tee.sum.finalize().into();
        w.write_all(&sum)?;
        Ok(self.len())
    }

    /// The framed snapshot, as [`Encoded::write`] writes it.
    pub fn into_bytes(mut self) -> Vec<u8> {
        let mut out = Vec::with_capacity(usize::try_from(self.len()).unwrap_or(0));
        // Writing into a Vec cannot fail.
        let _ = self.write(&mut out);
        out
    }
}

/// The length of the ordinals part of these maps' entries: per map its
/// counter, its entry count and 8 bytes per entry.
fn ordinals_len(lists: &[&Entries]) -> u64 {
    lists.iter().map(|e| 16 + 8 * e.count() as u64).sum()
}

/// Writes the ordinals part (without its length) of these maps' entries, put
/// in key order: per map its counter, its entry count and each entry's
/// ordinal, in big-endian `u64`s, gathered 64 KiB at a time.
fn put_ordinals<O: Out>(lists: &[&Entries], out: &mut O) {
    let mut buf = Vec::with_capacity(64 << 10);
    for e in lists {
        if let Some((counter, ords)) = e.ordinals() {
            buf.extend_from_slice(&counter.to_be_bytes());
            buf.extend_from_slice(&(ords.len() as u64).to_be_bytes());
            for ord in ords {
                if buf.len() + 8 > buf.capacity() {
                    out.put(&buf);
                    buf.clear();
                }
                buf.extend_from_slice(&ord.to_be_bytes());
            }
        }
    }
    out.put(&buf);
}

/// Writes through to `w` and hashes what it wrote; keeps the first error.
struct Tee<'w, W: Write> {
    w: &'w mut W,
    sum: Sha256,
    error: Option<std::io::Error>,
}

impl<W: Write> Out for Tee<'_, W> {
    fn put(&mut self, bytes: &[u8]) {
        if self.error.is_none() {
            self.sum.update(bytes);
            if let Err(e) = self.w.write_all(bytes) {
                self.error = Some(e);
            }
        }
    }
}

/// One encoded part: bytes put as they came, and maps' entries kept as the maps
/// gave them until [`Part::sort`].
#[derive(Clone, Debug, Default)]
struct Part {
    segments: Vec<Segment>,
    len: u64,
}

#[derive(Clone, Debug)]
enum Segment {
    Bytes(Pieces),
    Entries(Entries),
}

impl Out for Part {
    fn put(&mut self, bytes: &[u8]) {
        self.len += bytes.len() as u64;
        if let Some(Segment::Bytes(p)) = self.segments.last_mut() {
            p.put(bytes);
        } else {
            let mut p = Pieces::default();
            p.put(bytes);
            self.segments.push(Segment::Bytes(p));
        }
    }

    fn entries(&mut self, entries: Entries) {
        self.len += entries.byte_len();
        self.segments.push(Segment::Entries(entries));
    }
}

impl Part {
    fn sort(&mut self) {
        for s in &mut self.segments {
            if let Segment::Entries(e) = s {
                e.sort();
            }
        }
    }

    fn put_into<O: Out>(&self, out: &mut O) {
        for s in &self.segments {
            match s {
                Segment::Bytes(p) => p.pieces.iter().for_each(|b| out.put(b)),
                Segment::Entries(e) => e.put_into(out),
            }
        }
    }
}

/// Bytes kept in pieces of at most [`PIECE`] bytes.
#[derive(Clone, Debug, Default)]
struct Pieces {
    pieces: Vec<Vec<u8>>,
}

/// The largest piece of an encoded part's plain bytes (every piece but the
/// last holds exactly this many).
const PIECE: usize = 1 << 20;

impl Out for Pieces {
    fn put(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            match self.pieces.last_mut() {
                Some(p) if p.len() < PIECE => {
                    let take = (PIECE - p.len()).min(bytes.len());
                    p.extend_from_slice(&bytes[..take]);
                    bytes = &bytes[take..];
                }
                // The first piece grows from empty, so a small part stays small.
                Some(_) => self.pieces.push(Vec::with_capacity(PIECE)),
                None => self.pieces.push(Vec::new()),
            }
        }
    }
}

/// Splits a snapshot into its header fields and parts, checking magic, framing,
/// checksum and that the parts hash to the header's digest.
fn split(bytes: &[u8]) -> Result<(Header, Framed<'_>), SnapshotError> {
    let (content, sum) = content(bytes)?;
    // The checksum and the parts' digests each hash nearly every byte: a large
    // snapshot's checksum runs on a thread of its own beside the framing and the
    // digests.
    let apart = content.len() >= PARALLEL_DECODE_BYTES;
    let checksum = || checksum_holds(content, sum);
    let (checksum, framed) = crate::beside(apart, "snapshot-check", checksum, || {
        framed_parts(content).map(Framed::with_digest)
    });
    checked(content, checksum, framed)
}

/// A snapshot's content (the bytes before its checksum) and its checksum, once
/// its magic and its least length are checked.
fn content(bytes: &[u8]) -> Result<(&[u8], &[u8]), SnapshotError> {
    let parts = match bytes.get(..8) {
        Some(m) if m == MAGIC => 5,
        Some(m) if m == MAGIC_V2 => 6,
        _ => return Err(SnapshotError::Magic),
    };
    if bytes.len() < HEADER + parts * 8 + 32 {
        return Err(SnapshotError::Truncated("shorter than the framing"));
    }
    Ok(bytes.split_at(bytes.len() - 32))
}

fn checksum_holds(content: &[u8], sum: &[u8]) -> bool {
    Sha256::digest(content).as_slice() == sum
}

/// The checks' verdict, in their order whichever ran first: a checksum that
/// does not match is the error whatever the framing says, then the framing,
/// then the parts' digest against the header's.
fn checked<'b>(
    content: &[u8],
    checksum: bool,
    framed: Result<Framed<'b>, SnapshotError>,
) -> Result<(Header, Framed<'b>), SnapshotError> {
    if !checksum {
        return Err(SnapshotError::Checksum);
    }
    let framed = framed?;
    let header = Header {
        size: framed.parts.size,
        state_digest: framed.digest,
        ordinals: framed.parts.ordinals.is_some(),
    };
    if header.state_digest != claimed_digest(content) {
        return Err(SnapshotError::Digest);
    }
    Ok((header, framed))
}

/// A snapshot's size, its parts and its maps' ordinals (version 2), as its
/// framing gives them.
struct Parts<'b> {
    size: u64,
    parts: [&'b [u8]; 5],
    ordinals: Option<[MapOrdinals<'b>; MAPS]>,
}

/// [`Parts`], and the state digest (version 1) the parts hash to.
struct Framed<'b> {
    parts: Parts<'b>,
    digest: [u8; 32],
}

impl<'b> Framed<'b> {
    fn with_digest(parts: Parts<'b>) -> Self {
        let digest = parts_digest(&parts.parts);
        Framed { parts, digest }
    }
}

/// The header digest the snapshot claims.
fn claimed_digest(content: &[u8]) -> [u8; 32] {
    content[16..48].try_into().expect("32 bytes")
}

/// The size the snapshot's header claims: the entries folded into it.
fn claimed_size(content: &[u8]) -> u64 {
    u64::from_be_bytes(content[8..16].try_into().expect("8 bytes"))
}

/// The size, the parts and the ordinals of a snapshot's content (the bytes
/// before its checksum; [`content`] has checked its magic), or why they are not
/// framed right: reads the lengths and the ordinals part's framing, hashes
/// nothing.
fn framed_parts(content: &[u8]) -> Result<Parts<'_>, SnapshotError> {
    let size = claimed_size(content);
    let mut rest = &content[HEADER..];
    let mut part = || {
        if rest.len() < 8 {
            return Err(SnapshotError::Truncated("a part's length is missing"));
        }
        let n = u64::from_be_bytes(rest[..8].try_into().expect("8 bytes"));
        rest = &rest[8..];
        let n = usize::try_from(n).ok().filter(|&n| n <= rest.len()).ok_or(
            SnapshotError::Truncated("a part is longer than the snapshot"),
        )?;
        let p;
        (p, rest) = rest.split_at(n);
        Ok(p)
    };
    let mut parts: [&[u8]; 5] = [&[]; 5];
    for p in &mut parts {
        *p = part()?;
    }
    let ordinals = match content[..8] == MAGIC_V2 {
        true => Some(map_ordinals(part()?)?),
        false => None,
    };
    if !rest.is_empty() {
        return Err(SnapshotError::Truncated("bytes after the last part"));
    }
    Ok(Parts {
        size,
        parts,
        ordinals,
    })
}

/// The ordinals part's maps, as its framing gives them: their counters are
/// checked once the parts are read ([`counters_hold`]).
fn map_ordinals(part: &[u8]) -> Result<[MapOrdinals<'_>; MAPS], CanonError> {
    let mut r = Reader::new(PARTS[5], part);
    let mut maps = [MapOrdinals {
        counter: 0,
        list: &[],
        at: 0,
    }; MAPS];
    for m in &mut maps {
        *m = r.map_ordinals()?;
    }
    r.end()?;
    Ok(maps)
}

/// Checks that each map holds no more entries than its counter gave out
/// ordinals, and that all the maps together hold no fewer than their counters
/// less `size` (the entries folded: an entry leaves a map only through an
/// event, the release of a kill switch, one per event), so that the counters a
/// snapshot claims cannot call for larger version-3 indexes than the fold
/// that made it kept, once its size is matched to a signed checkpoint's.
fn counters_hold(maps: &[MapOrdinals<'_>; MAPS], size: u64) -> Result<(), CanonError> {
    let error = |m: &MapOrdinals<'_>, what: String| CanonError {
        part: PARTS[5],
        offset: m.at,
        what,
    };
    let mut removed = 0u64;
    for m in maps {
        let n = (m.list.len() / 8) as u64;
        if n > m.counter {
            return Err(error(
                m,
                format!(
                    "{n} entries, but the counter gives out only {} ordinals",
                    m.counter
                ),
            ));
        }
        removed = removed.saturating_add(m.counter - n);
        if removed > size {
            return Err(error(
                m,
                format!(
                    "the counters are {removed} more than the entries, which only the {size} entries folded could have removed"
                ),
            ));
        }
    }
    Ok(())
}

/// The state digest (version 1) the four state parts hash to.
fn parts_digest(parts: &[&[u8]; 5]) -> [u8; 32] {
    canon::state_digest(
        tagged_digest(keys::TAG, parts[0]),
        tagged_digest(gates::TAG, parts[1]),
        tagged_digest(flows::TAG, parts[2]),
        tagged_digest(budgets::TAG, parts[3]),
    )
}

/// The size and the state digest (version 1) a snapshot's header claims, read
/// without any check but its magic and length: `None` when it has neither. So
/// a caller can turn down a snapshot for what it claims (another size, another
/// digest than a checkpoint signed) before paying for [`open`]'s decode; it
/// must still [`open`] or [`verify`] one before trusting anything in it.
pub fn claimed(bytes: &[u8]) -> Option<(u64, [u8; 32])> {
    let (content, _) = content(bytes).ok()?;
    Some((claimed_size(content), claimed_digest(content)))
}

/// Checks a snapshot's framing, checksum and state digest without decoding the
/// state; the caller compares the digest with the signed checkpoint's.
pub fn verify(bytes: &[u8]) -> Result<Header, SnapshotError> {
    split(bytes).map(|(h, _)| h)
}

/// The same snapshot in format 1, as a build before format 2 wrote it: its
/// ordinals part dropped, its magic and checksum redone (a snapshot of
/// format 1 comes back as it is). For a reader built before format 2, and
/// for tests of what such builds left behind. The snapshot is checked first
/// ([`verify`]); its state read from the result has no version-3 digest.
pub fn to_format_1(bytes: &[u8]) -> Result<Vec<u8>, SnapshotError> {
    let (_, framed) = split(bytes)?;
    if framed.parts.ordinals.is_none() {
        return Ok(bytes.to_vec());
    }
    let parts: usize = framed.parts.parts.iter().map(|p| 8 + p.len()).sum();
    let mut out = Vec::with_capacity(HEADER + parts + 32);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&bytes[8..HEADER + parts]);
    let sum = Sha256::digest(&out);
    out.extend_from_slice(&sum);
    Ok(out)
}

/// The length of a snapshot's content (its bytes before the checksum) from
/// which [`decode`] decodes its flows' part on a thread of its own, and
/// [`verify`] computes its checksum on one: a thread costs tens of
/// microseconds, decoding or hashing this many bytes some milliseconds.
pub const PARALLEL_DECODE_BYTES: usize = 1 << 20;

/// Decodes a snapshot, strictly: [`verify`]'s checks, then every part must be a
/// canonical encoding with nothing left over (the first part in order that is
/// not is the error).
pub fn decode(bytes: &[u8]) -> Result<Snapshot, SnapshotError> {
    open(bytes).map(|(_, s)| s)
}

/// [`verify`] and [`decode`] in one: the header, checked, and the snapshot,
/// decoded, for the cost of [`decode`] alone (a caller that wants both would
/// otherwise check the framing, checksum and digest twice, hashing every byte
/// of the snapshot twice more).
///
/// A large snapshot ([`PARALLEL_DECODE_BYTES`]) is decoded on two threads as
/// soon as its framing is read: one decodes the proposals (most of a large
/// state) and then computes the checksum; the other computes the parts'
/// digest, decodes the other parts, and the tickets from where it finds the
/// proposals end ([`open_for_digest`], which computes no parts' digest, puts
/// the checksum on that other thread instead). A decoder never panics and
/// refuses what is not canonical, so
/// decoding before the checks have passed costs nothing but the time when they
/// fail; the errors are those of [`verify`] first and then the first failing
/// part in order, whichever thread finished first, and the flows are those one
/// decode in order gives (the tickets are decoded again from where the
/// proposals' decode ended, if that is not where they were begun).
pub fn open(bytes: &[u8]) -> Result<(Header, Snapshot), SnapshotError> {
    open_ahead(bytes, 0)
}

/// [`open`], for a state that will fold about `ahead` more entries: its growing
/// maps (proposals, tickets and their id lists, sessions) are decoded with room
/// for their share of those entries ([`Room`]), so that they do not grow while
/// those entries are folded. The result is [`open`]'s, but for the maps'
/// capacity.
pub fn open_ahead(bytes: &[u8], ahead: u64) -> Result<(Header, Snapshot), SnapshotError> {
    open_with(bytes, ahead, true, None)
}

/// [`open_ahead`] for a caller that compares the decoded state's version-2 or
/// version-3 digest ([`State::digest_of`]) with a signed one: that comparison
/// covers every state part, entry by entry, so the parts' version-1 digest is
/// not computed again (a third pass of SHA-256 over the state's bytes, beside
/// the checksum and the entries' own hashes). The header's digest is then
/// returned as the snapshot claims it, unchecked; framing, checksum and every
/// part's strict decoding are checked as by [`open`].
pub fn open_for_digest(bytes: &[u8], ahead: u64) -> Result<(Header, Snapshot), SnapshotError> {
    open_with(bytes, ahead, false, None)
}

/// [`open_ahead`] for a caller that hashed the snapshot's bytes as they were
/// read, as [`open_for_digest_summed`] describes: the checksum is compared
/// with `content_sum`, the header's digest checked against the parts.
pub fn open_ahead_summed(
    bytes: &[u8],
    ahead: u64,
    content_sum: [u8; 32],
) -> Result<(Header, Snapshot), SnapshotError> {
    open_with(bytes, ahead, true, Some(content_sum))
}

/// [`open_for_digest`] for a caller that hashed the snapshot's bytes as they
/// were read ([`ContentSum`] over every byte of `bytes`, in order): its
/// checksum is compared with `content_sum`, not computed again, which takes
/// a pass of SHA-256 over the whole snapshot off the decode (a large one's
/// read runs on one thread, beside which the sum can run on another). With
/// any other `content_sum` than those bytes' own, the checksum fails.
pub fn open_for_digest_summed(
    bytes: &[u8],
    ahead: u64,
    content_sum: [u8; 32],
) -> Result<(Header, Snapshot), SnapshotError> {
    open_with(bytes, ahead, false, Some(content_sum))
}

/// The SHA-256 of a snapshot's content (every byte but its last 32, its
/// checksum's), fed the snapshot's bytes in pieces of any length as they
/// come: its last 32 bytes so far are held back until more come.
#[derive(Clone, Default)]
pub struct ContentSum {
    hasher: Sha256,
    tail: Vec<u8>,
}

impl ContentSum {
    /// Nothing hashed yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The next bytes of the snapshot.
    pub fn update(&mut self, bytes: &[u8]) {
        // Of the held bytes and these, all but the last 32 can be hashed.
        let ready = (self.tail.len() + bytes.len()).saturating_sub(32);
        let from_tail = ready.min(self.tail.len());
        let from_bytes = ready - from_tail;
        self.hasher.update(&self.tail[..from_tail]);
        self.hasher.update(&bytes[..from_bytes]);
        self.tail.drain(..from_tail);
        self.tail.extend_from_slice(&bytes[from_bytes..]);
    }

    /// The SHA-256 of every byte given but the last 32.
    pub fn finish(self) -> [u8; 32] {
        self.hasher.finalize().into()
    }
}

fn open_with(
    bytes: &[u8],
    ahead: u64,
    check_header: bool,
    content_sum: Option<[u8; 32]>,
) -> Result<(Header, Snapshot), SnapshotError> {
    let (content, sum) = content(bytes)?;
    let framed = framed_parts(content);
    let room = Room::new(claimed_size(content), ahead);
    // Each map's ordinals, in the state digests' order (none from version 1).
    let ordinals = framed.as_ref().ok().and_then(|f| f.ordinals);
    let ords = |maps: std::ops::Range<usize>| ordinals.as_ref().map_or(&[][..], |o| &o[maps]);
    fn read<'b, T>(
        name: &'static str,
        bytes: &'b [u8],
        room: Room,
        ords: &[MapOrdinals<'b>],
        f: impl FnOnce(&mut Reader<'b>) -> Result<T, CanonError>,
    ) -> Result<T, CanonError> {
        let mut r = Reader::new(name, bytes).with_room(room).with_ordinals(ords);
        let v = f(&mut r)?;
        r.end()?;
        Ok(v)
    }
    let apart = content.len() >= PARALLEL_DECODE_BYTES;
    let flows_part = framed.as_ref().ok().map(|f| f.parts[2]);
    // The tickets, from where the proposals end.
    let tickets_from = |at: usize| {
        let mut r = Reader::starting_at(PARTS[2], flows_part.unwrap_or_default(), at)
            .with_room(room)
            .with_ordinals(ords(5..6));
        let tickets = Flows::decode_tickets(&mut r)?;
        r.end()?;
        Ok::<_, CanonError>(tickets)
    };
    // The checksum goes with the thread that has less to do: a large state's
    // proposals take longer to decode than the tickets and the other parts,
    // unless the other thread computes the parts' digest too (measured over
    // the 2M-entry bench log's midway state: proposals 105-121 ms, the rest
    // 91-101, the checksum and the parts' digest about 20 each).
    let checksum = || match content_sum {
        Some(given) => given.as_slice() == sum,
        None => checksum_holds(content, sum),
    };
    // The proposals (then the checksum, if the other thread hashes the parts).
    let proposals = || {
        let proposals = flows_part.map(|p| {
            let mut r = Reader::new(PARTS[2], p)
                .with_room(room)
                .with_ordinals(ords(4..5));
            Flows::decode_proposals(&mut r).map(|m| (m, r.offset()))
        });
        (proposals, check_header.then(checksum))
    };
    // The parts' digest (or the checksum) and every other part, and the
    // tickets from where the proposals would end, found by reading over them;
    // judged once the checksum is known.
    let rest = || {
        let sum_here = (!check_header).then(checksum);
        let framed = framed.map(|parts| match check_header {
            true => Framed::with_digest(parts),
            false => Framed {
                parts,
                digest: claimed_digest(content),
            },
        });
        let decoded = framed.as_ref().ok().map(|f| {
            let parts = f.parts.parts;
            let others = (
                read(PARTS[0], parts[0], room, ords(0..1), KeyRing::decode),
                read(PARTS[1], parts[1], room, ords(1..4), Gates::decode),
                read(PARTS[3], parts[3], room, ords(6..7), Budgets::decode),
                read(PARTS[4], parts[4], room, &[], Detector::decode),
            );
            let tickets = apart
                .then(|| Flows::tickets_offset(parts[2]))
                .flatten()
                .map(|at| (at, tickets_from(at)));
            (others, tickets)
        });
        (framed, decoded, sum_here)
    };
    let ((proposals, sum_there), (framed, decoded, sum_here)) =
        crate::beside(apart, "snapshot-decode", proposals, rest);
    let checksum = sum_there.or(sum_here).unwrap_or(false);
    let (header, _) = checked(content, checksum, framed)?;
    // Both decoded, or `checked` would have failed on the framing.
    let unframed = || SnapshotError::Truncated("unframed");
    let ((ring, gates, budgets, detector), tickets) = decoded.ok_or_else(unframed)?;
    let proposals = proposals.ok_or_else(unframed)?;
    // The flows as one decode in order gives them: the proposals' error first,
    // then the tickets from where the proposals' decode ended (those decoded
    // beside it when they began there, else decoded now).
    let flows = proposals.and_then(|(proposals, end)| {
        let tickets = match tickets {
            Some((at, tickets)) if at == end => tickets,
            _ => tickets_from(end),
        };
        tickets.map(|tickets| Flows::from_parts(proposals, tickets))
    });
    let state = State {
        ring: ring?,
        gates: gates?,
        flows: flows?,
        budgets: budgets?,
    };
    let detector = detector?;
    if let Some(maps) = &ordinals {
        counters_hold(maps, header.size)?;
    }
    let snapshot = Snapshot {
        size: header.size,
        state,
        detector,
    };
    Ok((header, snapshot))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// What `Pieces` holds, as one string, checking the pieces' shape on the way:
    /// every piece but the last full, none larger than `PIECE`.
    fn joined(p: &Pieces) -> Vec<u8> {
        let n = p.pieces.len();
        for (i, piece) in p.pieces.iter().enumerate() {
            assert!(piece.len() <= PIECE, "piece {i} holds {}", piece.len());
            if i + 1 < n {
                assert_eq!(piece.len(), PIECE, "piece {i} of {n} is not full");
            }
        }
        p.pieces.concat()
    }

    #[test]
    fn pieces_split_writes_at_the_piece_size() {
        let mut p = Pieces::default();
        let mut want = Vec::new();
        for (i, n) in [0, 1, PIECE - 1, 2, PIECE + 5, 3 * PIECE, 7]
            .into_iter()
            .enumerate()
        {
            let bytes: Vec<u8> = (0..n).map(|j| (i * 31 + j) as u8).collect();
            p.put(&bytes);
            want.extend_from_slice(&bytes);
        }
        assert_eq!(joined(&p), want);
        assert_eq!(p.pieces.len(), want.len().div_ceil(PIECE));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]
        #[test]
        fn pieces_keep_every_byte_in_order(sizes in prop::collection::vec(0usize..600_000, 0..8)) {
            let mut p = Pieces::default();
            let mut want = Vec::new();
            for (i, n) in sizes.into_iter().enumerate() {
                let bytes: Vec<u8> = (0..n).map(|j| (i * 7 + j / 3) as u8).collect();
                p.put(&bytes);
                want.extend_from_slice(&bytes);
            }
            prop_assert_eq!(joined(&p), want);
        }
    }
}
