//! The common case of building a body's [`Json`] tree, without serde.
//!
//! [`tree`] reads the JSON that producers actually send (strings without escapes,
//! non-negative integers, `true`, `false`, `null`, objects and arrays nested not too
//! deeply, no duplicate keys) straight into the tree, without serde_json's
//! deserializer and a visitor (strict decoding of a body went from 1.02–1.06 to
//! 0.86–0.89 µs with it, `docs/BENCHMARKS.md`). Anything else, well formed
//! or not, makes it give up with `None`, and the caller parses the body again with
//! serde_json, which gives the tree or the exact error message. So the fast path never
//! decides anything on its own: when it answers, serde_json would have given the same
//! tree (checked by the differential property test below); when it cannot, serde_json
//! answers as before.

use std::borrow::Cow;

use serde_json::Number;

use super::{same_key, Json, Obj};

/// Deeper nesting than this is left to serde_json (whose limit, 128, is above it).
const MAX_DEPTH: u32 = 64;

/// Objects with more members than this are left to serde_json, whose duplicate check
/// does not compare every pair.
const MAX_MEMBERS: usize = 64;

/// The tree of `text`, when it is made only of what this parser reads; `None`
/// otherwise (see the module docs).
pub(super) fn tree(text: &str) -> Option<Json<'_>> {
    let mut p = Parser::new(text);
    let mut value = Json::Null;
    p.fill(&mut value, 0)?;
    p.at_end().then_some(value)
}

/// Reads the plain JSON of a text: the tokens of this module's tree, and of the
/// one-pass reader of `direct.rs`.
pub(super) struct Parser<'a> {
    text: &'a str,
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Parser<'a> {
    pub(super) fn new(text: &'a str) -> Self {
        Parser {
            text,
            bytes: text.as_bytes(),
            at: 0,
        }
    }

    /// The next byte, if any, without white space skipped.
    pub(super) fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    /// Whether only white space is left.
    pub(super) fn at_end(&mut self) -> bool {
        self.skip_space();
        self.at == self.bytes.len()
    }

    pub(super) fn skip_space(&mut self) {
        while let Some(b' ' | b'\n' | b'\t' | b'\r') = self.bytes.get(self.at) {
            self.at += 1;
        }
    }

    /// Whether the next byte after white space is `want`, positioned at it (not
    /// consumed). Bodies are mostly written without white space, so the byte in
    /// place is tried first.
    pub(super) fn next_is(&mut self, want: u8) -> bool {
        if self.bytes.get(self.at) == Some(&want) {
            return true;
        }
        self.skip_space();
        self.bytes.get(self.at) == Some(&want)
    }

    /// The next byte after white space, consumed if it is `want`.
    pub(super) fn eat(&mut self, want: u8) -> bool {
        let here = self.next_is(want);
        if here {
            self.at += 1;
        }
        here
    }

    /// Reads the next value into `out`, where it will stay: returning each value
    /// up through the callers copied it several times, with stalls at each copy.
    fn fill(&mut self, out: &mut Json<'a>, depth: u32) -> Option<()> {
        self.skip_space();
        *out = match *self.bytes.get(self.at)? {
            b'{' if depth < MAX_DEPTH => Json::Obj(self.object(depth + 1)?),
            b'[' if depth < MAX_DEPTH => self.array(depth + 1)?,
            b'"' => Json::Str(Cow::Borrowed(self.string()?)),
            b'0'..=b'9' => Json::Num(Number::from(self.integer()?)),
            b't' => self.literal(b"true", Json::Bool(true))?,
            b'f' => self.literal(b"false", Json::Bool(false))?,
            b'n' => self.literal(b"null", Json::Null)?,
            _ => return None,
        };
        Some(())
    }

    fn literal(&mut self, word: &[u8], value: Json<'a>) -> Option<Json<'a>> {
        self.word(word).then_some(value)
    }

    /// Whether `word` comes next, consumed if so.
    pub(super) fn word(&mut self, word: &[u8]) -> bool {
        let end = self.at + word.len();
        let here = self.bytes.get(self.at..end) == Some(word);
        if here {
            self.at = end;
        }
        here
    }

    /// A non-negative integer that fits in a `u64`, without fraction or exponent.
    pub(super) fn integer(&mut self) -> Option<u64> {
        let start = self.at;
        let mut n: u64 = 0;
        while let Some(&d @ b'0'..=b'9') = self.bytes.get(self.at) {
            n = n.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
            self.at += 1;
        }
        // A leading zero is an error; a fraction or an exponent makes a float.
        let leading_zero = self.bytes[start] == b'0' && self.at - start > 1;
        let float = matches!(self.bytes.get(self.at), Some(b'.' | b'e' | b'E'));
        (!leading_zero && !float).then_some(n)
    }

    /// A string without escapes or control characters, borrowed; at its opening quote.
    pub(super) fn string(&mut self) -> Option<&'a str> {
        let start = self.at + 1;
        let end = start + special_at(&self.bytes[start..])?;
        (self.bytes[end] == b'"').then(|| {
            self.at = end + 1;
            // Both ends are ASCII quotes, so they are character boundaries.
            &self.text[start..end]
        })
    }

    fn array(&mut self, depth: u32) -> Option<Json<'a>> {
        self.at += 1;
        let mut items = Vec::new();
        if self.eat(b']') {
            return Some(Json::Arr(items));
        }
        loop {
            items.push(Json::Null);
            let last = items.last_mut()?;
            self.fill(last, depth)?;
            if self.eat(b']') {
                return Some(Json::Arr(items));
            }
            if !self.eat(b',') {
                return None;
            }
        }
    }

    fn object(&mut self, depth: u32) -> Option<Obj<'a>> {
        self.at += 1;
        // Room up front for the body's own members only: a nested object is usually
        // small, and a body of many empty objects must not cost 12 slots each.
        let room = if depth == 1 { 12 } else { 0 };
        let mut members: Vec<(Cow<'a, str>, Json<'a>)> = Vec::with_capacity(room);
        if self.eat(b'}') {
            return Some(Obj(members));
        }
        loop {
            if !self.next_is(b'"') || members.len() == MAX_MEMBERS {
                return None;
            }
            let key = self.string()?;
            if members.iter().any(|(k, _)| same_key(k, key)) || !self.eat(b':') {
                return None;
            }
            members.push((Cow::Borrowed(key), Json::Null));
            let (_, last) = members.last_mut()?;
            self.fill(last, depth)?;
            if self.eat(b'}') {
                return Some(Obj(members));
            }
            if !self.eat(b',') {
                return None;
            }
        }
    }
}

/// Where the first quote, backslash or control character of `bytes` is, looking
/// at eight bytes at a time: in each word, the lowest byte flagged by these
/// classic tests is always a true match (a false one can only follow a true one).
fn special_at(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    let mut i = 0;
    while let Some(word) = bytes
        .get(i..i + 8)
        .and_then(|w| <[u8; 8]>::try_from(w).ok())
    {
        let v = u64::from_le_bytes(word);
        let below_space = v.wrapping_sub(ONES * 0x20) & !v & HIGH;
        let m =
            zero(v ^ (ONES * u64::from(b'"'))) | zero(v ^ (ONES * u64::from(b'\\'))) | below_space;
        if m != 0 {
            return Some(i + (m.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    let rest = bytes[i..]
        .iter()
        .position(|&b| b == b'"' || b == b'\\' || b < 0x20)?;
    Some(i + rest)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use proptest::prelude::*;

    /// serde_json's answer, as `decode_body` got it before the fast path.
    fn slow(text: &str) -> Option<Json<'_>> {
        serde_json::from_str(text).ok()
    }

    /// A JSON value of the kind the fast path reads, written with random white space.
    fn document() -> impl Strategy<Value = String> {
        let space = prop::sample::select(vec!["", " ", "\n", "\t", "\r\n  "]);
        let key = "[a-z_]{0,6}";
        let leaf = prop_oneof![
            Just("null".to_owned()),
            Just("true".to_owned()),
            Just("false".to_owned()),
            any::<u64>().prop_map(|n| n.to_string()),
            (0u64..100).prop_map(|n| n.to_string()),
            "[a-zA-Z0-9 ./:é€-]{0,12}".prop_map(|s| format!("\"{s}\"")),
        ];
        leaf.prop_recursive(5, 48, 6, move |inner| {
            let space = space.clone();
            prop_oneof![
                prop::collection::vec((inner.clone(), space.clone()), 0..6).prop_map(|items| {
                    let items: Vec<String> = items
                        .into_iter()
                        .map(|(v, s)| format!("{s}{v}{s}"))
                        .collect();
                    format!("[{}]", items.join(","))
                }),
                prop::collection::btree_map(key, (inner, space), 0..6).prop_map(|members| {
                    let members: Vec<String> = members
                        .into_iter()
                        .map(|(k, (v, s))| format!("{s}\"{k}\"{s}:{s}{v}{s}"))
                        .collect();
                    format!("{{{}}}", members.join(","))
                }),
            ]
        })
    }

    /// Bytes that change the meaning or the validity of a document.
    fn mutation() -> impl Strategy<Value = (prop::sample::Index, u8, u8)> {
        let bytes = prop::sample::select(
            b"\"\\,:{}[]0123456789-+.eE tfnrul\x00\x01\x7f\n\t\r\x0b\x0c".to_vec(),
        );
        (any::<prop::sample::Index>(), bytes, 0u8..4)
    }

    pub(in crate::decode) fn mutate(
        doc: &str,
        (at, byte, how): (prop::sample::Index, u8, u8),
    ) -> Option<String> {
        let mut bytes = doc.as_bytes().to_vec();
        let i = at.index(bytes.len() + 1);
        match how {
            0 if i < bytes.len() => bytes[i] = byte,
            1 => bytes.insert(i, byte),
            2 if i < bytes.len() => {
                bytes.remove(i);
            }
            _ => bytes.truncate(i),
        }
        String::from_utf8(bytes).ok()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// On the documents it is built for, the fast path answers, with serde's tree.
        #[test]
        fn reads_plain_documents_as_serde_json_does(doc in document()) {
            let fast = tree(&doc);
            prop_assert!(fast.is_some(), "fast path gave up on {doc:?}");
            prop_assert_eq!(fast, slow(&doc));
        }

        /// On anything else, it answers only where serde_json gives the same tree.
        #[test]
        fn never_answers_where_serde_json_would_not(
            doc in document(),
            edits in prop::collection::vec(mutation(), 1..4),
        ) {
            let mut doc = doc;
            for edit in edits {
                match mutate(&doc, edit) {
                    Some(next) => doc = next,
                    None => break,
                }
            }
            if let Some(fast) = tree(&doc) {
                prop_assert_eq!(Some(fast), slow(&doc), "on {:?}", doc);
            }
        }
    }

    #[test]
    fn finds_the_first_special_byte_as_a_byte_loop_does() {
        let specials = [b'"', b'\\', 0x00, 0x1f, 0x01];
        let fillers = [b'a', b' ', 0x7f, 0x80, 0xff, b'!', b'#', b'[', b']'];
        for len in 0..24 {
            for at in 0..=len {
                for &f in &fillers {
                    for &sp in &specials {
                        let mut bytes = vec![f; len];
                        if at < len {
                            bytes[at] = sp;
                            // A second one later never hides the first.
                            if at + 3 < len {
                                bytes[at + 3] = b'"';
                            }
                        }
                        let want = bytes
                            .iter()
                            .position(|&b| b == b'"' || b == b'\\' || b < 0x20);
                        assert_eq!(special_at(&bytes), want, "{bytes:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn leaves_the_rest_to_serde_json() {
        for text in [
            r#"{"a":"x\"y"}"#,
            r#"{"a":-1}"#,
            r#"{"a":1.5}"#,
            r#"{"a":1e3}"#,
            r#"{"a":01}"#,
            r#"{"a":18446744073709551616}"#,
            r#"{"a":1,"a":2}"#,
            r#"{"a":1,}"#,
            r#"[1,]"#,
            "{\"a\":\"\u{1}\"}",
            r#"{"a":1} x"#,
            r#"{"a":tru}"#,
            "",
        ] {
            assert_eq!(tree(text), None, "{text:?}");
        }
        let deep = "[".repeat(65) + &"]".repeat(65);
        assert_eq!(tree(&deep), None);
        let shallow = "[".repeat(64) + &"]".repeat(64);
        assert!(tree(&shallow).is_some());
        let wide: Vec<String> = (0..65).map(|i| format!("\"k{i}\":{i}")).collect();
        assert_eq!(tree(&format!("{{{}}}", wide.join(","))), None);
    }

    #[test]
    fn reads_every_kind_of_value() {
        let text = " {\"s\":\"é x\", \"n\":18446744073709551615,\"z\":0, \"t\":true,\"f\":false,\
                    \"0\":null,\"a\":[ ],\"o\":{},\"\":[{\"k\":[1,2]}]}\n";
        let fast = tree(text);
        assert!(fast.is_some());
        assert_eq!(fast, slow(text));
    }
}
