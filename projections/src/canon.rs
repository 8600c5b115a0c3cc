//! The canonical encoding of the state: what state digests hash and snapshots store.
//!
//! Every projection writes its entries in key order, each field as:
//! - integers: big-endian, fixed width (`u8`, `u32`, `u64`);
//! - public keys: 32 raw bytes;
//! - strings and byte strings: `u64` length, then the bytes;
//! - `Option`: `0`, or `1` then the value;
//! - sequences and maps: `u64` count, then the items;
//! - enums: a one-byte tag, in declaration order from 0, then the variant's fields.
//!
//! A projection's digest is SHA-256 over its domain tag (`"govledger gates v1"`, …)
//! followed by these bytes; a snapshot ([`crate::snapshot`]) stores the same bytes
//! without the tag, so a snapshot can be checked against a signed checkpoint's state
//! digest before anything in it is trusted. [`Reader`] reads them back strictly:
//! keys must be in strictly ascending order, tags in range, identifiers valid, and
//! nothing may be left over, so one state has exactly one encoding.
//!
//! State digest version 1 is [`state_digest`]: SHA-256 of `"govledger state v1"`
//! and the four projection digests (key ring, gates, flows, budgets), in that
//! order. Version 2, which checkpoints carry now ([`crate::State::digest`]), hashes
//! each map entry's bytes on its own ([`crate::digest_map`]). Changing any of this
//! changes checkpoints' state digests: the golden vectors in
//! `projections/tests/digest.rs` freeze both versions.

use sha2::{Digest, Sha256};

/// Where canonical bytes go: a hash or a buffer.
pub trait Out {
    /// Appends `bytes`.
    fn put(&mut self, bytes: &[u8]);

    /// Appends a map's entries in key order. By default they are sorted and put
    /// at once; an output that can wait (a snapshot's parts, encoded while the
    /// state is locked) keeps them as they are and sorts them later.
    fn entries(&mut self, mut entries: Entries) {
        entries.sort();
        entries.put_into(self);
    }
}

/// A map's entries, each its canonical bytes, as the map gave them (in hash
/// order) until [`Entries::sort`] puts them in the order of their keys.
///
/// Entries are kept whole in pieces of about 1 MiB (a piece takes entries until
/// it holds 1 MiB, with room for the last one to overrun it by up to 64 KiB
/// without a copy; a longer one grows that piece once), so the store grows
/// without copying what it holds, and each entry is found by its piece and
/// place. Beside each entry lies the head of
/// its key's order bytes ([`crate::lookup::OrderBytes`]: their first 16 bytes as
/// one integer, zero-padded), which decides nearly every comparison of the sort
/// without reading the entries; two keys that share those 16 bytes are compared
/// in full, read back from the entries' own first fields (`cmp`). Each entry
/// also keeps its ordinal (state digest v3, [`crate::digest_map`]), which a
/// snapshot writes beside the entries in their key order. 40 bytes per entry
/// besides its own.
#[derive(Clone, Debug)]
pub struct Entries {
    pieces: Vec<Vec<u8>>,
    spans: Vec<Span>,
    len: u64,
    cmp: fn(&[u8], &[u8]) -> std::cmp::Ordering,
    /// The map's ordinal counter, when its ordinals are known.
    counter: Option<u64>,
}

/// Where an entry lies, its key's head (as two words, high first: compared
/// as the `u128` they make, with 8-byte alignment) and its ordinal.
#[derive(Clone, Copy, Debug)]
struct Span {
    head: [u64; 2],
    ord: u64,
    piece: u32,
    start: u32,
    end: u32,
}

/// The size of a piece of [`Entries`], and the room beyond it for the entry
/// that crosses it.
const ENTRY_PIECE: usize = 1 << 20;
const ENTRY_SLACK: usize = 64 << 10;

impl Entries {
    /// Room for `count` entries; `cmp` orders two entries' bytes as their keys
    /// order. `counter` is the map's ordinal counter, `None` when its
    /// ordinals are not known (the ordinals pushed are then not written).
    pub fn new(
        cmp: fn(&[u8], &[u8]) -> std::cmp::Ordering,
        count: usize,
        counter: Option<u64>,
    ) -> Self {
        Entries {
            pieces: Vec::new(),
            spans: Vec::with_capacity(count),
            len: 0,
            cmp,
            counter,
        }
    }

    /// Adds the entry that `encode` writes, under a key whose order bytes begin
    /// with `order` (only the first 16 bytes are read), its ordinal `ord`.
    pub fn push(&mut self, order: &[u8], ord: u64, encode: impl FnOnce(&mut Canon<Vec<u8>>)) {
        let piece = match self.pieces.last_mut() {
            // An entry starts in the last piece while that has not reached the
            // piece size; the piece then grows to hold it whole.
            Some(p) if p.len() < ENTRY_PIECE => p,
            _ => {
                self.pieces
                    .push(Vec::with_capacity(ENTRY_PIECE + ENTRY_SLACK));
                self.pieces.last_mut().unwrap_or_else(|| unreachable!())
            }
        };
        let start = piece.len();
        // The piece is lent to the encoder and taken back: no copy.
        let mut c = Canon(std::mem::take(piece));
        encode(&mut c);
        *piece = c.0;
        let end = piece.len();
        self.len += (end - start) as u64;
        // Pieces hold at most 1 MiB plus one entry; an entry of 4 GiB or a
        // piece count past u32 is beyond any state that fits in memory.
        let at = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        let head = crate::lookup::order_head(order);
        self.spans.push(Span {
            head: [(head >> 64) as u64, head as u64],
            ord,
            piece: at(self.pieces.len() - 1),
            start: at(start),
            end: at(end),
        });
    }

    /// Their bytes, all together.
    pub fn byte_len(&self) -> u64 {
        self.len
    }

    /// How many entries.
    pub fn count(&self) -> usize {
        self.spans.len()
    }

    /// The map's ordinal counter and its entries' ordinals in their present
    /// order, when its ordinals are known.
    pub fn ordinals(&self) -> Option<(u64, impl ExactSizeIterator<Item = u64> + '_)> {
        let counter = self.counter?;
        Some((counter, self.spans.iter().map(|s| s.ord)))
    }

    fn get(&self, s: &Span) -> &[u8] {
        self.pieces
            .get(s.piece as usize)
            .and_then(|p| p.get(s.start as usize..s.end as usize))
            .unwrap_or_default()
    }

    /// Puts the entries in key order.
    pub fn sort(&mut self) {
        let mut spans = std::mem::take(&mut self.spans);
        spans.sort_unstable_by(|a, b| {
            a.head
                .cmp(&b.head)
                .then_with(|| (self.cmp)(self.get(a), self.get(b)))
        });
        self.spans = spans;
    }

    /// Writes the entries, in their present order, into `out`.
    pub fn put_into<O: Out + ?Sized>(&self, out: &mut O) {
        for span in &self.spans {
            out.put(self.get(span));
        }
    }
}

impl Out for Sha256 {
    fn put(&mut self, bytes: &[u8]) {
        self.update(bytes);
    }
}

impl Out for Vec<u8> {
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

impl Out for &mut Vec<u8> {
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

/// A writer of canonically encoded fields: into a SHA-256 ([`Canon::new`]) or a
/// buffer ([`Canon::buffer`]).
pub struct Canon<O: Out = Sha256>(O);

impl Canon<Sha256> {
    /// A hash starting with the domain tag `tag`.
    pub fn new(tag: &str) -> Self {
        let mut h = Sha256::new();
        h.update(tag.as_bytes());
        Canon(h)
    }

    /// The digest.
    pub fn finish(self) -> [u8; 32] {
        self.0.finalize().into()
    }
}

impl Canon<Vec<u8>> {
    /// An empty buffer (no tag).
    pub fn buffer() -> Self {
        Canon(Vec::new())
    }

    /// The bytes written.
    pub fn into_bytes(self) -> Vec<u8> {
        self.0
    }
}

impl<O: Out> Canon<O> {
    /// A writer into `out`.
    pub fn to(out: O) -> Self {
        Canon(out)
    }

    /// The output it wrote into.
    pub fn into_out(self) -> O {
        self.0
    }

    /// A map's entries, to go out in key order ([`Out::entries`]).
    pub fn entries(&mut self, entries: Entries) -> &mut Self {
        self.0.entries(entries);
        self
    }

    /// Raw bytes, no length prefix (framing, fixed-size fields).
    pub fn raw(&mut self, b: &[u8]) -> &mut Self {
        self.0.put(b);
        self
    }

    /// A byte (tags, flags, small enums).
    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.0.put(&[v]);
        self
    }

    /// A `u32`.
    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.0.put(&v.to_be_bytes());
        self
    }

    /// A `u64`.
    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.0.put(&v.to_be_bytes());
        self
    }

    /// 32 raw bytes (a public key), no length prefix.
    pub fn raw32(&mut self, b: &[u8; 32]) -> &mut Self {
        self.0.put(b);
        self
    }

    /// A length-prefixed string.
    pub fn str(&mut self, s: &str) -> &mut Self {
        self.bytes(s.as_bytes())
    }

    /// Length-prefixed bytes.
    pub fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.u64(b.len() as u64);
        self.0.put(b);
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

/// SHA-256 of `tag` followed by `bytes`: a projection's digest from its encoding.
pub fn tagged_digest(tag: &str, bytes: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(tag.as_bytes());
    h.update(bytes);
    h.finalize().into()
}

/// Why canonical bytes could not be read back.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{part} at byte {offset}: {what}")]
pub struct CanonError {
    /// The part being read (`gates`, `flows`, …).
    pub part: &'static str,
    /// Offset within the part.
    pub offset: usize,
    /// What was wrong.
    pub what: String,
}

/// Room a decoder reserves in a growing map beyond the entries it reads, for a
/// state that is about to fold more entries (a replay from a snapshot): the
/// map's entries per entry folded so far, times the entries to come, so that
/// the map does not grow (rehashing every entry it holds, on the one thread that
/// folds, while the pipeline's readers wait) on the way. At most twice the
/// count it is judged by (a map's own entries; for the tickets' id lists, the
/// tickets): a guess never more than doubles what a decode reserves, and a map
/// that outgrows it grows as before. Only the capacity differs; the state and
/// its digest are the same whatever the room.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Room {
    folded: u64,
    ahead: u64,
}

impl Room {
    /// No room beyond the entries read.
    pub(crate) const NONE: Room = Room {
        folded: 0,
        ahead: 0,
    };

    /// Room for a state of `folded` entries that will fold `ahead` more.
    pub(crate) fn new(folded: u64, ahead: u64) -> Self {
        Room { folded, ahead }
    }

    /// The capacity to reserve for a map of `n` entries: `n` and its share of
    /// the entries ahead, at most `2 × n`.
    pub(crate) fn for_entries(self, n: usize) -> usize {
        if self.folded == 0 {
            return n;
        }
        let ahead = u128::from(self.ahead.min(self.folded));
        let extra = n as u128 * ahead / u128::from(self.folded);
        n.saturating_add(usize::try_from(extra).unwrap_or(n))
    }
}

/// One map's ordinals as a version-2 snapshot carries them
/// ([`crate::snapshot`]): the map's ordinal counter, and its entries' ordinals
/// in key order, 8 bytes each, big-endian. The snapshot's reader checks that
/// the counter is at least the number of ordinals; the map's decoder reads one
/// per entry beside the entries ([`ReadOrdinals`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct MapOrdinals<'a> {
    pub(crate) counter: u64,
    pub(crate) list: &'a [u8],
    /// Where its counter lies in the ordinals part, for errors.
    pub(crate) at: usize,
}

/// The ordinals of the map a decoder reads, taken from its [`Reader`]
/// ([`Reader::ordinals`]): none from a version-1 snapshot (or a part read on
/// its own), whose maps then forget theirs
/// ([`crate::digest_map::DigestMap::read_counter`]).
#[derive(Debug)]
pub struct ReadOrdinals<'a>(Option<MapOrdinals<'a>>);

impl<'a> ReadOrdinals<'a> {
    /// The map's ordinal counter, when known.
    pub fn counter(&self) -> Option<u64> {
        self.0.map(|m| m.counter)
    }

    /// The next entry's ordinal (`None` when the ordinals are not known); an
    /// error when there are more entries than ordinals, or when it is not
    /// below the counter. `r` names the error's place: the entry just read.
    #[inline]
    pub fn next(&mut self, r: &Reader<'_>) -> Result<Option<u64>, CanonError> {
        let Some(m) = &mut self.0 else {
            return Ok(None);
        };
        let Some((ord, rest)) = m.list.split_first_chunk::<8>() else {
            return Err(r.error("more entries than the snapshot has ordinals for"));
        };
        let ord = u64::from_be_bytes(*ord);
        if ord >= m.counter {
            return Err(r.error(format!(
                "ordinal {ord} is not below the map's counter {}",
                m.counter
            )));
        }
        m.list = rest;
        Ok(Some(ord))
    }

    /// An error when ordinals are left over: fewer entries than ordinals.
    pub fn end(self, r: &Reader<'_>) -> Result<(), CanonError> {
        match self.0 {
            Some(m) if !m.list.is_empty() => {
                Err(r.error("fewer entries than the snapshot has ordinals for"))
            }
            _ => Ok(()),
        }
    }
}

/// A strict reader of canonical bytes.
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    part: &'static str,
    room: Room,
    /// The ordinals of the maps still to be read, the next one last.
    ords: Vec<MapOrdinals<'a>>,
}

impl<'a> Reader<'a> {
    /// Reads `buf`, the encoding of `part` (named in errors).
    pub fn new(part: &'static str, buf: &'a [u8]) -> Self {
        Reader {
            buf,
            pos: 0,
            part,
            room: Room::NONE,
            ords: Vec::new(),
        }
    }

    /// This reader, its growing maps given `room` ([`Reader::room`]).
    pub(crate) fn with_room(mut self, room: Room) -> Self {
        self.room = room;
        self
    }

    /// This reader, the maps it reads given these ordinals, in the order the
    /// maps are read ([`Reader::ordinals`]).
    pub(crate) fn with_ordinals(mut self, ords: &[MapOrdinals<'a>]) -> Self {
        self.ords = ords.iter().rev().copied().collect();
        self
    }

    /// One map's ordinals from a snapshot's ordinals part: its counter, its
    /// entry count and that many ordinals (each checked by the map's decoder,
    /// [`ReadOrdinals::next`], the counters by the snapshot's reader once the
    /// parts are read). An error when the ordinals run past the end.
    pub(crate) fn map_ordinals(&mut self) -> Result<MapOrdinals<'a>, CanonError> {
        let at = self.pos;
        let counter = self.u64()?;
        let n = self.u64()?;
        let len = usize::try_from(n)
            .ok()
            .and_then(|n| n.checked_mul(8))
            .ok_or_else(|| self.error("the ordinals' length does not fit"))?;
        let list = self.take(len)?;
        Ok(MapOrdinals { counter, list, at })
    }

    /// The ordinals of the next map to be read: a map's decoder asks once,
    /// before its entries. None when the reader was given none
    /// ([`Reader::with_ordinals`]).
    pub fn ordinals(&mut self) -> ReadOrdinals<'a> {
        ReadOrdinals(self.ords.pop())
    }

    /// The capacity a decoder reserves for a growing map of `n` entries read
    /// ([`Room::for_entries`]; `n` itself unless given room).
    pub(crate) fn room(&self, n: usize) -> usize {
        self.room.for_entries(n)
    }

    /// An error at the current offset.
    pub fn error(&self, what: impl Into<String>) -> CanonError {
        CanonError {
            part: self.part,
            offset: self.pos,
            what: what.into(),
        }
    }

    // The reads below are small and called for every field of every entry of a
    // snapshot: inlined into the decoders, with their errors built out of line
    // (`short`), a restore spends less time in calls (docs/BENCHMARKS.md, stop 32).
    #[inline]
    fn take(&mut self, n: usize) -> Result<&'a [u8], CanonError> {
        if self.buf.len() - self.pos < n {
            return Err(self.short(n));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    /// The error of a read of `n` bytes past the end.
    #[cold]
    #[inline(never)]
    fn short(&self, n: usize) -> CanonError {
        self.error(format!(
            "needs {n} more bytes, {} left",
            self.buf.len() - self.pos
        ))
    }

    /// Reads `buf` from byte `pos` on (at most its length), as if the bytes
    /// before had been read: offsets in errors count from the start of `buf`.
    pub fn starting_at(part: &'static str, buf: &'a [u8], pos: usize) -> Self {
        Reader {
            buf,
            pos: pos.min(buf.len()),
            part,
            room: Room::NONE,
            ords: Vec::new(),
        }
    }

    /// How many bytes have been read: a mark for [`Reader::since`].
    pub fn offset(&self) -> usize {
        self.pos
    }

    /// The bytes read from `mark` (an earlier [`Reader::offset`]) to here: a map
    /// entry's canonical bytes, once it is read, whose hash is its entry hash
    /// ([`crate::digest_map::DigestMap::insert_read`]).
    pub fn since(&self, mark: usize) -> &'a [u8] {
        self.buf.get(mark..self.pos).unwrap_or_default()
    }

    /// A byte.
    #[inline]
    pub fn u8(&mut self) -> Result<u8, CanonError> {
        Ok(self.take(1)?[0])
    }

    /// A big-endian `u32`.
    #[inline]
    pub fn u32(&mut self) -> Result<u32, CanonError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes(b.try_into().expect("4 bytes")))
    }

    /// A big-endian `u64`.
    #[inline]
    pub fn u64(&mut self) -> Result<u64, CanonError> {
        let b = self.take(8)?;
        Ok(u64::from_be_bytes(b.try_into().expect("8 bytes")))
    }

    /// 32 raw bytes.
    #[inline]
    pub fn raw32(&mut self) -> Result<[u8; 32], CanonError> {
        Ok(self.take(32)?.try_into().expect("32 bytes"))
    }

    /// Length-prefixed bytes.
    #[inline]
    pub fn bytes(&mut self) -> Result<&'a [u8], CanonError> {
        let n = self.u64()?;
        let n = usize::try_from(n).map_err(|_| self.error("length does not fit"))?;
        self.take(n)
    }

    /// A length-prefixed UTF-8 string.
    #[inline]
    pub fn str(&mut self) -> Result<String, CanonError> {
        self.str_ref().map(str::to_string)
    }

    /// A length-prefixed UTF-8 string, borrowed from the bytes read: a key
    /// checked for order against the one before it without a copy kept for that.
    #[inline]
    pub fn str_ref(&mut self) -> Result<&'a str, CanonError> {
        let at = self.pos;
        let b = self.bytes()?;
        std::str::from_utf8(b).map_err(|_| CanonError {
            part: self.part,
            offset: at,
            what: "string is not UTF-8".into(),
        })
    }

    /// A flag byte: 0 or 1.
    #[inline]
    pub fn flag(&mut self) -> Result<bool, CanonError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            t => Err(self.error(format!("flag {t} is neither 0 nor 1"))),
        }
    }

    /// An optional string.
    pub fn opt_str(&mut self) -> Result<Option<String>, CanonError> {
        Ok(if self.flag()? {
            Some(self.str()?)
        } else {
            None
        })
    }

    /// An optional `u64`.
    pub fn opt_u64(&mut self) -> Result<Option<u64>, CanonError> {
        Ok(if self.flag()? {
            Some(self.u64()?)
        } else {
            None
        })
    }

    /// An optional `u32`.
    pub fn opt_u32(&mut self) -> Result<Option<u32>, CanonError> {
        Ok(if self.flag()? {
            Some(self.u32()?)
        } else {
            None
        })
    }

    /// A count of items, each at least `min_item` bytes long: bounded by what is
    /// left, so a corrupt count cannot make the reader allocate.
    pub fn count(&mut self, min_item: usize) -> Result<usize, CanonError> {
        let n = self.u64()?;
        let left = (self.buf.len() - self.pos) as u64;
        if n.saturating_mul(min_item.max(1) as u64) > left {
            return Err(self.error(format!("count {n} is more than the bytes left allow")));
        }
        Ok(n as usize)
    }

    /// A tag below `n`.
    pub fn tag(&mut self, n: u8, what: &str) -> Result<u8, CanonError> {
        let t = self.u8()?;
        if t >= n {
            return Err(self.error(format!("{what} tag {t} is out of range")));
        }
        Ok(t)
    }

    /// Checks that `key` sorts strictly after `prev` (canonical map order).
    pub fn ascending<K: Ord>(&self, prev: Option<&K>, key: &K) -> Result<(), CanonError> {
        if prev.is_some_and(|p| p >= key) {
            return Err(self.error("keys are not in strictly ascending order"));
        }
        Ok(())
    }

    /// Checks that every byte was read.
    pub fn end(&self) -> Result<(), CanonError> {
        if self.pos != self.buf.len() {
            return Err(self.error(format!("{} bytes left over", self.buf.len() - self.pos)));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::{Reader, Room};

    #[test]
    fn a_read_past_the_end_names_the_part_the_offset_and_the_bytes_missing() {
        let mut r = Reader::new("flows", &[1, 0, 0]);
        assert_eq!(r.u8(), Ok(1));
        let e = r.u64().unwrap_err();
        assert_eq!((e.part, e.offset), ("flows", 1));
        assert_eq!(e.what, "needs 8 more bytes, 2 left");
        // A failed read reads nothing: what is left can still be read.
        assert_eq!(r.offset(), 1);
        // A length prefix longer than what follows it.
        let mut r = Reader::new("gates", &[0, 0, 0, 0, 0, 0, 0, 5, b'a', b'b']);
        let e = r.bytes().unwrap_err();
        assert_eq!(
            (e.offset, e.what.as_str()),
            (8, "needs 5 more bytes, 2 left")
        );
    }

    #[test]
    fn room_is_a_maps_share_of_the_entries_ahead_at_most_as_many_again() {
        // No room without entries ahead, or without any folded to judge by.
        assert_eq!(Room::NONE.for_entries(1_000), 1_000);
        assert_eq!(Room::new(5_000, 0).for_entries(1_000), 1_000);
        assert_eq!(Room::new(0, 5_000).for_entries(1_000), 1_000);
        // 1,000 entries in a state of 5,000 folded, 2,500 more to come: 500 more.
        assert_eq!(Room::new(5_000, 2_500).for_entries(1_000), 1_500);
        // Never more than as many again, however far ahead.
        assert_eq!(Room::new(5_000, 5_000).for_entries(1_000), 2_000);
        assert_eq!(Room::new(5_000, u64::MAX).for_entries(1_000), 2_000);
        assert_eq!(Room::new(1, u64::MAX).for_entries(usize::MAX), usize::MAX);
        assert_eq!(Room::new(u64::MAX, u64::MAX).for_entries(0), 0);
    }
}
