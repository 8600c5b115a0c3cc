//! The data directory: where a ledger lives on disk.
//!
//! ```text
//! DIR/
//!   db/          RocksDB: entries, tree nodes, checkpoints, indexes, metadata
//!   log.key      the log's checkpoint signing key, Go note format, mode 0600
//!   trust.json   the trust roots given at init (operator and tenant admin keys)
//! ```
//!
//! `init` writes `trust.json` and `log.key` first and creates the database last,
//! so a store whose database exists is complete; an interrupted `init` leaves a
//! directory that `init` can be run on again.

use anyhow::{bail, Context, Result};
use govledger_ingest::Trust;
use govledger_ledger::note::{NoteSigner, NoteVerifier};
use govledger_ledger::store::{OpenMode, RocksStore};
use govledger_ledger::Ledger;
use std::io::Write;
use std::path::{Path, PathBuf};

/// A ledger's data directory.
pub struct DataDir {
    pub path: PathBuf,
}

impl DataDir {
    pub fn new(path: &Path) -> Self {
        DataDir {
            path: path.to_path_buf(),
        }
    }

    pub fn db(&self) -> PathBuf {
        self.path.join("db")
    }

    pub fn key_file(&self) -> PathBuf {
        self.path.join("log.key")
    }

    pub fn trust_file(&self) -> PathBuf {
        self.path.join("trust.json")
    }

    fn check_exists(&self) -> Result<()> {
        if !self.db().join("CURRENT").exists() {
            bail!(
                "no ledger at {}: run `govledger init --data {} --origin NAME` first",
                self.path.display(),
                self.path.display()
            );
        }
        Ok(())
    }

    /// Opens the ledger for writing (fails if another process holds it).
    pub fn open_rw(&self) -> Result<Ledger<RocksStore>> {
        self.check_exists()?;
        let store = RocksStore::open(&self.db(), OpenMode::ReadWrite).with_context(|| {
            format!(
                "cannot open {} for writing (is `govledger serve` running on it?)",
                self.db().display()
            )
        })?;
        Ok(Ledger::open(store)?)
    }

    /// Opens the ledger read-only: works while another process writes to it.
    pub fn open_ro(&self) -> Result<Ledger<RocksStore>> {
        self.check_exists()?;
        let store = RocksStore::open(&self.db(), OpenMode::ReadOnly)
            .with_context(|| format!("cannot open {} read-only", self.db().display()))?;
        Ok(Ledger::open(store)?)
    }

    pub fn signer(&self) -> Result<NoteSigner> {
        let text = std::fs::read_to_string(self.key_file())
            .with_context(|| format!("cannot read the log key {}", self.key_file().display()))?;
        NoteSigner::from_key_string(text.trim())
            .with_context(|| format!("{} is not a note signer key", self.key_file().display()))
    }

    /// The log's verifier key (derived from the signing key).
    pub fn verifier(&self) -> Result<NoteVerifier> {
        Ok(self.signer()?.verifier())
    }

    pub fn trust(&self) -> Result<Trust> {
        let path = self.trust_file();
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        Trust::from_json(&text).with_context(|| format!("in {}", path.display()))
    }
}

/// Writes `data` to `path` atomically (temporary file, fsync, rename), with `mode`.
pub fn write_file_atomic(path: &Path, data: &[u8], mode: u32) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)
        .with_context(|| format!("cannot create {}", tmp.display()))?;
    f.write_all(data)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}
