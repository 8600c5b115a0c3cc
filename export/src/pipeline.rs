//! `pipeline`: ledger → redacted records → sink → cursor, batch by batch.
//!
//! One [`Pipeline`] run reads entries from the ledger's RocksDB, opened
//! read-only (so it works while `govledger serve` holds the store for writing),
//! renders and frames each one for the [`Sink`] with the [`Exporter`] (on
//! every core), delivers the batch, makes it durable ([`Sink::sync`]), and only
//! then commits the sink's [`Position`] (next seq, committed length, last leaf hash) to its
//! [`SinkCursor`], synced. A crash anywhere loses nothing: the next run starts at
//! the committed position (and the file sink cuts its file back to the committed
//! length, which makes it exactly once).
//!
//! Following (`--follow`), the run looks at the store's files every poll interval
//! and, when they changed, reopens the read-only ledger to see entries appended
//! since; it ends when `stop` is set, after committing what it delivered. A reopen
//! that fails (it can race the writer replacing its files) is logged and tried
//! again at the next poll, up to 100 times in a row before the run fails.
//!
//! The leaf hash in each record is computed from the stored leaf bytes
//! (SHA-256(0x00 ‖ leaf)), so it is the hash of exactly what was exported: if a
//! stored entry had been altered, the record's hash would not be in any signed tree
//! and the SIEM's inclusion check would fail.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use govledger_ledger::store::{LogStore, OpenMode, RocksStore, StoreError};
use govledger_ledger::tree::leaf_hash;
use govledger_ledger::{Ledger, LedgerError};
use govledger_schemas::decode_entry;

use crate::cursor::{CursorError, Position, SinkCursor};
use crate::sink::{sleep_unless_stopped, Destination, Framing, Sink, SinkError};
use crate::{ExportOptions, Exporter, Format, Payload};

/// An export run cannot go on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PipelineError {
    /// The ledger could not be opened or read.
    #[error("ledger: {0}")]
    Ledger(#[from] LedgerError),
    /// The sink failed for good.
    #[error(transparent)]
    Sink(#[from] SinkError),
    /// The sink's cursor failed.
    #[error(transparent)]
    Cursor(#[from] CursorError),
    /// The format cannot go to this destination.
    #[error("--format {format} cannot be sent to {to}: {why}")]
    FormatForDestination {
        /// The format asked for.
        format: Format,
        /// The destination.
        to: String,
        /// Why, and what to use.
        why: &'static str,
    },
    /// A named sink was created for another format or destination.
    #[error("sink {sink:?} exports {stored}; this run asks for {asked}: use --reset to start the sink over, or another --sink name")]
    ConfigMismatch {
        /// The sink name.
        sink: String,
        /// What the cursor was created for.
        stored: String,
        /// What this run asks for.
        asked: String,
    },
    /// The cursor is past the end of the ledger or names another ledger's entry.
    #[error("sink {sink:?} does not belong to this ledger: {why} (use --reset to start it over)")]
    ForeignCursor {
        /// The sink name.
        sink: String,
        /// What does not match.
        why: String,
    },
    /// A render thread panicked (a bug: the formats are total; reported as an
    /// error all the same).
    #[error("a render thread panicked: please report this as a bug")]
    RenderThread,
    /// An entry is missing from the store (a damaged store: run `govledger verify`).
    #[error("entry {0} is missing from the store (run `govledger verify`)")]
    MissingEntry(u64),
}

/// Where a run's records go, in which format: what a named sink's cursor is bound to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SinkSpec {
    /// The format asked for (for syslog and HEC destinations: the payload).
    pub format: Format,
    /// The destination.
    pub to: Destination,
}

impl SinkSpec {
    /// The format the exporter renders for this destination, with `options`
    /// adjusted: syslog destinations get RFC 5424 messages carrying the format as
    /// MSG, HEC destinations get envelopes carrying it as `event`; files and
    /// stdout get the format itself.
    pub fn render_format(&self, options: &mut ExportOptions) -> Result<Format, PipelineError> {
        let payload = match self.format {
            Format::Jsonl => Some(Payload::Jsonl),
            Format::Ocsf => Some(Payload::Ocsf),
            Format::Ecs => Some(Payload::Ecs),
            Format::Cef => Some(Payload::Cef),
            Format::Syslog | Format::Hec => None,
        };
        let wire = |why| PipelineError::FormatForDestination {
            format: self.format,
            to: self.to.describe(),
            why,
        };
        match &self.to {
            Destination::Syslog { .. } => {
                options.syslog.payload = payload.ok_or_else(|| {
                    wire("a syslog destination always gets RFC 5424 messages; --format names their MSG: jsonl, ocsf, ecs or cef")
                })?;
                Ok(Format::Syslog)
            }
            Destination::Hec(_) => {
                options.hec.payload = payload.ok_or_else(|| {
                    wire("a HEC destination always gets HEC envelopes; --format names their event: jsonl, ocsf, ecs or cef")
                })?;
                Ok(Format::Hec)
            }
            Destination::File(_) | Destination::Stdout => Ok(self.format),
        }
    }

    /// The configuration stored in a named sink's cursor.
    pub fn config_json(&self) -> String {
        serde_json::json!({"format": self.format.as_str(), "to": self.to.describe()}).to_string()
    }

    /// Whether a stored configuration and this run's name one sink: equal, or
    /// equal once a file destination stored by an older build (which did not
    /// drop `.` components) is written as [`SinkSpec::config_json`] writes it.
    fn same_config(stored: &str, asked: &str) -> bool {
        if stored == asked {
            return true;
        }
        let Ok(mut v) = serde_json::from_str::<serde_json::Value>(stored) else {
            return false;
        };
        match v["to"].as_str().filter(|to| to.starts_with('/')) {
            Some(to) => {
                let to = crate::sink::normal(Path::new(to)).display().to_string();
                v["to"] = serde_json::Value::String(to);
                serde_json::from_str::<serde_json::Value>(asked).is_ok_and(|a| a == v)
            }
            None => false,
        }
    }

    fn describe(config: &str) -> String {
        match serde_json::from_str::<serde_json::Value>(config) {
            Ok(v) => format!(
                "{} to {}",
                v["format"].as_str().unwrap_or("?"),
                v["to"].as_str().unwrap_or("?")
            ),
            Err(_) => config.to_owned(),
        }
    }
}

/// Opens a named sink's cursor at `path` for `spec` (forgetting it first when
/// `reset`): its committed position, or `None` for a new sink. A cursor made for
/// another format or destination is refused.
pub fn open_cursor(
    name: &str,
    path: &Path,
    spec: &SinkSpec,
    reset: bool,
) -> Result<(SinkCursor, Option<Position>), PipelineError> {
    if reset {
        SinkCursor::destroy(path)?;
    }
    let cursor = SinkCursor::open(path)?;
    let asked = spec.config_json();
    match cursor.config()? {
        Some(stored) if !SinkSpec::same_config(&stored, &asked) => {
            Err(PipelineError::ConfigMismatch {
                sink: name.to_owned(),
                stored: SinkSpec::describe(&stored),
                asked: SinkSpec::describe(&asked),
            })
        }
        _ => {
            let pos = cursor.position()?;
            Ok((cursor, pos))
        }
    }
}

/// Opens the ledger's RocksDB at `db` read-only.
pub fn open_ledger_ro(db: &Path) -> Result<Ledger<RocksStore>, PipelineError> {
    let store = RocksStore::open(db, OpenMode::ReadOnly).map_err(LedgerError::from)?;
    Ok(Ledger::open(store)?)
}

/// What a run did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RunStats {
    /// Records delivered (and committed) by this run.
    pub exported: u64,
    /// The next seq to export.
    pub next_seq: u64,
    /// The sink's committed length (file sinks).
    pub sink_len: u64,
    /// Deliveries retried.
    pub retries: u64,
    /// Whether the run was stopped by `stop` (SIGINT/SIGTERM).
    pub stopped: bool,
}

/// One export run.
pub struct Pipeline {
    exporter: Exporter,
    format: Format,
    sink: Box<dyn Sink>,
    cursor: Option<(String, Arc<SinkCursor>)>,
    pos: Position,
    batch: usize,
    exported: u64,
    /// A sync and cursor commit running beside the export (file sinks): the
    /// position it commits once the sink's bytes are durable.
    syncing: Option<std::thread::JoinHandle<Result<Position, PipelineError>>>,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("format", &self.format)
            .field("pos", &self.pos)
            .finish()
    }
}

impl Pipeline {
    /// A run rendering `format` (see [`SinkSpec::render_format`]) into `sink`,
    /// starting at `start`, `batch` entries per delivery and cursor commit, with
    /// the named cursor `(name, cursor)` if any.
    pub fn new(
        exporter: Exporter,
        format: Format,
        sink: Box<dyn Sink>,
        cursor: Option<(String, SinkCursor)>,
        start: Position,
        batch: usize,
    ) -> Pipeline {
        Pipeline {
            exporter,
            format,
            sink,
            cursor: cursor.map(|(name, c)| (name, Arc::new(c))),
            pos: start,
            batch: batch.max(1),
            exported: 0,
            syncing: None,
        }
    }

    /// The position reached (committed).
    pub fn position(&self) -> Position {
        self.pos
    }

    fn stats(&self, stopped: bool) -> RunStats {
        RunStats {
            exported: self.exported,
            next_seq: self.pos.next_seq,
            sink_len: self.pos.sink_len,
            retries: self.sink.retries(),
            stopped,
        }
    }

    /// Checks that the position fits the ledger: not past its end, and the last
    /// exported entry has the leaf hash the cursor remembers.
    fn check_position<S: LogStore>(&self, ledger: &Ledger<S>) -> Result<(), PipelineError> {
        let Some((name, _)) = &self.cursor else {
            return Ok(());
        };
        let foreign = |why: String| PipelineError::ForeignCursor {
            sink: name.clone(),
            why,
        };
        if self.pos.next_seq > ledger.size() {
            return Err(foreign(format!(
                "its next entry is {}, but the ledger has {} entries",
                self.pos.next_seq,
                ledger.size()
            )));
        }
        if self.pos.next_seq > 0 && self.pos.last_leaf != [0; 32] {
            let seq = self.pos.next_seq - 1;
            let (leaf, _) = ledger.entry(seq)?;
            if leaf_hash(&leaf) != self.pos.last_leaf {
                return Err(foreign(format!(
                    "entry {seq} has another leaf hash than the one it exported"
                )));
            }
        }
        Ok(())
    }

    /// Exports from the position on: up to the end of the ledger as it is when the
    /// run opens it, or, with `follow` (a poll interval), on and on until `stop`.
    /// `progress` is told the records exported so far after every batch.
    pub fn run(
        &mut self,
        db: &Path,
        follow: Option<Duration>,
        stop: &AtomicBool,
        progress: &mut dyn FnMut(u64),
    ) -> Result<RunStats, PipelineError> {
        let mut checked = false;
        let mut seen: Option<Vec<DbFile>> = None;
        let mut failed_reopens = 0;
        loop {
            // Reopening replays RocksDB's write-ahead log (up to the writer's
            // memtable budget): skip it while no file of the store has changed, which
            // means nothing was appended.
            let now = db_files(db);
            if seen.is_some() && seen == now {
                let Some(poll) = follow else {
                    return Ok(self.stats(false));
                };
                if sleep_unless_stopped(poll, stop).is_err() {
                    return Ok(self.stats(true));
                }
                continue;
            }
            seen = now;
            let ledger = match (open_ledger_ro(db), follow) {
                (Ok(ledger), _) => {
                    failed_reopens = 0;
                    ledger
                }
                // Following, a reopen can race the writer replacing its files (a
                // flush deleting the log the open was about to replay): try again
                // at the next poll, up to FOLLOW_REOPEN_TRIES times in a row.
                (Err(e), Some(poll)) if checked && failed_reopens < FOLLOW_REOPEN_TRIES => {
                    failed_reopens += 1;
                    tracing::warn!(
                        "cannot reopen the ledger to follow it ({e}); trying again \
                         ({failed_reopens} of {FOLLOW_REOPEN_TRIES})"
                    );
                    seen = None;
                    if sleep_unless_stopped(poll, stop).is_err() {
                        return Ok(self.stats(true));
                    }
                    continue;
                }
                (Err(e), _) => return Err(e),
            };
            if !checked {
                self.check_position(&ledger)?;
                checked = true;
            }
            let end = ledger.size();
            if self.pos.next_seq < end && !self.export_until(&ledger, end, stop, progress)? {
                return Ok(self.stats(true));
            }
            drop(ledger);
            let Some(poll) = follow else {
                return Ok(self.stats(stop.load(Ordering::Relaxed)));
            };
            if sleep_unless_stopped(poll, stop).is_err() {
                return Ok(self.stats(true));
            }
        }
    }

    /// Exports entries up to `end` (exclusive). `Ok(false)` when stopped.
    ///
    /// Render threads (one per core, each with its own [`Exporter`] clone) render
    /// batch `k + 1` while this thread reads the store and delivers, syncs and
    /// commits batch `k`; batches are delivered whole and in order, as before.
    fn export_until<S: LogStore>(
        &mut self,
        ledger: &Ledger<S>,
        end: u64,
        stop: &AtomicBool,
        progress: &mut dyn FnMut(u64),
    ) -> Result<bool, PipelineError> {
        let origin = ledger.origin().to_owned();
        // The render threads clone it in turn; this copy outlives them.
        let exporter = self.exporter.clone();
        let threads = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        std::thread::scope(|scope| {
            let render = Render {
                exporter: &exporter,
                format: self.format,
                framing: self.sink.framing(),
                origin: &origin,
            };
            let mut pool = RenderPool::start(scope, render, threads);
            let result = self.deliver_batches(ledger, end, stop, progress, &mut pool);
            let joined = pool.finish();
            // Whatever happened, the sync in flight ends before the run does.
            let synced = self.finish_sync();
            let done = result?;
            joined?;
            synced?;
            Ok(done)
        })
    }

    /// The batch loop of [`Pipeline::export_until`].
    fn deliver_batches<S: LogStore>(
        &mut self,
        ledger: &Ledger<S>,
        end: u64,
        stop: &AtomicBool,
        progress: &mut dyn FnMut(u64),
        pool: &mut RenderPool<'_>,
    ) -> Result<bool, PipelineError> {
        let mut entries = ledger.store().scan_entries(self.pos.next_seq);
        let mut chunks_of_batch: Vec<Chunk> = Vec::new();
        let mut read_seq = self.pos.next_seq;
        // The batches being rendered, oldest first: (end, number of chunks).
        let mut in_flight: VecDeque<(u64, usize)> = VecDeque::new();
        let mut read_error = None;
        // Delivered but not yet synced and committed: (bytes, position after it).
        let mut unsynced: Option<(u64, Position)> = None;
        loop {
            if stop.load(Ordering::Relaxed) {
                self.commit(unsynced.take(), Wait::Yes)?;
                progress(self.exported);
                return Ok(false);
            }
            // Keep up to IN_FLIGHT batches handed out, so the render threads have
            // work while this thread writes and syncs.
            while read_seq < end && in_flight.len() < IN_FLIGHT && read_error.is_none() {
                let stop_at = end.min(read_seq.saturating_add(self.batch as u64));
                match read_batch(&mut entries, read_seq, stop_at) {
                    Ok(leaves) => {
                        in_flight.push_back((stop_at, pool.dispatch(read_seq, leaves)));
                        read_seq = stop_at;
                    }
                    // Deliver what is already rendered first, as a sequential run
                    // would have.
                    Err(e) => read_error = Some(e),
                }
            }
            let Some((stop_at, chunks)) = in_flight.pop_front() else {
                self.commit(unsynced.take(), Wait::Yes)?;
                progress(self.exported);
                return match read_error {
                    Some(e) => Err(e),
                    None => Ok(true),
                };
            };
            let mut last_leaf = unsynced.map_or(self.pos.last_leaf, |(_, p)| p.last_leaf);
            for k in 0..chunks {
                let chunk = pool.collect(k)?;
                if let Some(leaf) = chunk.last_leaf {
                    last_leaf = leaf;
                }
                chunks_of_batch.push(chunk);
            }
            // The records come framed from the render threads: the chunks are
            // delivered as they are.
            let parts: Vec<&[u8]> = chunks_of_batch.iter().map(|c| c.text.as_bytes()).collect();
            let batch_len: usize = parts.iter().map(|p| p.len()).sum();
            let delivered = self.sink.deliver_parts(&parts, stop);
            for chunk in chunks_of_batch.drain(..) {
                pool.recycle(chunk);
            }
            match delivered {
                Ok(()) => {}
                Err(SinkError::Stopped) => {
                    self.commit(unsynced.take(), Wait::Yes)?;
                    return Ok(false);
                }
                Err(e) => return Err(e.into()),
            }
            let bytes = unsynced.map_or(0, |(b, _)| b) + batch_len as u64;
            let pos = Position {
                next_seq: stop_at,
                // Filled in by the sync.
                sink_len: self.pos.sink_len,
                last_leaf,
            };
            unsynced = Some((bytes, pos));
            if bytes >= self.sink.sync_every() {
                self.commit(unsynced.take(), Wait::No)?;
                progress(self.exported);
            }
        }
    }

    /// Syncs the sink and commits the cursor at `delivered`'s position, if any
    /// batch was delivered since the last commit. With [`Wait::No`], a sink that
    /// can sync on another thread ([`Sink::sync_later`]) does so while the export
    /// goes on; the commit before it is finished first, so there is at most one in
    /// flight and commits stay in order.
    fn commit(
        &mut self,
        delivered: Option<(u64, Position)>,
        wait: Wait,
    ) -> Result<(), PipelineError> {
        self.finish_sync()?;
        let Some((_, mut pos)) = delivered else {
            return Ok(());
        };
        let later = match wait {
            Wait::No => self.sink.sync_later()?,
            Wait::Yes => None,
        };
        let Some((len, job)) = later else {
            pos.sink_len = self.sink.sync()?;
            if let Some((_, cursor)) = &self.cursor {
                cursor.commit(pos)?;
            }
            self.advance(pos);
            return Ok(());
        };
        pos.sink_len = len;
        let cursor = self.cursor.as_ref().map(|(_, c)| Arc::clone(c));
        self.syncing = Some(std::thread::spawn(move || {
            job()?;
            if let Some(cursor) = cursor {
                cursor.commit(pos)?;
            }
            Ok(pos)
        }));
        Ok(())
    }

    /// Waits for the sync in flight, if any, and takes its position.
    fn finish_sync(&mut self) -> Result<(), PipelineError> {
        let Some(job) = self.syncing.take() else {
            return Ok(());
        };
        let pos = job
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))?;
        self.advance(pos);
        Ok(())
    }

    /// The position is committed.
    fn advance(&mut self, pos: Position) {
        self.exported += pos.next_seq - self.pos.next_seq;
        self.pos = pos;
    }
}

/// Whether [`Pipeline::commit`] must be done when it returns.
#[derive(Clone, Copy)]
enum Wait {
    /// At the end of a run or when stopped.
    Yes,
    /// Between batches: a file's sync may go on beside the export.
    No,
}

/// How many batches may be handed out to the render threads ahead of delivery.
const IN_FLIGHT: usize = 4;

/// Reads the leaves of seqs `first..stop_at` from `entries`.
fn read_batch(
    entries: &mut impl Iterator<Item = Result<(u64, Vec<u8>), StoreError>>,
    first: u64,
    stop_at: u64,
) -> Result<Vec<Vec<u8>>, PipelineError> {
    let mut leaves = Vec::with_capacity((stop_at - first) as usize);
    for expected in first..stop_at {
        match entries.next() {
            Some(item) => {
                let (seq, leaf) = item.map_err(LedgerError::from)?;
                if seq != expected {
                    return Err(PipelineError::MissingEntry(expected));
                }
                leaves.push(leaf);
            }
            None => return Err(PipelineError::MissingEntry(expected)),
        }
    }
    Ok(leaves)
}

/// Consecutive records rendered by one thread: their text, framed for the sink,
/// one after the other.
#[derive(Default)]
struct Chunk {
    text: String,
    /// The leaf hash of the last record, if any.
    last_leaf: Option<[u8; 32]>,
}

/// Entries to render: the leaves, the seq of the first, and a chunk to reuse.
struct Job {
    first: u64,
    leaves: Vec<Vec<u8>>,
    chunk: Chunk,
}

/// What every render thread needs: the exporter (each thread clones it), the format,
/// the sink's framing and the ledger's origin.
#[derive(Clone, Copy)]
struct Render<'a> {
    exporter: &'a Exporter,
    format: Format,
    framing: Framing,
    origin: &'a str,
}

/// The render threads of one export: thread `k` renders the `k`-th chunk of every
/// batch, in the order the batches are handed out, so collecting the chunks in
/// index order gives the records in ledger order.
struct RenderPool<'scope> {
    jobs: Vec<mpsc::Sender<Job>>,
    done: Vec<mpsc::Receiver<Result<Chunk, LedgerError>>>,
    handles: Vec<std::thread::ScopedJoinHandle<'scope, ()>>,
    spare: Vec<Chunk>,
}
/// Failed reopens in a row after which `--follow` gives up with the error.
const FOLLOW_REOPEN_TRIES: u32 = 100;

/// One file of a RocksDB directory: name, length, modification time.
type DbFile = (std::ffi::OsString, u64, Option<std::time::SystemTime>);

/// The files of the store at `db`, sorted; `None` when it cannot be listed (then
/// the store is simply reopened).
fn db_files(db: &Path) -> Option<Vec<DbFile>> {
    let mut files = Vec::new();
    for item in std::fs::read_dir(db).ok()? {
        let item = item.ok()?;
        let meta = item.metadata().ok()?;
        files.push((item.file_name(), meta.len(), meta.modified().ok()));
    }
    files.sort();
    Some(files)
}

impl<'scope> RenderPool<'scope> {
    /// Starts `threads` render threads, each with its own clone of the exporter.
    fn start<'env>(
        scope: &'scope std::thread::Scope<'scope, 'env>,
        render: Render<'env>,
        threads: usize,
    ) -> RenderPool<'scope> {
        let mut pool = RenderPool {
            jobs: Vec::new(),
            done: Vec::new(),
            handles: Vec::new(),
            spare: Vec::new(),
        };
        for _ in 0..threads.max(1) {
            let (job_tx, job_rx) = mpsc::channel::<Job>();
            let (done_tx, done_rx) = mpsc::channel();
            let exporter = render.exporter.clone();
            pool.handles.push(scope.spawn(move || {
                let render = Render {
                    exporter: &exporter,
                    ..render
                };
                let mut scratch = String::new();
                for job in job_rx {
                    let rendered = render_chunk(render, job, &mut scratch);
                    if done_tx.send(rendered).is_err() {
                        return;
                    }
                }
            }));
            pool.jobs.push(job_tx);
            pool.done.push(done_rx);
        }
        pool
    }

    /// Hands out `leaves` (the first at seq `first`) in contiguous chunks of at
    /// least 64 entries, one per thread; returns the number of chunks.
    fn dispatch(&mut self, first: u64, mut leaves: Vec<Vec<u8>>) -> usize {
        let chunks = self.jobs.len().min(leaves.len() / 64).max(1);
        let per = leaves.len().div_ceil(chunks);
        let mut parts = Vec::with_capacity(chunks);
        for k in (1..chunks).rev() {
            parts.push(leaves.split_off((k * per).min(leaves.len())));
        }
        parts.push(leaves);
        for (k, part) in parts.into_iter().rev().enumerate() {
            let job = Job {
                first: first + (k * per) as u64,
                leaves: part,
                chunk: self.spare.pop().unwrap_or_default(),
            };
            // A thread that has gone away panicked: `collect` reports it.
            let _ = self.jobs[k].send(job);
        }
        chunks
    }

    /// The next chunk rendered by thread `k`.
    fn collect(&self, k: usize) -> Result<Chunk, PipelineError> {
        match self.done[k].recv() {
            Ok(chunk) => Ok(chunk?),
            Err(_) => Err(PipelineError::RenderThread),
        }
    }

    /// Keeps a chunk's buffers for a later job.
    fn recycle(&mut self, chunk: Chunk) {
        self.spare.push(chunk);
    }

    /// Stops the threads and waits for them.
    fn finish(self) -> Result<(), PipelineError> {
        drop(self.jobs);
        let mut result = Ok(());
        for h in self.handles {
            if h.join().is_err() {
                result = Err(PipelineError::RenderThread);
            }
        }
        result
    }
}

/// Decodes, renders and frames a job's entries into its chunk (`scratch`: see
/// [`Framing::frame_with`]). Rendering is a pure function of the entry, so the
/// parallel result is the sequential one.
fn render_chunk(render: Render<'_>, job: Job, scratch: &mut String) -> Result<Chunk, LedgerError> {
    let Job {
        first,
        leaves,
        mut chunk,
    } = job;
    chunk.text.clear();
    chunk.last_leaf = None;
    let Render {
        exporter,
        format,
        framing,
        origin,
    } = render;
    for (i, leaf) in leaves.iter().enumerate() {
        let seq = first + i as u64;
        let entry = decode_entry(leaf).map_err(|source| LedgerError::Codec { seq, source })?;
        let hash = leaf_hash(leaf);
        framing.frame_with(&mut chunk.text, scratch, |out| {
            exporter.render_into(format, entry, hash, origin, out)
        });
        chunk.last_leaf = Some(hash);
    }
    Ok(chunk)
}

impl From<StoreError> for PipelineError {
    fn from(e: StoreError) -> Self {
        PipelineError::Ledger(e.into())
    }
}

#[cfg(test)]
mod tests {
    use super::SinkSpec;

    /// A cursor an older build stored with `.` in its file path still names the
    /// sink of a run that spells the file plainly; anything else differs.
    #[test]
    fn a_stored_file_path_is_compared_as_written_one_way() {
        let asked = r#"{"format":"ocsf","to":"/var/siem/out.ocsf"}"#;
        for stored in [
            r#"{"format":"ocsf","to":"/var/siem/out.ocsf"}"#,
            r#"{"to":"/var/siem/out.ocsf","format":"ocsf"}"#,
            r#"{"format":"ocsf","to":"/var/./siem//out.ocsf"}"#,
        ] {
            assert!(SinkSpec::same_config(stored, asked), "{stored}");
        }
        for stored in [
            r#"{"format":"ecs","to":"/var/./siem/out.ocsf"}"#,
            r#"{"format":"ocsf","to":"/var/other/../siem/out.ocsf"}"#,
            r#"{"format":"ocsf","to":"syslog+tcp://h:514"}"#,
            "not json",
        ] {
            assert!(!SinkSpec::same_config(stored, asked), "{stored}");
        }
    }
}
