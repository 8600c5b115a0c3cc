//! `file`: the file and stdout sinks, one record per line.
//!
//! The file sink is the exactly-once one. [`Sink::sync`] fsyncs the file and
//! returns its length, which the pipeline stores with the cursor; a restarted
//! exporter opens the file with [`FileSink::resume`], which cuts it back to that
//! length: records written after the last committed cursor (by a run that was
//! killed before committing) are dropped and exported again, once.
//!
//! Once a range of the file is synced and at least [`FILE_CACHE_KEEP`] bytes older
//! than the end, it is dropped from the page cache (`posix_fadvise(DONTNEED)`): an
//! export is written once and read, if at all, by a shipper that reads files
//! sequentially, so gigabytes of it need not push the ledger's own pages out of
//! memory; the kernel also reuses the pages it just freed for the next writes,
//! instead of taking fresh ones (measured in docs/BENCHMARKS.md). The newest bytes
//! stay cached for a shipper that keeps up, also with `--follow`, whose every
//! poll ends with a sync.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use super::{Sink, SinkError, SyncJob};

/// Appends records to a file.
#[derive(Debug)]
pub struct FileSink {
    path: PathBuf,
    out: BufWriter<File>,
    len: u64,
    sync_bytes: u64,
    /// Everything before this offset was handed to the page-cache drop, after (or,
    /// for a sync in flight, together with) its sync.
    dropped: u64,
}

impl FileSink {
    fn err(path: &Path, what: impl std::fmt::Display) -> SinkError {
        SinkError::File {
            path: path.to_path_buf(),
            what: what.to_string(),
        }
    }

    fn with(path: &Path, file: File, len: u64) -> Result<FileSink, SinkError> {
        let mut file = file;
        file.seek(SeekFrom::Start(len))
            .map_err(|e| Self::err(path, format!("cannot seek: {e}")))?;
        Ok(FileSink {
            path: path.to_path_buf(),
            out: BufWriter::with_capacity(1 << 20, file),
            len,
            sync_bytes: FILE_SYNC_BYTES,
            dropped: len,
        })
    }

    /// Syncs and commits once `n` bytes were written since the last commit
    /// (default [`FILE_SYNC_BYTES`]); 0 makes it sync after every batch.
    pub fn with_sync_bytes(mut self, n: u64) -> FileSink {
        self.sync_bytes = n;
        self
    }

    /// Creates `path`, or empties it: a one-off export.
    pub fn create(path: &Path) -> Result<FileSink, SinkError> {
        let file =
            File::create(path).map_err(|e| Self::err(path, format!("cannot create: {e}")))?;
        Self::with(path, file, 0)
    }

    /// Opens `path` to append, creating it if missing: a new named sink starts at
    /// the file's current end.
    pub fn append(path: &Path) -> Result<FileSink, SinkError> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(|e| Self::err(path, format!("cannot open: {e}")))?;
        let len = file.metadata().map_err(|e| Self::err(path, e))?.len();
        Self::with(path, file, len)
    }

    /// Reopens `path` for a named sink whose cursor says `committed` bytes were
    /// delivered: the file is cut back to that length (dropping records written
    /// after the last committed cursor) and synced. A file shorter than that, or
    /// missing, was rotated or edited by someone else: an error, never a guess.
    pub fn resume(path: &Path, committed: u64) -> Result<FileSink, SinkError> {
        let file = OpenOptions::new().write(true).open(path).map_err(|e| {
            Self::err(
                path,
                format!("cannot reopen the sink's file, which held {committed} committed bytes: {e} (use --reset to start the sink over)"),
            )
        })?;
        let len = file.metadata().map_err(|e| Self::err(path, e))?.len();
        if len < committed {
            return Err(Self::err(
                path,
                format!("the file has {len} bytes, fewer than the {committed} the sink committed: it was truncated or replaced (use --reset to start the sink over, or another --sink name)"),
            ));
        }
        if len > committed {
            tracing::info!(
                path = %path.display(),
                dropped_bytes = len - committed,
                "cutting the sink's file back to its committed length"
            );
            file.set_len(committed)
                .and_then(|_| file.sync_all())
                .map_err(|e| {
                    Self::err(path, format!("cannot cut back to {committed} bytes: {e}"))
                })?;
        }
        Self::with(path, file, committed)
    }

    /// The length in bytes after everything delivered so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether nothing was written (the file is empty).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Sink for FileSink {
    fn deliver(&mut self, buf: &[u8], stop: &AtomicBool) -> Result<(), SinkError> {
        self.deliver_parts(&[buf], stop)
    }

    fn deliver_parts(&mut self, parts: &[&[u8]], _stop: &AtomicBool) -> Result<(), SinkError> {
        for part in parts {
            self.out
                .write_all(part)
                .map_err(|e| Self::err(&self.path, format!("cannot write: {e}")))?;
            self.len += part.len() as u64;
        }
        Ok(())
    }

    fn sync(&mut self) -> Result<u64, SinkError> {
        self.out
            .flush()
            .and_then(|_| self.out.get_ref().sync_data())
            .map_err(|e| Self::err(&self.path, format!("cannot sync: {e}")))?;
        let (from, to) = self.take_drop_range();
        drop_synced(self.out.get_ref(), from, to);
        Ok(self.len)
    }

    /// Records written after the last commit are cut off on resume, so an fsync per
    /// [`FILE_SYNC_BYTES`] (or [`FileSink::with_sync_bytes`]) instead of per batch
    /// loses nothing: a crash costs some rewriting, up to about twice that (one
    /// sync may still be running when the next threshold is reached).
    fn sync_every(&self) -> u64 {
        self.sync_bytes
    }

    /// Flushes the buffer here and `fdatasync`s a second handle of the file on the
    /// pipeline's sync thread, while this one goes on writing.
    fn sync_later(&mut self) -> Result<Option<(u64, SyncJob)>, SinkError> {
        let handle = self
            .out
            .flush()
            .and_then(|_| self.out.get_ref().try_clone())
            .map_err(|e| Self::err(&self.path, format!("cannot sync: {e}")))?;
        let path = self.path.clone();
        let (from, to) = self.take_drop_range();
        let job: SyncJob = Box::new(move || {
            handle
                .sync_data()
                .map_err(|e| Self::err(&path, format!("cannot sync: {e}")))?;
            drop_synced(&handle, from, to);
            Ok(())
        });
        Ok(Some((self.len, job)))
    }
}

impl FileSink {
    /// The range to drop from the page cache once what was delivered is synced: up
    /// to [`FILE_CACHE_KEEP`] bytes before the end, from where the last drop ended.
    fn take_drop_range(&mut self) -> (u64, u64) {
        let from = self.dropped;
        let to = self.len.saturating_sub(FILE_CACHE_KEEP).max(from);
        self.dropped = to;
        (from, to)
    }
}

/// How many of the newest bytes of a file sink stay in the page cache after a
/// sync: 16 MiB.
pub const FILE_CACHE_KEEP: u64 = 16 << 20;

/// Drops the synced bytes `from..to` of `file` from the page cache. Advice only:
/// a file system that ignores it (tmpfs) or an error changes nothing else, so the
/// result is not checked.
fn drop_synced(file: &File, from: u64, to: u64) {
    #[cfg(target_os = "linux")]
    if let Some(len) = std::num::NonZeroU64::new(to.saturating_sub(from)) {
        let _ = rustix::fs::fadvise(file, from, Some(len), rustix::fs::Advice::DontNeed);
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (file, from, to);
}

/// How many bytes a file sink writes between fsyncs (and cursor commits): 16 MiB.
pub const FILE_SYNC_BYTES: u64 = 16 << 20;

/// Writes records to standard output.
#[derive(Debug)]
pub struct StdoutSink {
    out: BufWriter<std::io::Stdout>,
}

impl Default for StdoutSink {
    fn default() -> Self {
        StdoutSink {
            out: BufWriter::with_capacity(1 << 16, std::io::stdout()),
        }
    }
}

impl Sink for StdoutSink {
    fn deliver(&mut self, buf: &[u8], stop: &AtomicBool) -> Result<(), SinkError> {
        self.deliver_parts(&[buf], stop)
    }

    fn deliver_parts(&mut self, parts: &[&[u8]], _stop: &AtomicBool) -> Result<(), SinkError> {
        for part in parts {
            self.out.write_all(part).map_err(SinkError::Stdout)?;
        }
        Ok(())
    }

    fn sync(&mut self) -> Result<u64, SinkError> {
        self.out.flush().map_err(SinkError::Stdout)?;
        Ok(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resume_cuts_back_to_the_committed_length() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.jsonl");
        let stop = AtomicBool::new(false);
        let mut s = FileSink::create(&path).unwrap();
        let mut buf = String::new();
        s.framing().frame("a", &mut buf);
        s.deliver(buf.as_bytes(), &stop).unwrap();
        let committed = s.sync().unwrap();
        assert_eq!(committed, 2);
        s.deliver(b"half-written\n", &stop).unwrap();
        s.sync().unwrap();
        drop(s);
        let mut s = FileSink::resume(&path, committed).unwrap();
        s.deliver(b"b\n", &stop).unwrap();
        s.sync().unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "a\nb\n");
        // A file shorter than the cursor says is someone else's doing.
        let e = FileSink::resume(&path, 100).unwrap_err().to_string();
        assert!(e.contains("fewer than the 100"), "{e}");
        let e = FileSink::resume(&dir.path().join("gone"), 1)
            .unwrap_err()
            .to_string();
        assert!(e.contains("--reset"), "{e}");
        // A new named sink appends.
        let s = FileSink::append(&path).unwrap();
        assert_eq!(s.len(), 4);
    }

    #[test]
    fn synced_ranges_leave_the_cache_but_the_newest_bytes_stay() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = FileSink::create(&dir.path().join("out.jsonl")).unwrap();
        const MIB: u64 = 1 << 20;
        // Short files, or short appends (a --follow poll), drop nothing.
        s.len = 10 * MIB;
        assert_eq!(s.take_drop_range(), (0, 0));
        s.len = 40 * MIB;
        assert_eq!(s.take_drop_range(), (0, 40 * MIB - FILE_CACHE_KEEP));
        s.len = 41 * MIB;
        let (from, to) = s.take_drop_range();
        assert_eq!((from, to), (24 * MIB, 25 * MIB));
        // Each range is handed out once.
        assert_eq!(s.take_drop_range(), (to, to));
        // A sink reopened on a file starts dropping at its end, not at 0.
        let path = dir.path().join("old.jsonl");
        std::fs::write(&path, b"a\nb\n").unwrap();
        let mut reopened = FileSink::append(&path).unwrap();
        assert_eq!(reopened.dropped, 4);
        reopened.len = 40 * MIB;
        assert_eq!(reopened.take_drop_range(), (4, 24 * MIB));
    }
}
