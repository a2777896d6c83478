//! A single-pass reader of post-call analysis JSON into [`RawDoc`]: the fast path.
//!
//! It reads exactly the fields of [`crate::raw`] with the same lenient rules: which key goes
//! to which field comes from the same `raw_structs!` table as the serde derive (through
//! [`Object`]), and how each value is read from the field's type ([`crate::raw::Field`]);
//! this module holds the mechanics. It validates everything it skips (strict JSON: string
//! escapes and control characters, number grammar, nesting, trailing characters), and
//! borrows strings from the input. It gives up (`None`) on anything it does not handle
//! exactly like the serde_json path: any syntax error, a duplicate field, a key with escapes,
//! a struct written as an array, deep nesting, numbers that serde_json would read through its
//! overflow paths. [`crate::parse_with`] then parses the same text with serde_json, which is
//! the reference and says why the input is bad.
//!
//! Invariant: when this returns `Some(doc)`, serde_json deserialises the same text into an
//! equal `RawDoc` (checked by the tests below over every fixture, mutations of them, and
//! seeded random edits of them).

use std::borrow::Cow;

use crate::raw::{Items, Num, RawDoc, RawItem, RawOverallSentiment, Str};

/// Nesting at which the fast path gives up (serde_json's own limit is 128).
const MAX_DEPTH: u32 = 100;

/// `Some(doc)`, or `None` when the serde_json path must decide.
pub(crate) fn parse_doc(text: &str) -> Option<RawDoc<'_>> {
    let mut p = Reader {
        s: text,
        b: text.as_bytes(),
        i: 0,
        depth: 0,
    };
    p.ws();
    let doc = p.record::<RawDoc<'_>>()?;
    p.ws();
    (p.i == p.b.len()).then_some(doc)
}

/// Exact powers of ten, the only ones used (so `f64` results match serde_json's bit for bit).
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// The cursor of the fast reader over one text.
pub(crate) struct Reader<'a> {
    s: &'a str,
    b: &'a [u8],
    i: usize,
    depth: u32,
}

/// Marks which fields of one object were seen; a repeat is serde's "duplicate field".
#[derive(Default)]
pub(crate) struct Seen(u32);

impl Seen {
    /// Marks field `bit` (under 32) as seen; `None` when it already was.
    pub(crate) fn first(&mut self, bit: u32) -> Option<()> {
        let m = 1 << bit;
        if self.0 & m != 0 {
            return None;
        }
        self.0 |= m;
        Some(())
    }
}

/// A struct of [`crate::raw`] as the fast reader fills it, one field at a time. Implemented
/// by `raw_structs!` from the same table as the struct's serde derive.
pub(crate) trait Object<'a>: Default {
    /// Reads the value of `key` (the cursor on it) into its field, or skips it if `key` is
    /// not one; `None` (give up) on a repeated field, as serde fails on one.
    fn field(&mut self, p: &mut Reader<'a>, key: &str, seen: &mut Seen) -> Option<()>;
}

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// High bit set in (at least) the lowest byte of `w` that is `"`, `\` or below 0x20; the
/// lowest flagged byte is always a true one.
#[inline(always)]
fn specials(w: u64) -> u64 {
    let q = w ^ (LO * b'"' as u64);
    let bs = w ^ (LO * b'\\' as u64);
    let zq = q.wrapping_sub(LO) & !q;
    let zb = bs.wrapping_sub(LO) & !bs;
    let ctl = w.wrapping_sub(LO * 0x20) & !w;
    (zq | zb | ctl) & HI
}

impl<'a> Reader<'a> {
    #[inline]
    fn ws(&mut self) {
        while let Some(&c) = self.b.get(self.i) {
            if !matches!(c, b' ' | b'\n' | b'\r' | b'\t') {
                break;
            }
            self.i += 1;
        }
    }

    /// The next non-whitespace byte, not consumed.
    #[inline]
    fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.b.get(self.i).copied()
    }

    #[inline]
    fn eat(&mut self, c: u8) -> Option<()> {
        if self.peek()? == c {
            self.i += 1;
            Some(())
        } else {
            None
        }
    }

    fn literal(&mut self, lit: &[u8]) -> Option<()> {
        if self.b.get(self.i..self.i + lit.len())? == lit {
            self.i += lit.len();
            Some(())
        } else {
            None
        }
    }

    /// Moves to the first `"`, `\` or control byte at or after `self.i`.
    #[inline(always)]
    fn scan(&mut self) -> Option<u8> {
        let b = self.b;
        let mut i = self.i;
        while let Some(chunk) = b.get(i..i + 8) {
            let w = u64::from_le_bytes(chunk.try_into().ok()?);
            let m = specials(w);
            if m != 0 {
                i += (m.trailing_zeros() / 8) as usize;
                self.i = i;
                return Some(b[i]);
            }
            i += 8;
        }
        while let Some(&c) = b.get(i) {
            if c == b'"' || c == b'\\' || c < 0x20 {
                self.i = i;
                return Some(c);
            }
            i += 1;
        }
        self.i = i;
        None
    }

    /// A string (the cursor on its opening quote), borrowed unless it has escapes.
    #[inline(always)]
    fn string(&mut self) -> Option<Str<'a>> {
        self.i += 1;
        let start = self.i;
        match self.scan()? {
            b'"' => {
                let s = &self.s[start..self.i];
                self.i += 1;
                Some(Cow::Borrowed(s))
            }
            b'\\' => self.escaped(start).map(Cow::Owned),
            _ => None,
        }
    }

    /// The rest of a string with escapes, decoded; `start` is just past the opening quote.
    #[cold]
    fn escaped(&mut self, start: usize) -> Option<String> {
        let mut out = String::with_capacity(self.i - start + 16);
        let mut from = start;
        loop {
            out.push_str(&self.s[from..self.i]);
            match self.b[self.i] {
                b'"' => {
                    self.i += 1;
                    return Some(out);
                }
                b'\\' => {
                    let e = *self.b.get(self.i + 1)?;
                    self.i += 2;
                    match e {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => {
                            let hi = self.hex4()?;
                            let c = if (0xD800..0xDC00).contains(&hi) {
                                if self.b.get(self.i..self.i + 2)? != b"\\u" {
                                    return None;
                                }
                                self.i += 2;
                                let lo = self.hex4()?;
                                if !(0xDC00..0xE000).contains(&lo) {
                                    return None;
                                }
                                char::from_u32(0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00))?
                            } else {
                                char::from_u32(hi)?
                            };
                            out.push(c);
                        }
                        _ => return None,
                    }
                }
                _ => return None,
            }
            from = self.i;
            self.scan()?;
        }
    }

    fn hex4(&mut self) -> Option<u32> {
        let h = self.b.get(self.i..self.i + 4)?;
        let mut v = 0u32;
        for &c in h {
            v = v * 16 + (c as char).to_digit(16)?;
        }
        self.i += 4;
        Some(v)
    }

    /// Skips a string (the cursor on its opening quote), validating its escapes.
    fn skip_string(&mut self) -> Option<()> {
        self.i += 1;
        loop {
            match self.scan()? {
                b'"' => {
                    self.i += 1;
                    return Some(());
                }
                b'\\' => {
                    let e = *self.b.get(self.i + 1)?;
                    self.i += 2;
                    match e {
                        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => {}
                        b'u' => {
                            self.hex4()?;
                        }
                        _ => return None,
                    }
                }
                _ => return None,
            }
        }
    }

    /// An object key without escapes, and the `:` after it.
    #[inline(always)]
    fn key(&mut self) -> Option<&'a str> {
        if self.peek()? != b'"' {
            return None;
        }
        match self.string()? {
            Cow::Borrowed(k) => {
                self.eat(b':')?;
                Some(k)
            }
            Cow::Owned(_) => None,
        }
    }

    /// Calls `field` for each key of an object (the cursor on `{`); it must read the value.
    #[inline]
    fn object(&mut self, mut field: impl FnMut(&mut Self, &'a str) -> Option<()>) -> Option<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return None;
        }
        self.i += 1;
        if self.peek()? == b'}' {
            self.i += 1;
        } else {
            loop {
                let k = self.key()?;
                self.ws();
                field(self, k)?;
                match self.peek()? {
                    b',' => self.i += 1,
                    b'}' => {
                        self.i += 1;
                        break;
                    }
                    _ => return None,
                }
            }
        }
        self.depth -= 1;
        Some(())
    }

    /// Calls `element` for each element of an array (the cursor on `[`); it must read it.
    #[inline]
    fn array(&mut self, mut element: impl FnMut(&mut Self) -> Option<()>) -> Option<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return None;
        }
        self.i += 1;
        if self.peek()? == b']' {
            self.i += 1;
        } else {
            loop {
                self.ws();
                element(self)?;
                match self.peek()? {
                    b',' => self.i += 1,
                    b']' => {
                        self.i += 1;
                        break;
                    }
                    _ => return None,
                }
            }
        }
        self.depth -= 1;
        Some(())
    }

    /// A value that a `deserialize_any` visitor ignores: as [`Self::skip`], except that
    /// serde_json reads such a number in full (and fails on one out of range), so we must too.
    fn ignored(&mut self) -> Option<()> {
        match *self.b.get(self.i)? {
            b'-' | b'0'..=b'9' => self.number().map(drop),
            _ => self.skip(),
        }
    }

    /// Skips any value (the cursor on its first byte), validating it; as serde_json's
    /// `IgnoredAny`, numbers are checked for their grammar only.
    pub(crate) fn skip(&mut self) -> Option<()> {
        match *self.b.get(self.i)? {
            b'"' => self.skip_string(),
            b'{' => self.object(|p, _| p.skip()),
            b'[' => self.array(|p| p.skip()),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            b'-' | b'0'..=b'9' => self.skip_number(),
            _ => None,
        }
    }

    /// As [`Self::digits`], accumulating them into `sig` (wrapping: past 19 significant
    /// digits the caller discards `sig`).
    #[inline(always)]
    fn digits_into(&mut self, sig: &mut u64) -> usize {
        let start = self.i;
        while let Some(&c) = self.b.get(self.i) {
            let d = c.wrapping_sub(b'0');
            if d > 9 {
                break;
            }
            *sig = sig.wrapping_mul(10).wrapping_add(u64::from(d));
            self.i += 1;
        }
        self.i - start
    }

    fn digits(&mut self) -> usize {
        self.digits_into(&mut 0)
    }

    fn skip_number(&mut self) -> Option<()> {
        if self.b[self.i] == b'-' {
            self.i += 1;
        }
        match self.b.get(self.i)? {
            b'0' => self.i += 1,
            b'1'..=b'9' => {
                self.digits();
            }
            _ => return None,
        }
        if self.b.get(self.i) == Some(&b'.') {
            self.i += 1;
            if self.digits() == 0 {
                return None;
            }
        }
        if matches!(self.b.get(self.i), Some(b'e' | b'E')) {
            self.i += 1;
            if matches!(self.b.get(self.i), Some(b'+' | b'-')) {
                self.i += 1;
            }
            if self.digits() == 0 {
                return None;
            }
        }
        if self.b.get(self.i).is_some_and(u8::is_ascii_digit) {
            return None;
        }
        Some(())
    }

    /// A number as serde_json would give it to a visitor; `None` on its overflow paths.
    ///
    /// With at most 19 significant digits the significand fits a `u64` and is the one
    /// serde_json computes; `f64`s are then built with the same operations as serde_json's.
    fn number(&mut self) -> Option<Num> {
        let positive = if self.b[self.i] == b'-' {
            self.i += 1;
            false
        } else {
            true
        };
        let int = self.i;
        let mut sig = 0u64;
        let n_int = self.digits_into(&mut sig);
        if n_int == 0 || (n_int > 1 && self.b[int] == b'0') {
            return None;
        }
        let mut n_frac = 0;
        if self.b.get(self.i) == Some(&b'.') {
            self.i += 1;
            n_frac = self.digits_into(&mut sig);
            if n_frac == 0 {
                return None;
            }
        }
        let mut exp: i32 = 0;
        let float = n_frac > 0 || matches!(self.b.get(self.i), Some(b'e' | b'E'));
        if matches!(self.b.get(self.i), Some(b'e' | b'E')) {
            self.i += 1;
            let negative = match self.b.get(self.i) {
                Some(b'-') => {
                    self.i += 1;
                    true
                }
                Some(b'+') => {
                    self.i += 1;
                    false
                }
                _ => false,
            };
            let start = self.i;
            let n = self.digits();
            if n == 0 || n > 4 {
                return None;
            }
            let e = self.b[start..self.i]
                .iter()
                .fold(0i32, |e, &c| e * 10 + (c - b'0') as i32);
            exp = if negative { -e } else { e };
        }
        if n_int + n_frac > 19 {
            return None;
        }
        if !float {
            if positive {
                return Some(Num::U(sig));
            }
            let neg = (sig as i64).wrapping_neg();
            return Some(if neg >= 0 {
                Num::F(-(sig as f64))
            } else {
                Num::I(neg)
            });
        }
        let exp = exp - n_frac as i32;
        let pow = *POW10.get(exp.unsigned_abs() as usize)?;
        let mut f = sig as f64;
        if exp >= 0 {
            f *= pow;
        } else {
            f /= pow;
        }
        Some(Num::F(if positive { f } else { -f }))
    }

    /// `lstr`: a string, or `None` for any other value (skipped).
    #[inline(always)]
    pub(crate) fn lstr(&mut self) -> Option<Option<Str<'a>>> {
        if *self.b.get(self.i)? == b'"' {
            self.string().map(Some)
        } else {
            self.ignored().map(|()| None)
        }
    }

    /// `lms`-like: a number, a string holding one, or `None` for anything else.
    #[inline(always)]
    fn lnum(&mut self) -> Option<Option<Num>> {
        match *self.b.get(self.i)? {
            b'-' | b'0'..=b'9' => self.number().map(Some),
            b'"' => {
                let s = self.string()?;
                Some(s.trim().parse::<f64>().ok().map(Num::F))
            }
            _ => self.skip().map(|()| None),
        }
    }

    #[inline(always)]
    pub(crate) fn lms(&mut self) -> Option<Option<u64>> {
        Some(self.lnum()?.and_then(Num::as_ms))
    }

    fn lf64(&mut self) -> Option<Option<f64>> {
        Some(self.lnum()?.map(Num::as_f64))
    }

    /// `Option<T>` as serde_json reads it: `null` is `None`, any other value is read by `read`.
    #[inline]
    pub(crate) fn or_null<T>(
        &mut self,
        read: impl FnOnce(&mut Self) -> Option<T>,
    ) -> Option<Option<T>> {
        if *self.b.get(self.i)? == b'n' {
            return self.literal(b"null").map(|()| None);
        }
        read(self).map(Some)
    }

    /// A struct: an object, its fields read by `T`'s [`Object::field`]; any other value gives
    /// up (serde would also take an array of the fields in order).
    pub(crate) fn record<T: Object<'a>>(&mut self) -> Option<T> {
        let mut m = T::default();
        self.fields(&mut m)?;
        Some(m)
    }

    /// The fields of an object, read into `m`; any other value gives up.
    fn fields<T: Object<'a>>(&mut self, m: &mut T) -> Option<()> {
        if self.b.get(self.i) != Some(&b'{') {
            return None;
        }
        let mut seen = Seen::default();
        self.object(|p, k| m.field(p, k, &mut seen))
    }

    /// An array, each element read by `read`; any other value gives up.
    pub(crate) fn vec<T>(
        &mut self,
        mut read: impl FnMut(&mut Self) -> Option<T>,
    ) -> Option<Vec<T>> {
        if self.b.get(self.i) != Some(&b'[') {
            return None;
        }
        let mut v = Vec::new();
        self.array(|p| {
            v.push(read(p)?);
            Some(())
        })?;
        Some(v)
    }

    /// `OverallSentiment`: scores by key, and `DetailsByParticipantRole` (last one wins); any
    /// value but an object is skipped and gives no scores.
    pub(crate) fn overall(&mut self) -> Option<RawOverallSentiment<'a>> {
        if self.b.get(self.i) != Some(&b'{') {
            self.ignored()?;
            return Some(RawOverallSentiment::default());
        }
        let mut out = RawOverallSentiment::default();
        self.object(|p, k| {
            if k == "DetailsByParticipantRole" {
                out.by_role = if p.b.get(p.i) == Some(&b'{') {
                    let mut v = Vec::new();
                    p.object(|p, k| {
                        if let Some(n) = p.lf64()? {
                            v.push((Cow::Borrowed(k), n));
                        }
                        Some(())
                    })?;
                    v
                } else {
                    p.ignored()?;
                    Vec::new()
                };
            } else if let Some(n) = p.lf64()? {
                out.by_key.push((Cow::Borrowed(k), n));
            }
            Some(())
        })?;
        Some(out)
    }

    /// The `Transcript` array; capacity guessed from the bytes left (an item is rarely
    /// under 128 bytes), so that the vector does not grow by copying.
    pub(crate) fn items(&mut self) -> Option<Items<'a>> {
        if self.b.get(self.i) != Some(&b'[') {
            return None;
        }
        let mut v = Vec::with_capacity(((self.b.len() - self.i) / 128).clamp(32, 1 << 16));
        self.array(|p| {
            // Filled in place: an item is too large to move around cheaply (`push` copies
            // it from the stack with a call to memcpy).
            v.reserve(1);
            v.spare_capacity_mut()
                .first_mut()?
                .write(RawItem::default());
            // SAFETY: `reserve(1)` made room for one more element, so the first spare slot
            // is the one at index `len`, and it was initialised by `write` just above.
            unsafe { v.set_len(v.len() + 1) };
            p.fields(v.last_mut()?)
        })?;
        Some(Items(v))
    }
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use serde::de::IgnoredAny;

    use super::*;

    /// The fast reader against serde_json on one text: where the fast reader answers, serde_json
    /// must give the same document. Returns whether the fast reader answered.
    fn agrees(text: &str) -> bool {
        let Some(fast) = parse_doc(text) else {
            return false;
        };
        let reference: Result<RawDoc<'_>, _> = serde_json::from_str(text);
        match reference {
            // Debug output: also tells -0.0 from 0.0.
            Ok(r) => assert_eq!(format!("{fast:?}"), format!("{r:?}"), "on {text:.200}"),
            Err(e) => panic!("fast reader accepted what serde_json rejects ({e}): {text:.200}"),
        }
        true
    }

    fn json_files(dir: &Path) -> Vec<PathBuf> {
        files_ending(dir, "json")
    }

    fn files_ending(dir: &Path, ext: &str) -> Vec<PathBuf> {
        let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        out.retain(|p| p.extension().is_some_and(|x| x == ext));
        out.sort();
        out
    }

    /// The shared data folder (`testdata`: `$CALLTYPE_SHARED` or `../shared`; a failure under
    /// `CI=true` when it is missing, a note and only the crate's own fixtures otherwise).
    fn shared() -> PathBuf {
        testdata::shared("fixtures/contact-lens")
            .map(|_| testdata::shared_root())
            .unwrap_or_default()
    }

    fn fixtures() -> Vec<(PathBuf, String)> {
        let mut files = json_files(Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures"
        )));
        files.extend(json_files(&shared().join("fixtures/contact-lens")));
        files
            .into_iter()
            .map(|p| {
                let t = std::fs::read_to_string(&p).expect("UTF-8 fixture");
                (p, t)
            })
            .collect()
    }

    #[test]
    fn it_reads_every_fixture_and_star_file_as_serde_json_does() {
        for (path, text) in fixtures() {
            let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
            // Every well-formed fixture takes the fast path.
            let valid = serde_json::from_str::<IgnoredAny>(text).is_ok();
            assert_eq!(agrees(text), valid, "{}", path.display());
        }
        let star = shared().join("datasets/star-contactlens");
        let mut n = 0;
        for split in ["train", "dev"] {
            for path in json_files(&star.join(split)) {
                let text = std::fs::read_to_string(&path).expect("UTF-8");
                assert!(agrees(&text), "{}", path.display());
                n += 1;
            }
        }
        if star.is_dir() {
            assert!(n > 0, "no STAR files under {}", star.display());
        }
    }

    #[test]
    fn it_never_accepts_what_serde_json_rejects_in_mutated_fixtures() {
        let bytes = [
            b'"', b'{', b'}', b'[', b']', b',', b':', b'\\', 0u8, b'9', b'x', b'-', b'.', b'e',
            b'n', b' ', b'0', b'u', 0x1f,
        ];
        for (_, text) in fixtures() {
            let text = text.as_bytes();
            for n in (0..text.len()).step_by(7) {
                if let Ok(t) = std::str::from_utf8(&text[..n]) {
                    agrees(t);
                }
            }
            for (i, &b) in bytes.iter().cycle().enumerate().take(3000) {
                let mut copy = text.to_vec();
                let at = (i * 7919) % copy.len();
                copy[at] = b;
                if let Ok(t) = std::str::from_utf8(&copy) {
                    agrees(t);
                }
            }
        }
    }

    /// xorshift64*: a seeded generator, so that every run makes the same edits.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }

        /// A number in `0..n` (`n > 0`).
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    /// Bytes that steer a JSON reader, where the two readers are likeliest to part.
    const JSON_BYTES: &[u8] = b"\"{}[],:\\/0123456789-+.eEtrufalsn \t\r\n\x00\x1f\x7f";

    /// A byte to write: one of [`JSON_BYTES`], one from the document, or any byte.
    fn any_byte(rng: &mut Rng, doc: &[u8]) -> u8 {
        match rng.below(3) {
            0 => JSON_BYTES[rng.below(JSON_BYTES.len())],
            1 if !doc.is_empty() => doc[rng.below(doc.len())],
            _ => rng.next() as u8,
        }
    }

    /// One random edit: delete, insert or replace a byte, duplicate a span somewhere, or
    /// (rarely, as it leaves little to read) truncate.
    fn edit(rng: &mut Rng, b: &mut Vec<u8>) {
        let n = b.len();
        if n == 0 {
            b.push(any_byte(rng, &[]));
            return;
        }
        match rng.below(16) {
            0..=3 => {
                b.remove(rng.below(n));
            }
            4..=7 => {
                let c = any_byte(rng, b);
                b.insert(rng.below(n + 1), c);
            }
            8..=11 => {
                let c = any_byte(rng, b);
                b[rng.below(n)] = c;
            }
            12..=14 => {
                let start = rng.below(n);
                let len = 1 + rng.below((n - start).min(64));
                let span = b[start..start + len].to_vec();
                let at = rng.below(n + 1);
                b.splice(at..at, span);
            }
            _ => b.truncate(rng.below(n)),
        }
    }

    #[test]
    fn it_agrees_with_serde_json_and_never_panics_on_random_edits_of_fixtures() {
        const SEED: u64 = 0x5eed_c0de_2024_0021;
        const ROUNDS: usize = 800;
        let key = "connect/x/Analysis/Voice/2022/04/15/aaaaaaaa-1111-2222-3333-444444444444_analysis_2022-04-15T10:00:00Z.json";
        let mut inputs = fixtures();
        for p in files_ending(&shared().join("fixtures/contact-lens"), "jsonc") {
            let t = std::fs::read_to_string(&p).expect("UTF-8 fixture");
            inputs.push((p, t));
        }
        let (mut tried, mut answered) = (0, 0);
        for (f, (path, text)) in inputs.iter().enumerate() {
            let mut rng = Rng(SEED ^ (f as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
            for round in 0..ROUNDS {
                let mut bytes = text.as_bytes().to_vec();
                for _ in 0..1 + rng.below(3) {
                    edit(&mut rng, &mut bytes);
                }
                let checked = std::panic::catch_unwind(|| {
                    let fast = std::str::from_utf8(&bytes).is_ok_and(agrees);
                    let _ = crate::parse(&bytes, (round % 2 == 1).then_some(key));
                    fast
                });
                match checked {
                    Ok(fast) => answered += usize::from(fast),
                    Err(_) => panic!(
                        "{} edited (seed {SEED:#x}, round {round}): see the panic above",
                        path.display()
                    ),
                }
                tried += 1;
            }
        }
        // About a quarter of the edits leave JSON that the fast path reads (most land in a
        // string); far fewer would mean this test checks little.
        assert!(
            answered * 10 > tried,
            "the fast path answered {answered} of {tried}"
        );
    }

    #[test]
    fn it_matches_serde_json_on_edge_cases() {
        let fast = [
            // Escapes, in kept strings and in skipped ones.
            r#"{"Version":"1.\u0031.0","Transcript":[{"Content":"a\"b\\c\/d\b\f\n\r\t\u00e9\ud83d\ude00","Id":"\u12ab\n"}]}"#,
            // Lenient scalars: numbers as strings, floats, negatives, -0, exponents.
            r#"{"Transcript":[{"BeginOffsetMillis":"12","EndOffsetMillis":1.5e3},{"BeginOffsetMillis":-0,"EndOffsetMillis":-3}],"JobStatus":7}"#,
            r#"{"ConversationCharacteristics":{"TotalConversationDurationMillis":123456789012,"Sentiment":{"OverallSentiment":{"AGENT":-0.0,"CUSTOMER":" 2.5 ","x":[1,{"a":1e400}],"y":null,"DetailsByParticipantRole":{"AGENT":1E+2,"CUSTOMER":"n/a"}}}}}"#,
            r#"{"ConversationCharacteristics":{"Sentiment":{"OverallSentiment":[1,2]}},"Categories":{"MatchedCategories":["a",1,null,{"b":2},"c"]}}"#,
            r#"{"ConversationCharacteristics":{"Sentiment":{"OverallSentiment":{"DetailsByParticipantRole":5,"DetailsByParticipantRole":{"AGENT":1}}}}}"#,
            // Nulls, presence markers, unknown fields of every kind.
            r#" {"EventType":null,"Segments":[],"Version":null,"Channel":12,"X":{"Y":[true,false,null,-1.25e-7,0,"z"]}} "#,
            r#"{"ContentMetadata":null,"CustomerMetadata":{},"Participants":[],"Transcript":null}"#,
            r#"{"Participants":[{"ParticipantId":"A","ParticipantRole":"AGENT","Extra":{}}]}"#,
            r#"{"ConversationCharacteristics":{"ContactSummary":{"AutoGenerated":{"OverallSummary":{"Content":"s","Status":"FAILED"}},"PostContactSummary":null}}}"#,
            "{\n\t\"Version\" :\r\n \"1.1.0\" ,\"Transcript\" : [ ] }",
            r#"{"Transcript":[{"BeginOffsetMillis":9999999999999999999,"EndOffsetMillis":0.05},{"BeginOffsetMillis":123.456e-5,"EndOffsetMillis":1e22}]}"#,
        ];
        for t in fast {
            assert!(agrees(t), "fast path gave up on {t}");
        }
        // Either rejected by both, or left to serde_json (and still agreeing when accepted).
        let others = [
            r#"{"Version":"1","Version":"2"}"#,
            r#"{"Transcript":[{"Content":"a","Content":"b"}]}"#,
            r#"{"Transcript":[{"Content":"\ud800"}]}"#,
            r#"{"Transcript":[{"Content":"\udc00x"}]}"#,
            r#"{"Transcript":[{"Id":"\ud800"}]}"#,
            r#"{"Channel":1e400}"#,
            r#"{"X":1e400}"#,
            r#"{"Channel":123456789012345678901234567890}"#,
            r#"{"Transcript":[{"BeginOffsetMillis":1.00000000000000000001}]}"#,
            r#"{"Transcript":[{"BeginOffsetMillis":18446744073709551616}]}"#,
            r#"{"Transcript":[{"BeginOffsetMillis":12345678901234567890}]}"#,
            r#"{"Transcript":[{"BeginOffsetMillis":1e23,"EndOffsetMillis":1e-23}]}"#,
            r#"{"Transcript":[{"BeginOffsetMillis":1e00001}]}"#,
            r#"{"Transcript":[{"BeginOffsetMillis":-9223372036854775808}]}"#,
            r#"{"Transcript":[null]}"#,
            r#"{"Transcript":[[1,2]]}"#,
            r#"{"Transcript":{}}"#,
            r#"{"ContentMetadata":"x"}"#,
            r#"{"Vers\u0069on":"1.1.0"}"#,
            r#"{"X":01}"#,
            r#"{"X":1.}"#,
            r#"{"X":-}"#,
            r#"{"X":.5}"#,
            r#"{"X":1e}"#,
            r#"{"X":"\x"}"#,
            r#"{"X":"\u12"}"#,
            r#"{"X":[1,]}"#,
            r#"{"X":1,}"#,
            r#"{"X":tru}"#,
            r#"{"X":1} x"#,
            r#"{"X":"a	b"}"#,
            "{\"X\":\"\u{7f}\u{2028}\"}",
            &format!("{{\"X\":{}1{}}}", "[".repeat(120), "]".repeat(120)),
            &format!("{{\"X\":{}1{}}}", "[".repeat(200), "]".repeat(200)),
        ];
        for t in others {
            agrees(t);
        }
    }
}
