//! Recognizers: each finds one entity type. Identifier recognizers run over the lexer's hot
//! buffer; language recognizers (names, places, addresses) over the whole text.

use std::sync::Arc;

use crate::finding::{Evidence, EvidenceKind};
use crate::re::Re;

pub(crate) mod builtin;
pub(crate) mod joint;
pub(crate) mod language;
pub(crate) mod national;
pub(crate) mod network;
pub(crate) mod numbers;
pub(crate) mod person;
pub(crate) mod phone_plan;

/// A candidate before context scoring, in the coordinates of the haystack it was found in.
#[derive(Debug, Clone)]
pub(crate) struct Hit {
    pub(crate) start: usize,
    pub(crate) end: usize,
    pub(crate) score: f32,
    pub(crate) evidence: Vec<Evidence>,
    /// Whether the hit stands only under a field name of its entity (a CSV header, a JSON
    /// key): too weak alone or beside a context word in prose.
    pub(crate) field_only: bool,
}

impl Hit {
    pub(crate) fn new(start: usize, end: usize, score: f32, evidence: Vec<Evidence>) -> Self {
        Self {
            start,
            end,
            score,
            evidence,
            field_only: false,
        }
    }

    /// This hit, standing only under a field name of its entity.
    pub(crate) fn under_field_only(self) -> Self {
        Self {
            field_only: true,
            ..self
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tier {
    /// Runs over the hot buffer (regions with digits, `@`, `:`, inner dots).
    Identifier,
    /// Runs over the whole text.
    Language,
}

/// What every recognizer has: the entity type it finds, the tier it runs in and the words
/// that raise the score when they stand near a finding.
pub(crate) struct Meta {
    pub(crate) entity: Arc<str>,
    pub(crate) tier: Tier,
    pub(crate) context: Vec<String>,
    /// Whether a label just before a match (`build`, `order #`, `invoice`, `SKU`) says it
    /// is some other number ([`crate::context::labelled`]).
    pub(crate) label_veto: bool,
    /// Words that, just before a match, say it is something else too (a phone number's:
    /// [`crate::context::IDENTIFIER_NAMES`]).
    pub(crate) not_after: &'static [&'static str],
}

impl Meta {
    pub(crate) fn new(entity: &str, tier: Tier, context: Vec<String>) -> Self {
        Self {
            entity: Arc::from(entity),
            tier,
            context,
            label_veto: false,
            not_after: &[],
        }
    }

    pub(crate) fn vetoed_by_labels(mut self) -> Self {
        self.label_veto = true;
        self
    }

    pub(crate) fn not_after(mut self, words: &'static [&'static str]) -> Self {
        self.not_after = words;
        self
    }
}

pub(crate) trait Recognizer: Send + Sync {
    fn meta(&self) -> &Meta;
    fn entity(&self) -> &Arc<str> {
        &self.meta().entity
    }
    fn tier(&self) -> Tier {
        self.meta().tier
    }
    fn context(&self) -> &[String] {
        &self.meta().context
    }
    fn find(&self, hay: &[u8], out: &mut Vec<Hit>);
    /// Whether its matches can take in words without digits around the identifier (see
    /// `HotBuffer::build`).
    fn needs_neighbors(&self) -> bool {
        false
    }
    /// Whether it reads the text as words (then the scanner splits the text once for all).
    fn uses_words(&self) -> bool {
        false
    }
    /// `find`, given the text's words.
    fn find_with_words(
        &self,
        text: &[u8],
        _words: &language::Words<'_>,
        _fields: &crate::context::Fields<'_>,
        out: &mut Vec<Hit>,
    ) {
        self.find(text, out);
    }
    /// The recognizer, if its patterns can run in a [`joint::Joint`] automaton.
    fn as_joinable(&self) -> Option<&PatternRecognizer> {
        None
    }
}

/// What must not touch a match on either side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Boundary {
    /// No letter or digit on either side.
    Word,
    /// As `Word`, and no `.`, `-`, `/` or `:` that continues a number (`192.168.1.1`
    /// holds no date; `4111-1111-1111-1111-1111` no card).
    Number,
    /// No digit before, no letter or digit after: for checksummed codes that are often
    /// glued to the word before (`is030594W903B`).
    NoDigits,
    /// Anything may touch.
    None,
}

/// Whether a character glued to an identifier makes it part of a longer word: a letter or
/// digit of a script written with spaces between its words. Not punctuation or spaces beyond
/// ASCII (`«`, `。`, a no-break space), nor the letters of scripts written without spaces
/// (Chinese, Japanese, Thai) or whose particles are glued to what they follow (Korean):
/// `电话13812345678`, `IBAN DE89370400440532013000。`, `010-1234-5678로`.
fn continues_word(c: char) -> bool {
    c.is_alphanumeric() && !in_unspaced_script(c)
}

/// Scripts written without spaces between words, by their Unicode blocks.
fn in_unspaced_script(c: char) -> bool {
    matches!(u32::from(c),
        0x0E00..=0x0EFF // Thai, Lao
        | 0x1000..=0x109F // Myanmar
        | 0x1100..=0x11FF // Hangul Jamo
        | 0x1780..=0x17FF // Khmer
        | 0x2E80..=0x2FFF // CJK and Kangxi radicals
        | 0x3000..=0x31FF // CJK symbols, kana, Bopomofo, Hangul compatibility Jamo
        | 0x3400..=0x4DBF // CJK extension A
        | 0x4E00..=0x9FFF // CJK unified ideographs
        | 0xA960..=0xA97F // Hangul Jamo extended A
        | 0xAC00..=0xD7FF // Hangul syllables, Jamo extended B
        | 0xF900..=0xFAFF // CJK compatibility ideographs
        | 0xFF00..=0xFFEF // halfwidth and fullwidth forms
        | 0x20000..=0x3FFFF // CJK extensions B and after
    )
}

/// The character starting at `i`, if the bytes there are one in UTF-8.
fn char_at(hay: &[u8], i: usize) -> Option<char> {
    let len = match *hay.get(i)? {
        0x00..=0x7F => 1,
        0xC0..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xF7 => 4,
        _ => return None,
    };
    std::str::from_utf8(hay.get(i..i + len)?).ok()?.chars().next()
}

/// Whether the character ending at `s` continues a word into a match starting there
/// ([`continues_word`]; bytes that are not UTF-8 count as a word's, as they always did).
pub(crate) fn word_before(hay: &[u8], s: usize) -> bool {
    let Some(&b) = s.checked_sub(1).and_then(|i| hay.get(i)) else {
        return false;
    };
    if b < 0x80 {
        return b.is_ascii_alphanumeric();
    }
    let lead = (s.saturating_sub(4)..s).rev().find(|&j| hay[j] & 0xC0 != 0x80);
    match lead.and_then(|j| Some((j, char_at(hay, j)?))) {
        Some((j, c)) if j + c.len_utf8() == s => continues_word(c),
        _ => true,
    }
}

/// Whether the character starting at `e` continues a word from a match ending there.
pub(crate) fn word_after(hay: &[u8], e: usize) -> bool {
    match hay.get(e) {
        None => false,
        Some(&b) if b < 0x80 => b.is_ascii_alphanumeric(),
        Some(_) => char_at(hay, e).is_none_or(continues_word),
    }
}

pub(crate) fn bounded(hay: &[u8], s: usize, e: usize, boundary: Boundary) -> bool {
    let before = s.checked_sub(1).map(|i| hay[i]);
    let after = hay.get(e).copied();
    match boundary {
        Boundary::None => true,
        Boundary::NoDigits => !before.is_some_and(|b| b.is_ascii_digit()) && !word_after(hay, e),
        Boundary::Word => !word_before(hay, s) && !word_after(hay, e),
        Boundary::Number => {
            let joins = |b: u8| matches!(b, b'.' | b'-' | b'/' | b':' | b',');
            let before_bad = word_before(hay, s)
                || before.is_some_and(|b| joins(b) && s >= 2 && hay[s - 2].is_ascii_digit() && b != b',');
            let after_bad = word_after(hay, e)
                || after.is_some_and(|b| joins(b) && hay.get(e + 1).is_some_and(u8::is_ascii_digit) && b != b',');
            !before_bad && !after_bad
        }
    }
}

/// A validator and the score a value that passes it gets (`None`: keep the pattern's).
pub(crate) struct Check {
    pub(crate) name: Arc<str>,
    pub(crate) test: fn(&[u8]) -> bool,
    pub(crate) score: Option<f32>,
    /// A checksum (evidence `checksum`) or only a format rule (evidence `pattern`).
    pub(crate) checksum: bool,
    /// Whether a value that fails the check is dropped (else it keeps the pattern's score).
    pub(crate) required: bool,
}

/// A pattern's name and score; its regex is one of the recognizer's automaton's patterns.
pub(crate) struct Pattern {
    pub(crate) name: Arc<str>,
    pub(crate) score: f32,
}

/// The common recognizer: named patterns, an optional validator, a boundary rule.
pub(crate) struct PatternRecognizer {
    pub(crate) meta: Meta,
    /// All patterns in one automaton (one pass over the text), in priority order.
    pub(crate) re: Re,
    pub(crate) patterns: Vec<Pattern>,
    pub(crate) check: Option<Check>,
    pub(crate) boundary: Boundary,
    pub(crate) neighbors: bool,
    /// The patterns' sources when they may join a [`joint::Joint`] automaton (ASCII, and
    /// matches start where words or digits start); empty otherwise.
    pub(crate) sources: Vec<String>,
}

impl Recognizer for PatternRecognizer {
    fn needs_neighbors(&self) -> bool {
        self.neighbors
    }

    fn meta(&self) -> &Meta {
        &self.meta
    }

    fn as_joinable(&self) -> Option<&PatternRecognizer> {
        (!self.sources.is_empty()).then_some(self)
    }

    fn find(&self, hay: &[u8], out: &mut Vec<Hit>) {
        let mut pos = 0;
        while let Some((s, e, first)) = self.re.find_any_at(hay, pos) {
            if s == e {
                pos = next_char(hay, s);
                continue;
            }
            // the pattern that matched here first, then (if it is refused) the others that
            // also match at this start, in priority order
            let mut accepted = self.accept(hay, s, e, first);
            if accepted.is_none() {
                for k in first + 1..self.patterns.len() {
                    if let Some(end) = self.re.find_pattern_at(hay, s, k)
                        && end > s
                        && let Some(hit) = self.accept(hay, s, end, k)
                    {
                        accepted = Some(hit);
                        break;
                    }
                }
            }
            match accepted {
                Some(hit) => {
                    pos = hit.end.max(next_char(hay, s));
                    out.push(hit);
                }
                None => pos = next_start(hay, s, self.boundary),
            }
        }
    }
}

impl PatternRecognizer {
    /// The hit of pattern `index` matching `hay[s..e]`, if the boundary rule and the
    /// validator accept it.
    pub(crate) fn accept(&self, hay: &[u8], s: usize, e: usize, index: usize) -> Option<Hit> {
        let p = self.patterns.get(index)?;
        if !bounded(hay, s, e, self.boundary) {
            return None;
        }
        // the validator first: most candidates are refused, and those need no evidence
        let passed = match &self.check {
            Some(check) if (check.test)(&hay[s..e]) => Some(check),
            Some(check) if check.required => return None,
            _ => None,
        };
        let mut evidence = Vec::with_capacity(2);
        evidence.push(Evidence::new(EvidenceKind::Pattern, p.name.clone()));
        let mut score = p.score;
        if let Some(check) = passed {
            let kind = if check.checksum {
                EvidenceKind::Checksum
            } else {
                EvidenceKind::Pattern
            };
            evidence.push(Evidence::new(kind, check.name.clone()));
            if let Some(v) = check.score {
                score = v;
            }
        }
        Some(Hit::new(s, e, score, evidence))
    }
}

/// Where the next match can start after a rejected one at `s`: with a boundary rule, no
/// match starts right after a letter or digit, so the rest of the word is skipped (this keeps
/// long digit runs from being searched once per digit).
pub(crate) fn next_start(hay: &[u8], s: usize, boundary: Boundary) -> usize {
    let mut i = next_char(hay, s);
    if matches!(boundary, Boundary::Word | Boundary::Number) {
        while i < hay.len() && word_before(hay, i) {
            i = next_char(hay, i);
        }
    }
    i
}

/// The offset of the character after the one at `i` (UTF-8 aware, so spans stay on
/// character boundaries).
pub(crate) fn next_char(hay: &[u8], i: usize) -> usize {
    let mut j = i + 1;
    while j < hay.len() && (hay[j] & 0xC0) == 0x80 {
        j += 1;
    }
    j
}

pub(crate) fn words(list: &[&str]) -> Vec<String> {
    list.iter().map(|w| (*w).to_owned()).collect()
}
