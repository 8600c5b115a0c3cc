//! C2SP tlog-checkpoint bodies, signed as C2SP signed notes ([`crate::note`]).
//!
//! A checkpoint body is:
//!
//! ```text
//! <origin>
//! <tree size, decimal>
//! <base64 root hash>
//! state-digest v3 sha256:<64 lowercase hex>  (govledger's one extension line)
//! ```
//!
//! each line ending in a newline. The extension line commits the signed tree to the
//! digest of the projected governance state at that size, so a replica or a replay
//! that folds the same entries can prove it reached the same state. The line names
//! the version of the digest's definition (`govledger_projections` documents each):
//! `state-digest v<N> sha256:` for version 2 and later, and `state-digest sha256:`
//! with no version for version 1, as ledgers wrote it before versions existed. A
//! checkpoint with no extension lines (as Go's tlog writes them) parses too; other
//! extension lines are kept, in order, and never interpreted.

use crate::note::{NoteError, NoteSigner, NoteVerifier};
use crate::tree::Hash;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;

/// The prefix of govledger's extension line for a version-1 state digest; later
/// versions write `state-digest v<N> sha256:`.
pub const STATE_DIGEST_PREFIX: &str = "state-digest sha256:";

/// A state digest and the version of the definition that made it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StateDigest {
    /// 1 for the whole-state hash, 2 for the per-map Merkle roots, ….
    pub version: u32,
    /// The digest.
    pub hash: Hash,
}

impl StateDigest {
    /// The extension line, without its newline.
    pub fn line(&self) -> String {
        match self.version {
            1 => format!("{STATE_DIGEST_PREFIX}{}", hex(&self.hash)),
            v => format!("state-digest v{v} sha256:{}", hex(&self.hash)),
        }
    }

    /// Reads an extension line; `None` when it is not a state-digest line in one of
    /// the two forms (a version ≥ 2 without leading zeros, 64 lowercase hex digits).
    /// Versions above 2 parse, so that a replay can say it does not know them.
    pub fn parse(line: &str) -> Option<StateDigest> {
        if let Some(h) = line.strip_prefix(STATE_DIGEST_PREFIX) {
            return unhex(h).map(|hash| StateDigest { version: 1, hash });
        }
        let rest = line.strip_prefix("state-digest v")?;
        let (v, h) = rest.split_once(" sha256:")?;
        if v.is_empty() || v.starts_with('0') || !v.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let version: u32 = v.parse().ok().filter(|&v| v >= 2)?;
        unhex(h).map(|hash| StateDigest { version, hash })
    }
}

/// A tree head: what a checkpoint commits to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's origin line, its unique name.
    pub origin: String,
    /// Number of leaves.
    pub size: u64,
    /// RFC 6962 root of the first `size` leaves.
    pub root: Hash,
    /// The digest of the projected state at `size`, when the log carries one.
    pub state_digest: Option<StateDigest>,
    /// Other extension lines, kept verbatim.
    pub extensions: Vec<String>,
}

/// Why a checkpoint body could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointError {
    /// The body is not a tlog-checkpoint.
    #[error("malformed checkpoint: {0}")]
    Malformed(String),
    /// The signed note around it is bad.
    #[error(transparent)]
    Note(#[from] NoteError),
    /// The note is signed for another size than the one it is stored under:
    /// moved there, its digest is not that state's.
    #[error("it is signed for size {signed}, not the size {stored} it is stored under")]
    WrongSize {
        /// The size it is stored under.
        stored: u64,
        /// The size it is signed for.
        signed: u64,
    },
}

impl Checkpoint {
    /// The checkpoint body, as it is signed.
    pub fn body(&self) -> String {
        let mut s = format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            B64.encode(self.root)
        );
        if let Some(d) = &self.state_digest {
            s.push_str(&d.line());
            s.push('\n');
        }
        for e in &self.extensions {
            s.push_str(e);
            s.push('\n');
        }
        s
    }

    /// Signs the body and returns the signed note text.
    pub fn sign(&self, signer: &NoteSigner) -> Result<String, CheckpointError> {
        Ok(signer.sign(&self.body())?)
    }

    /// Verifies `note` with `verifier` and parses its body.
    pub fn open(note: &str, verifier: &NoteVerifier) -> Result<Checkpoint, CheckpointError> {
        let text = verifier.open(note)?;
        Self::parse_body(text)
    }

    /// [`Checkpoint::open`] for a note stored under the log size `size`, which
    /// must be the size it is signed for ([`CheckpointError::WrongSize`]).
    pub fn open_at(
        note: &str,
        verifier: &NoteVerifier,
        size: u64,
    ) -> Result<Checkpoint, CheckpointError> {
        let cp = Self::open(note, verifier)?;
        if cp.size != size {
            return Err(CheckpointError::WrongSize {
                stored: size,
                signed: cp.size,
            });
        }
        Ok(cp)
    }

    /// The checkpoint a note's text says, its signature not checked: to plan
    /// with (which digests lie ahead) before [`Checkpoint::open`] checks it.
    pub fn peek(note: &str) -> Result<Checkpoint, CheckpointError> {
        let (text, _) = crate::note::split_note(note)?;
        Self::parse_body(text)
    }

    /// Parses a checkpoint body (no signature check).
    pub fn parse_body(text: &str) -> Result<Checkpoint, CheckpointError> {
        let bad = |m: &str| CheckpointError::Malformed(m.to_string());
        let text = text
            .strip_suffix('\n')
            .ok_or_else(|| bad("body must end in a newline"))?;
        let mut lines = text.split('\n');
        let origin = lines
            .next()
            .filter(|o| !o.is_empty())
            .ok_or_else(|| bad("empty origin line"))?;
        let size_line = lines.next().ok_or_else(|| bad("missing size line"))?;
        if size_line.is_empty()
            || !size_line.bytes().all(|b| b.is_ascii_digit())
            || (size_line.len() > 1 && size_line.starts_with('0'))
        {
            return Err(bad("size must be a decimal number without leading zeros"));
        }
        let size: u64 = size_line.parse().map_err(|_| bad("size out of range"))?;
        let root_line = lines.next().ok_or_else(|| bad("missing root line"))?;
        let root: Hash = B64
            .decode(root_line)
            .ok()
            .and_then(|r| r.try_into().ok())
            .ok_or_else(|| bad("root must be the base64 of 32 bytes"))?;
        let mut state_digest = None;
        let mut extensions = Vec::new();
        for line in lines {
            if line.is_empty() {
                return Err(bad("empty extension line"));
            }
            match StateDigest::parse(line) {
                Some(d) if state_digest.is_none() => state_digest = Some(d),
                // A damaged line of a form this build writes is an error; any other
                // `state-digest` line (a form of a later version) is kept as it is,
                // for replay to say it cannot check it.
                None if state_digest.is_none()
                    && (line.starts_with(STATE_DIGEST_PREFIX)
                        || line.starts_with("state-digest v2 ")
                        || line.starts_with("state-digest v3 ")) =>
                {
                    return Err(bad(
                        "the state digest line must be `state-digest [v<N> ]sha256:<64 lowercase hex digits>`",
                    ));
                }
                _ => extensions.push(line.to_string()),
            }
        }
        Ok(Checkpoint {
            origin: origin.to_string(),
            size,
            root,
            state_digest,
            extensions,
        })
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Option<Hash> {
    if s.len() != 64 || !s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}
