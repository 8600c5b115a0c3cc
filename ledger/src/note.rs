//! C2SP signed notes with Ed25519, byte-compatible with Go's `golang.org/x/mod/sumdb/note`.
//!
//! A signed note is a UTF-8 text that ends in a newline, a blank line, then one line
//! per signature: `— <key name> <base64(key id ‖ signature)>` (U+2014 EM DASH). The
//! key id is the first four bytes of SHA-256(name ‖ "\n" ‖ 0x01 ‖ public key), 0x01
//! being the Ed25519 algorithm byte, and the signature is Ed25519 over the note text.
//!
//! Keys are written the way Go writes them, so Go tools and tlog witnesses can use
//! them unchanged:
//! - verifier key: `<name>+<8 hex key id>+<base64(0x01 ‖ public key)>`
//! - signer key:   `PRIVATE+KEY+<name>+<8 hex key id>+<base64(0x01 ‖ seed)>`
//!
//! Ed25519 comes from `ed25519-dalek`; nothing here does cryptography by hand.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

/// The algorithm byte of Ed25519 keys in signed notes.
const ALG_ED25519: u8 = 0x01;
/// The prefix of every signature line.
const SIG_PREFIX: &str = "\u{2014} ";

/// Why a key or a note was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NoteError {
    /// A key name is empty or holds a space or a `+`.
    #[error("invalid key name {0:?}: it must be non-empty, with no spaces and no '+'")]
    BadName(String),
    /// A key string is not in Go's note key format.
    #[error("malformed key: {0}")]
    BadKey(String),
    /// The note text is not a signed note.
    #[error("malformed note: {0}")]
    Malformed(String),
    /// No signature line by the expected key.
    #[error("note has no signature by key {name}+{key_id:08x}")]
    UnknownSigner {
        /// Expected key name.
        name: String,
        /// Expected key id.
        key_id: u32,
    },
    /// A signature line by the expected key does not verify.
    #[error("signature by key {0} does not verify")]
    BadSignature(String),
}

fn check_name(name: &str) -> Result<(), NoteError> {
    if name.is_empty() || name.contains('+') || name.chars().any(char::is_whitespace) {
        return Err(NoteError::BadName(name.to_string()));
    }
    Ok(())
}

/// The key id of an Ed25519 note key: first 4 bytes of SHA-256(name ‖ "\n" ‖ 0x01 ‖ key).
pub fn key_id(name: &str, public: &VerifyingKey) -> u32 {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update(b"\n");
    h.update([ALG_ED25519]);
    h.update(public.as_bytes());
    let d = h.finalize();
    u32::from_be_bytes([d[0], d[1], d[2], d[3]])
}

/// A named Ed25519 key that signs notes.
#[derive(Clone)]
pub struct NoteSigner {
    name: String,
    key: SigningKey,
}

impl std::fmt::Debug for NoteSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the seed.
        write!(f, "NoteSigner({})", self.verifier().to_key_string())
    }
}

impl NoteSigner {
    /// A signer named `name` from a 32-byte Ed25519 seed.
    pub fn from_seed(name: &str, seed: [u8; 32]) -> Result<Self, NoteError> {
        check_name(name)?;
        Ok(NoteSigner {
            name: name.to_string(),
            key: SigningKey::from_bytes(&seed),
        })
    }

    /// A fresh key from the operating system's random source.
    pub fn generate(name: &str) -> Result<Self, NoteError> {
        let mut seed = [0u8; 32];
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut seed);
        Self::from_seed(name, seed)
    }

    /// Parses Go's `PRIVATE+KEY+<name>+<hex id>+<base64(0x01 ‖ seed)>`.
    pub fn from_key_string(s: &str) -> Result<Self, NoteError> {
        let s = s.trim_end_matches(['\n', '\r']);
        let rest = s
            .strip_prefix("PRIVATE+KEY+")
            .ok_or_else(|| NoteError::BadKey("signer key must start with PRIVATE+KEY+".into()))?;
        let (name, id, raw) = split_key(rest)?;
        let signer = Self::from_seed(name, raw)?;
        check_id(id, signer.key_id())?;
        Ok(signer)
    }

    /// Go's private key string. Keep it secret: it is the log's identity.
    pub fn to_key_string(&self) -> String {
        let mut raw = vec![ALG_ED25519];
        raw.extend_from_slice(self.key.as_bytes());
        format!(
            "PRIVATE+KEY+{}+{:08x}+{}",
            self.name,
            self.key_id(),
            B64.encode(raw)
        )
    }

    /// The key's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key id.
    pub fn key_id(&self) -> u32 {
        key_id(&self.name, &self.key.verifying_key())
    }

    /// The matching verifier.
    pub fn verifier(&self) -> NoteVerifier {
        NoteVerifier {
            name: self.name.clone(),
            key: self.key.verifying_key(),
        }
    }

    /// Signs `text` (which must be a valid note body) and returns the signed note.
    pub fn sign(&self, text: &str) -> Result<String, NoteError> {
        check_text(text)?;
        let sig = self.key.sign(text.as_bytes());
        let mut raw = self.key_id().to_be_bytes().to_vec();
        raw.extend_from_slice(&sig.to_bytes());
        Ok(format!(
            "{text}\n{SIG_PREFIX}{} {}\n",
            self.name,
            B64.encode(raw)
        ))
    }
}

/// A named Ed25519 public key that verifies notes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoteVerifier {
    name: String,
    key: VerifyingKey,
}

/// Splits `<name>+<8 hex id>+<base64(0x01 ‖ 32 key bytes)>` (Go's note key format,
/// less any `PRIVATE+KEY+` prefix) into its name, id and the 32 key bytes.
fn split_key(s: &str) -> Result<(&str, u32, [u8; 32]), NoteError> {
    let mut parts = s.splitn(3, '+');
    let (Some(name), Some(id), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(NoteError::BadKey(
            "expected <name>+<hex id>+<base64 key>".into(),
        ));
    };
    check_name(name)?;
    if id.len() != 8 {
        return Err(NoteError::BadKey("key id must be 8 hex digits".into()));
    }
    let id = u32::from_str_radix(id, 16)
        .map_err(|_| NoteError::BadKey("key id must be 8 hex digits".into()))?;
    let bytes = B64
        .decode(key)
        .map_err(|e| NoteError::BadKey(format!("key is not base64: {e}")))?;
    let raw: [u8; 32] = match bytes.split_first() {
        Some((&ALG_ED25519, k)) => k
            .try_into()
            .map_err(|_| NoteError::BadKey("an Ed25519 key must be 32 bytes".into()))?,
        _ => return Err(NoteError::BadKey("not an Ed25519 key".into())),
    };
    Ok((name, id, raw))
}

/// The key id written in a key string must be the one its name and key give.
fn check_id(written: u32, actual: u32) -> Result<(), NoteError> {
    if written != actual {
        return Err(NoteError::BadKey(format!(
            "key id {written:08x} does not match the key ({actual:08x})"
        )));
    }
    Ok(())
}

impl NoteVerifier {
    /// Parses Go's verifier key `<name>+<hex id>+<base64(0x01 ‖ public key)>`.
    pub fn from_key_string(s: &str) -> Result<Self, NoteError> {
        let (name, id, raw) = split_key(s.trim_end_matches(['\n', '\r']))?;
        let key = VerifyingKey::from_bytes(&raw)
            .map_err(|e| NoteError::BadKey(format!("not a valid Ed25519 point: {e}")))?;
        let v = NoteVerifier {
            name: name.to_string(),
            key,
        };
        check_id(id, v.key_id())?;
        Ok(v)
    }

    /// Go's verifier key string.
    pub fn to_key_string(&self) -> String {
        let mut raw = vec![ALG_ED25519];
        raw.extend_from_slice(self.key.as_bytes());
        format!("{}+{:08x}+{}", self.name, self.key_id(), B64.encode(raw))
    }

    /// The key's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key id.
    pub fn key_id(&self) -> u32 {
        key_id(&self.name, &self.key)
    }

    /// Checks that `note` carries a valid signature by this key and returns its text
    /// (the signed body, ending in a newline). Signatures by other keys are ignored,
    /// as in Go's `note.Open` with a single known verifier.
    pub fn open<'a>(&self, note: &'a str) -> Result<&'a str, NoteError> {
        let (text, sigs) = split_note(note)?;
        let mut found = false;
        for line in sigs.lines() {
            let rest = line
                .strip_prefix(SIG_PREFIX)
                .ok_or_else(|| NoteError::Malformed(format!("bad signature line {line:?}")))?;
            let (name, b64) = rest
                .split_once(' ')
                .ok_or_else(|| NoteError::Malformed(format!("bad signature line {line:?}")))?;
            let raw = B64
                .decode(b64)
                .map_err(|_| NoteError::Malformed(format!("bad signature line {line:?}")))?;
            if raw.len() < 4 {
                return Err(NoteError::Malformed(format!("bad signature line {line:?}")));
            }
            let id = u32::from_be_bytes([raw[0], raw[1], raw[2], raw[3]]);
            if name != self.name || id != self.key_id() {
                continue;
            }
            found = true;
            let sig = ed25519_dalek::Signature::from_slice(&raw[4..])
                .map_err(|_| NoteError::BadSignature(self.to_key_string()))?;
            self.key
                .verify_strict(text.as_bytes(), &sig)
                .map_err(|_| NoteError::BadSignature(self.to_key_string()))?;
        }
        if !found {
            return Err(NoteError::UnknownSigner {
                name: self.name.clone(),
                key_id: self.key_id(),
            });
        }
        Ok(text)
    }
}

/// A note body must be non-empty UTF-8, end in a newline and hold no control
/// characters but newlines (C2SP signed-note).
fn check_text(text: &str) -> Result<(), NoteError> {
    if text.is_empty() || !text.ends_with('\n') {
        return Err(NoteError::Malformed("text must end in a newline".into()));
    }
    if text.chars().any(|c| c.is_control() && c != '\n') {
        return Err(NoteError::Malformed(
            "text holds a control character".into(),
        ));
    }
    Ok(())
}

/// Splits a signed note at its last blank line into (text, signature lines).
pub(crate) fn split_note(note: &str) -> Result<(&str, &str), NoteError> {
    let at = note
        .rfind("\n\n")
        .ok_or_else(|| NoteError::Malformed("no blank line before the signatures".into()))?;
    let (text, sigs) = (&note[..=at], &note[at + 2..]);
    check_text(text)?;
    if sigs.is_empty() || !sigs.ends_with('\n') {
        return Err(NoteError::Malformed(
            "signature block must end in a newline".into(),
        ));
    }
    Ok((text, sigs))
}
