//! govledger's tamper-evident log.
//!
//! **Its one job:** keep the sequence of ledger entries durable and provable. Every
//! entry is a leaf of an RFC 6962 Merkle tree whose nodes are persisted beside it;
//! checkpoints sign the tree head as C2SP signed notes; proofs of inclusion and
//! consistency are served from the stored nodes in O(log n) reads; [`verify`]
//! re-walks everything.
//!
//! **What it never does:** interpret governance. It does not know what a budget or
//! an approval is; the projected state reaches it only as an opaque digest for the
//! checkpoint's extension line. It never reads the wall clock.
//!
//! **Who calls it:** `govledger-ingest` appends admitted entries; `govledger-replay`
//! and the CLI read entries, proofs and checkpoints.
//!
//! # Modules
//! - [`tree`]: the RFC 6962 mathematics (hashes, persistent nodes, proofs, checks).
//! - [`note`], [`checkpoint`]: C2SP signed notes and tlog-checkpoint bodies.
//! - [`store`]: the storage seam, the RocksDB store and its in-memory twin.
//! - [`verify`]: the full integrity walk.
//!
//! # Atomicity
//! [`Ledger::append`] turns a batch into one [`store::WriteSet`]: entries, the tree
//! nodes they complete, the event-id index, the new size and the caller's stream
//! cursor. The store commits it as one synced RocksDB WriteBatch, so after a crash
//! the log holds whole batches only, and the cursor names the last one.

pub mod checkpoint;
pub mod note;
pub mod store;
pub mod tree;
pub mod verify;

use checkpoint::{Checkpoint, CheckpointError, StateDigest};
use govledger_schemas::{decode_entry, encode_entry, CodecError, Entry, Seq, Verdict};
use note::{NoteError, NoteSigner};
use std::sync::Arc;
use store::{keys, LogStore, StoreError, StoreNodes, WriteSet, SNAPSHOT_CHUNK, SNAPSHOT_HEAD};
use tree::{Frontier, Hash, NodeId, TreeError};

/// The store format version written at creation.
pub const FORMAT_VERSION: u64 = 1;

/// Errors of ledger operations.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LedgerError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The tree could not be read (missing nodes mean a damaged store).
    #[error(transparent)]
    Tree(#[from] TreeError),
    /// A stored entry does not decode.
    #[error("entry {seq} does not decode: {source}")]
    Codec {
        /// The entry.
        seq: u64,
        /// Why.
        source: CodecError,
    },
    /// Signing a checkpoint failed.
    #[error(transparent)]
    Note(#[from] NoteError),
    /// A stored checkpoint is unreadable.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// The store has not been initialised.
    #[error("no ledger here: the store has no origin (run `govledger init` first)")]
    NotInitialized,
    /// The store was written by an unknown version.
    #[error("store format {0} is not supported by this govledger (expects {expected})", expected = FORMAT_VERSION)]
    Format(u64),
    /// A question about entries or sizes the log does not have.
    #[error("{0}")]
    OutOfRange(String),
    /// The cursor already counts something else than a writer needs it to.
    #[error("this ledger's cursor counts {held}, and {wanted} would be read against it: {advice}", held = held.describe(), wanted = wanted.describe(), advice = wanted.advice())]
    CursorClaimed {
        /// What the writer needs the cursor to count.
        wanted: CursorSource,
        /// What it counts.
        held: CursorSource,
    },
}

/// What a ledger's cursor counts: `serve`'s stream sequences or the line
/// numbers of `append --resume`'s input file. The two cannot share a cursor (a
/// line number read as a stream sequence skips that many messages), so the
/// first writer of either kind claims it ([`Ledger::claim_cursor`]) and the
/// other kind is refused from then on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CursorSource {
    /// JetStream stream sequences (`serve`).
    Stream,
    /// Line numbers of one input file (`append --resume`).
    Lines,
}

impl CursorSource {
    /// As stored in the `meta` key `cursor_source`.
    pub fn as_str(self) -> &'static str {
        match self {
            CursorSource::Stream => "stream",
            CursorSource::Lines => "lines",
        }
    }

    fn describe(self) -> &'static str {
        match self {
            CursorSource::Stream => "stream sequences (`serve`)",
            CursorSource::Lines => "the lines of an input file (`append --resume`)",
        }
    }

    fn advice(self) -> &'static str {
        match self {
            CursorSource::Stream => "serve a ledger of its own (`govledger init` another data dir)",
            CursorSource::Lines => "append without --resume, or into a ledger of its own",
        }
    }
}

/// What an append reports for each entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Appended {
    /// The entry's position.
    pub seq: Seq,
    /// Its leaf hash.
    pub leaf_hash: Hash,
}

/// A signed checkpoint as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedCheckpoint {
    /// The parsed body.
    pub checkpoint: Checkpoint,
    /// The whole signed note text.
    pub note: String,
}

/// The ledger over a store.
pub struct Ledger<S: LogStore> {
    /// Shared only with [`SnapshotStore`] handles.
    store: Arc<S>,
    origin: String,
    /// The right edge of the tree (O(log n) hashes): appends extend it in memory,
    /// so an append reads nothing from the store.
    frontier: Frontier,
}

fn meta_u64(store: &dyn LogStore, key: &[u8]) -> Result<Option<u64>, LedgerError> {
    match store.meta(key)? {
        None => Ok(None),
        Some(v) => keys::be_u64(&v).map(Some).ok_or_else(|| {
            StoreError::Corrupt(format!(
                "meta {} is not a u64",
                String::from_utf8_lossy(key)
            ))
            .into()
        }),
    }
}

impl<S: LogStore> Ledger<S> {
    /// Writes the origin and format into a new, empty store.
    pub fn create(store: S, origin: &str) -> Result<Self, LedgerError> {
        if store.meta(keys::ORIGIN)?.is_none() {
            store.commit(WriteSet {
                meta: vec![
                    (keys::ORIGIN, origin.as_bytes().to_vec()),
                    (keys::FORMAT, FORMAT_VERSION.to_be_bytes().to_vec()),
                    (keys::SIZE, 0u64.to_be_bytes().to_vec()),
                ],
                ..WriteSet::default()
            })?;
        }
        Self::open(store)
    }

    /// Opens an initialised store.
    pub fn open(store: S) -> Result<Self, LedgerError> {
        let origin = store
            .meta(keys::ORIGIN)?
            .ok_or(LedgerError::NotInitialized)?;
        let origin = String::from_utf8(origin)
            .map_err(|_| StoreError::Corrupt("origin is not UTF-8".into()))?;
        let format = meta_u64(&store, keys::FORMAT)?.unwrap_or(0);
        if format != FORMAT_VERSION {
            return Err(LedgerError::Format(format));
        }
        let size = meta_u64(&store, keys::SIZE)?.unwrap_or(0);
        let frontier = Frontier::from_nodes(&StoreNodes(&store), size)?;
        Ok(Ledger {
            store: Arc::new(store),
            origin,
            frontier,
        })
    }

    /// The store underneath.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Gives the store back (to close or reopen it); the ledger again while a
    /// [`SnapshotStore`] still shares it.
    pub fn into_store(self) -> Result<S, Self> {
        Arc::try_unwrap(self.store).map_err(|store| Ledger {
            store,
            origin: self.origin,
            frontier: self.frontier,
        })
    }

    /// A handle that stores snapshots beside the ledger's appends, from any
    /// thread (`serve` writes them on a thread of its own). While one lives, the
    /// store stays open even if the ledger is dropped.
    pub fn snapshot_store(&self) -> SnapshotStore<S> {
        SnapshotStore {
            store: Arc::clone(&self.store),
        }
    }

    /// The log's origin (its name in checkpoints).
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Number of entries.
    pub fn size(&self) -> u64 {
        self.frontier.size()
    }

    /// The last applied stream sequence, written with the batch that applied it.
    pub fn cursor(&self) -> Result<Option<u64>, LedgerError> {
        meta_u64(&*self.store, keys::CURSOR)
    }

    /// What the cursor counts, as its first writer claimed it; `None` for a
    /// ledger whose cursor predates the claim (or that has none).
    pub fn cursor_source(&self) -> Result<Option<CursorSource>, LedgerError> {
        let Some(v) = self.store.meta(keys::CURSOR_SOURCE)? else {
            return Ok(None);
        };
        match v.as_slice() {
            b"stream" => Ok(Some(CursorSource::Stream)),
            b"lines" => Ok(Some(CursorSource::Lines)),
            other => Err(StoreError::Corrupt(format!(
                "meta cursor_source is {:?}, neither \"stream\" nor \"lines\"",
                String::from_utf8_lossy(other)
            ))
            .into()),
        }
    }

    /// Claims the cursor for `source` (durably), or says why it cannot be: it
    /// already counts the other thing. A ledger whose cursor predates the claim
    /// is claimed as it stands.
    pub fn claim_cursor(&mut self, source: CursorSource) -> Result<(), LedgerError> {
        match self.cursor_source()? {
            Some(s) if s == source => Ok(()),
            Some(other) => Err(LedgerError::CursorClaimed {
                wanted: source,
                held: other,
            }),
            None => {
                let mut set = WriteSet::default();
                set.meta
                    .push((keys::CURSOR_SOURCE, source.as_str().as_bytes().to_vec()));
                Ok(self.store.commit(set)?)
            }
        }
    }

    /// The seq of the accepted entry with this event id, if any.
    pub fn find_event(&self, tenant: &str, event_id: &str) -> Result<Option<Seq>, LedgerError> {
        Ok(self.store.index(&keys::event(tenant, event_id))?.map(Seq))
    }

    /// Appends `entries` in order as one atomic, durable batch, assigning their
    /// seqs (written into `entries`), and records `cursor` (the last stream sequence they cover) with them.
    /// Accepted entries are indexed by (tenant, event id); the caller (admission)
    /// has already turned repeated ids into `duplicate` rejections.
    pub fn append(
        &mut self,
        entries: &mut [Entry],
        cursor: Option<u64>,
    ) -> Result<Vec<Appended>, LedgerError> {
        let mut set = WriteSet::default();
        let mut frontier = self.frontier.clone();
        let mut out = Vec::with_capacity(entries.len());
        set.entries.reserve(entries.len());
        set.nodes.reserve(2 * entries.len());
        for entry in entries.iter_mut() {
            let seq = frontier.size();
            entry.seq = Seq(seq);
            let leaf = encode_entry(entry);
            let lh = tree::leaf_hash(&leaf);
            frontier.push(lh, |id, h| set.nodes.push((id, *h)));
            if let Verdict::Accepted {
                event_id, tenant, ..
            } = &entry.verdict
            {
                set.index.push((keys::event(tenant, event_id), seq));
            }
            set.entries.push((seq, leaf));
            out.push(Appended {
                seq: Seq(seq),
                leaf_hash: lh,
            });
        }
        // Key order: RocksDB's memtable inserts a sorted run far faster than keys
        // alternating between tree levels or tenants.
        set.nodes.sort_unstable_by_key(|(id, _)| *id);
        set.index.sort_unstable();
        set.meta
            .push((keys::SIZE, frontier.size().to_be_bytes().to_vec()));
        if let Some(c) = cursor {
            set.meta.push((keys::CURSOR, c.to_be_bytes().to_vec()));
        }
        // Only a committed batch moves the in-memory edge.
        self.store.commit(set)?;
        self.frontier = frontier;
        Ok(out)
    }

    /// The leaf bytes and decoded entry at `seq`.
    pub fn entry(&self, seq: u64) -> Result<(Vec<u8>, Entry), LedgerError> {
        if seq >= self.size() {
            return Err(LedgerError::OutOfRange(format!(
                "entry {seq} does not exist: the log has {} entries",
                self.size()
            )));
        }
        let leaf = self
            .store
            .entry(seq)?
            .ok_or_else(|| StoreError::Corrupt(format!("entry {seq} is missing from the store")))?;
        let entry = decode_entry(&leaf).map_err(|source| LedgerError::Codec { seq, source })?;
        Ok((leaf, entry))
    }

    /// The leaf hash of `seq`, as stored in the tree.
    pub fn leaf_hash(&self, seq: u64) -> Result<Hash, LedgerError> {
        self.check_size(seq + 1)?;
        Ok(tree::NodeReader::node(
            &StoreNodes(&*self.store),
            NodeId::new(0, seq),
        )?)
    }

    fn check_size(&self, size: u64) -> Result<(), LedgerError> {
        if size > self.size() {
            return Err(LedgerError::OutOfRange(format!(
                "tree size {size} is beyond the log's {} entries",
                self.size()
            )));
        }
        Ok(())
    }

    /// The root of the tree of the first `size` entries.
    pub fn root_at(&self, size: u64) -> Result<Hash, LedgerError> {
        self.check_size(size)?;
        Ok(tree::root(&StoreNodes(&*self.store), size)?)
    }

    /// The current root (from memory: no reads).
    pub fn root(&self) -> Result<Hash, LedgerError> {
        Ok(self.frontier.root())
    }

    /// Inclusion proof of `seq` in the tree of `size` entries.
    pub fn inclusion_proof(&self, seq: u64, size: u64) -> Result<Vec<Hash>, LedgerError> {
        self.check_size(size)?;
        if seq >= size {
            return Err(LedgerError::OutOfRange(format!(
                "entry {seq} is not in a tree of size {size}"
            )));
        }
        Ok(tree::inclusion_proof(&StoreNodes(&*self.store), seq, size)?)
    }

    /// Consistency proof between the trees of `old` and `new` entries.
    pub fn consistency_proof(&self, old: u64, new: u64) -> Result<Vec<Hash>, LedgerError> {
        self.check_size(new)?;
        if old > new {
            return Err(LedgerError::OutOfRange(format!(
                "old size {old} is larger than new size {new}"
            )));
        }
        Ok(tree::consistency_proof(
            &StoreNodes(&*self.store),
            old,
            new,
        )?)
    }

    /// Signs and stores a checkpoint of the current tree, carrying `state_digest`
    /// in its extension line. Returns the stored one if this size is already
    /// checkpointed (checkpoints are never rewritten).
    pub fn checkpoint(
        &mut self,
        signer: &NoteSigner,
        state_digest: Option<StateDigest>,
    ) -> Result<SignedCheckpoint, LedgerError> {
        if let Some(existing) = self.checkpoint_at(self.size())? {
            return Ok(existing);
        }
        if state_digest.is_some_and(|d| d.version == 0) {
            return Err(
                CheckpointError::Malformed("there is no state digest version 0".into()).into(),
            );
        }
        let cp = Checkpoint {
            origin: self.origin.clone(),
            size: self.size(),
            root: self.root()?,
            state_digest,
            extensions: Vec::new(),
        };
        let note = cp.sign(signer)?;
        self.store.commit(WriteSet {
            checkpoints: vec![(self.size(), note.clone())],
            ..WriteSet::default()
        })?;
        Ok(SignedCheckpoint {
            checkpoint: cp,
            note,
        })
    }

    /// The stored checkpoint at exactly `size`.
    pub fn checkpoint_at(&self, size: u64) -> Result<Option<SignedCheckpoint>, LedgerError> {
        match self.store.checkpoint(size)? {
            None => Ok(None),
            Some(note) => Ok(Some(parse_stored(note)?)),
        }
    }

    /// The newest stored checkpoint.
    pub fn latest_checkpoint(&self) -> Result<Option<SignedCheckpoint>, LedgerError> {
        let mut last = None;
        for item in self.store.scan_checkpoints() {
            last = Some(item?);
        }
        last.map(|(_, note)| parse_stored(note)).transpose()
    }

    /// The smallest stored checkpoint whose size is at least `size`.
    pub fn checkpoint_covering(&self, size: u64) -> Result<Option<SignedCheckpoint>, LedgerError> {
        for item in self.store.scan_checkpoints() {
            let (s, note) = item?;
            if s >= size {
                return Ok(Some(parse_stored(note)?));
            }
        }
        Ok(None)
    }

    /// Stores `bytes` as the snapshot of the state after `size` entries, and
    /// deletes the snapshots at the sizes in `drop`; durable on return. The ledger
    /// does not read snapshots; see `govledger_projections::snapshot`.
    pub fn put_snapshot(&self, size: u64, bytes: Vec<u8>, drop: &[u64]) -> Result<(), LedgerError> {
        let mut w = self.snapshot_writer(size)?;
        w.put(&bytes)?;
        w.finish(drop)
    }

    /// A writer that streams a snapshot at log size `size` into the store chunk by
    /// chunk, so memory stays constant whatever its length; it replaces any
    /// snapshot already at that size. Until [`SnapshotWriter::finish`] returns, a
    /// crash can leave a partial snapshot, which its own checksum then refuses.
    pub fn snapshot_writer(&self, size: u64) -> Result<SnapshotWriter<'_, S>, LedgerError> {
        open_snapshot(&self.store, size, self.size())
    }

    /// The stored snapshot at log size `size`.
    pub fn snapshot(&self, size: u64) -> Result<Option<Vec<u8>>, LedgerError> {
        Ok(self.store.snapshot(size)?)
    }

    /// [`Ledger::snapshot`], giving `each` its bytes in order as they are
    /// read ([`LogStore::snapshot_with`]).
    pub fn snapshot_with(
        &self,
        size: u64,
        each: &mut dyn FnMut(&[u8]),
    ) -> Result<Option<Vec<u8>>, LedgerError> {
        Ok(self.store.snapshot_with(size, each)?)
    }

    /// The first bytes of the stored snapshot at log size `size`, at least its
    /// first 8 (its magic) unless it is shorter: cheap to read, as chunk 0
    /// holds only those ([`store::SNAPSHOT_HEAD`]).
    pub fn snapshot_head(&self, size: u64) -> Result<Option<Vec<u8>>, LedgerError> {
        Ok(self.store.snapshot_head(size)?)
    }

    /// The log sizes with a stored snapshot, ascending.
    pub fn snapshot_sizes(&self) -> Result<Vec<u64>, LedgerError> {
        Ok(self.store.snapshot_sizes()?)
    }
}

/// Stores snapshots into a ledger's store from any thread
/// ([`Ledger::snapshot_store`]). Appends and checkpoints never touch the
/// snapshots' column family (only snapshot writers and readers do), so a
/// snapshot written here beside appends cannot disturb them.
pub struct SnapshotStore<S: LogStore> {
    store: Arc<S>,
}

impl<S: LogStore> Clone for SnapshotStore<S> {
    fn clone(&self) -> Self {
        SnapshotStore {
            store: Arc::clone(&self.store),
        }
    }
}

impl<S: LogStore> SnapshotStore<S> {
    /// [`Ledger::snapshot_writer`]: `size` must be at most the log's durable
    /// size, read from the store.
    pub fn writer(&self, size: u64) -> Result<SnapshotWriter<'_, S>, LedgerError> {
        let durable = meta_u64(&*self.store, keys::SIZE)?.unwrap_or(0);
        open_snapshot(&self.store, size, durable)
    }

    /// The log sizes with a stored snapshot, ascending.
    pub fn sizes(&self) -> Result<Vec<u64>, LedgerError> {
        Ok(self.store.snapshot_sizes()?)
    }

    /// Deletes the snapshot at `size`, whole or partial (synced).
    pub fn remove(&self, size: u64) -> Result<(), LedgerError> {
        self.store.commit(WriteSet {
            drop_snapshots: vec![size],
            ..WriteSet::default()
        })?;
        Ok(())
    }
}

/// A writer of the snapshot at `size` in a log of `log_size` entries; it first
/// deletes any snapshot already at that size.
fn open_snapshot<S: LogStore>(
    store: &S,
    size: u64,
    log_size: u64,
) -> Result<SnapshotWriter<'_, S>, LedgerError> {
    if size > log_size {
        return Err(LedgerError::OutOfRange(format!(
            "a snapshot at size {size} is beyond the log's {log_size} entries"
        )));
    }
    store.commit_unsynced(WriteSet {
        drop_snapshots: vec![size],
        ..WriteSet::default()
    })?;
    Ok(SnapshotWriter {
        store,
        size,
        next: 0,
        buf: Vec::with_capacity(SNAPSHOT_HEAD),
    })
}

/// Streams one snapshot into the store ([`Ledger::snapshot_writer`]); also an
/// [`std::io::Write`].
pub struct SnapshotWriter<'a, S: LogStore> {
    store: &'a S,
    size: u64,
    next: u32,
    buf: Vec<u8>,
}

impl<S: LogStore> SnapshotWriter<'_, S> {
    /// Appends bytes, writing each full chunk (unsynced): chunk 0 holds the
    /// first [`SNAPSHOT_HEAD`] bytes, each later one [`SNAPSHOT_CHUNK`].
    pub fn put(&mut self, mut bytes: &[u8]) -> Result<(), LedgerError> {
        while !bytes.is_empty() {
            let full = if self.next == 0 {
                SNAPSHOT_HEAD
            } else {
                SNAPSHOT_CHUNK
            };
            let take = (full - self.buf.len()).min(bytes.len());
            self.buf.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if self.buf.len() == full {
                let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(SNAPSHOT_CHUNK));
                self.store.commit_unsynced(self.chunk(chunk)?)?;
            }
        }
        Ok(())
    }

    fn chunk(&mut self, bytes: Vec<u8>) -> Result<WriteSet, LedgerError> {
        let n = self.next;
        self.next = n
            .checked_add(1)
            .ok_or_else(|| LedgerError::OutOfRange("a snapshot has too many chunks".into()))?;
        Ok(WriteSet {
            snapshot_chunks: vec![(self.size, n, bytes)],
            ..WriteSet::default()
        })
    }

    /// Writes the last chunk and deletes the snapshots at the sizes in `drop`, in
    /// one synced commit: the whole snapshot is durable on return.
    pub fn finish(mut self, drop: &[u64]) -> Result<(), LedgerError> {
        let last = std::mem::take(&mut self.buf);
        // An empty snapshot still gets its chunk 0, so it is listed.
        let mut set = if !last.is_empty() || self.next == 0 {
            self.chunk(last)?
        } else {
            WriteSet::default()
        };
        set.drop_snapshots = drop.iter().copied().filter(|&d| d != self.size).collect();
        self.store.commit(set)?;
        Ok(())
    }
}

impl<S: LogStore> std::io::Write for SnapshotWriter<'_, S> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.put(buf).map_err(std::io::Error::other)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn parse_stored(note: String) -> Result<SignedCheckpoint, LedgerError> {
    let at = note
        .rfind("\n\n")
        .ok_or_else(|| StoreError::Corrupt("stored checkpoint is not a signed note".into()))?;
    let checkpoint = Checkpoint::parse_body(&note[..=at])?;
    Ok(SignedCheckpoint { checkpoint, note })
}
