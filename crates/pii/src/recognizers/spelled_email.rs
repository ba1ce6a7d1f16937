//! Email addresses written to keep harvesters off them: the `@` and the dots spelt out in
//! brackets, as German imprints, contact pages and forum signatures do
//! (`info(at)firma.de`, `jo[at]example[dot]com`, `anna{at}example(punkt)de`). The brackets
//! are what tells them from prose (`meet at example.com` is none); an address spelt with
//! spaces around the words (`jo at example dot com`) is not read.
//!
//! A bracketed word is `(`, `[` or `{`, the word in any case, and the matching bracket; `@`
//! stands for `at` (`jo(@)example.com`); `dot`, German `punkt` and French `point` for a dot.

use super::{Hit, Meta, Recognizer, Tier};
use crate::finding::{Evidence, EvidenceKind};
use crate::mapped::Mapped;

/// Below an address written plainly (0.9): the brackets are a strong sign, the rest is only
/// the shape of a local part and a domain.
const SCORE: f32 = 0.6;

/// What a bracketed word stands for.
const AT_WORDS: [&[u8]; 2] = [b"at", b"@"];
const DOT_WORDS: [&[u8]; 3] = [b"dot", b"punkt", b"point"];

/// The length of a bracketed word of `words` at `i` (`(at)`, `[DOT]`), if one stands there.
fn bracketed(hay: &[u8], i: usize, words: &[&[u8]]) -> Option<usize> {
    let (&open, rest) = hay.get(i..)?.split_first()?;
    let close = match open {
        b'(' => b')',
        b'[' => b']',
        b'{' => b'}',
        _ => return None,
    };
    words.iter().find_map(|w| {
        let inner = rest.get(..w.len())?;
        (inner.eq_ignore_ascii_case(w) && rest.get(w.len()) == Some(&close)).then_some(w.len() + 2)
    })
}

/// The start of the local part ending at `end`: letters (of any script) and digits, with
/// `.`, `_`, `%`, `+` and `-` inside; `end` itself if there is none.
fn local_start(hay: &[u8], end: usize) -> usize {
    let mut s = end;
    while s > 0 {
        let b = hay[s - 1];
        if b.is_ascii_alphanumeric() || b"._%+-".contains(&b) {
            s -= 1;
            continue;
        }
        // a letter beyond ASCII (`müller(at)…`): its bytes back to its first
        let first = (s.saturating_sub(4)..s).rev().find(|&k| hay[k] & 0xC0 != 0x80);
        match first.and_then(|k| std::str::from_utf8(&hay[k..s]).ok().map(|c| (k, c))) {
            Some((k, c)) if c.chars().all(char::is_alphanumeric) => s = k,
            _ => break,
        }
    }
    // it starts and ends with a letter or digit
    while s < end && !continues(hay[s]) {
        s += 1;
    }
    s
}

/// Whether `b` can start or end a local part or a domain label: a letter or digit (or a byte
/// of one beyond ASCII).
fn continues(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b >= 0x80
}

/// The length of the domain label at `i`: ASCII letters and digits, hyphens inside.
fn label_len(hay: &[u8], i: usize) -> usize {
    let run = hay[i..]
        .iter()
        .take_while(|b| b.is_ascii_alphanumeric() || **b == b'-')
        .count();
    hay[i..i + run]
        .iter()
        .rposition(u8::is_ascii_alphanumeric)
        .map_or(0, |k| k + 1)
}

/// The end of the domain starting at `i`: two labels or more, each after a dot (written or
/// spelt), the last one a top-level domain's letters (2 to 24).
fn domain_end(hay: &[u8], mut i: usize) -> Option<usize> {
    let mut labels = 0;
    let mut end = None;
    loop {
        let len = label_len(hay, i);
        if len == 0 || hay[i] == b'-' {
            break;
        }
        labels += 1;
        i += len;
        let tld = &hay[i - len..i];
        if labels >= 2 && (2..=24).contains(&len) && tld.iter().all(u8::is_ascii_alphabetic) {
            end = Some(i);
        }
        let dot = match hay.get(i) {
            Some(b'.') => 1,
            _ => match bracketed(hay, i, &DOT_WORDS) {
                Some(n) => n,
                None => break,
            },
        };
        i += dot;
    }
    end
}

pub(crate) struct SpelledEmailRecognizer {
    meta: Meta,
}

impl SpelledEmailRecognizer {
    /// `context`: the email recognizer's context words.
    pub(crate) fn new(context: Vec<String>) -> Self {
        Self {
            meta: Meta::new("EMAIL_ADDRESS", Tier::Identifier, context),
        }
    }
}

impl Recognizer for SpelledEmailRecognizer {
    fn meta(&self) -> &Meta {
        &self.meta
    }

    fn find(&self, hay: &[u8], out: &mut Vec<Hit>) {
        let mut from = 0;
        while let Some(k) = memchr::memchr3(b'(', b'[', b'{', &hay[from..]) {
            let at = from + k;
            from = at + 1;
            let Some(at_len) = bracketed(hay, at, &AT_WORDS) else {
                continue;
            };
            let s = local_start(hay, at);
            if s == at || !continues(hay[at - 1]) {
                continue;
            }
            let Some(e) = domain_end(hay, at + at_len) else {
                continue;
            };
            let evidence = vec![Evidence::new(EvidenceKind::Pattern, "email_spelled_out")];
            out.push(Hit::new(s, e, SCORE, evidence));
            from = e;
        }
    }
}

/// `value` with its spelt-out `@` and dots written plainly (`jo(at)example[dot]com` is
/// `jo@example.com`), each mapped to its bracketed word; `None` when it spells none. A vault
/// holds the address, and a hash joins it with the address written plainly elsewhere.
pub(crate) fn written_plainly(value: &[u8]) -> Option<Mapped> {
    let mut out: Option<Mapped> = None;
    let mut copied = 0;
    let mut i = 0;
    while let Some(k) = memchr::memchr3(b'(', b'[', b'{', &value[i..]) {
        let at = i + k;
        let (written, len): (&[u8], usize) = match (bracketed(value, at, &AT_WORDS), bracketed(value, at, &DOT_WORDS)) {
            (Some(len), _) => (b"@", len),
            (None, Some(len)) => (b".", len),
            (None, None) => {
                i = at + 1;
                continue;
            }
        };
        let m = out.get_or_insert_with(|| Mapped::with_capacity(value.len()));
        m.copy(&value[copied..at], copied);
        m.put(written, at);
        i = at + len;
        copied = i;
    }
    let mut m = out?;
    m.copy(&value[copied..], copied);
    Some(m.finish(value.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(text: &str) -> Vec<&str> {
        let mut out = Vec::new();
        SpelledEmailRecognizer::new(Vec::new()).find(text.as_bytes(), &mut out);
        out.iter()
            .map(|h| text.get(h.start..h.end).unwrap_or("not on a boundary"))
            .collect()
    }

    #[test]
    fn addresses_spelt_out_in_brackets() {
        for (text, want) in [
            ("Kontakt: info(at)firma.de.", "info(at)firma.de"),
            ("mail jo[at]example[dot]com now", "jo[at]example[dot]com"),
            (
                "anna.schmidt{AT}mail(punkt)example(Punkt)de",
                "anna.schmidt{AT}mail(punkt)example(Punkt)de",
            ),
            ("(jo(@)example.co.uk)", "jo(@)example.co.uk"),
            ("müller(at)firma.de", "müller(at)firma.de"),
            (
                "contact: marie.dupont(at)exemple(point)fr;",
                "marie.dupont(at)exemple(point)fr",
            ),
            ("x-jo+news(at)mail.example.com.", "x-jo+news(at)mail.example.com"),
            // a trailing label that is no top-level domain is left out
            ("jo(at)example.com.123", "jo(at)example.com"),
        ] {
            assert_eq!(found(text), [want], "{text}");
        }
    }

    #[test]
    fn brackets_that_spell_no_address() {
        for text in [
            "look (at) example.com",
            "meet at example.com",
            "jo (at) example.com",
            "jo(at)example",
            "jo(at)example.c",
            "jo(at)example.c0m",
            "(at)example.com",
            "jo.(at)example.com",
            "parse(at).value",
            "jo(ab)example.com",
            "jo(at example.com",
            "jo(at)-example.com",
            "jo(dot)example(at)",
        ] {
            assert!(found(text).is_empty(), "{text}: {:?}", found(text));
        }
    }

    #[test]
    fn spelt_out_words_written_plainly_with_their_places() {
        let value = b"jo[AT]example(dot)co.uk";
        let Some(m) = written_plainly(value) else {
            panic!("nothing spelt out was seen");
        };
        assert_eq!(m.text, b"jo@example.co.uk");
        assert_eq!(m.original(2), 2);
        assert_eq!(m.original(3), 6);
        assert_eq!(m.original(m.text.len()), value.len());
        assert!(written_plainly(b"jo@example.com").is_none());
    }

    /// Arbitrary bytes, brackets and spelt words in any order: no panic, every hit on the
    /// text's character boundaries.
    #[test]
    fn no_panic_on_arbitrary_bytes() {
        let parts: [&[u8]; 12] = [
            b"(at)",
            b"[dot]",
            b"{",
            b"a",
            b"9",
            b".",
            b"-",
            "ü".as_bytes(),
            b"\xff",
            b"(",
            b"punkt)",
            b" ",
        ];
        let mut seed = 0x9E37_79B9_7F4A_7C15_u64;
        for _ in 0..20_000 {
            let mut text = Vec::new();
            for _ in 0..(seed % 24) {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                text.extend_from_slice(parts[(seed % parts.len() as u64) as usize]);
            }
            let mut out = Vec::new();
            SpelledEmailRecognizer::new(Vec::new()).find(&text, &mut out);
            for h in out {
                assert!(h.start < h.end && h.end <= text.len());
            }
            let _ = written_plainly(&text);
        }
    }
}
