//! A map that keeps its own digest up to date: the maps behind state digests v2
//! and v3.
//!
//! # The digest of a map (state digest v2)
//! - Each entry's hash is SHA-256 of the entry's canonical bytes: its key and value
//!   exactly as the map's part of a snapshot writes them ([`crate::canon`]).
//! - The map has `B` buckets, `B` the smallest power of two with `16 × B ≥ n` for
//!   `n` entries (so 1 bucket up to 16 entries). An entry hash falls in the bucket
//!   numbered by its first `log2 B` bits, read big-endian.
//! - A bucket's string is its entry hashes in ascending byte order, concatenated
//!   (an empty bucket is the empty string).
//! - The map's root is the RFC 6962 Merkle tree hash of the `B` bucket strings, in
//!   bucket order: leaf `SHA-256(0x00 ‖ string)`, node `SHA-256(0x01 ‖ left ‖
//!   right)`; with one bucket, the root is that bucket's leaf hash.
//!
//! The root depends only on the set of entries, never on the order they were made
//! in (nor on the hash map's order the entries are kept in), so a fold and a
//! snapshot of the same state agree. It is kept up to date per
//! change: a mutation marks its entry stale (the map remembers which), and
//! [`DigestMap::root`] rehashes only stale entries, the buckets they left or joined
//! and those buckets' paths to the root. A checkpoint therefore costs in proportion
//! to what changed since the last one, not to the size of the state. When `n`
//! crosses a power of two the buckets are redrawn from the entry hashes already
//! known (no entry is encoded again).
//!
//! # State digest v3, what checkpoints sign
//! Nearly every entry a checkpoint hashes is new, and v2 puts each new hash in
//! a random bucket: each costs a bucket's rehash and a few tree nodes beside its
//! own hash (`docs/DESIGN.md`, "State digest v3"). Version 3 buckets entries by
//! the order they were added instead:
//! - Each entry has an ordinal: how many entries had been added to the map
//!   before it (an entry changed keeps its ordinal; one removed and added again
//!   gets a new one). The map's counter `next` is how many were ever added.
//!   Entries present before any event (a key ring's trust roots, numbered by
//!   `State::new`) are numbered in key order
//!   ([`DigestMap::renumber_in_key_order`]), so the order a trust file lists
//!   them in does not matter.
//! - Bucket `j` (for `j` below `ceil(next / 16)`) holds the entries whose
//!   ordinals lie in `16j..16j + 16`; its string is their entry hashes (as in
//!   v2) in ordinal order, the empty string when none is left.
//! - The map's root is the RFC 6962 Merkle tree hash of the bucket strings in
//!   bucket order (`SHA-256("")` for none); [`DigestMap::root_v3`] returns it
//!   with the entry count and `next`.
//!
//! New entries fill the last buckets, so a checkpoint rehashes those and the
//! right edge of the tree. Ordinals come from the fold, which is deterministic,
//! and snapshots of format version 2 carry them ([`crate::snapshot`]): a map
//! read from one ([`DigestMap::read_counter`], [`DigestMap::insert_read`])
//! takes each entry's ordinal and the counter from it. A map read from a
//! version-1 snapshot has no v3 root, nor does one read with two entries of
//! one ordinal (which no fold makes).

use crate::canon::{Canon, Entries, Out};
use crate::lookup::{order_head, EncodedKey, OrderBytes};
use hashbrown::hash_table::{Entry, HashTable, VacantEntry};
use sha2::{Digest, Sha256};
use std::borrow::Borrow;
use std::fmt;
use std::hash::{BuildHasher, Hash as StdHash, RandomState};

/// A SHA-256 digest.
pub type Hash = [u8; 32];

/// A map's part of state digest v3: its entry count, its ordinal counter and
/// its version-3 root.
pub type V3Root = (u64, u64, Hash);

/// Entries per bucket before the bucket count doubles.
const PER_BUCKET: usize = 16;

/// One entry of a [`DigestMap`]: its key, the key's hash as the map's hasher
/// makes it, its value, and its entry hash.
#[derive(Clone)]
struct Slot<K, V> {
    /// `hash_one(key)`, kept: the table grows without hashing a key again, a
    /// lookup compares this before the key, and a stale entry is found again by
    /// it ([`Stale`]).
    key_hash: u64,
    key: K,
    value: V,
    /// The entry hash the indexes hold for it, unless stale (listed in
    /// `stale`, or `stale.all`).
    hash: Hash,
    /// Its ordinal (state digest v3, [the module docs](self)), and in the top
    /// bit ([`STALE`]) whether `hash` is stale: the state's slots are no larger
    /// than when they had no ordinal (where the key's and the value's sizes are
    /// multiples of 8, as every state map's are: an `Option` hash then left 7
    /// bytes of padding).
    ord: u64,
}

/// The bit of [`Slot::ord`] that says the slot's hash is stale.
const STALE: u64 = 1 << 63;

impl<K, V> Slot<K, V> {
    /// A new slot, its hash stale.
    fn new(key_hash: u64, key: K, value: V, ord: u64) -> Self {
        Slot {
            key_hash,
            key,
            value,
            hash: [0; 32],
            ord: ord | STALE,
        }
    }

    /// Its ordinal.
    fn ord(&self) -> u64 {
        self.ord & !STALE
    }

    /// Its hash, unless stale.
    fn hash(&self) -> Option<Hash> {
        (self.ord & STALE == 0).then_some(self.hash)
    }

    /// Its hash, unless stale; stale from now on.
    fn take_hash(&mut self) -> Option<Hash> {
        let h = self.hash();
        self.ord |= STALE;
        h
    }

    /// Sets its hash, no longer stale.
    fn set_hash(&mut self, h: Hash) {
        self.hash = h;
        self.ord &= !STALE;
    }
}

/// A map that maintains the digest described in [the module docs](self).
///
/// Entries are found by a hash table: a fold looks entries up by key several times per
/// event and never by range, and a hashed lookup reads a few cache lines (the
/// table's control bytes, the entry's place, the entry) where an ordered map's
/// search reads a key at every level. Whatever needs the
/// key order ([`DigestMap::iter`]: snapshots, views) sorts the entries when it
/// asks. Every way to change an entry ([`DigestMap::get_mut`],
/// [`DigestMap::insert`], [`DigestMap::remove`], …) marks it, so the digest can
/// never miss a change.
///
/// Keys are hashed with `S`, by default std's `RandomState` (SipHash with a key
/// drawn per map, as std's `HashMap`: no one can choose keys that collide). The
/// table is hashbrown's `HashTable`, the table behind std's `HashMap`, used
/// directly so that each entry keeps its key's hash: the table then grows
/// without hashing any key again, and a stale entry is found again at the next
/// root by that hash alone, with no copy of its key kept in the meantime.
///
/// The table holds each entry's place in a vector of entries, not the entry:
/// a table is kept at most seven-eighths full and a restored state's tables
/// are sized for the entries its fold will add (`canon::Room`), so
/// entries of 160-250 bytes held in the table took two to three times their
/// own size, all of it touched (a 2M-entry log's midway state: 325 MB
/// resident after its restore, 189 MB with the entries apart; in a process
/// that restores once, every fresh page costs a fault). The vector's unused
/// room is never touched, a decoder's entries lie in key order one after
/// another, and walks over every entry (a snapshot's encoding, the first
/// version-3 root) read them in memory order. A removal moves the last entry
/// into the removed one's place.
#[derive(Clone)]
pub struct DigestMap<K, V, S = RandomState> {
    /// Where each entry stands in `slots`, found by its key's hash.
    table: HashTable<usize>,
    /// The entries, one after another: in the order they were added (a
    /// decoder's: key order), but that the last takes a removed one's place.
    slots: Vec<Slot<K, V>>,
    hasher: S,
    /// Which entries went stale since the last root.
    stale: Stale,
    /// Hashes of entries that changed or left since the last root.
    gone: Vec<Hash>,
    /// The version-2 index, while kept ([`DigestMap::root`]).
    index: Index,
    /// Whether `index` is kept up to date: dropped by a version-3 root when
    /// no version-2 root was asked since the last one, built again by the
    /// next version-2 root.
    v2_kept: bool,
    /// Whether a version-2 root was asked since the last version-3 root.
    v2_asked: bool,
    /// How many entries were ever added: the next entry's ordinal.
    next_ord: u64,
    /// Whether the ordinals are the fold's, and the version-3 index once kept.
    v3: Ordinals,
}

/// What a [`DigestMap`] has of state digest v3.
#[derive(Clone, Debug, Default)]
enum Ordinals {
    /// The fold's ordinals; no index until the first [`DigestMap::root_v3`].
    #[default]
    Known,
    /// The fold's ordinals, and the index kept up to date from then on.
    Kept(OrdIndex),
    /// Not the fold's: the map was read from a snapshot that does not carry
    /// them ([`DigestMap::forget_ordinals`]), or that gave two entries one.
    Unknown,
}

impl<K, V, S: Default> Default for DigestMap<K, V, S> {
    fn default() -> Self {
        DigestMap {
            table: HashTable::new(),
            slots: Vec::new(),
            hasher: S::default(),
            stale: Stale::default(),
            gone: Vec::new(),
            index: Index::default(),
            v2_kept: true,
            v2_asked: false,
            next_ord: 0,
            v3: Ordinals::Known,
        }
    }
}

impl<K: StdHash + Eq, V: PartialEq, S: BuildHasher> PartialEq for DigestMap<K, V, S> {
    /// Equal entries; the digest caches and the ordinals do not take part.
    fn eq(&self, other: &Self) -> bool {
        self.slots.len() == other.slots.len()
            && self
                .slots
                .iter()
                .all(|a| other.slot(&a.key).is_some_and(|b| a.value == b.value))
    }
}

impl<K: StdHash + Eq, V: Eq, S: BuildHasher> Eq for DigestMap<K, V, S> {}

impl<K: OrderBytes + fmt::Debug, V: fmt::Debug, S> fmt::Debug for DigestMap<K, V, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(sorted(&self.slots)).finish()
    }
}

/// The entries of `slots` in key order.
///
/// Sorted by the keys' [`OrderBytes`], written one after another into one
/// buffer, and compared first by their first 32 bytes as two integers held
/// beside each entry (bytes past a key's end read as zero, which can tie two
/// keys but never reverse them; ties compare the whole bytes). The keys' own
/// strings lie wherever they were allocated, and a sort that compared them in
/// place missed the cache at nearly every comparison.
fn sorted<K: OrderBytes, V>(
    slots: &[Slot<K, V>],
) -> impl ExactSizeIterator<Item = (&K, &V)> + DoubleEndedIterator {
    let mut bytes = Vec::with_capacity(slots.len() * 24);
    let mut all: Vec<([u128; 2], usize, usize, &K, &V)> = Vec::with_capacity(slots.len());
    for s in slots {
        let start = bytes.len();
        s.key.order_bytes(&mut bytes);
        let key = &bytes[start..];
        let words = [
            order_head(key),
            order_head(key.get(16..).unwrap_or_default()),
        ];
        all.push((words, start, bytes.len(), &s.key, &s.value));
    }
    all.sort_unstable_by(|a, b| {
        a.0.cmp(&b.0)
            .then_with(|| bytes[a.1..a.2].cmp(&bytes[b.1..b.2]))
    });
    all.into_iter().map(|(_, _, _, k, v)| (k, v))
}

/// Whether the slot at `i` of `slots` holds `key`, whose hash is `h`: the
/// stored hash first, the key only when the hashes agree.
fn holds<'a, K: Borrow<Q>, V, Q: Eq + ?Sized>(
    slots: &'a [Slot<K, V>],
    h: u64,
    key: &'a Q,
) -> impl Fn(&usize) -> bool + 'a {
    move |&i| slots[i].key_hash == h && slots[i].key.borrow() == key
}

/// The entry of `key` (hashed `h`) in `table`, found or to add; the table grows
/// by the hashes its slots keep.
fn entry<'t, K: Eq, V>(
    table: &'t mut HashTable<usize>,
    slots: &[Slot<K, V>],
    h: u64,
    key: &K,
) -> Entry<'t, usize> {
    table.entry(h, holds(slots, h, key), |&i| slots[i].key_hash)
}

/// Adds `slot` at the end of `slots` and its place at `vacant`, the one way
/// an entry is added: the table and the vector change together. Its place.
fn place<K, V>(
    vacant: VacantEntry<'_, usize>,
    slots: &mut Vec<Slot<K, V>>,
    slot: Slot<K, V>,
) -> usize {
    let at = slots.len();
    vacant.insert(at);
    slots.push(slot);
    at
}

impl<K: StdHash + Eq, V, S: BuildHasher> DigestMap<K, V, S> {
    /// The slot under `key`.
    fn slot<Q>(&self, key: &Q) -> Option<&Slot<K, V>>
    where
        K: Borrow<Q>,
        Q: StdHash + Eq + ?Sized,
    {
        let h = self.hasher.hash_one(key);
        let i = *self.table.find(h, holds(&self.slots, h, key))?;
        Some(&self.slots[i])
    }
}

impl<K: Ord + StdHash + Clone + OrderBytes, V, S: BuildHasher + Default> DigestMap<K, V, S> {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether it has no entries.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The value under `key`.
    pub fn get<Q>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: StdHash + Eq + ?Sized,
    {
        self.slot(key).map(|s| &s.value)
    }

    /// The key and value under `key`.
    pub fn get_key_value<Q>(&self, key: &Q) -> Option<(&K, &V)>
    where
        K: Borrow<Q>,
        Q: StdHash + Eq + ?Sized,
    {
        self.slot(key).map(|s| (&s.key, &s.value))
    }

    /// Whether `key` has an entry.
    pub fn contains_key<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: StdHash + Eq + ?Sized,
    {
        self.slot(key).is_some()
    }

    /// Entries in key order (sorted for each call: `O(n log n)`).
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (&K, &V)> + ExactSizeIterator {
        sorted(&self.slots)
    }

    /// At most how many entries [`DigestMap::root`] would hash or place now: the
    /// entries listed as changed since the last root (some may be gone or
    /// listed twice), or every entry once more changed than the map holds, and
    /// the entries read with their hashes ([`DigestMap::insert_read`]) still to
    /// be put in their buckets. A measure of the work ahead, not a count of it.
    pub fn pending(&self) -> usize {
        if !self.v2_kept {
            // Built again from every entry's hash.
            return self.slots.len();
        }
        self.stale() + self.index.pending.len()
    }

    /// [`DigestMap::pending`] for [`DigestMap::root_v3`]: the entries to hash,
    /// or every entry when its first call builds the version-3 index.
    pub fn pending_v3(&self) -> usize {
        match self.v3 {
            Ordinals::Known => self.slots.len(),
            Ordinals::Kept(_) => self.stale(),
            Ordinals::Unknown => 0,
        }
    }

    /// At most how many entries went stale since the last root.
    fn stale(&self) -> usize {
        if self.stale.all {
            self.slots.len()
        } else {
            self.stale.keys.len()
        }
    }

    /// Makes room for `additional` more entries (a decoder that knows the count
    /// spares the map its growth: each doubling of the entries' vector moves
    /// every entry, each of the table rehashes every place).
    pub fn reserve(&mut self, additional: usize) {
        let slots = &self.slots;
        self.table.reserve(additional, |&i| slots[i].key_hash);
        // As much room as the table has (at least `additional`, rounded up
        // as its buckets are): the entries' vector then grows no sooner than
        // the table, and its room costs no memory until it is used, where a
        // vector that filled up first was copied whole.
        let room = self.table.capacity().saturating_sub(self.slots.len());
        self.slots.reserve(room);
    }

    /// How many entries the map holds room for without growing.
    pub fn capacity(&self) -> usize {
        self.table.capacity().min(self.slots.capacity())
    }

    /// Writes the entry count, then every entry's canonical bytes (`encode`,
    /// the map's own encoder as [`DigestMap::root`] takes it) in key order. The
    /// entries are encoded in the order the map's vector holds them, one after
    /// another in memory, and put in key order by `c`'s output when it chooses
    /// ([`crate::canon::Out::entries`]): a snapshot sorts them after it lets go
    /// of the state. Each entry's ordinal and the map's counter go with them
    /// (unless the ordinals are not known), for a snapshot to write.
    pub fn encode_entries<O: Out>(
        &self,
        c: &mut Canon<O>,
        mut encode: impl FnMut(&mut Canon<Vec<u8>>, &K, &V),
    ) where
        K: EncodedKey,
    {
        c.u64(self.slots.len() as u64);
        let counter = match self.v3 {
            Ordinals::Unknown => None,
            _ => Some(self.next_ord),
        };
        let mut entries = Entries::new(K::cmp_encoded, self.slots.len(), counter);
        let mut order = Vec::new();
        for s in &self.slots {
            order.clear();
            s.key.order_bytes(&mut order);
            entries.push(&order, s.ord(), |c| encode(c, &s.key, &s.value));
        }
        c.entries(entries);
    }

    /// The entry with the least key: one pass, no sort.
    pub fn first(&self) -> Option<(&K, &V)> {
        self.slots
            .iter()
            .min_by(|a, b| a.key.cmp(&b.key))
            .map(|s| (&s.key, &s.value))
    }

    /// The value under `key`, to change: marks the entry stale.
    pub fn get_mut<Q>(&mut self, key: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
        Q: StdHash + Eq + ?Sized,
    {
        self.get_mut_if(key, |_| true)
    }

    /// The value under `key`, to change, if `want` says so of it as it stands:
    /// only then is the entry marked stale (one it declines keeps its hash).
    pub fn get_mut_if<Q>(&mut self, key: &Q, want: impl FnOnce(&V) -> bool) -> Option<&mut V>
    where
        K: Borrow<Q>,
        Q: StdHash + Eq + ?Sized,
    {
        let len = self.slots.len();
        let h = self.hasher.hash_one(key);
        let i = *self.table.find(h, holds(&self.slots, h, key))?;
        let slot = Some(&mut self.slots[i]).filter(|s| want(&s.value))?;
        if let Some(old) = slot.take_hash() {
            self.gone.push(old);
            self.stale.push(len, h);
        }
        Some(&mut slot.value)
    }

    /// Sets `key` to `value`; returns the value it replaced.
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        let len = self.slots.len();
        let h = self.hasher.hash_one(&key);
        match entry(&mut self.table, &self.slots, h, &key) {
            Entry::Occupied(o) => {
                let slot = &mut self.slots[*o.get()];
                if let Some(old) = slot.take_hash() {
                    self.gone.push(old);
                    self.stale.push(len, h);
                }
                Some(std::mem::replace(&mut slot.value, value))
            }
            Entry::Vacant(v) => {
                place(v, &mut self.slots, Slot::new(h, key, value, self.next_ord));
                self.next_ord += 1;
                self.stale.push(len, h);
                None
            }
        }
    }

    /// Adds `key` with `value`, read from a snapshot, where `bytes` were its
    /// entry's canonical bytes (its key and value as the map's own encoder writes
    /// them, [`crate::canon::Reader::since`]): the entry hash is taken from
    /// them, so the first root after a decode encodes no entry again and hashes
    /// each where the decoder just read it. Only a strict decoder may call it,
    /// which refuses any bytes but the one canonical encoding of what it
    /// returns: with any other bytes the digest would not be the state's. A key
    /// already present (which a decoder refuses before) is set as by
    /// [`DigestMap::insert`], its entry hashed at the root from the value.
    ///
    /// `ord` is the entry's ordinal as the snapshot carries it (below the
    /// counter given to [`DigestMap::read_counter`]), or `None` from a
    /// snapshot that carries none: the map's ordinals are then not known.
    pub fn insert_read(&mut self, key: K, value: V, bytes: &[u8], ord: Option<u64>) {
        let h = self.hasher.hash_one(&key);
        match entry(&mut self.table, &self.slots, h, &key) {
            Entry::Vacant(v) => {
                let hash: Hash = Sha256::digest(bytes).into();
                let ord = match ord {
                    Some(ord) => {
                        // Read beside a kept index (no decoder does that):
                        // the next root builds it again and finds any ordinal
                        // given twice.
                        if let Ordinals::Kept(_) = self.v3 {
                            self.v3 = Ordinals::Known;
                        }
                        self.next_ord = self.next_ord.max(ord.saturating_add(1));
                        ord
                    }
                    None => {
                        self.v3 = Ordinals::Unknown;
                        self.next_ord += 1;
                        self.next_ord - 1
                    }
                };
                let mut slot = Slot::new(h, key, value, ord);
                slot.set_hash(hash);
                place(v, &mut self.slots, slot);
                if self.v2_kept {
                    self.index.insert(hash);
                }
            }
            Entry::Occupied(_) => {
                self.insert(key, value);
            }
        }
    }

    /// Adds `key` with the value `make` gives, unless it has an entry already (which
    /// stays as it is, unmarked). Whether it added one.
    pub fn insert_absent(&mut self, key: K, make: impl FnOnce() -> V) -> bool {
        let len = self.slots.len();
        let h = self.hasher.hash_one(&key);
        match entry(&mut self.table, &self.slots, h, &key) {
            Entry::Vacant(v) => {
                // The value first: a `make` that panics leaves no place
                // in the table without its entry.
                let value = make();
                place(v, &mut self.slots, Slot::new(h, key, value, self.next_ord));
                self.next_ord += 1;
                self.stale.push(len, h);
                true
            }
            Entry::Occupied(_) => false,
        }
    }

    /// The value under `key`, added by `make` when absent, to change: marks it stale.
    pub fn get_or_insert_with(&mut self, key: K, make: impl FnOnce() -> V) -> &mut V {
        let len = self.slots.len();
        let h = self.hasher.hash_one(&key);
        let i = match entry(&mut self.table, &self.slots, h, &key) {
            Entry::Occupied(o) => {
                let i = *o.get();
                if let Some(old) = self.slots[i].take_hash() {
                    self.gone.push(old);
                    self.stale.push(len, h);
                }
                i
            }
            Entry::Vacant(v) => {
                self.stale.push(len, h);
                let ord = self.next_ord;
                self.next_ord += 1;
                let value = make();
                place(v, &mut self.slots, Slot::new(h, key, value, ord))
            }
        };
        &mut self.slots[i].value
    }

    /// Removes `key`'s entry; returns its value.
    pub fn remove<Q>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: StdHash + Eq + ?Sized,
    {
        let h = self.hasher.hash_one(key);
        let (i, _) = self
            .table
            .find_entry(h, holds(&self.slots, h, key))
            .ok()?
            .remove();
        let slot = self.slots.swap_remove(i);
        if let Some(moved) = self.slots.get(i) {
            // The last entry took its place: its one index in the table, found
            // by its key's hash, follows it.
            let last = self.slots.len();
            let at = self.table.find_mut(moved.key_hash, |&j| j == last);
            *at.expect("every entry's place is in the table under its key's hash") = i;
        }
        if let Some(old) = slot.hash() {
            self.gone.push(old);
        }
        if let Ordinals::Kept(v3) = &mut self.v3 {
            v3.set(slot.ord(), None);
        }
        Some(slot.value)
    }

    /// The number of entries and the map's root ([the module docs](self)).
    /// `encode` writes an entry's canonical bytes (key, then value), the map's own
    /// encoder as snapshots use it; it is called once for each entry that changed
    /// since the last call.
    ///
    /// The map keeps the index behind this root while such roots are asked
    /// (see [`DigestMap::root_v3`] for when it lets it go); a call after it
    /// was let go builds it again from every entry's hash.
    pub fn root(&mut self, mut encode: impl FnMut(&mut Canon<Vec<u8>>, &K, &V)) -> (u64, Hash) {
        self.v2_asked = true;
        if !self.v2_kept {
            self.refresh(&mut encode);
            self.gone.clear();
            self.index = Index::default();
            for s in &self.slots {
                if let Some(h) = s.hash() {
                    self.index.insert(h);
                }
            }
            self.v2_kept = true;
        }
        self.index.remove_all(&mut self.gone);
        // Buckets sized for the new count before the new hashes go in, so a bucket
        // never holds more than a few dozen hashes.
        self.index.resize_for(self.slots.len());
        self.refresh(&mut encode);
        (self.slots.len() as u64, self.index.root())
    }

    /// The number of entries, the ordinal counter and the map's version-3 root
    /// ([the module docs](self)), or `None` when the ordinals are not known (an
    /// entry was read from a snapshot that carries none, or two entries read
    /// from one have the same ordinal). `encode` as for [`DigestMap::root`].
    /// The first call builds the version-3 index from every entry's hash; later
    /// ones cost in proportion to what changed.
    ///
    /// A call that finds no version-2 root ([`DigestMap::root`]) asked since
    /// the last call (or since the map was made or read) lets the version-2
    /// index go: a fold whose checkpoints all carry version 3 then keeps one
    /// index, and one that passes from version-2 checkpoints to version-3
    /// ones keeps both only until the second version-3 checkpoint.
    pub fn root_v3(
        &mut self,
        mut encode: impl FnMut(&mut Canon<Vec<u8>>, &K, &V),
    ) -> Option<V3Root> {
        if let Ordinals::Unknown = self.v3 {
            return None;
        }
        if !std::mem::take(&mut self.v2_asked) && self.v2_kept {
            self.v2_kept = false;
            self.index = Index::default();
        }
        self.refresh(&mut encode);
        if !self.v2_kept {
            self.gone.clear();
        }
        let mut v3 = match std::mem::take(&mut self.v3) {
            Ordinals::Kept(v3) => v3,
            _ => match OrdIndex::of(
                self.slots.iter().map(|s| (s.ord(), s.hash())),
                self.next_ord,
            ) {
                Some(v3) => v3,
                None => {
                    // Two entries with one ordinal: read from a snapshot
                    // that was made so (a fold gives each its own); or no
                    // memory for as many buckets as its counter calls for.
                    self.v3 = Ordinals::Unknown;
                    return None;
                }
            },
        };
        let root = v3.root(self.next_ord);
        self.v3 = Ordinals::Kept(v3);
        Some((self.slots.len() as u64, self.next_ord, root))
    }

    /// Whether the ordinals are known ([`DigestMap::root_v3`] is `None`
    /// otherwise).
    pub fn ordinals_known(&self) -> bool {
        !matches!(self.v3, Ordinals::Unknown)
    }

    /// Marks the ordinals as not the fold's: a map read from a snapshot that
    /// does not carry them (version 1), even one read empty (a fold may have
    /// added and removed entries, so its counter need not be 0).
    /// [`DigestMap::root_v3`] is `None` from then on, and no version-3 index
    /// is kept.
    pub fn forget_ordinals(&mut self) {
        self.v3 = Ordinals::Unknown;
    }

    /// Starts a map's read from a snapshot, before its entries
    /// ([`DigestMap::insert_read`]): `counter` is the map's ordinal counter as
    /// the snapshot carries it, or `None` from one that carries none
    /// ([`DigestMap::forget_ordinals`]).
    ///
    /// A map read with its ordinals does not place the hashes it reads in the
    /// version-2 index (which a first [`DigestMap::root`] builds from them, if
    /// asked), as its checkpoints are likely to carry version 3; one read
    /// without does, as they cannot.
    pub fn read_counter(&mut self, counter: Option<u64>) {
        match counter {
            Some(n) => {
                self.next_ord = n;
                self.v3 = Ordinals::Known;
                self.v2_kept = false;
                self.index = Index::default();
            }
            None => self.forget_ordinals(),
        }
    }

    /// Numbers the entries `0..len` in key order, as state digest v3 numbers
    /// those present before any event (a key ring's trust roots): whatever
    /// order they were added in, the v3 root is then the same.
    pub fn renumber_in_key_order(&mut self) {
        let mut slots: Vec<&mut Slot<K, V>> = self.slots.iter_mut().collect();
        slots.sort_unstable_by(|a, b| a.key.cmp(&b.key));
        for (ord, slot) in slots.into_iter().enumerate() {
            slot.ord = ord as u64 | (slot.ord & STALE);
        }
        self.next_ord = self.slots.len() as u64;
        if let Ordinals::Kept(_) = self.v3 {
            self.v3 = Ordinals::Known;
        }
    }

    /// Encodes and hashes every entry changed since the last root (of either
    /// version) and gives each new hash to the indexes kept: version 2's
    /// unless it was let go, version 3's once it is built.
    fn refresh(&mut self, encode: &mut impl FnMut(&mut Canon<Vec<u8>>, &K, &V)) {
        let DigestMap {
            table,
            slots,
            stale,
            index,
            v2_kept,
            v3,
            ..
        } = self;
        let v2_kept = *v2_kept;
        let mut buf = Vec::new();
        let mut rehash = |slot: &mut Slot<K, V>| {
            buf.clear();
            let mut c = Canon::to(std::mem::take(&mut buf));
            encode(&mut c, &slot.key, &slot.value);
            buf = c.into_out();
            let h: Hash = Sha256::digest(&buf).into();
            slot.set_hash(h);
            if v2_kept {
                index.insert(h);
            }
            if let Ordinals::Kept(v3) = v3 {
                v3.set(slot.ord(), Some(h));
            }
        };
        if std::mem::take(&mut stale.all) {
            slots
                .iter_mut()
                .filter(|s| s.hash().is_none())
                .for_each(&mut rehash);
        } else {
            for chunk in stale.keys.chunks(TOUCH_AHEAD) {
                touch(chunk.iter().filter_map(|&h| {
                    let i = *table.find(h, |&i| slots[i].key_hash == h)?;
                    Some(slots[i].key_hash)
                }));
                for &h in chunk {
                    // Any stale entry whose key hashes to `h` is one that was
                    // listed (each stale entry is listed once per change, under
                    // its own key's hash): so two stale keys with one hash are
                    // each found, one per listing. None when the entry left after
                    // it changed, or was already hashed by an earlier listing.
                    let i = table.find(h, |&i| slots[i].key_hash == h && slots[i].hash().is_none());
                    if let Some(&i) = i {
                        rehash(&mut slots[i]);
                    }
                }
            }
        }
        stale.keys = Vec::new();
    }
}

/// How many entries or buckets a root looks up back to back before it works on
/// them ([`touch`]).
const TOUCH_AHEAD: usize = 16;

/// Reads `words`, each a word of an entry or bucket looked up one after another
/// with nothing in between, so that their cache misses overlap: a large map's
/// entries and buckets are cold by the next checkpoint, and the work on each
/// (encoding, hashing) is long enough that the processor would otherwise reach
/// the next entry's miss only after the last one's work, waiting on each in
/// turn. The items are then worked on from the cache. (A prefetch instruction
/// would do this without the reads, but needs `unsafe`.)
fn touch(words: impl Iterator<Item = u64>) {
    std::hint::black_box(words.fold(0u64, u64::wrapping_add));
}

/// Which entries went stale since the last root: their keys' hashes, or "look at
/// every entry" once listing them would cost more than that (at least as many
/// listed as the map has entries, as after a fold from empty or a snapshot's
/// decode), so the list never holds more than the map.
#[derive(Clone, Default)]
struct Stale {
    keys: Vec<u64>,
    all: bool,
}

impl Stale {
    /// Notes a stale entry, whose key hashes to `key_hash`, of a map of `len`
    /// entries.
    fn push(&mut self, len: usize, key_hash: u64) {
        if self.all {
            return;
        }
        if self.keys.len() >= len.max(64) {
            self.keys = Vec::new();
            self.all = true;
        } else {
            self.keys.push(key_hash);
        }
    }
}

/// The byte order of two hashes, compared eight bytes at a time: hashes differ in
/// their first eight bytes but once in billions, and a `memcmp` call for each
/// comparison of a bucket's search cost more than the comparison (a seventh of
/// the digest checks' time in verified replay).
fn cmp_hash(a: &Hash, b: &Hash) -> std::cmp::Ordering {
    let words = |h: &Hash| {
        let mut w = [0u64; 4];
        for (w, chunk) in w.iter_mut().zip(h.chunks_exact(8)) {
            *w = u64::from_be_bytes(chunk.try_into().unwrap_or_default());
        }
        w
    };
    words(a).cmp(&words(b))
}

/// Entry hashes in buckets, and the Merkle tree over the buckets.
#[derive(Clone, Debug, Default)]
struct Index {
    /// `log2` of the bucket count.
    bits: u32,
    /// Sorted entry hashes per bucket; empty until the first insert.
    buckets: Vec<Vec<Hash>>,
    /// The tree, heap-ordered: `nodes[1]` is the root, `nodes[B + j]` bucket `j`'s
    /// leaf hash, `nodes[0]` unused. Empty until the first root.
    nodes: Vec<Hash>,
    /// Buckets changed since the last root (may repeat).
    dirty: Vec<usize>,
    /// Hashes added since the last root, not yet in their buckets. Once the
    /// hashes that left are taken off ([`Index::remove_all`]), no hash comes
    /// twice: an entry's hash covers its key, and an entry is hashed again only
    /// after its old hash has left. (Before that, an entry read with its hash,
    /// removed and read again waits twice, and leaves once; so does an entry
    /// hashed for a version-3 root, changed back and hashed again before the
    /// next version-2 root.)
    pending: Vec<Hash>,
    /// Whether the whole tree must be computed again (the buckets were redrawn).
    redraw: bool,
}

impl Index {
    fn bucket_of(h: &Hash, bits: u32) -> usize {
        if bits == 0 {
            0
        } else {
            (u32::from_be_bytes([h[0], h[1], h[2], h[3]]) >> (32 - bits)) as usize
        }
    }

    /// Adds `h`, which goes into its bucket at the next [`Index::root`].
    ///
    /// New hashes wait in one list; the root sorts it, which puts them in bucket
    /// order (a bucket is a range of hash prefixes), and then visits each bucket
    /// that changed once, in order: it adds the bucket's new hashes, sorts the
    /// bucket and hashes it while the bucket is in the cache. A large map's
    /// buckets are cold by the time a checkpoint comes; a binary search for each
    /// new hash's place (until stop 28) waited on a chain of cache misses, and
    /// appending each to its bucket as it came still touched the bucket once to
    /// append, once to sort and once to hash.
    fn insert(&mut self, h: Hash) {
        self.pending.push(h);
    }

    /// Removes each of `gone` (and empties it): from the hashes still waiting
    /// for their buckets (an entry read with its hash,
    /// [`DigestMap::insert_read`], or hashed for a version-3 root, that changed
    /// or left before this root) or else from its bucket. Both are multisets here: an entry read, removed
    /// and read again with the same bytes waits twice under one hash, and an
    /// entry in a bucket, removed, read again and changed leaves twice under
    /// one; each hash that leaves takes one waiting copy while there is one,
    /// and the bucket's after that.
    fn remove_all(&mut self, gone: &mut Vec<Hash>) {
        if self.pending.is_empty() {
            gone.drain(..).for_each(|h| self.remove(&h));
            return;
        }
        self.pending.sort_unstable_by(cmp_hash);
        gone.sort_unstable_by(cmp_hash);
        let mut waiting = std::mem::take(&mut self.pending).into_iter().peekable();
        let mut kept = Vec::with_capacity(waiting.len());
        for h in gone.drain(..) {
            while let Some(x) = waiting.next_if(|x| cmp_hash(x, &h).is_lt()) {
                kept.push(x);
            }
            if waiting.next_if_eq(&h).is_none() {
                self.remove(&h);
            }
        }
        kept.extend(waiting);
        self.pending = kept;
    }

    fn remove(&mut self, h: &Hash) {
        if self.buckets.is_empty() {
            return;
        }
        let b = Self::bucket_of(h, self.bits);
        let bucket = &mut self.buckets[b];
        if let Ok(at) = bucket.binary_search_by(|x| cmp_hash(x, h)) {
            bucket.remove(at);
        }
        self.dirty.push(b);
    }

    /// The bucket bits for `n` entries.
    fn bits_for(n: usize) -> u32 {
        let mut bits = 0;
        while bits < 32 && (PER_BUCKET << bits) < n {
            bits += 1;
        }
        bits
    }

    /// The bucket's leaf hash; its hashes are contiguous, so they are hashed in
    /// one call instead of one call each.
    fn leaf(bucket: &[Hash]) -> Hash {
        let mut s = Sha256::new();
        s.update([0u8]);
        s.update(bucket.as_flattened());
        s.finalize().into()
    }

    fn node(left: &Hash, right: &Hash) -> Hash {
        let mut bytes = [0u8; 65];
        bytes[0] = 1;
        bytes[1..33].copy_from_slice(left);
        bytes[33..].copy_from_slice(right);
        Sha256::digest(bytes).into()
    }

    /// Redraws the buckets when `n` entries call for another count than they have.
    fn resize_for(&mut self, n: usize) {
        if self.buckets.is_empty() {
            self.buckets.push(Vec::new());
            self.redraw = true;
        }
        let bits = Self::bits_for(n);
        if bits == self.bits {
            return;
        }
        let old = std::mem::take(&mut self.buckets);
        if bits == self.bits + 1 {
            // Twice the buckets, as a growing map asks: each bucket splits in
            // two where its hashes' next bit turns to 1 (they are sorted), read
            // and written in order. Sending each hash to its new bucket one by
            // one wrote all over memory and grew each new bucket from empty:
            // 17 ms on the digest's thread, the folder waiting, for a map of
            // 262,000 entries (docs/BENCHMARKS.md, stop 31).
            self.buckets.reserve_exact(old.len() * 2);
            for mut low in old {
                let at = low.partition_point(|h| Self::bucket_of(h, bits) % 2 == 0);
                let high = low.split_off(at);
                self.buckets.push(low);
                self.buckets.push(high);
            }
        } else {
            // Buckets partition the hashes by prefix, so their concatenation is
            // sorted: split it again by the new prefix length.
            let all: Vec<Hash> = old.concat();
            self.buckets = vec![Vec::new(); 1 << bits];
            for h in all {
                self.buckets[Self::bucket_of(&h, bits)].push(h);
            }
        }
        self.bits = bits;
        self.redraw = true;
    }

    /// The root, rehashing only the buckets changed since the last one and their
    /// paths, or everything after a redraw.
    fn root(&mut self) -> Hash {
        let count = 1usize << self.bits;
        let bits = self.bits;
        let bucket_of = |h: &Hash| Self::bucket_of(h, bits);
        // The new hashes in bucket order.
        let mut pending = std::mem::take(&mut self.pending);
        pending.sort_unstable_by(cmp_hash);
        let add = |bucket: &mut Vec<Hash>, new: &[Hash]| {
            if !new.is_empty() {
                bucket.extend_from_slice(new);
                bucket.sort_unstable_by(cmp_hash);
            }
        };
        if self.redraw || self.nodes.len() != 2 * count {
            for new in pending.chunk_by(|a, b| bucket_of(a) == bucket_of(b)) {
                add(&mut self.buckets[bucket_of(&new[0])], new);
            }
            self.nodes = vec![[0; 32]; 2 * count];
            for (j, bucket) in self.buckets.iter().enumerate() {
                self.nodes[count + j] = Self::leaf(bucket);
            }
            for i in (1..count).rev() {
                self.nodes[i] = Self::node(&self.nodes[2 * i], &self.nodes[2 * i + 1]);
            }
            self.dirty.clear();
            self.redraw = false;
        } else {
            // The buckets that lost a hash or gain one, each once, in order; the
            // new hashes of each are at the front of what is left of `pending`.
            let mut level: Vec<usize> = std::mem::take(&mut self.dirty);
            level.extend(pending.iter().map(bucket_of));
            level.sort_unstable();
            level.dedup();
            let mut rest = &pending[..];
            for chunk in level.chunks_mut(TOUCH_AHEAD) {
                let first = |j: usize| Some(u64::from(self.buckets.get(j)?.first()?[0]));
                touch(chunk.iter().filter_map(|&j| first(j)));
                for j in chunk {
                    let n = rest.iter().take_while(|h| bucket_of(h) == *j).count();
                    let (new, after) = rest.split_at(n);
                    rest = after;
                    add(&mut self.buckets[*j], new);
                    self.nodes[count + *j] = Self::leaf(&self.buckets[*j]);
                    *j += count;
                }
            }
            // Every index in `level` is at the same depth: climb one level at a time.
            while level.first().is_some_and(|&i| i > 1) {
                for i in &mut level {
                    *i /= 2;
                }
                level.dedup();
                for &p in &level {
                    self.nodes[p] = Self::node(&self.nodes[2 * p], &self.nodes[2 * p + 1]);
                }
            }
            self.dirty = level;
            self.dirty.clear();
        }
        pending.clear();
        self.pending = pending;
        self.nodes[1]
    }
}

/// The version-3 index: entry hashes in buckets of 16 by ordinal, and the RFC
/// 6962 Merkle tree over the buckets, kept level by level so that it grows at
/// its right edge.
#[derive(Clone, Debug, Default)]
struct OrdIndex {
    /// Bucket `j`: the hashes of ordinals `16j..16j + 16`, `None` where no entry.
    buckets: Vec<[Option<Hash>; 16]>,
    /// `levels[0]` the buckets' leaf hashes, `levels[k + 1]` the nodes over
    /// pairs of `levels[k]` (an odd last one carried up as it is, which gives
    /// RFC 6962's tree for any count).
    levels: Vec<Vec<Hash>>,
    /// Buckets changed since the last root (may repeat).
    dirty: Vec<usize>,
}

impl OrdIndex {
    /// The index of these ordinals (each below `next`) and hashes, its tree
    /// not built: its first root hashes every bucket. `None` when two hashes
    /// have one ordinal, or when the memory for the buckets that `next` calls
    /// for cannot be had (a counter read from a snapshot not yet matched to a
    /// checkpoint can be any number; this never aborts on it).
    fn of(entries: impl Iterator<Item = (u64, Option<Hash>)>, next: u64) -> Option<Self> {
        let count = usize::try_from(next.div_ceil(16)).ok()?;
        let mut index = OrdIndex::default();
        index.buckets.try_reserve_exact(count).ok()?;
        let mut leaves = Vec::new();
        leaves.try_reserve_exact(count).ok()?;
        index.levels.push(leaves);
        for (ord, h) in entries {
            if index.put(ord, h).1.is_some() {
                return None;
            }
        }
        Some(index)
    }

    /// Sets the hash of ordinal `ord` (`None`: no entry), to be rehashed at the
    /// next root.
    fn set(&mut self, ord: u64, h: Option<Hash>) {
        let (b, _) = self.put(ord, h);
        self.dirty.push(b);
    }

    /// Sets the hash of ordinal `ord`; returns its bucket and the hash it
    /// replaced.
    fn put(&mut self, ord: u64, h: Option<Hash>) -> (usize, Option<Hash>) {
        let b = usize::try_from(ord / 16).unwrap_or(usize::MAX);
        if self.buckets.len() <= b {
            self.buckets.resize(b + 1, [None; 16]);
        }
        let was = std::mem::replace(&mut self.buckets[b][(ord % 16) as usize], h);
        (b, was)
    }

    /// The root over the buckets of ordinals `0..next`: rehashes the buckets
    /// changed or added since the last root, and their paths.
    fn root(&mut self, next: u64) -> Hash {
        let count = usize::try_from(next.div_ceil(16)).unwrap_or(usize::MAX);
        if self.buckets.len() < count {
            self.buckets.resize(count, [None; 16]);
        }
        if self.levels.is_empty() {
            self.levels.push(Vec::new());
        }
        let had = self.levels[0].len();
        let mut level = std::mem::take(&mut self.dirty);
        level.extend(had..count);
        level.sort_unstable();
        level.dedup();
        self.levels[0].resize(count, [0; 32]);
        for &j in &level {
            let mut s = Sha256::new();
            s.update([0u8]);
            for h in self.buckets[j].iter().flatten() {
                s.update(h);
            }
            self.levels[0][j] = s.finalize().into();
        }
        let mut k = 0;
        while self.levels[k].len() > 1 {
            let len = self.levels[k].len().div_ceil(2);
            if self.levels.len() == k + 1 {
                self.levels.push(Vec::new());
            }
            self.levels[k + 1].resize(len, [0; 32]);
            for i in &mut level {
                *i /= 2;
            }
            level.dedup();
            let (low, high) = self.levels.split_at_mut(k + 1);
            let (below, here) = (&low[k], &mut high[0]);
            for &p in &level {
                here[p] = match below.get(2 * p + 1) {
                    Some(right) => Index::node(&below[2 * p], right),
                    None => below[2 * p],
                };
            }
            k += 1;
        }
        level.clear();
        self.dirty = level;
        match self.levels[k].first() {
            Some(root) => *root,
            None => Sha256::digest([]).into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    proptest! {
        /// Hashes compare as their bytes do, including those that share a long
        /// prefix.
        #[test]
        fn hashes_compare_as_their_bytes(a: Hash, b: Hash, shared in 0usize..=32) {
            let mut b = b;
            b[..shared].copy_from_slice(&a[..shared]);
            prop_assert_eq!(cmp_hash(&a, &b), a.cmp(&b));
            prop_assert_eq!(cmp_hash(&b, &a), b.cmp(&a));
        }
    }

    fn encode(c: &mut Canon<Vec<u8>>, k: &u32, v: &String) {
        c.raw(&k.to_be_bytes()).raw(v.as_bytes());
    }

    /// That `map.encode_entries` writes the entry count, then the entries of
    /// `want` in its order.
    fn encodes_as<'a, K, V: 'a, S: BuildHasher + Default>(
        map: &DigestMap<K, V, S>,
        want: impl ExactSizeIterator<Item = (&'a K, &'a V)>,
        encode: fn(&mut Canon<Vec<u8>>, &K, &V),
    ) -> Result<(), TestCaseError>
    where
        K: Ord + StdHash + Clone + OrderBytes + EncodedKey + 'a,
    {
        let mut got = Canon::buffer();
        map.encode_entries(&mut got, encode);
        let mut expected = Canon::buffer();
        expected.u64(want.len() as u64);
        want.for_each(|(k, v)| encode(&mut expected, k, v));
        prop_assert_eq!(got.into_bytes(), expected.into_bytes());
        Ok(())
    }

    /// RFC 6962's Merkle tree hash of `leaves`, straight from the RFC.
    fn mth(leaves: &[Vec<u8>]) -> Hash {
        match leaves.len() {
            0 => Sha256::digest([]).into(),
            1 => Sha256::new_with_prefix([0u8])
                .chain_update(&leaves[0])
                .finalize()
                .into(),
            n => {
                let k = n.next_power_of_two() / 2;
                Sha256::new_with_prefix([1u8])
                    .chain_update(mth(&leaves[..k]))
                    .chain_update(mth(&leaves[k..]))
                    .finalize()
                    .into()
            }
        }
    }

    /// The root as the module docs define it, from scratch.
    fn reference(map: &BTreeMap<u32, String>) -> (u64, Hash) {
        let mut hashes: Vec<Hash> = map
            .iter()
            .map(|(k, v)| {
                let mut c = Canon::buffer();
                encode(&mut c, k, v);
                Sha256::digest(c.into_bytes()).into()
            })
            .collect();
        hashes.sort();
        let mut count = 1;
        while count * PER_BUCKET < map.len() {
            count *= 2;
        }
        let bits = count.trailing_zeros();
        let mut buckets = vec![Vec::new(); count];
        for h in hashes {
            buckets[Index::bucket_of(&h, bits)].extend_from_slice(&h);
        }
        (map.len() as u64, mth(&buckets))
    }

    /// The version-3 root as the module docs define it, from scratch: `ords`
    /// gives each key of `map` its ordinal, `next` is the counter.
    fn reference_v3(
        map: &BTreeMap<u32, String>,
        ords: &BTreeMap<u32, u64>,
        next: u64,
    ) -> (u64, u64, Hash) {
        let mut by_ord: Vec<(u64, Hash)> = map
            .iter()
            .map(|(k, v)| {
                let mut c = Canon::buffer();
                encode(&mut c, k, v);
                (ords[k], Sha256::digest(c.into_bytes()).into())
            })
            .collect();
        by_ord.sort();
        let mut buckets = vec![Vec::new(); next.div_ceil(16) as usize];
        for (o, h) in by_ord {
            buckets[(o / 16) as usize].extend_from_slice(&h);
        }
        (map.len() as u64, next, mth(&buckets))
    }

    #[derive(Clone, Debug)]
    enum Op {
        Insert(u32, String),
        InsertAbsent(u32, String),
        Mutate(u32, String),
        MutateIf(u32, String),
        Upsert(u32, String),
        /// `insert_read` with the entry's canonical bytes, as a decoder calls it.
        InsertRead(u32, String),
        Remove(u32),
        Root,
        /// `root_v3`, checked against [`reference_v3`].
        RootV3,
        /// `renumber_in_key_order`, stale entries and all.
        Renumber,
        /// The map read back as a decoder reads a snapshot's: its entries in
        /// key order, each with the ordinal its encoding carries, after the
        /// counter.
        ReadBack,
        /// Room for this many more entries (the table may rehash its places
        /// in place, over the marks removals left).
        Reserve(u16),
        /// Carried on as a clone of itself.
        Clone,
    }

    fn op() -> impl Strategy<Value = Op> {
        let key = 0u32..200;
        let val = "[a-c]{0,3}";
        prop_oneof![
            4 => (key.clone(), val).prop_map(|(k, v)| Op::Insert(k, v)),
            2 => (key.clone(), val).prop_map(|(k, v)| Op::InsertAbsent(k, v)),
            2 => (key.clone(), val).prop_map(|(k, v)| Op::Mutate(k, v)),
            1 => (key.clone(), val).prop_map(|(k, v)| Op::MutateIf(k, v)),
            1 => (key.clone(), val).prop_map(|(k, v)| Op::Upsert(k, v)),
            2 => (key.clone(), val).prop_map(|(k, v)| Op::InsertRead(k, v)),
            2 => key.prop_map(Op::Remove),
            1 => Just(Op::Root),
            1 => Just(Op::RootV3),
            1 => Just(Op::Renumber),
            1 => Just(Op::ReadBack),
            1 => (0u16..300).prop_map(Op::Reserve),
            1 => Just(Op::Clone),
        ]
    }

    /// Runs `ops` on a map hashed by `S` and on a model map, and checks after
    /// each root, and at the end, that the incremental root is the root the
    /// definition gives, that the entries walk in key order, and that a map
    /// built in another order has the same root.
    fn ops_keep_the_defined_root<S: BuildHasher + Default + Clone>(
        ops: Vec<Op>,
    ) -> Result<(), TestCaseError> {
        let mut ours: DigestMap<u32, String, S> = DigestMap::new();
        let mut model: BTreeMap<u32, String> = BTreeMap::new();
        // Ordinals as version 3 defines them: a new key takes the next one.
        let (mut ords, mut next, mut known) = (BTreeMap::new(), 0u64, true);
        for op in ops {
            match &op {
                Op::Insert(k, _)
                | Op::InsertAbsent(k, _)
                | Op::Upsert(k, _)
                | Op::InsertRead(k, _)
                    if !model.contains_key(k) =>
                {
                    ords.insert(*k, next);
                    next += 1;
                    // A snapshot carries no ordinals (yet).
                    known &= !matches!(op, Op::InsertRead(..));
                }
                Op::Remove(k) => {
                    ords.remove(k);
                }
                Op::Renumber if model.len() < 40 => {
                    ords = model.keys().zip(0..).map(|(k, o)| (*k, o)).collect();
                    next = model.len() as u64;
                }
                _ => {}
            }
            match op {
                Op::Insert(k, v) => {
                    prop_assert_eq!(ours.insert(k, v.clone()), model.insert(k, v));
                }
                Op::InsertAbsent(k, v) => {
                    let absent = !model.contains_key(&k);
                    prop_assert_eq!(ours.insert_absent(k, || v.clone()), absent);
                    model.entry(k).or_insert(v);
                }
                Op::Mutate(k, v) => {
                    if let Some(x) = ours.get_mut(&k) {
                        x.push_str(&v);
                    }
                    if let Some(x) = model.get_mut(&k) {
                        x.push_str(&v);
                    }
                }
                Op::MutateIf(k, v) => {
                    // Entries of odd length are declined and stay unmarked.
                    let change = |x: &String| x.len().is_multiple_of(2);
                    if let Some(x) = ours.get_mut_if(&k, change) {
                        x.push_str(&v);
                    }
                    if let Some(x) = model.get_mut(&k).filter(|x| change(x)) {
                        x.push_str(&v);
                    }
                }
                Op::Upsert(k, v) => {
                    ours.get_or_insert_with(k, String::new).push_str(&v);
                    model.entry(k).or_default().push_str(&v);
                }
                Op::InsertRead(k, v) => {
                    let mut c = Canon::buffer();
                    encode(&mut c, &k, &v);
                    ours.insert_read(k, v.clone(), &c.into_bytes(), None);
                    model.insert(k, v);
                }
                Op::Remove(k) => {
                    prop_assert_eq!(ours.remove(&k), model.remove(&k));
                    // The entry moved into the removed one's place is found
                    // there, as is every other.
                    prop_assert!(model.iter().all(|(k, v)| ours.get(k) == Some(v)));
                    prop_assert_eq!(ours.len(), model.len());
                }
                Op::RootV3 => {
                    let want = known.then(|| reference_v3(&model, &ords, next));
                    prop_assert_eq!(ours.root_v3(encode), want);
                }
                // Only while the map is small, as a state's trust roots are:
                // later, the ordinals of the growing map stay the fold's.
                Op::Renumber if model.len() < 40 => ours.renumber_in_key_order(),
                Op::Renumber => {}
                Op::ReadBack => ours = read_back(&ours, &model)?,
                Op::Reserve(n) => {
                    ours.reserve(usize::from(n));
                    prop_assert!(ours.capacity() >= model.len() + usize::from(n));
                }
                Op::Clone => ours = ours.clone(),
                Op::Root => {
                    prop_assert_eq!(ours.root(encode), reference(&model));
                    // Walked in key order, whatever order the hash map keeps.
                    prop_assert!(ours.iter().eq(model.iter()));
                    prop_assert!(ours.iter().rev().eq(model.iter().rev()));
                    prop_assert_eq!(ours.first(), model.first_key_value());
                    // Encoded as the map lies, then sorted: the count, then
                    // the entries in key order.
                    encodes_as(&ours, model.iter(), encode)?;
                }
            }
        }
        prop_assert_eq!(ours.root(encode), reference(&model));
        let want = known.then(|| reference_v3(&model, &ords, next));
        prop_assert_eq!(ours.root_v3(encode), want);
        let mut reversed: DigestMap<u32, String, S> = DigestMap::new();
        for (k, v) in model.iter().rev() {
            reversed.insert(*k, v.clone());
        }
        prop_assert!(reversed == ours);
        prop_assert_eq!(reversed.root(encode), reference(&model));
        Ok(())
    }

    /// Takes what `encode_entries` gives a snapshot: each entry's ordinal
    /// beside it and the counter, when the ordinals are known.
    #[derive(Default)]
    struct Taken(Vec<Entries>);

    impl Out for Taken {
        fn put(&mut self, _: &[u8]) {}
        fn entries(&mut self, entries: Entries) {
            self.0.push(entries);
        }
    }

    /// `map` read back as a decoder reads it from a snapshot that carries the
    /// ordinals `encode_entries` gives (in key order, once sorted), or none:
    /// `model` holds its entries.
    fn read_back<S: BuildHasher + Default>(
        map: &DigestMap<u32, String, S>,
        model: &BTreeMap<u32, String>,
    ) -> Result<DigestMap<u32, String, S>, TestCaseError> {
        let mut taken = Canon::to(Taken::default());
        map.encode_entries(&mut taken, encode);
        let Ok([mut entries]) = <[Entries; 1]>::try_from(taken.into_out().0) else {
            return Err(TestCaseError::fail("not one list of entries"));
        };
        entries.sort();
        let mut back: DigestMap<u32, String, S> = DigestMap::new();
        let (counter, ords) = match entries.ordinals() {
            Some((counter, ords)) => (Some(counter), ords.map(Some).collect()),
            None => (None, vec![None; model.len()]),
        };
        prop_assert_eq!(ords.len(), model.len());
        back.read_counter(counter);
        for ((k, v), ord) in model.iter().zip(ords) {
            let mut c = Canon::buffer();
            encode(&mut c, k, v);
            back.insert_read(*k, v.clone(), &c.into_bytes(), ord);
        }
        Ok(back)
    }

    /// Hashes keys to four values only: every lookup meets other keys of the
    /// same hash, and stale entries share hashes (found again by their hash at
    /// the root, [`Stale`]).
    #[derive(Clone, Default)]
    struct FourHashes;

    struct FourHasher(std::hash::DefaultHasher);

    impl std::hash::Hasher for FourHasher {
        fn write(&mut self, bytes: &[u8]) {
            self.0.write(bytes);
        }
        fn finish(&self) -> u64 {
            self.0.finish() % 4
        }
    }

    impl BuildHasher for FourHashes {
        type Hasher = FourHasher;
        fn build_hasher(&self) -> FourHasher {
            FourHasher(std::hash::DefaultHasher::new())
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        /// Whatever the changes and whenever roots are taken, the incremental root
        /// equals the root computed from scratch by the definition, the entries are
        /// walked in key order, and a map built in another order has the same root.
        #[test]
        fn incremental_root_is_the_defined_root(ops in proptest::collection::vec(op(), 0..400)) {
            ops_keep_the_defined_root::<RandomState>(ops)?;
        }

        /// The same when keys collide all the time.
        #[test]
        fn incremental_root_is_the_defined_root_when_keys_collide(ops in proptest::collection::vec(op(), 0..400)) {
            ops_keep_the_defined_root::<FourHashes>(ops)?;
        }

        /// With no entry read from a snapshot, the ordinals stay known and the
        /// version-3 root is checked all along, taken between version-2 roots
        /// or without them, over enough entries for several levels of buckets.
        #[test]
        fn incremental_v3_root_is_the_defined_root(ops in proptest::collection::vec(op(), 0..1200)) {
            let folded: Vec<Op> = ops.into_iter().filter(|o| !matches!(o, Op::InsertRead(..))).collect();
            ops_keep_the_defined_root::<RandomState>(folded.clone())?;
            // And when keys collide, where stale entries are found by their
            // flag among slots of one key hash.
            ops_keep_the_defined_root::<FourHashes>(folded)?;
        }
    }

    proptest! {
        /// Keys whose order bytes share their first 16 bytes (or more) tie on
        /// the heads kept beside the encoded entries; the comparison of the keys
        /// read back from the entries must then decide, as the keys order, zero
        /// bytes and shorter keys included. Pairs and triples of strings.
        #[test]
        fn encoded_entries_sort_as_keys_past_the_heads(
            pairs in proptest::collection::vec(("[ab\\x00]{0,2}", "[ab\\x00]{0,3}", "[a-c]{0,3}"), 0..40),
            scopes in proptest::collection::vec(0u8..4, 40),
        ) {
            use govledger_schemas::KillScope;
            // A tenant of 14 bytes and more, so that 16 bytes of order bytes
            // cover at most its end and the separator.
            let tenant = |t: &str| format!("tenant-shared-{t}");
            let mut two: DigestMap<(String, String), String> = DigestMap::new();
            let mut three: DigestMap<(String, KillScope, String), String> = DigestMap::new();
            let mut one: DigestMap<String, String> = DigestMap::new();
            let scope = |n: u8| [KillScope::Session, KillScope::Agent, KillScope::Tenant, KillScope::System][n as usize % 4];
            for ((t, id, v), s) in pairs.iter().zip(&scopes) {
                two.insert((tenant(t), id.clone()), v.clone());
                three.insert((tenant(t), scope(*s), id.clone()), v.clone());
                one.insert(format!("{}{id}", tenant(t)), v.clone());
            }
            encodes_as(&two, two.iter(), |c, (t, id), v| { c.str(t).str(id).str(v); })?;
            encodes_as(&three, three.iter(), |c, (t, s, id), v| { c.str(t).u8(*s as u8).str(id).str(v); })?;
            encodes_as(&one, one.iter(), |c, k, v| { c.str(k).str(v); })?;
        }
    }

    #[test]
    fn entries_present_before_any_event_are_numbered_in_key_order() {
        let mut up: DigestMap<u32, String> = DigestMap::new();
        let mut down: DigestMap<u32, String> = DigestMap::new();
        for k in 0..40u32 {
            up.insert(k, format!("v{k}"));
            down.insert(39 - k, format!("v{}", 39 - k));
        }
        assert_ne!(
            up.root_v3(encode),
            down.root_v3(encode),
            "added in two orders"
        );
        up.renumber_in_key_order();
        down.renumber_in_key_order();
        let model: BTreeMap<u32, String> = (0..40u32).map(|k| (k, format!("v{k}"))).collect();
        let ords: BTreeMap<u32, u64> = (0..40u32).map(|k| (k, u64::from(k))).collect();
        let want = Some(reference_v3(&model, &ords, 40));
        assert_eq!(up.root_v3(encode), want);
        assert_eq!(down.root_v3(encode), want);
        // The next entry takes the next ordinal, in both.
        up.insert(100, "x".into());
        down.insert(100, "x".into());
        assert_eq!(up.root_v3(encode), down.root_v3(encode));
    }

    #[test]
    fn a_scan_of_stale_entries_feeds_the_v3_index_too() {
        let mut m: DigestMap<u32, String> = DigestMap::new();
        let mut model = BTreeMap::new();
        for k in 0..10u32 {
            m.insert(k, "a".into());
            model.insert(k, "a".to_string());
        }
        assert!(m.root_v3(encode).is_some());
        // More changes than entries: the stale list turns into a scan.
        for k in 0..300u32 {
            m.insert(k % 150, format!("b{k}"));
            model.insert(k % 150, format!("b{k}"));
        }
        m.remove(&3);
        model.remove(&3);
        assert!(m.stale.all, "the stale entries are found by a scan");
        let ords: BTreeMap<u32, u64> = model.keys().map(|&k| (k, u64::from(k))).collect();
        assert_eq!(m.root_v3(encode), Some(reference_v3(&model, &ords, 150)));
        assert_eq!(m.root(encode), reference(&model));
    }

    #[test]
    fn a_map_read_with_its_ordinals_keeps_its_v3_root_and_a_doubled_one_has_none() {
        let model: BTreeMap<u32, String> = (0..40).map(|k| (k, format!("v{k}"))).collect();
        // Ordinals as a fold that added keys 0..60 and removed 40..60 left them,
        // but in reverse key order: the read follows the ordinals given.
        let ords: BTreeMap<u32, u64> = model.keys().map(|&k| (k, 59 - u64::from(k))).collect();
        let read = |ords: &BTreeMap<u32, u64>| {
            let mut m: DigestMap<u32, String> = DigestMap::new();
            m.read_counter(Some(60));
            for (k, v) in &model {
                let mut c = Canon::buffer();
                encode(&mut c, k, v);
                m.insert_read(*k, v.clone(), &c.into_bytes(), Some(ords[k]));
            }
            m
        };
        let mut m = read(&ords);
        assert_eq!(m.root_v3(encode), Some(reference_v3(&model, &ords, 60)));
        // The next entry takes the counter's ordinal.
        let (mut model2, mut ords2) = (model.clone(), ords.clone());
        m.insert(100, "new".into());
        model2.insert(100, "new".into());
        ords2.insert(100, 60);
        assert_eq!(m.root_v3(encode), Some(reference_v3(&model2, &ords2, 61)));
        // Two entries with one ordinal, which no fold makes: no v3 root, for good.
        let mut doubled = ords.clone();
        doubled.insert(3, ords[&4]);
        let mut m = read(&doubled);
        assert_eq!(m.root_v3(encode), None);
        assert!(matches!(m.v3, Ordinals::Unknown));
        m.insert(100, "new".into());
        assert_eq!(m.root_v3(encode), None);
        assert_eq!(m.root(encode), reference(&model2));
    }

    #[test]
    fn the_v2_index_is_let_go_while_only_v3_roots_are_asked_and_built_again() {
        let mut m: DigestMap<u32, String> = DigestMap::new();
        let mut model = BTreeMap::new();
        for k in 0..100u32 {
            m.insert(k, k.to_string());
            model.insert(k, k.to_string());
        }
        assert_eq!(m.root(encode), reference(&model));
        // A version-2 root was asked since the start: both kept.
        assert!(m.root_v3(encode).is_some());
        assert!(m.v2_kept);
        m.insert(100, "new".into());
        model.insert(100, "new".into());
        // None since the last version-3 root: version 2's index let go.
        assert!(m.root_v3(encode).is_some());
        assert!(!m.v2_kept);
        assert!(m.index.buckets.is_empty() && m.index.pending.is_empty());
        m.get_mut(&5).unwrap().push('x');
        model.get_mut(&5).unwrap().push('x');
        m.remove(&6);
        model.remove(&6);
        assert!(m.root_v3(encode).is_some());
        assert!(m.gone.is_empty(), "nothing kept for an index let go");
        assert!(m.index.pending.is_empty());
        // Asked again, it is built from every entry's hash.
        m.get_mut(&7).unwrap().push('y');
        model.get_mut(&7).unwrap().push('y');
        assert_eq!(m.root(encode), reference(&model));
        assert!(m.v2_kept);
        m.remove(&8);
        model.remove(&8);
        assert_eq!(m.root(encode), reference(&model));
        // A map read with its ordinals starts without one.
        let mut back: DigestMap<u32, String> = DigestMap::new();
        back.read_counter(Some(101));
        for (k, v) in &model {
            let mut c = Canon::buffer();
            encode(&mut c, k, v);
            back.insert_read(*k, v.clone(), &c.into_bytes(), Some(u64::from(*k)));
        }
        assert!(!back.v2_kept && back.index.pending.is_empty());
        assert_eq!(back.pending(), model.len(), "all of them to place");
        assert_eq!(back.root(encode), reference(&model));
    }

    #[test]
    fn a_counter_past_any_memory_gives_no_v3_root_not_an_abort() {
        let mut m: DigestMap<u32, String> = DigestMap::new();
        m.read_counter(Some(1 << 62));
        let mut c = Canon::buffer();
        encode(&mut c, &1, &"a".to_string());
        m.insert_read(1, "a".into(), &c.into_bytes(), Some(0));
        assert_eq!(m.root_v3(encode), None);
        assert!(!m.ordinals_known());
        let model: BTreeMap<u32, String> = [(1, "a".into())].into();
        assert_eq!(m.root(encode), reference(&model));
    }

    #[test]
    fn a_map_read_without_ordinals_has_no_v3_root() {
        let mut m: DigestMap<u32, String> = DigestMap::new();
        m.insert(1, "a".into());
        assert!(m.root_v3(encode).is_some());
        let mut c = Canon::buffer();
        encode(&mut c, &2, &"b".to_string());
        m.insert_read(2, "b".into(), &c.into_bytes(), None);
        assert_eq!(m.root_v3(encode), None);
        assert!(
            matches!(m.v3, Ordinals::Unknown),
            "no index kept for nothing"
        );
        m.remove(&1);
        assert!(matches!(m.v3, Ordinals::Unknown));
        // Version 2 is unaffected.
        let model: BTreeMap<u32, String> = [(2, "b".into())].into();
        assert_eq!(m.root(encode), reference(&model));
        // Read empty, a map has no v3 root either: a fold may have added and
        // removed entries, so its counter need not be 0.
        let mut empty: DigestMap<u32, String> = DigestMap::new();
        empty.forget_ordinals();
        assert_eq!(empty.root_v3(encode), None);
    }

    #[test]
    fn bucket_count_follows_the_size_both_ways() {
        let mut m: DigestMap<u32, String> = DigestMap::new();
        let mut model = BTreeMap::new();
        for k in 0..1000u32 {
            m.insert(k, k.to_string());
            model.insert(k, k.to_string());
            if k % 97 == 0 {
                assert_eq!(m.root(encode), reference(&model), "growing at {k}");
            }
        }
        assert_eq!(m.index.bits, 6, "1000 entries need 64 buckets of 16");
        for k in (0..1000u32).step_by(3) {
            m.remove(&k);
            model.remove(&k);
        }
        assert_eq!(m.root(encode), reference(&model));
        assert_eq!(m.index.bits, 6, "666 entries: still 64 buckets");
        for k in 0..1000u32 {
            m.remove(&k);
            model.remove(&k);
        }
        assert_eq!(m.root(encode), reference(&model));
        assert_eq!(m.index.bits, 0);
        assert_eq!(
            m.root(encode).1,
            mth(&[Vec::new()]),
            "empty: one empty bucket"
        );
    }

    #[test]
    fn a_long_list_of_stale_keys_turns_into_a_scan_of_the_map() {
        let mut m: DigestMap<u32, String> = DigestMap::new();
        let mut model = BTreeMap::new();
        for k in 0..500u32 {
            m.insert(k, String::new());
            model.insert(k, String::new());
        }
        assert!(m.stale.all, "500 new entries: a scan, not 500 keys");
        assert!(m.stale.keys.is_empty());
        assert_eq!(m.root(encode), reference(&model));
        // Kill switches engaged and released over and over: listed keys repeat, but
        // the list never grows past the map's size.
        for round in 0..2_000u32 {
            let k = 1_000 + round % 3;
            m.insert(k, "x".into());
            m.remove(&k);
            assert!(m.stale.keys.len() <= m.len().max(64));
        }
        m.get_mut(&7).unwrap().push('y');
        model.get_mut(&7).unwrap().push('y');
        assert_eq!(m.root(encode), reference(&model));
        for k in 0..500u32 {
            m.get_mut(&k).unwrap().push('z');
            model.get_mut(&k).unwrap().push('z');
        }
        assert_eq!(m.root(encode), reference(&model));
    }

    #[test]
    fn entries_read_with_their_bytes_are_not_encoded_again() {
        let mut m: DigestMap<u32, String> = DigestMap::new();
        for k in 0..100u32 {
            let v = format!("v{k}");
            let mut c = Canon::buffer();
            encode(&mut c, &k, &v);
            m.insert_read(k, v, &c.into_bytes(), None);
        }
        assert_eq!(m.pending(), 100, "read entries are still to be placed");
        let mut encoded = 0;
        let root = m.root(|c, k, v| {
            encoded += 1;
            encode(c, k, v)
        });
        assert_eq!(encoded, 0);
        assert_eq!(m.pending(), 0);
        let model: BTreeMap<u32, String> = (0..100).map(|k| (k, format!("v{k}"))).collect();
        assert_eq!(root, reference(&model));
        // A key read twice is set as `insert` sets it: hashed from its value.
        m.insert_read(5, "new".into(), b"not its bytes", None);
        let mut model = model;
        model.insert(5, "new".into());
        assert_eq!(m.root(encode), reference(&model));
        // Read, removed and read again with the same bytes before a root: its
        // hash waits twice and leaves once.
        let bytes = |k: u32, v: &str| {
            let mut c = Canon::buffer();
            encode(&mut c, &k, &v.to_string());
            c.into_bytes()
        };
        m.insert_read(300, "b".into(), &bytes(300, "b"), None);
        m.remove(&300);
        m.insert_read(300, "b".into(), &bytes(300, "b"), None);
        model.insert(300, "b".into());
        assert_eq!(m.root(encode), reference(&model));
        // In its bucket, removed, read again with the same bytes and set again:
        // its hash leaves twice, once from the waiting list, once from the bucket.
        m.remove(&300);
        m.insert_read(300, "b".into(), &bytes(300, "b"), None);
        m.insert(300, "b".into());
        assert_eq!(m.root(encode), reference(&model));
    }

    #[test]
    fn only_changed_entries_are_encoded_again() {
        let mut m: DigestMap<u32, String> = DigestMap::new();
        for k in 0..100u32 {
            m.insert(k, String::new());
        }
        let mut encoded = 0;
        m.root(|c, k, v| {
            encoded += 1;
            encode(c, k, v)
        });
        assert_eq!(encoded, 100);
        m.get_mut(&5).unwrap().push('x');
        m.get_mut(&5).unwrap().push('y');
        assert!(m.get_mut_if(&6, |v| !v.is_empty()).is_none(), "declined");
        m.insert(200, String::new());
        m.remove(&7);
        let mut encoded = Vec::new();
        m.root(|c, k, v| {
            encoded.push(*k);
            encode(c, k, v)
        });
        assert_eq!(encoded, [5, 200]);
    }
}
