//! Whitespace normalisation of transcript text.

/// `true` for characters that separate words: Unicode whitespace (CR, LF, tab, NBSP, U+2028,
/// ...) and other control characters, which have no place in a one-line transcript.
#[inline]
fn is_separator(c: char) -> bool {
    c.is_whitespace() || c.is_control()
}

/// Appends `s` to `out` with every run of separators turned into one space and both ends
/// trimmed. Returns `false` (and appends nothing) when `s` has no visible text.
pub(crate) fn push_normalised(out: &mut String, s: &str) -> bool {
    if is_clean(s) {
        if s.is_empty() {
            return false;
        }
        out.push_str(s);
        return true;
    }
    let start = out.len();
    for word in s.split(is_separator).filter(|w| !w.is_empty()) {
        if out.len() > start {
            out.push(' ');
        }
        out.push_str(word);
    }
    out.len() > start
}

/// The normalised form of `s` as a new string (possibly empty).
pub(crate) fn normalised(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    push_normalised(&mut out, s);
    out
}

/// Fast path: no separator can be present and spaces are single, inner ones.
///
/// One branch-free pass over the bytes (double spaces included), so that it vectorises.
/// Bytes that may start a Unicode separator (`C2`: U+0085, U+00A0 and C1 controls;
/// `E1`..`E3`: U+1680, U+2000..U+205F, U+3000) send the text down the slow path, which
/// decodes chars; other non-ASCII is clean.
fn is_clean(s: &str) -> bool {
    let b = s.as_bytes();
    if b.first() == Some(&b' ') || b.last() == Some(&b' ') {
        return false;
    }
    let suspicious = b.iter().fold(false, |acc, &c| {
        acc | (c < 0x20) | (c == 0x7f) | (c == 0xc2) | (c.wrapping_sub(0xe1) < 3)
    });
    let rest = b.get(1..).unwrap_or_default();
    let doubled = b
        .iter()
        .zip(rest)
        .fold(false, |acc, (&c, &n)| acc | ((c == b' ') & (n == b' ')));
    !suspicious && !doubled
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collapses_all_whitespace_kinds() {
        assert_eq!(normalised("  a\r\n\tb \u{a0}\u{2028} c  "), "a b c");
        assert_eq!(normalised("plain text."), "plain text.");
        assert_eq!(normalised("x\u{0}y"), "x y");
        assert_eq!(normalised(" \n\t "), "");
        assert_eq!(normalised("héllo  wörld"), "héllo wörld");
    }
}
