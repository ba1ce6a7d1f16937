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
pub(crate) mod spelled_email;

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

/// Labels that, just before a match, say it is not this entity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Veto {
    None,
    /// `build`, `order #`, `invoice`, `SKU`, `version`… ([`crate::context::labelled`]).
    Labels,
    /// A version's name only (`version 10.0.0.1`, `firmware 3.19.20.206`,
    /// [`crate::context::VERSION_LABELS`]): an address after `order` or `case` is still one.
    Versions,
}

/// What every recognizer has: the entity type it finds, the tier it runs in and the words
/// that raise the score when they stand near a finding.
pub(crate) struct Meta {
    pub(crate) entity: Arc<str>,
    pub(crate) tier: Tier,
    pub(crate) context: Vec<String>,
    /// Which labels just before a match say it is some other number.
    pub(crate) label_veto: Veto,
    /// Whether a context word near a match outweighs a label before it (`Order:
    /// 4532 0151 1283 0366 (Visa)` is a card: the order was paid with it).
    pub(crate) context_beats_labels: bool,
    /// Words that, just before a match, say it is something else too (a phone number's:
    /// [`crate::context::IDENTIFIER_NAMES`]).
    pub(crate) not_after: Option<&'static crate::context::LabelSet>,
}

impl Meta {
    pub(crate) fn new(entity: &str, tier: Tier, context: Vec<String>) -> Self {
        Self {
            entity: Arc::from(entity),
            tier,
            context,
            label_veto: Veto::None,
            context_beats_labels: false,
            not_after: None,
        }
    }

    pub(crate) fn vetoed_by_labels(mut self) -> Self {
        self.label_veto = Veto::Labels;
        self
    }

    pub(crate) fn unless_named_near(mut self) -> Self {
        self.context_beats_labels = true;
        self
    }

    pub(crate) fn vetoed_by_versions(mut self) -> Self {
        self.label_veto = Veto::Versions;
        self
    }

    pub(crate) fn not_after(mut self, names: &'static crate::context::LabelSet) -> Self {
        self.not_after = Some(names);
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
    /// Whether it reads a no-break space between digits as a space and a Unicode dash between
    /// digits as a hyphen: numbers are grouped with them (`01\u{a0}42\u{a0}68\u{a0}53\u{a0}00`
    /// in French typography, `FR76\u{a0}3000…` and `212\u{2011}555\u{2011}0123` from a word
    /// processor). The scanner then gives it the buffer with those written in ASCII
    /// ([`crate::mapped::ascii_separators`], rewritten once for all such recognizers) and
    /// places its hits back.
    fn reads_separators_in_ascii(&self) -> bool {
        false
    }
    /// A hit found in a buffer of hot tokens, read again in the text it was placed in, for
    /// what that buffer does not hold (a phone's extension after a word, ` ext. 123`; a
    /// currency after an amount, `12 345 678 €`): false when the text says it is none.
    fn read_in_text(&self, _text: &[u8], _hit: &mut Hit) -> bool {
        true
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
/// Circled, parenthesized and superscript digits (`①`, `²`) are list markers and footnotes,
/// not a number's digits; the ordinal indicators `º` and `ª` are number signs (`nº4111…`).
fn continues_word(c: char) -> bool {
    let code = u32::from(c);
    if matches!(
        code,
        0xAA | 0xB2 | 0xB3 | 0xB9 | 0xBA | 0x2070..=0x209F | 0x2150..=0x218F | 0x2460..=0x24FF | 0x2776..=0x2793 | 0x1F100..=0x1F1FF
    ) {
        return false;
    }
    c.is_alphanumeric() && !in_unspaced_script(code)
}

/// The blocks of combining marks that follow letters of any script: a mark belongs to the
/// character before it (a decomposed `ü` joins a word as the composed one does).
fn is_combining_mark(code: u32) -> bool {
    matches!(code, 0x0300..=0x036F | 0x1AB0..=0x1AFF | 0x1DC0..=0x1DFF | 0x20D0..=0x20FF | 0xFE20..=0xFE2F)
}

/// Scripts written without spaces between words, by their Unicode blocks.
fn in_unspaced_script(code: u32) -> bool {
    // fullwidth digits and Latin letters are a number's or a word's, as their ASCII forms
    let fullwidth_alnum = matches!(code, 0xFF10..=0xFF19 | 0xFF21..=0xFF3A | 0xFF41..=0xFF5A);
    !fullwidth_alnum
        && matches!(code,
            0x0E00..=0x0EFF // Thai, Lao
            | 0x0F00..=0x0FFF // Tibetan
            | 0x1000..=0x109F // Myanmar
            | 0x1100..=0x11FF // Hangul Jamo
            | 0x1780..=0x17FF // Khmer
            | 0x1950..=0x19DF // Tai Le, New Tai Lue
            | 0x1A20..=0x1AAF // Tai Tham
            | 0x2E80..=0x2FFF // CJK and Kangxi radicals
            | 0x3000..=0x33FF // CJK symbols, kana, Bopomofo, Hangul compatibility Jamo, enclosed
            | 0x3400..=0x4DBF // CJK extension A
            | 0x4E00..=0x9FFF // CJK unified ideographs
            | 0xA000..=0xA4CF // Yi
            | 0xA960..=0xA97F // Hangul Jamo extended A
            | 0xA9E0..=0xA9FF // Myanmar extended B
            | 0xAA60..=0xAA7F // Myanmar extended A
            | 0xAA80..=0xAADF // Tai Viet
            | 0xAC00..=0xD7FF // Hangul syllables, Jamo extended B
            | 0xF900..=0xFAFF // CJK compatibility ideographs
            | 0xFF00..=0xFFEF // halfwidth and fullwidth forms
            | 0x1AFF0..=0x1B16F // kana extended and supplement
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

/// What a character beyond ASCII is to the words around it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Beyond {
    /// A letter, digit or mark of a word ([`continues_word`]), or a byte that is not UTF-8.
    Word,
    /// A letter of a script written without spaces: a word of its own language, a separator
    /// to the words of others.
    Unspaced,
    /// Punctuation, a space, a symbol.
    Other,
}

fn beyond(c: Option<char>) -> Beyond {
    match c {
        None => Beyond::Word,
        Some(c) if is_combining_mark(u32::from(c)) || continues_word(c) => Beyond::Word,
        Some(c) if c.is_alphanumeric() => Beyond::Unspaced,
        Some(_) => Beyond::Other,
    }
}

/// The character at `i` (its first byte beyond ASCII): what it is, and its length (1 for a
/// byte that is not UTF-8).
pub(crate) fn beyond_at(hay: &[u8], i: usize) -> (Beyond, usize) {
    let c = char_at(hay, i);
    (beyond(c), c.map_or(1, char::len_utf8))
}

/// The character ending at `s` (its last byte beyond ASCII): what it is, and where it starts.
pub(crate) fn beyond_before(hay: &[u8], s: usize) -> (Beyond, usize) {
    match char_before(hay, s) {
        Some(Some((j, c))) => (beyond(Some(c)), j),
        _ => (Beyond::Word, s.saturating_sub(1)),
    }
}

/// At most this many combining marks are looked through to the letter they belong to
/// (Unicode's stream-safe text has at most 30 in a row); behind more, a word goes on.
const MARKS_LOOKED_THROUGH: usize = 32;

/// The character ending at `s` and where it starts; `None` at the text's start, `Some(None)`
/// for bytes that are not UTF-8.
fn char_before(hay: &[u8], s: usize) -> Option<Option<(usize, char)>> {
    let last = *hay.get(s.checked_sub(1)?)?;
    if last < 0x80 {
        return Some(Some((s - 1, char::from(last))));
    }
    let lead = (s.saturating_sub(4)..s).rev().find(|&j| hay[j] & 0xC0 != 0x80);
    Some(lead.and_then(|j| char_at(hay, j).filter(|c| j + c.len_utf8() == s).map(|c| (j, c))))
}

/// The letter of a control character escaped at `at` (`\n`, `\t`, `\r`, `\f`, `\b`, `\v`,
/// `\a`: a line break or a tab escaped in a log's JSON or a quoted string), when `hay[at]` is
/// one and the backslash before it is not itself escaped (after `\\`, `C:\\n4111…`, the letter
/// is a letter). Counted only before those letters: this is asked before every candidate.
pub(crate) fn escaped_control(hay: &[u8], at: usize) -> Option<u8> {
    let letter = *hay.get(at)?;
    if !matches!(letter, b'n' | b't' | b'r' | b'f' | b'b' | b'v' | b'a') {
        return None;
    }
    let backslashes = hay.get(..at)?.iter().rev().take_while(|&&c| c == b'\\').count();
    (backslashes % 2 == 1).then_some(letter)
}

/// Whether the character ending at `s` continues a word into a match starting there
/// ([`continues_word`]; combining marks as the letter they belong to; bytes that are not
/// UTF-8 count as a word's, as they always did).
pub(crate) fn word_before(hay: &[u8], s: usize) -> bool {
    // ASCII, nearly always: a byte test, as before characters beyond it were told apart
    if let Some(&b) = s.checked_sub(1).and_then(|i| hay.get(i))
        && b < 0x80
    {
        // the letter of an escaped control character (`"note":"paid\n4111111111111111"`) is
        // no word
        return b.is_ascii_alphanumeric() && escaped_control(hay, s - 1).is_none();
    }
    let mut at = s;
    for _ in 0..=MARKS_LOOKED_THROUGH {
        match char_before(hay, at) {
            None => return false,
            Some(None) => return true,
            Some(Some((j, c))) if is_combining_mark(u32::from(c)) => at = j,
            Some(Some((_, c))) => return continues_word(c),
        }
    }
    true
}

/// Whether the character starting at `e` continues a word from a match ending there; marks
/// right after a match belong to its last character, so the character after them decides
/// (`4111111111111111\u{301} ` stands alone).
pub(crate) fn word_after(hay: &[u8], e: usize) -> bool {
    let mut at = e;
    for _ in 0..=MARKS_LOOKED_THROUGH {
        match hay.get(at) {
            None => return false,
            Some(&b) if b < 0x80 => return b.is_ascii_alphanumeric(),
            Some(_) => match char_at(hay, at) {
                Some(c) if is_combining_mark(u32::from(c)) => at += c.len_utf8(),
                Some(c) => return continues_word(c),
                None => return true,
            },
        }
    }
    true
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
    /// Whether a match has an email address's edges: it ends before a `_` (the pattern
    /// reads a top-level domain up to one: `_jo@example.com_`, in Markdown italics) and
    /// starts after a percent escape of a byte no local part holds (`%` is one of its
    /// characters: `q=100%25%20jo@example.com`, a query string, holds `jo@example.com`).
    pub(crate) email_edges: bool,
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
        let (s, e) = if self.email_edges {
            let e = if e > s && hay[e - 1] == b'_' { e - 1 } else { e };
            (after_escaped_delimiter(hay, s, e)?, e)
        } else {
            (s, e)
        };
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

/// Where the email address matched at `hay[s..e]` starts: after the last percent escape in
/// its local part of a byte no unquoted local part holds (white space, a control,
/// `"(),:;<>@[\]`); `None` if what is left starts with no letter or digit, or the match
/// starts inside such an escape (`%20jo` is no local part `20jo`; `%ada`, SQL's wildcard
/// before `ada`, is one).
fn after_escaped_delimiter(hay: &[u8], s: usize, e: usize) -> Option<usize> {
    let delimiter = |w: &[u8]| {
        let hex = |b: u8| char::from(b).to_digit(16);
        match w {
            [b'%', hi, lo] => hex(*hi).zip(hex(*lo)).is_some_and(|(hi, lo)| {
                let b = (hi << 4 | lo) as u8;
                b < 0x20 || b == 0x7f || b" \"(),:;<>@[\\]".contains(&b)
            }),
            _ => false,
        }
    };
    let inside_one = (1..=2).any(|k| {
        s.checked_sub(k)
            .is_some_and(|i| hay.get(i..i + 3).is_some_and(delimiter))
    });
    if inside_one {
        return None;
    }
    let local = &hay[s..e];
    let local = &local[..memchr::memchr(b'@', local).unwrap_or(local.len())];
    match local.windows(3).rposition(delimiter) {
        None => Some(s),
        Some(i) => {
            let start = s + i + 3;
            hay.get(start)
                .filter(|b| b.is_ascii_alphanumeric() || **b >= 0x80)
                .map(|_| start)
        }
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
