//! Context words: whole words within a few words before or after a finding raise its score.

use std::collections::HashMap;
use std::sync::Arc;

/// Words looked at before a finding.
const BEFORE: usize = 5;
/// Words looked at after a finding.
const AFTER: usize = 3;
/// How much a context word adds (Presidio's default similarity factor).
pub(crate) const BOOST: f32 = 0.35;
/// The least score a finding with context gets.
pub(crate) const MIN_WITH_CONTEXT: f32 = 0.4;

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b >= 0x80 || b == b'#'
}

/// The first context word of `list` found near `[start, end)`, compared case-insensitively.
#[cfg(test)]
pub(crate) fn find(text: &[u8], start: usize, end: usize, list: &[String]) -> Option<String> {
    let mut vocabulary = Vocabulary::default();
    let set = vocabulary.add(list);
    Window::default()
        .find(text, start, end, &vocabulary, &set)
        .map(str::to_owned)
}

/// Every context word of a scanner's recognizers, numbered, so that the words around a span
/// are looked up once and each recognizer's list is a set of numbers.
#[derive(Debug, Default)]
pub(crate) struct Vocabulary {
    ids: HashMap<Box<[u8]>, u32>,
    /// Each number's word, as the first list that held it wrote it.
    words: Vec<Arc<str>>,
}

/// The longest context word looked up (longer words in the text cannot be one).
const LONGEST: usize = 48;

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
        if word.len() > LONGEST || self.ids.is_empty() {
            return None;
        }
        let mut buf = [0u8; LONGEST];
        let key = &mut buf[..word.len()];
        key.copy_from_slice(word);
        key.make_ascii_lowercase();
        self.ids.get(&*key).copied()
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
    /// word numbers (`None`: no recognizer's context word).
    words: Vec<Option<u32>>,
    label: Option<(usize, bool)>,
}

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
    ) -> Option<&'v str> {
        if set.0.is_empty() {
            return None;
        }
        if self.span != Some((start, end)) {
            self.read(text, start, end, vocabulary);
        }
        self.words
            .iter()
            .flatten()
            .find(|&&id| set.contains(id))
            .and_then(|&id| vocabulary.words.get(id as usize))
            .map(|w| &**w)
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

    fn read(&mut self, text: &[u8], start: usize, end: usize, vocabulary: &Vocabulary) {
        self.span = Some((start, end));
        self.words.clear();
        // backwards
        let mut i = start;
        for _ in 0..BEFORE {
            while i > 0 && !is_word(text[i - 1]) {
                i -= 1;
            }
            if i == 0 {
                break;
            }
            let e = i;
            while i > 0 && is_word(text[i - 1]) {
                i -= 1;
            }
            self.words.push(vocabulary.id(&text[i..e]));
        }
        // forwards
        let mut j = end;
        for _ in 0..AFTER {
            while j < text.len() && !is_word(text[j]) {
                j += 1;
            }
            if j >= text.len() {
                break;
            }
            let s = j;
            while j < text.len() && is_word(text[j]) {
                j += 1;
            }
            self.words.push(vocabulary.id(&text[s..j]));
        }
    }
}

/// Labels that name a number as something other than personal data: a build, an order, an
/// invoice, a product, a version, a ticket, in the languages the context words cover.
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
];

/// Names of identifiers that are not phone numbers: a number written after one (`CPR-nummer
/// 091291-5185`, `SSN: ...`) is that identifier, whatever number plan it also fits.
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
];

/// Whether the word just before `start` (past spaces and `#`, `:`, `n°`, `no.`, `nr.`) is a
/// label of [`LABELS`], compared case-insensitively.
pub(crate) fn labelled(text: &[u8], start: usize) -> bool {
    labelled_by(text, start, LABELS)
}

/// Whether the word just before `start` (as [`labelled`]) is one of `labels`.
pub(crate) fn labelled_by(text: &[u8], start: usize, labels: &[&str]) -> bool {
    let mut i = start;
    let skip = |b: u8| matches!(b, b' ' | b'\t' | b'#' | b':' | b'=' | b'.' | b'(' | b'-');
    for _ in 0..2 {
        while i > 0 && skip(text[i - 1]) {
            i -= 1;
        }
        let e = i;
        while i > 0 && (text[i - 1].is_ascii_alphanumeric() || text[i - 1] >= 0x80) {
            i -= 1;
        }
        let word = &text[i..e];
        if labels.iter().any(|l| l.as_bytes().eq_ignore_ascii_case(word)) {
            return true;
        }
        // `n°`, `no`, `nr`, `nº`: a number sign; the label is the word before it
        let number_sign = ["n°", "no", "nr", "nº", "num", "number", "nummer", "numéro", "numero"]
            .iter()
            .any(|n| n.as_bytes().eq_ignore_ascii_case(word));
        if !number_sign || word.is_empty() {
            return false;
        }
    }
    false
}

/// A table written as text (a CSV or TSV export pasted into a ticket, a log, a text file):
/// its header's words by column, so that a value reads its column's header as a field name,
/// as it does when the file is read as CSV. A header is a line (among the first 100) of at
/// least three cells, none over 40 bytes or holding a digit, followed by a line of as many
/// cells; a row is any later line of as many cells.
#[derive(Debug)]
pub(crate) struct TextTable {
    delimiter: u8,
    /// Where the header line ends (`None`: in an earlier block of the same file).
    header_end: Option<usize>,
    columns: Vec<Vec<String>>,
}

/// Lines looked at for a header.
const HEADER_WITHIN: usize = 100;

impl TextTable {
    pub(crate) fn sniff(text: &[u8]) -> Option<Self> {
        let mut lines = text.split(|&b| b == b'\n').take(HEADER_WITHIN + 1).peekable();
        let mut at = 0;
        while let Some(line) = lines.next() {
            let header_end = at + line.len();
            at = header_end + 1;
            let next = lines.peek()?;
            let header = line.strip_suffix(b"\r").unwrap_or(line);
            if let Some(table) = Self::header(header, next, header_end) {
                return Some(table);
            }
        }
        None
    }

    fn header(header: &[u8], next: &[u8], header_end: usize) -> Option<Self> {
        [b',', b';', b'\t', b'|'].into_iter().find_map(|delimiter| {
            let cells: Vec<&[u8]> = header.split(|&b| b == delimiter).collect();
            let named = |c: &&[u8]| {
                let c = c.trim_ascii();
                !c.is_empty() && c.len() <= 40 && !c.iter().any(u8::is_ascii_digit)
            };
            let fits =
                cells.len() >= 3 && cells.iter().all(named) && next.split(|&b| b == delimiter).count() == cells.len();
            fits.then(|| Self {
                delimiter,
                header_end: Some(header_end),
                columns: cells
                    .iter()
                    .map(|c| field_words(&String::from_utf8_lossy(c.trim_ascii()).replace('"', "")))
                    .collect(),
            })
        })
    }

    /// The same table in the next block of a file (cut at a line end).
    pub(crate) fn continued(&mut self) {
        self.header_end = None;
    }

    /// The header's words of the column `pos` is in, on a row after the header (none
    /// elsewhere).
    pub(crate) fn words_at(&self, text: &[u8], pos: usize) -> &[String] {
        if self.header_end.is_some_and(|end| pos <= end) {
            return &[];
        }
        let line_start = text[..pos].iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        let line_end = text[pos..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(text.len(), |i| pos + i);
        let cells = text[line_start..line_end]
            .iter()
            .filter(|&&b| b == self.delimiter)
            .count()
            + 1;
        if cells != self.columns.len() {
            return &[];
        }
        let column = text[line_start..pos].iter().filter(|&&b| b == self.delimiter).count();
        self.columns.get(column).map_or(&[], Vec::as_slice)
    }
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
    fn a_table_in_text_names_its_columns() {
        let text = b"Name;E-Mail;Telefon;Kartennummer\nJo Beck;jo@example.com;0285361092;4111\nA;b;c;d";
        let table = TextTable::sniff(text);
        let at = |needle: &[u8]| text.windows(needle.len()).position(|w| w == needle).unwrap_or(0);
        assert_eq!(
            table.as_ref().map(|t| t.words_at(text, at(b"0285361092"))),
            Some(&["telefon".to_owned()][..])
        );
        assert_eq!(
            table.as_ref().map(|t| t.words_at(text, 2)),
            Some(&[][..]),
            "the header itself"
        );
        // a header after other lines; rows of another shape are no rows
        let text = b"{\"telefono\": \"041017445\"}\nnome;email;telefono\nA;a@b.it;3406586511\nlog line; 123";
        let at = |needle: &[u8]| text.windows(needle.len()).position(|w| w == needle).unwrap_or(0);
        let table = TextTable::sniff(text);
        assert_eq!(
            table.as_ref().map(|t| t.words_at(text, at(b"3406586511"))),
            Some(&["telefono".to_owned()][..])
        );
        assert_eq!(table.as_ref().map(|t| t.words_at(text, at(b"123"))), Some(&[][..]));
        assert_eq!(
            table.as_ref().map(|t| t.words_at(text, at(b"041017445"))),
            Some(&[][..])
        );
        for prose in [
            &b"Hello, my name is Jo, and I live here\nsecond line"[..],
            b"a,b,c\nonly, two\n",
            b"id,2fa,phone\n1,2,3",
            b"no newline, at all, here",
        ] {
            assert!(TextTable::sniff(prose).is_none(), "{}", String::from_utf8_lossy(prose));
        }
    }

    #[test]
    fn field_names_split() {
        assert_eq!(field_words("customer_email"), vec!["customer", "email"]);
        assert_eq!(field_words("phoneNumber"), vec!["phone", "number"]);
        assert_eq!(field_words("SSN"), vec!["ssn"]);
    }
}
