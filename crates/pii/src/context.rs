//! Context words: whole words within a few words before or after a finding raise its score.

use std::borrow::Cow;
use std::cell::Cell;
use std::sync::Arc;

use rustc_hash::FxHashMap;
use std::sync::LazyLock;

use crate::recognizers::{Beyond, beyond_at, beyond_before, escaped_control};

/// Words looked at before a finding.
const BEFORE: usize = 5;
/// Words looked at after a finding.
const AFTER: usize = 3;
/// How much a context word adds (Presidio's default similarity factor).
pub(crate) const BOOST: f32 = 0.35;
/// The least score a finding with context gets.
pub(crate) const MIN_WITH_CONTEXT: f32 = 0.4;

pub(crate) fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b >= 0x80 || b == b'#'
}

/// What the character at `i` is to a context word, and its length: ASCII letters, digits
/// and `#`, and beyond ASCII letters, digits and marks of scripts written with spaces (and
/// the `°` of `n°`) are a word's; letters of scripts written without spaces are a word's of
/// their own (`我的SSN是536-90-4399`: `SSN` is a word, `주민등록번호` too); punctuation
/// (`：`, `«`, a no-break space) is none.
fn word_char_at(text: &[u8], i: usize) -> (Beyond, usize) {
    match text[i] {
        b if b < 0x80 => (ascii_kind(b), 1),
        0xC2 if text.get(i + 1) == Some(&0xB0) => (Beyond::Word, 2),
        _ => beyond_at(text, i),
    }
}

/// As [`word_char_at`], for the character ending at `i`: what it is, and where it starts.
fn word_char_before(text: &[u8], i: usize) -> (Beyond, usize) {
    match text[i - 1] {
        b if b < 0x80 => (ascii_kind(b), i - 1),
        0xB0 if i >= 2 && text[i - 2] == 0xC2 => (Beyond::Word, i - 2),
        _ => beyond_before(text, i),
    }
}

fn ascii_kind(b: u8) -> Beyond {
    if b.is_ascii_alphanumeric() || b == b'#' {
        Beyond::Word
    } else {
        Beyond::Other
    }
}

/// The first context word of `list` found near `[start, end)`, compared case-insensitively.
#[cfg(test)]
pub(crate) fn find(text: &[u8], start: usize, end: usize, list: &[String]) -> Option<String> {
    let mut vocabulary = Vocabulary::default();
    let set = vocabulary.add(list);
    Window::default()
        .find(text, start, end, &vocabulary, &set)
        .map(|w| w.to_string())
}

/// Every context word of a scanner's recognizers, numbered, so that the words around a span
/// are looked up once and each recognizer's list is a set of numbers.
#[derive(Debug)]
pub(crate) struct Vocabulary {
    ids: FxHashMap<Box<[u8]>, u32>,
    /// A bit for each (length, first byte, last byte) of the words, lower case: most words
    /// of a text (numbers, identifiers, other words) are told apart without hashing.
    shapes: [u64; SHAPE_WORDS],
    /// Each number's word, as the first list that held it wrote it.
    words: Vec<Arc<str>>,
}

/// The longest context word looked up (longer words in the text cannot be one).
const LONGEST: usize = 48;

impl Default for Vocabulary {
    fn default() -> Self {
        Self {
            ids: FxHashMap::default(),
            shapes: [0; SHAPE_WORDS],
            words: Vec::new(),
        }
    }
}

/// The bits of [`Vocabulary::shapes`]: 16,384, of which a few hundred are set, so that a
/// word of prose is hashed about one time in thirty.
const SHAPE_BITS: u32 = 14;
const SHAPE_WORDS: usize = (1 << SHAPE_BITS) / 64;

/// A word's bit in [`Vocabulary::shapes`]: (word, bit) of its length, first and last byte.
fn shape_bit(word: &[u8]) -> (usize, u64) {
    let (first, last) = match word {
        [first, .., last] => (*first, *last),
        [only] => (*only, *only),
        [] => (0, 0),
    };
    let key = (word.len() as u32)
        .wrapping_mul(0x9E37_79B9)
        .wrapping_add(u32::from(first.to_ascii_lowercase()).wrapping_mul(0x85EB_CA6B))
        .wrapping_add(u32::from(last.to_ascii_lowercase()).wrapping_mul(0xC2B2_AE35));
    let bit = (key >> (32 - SHAPE_BITS)) as usize % (SHAPE_WORDS * 64);
    (bit / 64, 1 << (bit % 64))
}

impl Vocabulary {
    /// Numbers the words of `list` (compared case-insensitively in ASCII) and returns
    /// their set.
    pub(crate) fn add(&mut self, list: &[String]) -> WordSet {
        let mut set = WordSet::default();
        for w in list {
            if w.is_empty() || w.len() > LONGEST {
                continue;
            }
            let key: Box<[u8]> = w.as_bytes().to_ascii_lowercase().into_boxed_slice();
            let (at, bit) = shape_bit(&key);
            self.shapes[at] |= bit;
            let next = self.words.len() as u32;
            let id = *self.ids.entry(key).or_insert_with(|| {
                self.words.push(Arc::from(w.as_str()));
                next
            });
            set.insert(id);
        }
        set
    }

    fn id(&self, word: &[u8]) -> Option<u32> {
        if word.is_empty() || word.len() > LONGEST {
            return None;
        }
        let (at, bit) = shape_bit(word);
        if self.shapes[at] & bit == 0 {
            return None;
        }
        self.ids.get(ascii_lower(word, &mut [0u8; LONGEST])?).copied()
    }
}

/// One recognizer's context words, as numbers of a [`Vocabulary`].
#[derive(Debug, Default, Clone)]
pub(crate) struct WordSet(Vec<u64>);

impl WordSet {
    fn insert(&mut self, id: u32) {
        let (i, bit) = (id as usize / 64, id % 64);
        if self.0.len() <= i {
            self.0.resize(i + 1, 0);
        }
        self.0[i] |= 1 << bit;
    }

    fn contains(&self, id: u32) -> bool {
        self.0.get(id as usize / 64).is_some_and(|w| w & (1 << (id % 64)) != 0)
    }
}

/// The words around one span, looked up once for every recognizer with a hit there (on
/// text dense with numbers several recognizers find the same number), and whether a label
/// stands before it.
#[derive(Debug, Default)]
pub(crate) struct Window {
    span: Option<(usize, usize)>,
    /// The words before (nearest first), then those after (nearest first), as context
    /// word numbers (`None`: no recognizer's context word) and places.
    words: Vec<(Option<u32>, usize, usize)>,
    label: Option<(usize, bool)>,
    /// The words looked up lately, by place (start, end) in a table of [`MEMO`] slots: the
    /// windows of neighbouring spans share most of their words.
    memo: Vec<(usize, usize, Option<u32>)>,
    /// Every word of the text (start, end, number), when [`Window::read_all`] read them
    /// once: where spans stand close together each window read its words again.
    all: Vec<(usize, usize, Option<u32>)>,
}

/// Slots of [`Window::memo`].
const MEMO: usize = 64;

impl Window {
    /// The first word of `set` near `[start, end)`: the words before, nearest first, then
    /// those after.
    pub(crate) fn find<'v>(
        &mut self,
        text: &[u8],
        start: usize,
        end: usize,
        vocabulary: &'v Vocabulary,
        set: &WordSet,
    ) -> Option<&'v Arc<str>> {
        self.find_placed(text, (start, end), vocabulary, set)
            .map(|(word, ..)| word)
    }

    /// [`Self::find`], with where the word stands.
    fn find_placed<'v>(
        &mut self,
        text: &[u8],
        (start, end): (usize, usize),
        vocabulary: &'v Vocabulary,
        set: &WordSet,
    ) -> Option<(&'v Arc<str>, usize, usize)> {
        if set.0.is_empty() {
            return None;
        }
        if self.span != Some((start, end)) {
            self.read(text, start, end, vocabulary);
        }
        self.words
            .iter()
            .find(|&&(id, s, e)| id.is_some_and(|id| set.contains(id)) && !in_address(text, s, e))
            .and_then(|&(id, s, e)| Some((vocabulary.words.get(id? as usize)?, s, e)))
    }

    /// Whether a word of `set` stands near `[start, end)` on its own line.
    pub(crate) fn on_the_line(
        &mut self,
        text: &[u8],
        (start, end): (usize, usize),
        vocabulary: &Vocabulary,
        set: &WordSet,
    ) -> bool {
        self.find_placed(text, (start, end), vocabulary, set)
            .is_some_and(|(_, s, e)| {
                let between = if e <= start {
                    &text[e..start]
                } else {
                    &text[end..s.max(end)]
                };
                memchr::memchr(b'\n', between).is_none()
            })
    }

    /// [`labelled`], remembered for the last start asked about.
    pub(crate) fn labelled(&mut self, text: &[u8], start: usize) -> bool {
        match self.label {
            Some((at, yes)) if at == start => yes,
            _ => {
                let yes = labelled(text, start);
                self.label = Some((start, yes));
                yes
            }
        }
    }

    /// The context word number of `text[s..e]`, looked up once per window.
    fn id(&mut self, text: &[u8], (s, e): (usize, usize), vocabulary: &Vocabulary) -> Option<u32> {
        if self.memo.is_empty() {
            self.memo = vec![(usize::MAX, 0, None); MEMO];
        }
        let slot = (s ^ e.wrapping_mul(31)) % MEMO;
        match self.memo.get(slot) {
            Some(&(ms, me, id)) if (ms, me) == (s, e) => id,
            _ => {
                let id = vocabulary.id(&text[s..e]);
                if let Some(m) = self.memo.get_mut(slot) {
                    *m = (s, e, id);
                }
                id
            }
        }
    }

    /// Reads every word of `text` once, for the windows of spans that stand close
    /// together (text dense with identifiers: a window is then a lookup in this list).
    pub(crate) fn read_all(&mut self, text: &[u8], vocabulary: &Vocabulary) {
        self.all.clear();
        let mut i = 0;
        while let Some((s, e)) = word_from(text, i) {
            self.all.push((s, e, vocabulary.id(&text[s..e])));
            i = e;
        }
    }

    fn read(&mut self, text: &[u8], start: usize, end: usize, vocabulary: &Vocabulary) {
        self.span = Some((start, end));
        self.words.clear();
        if self.all.is_empty() {
            self.read_around(text, start, end, vocabulary);
        } else {
            self.read_listed(text, start, end, vocabulary);
        }
        self.keep_other_lines_only_for_a_lone_value(text, start, end);
    }

    /// A word on another line than the span's is context only when the span's own line has
    /// no word on that side of it: `Phone:\n+44 20 7946 0958` (a value alone under its
    /// label), not `BSN: 234567818\nOrder total 314159265` (a line says what its number is;
    /// the line before names another). Read only as far as the window's words reach.
    fn keep_other_lines_only_for_a_lone_value(&mut self, text: &[u8], start: usize, end: usize) {
        let reach_before = self.words.iter().map(|w| w.1).filter(|&s| s < start).min();
        let reach_after = self.words.iter().map(|w| w.2).filter(|&e| e > end).max();
        let letter = |b: &u8| b.is_ascii_alphabetic() || *b >= 0x80;
        let line_start = reach_before
            .and_then(|from| memchr::memrchr(b'\n', &text[from..start]).map(|i| from + i + 1))
            .filter(|&ls| text[ls..start].iter().any(letter));
        let line_end = reach_after
            .and_then(|to| memchr::memchr(b'\n', &text[end..to.min(text.len())]).map(|i| end + i))
            .filter(|&le| text[end..le].iter().any(letter));
        if line_start.is_none() && line_end.is_none() {
            return;
        }
        self.words
            .retain(|&(_, s, e)| !(line_start.is_some_and(|ls| e < ls) || line_end.is_some_and(|le| s > le)));
    }

    /// [`Self::read_around`] from the list of every word: the same words, a word the span
    /// cuts counted only up to the span (as the scan from the span's edge reads it).
    fn read_listed(&mut self, text: &[u8], start: usize, end: usize, vocabulary: &Vocabulary) {
        let all = std::mem::take(&mut self.all);
        // before: the words that start before the span, nearest first
        let mut k = all.partition_point(|w| w.0 < start);
        let mut taken = 0;
        if let Some(&(ws, we, _)) = k.checked_sub(1).and_then(|i| all.get(i))
            && we > start
        {
            let id = self.id(text, (ws, start), vocabulary);
            self.words.push((id, ws, start));
            taken = 1;
            k -= 1;
        }
        while taken < BEFORE && k > 0 {
            k -= 1;
            self.words.extend(all.get(k).map(|&(s, e, id)| (id, s, e)));
            taken += 1;
        }
        // after: the words that end after the span, nearest first
        let mut k = all.partition_point(|w| w.1 <= end);
        let mut taken = 0;
        if let Some(&(ws, we, _)) = all.get(k)
            && ws < end
        {
            let id = self.id(text, (end, we), vocabulary);
            self.words.push((id, end, we));
            taken = 1;
            k += 1;
        }
        while taken < AFTER && k < all.len() {
            self.words.extend(all.get(k).map(|&(s, e, id)| (id, s, e)));
            taken += 1;
            k += 1;
        }
        self.all = all;
    }

    /// The words around `[start, end)`, read from the text: [`BEFORE`] words back from
    /// the span's start, [`AFTER`] words on from its end.
    fn read_around(&mut self, text: &[u8], start: usize, end: usize, vocabulary: &Vocabulary) {
        // backwards
        let mut i = start;
        for _ in 0..BEFORE {
            let Some((s, e)) = word_ending_before(text, i) else {
                break;
            };
            let id = self.id(text, (s, e), vocabulary);
            self.words.push((id, s, e));
            i = s;
        }
        // forwards
        let mut j = end;
        for _ in 0..AFTER {
            let Some((s, e)) = word_from(text, j) else {
                break;
            };
            let id = self.id(text, (s, e), vocabulary);
            self.words.push((id, s, e));
            j = e;
        }
    }
}

/// How far from a word an email's `@` is looked for: an address's local part and a
/// domain's label are at most 64 bytes.
const ADDRESS_REACH: usize = 64;

/// Whether the word `text[s..e]` is part of an email address (`floor.bakker+bank@...`,
/// `...@bank.example`): no context word then, as `bank` there says nothing of a number
/// nearby. An `@` within [`ADDRESS_REACH`] bytes, nothing that ends an address between
/// (`email:` and `user=` before an address stay words). Asked only of a word that is a
/// context word; in prose the byte next to it ends the question.
fn in_address(text: &[u8], s: usize, e: usize) -> bool {
    // a character beyond ASCII that is no word's ends an address too (`，`, `：`, a Chinese
    // letter: `SSN：536-90-4399，zhang@example.com` holds `SSN` in no address)
    let ends = |i: usize| ends_address(&text[i]) || (text[i] >= 0xC0 && beyond_at(text, i).0 != Beyond::Word);
    let at = |found: Option<usize>| found.is_some_and(|i| text[i] == b'@');
    at((e..text.len().min(e + ADDRESS_REACH)).find(|&i| text[i] == b'@' || ends(i)))
        || at((s.saturating_sub(ADDRESS_REACH)..s)
            .rev()
            .find(|&i| text[i] == b'@' || ends(i)))
}

/// Bytes that end an email address in running text or a record.
fn ends_address(b: &u8) -> bool {
    crate::lexer::is_space(*b)
        || matches!(
            b,
            b',' | b';'
                | b'|'
                | b'<'
                | b'>'
                | b'"'
                | b'\''
                | b'('
                | b')'
                | b'['
                | b']'
                | b'{'
                | b'}'
                | b'='
                | b':'
                | b'/'
        )
}

/// The first word (a run of characters of one kind, [`word_char_at`]) at or after `from`, as
/// (start, end).
fn word_from(text: &[u8], from: usize) -> Option<(usize, usize)> {
    let mut s = from;
    let kind = loop {
        // prose: the bytes between words are ASCII, told apart without decoding
        s += text.get(s..)?.iter().position(|&b| is_word(b))?;
        match word_char_at(text, s) {
            (Beyond::Other, len) => s += len,
            (kind, _) => break kind,
        }
    };
    let mut e = s;
    while e < text.len() {
        match word_char_at(text, e) {
            (k, len) if k == kind => e += len,
            _ => break,
        }
    }
    Some((s, e))
}

/// The last word (as [`word_from`] reads them) ending at or before `end`, as (start, end).
pub(crate) fn word_ending_before(text: &[u8], end: usize) -> Option<(usize, usize)> {
    let mut i = end;
    let kind = loop {
        if i == 0 {
            return None;
        }
        match word_char_before(text, i) {
            (Beyond::Other, j) => i = j,
            (kind, _) => break kind,
        }
    };
    let e = i;
    while i > 0 {
        match word_char_before(text, i) {
            (k, j) if k == kind => i = j,
            _ => break,
        }
    }
    Some((i, e))
}

/// The letters of a script written without spaces that end at `e`, at most 48 bytes of them.
fn unspaced_run_before(text: &[u8], e: usize) -> &[u8] {
    let mut s = e;
    while s > 0 && e - s < LONGEST && text[s - 1] >= 0x80 {
        match beyond_before(text, s) {
            (Beyond::Unspaced, j) => s = j,
            _ => break,
        }
    }
    &text[s..e]
}

/// Names of a version, before four dotted numbers that are one and no network address
/// (`firmware 3.19.20.206`, `版本号 10.0.0.1`), in the languages the context words cover.
pub(crate) const VERSION_LABELS: &[&str] = &[
    "version",
    "ver",
    "v",
    "vers",
    "release",
    "build",
    "firmware",
    "rev",
    "revision",
    "versión",
    "versione",
    "versie",
    "versão",
    "версия",
    "版本",
    "版本号",
    "バージョン",
    "버전",
];

/// Whether the dotted numbers at `[start, end)` are named a version: the word just before
/// them (past spaces, quotes and `:#=(`; not a key's last word, `build_host`) or the field
/// they stand in (`app_version`) is one of [`VERSION_LABELS`]. Not with a port or a prefix
/// after them (`10.0.0.1:8080`, `10.0.0.1/24`): a version has none.
pub(crate) fn named_version(text: &[u8], start: usize, end: usize, field_words: &[String]) -> bool {
    let is_label = |w: &[u8]| VERSION_LABELS.iter().any(|l| l.as_bytes().eq_ignore_ascii_case(w));
    let digit_at = |i: usize| text.get(i).is_some_and(u8::is_ascii_digit);
    if matches!(text.get(end), Some(b':' | b'/')) && digit_at(end + 1) {
        return false;
    }
    if head_word(field_words).is_some_and(|w| is_label(w.as_bytes())) {
        return true;
    }
    let mut i = start;
    loop {
        match escaped_control(text, i.wrapping_sub(1)) {
            // an escaped tab is a tab; another control character (a line break) ends the
            // line the name would be on
            Some(b't') => i -= 2,
            Some(_) => return false,
            None if i > 0 && matches!(text[i - 1], b' ' | b'\t' | b'#' | b':' | b'=' | b'(' | b'"' | b'\'') => i -= 1,
            None => break,
        }
    }
    match word_ending_before(text, i) {
        Some((s, e)) if e == i => {
            // (a word after an escaped control character starts after its letter: `\nv`)
            let s = if escaped_control(text, s).is_some() { s + 1 } else { s };
            let word = &text[s..e];
            !(s > 0 && text[s - 1] == b'_')
                && (is_label(word)
                    || VERSION_LABELS
                        .iter()
                        .any(|l| !l.is_ascii() && unspaced_run_before(text, e).ends_with(l.as_bytes())))
        }
        _ => false,
    }
}

/// Labels that name a number as something other than personal data: a build, an order, an
/// invoice, a product, a version, a ticket, in the languages the context words cover, and
/// in Chinese, Japanese and Korean (read as the end of a run of their letters: specific
/// words only, not `编号` or `番号`, "number", which end the names of national ids too).
const LABELS: &[&str] = &[
    "build",
    "order",
    "ordernumber",
    "ticket",
    "invoice",
    "ref",
    "reference",
    "sku",
    "version",
    "ver",
    "v",
    "release",
    "tracking",
    "case",
    "incident",
    "job",
    "batch",
    "serial",
    "item",
    "part",
    "pid",
    "port",
    "issue",
    "pr",
    "sha",
    "commit",
    "txn",
    "transaction",
    "receipt",
    "booking",
    "confirmation",
    "bestellung",
    "bestellnummer",
    "auftrag",
    "auftragsnummer",
    "rechnung",
    "rechnungsnummer",
    "artikel",
    "kundennummer",
    "vorgang",
    "commande",
    "facture",
    "dossier",
    "pedido",
    "factura",
    "ordine",
    "fattura",
    "pratica",
    "bestelling",
    "factuur",
    "bestelnummer",
    "referentie",
    // more of the numbers of commerce and administration, named so in those languages
    "inv",
    "po",
    "rma",
    "claim",
    "contract",
    "lot",
    "ean",
    "gtin",
    "upc",
    "isbn",
    "barcode",
    "vertrag",
    "vertragsnummer",
    "aktenzeichen",
    "az",
    "vorgangsnummer",
    "lieferschein",
    "lieferscheinnummer",
    "sendung",
    "sendungsnummer",
    "sendungsverfolgung",
    "artikelnummer",
    "beleg",
    "belegnummer",
    "referenz",
    "référence",
    "réf",
    "contrat",
    "expediente",
    "referencia",
    "contrato",
    "albarán",
    "riferimento",
    "contratto",
    "factuurnummer",
    "klantnummer",
    "kenmerk",
    "dossiernummer",
    "ordernummer",
    "kundennr",
    "kunden",
    "kd",
    "best",
    "vertragsnr",
    "rechnungs",
    "rechnungsnr",
    "referenznummer",
    "mandatsreferenz",
    "ticketnummer",
    "seriennummer",
    "chargennummer",
    "quittung",
    "rif",
    "ricevuta",
    "klantnr",
    "zaaknummer",
    "pakbon",
    // parcels: a carrier's name or a tracking number's prefix (UPS `1Z`, DHL `JJD`)
    "1z",
    "jjd",
    "dhl",
    "ups",
    "fedex",
    "usps",
    "gls",
    "dpd",
    "订单号",
    "订单编号",
    "订单",
    "运单号",
    "快递单号",
    "发票号",
    "发票号码",
    "工单号",
    "流水号",
    "交易号",
    "型号",
    "货号",
    "版本",
    "版本号",
    "注文番号",
    "請求書番号",
    "伝票番号",
    "品番",
    "型番",
    "管理番号",
    "受付番号",
    "問い合わせ番号",
    "バージョン",
    "주문번호",
    "송장번호",
    "운송장번호",
    "버전",
];

/// Names of identifiers that are neither phone nor card numbers: a number written after one
/// (`CPR-nummer 091291-5185`, `SSN: ...`) or in a field named so is that identifier, whatever
/// number plan or checksum it also fits.
pub(crate) const IDENTIFIER_NAMES: &[&str] = &[
    "cpr",
    "personnummer",
    "ssn",
    "bsn",
    "burgerservicenummer",
    "nir",
    "insee",
    "aadhaar",
    "tfn",
    "abn",
    "rrn",
    "nric",
    "pesel",
    "hetu",
    "henkilötunnus",
    "idnr",
    "steuer-idnr",
    "steueridentifikationsnummer",
    "nino",
    "nhs",
    "iban",
    "dni",
    "nie",
    "medicare",
    "passport",
    "reisepass",
    "rijksregisternummer",
    // `Social Security No.`, `numéro de sécurité sociale`, a `steuerId` or `tax_id` field
    "security",
    "social",
    "sociale",
    "steuer",
    "steuerid",
    "steuernummer",
    "tax",
];

/// Words that say "number" (`no.`, `Nummer`): a label's word before them names the number.
const NUMBER_SIGNS: &[&str] = &["n°", "no", "nr", "nº", "num", "number", "nummer", "numéro", "numero"];

/// The word a field's name is about: its last (`customer_phone`), or the one before a
/// number sign (`phone_number`, `Telefon-Nr`); `phone_ext` and `tel_count` are not phones.
pub(crate) fn head_word(field_words: &[String]) -> Option<&str> {
    let is_sign = |w: &str| NUMBER_SIGNS.iter().any(|n| n.eq_ignore_ascii_case(w));
    let (last, before) = field_words.split_last()?;
    match before.last() {
        Some(head) if is_sign(last) => Some(head),
        _ => Some(last),
    }
}

/// `word` in ASCII lower case, written into `buf` (a hash key made without allocating), or
/// `None` when it is longer than `buf`, and so than any key.
fn ascii_lower<'b>(word: &[u8], buf: &'b mut [u8]) -> Option<&'b [u8]> {
    let lower = buf.get_mut(..word.len())?;
    lower.copy_from_slice(word);
    lower.make_ascii_lowercase();
    Some(lower)
}

/// A list of labels (or of identifiers' names), looked up by a word's ASCII lower case: a
/// label is asked for before every candidate number, and the lists run to hundreds.
#[derive(Debug)]
pub(crate) struct LabelSet {
    by_lower: FxHashMap<Box<[u8]>, &'static str>,
    /// Those not in ASCII, which may end a run of letters written without spaces.
    unspaced: Box<[&'static str]>,
}

impl LabelSet {
    fn new(words: &'static [&'static str]) -> Self {
        let by_lower = words
            .iter()
            .map(|w| (w.as_bytes().to_ascii_lowercase().into_boxed_slice(), *w))
            .collect();
        let unspaced = words.iter().copied().filter(|w| !w.is_ascii()).collect();
        Self { by_lower, unspaced }
    }

    /// The label ending `run`, a run of letters of a script written without spaces.
    fn ending(&self, run: &[u8]) -> Option<&'static str> {
        if run.is_empty() {
            return None;
        }
        self.unspaced.iter().find(|l| run.ends_with(l.as_bytes())).copied()
    }

    /// The label `word` is, compared case-insensitively (ASCII letters).
    pub(crate) fn get(&self, word: &[u8]) -> Option<&'static str> {
        self.by_lower.get(ascii_lower(word, &mut [0u8; 64])?).copied()
    }
}

/// [`LABELS`], to look up.
pub(crate) static LABEL_SET: LazyLock<LabelSet> = LazyLock::new(|| LabelSet::new(LABELS));
/// [`IDENTIFIER_NAMES`], to look up.
pub(crate) static IDENTIFIER_NAME_SET: LazyLock<LabelSet> = LazyLock::new(|| LabelSet::new(IDENTIFIER_NAMES));

/// Whether a field (a CSV column, a JSON key) is named by a label of [`LABELS`] (`ean`,
/// `order_no`, `tracking`): its values are those numbers, not phones or cards.
pub(crate) fn field_is_a_label(field_words: &[String]) -> bool {
    // (`order_id`, `ticketId`: the word before `id` names it)
    let head = match field_words.split_last() {
        Some((last, before)) if last.eq_ignore_ascii_case("id") => before.last().map(String::as_str),
        _ => head_word(field_words),
    };
    head.is_some_and(|w| LABEL_SET.get(w.as_bytes()).is_some())
}

/// Whether the word just before `start` (past spaces and `#`, `:`, `n°`, `no.`, `nr.`) is a
/// label of [`LABELS`], compared case-insensitively.
pub(crate) fn labelled(text: &[u8], start: usize) -> bool {
    label_before(text, start, &LABEL_SET).is_some()
}

/// Whether the word just before `start` (as [`labelled`]) is one of `labels`. A number sign
/// (`no.`, `number`, `Nummer`) or a verb of naming (`is`, `ist`, `est`, `lautet`) between
/// them is passed over (`NHS number is 970 222 0882`), as is `_` (`nhs_number=...`), and a
/// key's words joined by `_` are read together (`ssn_spouse=...`).
pub(crate) fn label_before(text: &[u8], start: usize, labels: &LabelSet) -> Option<&'static str> {
    let mut i = start;
    // the tail of a longer number (`Order 194 096 1055`, `Aadhaar 8347 0425 8938`: a phone's
    // shape from `096`, `0425`) is named by the word before the whole number; a few groups
    // back at most, so that a run of groups is not walked once for each of them
    for _ in 0..4 {
        let Some(sep) = i
            .checked_sub(1)
            .filter(|&j| matches!(text[j], b' ' | b'-' | b'.' | b'/'))
        else {
            break;
        };
        let digits = text[..sep].iter().rev().take_while(|b| b.is_ascii_digit()).count();
        if digits == 0 {
            break;
        }
        i = sep - digits;
    }
    let skip = |b: u8| matches!(b, b' ' | b'\t' | b'#' | b':' | b'=' | b'.' | b'(' | b'-' | b'_');
    for _ in 0..3 {
        // spaces and signs, ASCII or not (`：`, a no-break space)
        while i > 0 {
            match escaped_control(text, i - 1) {
                // an escaped tab is a tab; another control character (a line break) ends the
                // line a label would be on
                Some(b't') => {
                    i -= 2;
                    continue;
                }
                Some(_) => return None,
                None => {}
            }
            match text[i - 1] {
                b if b < 0x80 && skip(b) => i -= 1,
                b if b < 0x80 => break,
                _ => match word_char_before(text, i) {
                    (Beyond::Other, j) => i = j,
                    _ => break,
                },
            }
        }
        let e = i;
        while i > 0 {
            match text[i - 1] {
                b if b < 0x80 && b.is_ascii_alphanumeric() => i -= 1,
                b if b < 0x80 => break,
                _ => match word_char_before(text, i) {
                    (Beyond::Word, j) => i = j,
                    _ => break,
                },
            }
        }
        // (a word after an escaped control character starts after its letter: `\nOrder`)
        if i < e && escaped_control(text, i).is_some() {
            i += 1;
        }
        let word = &text[i..e];
        if word.is_empty() {
            // a script written without spaces: the label ends the run of its letters
            // (`请提供订单号536-90-4399`)
            return labels.ending(unspaced_run_before(text, e));
        }
        if let Some(l) = labels.get(word) {
            return Some(l);
        }
        // `n°`, `no`, `nr`, `nº`: a number sign; the label is the word before it
        let passed_over = NUMBER_SIGNS
            .iter()
            .chain(&["is", "ist", "est", "es", "è", "lautet", "was", "id", "n"])
            .any(|n| n.as_bytes().eq_ignore_ascii_case(word));
        // a key's words joined by `_` name it together (`ssn_spouse=...`)
        let in_key = i > 0 && text[i - 1] == b'_';
        if !(passed_over || in_key) || word.is_empty() {
            return None;
        }
    }
    None
}

/// Tables written as text (a CSV or TSV export pasted into a ticket, a log, a text file):
/// the header's words of each column, so that a value reads its column's header as a field
/// name, as it does when the file is read as CSV. A header is a line of at least three cells
/// (split by `,`, `;`, tab or `|`), none empty, over 40 bytes or holding a digit, followed by a
/// line of as many cells; the table's rows are the lines after it of as many cells, up to the
/// first line of another shape (a blank line, prose, a log line). Delimiters inside double
/// quotes do not split cells.
#[derive(Debug, Default)]
pub(crate) struct TextTables {
    /// In text order.
    regions: Vec<Region>,
    /// Whether the last region runs to the end of the text (a file's next block goes on
    /// with it).
    open_at_end: bool,
}

/// A table's shape: its delimiter and the words of each column's header.
#[derive(Debug, Clone)]
pub(crate) struct TableShape {
    delimiter: u8,
    columns: Arc<Vec<Vec<String>>>,
}

#[derive(Debug)]
struct Region {
    /// From the first row's start to the last row's end.
    rows: (usize, usize),
    shape: TableShape,
}

/// Cells of a line split by `delimiter`, delimiters inside double quotes not counted.
fn cells(line: &[u8], delimiter: u8) -> usize {
    let mut quoted = false;
    let mut n = 1;
    for &b in line {
        if b == b'"' {
            quoted = !quoted;
        } else if b == delimiter && !quoted {
            n += 1;
        }
    }
    n
}

impl TableShape {
    /// The shape a header line gives, if `line` is one and `next` a row of it.
    fn of_header(line: &[u8], next: &[u8]) -> Option<Self> {
        if line.iter().any(u8::is_ascii_digit) {
            return None;
        }
        [b',', b';', b'\t', b'|'].into_iter().find_map(|delimiter| {
            let names = || line.split(move |&b| b == delimiter);
            let named = |c: &[u8]| {
                let c = c.trim_ascii();
                !c.is_empty() && c.len() <= 40
            };
            // counted before anything is made: most lines are no header
            let n = memchr::memchr_iter(delimiter, line).count() + 1;
            let fits = n >= 3 && cells(line, delimiter) == n && cells(next, delimiter) == n && names().all(named);
            fits.then(|| Self {
                delimiter,
                columns: Arc::new(
                    names()
                        .map(|c| field_words(&String::from_utf8_lossy(c.trim_ascii()).replace('"', "")))
                        .collect(),
                ),
            })
        })
    }
}

impl TextTables {
    /// The tables of `text`; `carried`: a table the previous block of the same file ended in
    /// (its rows go on from this block's first line).
    pub(crate) fn sniff(text: &[u8], carried: Option<TableShape>) -> Self {
        let mut tables = Self::default();
        // a header needs a row after it: one line (a JSON string, a free text) holds no
        // table, unless a previous block's goes on in it
        if carried.is_none() && !text.contains(&b'\n') {
            return tables;
        }
        // every text is sniffed: its line ends are found by memchr, not byte by byte
        let mut lines = Vec::new();
        let mut at = 0;
        for end in memchr::memchr_iter(b'\n', text).chain([text.len()]) {
            let line = &text[at..end];
            lines.push((at, end - usize::from(line.ends_with(b"\r"))));
            at = end + 1;
        }
        // a text ending in a line end has no line after it
        if text.ends_with(b"\n") {
            lines.pop();
        }
        // the open table: its shape, where its rows start and end
        let mut open: Option<(TableShape, usize, usize)> = carried.map(|shape| (shape, 0, 0));
        for (k, &(s, e)) in lines.iter().enumerate() {
            let line = &text[s..e];
            if let Some((shape, start, end)) = open.take() {
                if cells(line, shape.delimiter) == shape.columns.len() {
                    open = Some((shape, start, e));
                    continue;
                }
                if end > start {
                    tables.regions.push(Region {
                        rows: (start, end),
                        shape,
                    });
                }
            }
            if let Some(&(ns, ne)) = lines.get(k + 1)
                && let Some(shape) = TableShape::of_header(line, &text[ns..ne])
            {
                open = Some((shape, ns, ns));
            }
        }
        if let Some((shape, start, end)) = open {
            tables.open_at_end = true;
            tables.regions.push(Region {
                rows: (start, end.max(start)),
                shape,
            });
        }
        tables
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.regions.is_empty()
    }

    /// The table the text ends in, for the file's next block.
    pub(crate) fn open_at_end(&self) -> Option<TableShape> {
        self.regions
            .last()
            .filter(|_| self.open_at_end)
            .map(|r| r.shape.clone())
    }

    /// The header's words of the column `pos` is in, if `pos` is in a row of a table.
    pub(crate) fn words_at(&self, text: &[u8], pos: usize, cursor: &Cell<Option<Cursor>>) -> &[String] {
        let Some(region) = self
            .regions
            .partition_point(|r| r.rows.0 <= pos)
            .checked_sub(1)
            .and_then(|i| self.regions.get(i))
            .filter(|r| pos < r.rows.1)
        else {
            return &[];
        };
        let delimiter = region.shape.delimiter;
        // on from the last lookup when it stood earlier on the same line (the values of a row
        // are looked up in text order: counting each from the line's start was quadratic in a
        // row of many cells)
        let from = cursor
            .get()
            .filter(|c| c.delimiter == delimiter && c.pos <= pos && !text[c.pos..pos].contains(&b'\n'))
            .unwrap_or_else(|| Cursor {
                pos: text[..pos].iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1),
                column: 0,
                quoted: false,
                delimiter,
            });
        let mut at = from;
        for &b in &text[from.pos..pos] {
            if b == b'"' {
                at.quoted = !at.quoted;
            } else if b == delimiter && !at.quoted {
                at.column += 1;
            }
        }
        at.pos = pos;
        cursor.set(Some(at));
        region.shape.columns.get(at.column).map_or(&[], Vec::as_slice)
    }
}

/// Where the last column lookup stood: its place, the column there (delimiters outside
/// quotes since the line's start) and whether a quote was open.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Cursor {
    pos: usize,
    column: usize,
    quoted: bool,
    delimiter: u8,
}

/// Where a value's field name comes from: the column of a table written as text, the field a
/// structured value was read from, or (in text) the key of a JSON object written in it
/// (`{"Telefon": "0371 569023"}` in a log line or a ticket).
#[derive(Debug, Default)]
pub(crate) struct Fields<'a> {
    table: Option<&'a TextTables>,
    field: &'a [String],
    cursor: Cell<Option<Cursor>>,
}

impl<'a> Fields<'a> {
    pub(crate) fn new(table: Option<&'a TextTables>, field: &'a [String]) -> Self {
        Self {
            table,
            field,
            cursor: Cell::new(None),
        }
    }

    /// The words of the field name of the value at `pos`, if any.
    pub(crate) fn at(&self, text: &[u8], pos: usize) -> Cow<'a, [String]> {
        if let Some(words) = self
            .table
            .map(|t| t.words_at(text, pos, &self.cursor))
            .filter(|w| !w.is_empty())
        {
            return Cow::Borrowed(words);
        }
        if !self.field.is_empty() {
            return Cow::Borrowed(self.field);
        }
        match json_key_before(text, pos) {
            Some(key) => Cow::Owned(field_words(key)),
            None => Cow::Borrowed(&[]),
        }
    }
}

/// The longest JSON key read as a field name in text.
const LONGEST_KEY: usize = 64;

/// The key of the JSON member whose value starts at `pos` (`"key": "value` or `"key": 42`).
fn json_key_before(text: &[u8], pos: usize) -> Option<&str> {
    let mut i = pos;
    if i > 0 && text[i - 1] == b'"' {
        i -= 1;
    }
    let skip_spaces = |mut i: usize| {
        while i > 0 && matches!(text[i - 1], b' ' | b'\t') {
            i -= 1;
        }
        i
    };
    i = skip_spaces(i);
    i = i.checked_sub(1).filter(|&j| text[j] == b':')?;
    i = skip_spaces(i);
    let key_end = i.checked_sub(1).filter(|&j| text[j] == b'"')?;
    let from = key_end.saturating_sub(LONGEST_KEY);
    let key_start = text[from..key_end].iter().rposition(|&b| b == b'"')? + from + 1;
    let key = &text[key_start..key_end];
    if key.is_empty() || key.iter().any(|&b| b == b'\n' || b == b'\\') {
        return None;
    }
    std::str::from_utf8(key).ok()
}

/// Words of a field name (`customer_email`, `phoneNumber`, `ssn`) for comparison with context words.
pub(crate) fn field_words(name: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut prev_lower = false;
    for ch in name.chars() {
        if !ch.is_alphanumeric() {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            prev_lower = false;
            continue;
        }
        if ch.is_uppercase() && prev_lower && !cur.is_empty() {
            out.push(std::mem::take(&mut cur));
        }
        prev_lower = ch.is_lowercase();
        cur.extend(ch.to_lowercase());
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(3000))]

        /// A window read from the list of every word holds the words a read from the
        /// span's edges finds, spans cutting words included.
        #[test]
        fn the_listed_window_is_the_window_read_around(
            pieces in proptest::collection::vec(
                proptest::sample::select(vec!["ab", "card", "tel", "a", "#", "12", " ", "  ", ".", "-", "\n", "é", ":", "x1", "@"]),
                0..40,
            ),
            spans in proptest::collection::vec((0usize..200, 0usize..12), 1..8),
        ) {
            let text = pieces.concat().into_bytes();
            let mut vocabulary = Vocabulary::default();
            vocabulary.add(&["card".to_owned(), "tel".to_owned(), "ab".to_owned(), "é".to_owned(), "a#".to_owned()]);
            let mut around = Window::default();
            let mut listed = Window::default();
            listed.read_all(&text, &vocabulary);
            for (at, len) in spans {
                let start = at.min(text.len());
                let end = (start + len).min(text.len());
                around.read_around(&text, start, end, &vocabulary);
                let by_scan = std::mem::take(&mut around.words);
                listed.words.clear();
                listed.read_listed(&text, start, end, &vocabulary);
                proptest::prop_assert_eq!(&by_scan, &listed.words, "{:?} [{}, {})", String::from_utf8_lossy(&text), start, end);
            }
        }
    }

    #[test]
    fn whole_words_before_and_after() {
        let list = vec!["card".to_owned(), "ssn".to_owned()];
        let t = b"my credit card: 4111";
        assert_eq!(find(t, 16, 20, &list).as_deref(), Some("card"));
        let t = b"discard 4111";
        assert_eq!(find(t, 8, 12, &list), None, "a word inside another word is not context");
        let t = b"078-05-1123 is my SSN";
        assert_eq!(find(t, 0, 11, &list).as_deref(), Some("ssn"));
        let t = b"a b c d e f card g 4111";
        assert_eq!(find(t, 19, 23, &list).as_deref(), Some("card"));
        let t = b"card a b c d e f 4111";
        assert_eq!(find(t, 17, 21, &list), None, "too far");
    }

    #[test]
    fn a_cursor_along_a_row_gives_the_columns_a_fresh_lookup_gives() {
        let text = b"nom;email;tel;ville\nA \"x;y\" B;a@b.fr;0102;Paris\nC;c@d.fr;0304;Lyon\nD;\"e;f\";0506;Nice\n";
        let tables = TextTables::sniff(text, None);
        let fresh: Vec<Vec<String>> = (0..text.len())
            .map(|p| tables.words_at(text, p, &Cell::new(None)).to_vec())
            .collect();
        // in text order, backwards, and jumping about: one cursor throughout
        let cursor = Cell::new(None);
        let orders: [Vec<usize>; 3] = [
            (0..text.len()).collect(),
            (0..text.len()).rev().collect(),
            (0..text.len()).map(|i| (i * 37) % text.len()).collect(),
        ];
        for order in orders {
            for p in order {
                assert_eq!(tables.words_at(text, p, &cursor), fresh[p].as_slice(), "at {p}");
            }
        }
        assert!(
            fresh.iter().any(|w| w == &["ville".to_owned()]),
            "the test reads the last column"
        );
    }

    #[test]
    fn a_table_in_text_names_its_columns() {
        fn words<'a>(tables: &'a TextTables, text: &[u8], needle: &[u8]) -> &'a [String] {
            let at = text.windows(needle.len()).position(|w| w == needle).unwrap_or(0);
            tables.words_at(text, at, &Cell::new(None))
        }
        let phone = ["telefon".to_owned()];
        let text = b"Name;E-Mail;Telefon;Kartennummer\nJo Beck;jo@example.com;0285361092;4111\nA;b;c;d";
        let tables = TextTables::sniff(text, None);
        assert_eq!(words(&tables, text, b"0285361092"), phone);
        assert!(
            tables.words_at(text, 2, &Cell::new(None)).is_empty(),
            "the header itself"
        );
        // a header after other lines, anywhere; rows of another shape end the table
        let mut text = b"{\"telefono\": \"041017445\"}\n".repeat(300);
        text.extend_from_slice(b"nome;email;telefono\nA;a@b.it;3406586511\n\"x; y\";b;3406586512\nlog line; 123\n");
        text.extend_from_slice(b"\nC;c@d.it;3406586513\n");
        let tables = TextTables::sniff(&text, None);
        assert_eq!(words(&tables, &text, b"3406586511"), ["telefono".to_owned()]);
        assert_eq!(
            words(&tables, &text, b"3406586512"),
            ["telefono".to_owned()],
            "a quoted delimiter splits no cell"
        );
        for outside in [&b"123"[..], b"041017445", b"3406586513"] {
            assert!(
                words(&tables, &text, outside).is_empty(),
                "{}",
                String::from_utf8_lossy(outside)
            );
        }
        // a file's next block goes on with a table its previous block ended in
        let first = b"a;b;Telefon\nx;y;0285361092\n";
        let tables = TextTables::sniff(first, None);
        let next = b"x;y;0285361093\nprose now, 0285361094 here\n";
        let tables = TextTables::sniff(next, tables.open_at_end());
        assert_eq!(words(&tables, next, b"0285361093"), phone);
        assert!(words(&tables, next, b"0285361094").is_empty());
        for prose in [
            &b"Hello, my name is Jo, and I live here\nsecond line"[..],
            b"a,b,c\nonly, two\n",
            b"id,2fa,phone\n1,2,3",
            b"no newline, at all, here",
        ] {
            assert!(
                TextTables::sniff(prose, None).is_empty(),
                "{}",
                String::from_utf8_lossy(prose)
            );
        }
    }

    #[test]
    fn json_keys_in_text_are_field_names() {
        let text = br#"{"Telefon": "0371 569023", "age": 42, "note": "see \"x\": y", "a":"b"}"#;
        let at = |needle: &[u8]| {
            let pos = text.windows(needle.len()).position(|w| w == needle).unwrap_or(0);
            Fields::default().at(text, pos).into_owned()
        };
        assert_eq!(at(b"0371"), vec!["telefon"]);
        assert_eq!(at(b"42"), vec!["age"]);
        assert_eq!(at(b"b\"}"), vec!["a"]);
        // not a value: a key, the inside of a string
        assert!(at(b"Telefon").is_empty());
        assert!(at(b"y\"").is_empty());
        // a table's column or a structured field comes first
        let field = vec!["name".to_owned()];
        let fields = Fields::new(None, &field);
        assert_eq!(fields.at(text, 12).into_owned(), vec!["name"]);
    }

    #[test]
    fn field_names_split() {
        assert_eq!(field_words("customer_email"), vec!["customer", "email"]);
        assert_eq!(field_words("phoneNumber"), vec!["phone", "number"]);
        assert_eq!(field_words("SSN"), vec!["ssn"]);
    }
}
