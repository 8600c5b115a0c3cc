//! `cursor`: the durable position of one named sink, in its own small RocksDB.
//!
//! The ledger's own database may be held read-write by `govledger serve`, and the
//! exporter opens it read-only, so a sink's position cannot live there: each named
//! sink gets a database of its own (`DATA/sinks/<name>/`), which RocksDB's lock file
//! also keeps to one exporter at a time. It holds:
//!
//! - `config`: what the sink was created for (format and destination, as JSON). A
//!   run that asks for another format or destination is refused, so one cursor never
//!   describes two streams of records;
//! - `cursor`: [`Position`]: the next seq to export, the sink's committed length
//!   (the file sink's length in bytes after the last committed record; 0 for the
//!   others) and the leaf hash of the last exported entry, so that a cursor is never
//!   resumed on another ledger.
//!
//! Every write is synced (`WriteOptions::set_sync`): when [`SinkCursor::commit`]
//! returns, the position survives a crash of the process or the machine.

use std::path::{Path, PathBuf};

/// The committed position of a sink.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Position {
    /// The next ledger seq to export.
    pub next_seq: u64,
    /// The destination's committed length in bytes (file sinks; 0 otherwise).
    pub sink_len: u64,
    /// The leaf hash of entry `next_seq - 1` (zeros when `next_seq` is 0 or the
    /// sink started later than entry 0 and has exported nothing yet).
    pub last_leaf: [u8; 32],
}

impl Position {
    const LEN: usize = 8 + 8 + 32;

    fn encode(&self) -> [u8; Self::LEN] {
        let mut out = [0u8; Self::LEN];
        out[..8].copy_from_slice(&self.next_seq.to_be_bytes());
        out[8..16].copy_from_slice(&self.sink_len.to_be_bytes());
        out[16..].copy_from_slice(&self.last_leaf);
        out
    }

    fn decode(v: &[u8]) -> Option<Position> {
        if v.len() != Self::LEN {
            return None;
        }
        Some(Position {
            next_seq: u64::from_be_bytes(v[..8].try_into().ok()?),
            sink_len: u64::from_be_bytes(v[8..16].try_into().ok()?),
            last_leaf: v[16..].try_into().ok()?,
        })
    }
}

/// A sink cursor cannot be opened, read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CursorError {
    /// The sink name is not `[A-Za-z0-9_-]{1,64}`.
    #[error("sink name {0:?} is invalid: use 1 to 64 letters, digits, '_' or '-'")]
    BadName(String),
    /// RocksDB failed (held by another exporter, disk error...).
    #[error("sink cursor {path}: {source} (is another `govledger export --sink` running with this name?)")]
    Db {
        /// The cursor's directory.
        path: PathBuf,
        /// RocksDB's error.
        source: rocksdb::Error,
    },
    /// A stored value does not decode.
    #[error("sink cursor {path} is damaged: {what}")]
    Corrupt {
        /// The cursor's directory.
        path: PathBuf,
        /// What is wrong.
        what: String,
    },
}

const KEY_CONFIG: &[u8] = b"config";
const KEY_CURSOR: &[u8] = b"cursor";

/// One named sink's cursor database.
pub struct SinkCursor {
    db: rocksdb::DB,
    path: PathBuf,
}

impl std::fmt::Debug for SinkCursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SinkCursor")
            .field("path", &self.path)
            .finish()
    }
}

/// Checks a sink name: `[A-Za-z0-9_-]{1,64}` (it names a directory).
pub fn check_sink_name(name: &str) -> Result<(), CursorError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(CursorError::BadName(name.to_owned()))
    }
}

impl SinkCursor {
    /// The directory of sink `name` under the sinks directory `sinks_dir`.
    pub fn dir(sinks_dir: &Path, name: &str) -> Result<PathBuf, CursorError> {
        check_sink_name(name)?;
        Ok(sinks_dir.join(name))
    }

    /// Opens (creating it if missing) the cursor database at `path`.
    pub fn open(path: &Path) -> Result<SinkCursor, CursorError> {
        let db_err = |source| CursorError::Db {
            path: path.to_path_buf(),
            source,
        };
        if let Some(parent) = path.parent() {
            // RocksDB creates the last component only.
            std::fs::create_dir_all(parent).map_err(|e| CursorError::Corrupt {
                path: path.to_path_buf(),
                what: format!("cannot create {}: {e}", parent.display()),
            })?;
        }
        let mut opts = rocksdb::Options::default();
        opts.create_if_missing(true);
        // A handful of keys: keep RocksDB's footprint small.
        opts.set_write_buffer_size(1 << 20);
        opts.set_max_open_files(16);
        opts.set_keep_log_file_num(2);
        let db = rocksdb::DB::open(&opts, path).map_err(db_err)?;
        Ok(SinkCursor {
            db,
            path: path.to_path_buf(),
        })
    }

    /// Deletes the cursor database at `path` (a no-op when there is none).
    pub fn destroy(path: &Path) -> Result<(), CursorError> {
        if !path.exists() {
            return Ok(());
        }
        rocksdb::DB::destroy(&rocksdb::Options::default(), path).map_err(|source| {
            CursorError::Db {
                path: path.to_path_buf(),
                source,
            }
        })?;
        let _ = std::fs::remove_dir_all(path);
        Ok(())
    }

    /// The directory of this cursor.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, CursorError> {
        self.db.get(key).map_err(|source| CursorError::Db {
            path: self.path.clone(),
            source,
        })
    }

    fn put_synced(&self, key: &[u8], value: &[u8]) -> Result<(), CursorError> {
        let mut wo = rocksdb::WriteOptions::default();
        wo.set_sync(true);
        self.db
            .put_opt(key, value, &wo)
            .map_err(|source| CursorError::Db {
                path: self.path.clone(),
                source,
            })
    }

    /// The stored configuration (JSON text), if the sink was ever started.
    pub fn config(&self) -> Result<Option<String>, CursorError> {
        match self.get(KEY_CONFIG)? {
            None => Ok(None),
            Some(v) => String::from_utf8(v)
                .map(Some)
                .map_err(|_| CursorError::Corrupt {
                    path: self.path.clone(),
                    what: "the stored configuration is not UTF-8".to_owned(),
                }),
        }
    }

    /// The committed position, if any.
    pub fn position(&self) -> Result<Option<Position>, CursorError> {
        match self.get(KEY_CURSOR)? {
            None => Ok(None),
            Some(v) => Position::decode(&v)
                .map(Some)
                .ok_or_else(|| CursorError::Corrupt {
                    path: self.path.clone(),
                    what: format!("the position has {} bytes, not {}", v.len(), Position::LEN),
                }),
        }
    }

    /// Starts the sink: stores its configuration and first position, synced, in
    /// one batch.
    pub fn start(&self, config: &str, pos: Position) -> Result<(), CursorError> {
        let mut batch = rocksdb::WriteBatch::default();
        batch.put(KEY_CONFIG, config.as_bytes());
        batch.put(KEY_CURSOR, pos.encode());
        let mut wo = rocksdb::WriteOptions::default();
        wo.set_sync(true);
        self.db
            .write_opt(batch, &wo)
            .map_err(|source| CursorError::Db {
                path: self.path.clone(),
                source,
            })
    }

    /// Commits a new position, synced: durable when this returns.
    pub fn commit(&self, pos: Position) -> Result<(), CursorError> {
        self.put_synced(KEY_CURSOR, &pos.encode())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn position_round_trips_and_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = SinkCursor::dir(dir.path(), "siem-1").unwrap();
        let pos = Position {
            next_seq: 42,
            sink_len: 1234,
            last_leaf: [7; 32],
        };
        {
            let c = SinkCursor::open(&path).unwrap();
            assert_eq!(c.position().unwrap(), None);
            c.start("{\"format\":\"ocsf\"}", pos).unwrap();
            c.commit(Position {
                next_seq: 43,
                ..pos
            })
            .unwrap();
        }
        let c = SinkCursor::open(&path).unwrap();
        assert_eq!(c.position().unwrap().unwrap().next_seq, 43);
        assert_eq!(c.config().unwrap().unwrap(), "{\"format\":\"ocsf\"}");
        drop(c);
        SinkCursor::destroy(&path).unwrap();
        assert!(!path.exists());
    }

    #[test]
    fn names_are_checked() {
        assert!(check_sink_name("a_b-1").is_ok());
        for bad in ["", "a/b", "..", "a b", &"x".repeat(65)] {
            assert!(check_sink_name(bad).is_err(), "{bad:?}");
        }
    }
}
