//! The integrity walk: re-reads the whole log and proves it is what was signed.
//!
//! In one pass, in seq order, [`verify`]:
//! 1. checks every entry is present, in place (its own `seq` field equals its key) and
//!    decodes;
//! 2. recomputes every leaf hash and every complete-subtree hash with a
//!    [`Frontier`] (O(log n) memory) and compares each with the stored node, so a
//!    proof served later from those nodes is a proof about these entries;
//! 3. at every stored checkpoint's size, checks its signature with the log's key and
//!    that its root equals the recomputed root. Roots recomputed from one sequence of
//!    leaves are consistent by construction, so each checkpoint is consistent with
//!    the next;
//! 4. does the same for checkpoints kept outside the store (`--against`): a client's
//!    or witness's copy catches a truncated log whose own checkpoints were cut too;
//!    one that does not verify with the log's key is a problem
//!    (`against_bad_signature`), and where the log kept its own checkpoint at the
//!    same size, both must carry the same state digest and extension lines
//!    (`against_state_mismatch`), not only the same root;
//! 5. finds anything beyond the recorded size: entries, nodes or checkpoints
//!    appended behind the ledger's back.
//!
//! It stops at the first problem and names the first bad seq it can pin down. An
//! entry edited in place shows as its leaf-hash mismatch (exact seq); an edit that
//! also rewrote every tree node shows at the first checkpoint whose signed root no
//! longer matches, naming the range of seqs that checkpoint covers.

use crate::checkpoint::Checkpoint;
use crate::note::NoteVerifier;
use crate::store::{LogStore, Scan};
use crate::tree::{self, Frontier, Hash};
use crate::{Ledger, LedgerError};
use govledger_schemas::{decode_entry, entry_seq};
use std::iter::Peekable;
use std::sync::mpsc::SyncSender;

/// What to check beyond the walk itself.
#[derive(Clone, Debug)]
pub struct VerifyOptions {
    /// Check the Ed25519 signature of every stored checkpoint (on by default).
    pub check_signatures: bool,
    /// Fully decode every entry, not only its header (off by default: the leaf
    /// hashes already cover every byte; this also proves each entry parses).
    pub decode_entries: bool,
    /// Signed checkpoints kept outside the store, each checked against the log.
    pub against: Vec<String>,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        VerifyOptions {
            check_signatures: true,
            decode_entries: false,
            against: Vec::new(),
        }
    }
}

/// One integrity failure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// Machine-readable kind: `missing_entry`, `misplaced_entry`, `undecodable_entry`,
    /// `leaf_mismatch`, `node_mismatch`, `checkpoint_root_mismatch`,
    /// `checkpoint_signature`, `checkpoint_beyond_log`, `entry_beyond_size`,
    /// `node_beyond_log`, `against_mismatch`, `against_bad_signature`,
    /// `against_state_mismatch`, `against_beyond_log`, `store`.
    pub kind: &'static str,
    /// The first bad seq, when it can be pinned down.
    pub seq: Option<u64>,
    /// A sentence a person can act on.
    pub message: String,
}

/// The outcome of [`verify`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyReport {
    /// Entries the store says it has.
    pub size: u64,
    /// Entries walked and found good.
    pub entries_checked: u64,
    /// Stored tree nodes compared.
    pub nodes_checked: u64,
    /// Stored checkpoints checked.
    pub checkpoints_checked: u64,
    /// Outside checkpoints checked.
    pub against_checked: u64,
    /// The recomputed root of the whole log (when the walk completed).
    pub root: Option<Hash>,
    /// Size of the newest stored checkpoint (entries after it are not yet signed).
    pub last_checkpoint: Option<u64>,
    /// The first problem found; `None` means the log verified.
    pub problem: Option<Problem>,
}

impl VerifyReport {
    /// True when no problem was found.
    pub fn ok(&self) -> bool {
        self.problem.is_none()
    }
}

struct Walk<'a> {
    report: VerifyReport,
    levels: Vec<Peekable<Scan<'a, (u64, Hash)>>>,
    store: &'a dyn LogStore,
}

fn problem(kind: &'static str, seq: Option<u64>, message: String) -> Problem {
    Problem { kind, seq, message }
}

impl<'a> Walk<'a> {
    /// Compares a node the entries complete with the stored one.
    fn check_node(&mut self, id: tree::NodeId, hash: &Hash) -> Option<Problem> {
        let level = id.level as usize;
        while self.levels.len() <= level {
            let l = self.levels.len() as u8;
            self.levels.push(self.store.scan_nodes(l).peekable());
        }
        let first = id.index << id.level;
        let last = ((id.index + 1) << id.level) - 1;
        let stored = match self.levels[level].next() {
            Some(Ok(x)) => Some(x),
            Some(Err(e)) => return Some(problem("store", Some(first), e.to_string())),
            None => None,
        };
        self.report.nodes_checked += 1;
        match stored {
            Some((i, h)) if i == id.index && &h == hash => None,
            _ if id.level == 0 => Some(problem(
                "leaf_mismatch",
                Some(id.index),
                format!(
                    "entry {} does not match its leaf hash in the tree: the entry was edited",
                    id.index
                ),
            )),
            _ => Some(problem(
                "node_mismatch",
                Some(first),
                format!(
                    "tree node (level {}, index {}) does not match entries {first}..={last}",
                    id.level, id.index
                ),
            )),
        }
    }
}

/// Walks the whole log. `verifier` is the log's checkpoint key. Calls `progress`
/// with the number of entries walked, every 65,536 entries and at the end.
pub fn verify<S: LogStore>(
    ledger: &Ledger<S>,
    verifier: &NoteVerifier,
    opts: &VerifyOptions,
    progress: &mut dyn FnMut(u64),
) -> Result<VerifyReport, LedgerError> {
    let store: &dyn LogStore = ledger.store();
    let size = ledger.size();
    let mut walk = Walk {
        report: VerifyReport {
            size,
            entries_checked: 0,
            nodes_checked: 0,
            checkpoints_checked: 0,
            against_checked: 0,
            root: None,
            last_checkpoint: None,
            problem: None,
        },
        levels: Vec::new(),
        store,
    };
    let mut against: Vec<Checkpoint> = Vec::new();
    for (i, note) in opts.against.iter().enumerate() {
        // One that does not verify is a failed check, as a bad stored one is.
        let cp = match Checkpoint::open(note, verifier) {
            Ok(cp) => cp,
            Err(e) => {
                walk.report.problem = Some(problem(
                    "against_bad_signature",
                    None,
                    format!(
                        "outside checkpoint {} of {} does not verify with the log's key: {e}",
                        i + 1,
                        opts.against.len()
                    ),
                ));
                return Ok(walk.report);
            }
        };
        if cp.origin != ledger.origin() {
            walk.report.problem = Some(problem(
                "against_mismatch",
                None,
                format!(
                    "the outside checkpoint is for log {:?}, not {:?}",
                    cp.origin,
                    ledger.origin()
                ),
            ));
            return Ok(walk.report);
        }
        against.push(cp);
    }
    against.sort_by_key(|c| c.size);
    let mut against = against.into_iter().peekable();
    let mut cps = store.scan_checkpoints().peekable();
    let mut frontier = Frontier::new();
    let mut prev_cp = 0u64;

    // Checkpoints at the current frontier size (size 0 first, then after each entry).
    macro_rules! check_checkpoints {
        () => {
            check_checkpoints!(walk.report)
        };
        ($ret:expr) => {{
            let at = frontier.size();
            while let Some(item) = cps.next_if(|c| !matches!(c, Ok((s, _)) if *s > at)) {
                let (s, note) = item?;
                let root = frontier.root();
                if let Some(p) = check_stored_checkpoint(s, at, &note, &root, prev_cp, ledger, verifier, opts) {
                    walk.report.problem = Some(p);
                    return Ok($ret);
                }
                walk.report.checkpoints_checked += 1;
                walk.report.last_checkpoint = Some(s);
                prev_cp = s;
            }
            while let Some(cp) = against.next_if(|c| c.size <= at) {
                if cp.root != frontier.root() {
                    walk.report.problem = Some(problem(
                        "against_mismatch",
                        None,
                        format!(
                            "the log's root at size {} differs from the outside checkpoint's: \
                             the log was rewritten",
                            cp.size
                        ),
                    ));
                    return Ok($ret);
                }
                // The log's own checkpoint at that size, if it kept one, must
                // sign the same state: one key signing two states at one size is
                // a fork of the state, whatever the roots say.
                if let Some(own) = ledger.checkpoint_at(cp.size)? {
                    let own = own.checkpoint;
                    if (&own.state_digest, &own.extensions) != (&cp.state_digest, &cp.extensions) {
                        let line = |c: &Checkpoint| {
                            c.state_digest.map_or("no state digest".to_string(), |d| d.line())
                        };
                        walk.report.problem = Some(problem(
                            "against_state_mismatch",
                            None,
                            format!(
                                "the outside checkpoint at size {} signs the same root as the \
                                 log's own there but another state ({} against {}): the log's key \
                                 signed two states at one size",
                                cp.size,
                                line(&cp),
                                line(&own)
                            ),
                        ));
                        return Ok($ret);
                    }
                }
                walk.report.against_checked += 1;
            }
        }};
    }

    check_checkpoints!();
    // Two stages on two threads: the scanner reads entries, checks their place and
    // hashes them; this thread folds the hashes into the tree, compares stored nodes
    // and checks checkpoints. Dropping the receiver on an early return stops the
    // scanner at its next send.
    let deep = opts.decode_entries;
    let outcome = std::thread::scope(|scope| -> Result<Option<VerifyReport>, LedgerError> {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<Scanned>>(8);
        scope.spawn(move || scan(store, size, deep, tx));
        for chunk in rx {
            for item in chunk {
                let leaf = match item {
                    Scanned::Leaf(h) => h,
                    Scanned::Problem(p) => {
                        walk.report.problem = Some(p);
                        return Ok(Some(walk.report.clone()));
                    }
                };
                let mut bad = None;
                frontier.push(leaf, |id, h| {
                    if bad.is_none() {
                        bad = walk.check_node(id, h);
                    }
                });
                if let Some(p) = bad {
                    walk.report.problem = Some(p);
                    return Ok(Some(walk.report.clone()));
                }
                walk.report.entries_checked += 1;
                if walk.report.entries_checked.is_multiple_of(65_536) {
                    progress(walk.report.entries_checked);
                }
                check_checkpoints!(Some(walk.report.clone()));
            }
        }
        Ok(None)
    })?;
    if let Some(report) = outcome {
        return Ok(report);
    }
    progress(walk.report.entries_checked);
    if frontier.size() < size {
        walk.report.problem = Some(problem(
            "missing_entry",
            Some(frontier.size()),
            format!(
                "entries {}..{size} are missing: the log's tail was deleted",
                frontier.size()
            ),
        ));
        return Ok(walk.report);
    }
    if let Some(item) = cps.next() {
        let (s, _) = item?;
        walk.report.problem = Some(problem(
            "checkpoint_beyond_log",
            Some(size),
            format!("a checkpoint signs {s} entries but the log has {size}: the log was truncated"),
        ));
        return Ok(walk.report);
    }
    if let Some(cp) = against.next() {
        walk.report.problem = Some(problem(
            "against_beyond_log",
            Some(size),
            format!(
                "the outside checkpoint signs {} entries but the log has only {size}: \
                 the log was truncated",
                cp.size
            ),
        ));
        return Ok(walk.report);
    }
    // Nodes of level 0 past the end mean leaves were added behind the ledger's back.
    if let Some(Some(Ok((i, _)))) = walk.levels.get_mut(0).map(|l| l.next()) {
        walk.report.problem = Some(problem(
            "node_beyond_log",
            Some(i),
            format!("the tree holds a leaf at {i}, beyond the log's {size} entries"),
        ));
        return Ok(walk.report);
    }
    if size == 0 {
        if let Some(Ok((i, _))) = store.scan_nodes(0).next() {
            walk.report.problem = Some(problem(
                "node_beyond_log",
                Some(i),
                format!("the tree holds a leaf at {i}, but the log is empty"),
            ));
            return Ok(walk.report);
        }
    }
    walk.report.root = Some(frontier.root());
    Ok(walk.report)
}

/// What the scanner stage hands on: a leaf hash in seq order, or the first problem.
enum Scanned {
    Leaf(Hash),
    Problem(Problem),
}

/// The scanner stage: entries in order, each checked for place and (optionally)
/// decoded, then hashed.
fn scan(store: &dyn LogStore, size: u64, deep: bool, tx: SyncSender<Vec<Scanned>>) {
    const CHUNK: usize = 4096;
    let mut chunk = Vec::with_capacity(CHUNK);
    for (item, expected) in store.scan_entries(0).zip(0u64..) {
        let problem = match item {
            Err(e) => Some(problem("store", Some(expected), e.to_string())),
            Ok((seq, _)) if seq >= size => Some(problem(
                "entry_beyond_size",
                Some(seq),
                format!(
                    "entry {seq} is stored beyond the log's recorded size of {size}: \
                     it was appended behind the ledger's back"
                ),
            )),
            Ok((seq, _)) if seq != expected => Some(problem(
                "missing_entry",
                Some(expected),
                format!("entry {expected} is missing: it was deleted"),
            )),
            Ok((seq, leaf)) => {
                let header = if deep {
                    decode_entry(&leaf).map(|e| e.seq)
                } else {
                    entry_seq(&leaf)
                };
                match header {
                    Err(e) => Some(problem(
                        "undecodable_entry",
                        Some(seq),
                        format!("entry {seq} does not decode ({e}): it was edited"),
                    )),
                    Ok(s) if s.0 != seq => Some(problem(
                        "misplaced_entry",
                        Some(seq),
                        format!(
                            "the entry stored at seq {seq} is entry {}: entries were moved or swapped",
                            s.0
                        ),
                    )),
                    Ok(_) => {
                        chunk.push(Scanned::Leaf(tree::leaf_hash(&leaf)));
                        None
                    }
                }
            }
        };
        if let Some(p) = problem {
            chunk.push(Scanned::Problem(p));
            let _ = tx.send(chunk);
            return;
        }
        if chunk.len() == CHUNK
            && tx
                .send(std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK)))
                .is_err()
        {
            return;
        }
    }
    if !chunk.is_empty() {
        let _ = tx.send(chunk);
    }
}

#[allow(clippy::too_many_arguments)]
fn check_stored_checkpoint<S: LogStore>(
    size: u64,
    at: u64,
    note: &str,
    root: &Hash,
    prev: u64,
    ledger: &Ledger<S>,
    verifier: &NoteVerifier,
    opts: &VerifyOptions,
) -> Option<Problem> {
    if size != at {
        // A checkpoint for a size the walk skipped cannot happen in seq order;
        // treat it as corruption of the checkpoint column.
        return Some(problem(
            "checkpoint_root_mismatch",
            Some(size),
            format!("checkpoint for size {size} is out of order"),
        ));
    }
    let cp = if opts.check_signatures {
        match Checkpoint::open(note, verifier) {
            Ok(cp) => cp,
            Err(e) => {
                return Some(problem(
                    "checkpoint_signature",
                    Some(size),
                    format!("checkpoint at size {size} does not verify with the log's key: {e}"),
                ))
            }
        }
    } else {
        match note
            .rfind("\n\n")
            .map(|at| Checkpoint::parse_body(&note[..=at]))
        {
            Some(Ok(cp)) => cp,
            _ => {
                return Some(problem(
                    "checkpoint_signature",
                    Some(size),
                    format!("checkpoint at size {size} is not a signed note"),
                ))
            }
        }
    };
    if cp.size != size || cp.origin != ledger.origin() {
        return Some(problem(
            "checkpoint_root_mismatch",
            Some(size),
            format!(
                "checkpoint stored at size {size} signs size {} of log {:?}",
                cp.size, cp.origin
            ),
        ));
    }
    if &cp.root != root {
        return Some(problem(
            "checkpoint_root_mismatch",
            Some(prev),
            format!(
                "the signed root at size {size} does not match the entries: \
                 an entry in {prev}..{size} was changed"
            ),
        ));
    }
    None
}
