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
        // form; both are deterministic.
        Value::Number(n) => out.push_str(&n.to_string()),
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
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_str(out, key, ascii);
                out.push(':');
                if let Some(v) = map.get(key) {
                    write(out, v, ascii);
                }
            }
            out.push('}');
        }
    }
}

/// Appends `s` as a JSON string literal (RFC 8259 §7). Runs of bytes that need no
/// escape are copied whole (the common case: ids, names, hashes).
pub fn write_str(out: &mut String, s: &str, ascii: bool) {
    out.push('"');
    let bytes = s.as_bytes();
    let mut run = 0;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let plain = b != b'"' && b != b'\\' && b >= 0x20 && b != 0x7f && (b < 0x80 || !ascii);
        if plain {
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
    out.push('"');
}

fn push_u16_escape(out: &mut String, unit: u16) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push_str("\\u");
    for shift in [12, 8, 4, 0] {
        out.push(HEX[((unit >> shift) & 0xf) as usize] as char);
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
