//! The replay stepper behind `replay --step`: a position in the log (how many
//! entries are folded) that moves forward one entry or many, back, or to any point,
//! always holding the state at that position, and checking the signed state digest
//! at every checkpoint it moves forward across.
//!
//! It starts from a signed checkpoint as [`crate::verified::replay`] does (so the
//! starting state is checked too), from a start that can check every checkpoint
//! to the end of the log (one that carries ordinals when a version-3
//! checkpoint lies ahead), keeps that state's snapshot bytes, and moves
//! back by restoring them and folding forward again: it never goes before its
//! starting checkpoint.

use std::collections::BTreeMap;

use govledger_ingest::{Admission, Trust};
use govledger_ledger::note::NoteVerifier;
use govledger_ledger::store::LogStore;
use govledger_ledger::{Ledger, LedgerError};
use govledger_schemas::{decode_entry, DecodeLimits, Entry, Envelope};

use crate::verified::{body_changed_named, check, replay_before, ReplayError, Report};

/// A position in the log and the state there.
pub struct Stepper<'a, S: LogStore> {
    ledger: &'a Ledger<S>,
    verifier: NoteVerifier,
    start: u64,
    /// The state at `start`, as snapshot bytes.
    base: Vec<u8>,
    adm: Admission,
    notes: BTreeMap<u64, String>,
    report: Report,
}

fn limits() -> DecodeLimits {
    DecodeLimits {
        max_body_bytes: usize::MAX,
    }
}

impl<'a, S: LogStore> Stepper<'a, S> {
    /// A stepper at the checkpoint signed at size `from_checkpoint`, its state
    /// re-derived and checked as `replay` does.
    pub fn new(
        ledger: &'a Ledger<S>,
        trust: &Trust,
        verifier: &NoteVerifier,
        from_checkpoint: u64,
    ) -> Result<Self, ReplayError> {
        // Its start can check every checkpoint to the end of the log.
        let (adm, report) = replay_before(
            ledger,
            trust,
            verifier,
            from_checkpoint,
            from_checkpoint,
            ledger.size(),
            &mut |_| {},
        )?;
        let mut notes = BTreeMap::new();
        for item in ledger.store().scan_checkpoints() {
            let (size, note) = item.map_err(LedgerError::from)?;
            notes.insert(size, note);
        }
        Ok(Stepper {
            ledger,
            verifier: verifier.clone(),
            start: from_checkpoint,
            base: adm.snapshot(),
            adm,
            notes,
            report,
        })
    }

    /// How many entries are folded: the state is the one right after entry
    /// `pos() - 1`.
    pub fn pos(&self) -> u64 {
        self.adm.entries_folded()
    }

    /// The ledger it steps through.
    pub fn ledger(&self) -> &'a Ledger<S> {
        self.ledger
    }

    /// Where the stepper started (it cannot go before it).
    pub fn start(&self) -> u64 {
        self.start
    }

    /// The state at the position.
    pub fn admission(&self) -> &Admission {
        &self.adm
    }

    /// The state where the stepper stands, to compute its digest.
    pub fn admission_mut(&mut self) -> &mut Admission {
        &mut self.adm
    }

    /// Checkpoints checked so far, as `replay` counts them.
    pub fn report(&self) -> &Report {
        &self.report
    }

    /// Checks the checkpoint signed at the current position, if there is one.
    fn check_here(&mut self) -> Result<(), ReplayError> {
        let pos = self.pos();
        if let Some(note) = self.notes.get(&pos) {
            check(&mut self.adm, &self.verifier, pos, note, &mut self.report)?;
        }
        Ok(())
    }

    /// Folds the next entry and returns it with its decoded body; `None` at the end
    /// of the log.
    pub fn step(&mut self) -> Result<Option<(Entry, Option<Envelope>)>, ReplayError> {
        let seq = self.pos();
        if seq >= self.ledger.size() {
            return Ok(None);
        }
        let (leaf, _) = self.ledger.entry(seq)?;
        let entry = decode_entry(&leaf).map_err(|source| {
            body_changed_named(self.ledger, LedgerError::Codec { seq, source }.into())
        })?;
        let env = self
            .adm
            .replay_entry(&entry)
            .map_err(|source| LedgerError::Codec { seq, source })?;
        self.check_here()?;
        Ok(Some((entry, env)))
    }

    /// Moves to position `target` (entries folded): forward by folding, checking
    /// every checkpoint crossed; back by restoring the starting state and folding
    /// forward again.
    pub fn seek(&mut self, target: u64) -> Result<(), ReplayError> {
        if target < self.start || target > self.ledger.size() {
            return Err(ReplayError::Range(format!(
                "position {target} is outside {}..={} (from the starting checkpoint to the end of the log)",
                self.start,
                self.ledger.size()
            )));
        }
        if target < self.pos() {
            self.adm = Admission::from_snapshot(&self.base, limits()).map_err(|e| {
                ReplayError::Range(format!("cannot restore the starting state: {e}"))
            })?;
        }
        // The checkpoints on the way, none when it stands there already (a
        // range whose start lies past its end would panic).
        let from = self.pos();
        let on_the_way: Vec<u64> = if target > from {
            self.notes
                .range(from + 1..=target)
                .map(|(s, _)| *s)
                .collect()
        } else {
            Vec::new()
        };
        let stops = on_the_way.into_iter().chain(std::iter::once(target));
        for stop in stops {
            let at = self.pos();
            if at < stop {
                crate::fold(&mut self.adm, self.ledger, at, stop, &mut |_| {})
                    .map_err(|e| body_changed_named(self.ledger, e.into()))?;
                self.check_here()?;
            }
        }
        Ok(())
    }
}
