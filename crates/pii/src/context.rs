//! Context words: whole words within a few words before or after a finding raise its score.

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
pub(crate) fn find<'a>(text: &[u8], start: usize, end: usize, list: &'a [String]) -> Option<&'a str> {
    if list.is_empty() {
        return None;
    }
    let matches = |w: &[u8]| {
        list.iter()
            .find(|c| c.as_bytes().eq_ignore_ascii_case(w))
            .map(String::as_str)
    };
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
        if let Some(w) = matches(&text[i..e]) {
            return Some(w);
        }
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
        if let Some(w) = matches(&text[s..j]) {
            return Some(w);
        }
    }
    None
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

/// Whether the word just before `start` (past spaces and `#`, `:`, `n°`, `no.`, `nr.`) is a
/// label of [`LABELS`], compared case-insensitively.
pub(crate) fn labelled(text: &[u8], start: usize) -> bool {
    let mut i = start;
    let skip = |b: u8| matches!(b, b' ' | b'\t' | b'#' | b':' | b'=' | b'.' | b'(');
    for _ in 0..2 {
        while i > 0 && skip(text[i - 1]) {
            i -= 1;
        }
        let e = i;
        while i > 0 && (text[i - 1].is_ascii_alphanumeric() || text[i - 1] >= 0x80) {
            i -= 1;
        }
        let word = &text[i..e];
        if LABELS.iter().any(|l| l.as_bytes().eq_ignore_ascii_case(word)) {
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
        assert_eq!(find(t, 16, 20, &list), Some("card"));
        let t = b"discard 4111";
        assert_eq!(find(t, 8, 12, &list), None, "a word inside another word is not context");
        let t = b"078-05-1123 is my SSN";
        assert_eq!(find(t, 0, 11, &list), Some("ssn"));
        let t = b"a b c d e f card g 4111";
        assert_eq!(find(t, 19, 23, &list), Some("card"));
        let t = b"card a b c d e f 4111";
        assert_eq!(find(t, 17, 21, &list), None, "too far");
    }

    #[test]
    fn field_names_split() {
        assert_eq!(field_words("customer_email"), vec!["customer", "email"]);
        assert_eq!(field_words("phoneNumber"), vec!["phone", "number"]);
        assert_eq!(field_words("SSN"), vec!["ssn"]);
    }
}
