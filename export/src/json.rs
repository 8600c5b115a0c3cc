//! A canonical JSON writer: object keys sorted by byte order, no whitespace.
//!
//! Every JSON output of this crate goes through [`write()`], never through
//! `serde_json::to_string`, so the bytes do not depend on whether some other crate in
//! the build turned on serde_json's `preserve_order` feature (which would make
//! `serde_json::Map` keep insertion order instead of sorting). Same value, same bytes.
//!
//! With `ascii` set, every non-ASCII character is written as a `\uXXXX` escape
//! (a surrogate pair above U+FFFF), so the output is 7-bit clean; the syslog format
//! uses that so its MSG needs no BOM (see [`crate::syslog`]).

use serde::Deserialize as _;
use serde_json::Value;

/// Serializes `value` canonically. `ascii` escapes every non-ASCII character.
pub fn to_string(value: &Value, ascii: bool) -> String {
    let mut out = String::new();
    write(&mut out, value, ascii);
    out
}

/// Appends the canonical serialization of `value` to `out`.
pub fn write(out: &mut String, value: &Value, ascii: bool) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        // serde_json prints integers exactly and finite floats in shortest round-trip
        // form; both are deterministic. `Display` is what its `to_string` uses.
        Value::Number(n) => {
            use std::fmt::Write as _;
            let _ = write!(out, "{n}");
        }
        Value::String(s) => write_str(out, s, ascii),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write(out, item, ascii);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            // serde_json's default map iterates in key order already; sort only when
            // it does not (its `preserve_order` feature keeps insertion order).
            let sorted = map.keys().zip(map.keys().skip(1)).all(|(a, b)| a < b);
            if sorted {
                for (i, (key, v)) in map.iter().enumerate() {
                    write_member(out, i, key, v, ascii);
                }
            } else {
                let mut members: Vec<(&String, &Value)> = map.iter().collect();
                members.sort_by(|a, b| a.0.cmp(b.0));
                for (i, (key, v)) in members.into_iter().enumerate() {
                    write_member(out, i, key, v, ascii);
                }
            }
            out.push('}');
        }
    }
}

fn write_member(out: &mut String, i: usize, key: &str, value: &Value, ascii: bool) {
    if i > 0 {
        out.push(',');
    }
    write_str(out, key, ascii);
    out.push(':');
    write(out, value, ascii);
}

/// Parses JSON this crate wrote (valid, canonical) back into a [`Value`], without
/// serde_json's nesting limit: a record's body may be nested as deep as serde_json
/// accepted it, and a format puts it a few levels deeper.
pub fn parse(s: &str) -> Value {
    let mut de = serde_json::Deserializer::from_str(s);
    de.disable_recursion_limit();
    Value::deserialize(&mut de).unwrap_or(Value::Null)
}

/// A byte class as a lookup table: the bytes `from..to`, and those in `listed`.
pub(crate) const fn byte_table(from: usize, to: usize, listed: &[u8]) -> [bool; 256] {
    let mut t = [false; 256];
    let mut b = from;
    while b < to {
        t[b] = true;
        b += 1;
    }
    let mut k = 0;
    while k < listed.len() {
        t[listed[k] as usize] = true;
        k += 1;
    }
    t
}

/// Bytes a JSON string literal cannot hold as they are: controls, `"`, `\` and DEL.
const ESCAPE: [bool; 256] = byte_table(0, 0x20, b"\"\\\x7f");

/// Appends `s` as a JSON string literal (RFC 8259 §7).
pub fn write_str(out: &mut String, s: &str, ascii: bool) {
    out.push('"');
    write_str_content(out, s, ascii);
    out.push('"');
}

/// Appends the escaped content of the JSON string literal of `s`, without the
/// quotes. Escaping works character by character, so the content of a
/// concatenation is the concatenation of the contents. Runs of bytes that need no
/// escape are copied whole (the common case: ids, names, hashes).
pub fn write_str_content(out: &mut String, s: &str, ascii: bool) {
    let bytes = s.as_bytes();
    let mut run = 0;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if !ESCAPE[b as usize] && (b < 0x80 || !ascii) {
            i += 1;
            continue;
        }
        // `i` is a char boundary: it is an ASCII byte or, in ascii mode, the first
        // byte of a multi-byte character (continuation bytes are skipped below).
        out.push_str(&s[run..i]);
        let c = s[i..].chars().next().unwrap_or('\u{fffd}');
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => push_u16_escape(out, c as u32 as u16),
            c => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    push_u16_escape(out, *unit);
                }
            }
        }
        i += c.len_utf8();
        run = i;
    }
    out.push_str(&s[run..]);
}

fn push_u16_escape(out: &mut String, unit: u16) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push_str("\\u");
    for shift in [12, 8, 4, 0] {
        out.push(HEX[((unit >> shift) & 0xf) as usize] as char);
    }
}

/// Appends `n` in decimal.
pub fn write_u64(out: &mut String, mut n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    push_ascii(out, &buf[i..]);
}

/// Appends `ascii` (digits, hex, separators: never anything else) with one copy
/// instead of a push per byte.
pub(crate) fn push_ascii(out: &mut String, ascii: &[u8]) {
    debug_assert!(ascii.is_ascii());
    out.push_str(std::str::from_utf8(ascii).unwrap_or_default());
}

/// Appends `bytes` as lowercase hex digits.
pub fn write_hex(out: &mut String, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    // A digest at a time through a stack buffer: one copy into `out`, not a push
    // per digit.
    let mut buf = [0u8; 64];
    for part in bytes.chunks(32) {
        for (pair, b) in buf.chunks_exact_mut(2).zip(part) {
            pair[0] = HEX[(b >> 4) as usize];
            pair[1] = HEX[(b & 0xf) as usize];
        }
        push_ascii(out, &buf[..part.len() * 2]);
    }
}

/// Writes one JSON object straight into a string, without building a
/// [`Value`]: the formats use it to render a record in one pass.
///
/// The members come out in the order they are written, so the caller writes them
/// in byte order of their keys, as [`write()`] sorts them: `tests/canonical.rs`
/// checks that every JSON output is canonical (parsing it and writing it again
/// gives the same bytes), and debug builds check the order as it is written.
pub struct Obj<'a> {
    out: &'a mut String,
    ascii: bool,
    last: Option<&'static str>,
}

impl<'a> Obj<'a> {
    /// Opens an object at the end of `out`.
    pub fn open(out: &'a mut String, ascii: bool) -> Obj<'a> {
        out.push('{');
        Obj {
            out,
            ascii,
            last: None,
        }
    }

    /// Whether non-ASCII characters are escaped.
    pub fn ascii(&self) -> bool {
        self.ascii
    }

    /// Starts the member `key` (a plain key, no character to escape, greater than
    /// the previous one) and returns the output, where its value goes next.
    pub fn key(&mut self, key: &'static str) -> &mut String {
        debug_assert!(
            self.last.is_none_or(|last| last < key),
            "JSON keys out of order: {:?} then {key:?}",
            self.last
        );
        debug_assert!(!key.bytes().any(|b| ESCAPE[b as usize] || b >= 0x80));
        self.out.reserve(key.len() + 4);
        if self.last.is_some() {
            self.out.push_str(",\"");
        } else {
            self.out.push('"');
        }
        self.last = Some(key);
        self.out.push_str(key);
        self.out.push_str("\":");
        self.out
    }

    /// A string member.
    pub fn str(&mut self, key: &'static str, value: &str) {
        let ascii = self.ascii;
        write_str(self.key(key), value, ascii);
    }

    /// A string member made of `parts`, concatenated.
    pub fn str_parts(&mut self, key: &'static str, parts: &[&str]) {
        let ascii = self.ascii;
        let out = self.key(key);
        out.push('"');
        for part in parts {
            write_str_content(out, part, ascii);
        }
        out.push('"');
    }

    /// A string member, or `null`.
    pub fn opt_str(&mut self, key: &'static str, value: Option<&str>) {
        match value {
            Some(v) => self.str(key, v),
            None => self.key(key).push_str("null"),
        }
    }

    /// A member holding the lowercase hex of `bytes`, as a string.
    pub fn hex(&mut self, key: &'static str, bytes: &[u8]) {
        let out = self.key(key);
        out.push('"');
        write_hex(out, bytes);
        out.push('"');
    }

    /// An integer member.
    pub fn u64(&mut self, key: &'static str, value: u64) {
        write_u64(self.key(key), value);
    }

    /// A boolean member.
    pub fn bool(&mut self, key: &'static str, value: bool) {
        self.key(key).push_str(if value { "true" } else { "false" });
    }

    /// A member holding `value`, canonically.
    pub fn value(&mut self, key: &'static str, value: &Value) {
        let ascii = self.ascii;
        write(self.key(key), value, ascii);
    }

    /// A member holding an array of strings.
    pub fn strs<'s>(&mut self, key: &'static str, items: impl IntoIterator<Item = &'s str>) {
        let ascii = self.ascii;
        let out = self.key(key);
        out.push('[');
        for (i, item) in items.into_iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            write_str(out, item, ascii);
        }
        out.push(']');
    }

    /// A member holding an object, written through the returned [`Obj`]; close it
    /// before writing the next member.
    pub fn obj(&mut self, key: &'static str) -> Obj<'_> {
        let ascii = self.ascii;
        Obj::open(self.key(key), ascii)
    }

    /// A member holding an array of one object, written through the returned
    /// [`Obj`]; close it with [`Obj::close_in_array`].
    pub fn obj_in_array(&mut self, key: &'static str) -> Obj<'_> {
        let ascii = self.ascii;
        let out = self.key(key);
        out.push('[');
        Obj::open(out, ascii)
    }

    /// Closes the object.
    pub fn close(self) {
        self.out.push('}');
    }

    /// Closes an object opened by [`Obj::obj_in_array`], and its array.
    pub fn close_in_array(self) {
        self.out.push_str("}]");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sorts_keys_and_escapes() {
        let v = json!({"b": 1, "a": [true, null, "x\"\\\n\u{1}é😀"], "c": {"z": 1.5, "y": -2}});
        assert_eq!(
            to_string(&v, false),
            "{\"a\":[true,null,\"x\\\"\\\\\\n\\u0001é😀\"],\"b\":1,\"c\":{\"y\":-2,\"z\":1.5}}"
        );
        let ascii = to_string(&v, true);
        assert!(ascii.is_ascii());
        assert!(ascii.contains("\\u00e9\\ud83d\\ude00"));
        let back: Value = serde_json::from_str(&ascii).unwrap();
        assert_eq!(back, v);
    }
}
