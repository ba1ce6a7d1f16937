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
use crate::mapped::{Mapped, invisible, rewritten};

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

/// The length of a bracketed word of `words` ending at `end`, if one does.
fn bracketed_before(hay: &[u8], end: usize, words: &[&[u8]]) -> Option<usize> {
    words
        .iter()
        .map(|w| w.len() + 2)
        .find(|&n| end >= n && bracketed(hay, end - n, words) == Some(n))
}

/// Whether a spelt-out `@` (`(at)`, `[@]`) ends at `end`: what follows is an address's
/// domain, no URL of its own.
pub(crate) fn at_word_ending(hay: &[u8], end: usize) -> bool {
    end > 0 && matches!(hay[end - 1], b')' | b']' | b'}') && bracketed_before(hay, end, &AT_WORDS).is_some()
}

/// A combining mark (a decomposed `ü` is `u` and U+0308, as macOS writes file names and
/// some keyboards type): part of the letter before it. And the invisible characters written
/// into an address to hide it (a soft hyphen, a zero-width space, a word joiner, a BOM).
fn is_mark(c: char) -> bool {
    matches!(u32::from(c), 0x300..=0x36F | 0x1AB0..=0x1AFF | 0x1DC0..=0x1DFF | 0x20D0..=0x20FF | 0xFE20..=0xFE2F)
        || invisible(c)
}

/// Whether `label` ends a domain: a known top-level domain (a country's code, or a generic
/// one: `config.py` and `data.shape` are code), read without the invisible characters in it.
fn top_level(label: &[u8]) -> bool {
    let Ok(label) = std::str::from_utf8(label) else {
        return false;
    };
    let letters: String = label.chars().filter(|&c| !invisible(c)).collect();
    let letters = letters.as_bytes();
    letters.iter().all(u8::is_ascii_alphabetic)
        && super::network::known_tld(letters)
        && (letters.len() != 2 || super::network::country_code(letters))
}

/// The start of the character beyond ASCII ending at `end`, if a local part (`local`) or a
/// domain label holds it: a letter, a digit, a combining mark; in a local part the
/// typographic apostrophe and the middle dot too.
fn letter_before(hay: &[u8], end: usize, local: bool) -> Option<usize> {
    let k = (end.saturating_sub(4)..end).rev().find(|&k| hay[k] & 0xC0 != 0x80)?;
    let c = std::str::from_utf8(&hay[k..end]).ok()?.chars().next()?;
    (c.is_alphanumeric() || is_mark(c) || (local && matches!(c, '\u{2019}' | '\u{b7}'))).then_some(k)
}

/// The length of the character beyond ASCII at `i`, if a domain label holds it (a letter, a
/// digit, a mark).
fn letter_at(hay: &[u8], i: usize) -> Option<usize> {
    let len = match hay.get(i)? {
        0xC0..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xF7 => 4,
        _ => return None,
    };
    let c = std::str::from_utf8(hay.get(i..i + len)?).ok()?.chars().next()?;
    (c.is_alphanumeric() || is_mark(c)).then_some(len)
}

/// An ASCII byte a local part holds (as the email recognizer's; not `{` and `}`, which spell
/// out here, nor `/ ? = &`, which write a URL's query: `user=jo(at)…` is `jo(at)…`).
fn local_ascii(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%'*+^_`~.-".contains(&b)
}

/// The start of the local part ending at `end`: letters (of any script) and digits, with the
/// local part's punctuation and spelt-out dots (`john(dot)doe(at)…`) inside; `end` itself if
/// there is none.
fn local_start(hay: &[u8], end: usize) -> usize {
    let mut s = end;
    while s > 0 {
        if let Some(n) = bracketed_before(hay, s, &DOT_WORDS) {
            s -= n;
        } else if hay[s - 1] < 0x80 {
            if !local_ascii(hay[s - 1]) {
                break;
            }
            s -= 1;
        } else {
            match letter_before(hay, s, true) {
                Some(k) => s = k,
                None => break,
            }
        }
    }
    // it starts with a letter or digit
    while s < end && hay[s] < 0x80 && !hay[s].is_ascii_alphanumeric() {
        s += bracketed(hay, s, &DOT_WORDS).unwrap_or(1);
    }
    s.min(end)
}

/// Whether `b` can end a local part: a letter or digit (or the last byte of one beyond
/// ASCII, or of a mark).
fn continues(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b >= 0x80
}

/// The length of the domain label at `i`: letters (of any script) and digits, hyphens inside.
fn label_len(hay: &[u8], i: usize) -> usize {
    let mut e = i;
    let mut last = i;
    while let Some(&b) = hay.get(e) {
        if b.is_ascii_alphanumeric() {
            e += 1;
            last = e;
        } else if b == b'-' {
            e += 1;
        } else {
            match letter_at(hay, e) {
                Some(len) => {
                    e += len;
                    last = e;
                }
                None => break,
            }
        }
    }
    last - i
}

/// The end of the domain starting at `i`: two labels or more, each after a dot (written or
/// spelt), the last one a known top-level domain (`config.py` and `data.shape` are code).
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
        if labels >= 2 && top_level(&hay[i - len..i]) {
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
    let mut words: Vec<(usize, usize, &[u8])> = Vec::new();
    let mut i = 0;
    while let Some(k) = memchr::memchr3(b'(', b'[', b'{', &value[i..]) {
        let at = i + k;
        let spelt = bracketed(value, at, &AT_WORDS)
            .map(|len| (len, &b"@"[..]))
            .or_else(|| bracketed(value, at, &DOT_WORDS).map(|len| (len, &b"."[..])));
        i = match spelt {
            Some((len, written)) => {
                words.push((at, len, written));
                at + len
            }
            None => at + 1,
        };
    }
    rewritten(value, words)
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
            // dots spelt out in the local part too, its punctuation, decomposed letters, a
            // domain beyond ASCII
            (
                "Contact: john(dot)doe(at)example(dot)com",
                "john(dot)doe(at)example(dot)com",
            ),
            ("Mail: o'neil(at)example.ie", "o'neil(at)example.ie"),
            ("jo~x(at)example.com", "jo~x(at)example.com"),
            ("mu\u{308}ller(at)firma.de", "mu\u{308}ller(at)firma.de"),
            ("jo(at)müller.de", "jo(at)müller.de"),
            // invisible characters written in to hide it
            (
                "j\u{ad}ohn(at)exam\u{200b}ple.co\u{200b}m",
                "j\u{ad}ohn(at)exam\u{200b}ple.co\u{200b}m",
            ),
            ("jo\u{200b}(at)example.com", "jo\u{200b}(at)example.com"),
            // a query's `=` is no local part's
            ("?user=jo(at)example.com", "jo(at)example.com"),
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
            // code and file names: no known top-level domain
            "foo(at)bar.baz",
            "f(at)x.py",
            "load(at)config.yaml",
            "points[at]data.shape",
            "values[at]self.df",
            "row[at]obj.xy",
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
