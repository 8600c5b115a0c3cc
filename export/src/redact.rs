//! Redaction: secrets never reach a sink.
//!
//! [`Redactor::redact_record`] runs once per record, before any format sees it, so
//! every format gets the same redacted content. It scans every string of the record:
//! the subject, key id, event id, event type, tenant, reject detail, and every string
//! of the body, recursively, object keys included. A secret is replaced by
//! `[REDACTED:<kind>]`; the kinds are fixed lowercase names:
//!
//! | kind | what |
//! |---|---|
//! | `private_key` | a PEM `-----BEGIN … PRIVATE KEY-----` block up to its `END` line (or to the end of the string when the END line is missing); the value of a body field named `private_key` |
//! | `url_password` | the password of `scheme://user:PASSWORD@host`; scheme, user and host are kept |
//! | `bearer` | the token after `Bearer ` (any case); the word `Bearer` is kept |
//! | `jwt` | three base64url segments, the first starting `eyJ` |
//! | `api_key` | known key shapes (`sk-…`, `sk-proj-…`, `sk-ant-…`, Stripe `sk_live_…`/`rk_test_…`, AWS `AKIA…`/`ASIA…`, GitHub `ghp_…`/`gho_…`/`ghu_…`/`ghs_…`/`ghr_…`/`github_pat_…`, Slack `xox[abprs]-…`, Google `AIza…`, GitLab `glpat-…`); the value of `api_key=`, `apikey:`, `"x-api-key": "…"`, `access_token`, `auth_token`, `refresh_token`, `client_secret`, `secret_key`, `aws_secret_access_key` assignments; and the value of a body field with such a name |
//! | `password` | the value of `password=`/`passwd=`/`pwd=`/`passphrase=` (or `:`) assignments up to `;`, a quote or the end of line (connection strings); `Authorization: Basic …` credentials; the value of a body field named `password`, `passwd`, `pwd` or `passphrase` |
//! | `oversized` | a whole string longer than [`RedactionConfig::max_scan_bytes`] (default [`DEFAULT_MAX_SCAN_BYTES`]), which is not scanned; also a string that its markers make longer than that |
//! | configured | each [`ExtraPattern`]: its whole match, or its `secret` capture group when it has one |
//!
//! Rules of the algorithm (they make it total, deterministic and idempotent):
//!
//! - all rules are matched against the same text; overlapping matches are merged into
//!   one redacted span, labelled with the kind of the leftmost (then longest, then
//!   first-listed) match, so no part of any match survives;
//! - text that already is a marker is never rewritten: a match overlapping a marker
//!   redacts only the parts outside it;
//! - the passes repeat until nothing changes, so `redact(redact(x)) == redact(x)`.
//!
//! Matching uses the `regex` crate, whose automata run in time linear in the input
//! whatever the pattern: a hostile body or a careless operator pattern cannot stall
//! the export (no backtracking blow-up).
//!
//! Not redacted on purpose: hex digests, ids, and base64 Ed25519 public keys (the
//! `public_key`/`new_public_key` of key events), which are public by design.
//!
//! After redaction the record's body no longer hashes to the entry's leaf: a SIEM
//! checks `seq` + `leaf_hash` against the ledger (inclusion proof, signed checkpoint),
//! never the redacted text; [`crate::Record::redactions`] says which kinds were applied.

use std::borrow::Cow;
use std::collections::BTreeSet;

use regex::Regex;
use serde_json::{Map, Value};

use crate::record::{Record, RecordVerdict};

/// Strings longer than this many bytes are redacted whole as `oversized` by default.
pub const DEFAULT_MAX_SCAN_BYTES: usize = 64 * 1024;

/// The built-in kinds, which configured patterns may not reuse.
pub const BUILTIN_KINDS: &[&str] = &[
    "api_key",
    "bearer",
    "jwt",
    "oversized",
    "password",
    "private_key",
    "url_password",
];

/// The marker that replaces a secret of `kind`: `[REDACTED:<kind>]`.
pub fn marker(kind: &str) -> String {
    format!("[REDACTED:{kind}]")
}

/// An operator-supplied secret pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExtraPattern {
    /// The kind written in the marker: `[a-z][a-z0-9_]{0,31}`, not a built-in kind.
    pub name: String,
    /// A `regex` crate pattern. With a capture group named `secret`, only that group
    /// is redacted; otherwise the whole match.
    pub regex: String,
}

/// Redaction settings. The default is the built-in rules with a 64 KiB scan limit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RedactionConfig {
    /// Strings longer than this (in bytes) are replaced whole by `[REDACTED:oversized]`.
    pub max_scan_bytes: usize,
    /// Extra patterns, applied after the built-in ones.
    pub extra_patterns: Vec<ExtraPattern>,
}

impl Default for RedactionConfig {
    fn default() -> Self {
        RedactionConfig {
            max_scan_bytes: DEFAULT_MAX_SCAN_BYTES,
            extra_patterns: Vec::new(),
        }
    }
}

/// A redaction configuration cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RedactError {
    /// A pattern name is not `[a-z][a-z0-9_]{0,31}`.
    #[error("redaction pattern name {0:?} is invalid: use 1 to 32 characters of [a-z0-9_], starting with a letter")]
    InvalidName(String),
    /// A pattern name is a built-in kind.
    #[error("redaction pattern name {0:?} is a built-in kind; choose another name")]
    ReservedName(String),
    /// Two patterns have the same name.
    #[error("redaction pattern name {0:?} is used twice")]
    DuplicateName(String),
    /// A pattern does not compile.
    #[error("redaction pattern {name:?} does not compile: {source}")]
    InvalidRegex {
        /// The pattern's name.
        name: String,
        /// The compiler's complaint.
        #[source]
        source: regex::Error,
    },
}

#[derive(Clone)]
struct Rule {
    kind: String,
    re: Regex,
    /// The capture group holding the secret; 0 = the whole match.
    group: usize,
}

/// Applies the redaction rules. Build once, use for every record; cheap to share.
/// A clone shares the compiled rules but has its own matching scratch space, so
/// threads that each use their own clone never wait on one another.
#[derive(Clone)]
pub struct Redactor {
    max_scan_bytes: usize,
    rules: Vec<Rule>,
    /// Every rule's pattern in one set: one pass tells whether any rule matches a
    /// string at all (most strings: ids, names, hashes). Only then do the rules run
    /// one by one with their capture groups.
    any_rule: regex::RegexSet,
    /// Only the built-in rules are in use, so [`may_hold_builtin_secret`] can
    /// rule strings out before the set runs.
    builtin_only: bool,
    marker_re: Regex,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redactor")
            .field("max_scan_bytes", &self.max_scan_bytes)
            .field(
                "kinds",
                &self
                    .rules
                    .iter()
                    .map(|r| r.kind.as_str())
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// Whether `s` contains what every match of every built-in rule contains: `:` or
/// `=` (URL passwords and every `name: value` / `name=value` rule), or the literal
/// start of a key shape (`sk-`, `AKIA`, `ghp_`, ...), of a PEM block
/// (`-----BEGIN`), of a JWT (`eyJ`) or of a bearer token (`bearer`, any ASCII
/// case), or any non-ASCII character (so that case folding beyond ASCII need not be
/// reasoned about). When it returns false no built-in rule matches `s`; it is one
/// pass over the bytes, much cheaper than the rule set, and most strings (ids,
/// names, digests) fail it. Each literal is copied from the rule it stands for,
/// with the same case sensitivity; a property test checks, on random strings built
/// from pieces of secrets, that nothing a rule matches slips past it.
fn may_hold_builtin_secret(s: &str) -> bool {
    let b = s.as_bytes();
    let mut from = 0;
    // Skip to the next byte a literal can start with (most bytes cannot), then
    // look closer.
    while let Some(at) = b[from..].iter().position(|&c| PRECHECK_START[c as usize]) {
        let i = from + at;
        if may_start_secret(&b[i..]) {
            return true;
        }
        from = i + 1;
    }
    false
}

/// The bytes at which [`may_start_secret`] can return true: every non-ASCII byte
/// and the first bytes of the literals.
const PRECHECK_START: [bool; 256] = crate::json::byte_table(0x80, 256, b":=-bBesrAgx");

/// Whether a built-in rule's literal (or a byte every rule needs) starts `rest`,
/// which is not empty.
fn may_start_secret(rest: &[u8]) -> bool {
    let at = |k: usize| rest.get(k).copied().unwrap_or(0);
    match at(0) {
        b':' | b'=' => true,
        0x80..=0xff => true,
        b'-' => rest.starts_with(b"-----BEGIN"),
        b'b' | b'B' => rest.len() >= 6 && rest[..6].eq_ignore_ascii_case(b"bearer"),
        b'e' => rest.starts_with(b"eyJ"),
        b's' | b'r' => {
            rest.starts_with(b"sk-")
                || (at(1) == b'k'
                    && (rest[2..].starts_with(b"_live_") || rest[2..].starts_with(b"_test_")))
        }
        b'A' => [&b"AKIA"[..], b"ASIA", b"ABIA", b"ACCA", b"AIza"]
            .iter()
            .any(|p| rest.starts_with(p)),
        b'g' => {
            (at(1) == b'h' && matches!(at(2), b'p' | b'o' | b'u' | b's' | b'r') && at(3) == b'_')
                || rest.starts_with(b"github_pat_")
                || rest.starts_with(b"glpat-")
        }
        b'x' => {
            rest.starts_with(b"xox")
                && matches!(at(3), b'a' | b'b' | b'p' | b'r' | b's')
                && at(4) == b'-'
        }
        _ => false,
    }
}

/// The built-in rules, in priority order: (kind, pattern, secret group).
const BUILTIN_RULES: &[(&str, &str, usize)] = &[
    (
        "private_key",
        r"-----BEGIN[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----(?s:.*?)(?:-----END[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----|\z)",
        0,
    ),
    (
        "url_password",
        r#"(?i)\b[a-z][a-z0-9+.\-]*://[^\s:/?#@\[\]"'<>]+:([^\s/?#"'<>]+)@"#,
        1,
    ),
    ("bearer", r"(?i)\bbearer\s+([A-Za-z0-9\-._~+/]+=*)", 1),
    (
        "jwt",
        r"\beyJ[A-Za-z0-9_\-]{2,}\.[A-Za-z0-9_\-]{2,}\.[A-Za-z0-9_\-]*",
        0,
    ),
    (
        "api_key",
        concat!(
            r"\bsk-[A-Za-z0-9_\-]{20,}",
            r"|\b[rs]k_(?:live|test)_[A-Za-z0-9]{16,}",
            r"|\b(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}\b",
            r"|\bgh[pousr]_[A-Za-z0-9]{36,}",
            r"|\bgithub_pat_[A-Za-z0-9_]{22,}",
            r"|\bxox[abprs]-[A-Za-z0-9\-]{10,}",
            r"|\bAIza[0-9A-Za-z_\-]{35}",
            r"|\bglpat-[A-Za-z0-9_\-]{20,}",
        ),
        0,
    ),
    (
        "api_key",
        r#"(?i)(?:(?:x[-_])?api[-_]?key|access[-_]?token|auth[-_]?token|refresh[-_]?token|client[-_]?secret|(?:aws[-_]?)?secret[-_]?(?:access[-_]?)?key)["']?\s*[:=]\s*["']?([^\s"'&;,]+)"#,
        1,
    ),
    (
        "password",
        r#"(?i)authorization["']?\s*[:=]\s*["']?basic\s+([A-Za-z0-9+/]+=*)"#,
        1,
    ),
    (
        "password",
        r#"(?i)(?:password|passwd|pwd|passphrase)["']?\s*[:=]\s*["']?([^;"'\r\n]+)"#,
        1,
    ),
];

/// The kind of a body field whose value is a secret by its name alone, if any. The
/// name is compared case-insensitively with `-` and `_` removed.
fn sensitive_field_kind(name: &str) -> Option<&'static str> {
    // Every name below is ASCII and at most 18 bytes long: a name with another
    // character, or longer once normalized, is none of them.
    let mut buf = [0u8; 24];
    let mut len = 0;
    for b in name.bytes().filter(|b| *b != b'-' && *b != b'_') {
        if !b.is_ascii() || len == buf.len() {
            return None;
        }
        buf[len] = b.to_ascii_lowercase();
        len += 1;
    }
    match &buf[..len] {
        b"password" | b"passwd" | b"pwd" | b"passphrase" => Some("password"),
        b"apikey"
        | b"xapikey"
        | b"accesstoken"
        | b"authtoken"
        | b"refreshtoken"
        | b"token"
        | b"secret"
        | b"clientsecret"
        | b"secretkey"
        | b"secretaccesskey"
        | b"awssecretaccesskey"
        | b"authorization" => Some("api_key"),
        b"privatekey" => Some("private_key"),
        _ => None,
    }
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some('a'..='z'))
        && name.len() <= 32
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

impl Redactor {
    /// Compiles the built-in rules and `config`'s extra patterns.
    pub fn new(config: &RedactionConfig) -> Result<Redactor, RedactError> {
        let mut rules = Vec::new();
        for (kind, pattern, group) in BUILTIN_RULES {
            // The built-in patterns are constants covered by tests; a failure here
            // would be a bug, reported as an error rather than a panic all the same.
            let re = Regex::new(pattern).map_err(|source| RedactError::InvalidRegex {
                name: (*kind).to_owned(),
                source,
            })?;
            rules.push(Rule {
                kind: (*kind).to_owned(),
                re,
                group: *group,
            });
        }
        let mut seen = BTreeSet::new();
        for extra in &config.extra_patterns {
            if !valid_name(&extra.name) {
                return Err(RedactError::InvalidName(extra.name.clone()));
            }
            if BUILTIN_KINDS.contains(&extra.name.as_str()) {
                return Err(RedactError::ReservedName(extra.name.clone()));
            }
            if !seen.insert(extra.name.clone()) {
                return Err(RedactError::DuplicateName(extra.name.clone()));
            }
            let re = Regex::new(&extra.regex).map_err(|source| RedactError::InvalidRegex {
                name: extra.name.clone(),
                source,
            })?;
            let group = re
                .capture_names()
                .position(|n| n == Some("secret"))
                .unwrap_or(0);
            rules.push(Rule {
                kind: extra.name.clone(),
                re,
                group,
            });
        }
        let marker_re =
            Regex::new(r"\[REDACTED:[a-z0-9_]+\]").map_err(|source| RedactError::InvalidRegex {
                name: "marker".to_owned(),
                source,
            })?;
        let any_rule =
            regex::RegexSet::new(rules.iter().map(|r| r.re.as_str())).map_err(|source| {
                RedactError::InvalidRegex {
                    name: "rule set".to_owned(),
                    source,
                }
            })?;
        Ok(Redactor {
            max_scan_bytes: config.max_scan_bytes,
            rules,
            any_rule,
            builtin_only: config.extra_patterns.is_empty(),
            marker_re,
        })
    }

    /// The built-in rules with the default scan limit.
    pub fn with_defaults() -> Result<Redactor, RedactError> {
        Redactor::new(&RedactionConfig::default())
    }

    /// Redacts one string; returns the result and adds the kinds applied to `kinds`.
    pub fn redact_str(&self, s: &str, kinds: &mut BTreeSet<String>) -> String {
        self.redact_cow(s, kinds).into_owned()
    }

    /// [`Redactor::redact_str`], borrowing `s` when no rule matches it (most
    /// strings), so that nothing is allocated for them.
    fn redact_cow<'s>(&self, s: &'s str, kinds: &mut BTreeSet<String>) -> Cow<'s, str> {
        if s.len() > self.max_scan_bytes {
            let m = marker("oversized");
            if s != m {
                kinds.insert("oversized".to_owned());
            }
            return Cow::Owned(m);
        }
        if !self.may_match_any(s) {
            return Cow::Borrowed(s);
        }
        let mut current = s.to_owned();
        let mut local = BTreeSet::new();
        // Each changing pass turns at least one byte of non-marker text into a
        // marker and never touches markers, so this terminates.
        while let Some(next) = self.pass(&current, &mut local) {
            current = next;
        }
        // Markers can make a string longer; one that no longer fits the limit is
        // oversized after all (this keeps redaction idempotent).
        if current.len() > self.max_scan_bytes {
            kinds.insert("oversized".to_owned());
            return Cow::Owned(marker("oversized"));
        }
        kinds.extend(local);
        Cow::Owned(current)
    }

    /// Whether [`Redactor::redact_cow`] returns `s` as it is and adds no kind: `s`
    /// is within the scan limit and no rule matches it.
    fn leaves_alone(&self, s: &str) -> bool {
        s.len() <= self.max_scan_bytes && !self.may_match_any(s)
    }

    /// Whether some rule may match `s`: false only when none does.
    fn may_match_any(&self, s: &str) -> bool {
        if self.builtin_only && !may_hold_builtin_secret(s) {
            return false;
        }
        self.any_rule.is_match(s)
    }

    /// Redacts `s` in place.
    fn redact_in_place(&self, s: &mut String, kinds: &mut BTreeSet<String>) {
        if let Cow::Owned(r) = self.redact_cow(s, kinds) {
            *s = r;
        }
    }

    /// Redacts the member `value` of an object under `key` (the key is not
    /// redacted here).
    fn redact_member(&self, key: &str, v: &mut Value, kinds: &mut BTreeSet<String>) {
        match (sensitive_field_kind(key), &*v) {
            (Some(kind), Value::String(_) | Value::Number(_)) => {
                let already = v
                    .as_str()
                    .is_some_and(|s| self.marker_re.find(s).is_some_and(|f| f.as_str() == s));
                if !already {
                    kinds.insert(kind.to_owned());
                    *v = Value::String(marker(kind));
                }
            }
            _ => self.redact_value(v, kinds),
        }
    }

    /// Redacts one string, discarding which kinds applied.
    pub fn redact_text(&self, s: &str) -> String {
        self.redact_str(s, &mut BTreeSet::new())
    }

    /// One pass of every rule over `s`; `None` when nothing is to be redacted.
    fn pass(&self, s: &str, kinds: &mut BTreeSet<String>) -> Option<String> {
        // Candidate spans: (start, end, rule index).
        let mut spans: Vec<(usize, usize, usize)> = Vec::new();
        for (i, rule) in self.rules.iter().enumerate() {
            for caps in rule.re.captures_iter(s) {
                if let Some(m) = caps.get(rule.group) {
                    if m.start() < m.end() {
                        spans.push((m.start(), m.end(), i));
                    }
                }
            }
        }
        if spans.is_empty() {
            return None;
        }
        // Leftmost, then longest, then first-listed rule.
        spans.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)).then(a.2.cmp(&b.2)));
        // Merge overlapping spans; the first of each group names the kind.
        let mut merged: Vec<(usize, usize, usize)> = Vec::new();
        for (start, end, rule) in spans {
            match merged.last_mut() {
                Some(last) if start < last.1 => last.1 = last.1.max(end),
                _ => merged.push((start, end, rule)),
            }
        }
        // Cut out existing markers: only text outside them is replaced.
        let markers: Vec<(usize, usize)> = self
            .marker_re
            .find_iter(s)
            .map(|m| (m.start(), m.end()))
            .collect();
        let mut pieces: Vec<(usize, usize, usize)> = Vec::new();
        for (start, end, rule) in merged {
            let mut pos = start;
            for &(ms, me) in &markers {
                if me <= pos || ms >= end {
                    continue;
                }
                if ms > pos {
                    pieces.push((pos, ms, rule));
                }
                pos = pos.max(me);
            }
            if pos < end {
                pieces.push((pos, end, rule));
            }
        }
        if pieces.is_empty() {
            return None;
        }
        let mut out = String::with_capacity(s.len());
        let mut pos = 0;
        for (start, end, rule) in pieces {
            // Regex match bounds are char boundaries, and so are marker bounds.
            out.push_str(s.get(pos..start).unwrap_or_default());
            let kind = &self.rules[rule].kind;
            out.push_str(&marker(kind));
            kinds.insert(kind.clone());
            pos = end;
        }
        out.push_str(s.get(pos..).unwrap_or_default());
        Some(out)
    }

    /// Redacts a JSON value in place: every string, every object key, and the values
    /// of fields whose names say they hold a secret.
    pub fn redact_value(&self, value: &mut Value, kinds: &mut BTreeSet<String>) {
        match value {
            Value::String(s) => self.redact_in_place(s, kinds),
            Value::Array(items) => {
                for item in items {
                    self.redact_value(item, kinds);
                }
            }
            // No key changes (the common case): the members are redacted where they
            // are, which is what the general case below does without renaming.
            Value::Object(map) if map.keys().all(|k| self.leaves_alone(k)) => {
                for (key, v) in map.iter_mut() {
                    self.redact_member(key, v, kinds);
                }
            }
            Value::Object(map) => {
                let old = std::mem::take(map);
                // Sorted keys: collision suffixes do not depend on map order.
                let mut entries: Vec<(String, Value)> = old.into_iter().collect();
                entries.sort_by(|a, b| a.0.cmp(&b.0));
                let mut new = Map::new();
                for (key, mut v) in entries {
                    self.redact_member(&key, &mut v, kinds);
                    let mut k = self.redact_str(&key, kinds);
                    if new.contains_key(&k) {
                        let mut n = 2u64;
                        while new.contains_key(&format!("{k}#{n}")) {
                            n += 1;
                        }
                        k = format!("{k}#{n}");
                    }
                    new.insert(k, v);
                }
                *map = new;
            }
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
    }

    /// Redacts every string of `record` (see the module docs) and records the kinds
    /// applied in [`Record::redactions`]. Idempotent.
    pub fn redact_record(&self, mut record: Record) -> Record {
        let mut kinds: BTreeSet<String> = record.redactions.iter().cloned().collect();
        self.redact_in_place(&mut record.subject, &mut kinds);
        for field in [
            &mut record.key_id,
            &mut record.event_id,
            &mut record.event_type,
            &mut record.tenant,
        ] {
            if let Some(s) = field.as_mut() {
                self.redact_in_place(s, &mut kinds);
            }
        }
        if let RecordVerdict::Rejected { detail, .. } = &mut record.verdict {
            self.redact_in_place(detail, &mut kinds);
        }
        if let Some(body) = record.body.as_mut() {
            self.redact_value(body, &mut kinds);
        }
        record.redactions = kinds.into_iter().collect();
        record
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Pieces of secrets and of their surroundings, to build strings that come
    /// close to (or hit) every built-in rule.
    const PIECES: &[&str] = &[
        "sk-",
        "sk_live_",
        "rk_test_",
        "AKIA",
        "ASIA",
        "ABIA",
        "ACCA",
        "ghp_",
        "gho_",
        "github_pat_",
        "xoxb-",
        "xoxz-",
        "AIza",
        "glpat-",
        "eyJ",
        "eyJhbGciOi.",
        ".",
        "Bearer ",
        "bEaReR\t",
        "BEARER",
        "://",
        "@",
        ":",
        "=",
        " ",
        "-",
        "_",
        "\"",
        "'",
        "-----BEGIN RSA PRIVATE KEY-----",
        "-----END PRIVATE KEY-----",
        "-----BEGIN",
        "password",
        "PassWord",
        "pwd",
        "api_key",
        "x-api-key",
        "client_secret",
        "authorization",
        "Basic ",
        "postgres",
        "user",
        "host",
        "K",
        "ſ",
        "é",
        "K",
        "0123456789abcdefABCDEF",
        "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo",
        "k",
        "s",
    ];

    fn built() -> impl Strategy<Value = String> {
        prop::collection::vec(
            prop_oneof![
                prop::sample::select(PIECES).prop_map(str::to_owned),
                "[A-Za-z0-9_\\-]{1,40}",
            ],
            0..12,
        )
        .prop_map(|parts| parts.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(20_000))]

        #[test]
        fn the_precheck_passes_everything_a_built_in_rule_matches(s in built()) {
            static R: std::sync::OnceLock<Redactor> = std::sync::OnceLock::new();
            let r = R.get_or_init(|| Redactor::with_defaults().unwrap());
            if r.any_rule.is_match(&s) {
                prop_assert!(may_hold_builtin_secret(&s), "{s:?} matches a rule but not the precheck");
            }
        }
    }

    #[test]
    fn the_precheck_is_off_with_extra_patterns() {
        let config = RedactionConfig {
            extra_patterns: vec![ExtraPattern {
                name: "ticket".into(),
                regex: r"TCK\d+".into(),
            }],
            ..RedactionConfig::default()
        };
        let r = Redactor::new(&config).unwrap();
        assert!(!r.builtin_only);
        assert_eq!(r.redact_text("see TCK123"), "see [REDACTED:ticket]");
    }

    fn r(s: &str) -> String {
        Redactor::with_defaults().unwrap().redact_text(s)
    }

    #[test]
    fn built_in_shapes() {
        assert_eq!(
            r("postgres://app:s3cr3t@db:5432/x"),
            "postgres://app:[REDACTED:url_password]@db:5432/x"
        );
        assert_eq!(
            r("Server=x;User Id=u;Password=p@ss;"),
            "Server=x;User Id=u;Password=[REDACTED:password];"
        );
        assert_eq!(
            r("Authorization: Bearer abc.def"),
            "Authorization: Bearer [REDACTED:bearer]"
        );
        assert_eq!(
            r("key AKIAIOSFODNN7EXAMPLE ok"),
            "key [REDACTED:api_key] ok"
        );
        assert_eq!(
            r("aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
            "aws_secret_access_key=[REDACTED:api_key]"
        );
        assert_eq!(
            r(r#"{"x-api-key": "abc123"}"#),
            r#"{"x-api-key": "[REDACTED:api_key]"}"#
        );
        assert_eq!(r("pwd=hunter2"), "pwd=[REDACTED:password]");
    }

    #[test]
    fn innocent_text_survives() {
        for s in [
            "prop-123",
            "sess-9:abc/def@x",
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "MCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=",
            "GB9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=",
            "payments.refund",
            "https://example.com:8443/path?q=1",
            "risk is high; tokens=1200",
            "the password policy changed",
        ] {
            assert_eq!(r(s), s, "{s}");
        }
    }

    #[test]
    fn overlapping_matches_leave_nothing() {
        let s = "password=eyJhbGciOi.eyJzdWIi.c2ln!tail;rest";
        assert_eq!(r(s), "password=[REDACTED:password];rest");
        let once = r(s);
        assert_eq!(r(&once), once);
    }

    #[test]
    fn extra_patterns_and_errors() {
        let cfg = RedactionConfig {
            max_scan_bytes: 32,
            extra_patterns: vec![ExtraPattern {
                name: "ticket_code".into(),
                regex: r"TCK-(?P<secret>[0-9]{4})".into(),
            }],
        };
        let red = Redactor::new(&cfg).unwrap();
        assert_eq!(red.redact_text("TCK-1234"), "TCK-[REDACTED:ticket_code]");
        assert_eq!(red.redact_text(&"x".repeat(33)), "[REDACTED:oversized]");
        // Markers that push a string past the limit make it oversized.
        assert_eq!(red.redact_text("TCK-1234 TCK-5678"), "[REDACTED:oversized]");
        for (name, regex) in [("Bad", "x"), ("jwt", "x"), ("ok", "(")] {
            let cfg = RedactionConfig {
                extra_patterns: vec![ExtraPattern {
                    name: name.into(),
                    regex: regex.into(),
                }],
                ..RedactionConfig::default()
            };
            assert!(Redactor::new(&cfg).is_err(), "{name}");
        }
    }
}
