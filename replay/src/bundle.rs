//! Incident bundles: the entries that concern an agent (or tenant, or session) over
//! a time range, with everything needed to check them offline: their inclusion
//! proofs, the signed checkpoints those proofs rest on, consistency proofs between
//! the checkpoints, the log's verifier key and the producers' public keys.
//!
//! # Format (version 1)
//!
//! A bundle is UTF-8 text, one record per line, each line ending in `\n` (no `\r`),
//! fields separated by one space. Numbers are unsigned decimal without leading
//! zeros; `b64` is standard base64 with padding, in its canonical form; hashes are
//! 64 lowercase hex digits; a list of hashes is comma-separated, or `-` when empty.
//! The lines come in this order:
//!
//! ```text
//! govledger-bundle v1
//! origin <the log's origin line>
//! log-key <the log's note verifier key: name+hex id+base64>
//! filter tenant=<id|*> agent=<id|*> session=<id|*>
//! range <from unix ns> <to unix ns>
//! checkpoint <size> <b64 of the whole signed note>        (1 or more, sizes ascending)
//! consistency <old size> <new size> <hashes>              (one per consecutive pair)
//! entry <seq> <checkpoint size> <b64 leaf bytes> <hashes>  (1 or more, seq ascending)
//! signer <key id> <b64 32-byte Ed25519 public key>         (0 or more, ids ascending)
//! sha256 <hex SHA-256 of every byte before this line>
//! ```
//!
//! # Checks ([`verify`])
//!
//! 1. Every line parses exactly as above, in that order; nothing else is accepted
//!    (so a changed byte can never parse to the same bundle).
//! 2. Each checkpoint note verifies with the log key (C2SP signed note, Ed25519),
//!    names the bundle's origin and the size on its line.
//! 3. Each consistency proof (RFC 9162 §2.1.4.2) leads from the older checkpoint's
//!    root to the newer one's: the checkpoints are views of one append-only log.
//! 4. Each entry's leaf bytes decode (the `GLE1` layout) to an entry with that seq,
//!    an event time inside the range and, with a tenant filter, that tenant; its
//!    leaf hash SHA-256(0x00 ‖ leaf) and inclusion proof (RFC 9162 §2.1.3.2) lead to
//!    the root of the named checkpoint, which is the first one in the bundle whose
//!    size exceeds the seq or the last one.
//! 5. Each entry that keeps its body has its producer signature checked: Ed25519
//!    (strict) over the exact body bytes with the `signer` key of its key id. Every
//!    signer line is used by some entry.
//! 6. The last line is the SHA-256 of all bytes before it.
//!
//! What the checks prove: every entry is, byte for byte, the entry at its seq in the
//! log that signed those checkpoints, and every kept body was signed by the key
//! named. What they do not: the header's filter and range are the exporter's claim
//! (covered only by the checksum, which anyone can recompute), and a bundle cannot
//! prove that the log holds no *other* entry of the agent. The log key in the
//! bundle is only as good as its source: pass the key you trust (`--key`).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ed25519_dalek::{Signature, VerifyingKey};
use govledger_ingest::Admission;
use govledger_ledger::checkpoint::Checkpoint;
use govledger_ledger::note::NoteVerifier;
use govledger_ledger::store::LogStore;
use govledger_ledger::tree::{self, Hash};
use govledger_ledger::{Ledger, LedgerError};
use govledger_schemas::{decode_entry, Entry, Envelope};
use sha2::{Digest, Sha256};

use crate::scope::{Filter, Scope};
use crate::verified::hex;

/// The first line of every version 1 bundle.
pub const MAGIC: &str = "govledger-bundle v1";

/// Why a bundle could not be written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BundleError {
    /// Reading the ledger failed.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// Nothing matched.
    #[error("no entry concerns {what} between {from_ns} and {to_ns} (unix ns)")]
    Empty {
        /// The filter in words.
        what: String,
        /// Range start.
        from_ns: u64,
        /// Range end.
        to_ns: u64,
    },
    /// An entry is newer than the newest checkpoint, so it cannot be proven yet.
    #[error("entry {seq} is not covered by a signed checkpoint yet (the newest has size {newest}); sign one with `govledger checkpoint` and run again")]
    NotCovered {
        /// The entry.
        seq: u64,
        /// The newest checkpoint's size (0: none).
        newest: u64,
    },
    /// A stored checkpoint does not verify with the log's key.
    #[error("the stored checkpoint at size {size} does not verify with the log key: {why}")]
    Checkpoint {
        /// Its size.
        size: u64,
        /// Why.
        why: String,
    },
    /// The written bundle did not verify (a bug: nothing was written).
    #[error("the bundle just built does not verify: {0}")]
    SelfCheck(Problem),
}

/// What to put in a bundle.
#[derive(Clone, Debug)]
pub struct Request {
    /// Which entries.
    pub filter: Filter,
    /// Event times from (inclusive), unix ns.
    pub from_ns: u64,
    /// Event times to (inclusive), unix ns.
    pub to_ns: u64,
}

/// Builds the bundle for `req` from `ledger`, whose checkpoints are signed by
/// `log_key`, by walking entries `start..end` ([`crate::walk`]) with `adm`
/// standing at `start` (as for [`crate::timeline::build`]: `start` at or before the
/// first entry of the range, `end` after the last), and checks it with [`verify`]
/// before returning its bytes. The producer keys come from the key ring as it
/// stands at `end`. `progress` hears the entries walked so far.
#[allow(clippy::too_many_arguments)]
pub fn build<S: LogStore>(
    adm: &mut Admission,
    ledger: &Ledger<S>,
    log_key: &NoteVerifier,
    req: &Request,
    start: u64,
    end: u64,
    progress: &mut dyn FnMut(u64),
) -> Result<Vec<u8>, BundleError> {
    let mut scope = Scope::new(req.filter.clone());
    scope.seed(adm);
    // The chosen entries: (seq, leaf, entry).
    let mut chosen: Vec<(u64, Vec<u8>, Entry)> = Vec::new();
    let mut choose = |_: &Admission, leaf: &[u8], entry: &Entry, env: Option<&Envelope>| {
        if scope.observe(entry, env) && (req.from_ns..=req.to_ns).contains(&entry.time_ns) {
            chosen.push((entry.seq.0, leaf.to_vec(), entry.clone()));
        }
        Ok::<(), LedgerError>(())
    };
    crate::walk(adm, ledger, start, end, progress, &mut choose)?;
    let ring = adm.ring();
    if chosen.is_empty() {
        return Err(BundleError::Empty {
            what: req.filter.describe(),
            from_ns: req.from_ns,
            to_ns: req.to_ns,
        });
    }

    let mut checkpoints: Vec<(u64, String)> = Vec::new();
    for item in ledger.store().scan_checkpoints() {
        checkpoints.push(item.map_err(LedgerError::from)?);
    }
    let newest = checkpoints.last().map_or(0, |c| c.0);
    let last_seq = chosen.last().map_or(0, |c| c.0);
    if last_seq >= newest {
        return Err(BundleError::NotCovered {
            seq: last_seq,
            newest,
        });
    }
    // Each entry rests on the first checkpoint that covers it; the newest one
    // anchors them all.
    let mut used: Vec<usize> = chosen
        .iter()
        .map(|(seq, _, _)| checkpoints.partition_point(|(size, _)| *size <= *seq))
        .collect();
    used.push(checkpoints.len() - 1);
    used.sort_unstable();
    used.dedup();
    let sizes: Vec<u64> = used.iter().map(|&i| checkpoints[i].0).collect();

    let mut out = String::new();
    let _ = writeln!(out, "{MAGIC}");
    let _ = writeln!(out, "origin {}", ledger.origin());
    let _ = writeln!(out, "log-key {}", log_key.to_key_string());
    let f = &req.filter;
    let _ = writeln!(
        out,
        "filter tenant={} agent={} session={}",
        f.tenant.as_deref().unwrap_or("*"),
        f.agent.as_deref().unwrap_or("*"),
        f.session.as_deref().unwrap_or("*")
    );
    let _ = writeln!(out, "range {} {}", req.from_ns, req.to_ns);
    for &i in &used {
        let (size, note) = &checkpoints[i];
        Checkpoint::open(note, log_key).map_err(|e| BundleError::Checkpoint {
            size: *size,
            why: e.to_string(),
        })?;
        let _ = writeln!(out, "checkpoint {size} {}", B64.encode(note));
    }
    for pair in sizes.windows(2) {
        let proof = ledger.consistency_proof(pair[0], pair[1])?;
        let _ = writeln!(
            out,
            "consistency {} {} {}",
            pair[0],
            pair[1],
            hashes(&proof)
        );
    }
    let mut signers: BTreeMap<String, [u8; 32]> = BTreeMap::new();
    for (seq, leaf, entry) in &chosen {
        let size = sizes[sizes.partition_point(|s| s <= seq).min(sizes.len() - 1)];
        let proof = ledger.inclusion_proof(*seq, size)?;
        let _ = writeln!(
            out,
            "entry {seq} {size} {} {}",
            B64.encode(leaf),
            hashes(&proof)
        );
        if let (Some(_), Some(_), Some(key_id)) = (&entry.body, &entry.signature, &entry.key_id) {
            if let Some(pk) = ring.public_key(key_id) {
                signers.insert(key_id.clone(), pk);
            }
        }
    }
    for (key_id, pk) in &signers {
        let _ = writeln!(out, "signer {key_id} {}", B64.encode(pk));
    }
    let sum = Sha256::digest(out.as_bytes());
    let _ = writeln!(out, "sha256 {}", hex(&sum));
    let bytes = out.into_bytes();
    verify(&bytes, Some(log_key)).map_err(BundleError::SelfCheck)?;
    Ok(bytes)
}

fn hashes(proof: &[Hash]) -> String {
    if proof.is_empty() {
        return "-".into();
    }
    proof.iter().map(|h| hex(h)).collect::<Vec<_>>().join(",")
}

/// Where and why a bundle failed to verify.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line} ({section}): {message}")]
pub struct Problem {
    /// 1-based line number.
    pub line: usize,
    /// What the line is (`header`, `checkpoint`, `consistency`, `entry`, `signer`,
    /// `sha256`).
    pub section: &'static str,
    /// What is wrong.
    pub message: String,
}

/// A bundle that verified.
#[derive(Clone, Debug)]
pub struct Verified {
    /// The log's origin.
    pub origin: String,
    /// The log key the checkpoints verified with.
    pub log_key: String,
    /// Whether that key was the one passed in (`false`: taken from the bundle).
    pub key_given: bool,
    /// The exporter's filter (not signed).
    pub filter: Filter,
    /// The exporter's range (not signed), unix ns.
    pub range: (u64, u64),
    /// The checkpoints, ascending.
    pub checkpoints: Vec<Checkpoint>,
    /// The entries, by seq, each with the size of the checkpoint it is proven in.
    pub entries: Vec<(Entry, u64)>,
    /// Producer signatures checked.
    pub signatures_checked: usize,
}

/// The lines of a bundle, numbered, with the problem factory for each.
struct Lines<'a> {
    lines: Vec<&'a str>,
    at: usize,
}

fn problem(line: usize, section: &'static str, message: impl Into<String>) -> Problem {
    Problem {
        line,
        section,
        message: message.into(),
    }
}

impl<'a> Lines<'a> {
    /// The next line's number and its fields after `tag`, if it has that tag.
    fn take(&mut self, tag: &str) -> Option<(usize, Vec<&'a str>)> {
        let line = *self.lines.get(self.at)?;
        let mut fields = line.split(' ');
        if fields.next() != Some(tag) {
            return None;
        }
        self.at += 1;
        Some((self.at, fields.collect()))
    }
}

fn number(s: &str, line: usize, section: &'static str, what: &str) -> Result<u64, Problem> {
    let canonical =
        !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'));
    match s.parse::<u64>() {
        Ok(n) if canonical => Ok(n),
        _ => Err(problem(
            line,
            section,
            format!("{what} {s:?} is not a number"),
        )),
    }
}

fn base64(s: &str, line: usize, section: &'static str, what: &str) -> Result<Vec<u8>, Problem> {
    match B64.decode(s) {
        Ok(b) if B64.encode(&b) == s => Ok(b),
        _ => Err(problem(
            line,
            section,
            format!("{what} is not canonical base64"),
        )),
    }
}

fn hash_list(s: &str, line: usize, section: &'static str) -> Result<Vec<Hash>, Problem> {
    if s == "-" {
        return Ok(Vec::new());
    }
    s.split(',')
        .map(|h| {
            let ok = h.len() == 64 && h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
            if !ok {
                return Err(problem(
                    line,
                    section,
                    format!("{h:?} is not a 64-digit lowercase hex hash"),
                ));
            }
            let mut out = [0u8; 32];
            for (i, o) in out.iter_mut().enumerate() {
                // Cannot fail: the digits were checked above.
                *o = u8::from_str_radix(&h[2 * i..2 * i + 2], 16).unwrap_or(0);
            }
            Ok(out)
        })
        .collect()
}

fn fields<'a>(
    lines: &mut Lines<'a>,
    tag: &str,
    n: usize,
    section: &'static str,
) -> Result<(usize, Vec<&'a str>), Problem> {
    let at = lines.at + 1;
    match lines.take(tag) {
        Some((line, f)) if f.len() == n => Ok((line, f)),
        Some((line, f)) => Err(problem(
            line,
            section,
            format!("expected {n} fields after {tag:?}, found {}", f.len()),
        )),
        None => Err(problem(at, section, format!("expected a {tag:?} line"))),
    }
}

fn filter_field<'a>(s: &'a str, key: &str, line: usize) -> Result<Option<&'a str>, Problem> {
    match s.strip_prefix(key).and_then(|v| v.strip_prefix('=')) {
        Some("*") => Ok(None),
        Some(v) if !v.is_empty() => Ok(Some(v)),
        _ => Err(problem(line, "header", format!("expected {key}=<id|*>"))),
    }
}

/// Checks `bytes` as a version 1 bundle (see the module docs for every check),
/// offline. With `key`, the checkpoints must verify with it and the bundle's
/// `log-key` line must name it; without, the bundle's own key is used and
/// [`Verified::key_given`] is false. The first problem found is returned, with its
/// line.
pub fn verify(bytes: &[u8], key: Option<&NoteVerifier>) -> Result<Verified, Problem> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let line = 1 + bytes[..e.valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        problem(line, "file", "not UTF-8")
    })?;
    let Some(body) = text.strip_suffix('\n') else {
        let line = text.split('\n').count();
        return Err(problem(line, "file", "the file must end with a newline"));
    };
    if let Some(i) = body.find('\r') {
        let line = 1 + body[..i].matches('\n').count();
        return Err(problem(line, "file", "carriage return in the bundle"));
    }
    let mut lines = Lines {
        lines: body.split('\n').collect(),
        at: 0,
    };

    // Header.
    if lines.lines.first() != Some(&MAGIC) {
        return Err(problem(1, "header", format!("expected {MAGIC:?}")));
    }
    lines.at = 1;
    let origin = match lines.take("origin") {
        Some((_, f)) if !f.is_empty() => f.join(" "),
        _ => return Err(problem(2, "header", "expected \"origin <origin>\"")),
    };
    let (line, f) = fields(&mut lines, "log-key", 1, "header")?;
    let bundled = NoteVerifier::from_key_string(f[0])
        .map_err(|e| problem(line, "header", format!("log key: {e}")))?;
    if bundled.to_key_string() != f[0] {
        return Err(problem(line, "header", "log key is not in canonical form"));
    }
    let verifier = match key {
        Some(k) if k.to_key_string() != f[0] => {
            return Err(problem(
                line,
                "header",
                format!(
                    "the bundle names log key {}, not the key given ({})",
                    f[0],
                    k.to_key_string()
                ),
            ))
        }
        Some(k) => k.clone(),
        None => bundled,
    };
    let (line, f) = fields(&mut lines, "filter", 3, "header")?;
    let filter = Filter {
        tenant: filter_field(f[0], "tenant", line)?.map(str::to_owned),
        agent: filter_field(f[1], "agent", line)?.map(str::to_owned),
        session: filter_field(f[2], "session", line)?.map(str::to_owned),
    };
    let (line, f) = fields(&mut lines, "range", 2, "header")?;
    let range = (
        number(f[0], line, "header", "range start")?,
        number(f[1], line, "header", "range end")?,
    );
    if range.0 > range.1 {
        return Err(problem(line, "header", "the range ends before it starts"));
    }

    // Checkpoints.
    let mut checkpoints: Vec<Checkpoint> = Vec::new();
    while lines
        .lines
        .get(lines.at)
        .is_some_and(|l| l.starts_with("checkpoint "))
    {
        let (line, f) = fields(&mut lines, "checkpoint", 2, "checkpoint")?;
        let size = number(f[0], line, "checkpoint", "size")?;
        let note = base64(f[1], line, "checkpoint", "the note")?;
        let note = String::from_utf8(note)
            .map_err(|_| problem(line, "checkpoint", "the note is not UTF-8"))?;
        let cp = Checkpoint::open(&note, &verifier)
            .map_err(|e| problem(line, "checkpoint", format!("does not verify: {e}")))?;
        if cp.origin != origin {
            return Err(problem(
                line,
                "checkpoint",
                format!("signed for origin {:?}, not {origin:?}", cp.origin),
            ));
        }
        if cp.size != size {
            return Err(problem(
                line,
                "checkpoint",
                format!("signs size {}, not {size}", cp.size),
            ));
        }
        if checkpoints.last().is_some_and(|p| p.size >= size) {
            return Err(problem(line, "checkpoint", "sizes must ascend"));
        }
        checkpoints.push(cp);
    }
    if checkpoints.is_empty() {
        return Err(problem(
            lines.at + 1,
            "checkpoint",
            "expected a checkpoint line",
        ));
    }

    // Consistency between each consecutive pair.
    for pair in checkpoints.windows(2) {
        let (line, f) = fields(&mut lines, "consistency", 3, "consistency")?;
        let old = number(f[0], line, "consistency", "old size")?;
        let new = number(f[1], line, "consistency", "new size")?;
        if (old, new) != (pair[0].size, pair[1].size) {
            return Err(problem(
                line,
                "consistency",
                format!(
                    "expected the proof from {} to {}",
                    pair[0].size, pair[1].size
                ),
            ));
        }
        let proof = hash_list(f[2], line, "consistency")?;
        tree::verify_consistency(old, new, &pair[0].root, &pair[1].root, &proof).map_err(|e| {
            problem(
                line,
                "consistency",
                format!("the checkpoints at {old} and {new} are not one log: {e}"),
            )
        })?;
    }

    // Entries.
    let mut entries: Vec<(Entry, u64, usize)> = Vec::new();
    while lines
        .lines
        .get(lines.at)
        .is_some_and(|l| l.starts_with("entry "))
    {
        let (line, f) = fields(&mut lines, "entry", 4, "entry")?;
        let seq = number(f[0], line, "entry", "seq")?;
        let size = number(f[1], line, "entry", "checkpoint size")?;
        if entries.last().is_some_and(|(e, _, _)| e.seq.0 >= seq) {
            return Err(problem(line, "entry", "seqs must ascend"));
        }
        let i = checkpoints
            .partition_point(|c| c.size <= seq)
            .min(checkpoints.len() - 1);
        let cp = &checkpoints[i];
        if cp.size != size {
            return Err(problem(
                line,
                "entry",
                format!(
                    "entry {seq} must be proven in the checkpoint at {}",
                    cp.size
                ),
            ));
        }
        let leaf = base64(f[2], line, "entry", "the leaf")?;
        let proof = hash_list(f[3], line, "entry")?;
        tree::verify_inclusion(&tree::leaf_hash(&leaf), seq, size, &proof, &cp.root).map_err(
            |e| {
                problem(
                    line,
                    "entry",
                    format!("entry {seq} is not in the checkpoint at {size}: {e}"),
                )
            },
        )?;
        let entry = decode_entry(&leaf)
            .map_err(|e| problem(line, "entry", format!("leaf does not decode: {e}")))?;
        if entry.seq.0 != seq {
            return Err(problem(
                line,
                "entry",
                format!("the leaf is entry {}, not {seq}", entry.seq),
            ));
        }
        if entry.time_ns < range.0 || entry.time_ns > range.1 {
            return Err(problem(
                line,
                "entry",
                format!("event time {} is outside the range", entry.time_ns),
            ));
        }
        if let Some(t) = &filter.tenant {
            if entry.tenant() != Some(t.as_str()) {
                return Err(problem(line, "entry", format!("not of tenant {t}")));
            }
        }
        entries.push((entry, size, line));
    }
    if entries.is_empty() {
        return Err(problem(lines.at + 1, "entry", "expected an entry line"));
    }

    // Signers.
    let mut signers: BTreeMap<&str, (VerifyingKey, usize, bool)> = BTreeMap::new();
    while lines
        .lines
        .get(lines.at)
        .is_some_and(|l| l.starts_with("signer "))
    {
        let (line, f) = fields(&mut lines, "signer", 2, "signer")?;
        if signers.keys().next_back().is_some_and(|k| *k >= f[0]) {
            return Err(problem(line, "signer", "key ids must ascend"));
        }
        let raw = base64(f[1], line, "signer", "the key")?;
        let key = <[u8; 32]>::try_from(raw.as_slice())
            .ok()
            .and_then(|k| VerifyingKey::from_bytes(&k).ok())
            .ok_or_else(|| problem(line, "signer", "not a 32-byte Ed25519 public key"))?;
        signers.insert(f[0], (key, line, false));
    }
    // The checksum line: parsed now, so the bundle's shape is whole before the
    // signers are judged; its value is checked last.
    let (line, f) = fields(&mut lines, "sha256", 1, "sha256")?;
    if lines.at != lines.lines.len() {
        return Err(problem(
            lines.at + 1,
            "sha256",
            "nothing may follow the sha256 line",
        ));
    }
    // The entries are proven by the log, so their key ids and signatures are the
    // log's: a signer line no entry names, or a key that does not verify its
    // entries' signatures, is the signer line's fault.
    for (entry, _, _) in &entries {
        if let (Some(_), Some(key_id)) = (&entry.body, &entry.key_id) {
            if let Some((_, _, used)) = signers.get_mut(key_id.as_str()) {
                *used = true;
            }
        }
    }
    if let Some((id, (_, line, _))) = signers.iter().find(|(_, (_, _, used))| !used) {
        return Err(problem(*line, "signer", format!("key {id} signs no entry")));
    }
    let mut signatures_checked = 0;
    for (entry, _, line) in &entries {
        let (Some(body), Some(sig), Some(key_id)) = (&entry.body, &entry.signature, &entry.key_id)
        else {
            if entry.body.is_some() {
                return Err(problem(
                    *line,
                    "entry",
                    format!("entry {} keeps a body but no signature", entry.seq),
                ));
            }
            continue;
        };
        let Some((key, signer_line, _)) = signers.get(key_id.as_str()) else {
            return Err(problem(
                *line,
                "entry",
                format!("no signer line for key {key_id}"),
            ));
        };
        let ok = Signature::from_slice(sig).is_ok_and(|s| key.verify_strict(body, &s).is_ok());
        if !ok {
            return Err(problem(
                *signer_line,
                "signer",
                format!(
                    "key {key_id} does not verify the signature on entry {} (line {line})",
                    entry.seq
                ),
            ));
        }
        signatures_checked += 1;
    }

    let covered = &body[..body.len() - lines.lines[line - 1].len()];
    if f[0] != hex(&Sha256::digest(covered.as_bytes())) {
        return Err(problem(
            line,
            "sha256",
            "the checksum does not match the bytes above it; every signed and proven line \
             checked out, so the change is in the unsigned header (lines 1-5) or in this line",
        ));
    }

    Ok(Verified {
        origin,
        log_key: verifier.to_key_string(),
        key_given: key.is_some(),
        filter,
        range,
        checkpoints,
        entries: entries.into_iter().map(|(e, s, _)| (e, s)).collect(),
        signatures_checked,
    })
}
