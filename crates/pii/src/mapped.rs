//! Text rewritten before it is scanned (a JSON string's escapes decoded, no-break spaces
//! written as spaces), with the map from each rewritten byte back to where it came from, so
//! findings are placed on the original.

/// Rewritten text and, for each of its bytes, the offset in the original of the character
/// (or escape) that wrote it.
pub(crate) struct Mapped {
    pub(crate) text: Vec<u8>,
    /// One entry a byte of `text`, and one more: the original's length.
    from: Vec<usize>,
}

impl Mapped {
    pub(crate) fn with_capacity(len: usize) -> Self {
        Self {
            text: Vec::with_capacity(len),
            from: Vec::with_capacity(len + 1),
        }
    }

    /// Bytes written for what stands at `at` in the original (an escape, a no-break space).
    pub(crate) fn put(&mut self, bytes: &[u8], at: usize) {
        self.text.extend_from_slice(bytes);
        self.from.extend(std::iter::repeat_n(at, bytes.len()));
    }

    /// Bytes of the original, as they are, starting at `at`.
    pub(crate) fn copy(&mut self, bytes: &[u8], at: usize) {
        self.text.extend_from_slice(bytes);
        self.from.extend(at..at + bytes.len());
    }

    /// Closes the map: `original_len` is where the end of `text` maps to.
    pub(crate) fn finish(mut self, original_len: usize) -> Self {
        self.from.push(original_len);
        self
    }

    /// The original offset of a rewritten one: a span of rewritten characters maps to the
    /// whole of what wrote them (a redaction never cuts an escape in two).
    pub(crate) fn original(&self, at: usize) -> usize {
        self.from.get(at).or(self.from.last()).copied().unwrap_or(0)
    }
}

/// Characters that group digits as a space does and that [`spaces_for_no_break_spaces`]
/// writes as one: U+00A0 (no-break space; French typography groups phone numbers with it,
/// and word processors put it there) and U+202F (the narrow one, French thousands).
const NO_BREAK_SPACES: [&[u8]; 2] = ["\u{a0}".as_bytes(), "\u{202f}".as_bytes()];

/// `text` with each no-break space written as an ASCII space, or `None` when it holds none
/// (nearly always: the text is then scanned as it is). Not those that separate thousands
/// (`12\u{202f}345\u{202f}678 €`, `362\u{a0}521\u{a0}879`: groups of three after the
/// first): an amount or a company number grouped so is no phone or card.
pub(crate) fn spaces_for_no_break_spaces(text: &[u8]) -> Option<Mapped> {
    let width = |i: usize| {
        NO_BREAK_SPACES
            .iter()
            .find(|s| text[i..].starts_with(s))
            .map(|s| s.len())
    };
    let mut spaces: Vec<(usize, usize)> = Vec::new();
    let mut from = 0;
    while let Some(k) = memchr::memchr2(0xC2, 0xE2, &text[from..]) {
        let i = from + k;
        let Some(len) = width(i) else {
            from = i + 1;
            continue;
        };
        // the run of digit groups joined by no-break spaces this one stands in
        let mut groups = vec![text[..i].iter().rev().take_while(|b| b.is_ascii_digit()).count()];
        let mut run = vec![(i, len)];
        let mut at = i + len;
        loop {
            let digits = text[at..].iter().take_while(|b| b.is_ascii_digit()).count();
            groups.push(digits);
            at += digits;
            match (digits > 0).then(|| width(at)).flatten() {
                Some(len) if at < text.len() => {
                    run.push((at, len));
                    at += len;
                }
                _ => break,
            }
        }
        let thousands = (1..=3).contains(&groups[0]) && groups[1..].iter().all(|&g| g == 3);
        if !thousands {
            spaces.extend(run);
        }
        from = at.max(i + len);
    }
    if spaces.is_empty() {
        return None;
    }
    let mut out = Mapped::with_capacity(text.len());
    let mut at = 0;
    for (i, len) in spaces {
        out.copy(&text[at..i], at);
        out.put(b" ", i);
        at = i + len;
    }
    out.copy(&text[at..], at);
    Some(out.finish(text.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_break_spaces_become_spaces_with_their_places() {
        let text = "Tél\u{a0}: 01\u{a0}42\u{202f}68 — 53".as_bytes();
        let Some(m) = spaces_for_no_break_spaces(text) else {
            panic!("no-break spaces were not seen");
        };
        assert_eq!(String::from_utf8_lossy(&m.text), "Tél : 01 42 68 — 53");
        let at = |s: &str| String::from_utf8_lossy(&m.text).find(s).unwrap_or(usize::MAX);
        // `01 42 68` maps to `01\u{a0}42\u{202f}68`, whole
        let (s, e) = (at("01"), at("68") + 2);
        assert_eq!(&text[m.original(s)..m.original(e)], "01\u{a0}42\u{202f}68".as_bytes());
        assert_eq!(m.original(m.text.len()), text.len());
        assert!(spaces_for_no_break_spaces("naïve — café 01 42".as_bytes()).is_none());
        assert!(spaces_for_no_break_spaces(b"").is_none());
        // thousands stay as they are written: no phone, no card in an amount
        for amount in [
            "Total 12\u{202f}345\u{202f}678\u{202f}901 €",
            "SIREN 362\u{a0}521\u{a0}879",
            "1\u{a0}000",
        ] {
            assert!(spaces_for_no_break_spaces(amount.as_bytes()).is_none(), "{amount}");
        }
        let mixed = "12\u{a0}345 € ou 06\u{a0}12\u{a0}34\u{a0}56\u{a0}78";
        let Some(m) = spaces_for_no_break_spaces(mixed.as_bytes()) else {
            panic!("the phone's spaces were not seen");
        };
        assert_eq!(String::from_utf8_lossy(&m.text), "12\u{a0}345 € ou 06 12 34 56 78");
    }
}
