//! The storage seam: what the ledger needs from a key-value store, and two stores.
//!
//! [`LogStore`] is deliberately narrow: point reads, ordered scans and one atomic
//! [`WriteSet`] commit. The ledger's logic ([`crate::Ledger`], [`crate::verify`])
//! runs unchanged on [`RocksStore`] (production) and [`MemStore`] (tests, and a
//! store that can be told to fail a commit on purpose). `tests/store_suite.rs` runs
//! one suite against both.
//!
//! # What every implementation must guarantee
//! - `commit` is atomic: after it returns, or after a crash at any moment during it,
//!   either every key of the write set is visible or none is.
//! - `commit` is durable on return (RocksDB: WriteBatch with `sync = true`).
//! - Reads see exactly what was committed; nothing is invented or reordered.
//!
//! # Key layout (RocksDB column families), written only by [`keys`]
//! | column family | key | value |
//! |---|---|---|
//! | `entries` | seq, u64 big-endian | the entry's canonical leaf bytes |
//! | `nodes` | level u8, index u64 big-endian | 32-byte hash of that complete subtree |
//! | `checkpoints` | tree size, u64 big-endian | the signed checkpoint note (UTF-8) |
//! | `index` | `e` ‖ tenant ‖ 0x00 ‖ event id | seq of the accepted entry, u64 big-endian |
//! | `meta` | `size`, `cursor`, `origin`, `format`, `cursor_source` | u64 big-endian, or UTF-8 |
//! | `snapshots` | log size u64 ‖ chunk number u32, big-endian | up to [`SNAPSHOT_CHUNK`] bytes of the snapshot at that size |
//!
//! Snapshots are opaque bytes here (their format is `govledger-projections`'): the
//! ledger stores them in chunks so no single RocksDB value grows with the state.
//! The `snapshots` column family was added after the first stores were made: a
//! read-write open adds it, and a read-only open of an older store sees no
//! snapshots.
//!
//! Big-endian numbers make RocksDB's byte order the numeric order, so scans run in
//! seq order.

use crate::tree::{Hash, NodeId, NodeReader, TreeError};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::RwLock;

/// Errors from a store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// RocksDB reported an error.
    #[error("RocksDB: {0}")]
    Rocks(#[from] rocksdb::Error),
    /// A stored value has the wrong shape (the store is damaged).
    #[error("corrupt store: {0}")]
    Corrupt(String),
    /// A commit was failed on purpose ([`MemStore::fail_commit`]).
    #[error("injected write failure at commit {0}")]
    Injected(u64),
    /// The store is open read-only.
    #[error("the store is open read-only")]
    ReadOnly,
}

/// Everything one append (or checkpoint) writes, committed atomically.
#[derive(Clone, Debug, Default)]
pub struct WriteSet {
    /// (seq, leaf bytes)
    pub entries: Vec<(u64, Vec<u8>)>,
    /// New complete-subtree hashes.
    pub nodes: Vec<(NodeId, Hash)>,
    /// (index key, seq)
    pub index: Vec<(Vec<u8>, u64)>,
    /// (tree size, signed note)
    pub checkpoints: Vec<(u64, String)>,
    /// (meta key, value)
    pub meta: Vec<(&'static [u8], Vec<u8>)>,
    /// (log size, chunk number, bytes): pieces of snapshots.
    pub snapshot_chunks: Vec<(u64, u32, Vec<u8>)>,
    /// Log sizes whose snapshots are deleted (before `snapshot_chunks` are written).
    pub drop_snapshots: Vec<u64>,
}

/// Bytes per stored snapshot chunk.
pub const SNAPSHOT_CHUNK: usize = 1 << 20;

/// Bytes in chunk 0 of a snapshot: its first 8 (a snapshot's magic, which
/// names its format), so that its format is read without the rest
/// ([`LogStore::snapshot_head`]). Snapshots stored before this have a chunk 0
/// as large as the others; readers join the chunks whatever their sizes.
pub const SNAPSHOT_HEAD: usize = 8;

/// Key encodings: the one place that decides how keys are laid out.
pub mod keys {
    use crate::tree::NodeId;

    /// Snapshot chunk key: log size, then chunk number.
    pub fn snapshot(size: u64, chunk: u32) -> [u8; 12] {
        let mut k = [0u8; 12];
        k[..8].copy_from_slice(&size.to_be_bytes());
        k[8..].copy_from_slice(&chunk.to_be_bytes());
        k
    }

    /// Meta key: number of entries.
    pub const SIZE: &[u8] = b"size";
    /// Meta key: last applied stream sequence.
    pub const CURSOR: &[u8] = b"cursor";
    /// Meta key: what the cursor counts ([`crate::CursorSource`]), UTF-8.
    pub const CURSOR_SOURCE: &[u8] = b"cursor_source";
    /// Meta key: the log's origin.
    pub const ORIGIN: &[u8] = b"origin";
    /// Meta key: store format version.
    pub const FORMAT: &[u8] = b"format";

    /// `entries` key.
    pub fn seq(seq: u64) -> [u8; 8] {
        seq.to_be_bytes()
    }

    /// `nodes` key.
    pub fn node(id: NodeId) -> [u8; 9] {
        let mut k = [0u8; 9];
        k[0] = id.level;
        k[1..].copy_from_slice(&id.index.to_be_bytes());
        k
    }

    /// `index` key of an accepted event id.
    pub fn event(tenant: &str, event_id: &str) -> Vec<u8> {
        let mut k = Vec::with_capacity(2 + tenant.len() + event_id.len());
        k.push(b'e');
        k.extend_from_slice(tenant.as_bytes());
        k.push(0);
        k.extend_from_slice(event_id.as_bytes());
        k
    }

    /// Reads a big-endian u64.
    pub fn be_u64(v: &[u8]) -> Option<u64> {
        Some(u64::from_be_bytes(v.try_into().ok()?))
    }
}

/// A boxed fallible iterator, as the stores return them.
pub type Scan<'a, T> = Box<dyn Iterator<Item = Result<T, StoreError>> + 'a>;

/// The ledger's storage. See the module docs for the guarantees.
pub trait LogStore: Send + Sync {
    /// A meta value.
    fn meta(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;
    /// Leaf bytes of entry `seq`.
    fn entry(&self, seq: u64) -> Result<Option<Vec<u8>>, StoreError>;
    /// Entries from `from` on, in seq order (as stored: gaps are possible in a
    /// damaged store, and `verify` looks for them).
    fn scan_entries(&self, from: u64) -> Scan<'_, (u64, Vec<u8>)>;
    /// A reader of the stored entries that lends each entry's bytes instead of
    /// copying them, and keeps its position and read-ahead from one
    /// [`EntryCursor::visit`] to the next: folds give each of their threads one.
    /// The default copies each entry out of [`LogStore::scan_entries`].
    fn entry_cursor(&self) -> Box<dyn EntryCursor + '_> {
        Box::new(ScanCursor(self))
    }
    /// A stored node hash.
    fn node(&self, id: NodeId) -> Result<Option<Hash>, StoreError>;
    /// The nodes of one level, in index order.
    fn scan_nodes(&self, level: u8) -> Scan<'_, (u64, Hash)>;
    /// An index value.
    fn index(&self, key: &[u8]) -> Result<Option<u64>, StoreError>;
    /// The signed checkpoint stored for tree size `size`.
    fn checkpoint(&self, size: u64) -> Result<Option<String>, StoreError>;
    /// All stored checkpoints, by size.
    fn scan_checkpoints(&self) -> Scan<'_, (u64, String)>;
    /// The snapshot stored at log size `size`, whole.
    fn snapshot(&self, size: u64) -> Result<Option<Vec<u8>>, StoreError>;
    /// [`LogStore::snapshot`], giving `each` the snapshot's bytes as they are
    /// read, in order (in one call or in pieces; together, every byte of what
    /// it returns, and only those: nothing if it returns `None`, and perhaps
    /// a first part when it fails), so that a caller can work on them while
    /// the rest is read.
    fn snapshot_with(
        &self,
        size: u64,
        each: &mut dyn FnMut(&[u8]),
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let snapshot = self.snapshot(size)?;
        if let Some(bytes) = &snapshot {
            each(bytes);
        }
        Ok(snapshot)
    }
    /// The first chunk of the snapshot stored at log size `size`: its first
    /// [`SNAPSHOT_HEAD`] bytes (more for one stored before they had a chunk
    /// of their own).
    fn snapshot_head(&self, size: u64) -> Result<Option<Vec<u8>>, StoreError>;
    /// The log sizes that have a stored snapshot, ascending.
    fn snapshot_sizes(&self) -> Result<Vec<u64>, StoreError>;
    /// Commits the write set atomically and durably.
    fn commit(&self, set: WriteSet) -> Result<(), StoreError>;
    /// Commits the write set atomically, durable only once a later [`commit`]
    /// returns (RocksDB: no sync; the next synced write syncs it too). For data
    /// that is checked before use (snapshot chunks), written in many pieces.
    ///
    /// [`commit`]: LogStore::commit
    fn commit_unsynced(&self, set: WriteSet) -> Result<(), StoreError> {
        self.commit(set)
    }
}

/// Reads stored entries in seq order, lending their bytes ([`LogStore::entry_cursor`]).
pub trait EntryCursor {
    /// Calls `visit(seq, leaf)` for each stored entry from seq `from` on, in seq
    /// order (as stored, like [`LogStore::scan_entries`]: a damaged store may have
    /// gaps), until `visit` returns `false` or the entries end. `leaf` is lent for
    /// the call only. An `Err` is a read failure, after the entries before it.
    fn visit(
        &mut self,
        from: u64,
        visit: &mut dyn FnMut(u64, &[u8]) -> bool,
    ) -> Result<(), StoreError>;
}

/// The default [`EntryCursor`]: a scan per call, each entry copied.
struct ScanCursor<'a, S: ?Sized>(&'a S);

impl<S: LogStore + ?Sized> EntryCursor for ScanCursor<'_, S> {
    fn visit(
        &mut self,
        from: u64,
        visit: &mut dyn FnMut(u64, &[u8]) -> bool,
    ) -> Result<(), StoreError> {
        for item in self.0.scan_entries(from) {
            let (seq, leaf) = item?;
            if !visit(seq, &leaf) {
                break;
            }
        }
        Ok(())
    }
}

/// Adapts a store to the tree's [`NodeReader`].
pub struct StoreNodes<'a, S: ?Sized>(pub &'a S);

impl<S: LogStore + ?Sized> NodeReader for StoreNodes<'_, S> {
    fn node(&self, id: NodeId) -> Result<Hash, TreeError> {
        match self.0.node(id) {
            Ok(Some(h)) => Ok(h),
            Ok(None) => Err(TreeError::MissingNode {
                level: id.level,
                index: id.index,
            }),
            Err(e) => Err(TreeError::Read(e.to_string())),
        }
    }
}

const CF_ENTRIES: &str = "entries";
/// Block size of the entries' SST files (RocksDB's default is 4 KiB): entries are
/// written once and read mostly in long scans (folds, replays, exports), where
/// each block costs a read, a checksum and a buffer besides its decompression.
const ENTRY_BLOCK_BYTES: usize = 32 << 10;
const CF_NODES: &str = "nodes";
const CF_CHECKPOINTS: &str = "checkpoints";
const CF_INDEX: &str = "index";
const CF_META: &str = "meta";
const CF_SNAPSHOTS: &str = "snapshots";
const CFS: [&str; 6] = [
    CF_ENTRIES,
    CF_NODES,
    CF_CHECKPOINTS,
    CF_INDEX,
    CF_META,
    CF_SNAPSHOTS,
];

/// How to open a RocksDB store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenMode {
    /// Read-write, creating the store if it is missing.
    Create,
    /// Read-write; the store must exist.
    ReadWrite,
    /// Read-only: works while another process holds the store open for writing, and
    /// sees what that process had made durable when this one opened.
    ReadOnly,
}

/// Bytes all memtables together may hold before RocksDB flushes them.
pub const MEMTABLE_BUDGET: usize = 64 << 20;

/// The production store: one RocksDB database with a column family per kind of key.
pub struct RocksStore {
    db: rocksdb::DB,
    read_only: bool,
}

impl RocksStore {
    /// Opens the database at `path`.
    pub fn open(path: &Path, mode: OpenMode) -> Result<Self, StoreError> {
        let mut opts = rocksdb::Options::default();
        opts.create_if_missing(mode == OpenMode::Create);
        // A read-write open adds column families newer than the store (snapshots).
        opts.create_missing_column_families(mode != OpenMode::ReadOnly);
        // Keep the WAL on: durability comes from the synced WriteBatch.
        // Memtables of all column families together stay under this many bytes, so
        // the store's memory does not grow with the log (see README, "Memory").
        opts.set_db_write_buffer_size(MEMTABLE_BUDGET);
        // A read-only open cannot add them: it opens those the store has.
        let existing = match mode {
            OpenMode::ReadOnly => rocksdb::DB::list_cf(&opts, path)?,
            _ => CFS.iter().map(|s| s.to_string()).collect(),
        };
        let cfs = CFS
            .iter()
            .filter(|n| existing.iter().any(|e| e == *n))
            .map(|&name| {
                let mut cf = rocksdb::Options::default();
                // Hashes do not compress; entries (JSON bodies) and the rest do.
                cf.set_compression_type(if name == CF_NODES {
                    rocksdb::DBCompressionType::None
                } else {
                    rocksdb::DBCompressionType::Lz4
                });
                if name == CF_ENTRIES {
                    let mut table = rocksdb::BlockBasedOptions::default();
                    table.set_block_size(ENTRY_BLOCK_BYTES);
                    cf.set_block_based_table_factory(&table);
                }
                rocksdb::ColumnFamilyDescriptor::new(name, cf)
            });
        let db = match mode {
            OpenMode::ReadOnly => {
                rocksdb::DB::open_cf_descriptors_read_only(&opts, path, cfs, false)?
            }
            _ => rocksdb::DB::open_cf_descriptors(&opts, path, cfs)?,
        };
        Ok(RocksStore {
            db,
            read_only: mode == OpenMode::ReadOnly,
        })
    }

    fn cf(&self, name: &str) -> Result<&rocksdb::ColumnFamily, StoreError> {
        self.db
            .cf_handle(name)
            .ok_or_else(|| StoreError::Corrupt(format!("column family {name} is missing")))
    }

    /// Read options for long ordered scans: blocks are not kept in the block cache
    /// (a scan would evict everything else for data it reads once) and the files
    /// are read ahead in large pieces.
    ///
    /// Also turns RocksDB's performance counters off on the calling thread, the
    /// thread that makes the scan and reads with it. They are thread-local, on by
    /// default (counts), bumped at every step of an iterator, and never read by
    /// govledger (`docs/BENCHMARKS.md`, stop 27).
    fn scan_options() -> rocksdb::ReadOptions {
        rocksdb::perf::set_perf_stats(rocksdb::perf::PerfStatsLevel::Disable);
        let mut ro = rocksdb::ReadOptions::default();
        ro.fill_cache(false);
        ro.set_readahead_size(4 << 20);
        ro
    }

    fn scan_cf<'a, T: 'a>(
        &'a self,
        cf: &str,
        from: Vec<u8>,
        map: impl Fn(&[u8], &[u8]) -> Result<Option<T>, StoreError> + 'a,
    ) -> Scan<'a, T> {
        let cf = match self.cf(cf) {
            Ok(cf) => cf,
            Err(e) => return Box::new(std::iter::once(Err(e))),
        };
        // A raw iterator hands out borrowed slices: one allocation per item (the
        // caller's), not three.
        let mut it = self.db.raw_iterator_cf_opt(cf, Self::scan_options());
        it.seek(&from);
        let mut done = false;
        Box::new(std::iter::from_fn(move || {
            if done {
                return None;
            }
            let item = match (it.key(), it.value()) {
                (Some(k), Some(v)) => map(k, v),
                _ => {
                    done = true;
                    return it.status().err().map(|e| Err(e.into()));
                }
            };
            it.next();
            match item {
                Ok(Some(t)) => Some(Ok(t)),
                Ok(None) => {
                    done = true;
                    None
                }
                Err(e) => {
                    done = true;
                    Some(Err(e))
                }
            }
        }))
    }
}

/// [`RocksStore`]'s [`EntryCursor`]: one raw iterator, sought to each `from`, whose
/// values are lent straight from RocksDB's buffers.
struct RocksCursor<'a>(Option<rocksdb::DBRawIterator<'a>>);

impl EntryCursor for RocksCursor<'_> {
    fn visit(
        &mut self,
        from: u64,
        visit: &mut dyn FnMut(u64, &[u8]) -> bool,
    ) -> Result<(), StoreError> {
        let it = self
            .0
            .as_mut()
            .ok_or_else(|| StoreError::Corrupt(format!("column family {CF_ENTRIES} is missing")))?;
        it.seek(keys::seq(from));
        while let (Some(k), Some(v)) = (it.key(), it.value()) {
            let seq = keys::be_u64(k)
                .ok_or_else(|| StoreError::Corrupt("entry key is not a u64".into()))?;
            if !visit(seq, v) {
                return Ok(());
            }
            it.next();
        }
        Ok(it.status()?)
    }
}

fn hash_value(v: &[u8]) -> Result<Hash, StoreError> {
    v.try_into()
        .map_err(|_| StoreError::Corrupt(format!("node value has {} bytes, not 32", v.len())))
}

fn u64_value(v: &[u8]) -> Result<u64, StoreError> {
    keys::be_u64(v).ok_or_else(|| StoreError::Corrupt(format!("{} bytes, not a u64", v.len())))
}

impl LogStore for RocksStore {
    fn meta(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.db.get_cf(self.cf(CF_META)?, key)?)
    }

    fn entry(&self, seq: u64) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.db.get_cf(self.cf(CF_ENTRIES)?, keys::seq(seq))?)
    }

    fn scan_entries(&self, from: u64) -> Scan<'_, (u64, Vec<u8>)> {
        self.scan_cf(CF_ENTRIES, keys::seq(from).to_vec(), |k, v| {
            let seq = keys::be_u64(k)
                .ok_or_else(|| StoreError::Corrupt("entry key is not a u64".into()))?;
            Ok(Some((seq, v.to_vec())))
        })
    }

    fn entry_cursor(&self) -> Box<dyn EntryCursor + '_> {
        // Without the column family (never in a store this opened), each visit
        // reports it.
        let it = self.cf(CF_ENTRIES).ok();
        Box::new(RocksCursor(
            it.map(|cf| self.db.raw_iterator_cf_opt(cf, Self::scan_options())),
        ))
    }

    fn node(&self, id: NodeId) -> Result<Option<Hash>, StoreError> {
        match self.db.get_pinned_cf(self.cf(CF_NODES)?, keys::node(id))? {
            Some(v) => Ok(Some(hash_value(&v)?)),
            None => Ok(None),
        }
    }

    fn scan_nodes(&self, level: u8) -> Scan<'_, (u64, Hash)> {
        self.scan_cf(
            CF_NODES,
            keys::node(NodeId::new(level, 0)).to_vec(),
            move |k, v| {
                if k.len() != 9 {
                    return Err(StoreError::Corrupt("node key is not 9 bytes".into()));
                }
                if k[0] != level {
                    return Ok(None);
                }
                let index = keys::be_u64(&k[1..]).unwrap_or_default();
                Ok(Some((index, hash_value(v)?)))
            },
        )
    }

    fn index(&self, key: &[u8]) -> Result<Option<u64>, StoreError> {
        match self.db.get_pinned_cf(self.cf(CF_INDEX)?, key)? {
            Some(v) => Ok(Some(u64_value(&v)?)),
            None => Ok(None),
        }
    }

    fn checkpoint(&self, size: u64) -> Result<Option<String>, StoreError> {
        match self.db.get_cf(self.cf(CF_CHECKPOINTS)?, keys::seq(size))? {
            Some(v) => Ok(Some(String::from_utf8(v).map_err(|_| {
                StoreError::Corrupt(format!("checkpoint at size {size} is not UTF-8"))
            })?)),
            None => Ok(None),
        }
    }

    fn scan_checkpoints(&self) -> Scan<'_, (u64, String)> {
        self.scan_cf(CF_CHECKPOINTS, Vec::new(), |k, v| {
            let size = keys::be_u64(k)
                .ok_or_else(|| StoreError::Corrupt("checkpoint key is not a u64".into()))?;
            let note = String::from_utf8(v.to_vec()).map_err(|_| {
                StoreError::Corrupt(format!("checkpoint at size {size} is not UTF-8"))
            })?;
            Ok(Some((size, note)))
        })
    }

    fn snapshot(&self, size: u64) -> Result<Option<Vec<u8>>, StoreError> {
        self.snapshot_with(size, &mut |_| {})
    }

    fn snapshot_with(
        &self,
        size: u64,
        each: &mut dyn FnMut(&[u8]),
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let Some(cf) = self.db.cf_handle(CF_SNAPSHOTS) else {
            return Ok(None);
        };
        // Read as the entries are, past the block cache: each 1 MiB chunk is a
        // block of its own, read once per start. Cached, every block kept a
        // megabyte of freshly mapped memory of its own, whose page faults cost
        // a process that restores once (as `replay` does) a third of the read;
        // passed by, they reuse one buffer (docs/BENCHMARKS.md, stop 36).
        let mut it = self.db.raw_iterator_cf_opt(cf, Self::scan_options());
        // The last chunk's number bounds the length (every chunk before it
        // holds at most SNAPSHOT_CHUNK bytes): room for it all at once, not a
        // buffer doubled (and copied) a dozen times on the way.
        it.seek_for_prev(keys::snapshot(size, u32::MAX));
        let room = match (it.key(), it.value()) {
            (Some(k), Some(v)) if k.len() == 12 && keys::be_u64(&k[..8]) == Some(size) => {
                let last = u32::from_be_bytes([k[8], k[9], k[10], k[11]]) as usize;
                last.saturating_mul(SNAPSHOT_CHUNK).saturating_add(v.len())
            }
            _ => 0,
        };
        it.seek(keys::snapshot(size, 0));
        let mut out: Option<Vec<u8>> = None;
        let mut next = 0u32;
        while let (Some(k), Some(v)) = (it.key(), it.value()) {
            if k.len() != 12 || keys::be_u64(&k[..8]) != Some(size) {
                break;
            }
            if k[8..] != next.to_be_bytes() {
                return Err(StoreError::Corrupt(format!(
                    "snapshot at size {size} is missing chunk {next}"
                )));
            }
            out.get_or_insert_with(|| {
                // A damaged store's chunk numbers are no promise: room only
                // if it can be had (the read fails at the first missing chunk).
                let mut buf = Vec::new();
                let _ = buf.try_reserve_exact(room);
                buf
            })
            .extend_from_slice(v);
            each(v);
            next += 1;
            it.next();
        }
        it.status()?;
        Ok(out)
    }

    fn snapshot_head(&self, size: u64) -> Result<Option<Vec<u8>>, StoreError> {
        let Some(cf) = self.db.cf_handle(CF_SNAPSHOTS) else {
            return Ok(None);
        };
        Ok(self.db.get_cf(cf, keys::snapshot(size, 0))?)
    }

    fn snapshot_sizes(&self) -> Result<Vec<u64>, StoreError> {
        let Some(cf) = self.db.cf_handle(CF_SNAPSHOTS) else {
            return Ok(Vec::new());
        };
        let mut it = self.db.raw_iterator_cf(cf);
        let mut sizes = Vec::new();
        it.seek_to_first();
        // One seek per snapshot, not one step per chunk.
        while let Some(k) = it.key() {
            let size = k
                .get(..8)
                .and_then(keys::be_u64)
                .ok_or_else(|| StoreError::Corrupt("snapshot key is too short".into()))?;
            sizes.push(size);
            match size.checked_add(1) {
                Some(n) => it.seek(keys::snapshot(n, 0)),
                None => break,
            }
        }
        it.status()?;
        Ok(sizes)
    }

    fn commit(&self, set: WriteSet) -> Result<(), StoreError> {
        self.write(set, true)
    }

    fn commit_unsynced(&self, set: WriteSet) -> Result<(), StoreError> {
        self.write(set, false)
    }
}

/// A clean close of a writable store flushes its memtables to table files, so the
/// next open need not replay the write-ahead log: a read-only open (`export`,
/// `verify`, `replay`, `state` use one) replays it on every open and cannot write
/// the result out, which cost up to [`MEMTABLE_BUDGET`] of log replay per command.
/// A crash skips this and loses nothing: the log is replayed instead.
impl Drop for RocksStore {
    fn drop(&mut self) {
        if self.read_only {
            return;
        }
        let cfs: Vec<_> = CFS.iter().filter_map(|n| self.db.cf_handle(n)).collect();
        // Nothing depends on it: a failure only leaves the log to be replayed.
        let _ = self
            .db
            .flush_cfs_opt(&cfs, &rocksdb::FlushOptions::default());
    }
}

impl RocksStore {
    fn write(&self, set: WriteSet, sync: bool) -> Result<(), StoreError> {
        if self.read_only {
            return Err(StoreError::ReadOnly);
        }
        let mut batch = rocksdb::WriteBatch::default();
        let entries = self.cf(CF_ENTRIES)?;
        for (seq, leaf) in &set.entries {
            batch.put_cf(entries, keys::seq(*seq), leaf);
        }
        let nodes = self.cf(CF_NODES)?;
        for (id, h) in &set.nodes {
            batch.put_cf(nodes, keys::node(*id), h);
        }
        let index = self.cf(CF_INDEX)?;
        for (k, seq) in &set.index {
            batch.put_cf(index, k, seq.to_be_bytes());
        }
        let cps = self.cf(CF_CHECKPOINTS)?;
        for (size, note) in &set.checkpoints {
            batch.put_cf(cps, keys::seq(*size), note.as_bytes());
        }
        let meta = self.cf(CF_META)?;
        for (k, v) in &set.meta {
            batch.put_cf(meta, k, v);
        }
        if !set.snapshot_chunks.is_empty() || !set.drop_snapshots.is_empty() {
            let snaps = self.cf(CF_SNAPSHOTS)?;
            for size in &set.drop_snapshots {
                let end = size
                    .checked_add(1)
                    .map_or([0xff; 12], |e| keys::snapshot(e, 0));
                batch.delete_range_cf(snaps, keys::snapshot(*size, 0), end);
            }
            for (size, chunk, bytes) in &set.snapshot_chunks {
                batch.put_cf(snaps, keys::snapshot(*size, *chunk), bytes);
            }
        }
        let mut wo = rocksdb::WriteOptions::default();
        wo.set_sync(sync);
        self.db.write_opt(batch, &wo)?;
        Ok(())
    }
}

/// The in-memory twin of [`RocksStore`], for tests. It keeps the same guarantees
/// (atomic commit; "durable" meaning visible to later reads) and can be told to fail
/// a chosen commit, leaving nothing of it behind.
#[derive(Default)]
pub struct MemStore {
    inner: RwLock<MemInner>,
    commits: AtomicU64,
    fail_at: AtomicU64,
}

#[derive(Default)]
struct MemInner {
    entries: BTreeMap<u64, Vec<u8>>,
    nodes: BTreeMap<NodeId, Hash>,
    index: BTreeMap<Vec<u8>, u64>,
    checkpoints: BTreeMap<u64, String>,
    meta: BTreeMap<Vec<u8>, Vec<u8>>,
    snapshots: BTreeMap<(u64, u32), Vec<u8>>,
}

impl MemStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes the `n`-th commit from now on (1 = the next one) fail without applying
    /// anything. 0 disarms.
    pub fn fail_commit(&self, n: u64) {
        let at = if n == 0 {
            0
        } else {
            self.commits.load(Ordering::SeqCst) + n
        };
        self.fail_at.store(at, Ordering::SeqCst);
    }

    /// Number of commits attempted so far.
    pub fn commits(&self) -> u64 {
        self.commits.load(Ordering::SeqCst)
    }

    /// Runs `f` on the raw maps, to simulate tampering in tests.
    pub fn tamper(&self, f: impl FnOnce(&mut BTreeMap<u64, Vec<u8>>, &mut BTreeMap<NodeId, Hash>)) {
        let mut g = self.inner.write().unwrap_or_else(|e| e.into_inner());
        let MemInner { entries, nodes, .. } = &mut *g;
        f(entries, nodes);
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, MemInner> {
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }
}

impl LogStore for MemStore {
    fn meta(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.read().meta.get(key).cloned())
    }

    fn entry(&self, seq: u64) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.read().entries.get(&seq).cloned())
    }

    fn scan_entries(&self, from: u64) -> Scan<'_, (u64, Vec<u8>)> {
        let items: Vec<_> = self
            .read()
            .entries
            .range(from..)
            .map(|(k, v)| Ok((*k, v.clone())))
            .collect();
        Box::new(items.into_iter())
    }

    fn node(&self, id: NodeId) -> Result<Option<Hash>, StoreError> {
        Ok(self.read().nodes.get(&id).copied())
    }

    fn scan_nodes(&self, level: u8) -> Scan<'_, (u64, Hash)> {
        let items: Vec<_> = self
            .read()
            .nodes
            .range(NodeId::new(level, 0)..=NodeId::new(level, u64::MAX))
            .map(|(k, v)| Ok((k.index, *v)))
            .collect();
        Box::new(items.into_iter())
    }

    fn index(&self, key: &[u8]) -> Result<Option<u64>, StoreError> {
        Ok(self.read().index.get(key).copied())
    }

    fn checkpoint(&self, size: u64) -> Result<Option<String>, StoreError> {
        Ok(self.read().checkpoints.get(&size).cloned())
    }

    fn scan_checkpoints(&self) -> Scan<'_, (u64, String)> {
        let items: Vec<_> = self
            .read()
            .checkpoints
            .iter()
            .map(|(k, v)| Ok((*k, v.clone())))
            .collect();
        Box::new(items.into_iter())
    }

    fn snapshot(&self, size: u64) -> Result<Option<Vec<u8>>, StoreError> {
        let g = self.read();
        let mut out: Option<Vec<u8>> = None;
        for (i, ((_, chunk), bytes)) in g.snapshots.range((size, 0)..=(size, u32::MAX)).enumerate()
        {
            if *chunk as usize != i {
                return Err(StoreError::Corrupt(format!(
                    "snapshot at size {size} is missing chunk {i}"
                )));
            }
            out.get_or_insert_with(Vec::new).extend_from_slice(bytes);
        }
        Ok(out)
    }

    fn snapshot_head(&self, size: u64) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.read().snapshots.get(&(size, 0)).cloned())
    }

    fn snapshot_sizes(&self) -> Result<Vec<u64>, StoreError> {
        let mut sizes: Vec<u64> = self.read().snapshots.keys().map(|(s, _)| *s).collect();
        sizes.dedup();
        Ok(sizes)
    }

    fn commit(&self, set: WriteSet) -> Result<(), StoreError> {
        let n = self.commits.fetch_add(1, Ordering::SeqCst) + 1;
        if self.fail_at.load(Ordering::SeqCst) == n {
            return Err(StoreError::Injected(n));
        }
        // Every key is applied under one write lock; readers see all of it or none.
        let mut g = self.inner.write().unwrap_or_else(|e| e.into_inner());
        g.entries.extend(set.entries);
        g.nodes.extend(set.nodes);
        g.index.extend(set.index);
        g.checkpoints.extend(set.checkpoints);
        for (k, v) in set.meta {
            g.meta.insert(k.to_vec(), v);
        }
        for size in set.drop_snapshots {
            g.snapshots.retain(|(s, _), _| *s != size);
        }
        for (size, chunk, bytes) in set.snapshot_chunks {
            g.snapshots.insert((size, chunk), bytes);
        }
        Ok(())
    }
}
